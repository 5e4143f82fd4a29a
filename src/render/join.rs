//! The exposition joined from the pairs' [`Part`]s and the exporter's own families: each
//! family's HELP and TYPE once, then its series of every pair, as gzip members copied one
//! after the other; nothing of a part is compressed again.

use bytes::{Bytes, BytesMut};
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, TextEncoder};

use crate::render::families::SNAPSHOT_FAMILIES;
use crate::render::text::{Chunk, Part, write_header_into};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot encode metrics: {0}")]
    Encode(#[source] prometheus::Error),
}

/// The HELP and TYPE lines of each snapshot family, made once.
#[derive(Debug, Clone)]
pub struct Headers {
    families: Vec<(&'static str, Chunk)>,
}

impl Default for Headers {
    fn default() -> Self {
        Headers {
            families: SNAPSHOT_FAMILIES
                .iter()
                .map(|family| {
                    let mut out = Vec::new();
                    write_header_into(&mut out, family);
                    (family.name, Chunk::new(&out))
                })
                .collect(),
        }
    }
}

/// The whole exposition, as one buffer of gzip members.
#[derive(Debug, Clone, Default)]
pub struct Joined {
    pub gzip: Bytes,
    /// The length of the text it decompresses to.
    pub plain_len: usize,
    /// A buffer could not be compressed: the gzip form lacks its lines.
    incomplete: bool,
}

impl Joined {
    /// Whether the gzip form holds every line.
    pub fn complete(&self) -> bool {
        !self.incomplete
    }
}

/// Where a gzip member of the exposition comes from: a header or the own families, made
/// for this exposition, or a family of a pair's part.
enum Member {
    Made(Bytes),
    Part { pair: usize, family: usize },
}

/// Joins the pairs' `parts` (in the board's order) and the exporter's `own` families into
/// one exposition, family by family in the order of their names: each family's HELP and
/// TYPE once, then its series of every pair, pair after pair. The parts' gzip members are copied one after the other into one buffer
/// (a scrape then sends one buffer, as fast as nginx sends a file), and each part's members
/// are made slices of it, so that the members are held once. Nothing is compressed again but
/// the own families, a few dozen series, encoded here.
///
/// # Errors
///
/// [`RenderError`] if the prometheus crate refuses one of `own`.
pub fn join(
    headers: &Headers,
    parts: &mut [&mut Part],
    own: Vec<MetricFamily>,
) -> Result<Joined, RenderError> {
    let mut own = own;
    own.sort_by(|a, b| a.name().cmp(b.name()));
    // Each family's name and, for the snapshot's, its index; own families are taken in
    // name order as their names come up.
    let mut names: Vec<(&str, Option<usize>)> = headers
        .families
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (*name, Some(i)))
        .chain(own.iter().map(|f| (f.name(), None)))
        .collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    let names: Vec<Option<usize>> = names.into_iter().map(|(_, i)| i).collect();
    let mut own = own.into_iter();
    let mut plain_len = 0;
    let mut members = Vec::new();
    let mut incomplete = false;
    let mut push = |chunk: &Chunk, member: Member| {
        if !chunk.is_empty() {
            plain_len += chunk.plain_len;
            incomplete |= chunk.incomplete;
            members.push((member, chunk.gzip.len()));
        }
    };
    // Own families that follow each other in name order go out as one buffer.
    let mut pending: Vec<u8> = Vec::new();
    for index in names {
        match index {
            None => {
                if let Some(family) = own.next() {
                    TextEncoder::new()
                        .encode(std::slice::from_ref(&family), &mut pending)
                        .map_err(RenderError::Encode)?;
                }
            }
            Some(i) => {
                if parts
                    .iter()
                    .all(|p| p.families.get(i).is_none_or(Chunk::is_empty))
                {
                    continue;
                }
                let made = Chunk::new(&pending);
                pending.clear();
                push(&made, Member::Made(made.gzip.clone()));
                let header = &headers.families[i].1;
                push(header, Member::Made(header.gzip.clone()));
                for (pair, part) in parts.iter().enumerate() {
                    if let Some(chunk) = part.families.get(i) {
                        push(chunk, Member::Part { pair, family: i });
                    }
                }
            }
        }
    }
    let made = Chunk::new(&pending);
    push(&made, Member::Made(made.gzip.clone()));

    let mut gzip = BytesMut::with_capacity(members.iter().map(|(_, len)| len).sum());
    let mut placed = Vec::new();
    for (member, len) in members {
        let start = gzip.len();
        match member {
            Member::Made(bytes) => gzip.extend_from_slice(&bytes),
            Member::Part { pair, family } => {
                gzip.extend_from_slice(&parts[pair].families[family].gzip);
                placed.push((pair, family, start..start + len));
            }
        }
    }
    let gzip = gzip.freeze();
    for (pair, family, range) in placed {
        parts[pair].families[family].gzip = gzip.slice(range);
    }
    Ok(Joined {
        gzip,
        plain_len,
        incomplete,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Place;
    use crate::render::tests::{at, counts};
    use crate::render::{gunzip, render, renders_same};
    use crate::snapshot::{AssociationState, ExecutionState, LastSuccess, Snapshot, Timing};
    use crate::ssm::{Association, Execution, Target};

    /// Three pairs, two of them in one account with interleaving association IDs, one with
    /// nothing; failed targets named in one.
    fn pairs() -> Vec<(Option<Place>, Snapshot)> {
        let place = |account: &str, region: &str| Place {
            account_id: account.into(),
            region: region.into(),
        };
        let association = |id: &str, status: &str, name: Option<&str>| {
            let mut targets = counts(&[
                (status, status, "ManagedInstance"),
                ("Success", "Success", "ManagedInstance"),
            ]);
            targets.add(&Target {
                resource_id: None,
                status: Some("Success".into()),
                detailed_status: Some("Success".into()),
                resource_type: Some("AWS::EC2::Instance".into()),
            });
            let mut failed = crate::snapshot::FailedTargets::new(1);
            for resource in ["i-2", "i-1"] {
                failed.add(&Target {
                    resource_id: Some(resource.into()),
                    status: Some("Failed".into()),
                    detailed_status: Some("Failed".into()),
                    resource_type: Some("ManagedInstance".into()),
                });
            }
            AssociationState {
                association: Association {
                    association_id: id.into(),
                    association_name: name.map(Into::into),
                    document_name: Some("AWS-RunPatchBaseline".into()),
                    document_version: Some("$DEFAULT".into()),
                    association_version: Some("1".into()),
                    last_execution_date: Some(at(1_700_000_100.0)),
                    overview: None,
                    ..Association::default()
                },
                finished: Some(Arc::new(ExecutionState {
                    execution: Execution {
                        execution_id: format!("e{id}"),
                        status: Some(status.into()),
                        detailed_status: Some(status.into()),
                        created_time: Some(at(1_700_000_000.5)),
                        resource_count_by_status: None,
                    },
                    targets,
                    filters: Vec::new(),
                    read_at: at(1_700_000_200.0),
                    failed: (status == "Failed").then_some(failed),
                    pinned: false,
                })),
                running: None,
                last_successful_execution: LastSuccess::Unknown,
                timing: Timing::Unscheduled,
                poll_ok: status != "Pending",
                last_good_poll: Some(at(1_700_000_200.0)),
                error_kind: None,
            }
        };
        let snapshot = |associations: Vec<AssociationState>| Snapshot {
            associations,
            region_associations: None,
            listing_refused: None,
        };
        vec![
            (
                Some(place("222222222222", "us-east-1")),
                snapshot(vec![
                    association("a1", "Success", Some("patch")),
                    association("a3", "Failed", Some("quote \"x\"")),
                ]),
            ),
            (
                Some(place("111111111111", "us-east-1")),
                snapshot(vec![
                    association("a0", "Pending", None),
                    association("a2", "TimedOut", Some("inventory")),
                ]),
            ),
            (
                Some(place("111111111111", "eu-west-1")),
                Snapshot::default(),
            ),
            (
                Some(place("111111111111", "ap-south-1")),
                snapshot(vec![
                    association("a1", "Failed", Some("other")),
                    AssociationState::unknown("a4"),
                ]),
            ),
        ]
    }

    fn joined(pairs: &[(Option<Place>, Snapshot)], own: Vec<MetricFamily>) -> Joined {
        let placed = pairs.iter().any(|(p, _)| p.is_some());
        let mut parts: Vec<Part> = pairs
            .iter()
            .map(|(place, snapshot)| Part::render(place.as_ref(), placed, snapshot))
            .collect();
        let mut parts: Vec<&mut Part> = parts.iter_mut().collect();
        join(&Headers::default(), &mut parts, own).expect("joins")
    }

    /// The exporter's own families, whose names sort among the snapshot's.
    fn own() -> Vec<MetricFamily> {
        let telemetry = crate::telemetry::Telemetry::new(true);
        let place = Place {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
        };
        // A pair's share, so that its families have series; then one rendering.
        telemetry.pair(Some(&place));
        telemetry.record_render(Some(&place), 0.25);
        telemetry.gather()
    }

    /// Parts rendered pair by pair and joined are, byte for byte, the whole board rendered at
    /// once; their gzip members, read as one stream, are the same bytes.
    #[test]
    fn joined_parts_equal_a_whole_render() {
        let pairs = pairs();
        let sources: Vec<(Option<&Place>, &Snapshot)> =
            pairs.iter().map(|(p, s)| (p.as_ref(), s)).collect();
        let own = own();
        let whole = render(&sources, own.clone()).expect("renders");
        let all = joined(&pairs, own.clone());
        assert_eq!(
            String::from_utf8(gunzip(&all.gzip)).expect("utf-8"),
            String::from_utf8(whole.clone()).expect("utf-8")
        );
        assert!(all.complete());
        assert_eq!(all.plain_len, whole.len());

        // One pair without places, as an exporter without `accounts` has it.
        let single = vec![(None, pairs[0].1.clone())];
        let whole = render(&[(None, &single[0].1)], own.clone()).expect("renders");
        let one = joined(&single, own);
        assert_eq!(gunzip(&one.gzip), whole);
        assert_eq!(one.plain_len, whole.len());
    }

    /// After a join, each part's gzip members are slices of the exposition's gzip buffer: held
    /// once. A second join of the same parts makes the same bytes.
    #[test]
    fn gzip_members_are_held_once() {
        let pairs = pairs();
        let mut parts: Vec<Part> = pairs
            .iter()
            .map(|(place, snapshot)| Part::render(place.as_ref(), true, snapshot))
            .collect();
        let own = own();
        let first = {
            let mut refs: Vec<&mut Part> = parts.iter_mut().collect();
            join(&Headers::default(), &mut refs, own.clone()).expect("joins")
        };
        let inside = first.gzip.as_ptr_range();
        let members: Vec<&Bytes> = parts
            .iter()
            .flat_map(|p| &p.families)
            .filter(|c| !c.is_empty())
            .map(|c| &c.gzip)
            .collect();
        // Three pairs with series, in 8 to 10 families each.
        assert_eq!(members.len(), 26);
        for member in members {
            assert!(inside.contains(&member.as_ptr()));
        }
        let mut refs: Vec<&mut Part> = parts.iter_mut().collect();
        let second = join(&Headers::default(), &mut refs, own).expect("joins");
        assert_eq!(second.gzip, first.gzip);
        assert_eq!(second.plain_len, first.plain_len);
    }

    /// Every family's lines are together, its HELP and TYPE once, in the order of the
    /// families' names; within a family, pair after pair in the board's order.
    #[test]
    fn families_do_not_interleave() {
        let text = String::from_utf8(gunzip(&joined(&pairs(), own()).gzip)).expect("utf-8");
        let mut blocks: Vec<&str> = Vec::new();
        let mut headers: Vec<(&str, &str)> = Vec::new();
        for line in text.lines() {
            let name = match line.strip_prefix("# ") {
                Some(comment) => {
                    let mut words = comment.split(' ');
                    let kind = words.next().unwrap_or_default();
                    let name = words.next().unwrap_or_default();
                    headers.push((kind, name));
                    name
                }
                None => line.split(['{', ' ']).next().unwrap_or_default(),
            };
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| text.contains(&format!("# TYPE {f} histogram")))
                })
                .unwrap_or(name);
            if blocks.last() != Some(&family) {
                assert!(
                    !blocks.contains(&family),
                    "{family} comes back after another family"
                );
                blocks.push(family);
            }
        }
        let mut sorted = blocks.clone();
        sorted.sort_unstable();
        assert_eq!(blocks, sorted);
        for family in &blocks {
            assert_eq!(
                headers
                    .iter()
                    .filter(|(k, n)| *k == "HELP" && n == family)
                    .count(),
                1,
                "{family}"
            );
            assert_eq!(
                headers
                    .iter()
                    .filter(|(k, n)| *k == "TYPE" && n == family)
                    .count(),
                1,
                "{family}"
            );
        }
        // The pairs' series follow the board's order, not the labels' (account 2 first).
        let regions: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ssm_association_info{"))
            .map(|l| {
                l.split("region=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            regions,
            [
                "us-east-1",
                "us-east-1",
                "us-east-1",
                "us-east-1",
                "ap-south-1"
            ]
        );
        assert!(blocks.contains(&"ssm_association_exporter_renders_total"));
        assert_eq!(blocks.len(), 10 + own().len());
    }

    /// The time of a successful poll is not rendered: it moves every cycle. A failed poll's
    /// last success is, for as long as the association's series are that old.
    #[test]
    fn only_a_failed_poll_renders_its_last_success() {
        let pairs = pairs();
        let text = String::from_utf8(gunzip(&joined(&pairs, Vec::new()).gzip)).expect("utf-8");
        let polled: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ssm_association_last_successful_poll_timestamp_seconds{"))
            .collect();
        assert_eq!(
            polled,
            [
                r#"ssm_association_last_successful_poll_timestamp_seconds{account_id="111111111111",association_id="a0",region="us-east-1"} 1700000200"#
            ]
        );
        let mut later = pairs[1].1.clone();
        for a in &mut later.associations {
            a.last_good_poll = Some(at(1_700_000_260.0));
        }
        // a0's poll failed: its last success is rendered, so a later one is a change.
        assert!(!renders_same(&pairs[1].1, &later));
        later.associations[0].last_good_poll = Some(at(1_700_000_200.0));
        assert!(renders_same(&pairs[1].1, &later));
    }
}
