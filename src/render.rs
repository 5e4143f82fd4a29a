//! Snapshots → Prometheus text exposition (format 0.0.4), built once per change: the
//! snapshot's series written directly, the exporter's own through the `prometheus` crate, all in
//! that crate's format and order. Output is deterministic: families by name, series by labels.

use std::time::SystemTime;

use prometheus::proto::MetricFamily;
use prometheus::{Encoder, TextEncoder};

use crate::config::Place;
use crate::snapshot::Snapshot;
use crate::telemetry::{place_values, with_place_labels};

/// One metric family of the snapshot: its name, help and label names, kept in one table so
/// the README's metric list and the code cannot drift apart silently.
struct Family {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
}

const TARGETS: Family = Family {
    name: "ssm_association_execution_targets",
    help: "Targets of the association's latest (or pinned) execution, by status, detailed status and resource type, as of the last poll.",
    labels: &[
        "association_id",
        "execution_id",
        "status",
        "detailed_status",
        "resource_type",
    ],
};
const INFO: Family = Family {
    name: "ssm_association_info",
    help: "Always 1: the association's name, document and versions, as of the last successful poll.",
    labels: &[
        "association_id",
        "association_name",
        "document_name",
        "document_version",
        "association_version",
    ],
};
const EXECUTION_STATUS: Family = Family {
    name: "ssm_association_execution_status",
    help: "Always 1: the overall status of the association's latest (or pinned) execution, as of the last poll.",
    labels: &[
        "association_id",
        "execution_id",
        "status",
        "detailed_status",
    ],
};
const EXECUTION_CREATED: Family = Family {
    name: "ssm_association_execution_created_timestamp_seconds",
    help: "When the association's latest (or pinned) execution started, in seconds since the epoch, as of the last poll.",
    labels: &["association_id", "execution_id"],
};
const EXECUTION_LAST: Family = Family {
    name: "ssm_association_execution_last_execution_timestamp_seconds",
    help: "The LastExecutionDate of the association's latest (or pinned) execution, in seconds since the epoch, as of the last poll; absent when SSM does not report it.",
    labels: &["association_id", "execution_id"],
};
const LAST_EXECUTION: Family = Family {
    name: "ssm_association_last_execution_timestamp_seconds",
    help: "When the association last ran (its LastExecutionDate), in seconds since the epoch, as of the last poll.",
    labels: &["association_id"],
};
const POLL_SUCCESS: Family = Family {
    name: "ssm_association_poll_success",
    help: "1 if every SSM call about the association succeeded in the last poll, 0 if one failed and the other series of the association are from an earlier poll.",
    labels: &["association_id"],
};
const POLL_LAST_SUCCESS: Family = Family {
    name: "ssm_association_last_successful_poll_timestamp_seconds",
    help: "When the association was last polled successfully, in seconds since the epoch.",
    labels: &["association_id"],
};

const FAILED_TARGET: Family = Family {
    name: "ssm_association_execution_failed_target",
    help: "Always 1: a failed or timed-out target of the association's latest (or pinned) execution, by resource, as of the last poll; only when failed_targets is enabled, at most failed_targets.limit per association.",
    labels: &[
        "association_id",
        "execution_id",
        "resource_id",
        "resource_type",
        "detailed_status",
    ],
};
const FAILED_OMITTED: Family = Family {
    name: "ssm_association_execution_failed_targets_omitted",
    help: "Failed or timed-out targets of the execution left unnamed by failed_targets.limit, as of the last poll.",
    labels: &["association_id", "execution_id"],
};

/// Every family the snapshot renders, for documentation and tests.
pub const SNAPSHOT_FAMILIES: [&str; 10] = [
    FAILED_TARGET.name,
    FAILED_OMITTED.name,
    TARGETS.name,
    INFO.name,
    EXECUTION_STATUS.name,
    EXECUTION_CREATED.name,
    EXECUTION_LAST.name,
    LAST_EXECUTION.name,
    POLL_SUCCESS.name,
    POLL_LAST_SUCCESS.name,
];

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot encode metrics: {0}")]
    Encode(#[source] prometheus::Error),
}

/// Encodes the snapshots of the (account, region) pairs and `extra` families (the exporter's
/// own) as one exposition. When any pair has a place, every series also carries `account_id`
/// and `region`, sorted among its labels by name as the rest.
///
/// The snapshot's series are written straight from the snapshot, in the text format exactly
/// as the prometheus crate's encoder writes it (families by name, labels by name, series by
/// their label values). Building the crate's metric objects for every series first is what
/// made 10,000 associations in four regions peak at 291 MiB (`cargo bench --bench accounts`;
/// 183 MiB without them). The exporter's own families, a few dozen series, go through the
/// crate's encoder.
///
/// # Errors
///
/// [`RenderError`] if the prometheus crate refuses one of `extra`.
pub fn render(
    sources: &[(Option<&Place>, &Snapshot)],
    extra: Vec<MetricFamily>,
) -> Result<Vec<u8>, RenderError> {
    let placed = sources.iter().any(|(place, _)| place.is_some());
    let mut targets = Series::new(&TARGETS, placed);
    let mut info = Series::new(&INFO, placed);
    let mut execution_status = Series::new(&EXECUTION_STATUS, placed);
    let mut execution_created = Series::new(&EXECUTION_CREATED, placed);
    let mut execution_last = Series::new(&EXECUTION_LAST, placed);
    let mut last_execution = Series::new(&LAST_EXECUTION, placed);
    let mut poll_success = Series::new(&POLL_SUCCESS, placed);
    let mut poll_last_success = Series::new(&POLL_LAST_SUCCESS, placed);
    let mut failed_target = Series::new(&FAILED_TARGET, placed);
    let mut failed_omitted = Series::new(&FAILED_OMITTED, placed);

    for (place, snapshot) in sources {
        let place = place_values(placed, *place);
        let place = place.as_slice();
        for a in &snapshot.associations {
            let id = a.id();
            poll_success.set(&[id], place, if a.poll_ok { 1.0 } else { 0.0 });
            if let Some(t) = a.last_success {
                poll_last_success.set(&[id], place, seconds(t));
            }
            if a.last_success.is_none() {
                // Never read: there is nothing true to say about it beyond the failure.
                continue;
            }
            let record = &a.association;
            info.set(
                &[
                    id,
                    text(&record.association_name),
                    text(&record.document_name),
                    text(&record.document_version),
                    text(&record.association_version),
                ],
                place,
                1.0,
            );
            if let Some(t) = record.last_execution_date {
                last_execution.set(&[id], place, seconds(t));
            }
            let Some(e) = &a.execution else { continue };
            let run = &e.execution;
            let exec = run.execution_id.as_str();
            execution_status.set(
                &[id, exec, text(&run.status), text(&run.detailed_status)],
                place,
                1.0,
            );
            if let Some(t) = run.created_time {
                execution_created.set(&[id, exec], place, seconds(t));
            }
            if let Some(t) = run.last_execution_date {
                execution_last.set(&[id, exec], place, seconds(t));
            }
            for (key, count) in e.targets.iter() {
                targets.set(
                    &[
                        id,
                        exec,
                        &key.status,
                        &key.detailed_status,
                        &key.resource_type,
                    ],
                    place,
                    // Counts are far below 2^53: exact as f64.
                    count as f64,
                );
            }
            if let Some(failed) = &e.failed {
                for (resource_id, target) in failed.iter() {
                    failed_target.set(
                        &[
                            id,
                            exec,
                            resource_id,
                            &target.resource_type,
                            &target.detailed_status,
                        ],
                        place,
                        1.0,
                    );
                }
                failed_omitted.set(&[id, exec], place, failed.omitted as f64);
            }
        }
    }

    // Every family in the order of their names, written into one buffer: the body is the
    // largest thing the exporter holds, not to be copied.
    let mut families: Vec<(String, Option<Series<'_>>, Option<MetricFamily>)> = [
        targets,
        info,
        execution_status,
        execution_created,
        execution_last,
        last_execution,
        poll_success,
        poll_last_success,
        failed_target,
        failed_omitted,
    ]
    .into_iter()
    .map(|series| (series.family.name.to_owned(), Some(series), None))
    .chain(
        extra
            .into_iter()
            .map(|family| (family.name().to_owned(), None, Some(family))),
    )
    .collect();
    families.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (_, series, own) in families {
        if let Some(series) = series {
            series.write_into(&mut out);
        }
        if let Some(family) = own {
            TextEncoder::new()
                .encode(std::slice::from_ref(&family), &mut out)
                .map_err(RenderError::Encode)?;
        }
    }
    Ok(out)
}

/// The series of one family, as borrowed label values (its own labels, then the place's)
/// and a value.
struct Series<'a> {
    family: &'static Family,
    names: Vec<&'static str>,
    rows: Vec<(Vec<&'a str>, f64)>,
}

impl<'a> Series<'a> {
    fn new(family: &'static Family, placed: bool) -> Self {
        Series {
            family,
            names: with_place_labels(family.labels, placed),
            rows: Vec::new(),
        }
    }

    fn set(&mut self, own: &[&'a str], place: &[&'a str], value: f64) {
        let values = own.iter().chain(place).copied().collect();
        self.rows.push((values, value));
    }

    /// Appends the family in the text format; nothing without series, as the crate leaves
    /// out an empty family.
    fn write_into(mut self, out: &mut Vec<u8>) {
        if self.rows.is_empty() {
            return;
        }
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_by_key(|&i| self.names[i]);
        for (values, _) in &mut self.rows {
            *values = order.iter().map(|&i| values[i]).collect();
        }
        // Stable: of two series with the same labels, the later one set wins, as a second
        // `set` of a gauge would.
        self.rows.sort_by(|a, b| a.0.cmp(&b.0));
        let name = self.family.name;
        out.extend_from_slice(format!("# HELP {name} ").as_bytes());
        escape_into(out, self.family.help, false);
        out.extend_from_slice(format!("\n# TYPE {name} gauge\n").as_bytes());
        for (i, (values, value)) in self.rows.iter().enumerate() {
            if self.rows.get(i + 1).is_some_and(|next| next.0 == *values) {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            for (n, (&label, value)) in order
                .iter()
                .map(|&i| &self.names[i])
                .zip(values)
                .enumerate()
            {
                out.push(if n == 0 { b'{' } else { b',' });
                out.extend_from_slice(label.as_bytes());
                out.extend_from_slice(b"=\"");
                escape_into(out, value, true);
                out.push(b'"');
            }
            if !values.is_empty() {
                out.push(b'}');
            }
            out.push(b' ');
            out.extend_from_slice(value.to_string().as_bytes());
            out.push(b'\n');
        }
    }
}

/// An optional label value: what SSM left out is the empty string.
fn text(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or_default()
}

/// The text format's escaping: `\\` and newline always, `"` in label values.
fn escape_into(out: &mut Vec<u8>, text: &str, quotes: bool) {
    for b in text.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' if quotes => out.extend_from_slice(b"\\\""),
            b => out.push(b),
        }
    }
}

/// Seconds since the epoch, to the millisecond the API reports; times before 1970 are 0.
fn seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::snapshot::{AssociationState, ExecutionState, TargetCounts};
    use crate::ssm::{Association, Execution, Target};
    use crate::telemetry::PLACE_LABELS;

    fn at(seconds: f64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds)
    }

    fn counts(targets: &[(&str, &str, &str)]) -> TargetCounts {
        let mut c = TargetCounts::default();
        for (s, d, r) in targets {
            c.add(&Target {
                resource_id: None,
                status: Some((*s).into()),
                detailed_status: Some((*d).into()),
                resource_type: Some((*r).into()),
            });
        }
        c
    }

    /// The whole exposition for a snapshot of three associations: one mixed, one that never
    /// ran, one whose last poll failed after an earlier success, one never read.
    #[test]
    fn golden() {
        let snapshot = Snapshot {
            associations: vec![
                AssociationState {
                    association: Association {
                        association_id: "11111111-1111-1111-1111-111111111111".into(),
                        association_name: Some("patch-linux".into()),
                        document_name: Some("AWS-RunPatchBaseline".into()),
                        document_version: Some("$DEFAULT".into()),
                        association_version: Some("3".into()),
                        last_execution_date: Some(at(1_700_000_100.5)),
                        overview: None,
                    },
                    execution: Some(ExecutionState {
                        execution: Execution {
                            execution_id: "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa".into(),
                            status: Some("Failed".into()),
                            detailed_status: Some("Failed".into()),
                            created_time: Some(at(1_700_000_000.25)),
                            last_execution_date: None,
                            resource_count_by_status: None,
                        },
                        targets: counts(&[
                            ("Success", "Success", "ManagedInstance"),
                            ("Success", "Success", "ManagedInstance"),
                            ("Failed", "Failed", "ManagedInstance"),
                            ("TimedOut", "ExecutionTimedOut", "ManagedInstance"),
                            ("Quarantined \"x\"", "New\\Value", "AWS::EC2::Instance"),
                        ]),
                        filters: Vec::new(),
                        read_at: at(1_700_000_200.0),
                        failed: None,
                        pinned: false,
                    }),
                    poll_ok: true,
                    last_success: Some(at(1_700_000_200.0)),
                    error_kind: None,
                },
                AssociationState {
                    association: Association {
                        association_id: "22222222-2222-2222-2222-222222222222".into(),
                        association_name: None,
                        document_name: Some("AWS-GatherSoftwareInventory".into()),
                        document_version: None,
                        association_version: Some("1".into()),
                        last_execution_date: None,
                        overview: None,
                    },
                    execution: None,
                    poll_ok: true,
                    last_success: Some(at(1_700_000_200.0)),
                    error_kind: None,
                },
                AssociationState {
                    association: Association {
                        association_id: "33333333-3333-3333-3333-333333333333".into(),
                        association_name: Some("inventory".into()),
                        document_name: Some("AWS-GatherSoftwareInventory".into()),
                        document_version: Some("1".into()),
                        association_version: Some("2".into()),
                        last_execution_date: Some(at(1_699_000_000.0)),
                        overview: None,
                    },
                    execution: Some(ExecutionState {
                        execution: Execution {
                            execution_id: "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb".into(),
                            status: Some("Success".into()),
                            detailed_status: Some("Success".into()),
                            created_time: Some(at(1_699_000_000.0)),
                            last_execution_date: Some(at(1_699_000_060.125)),
                            resource_count_by_status: None,
                        },
                        targets: counts(&[("Success", "Success", "ManagedInstance")]),
                        filters: Vec::new(),
                        read_at: at(1_699_500_000.0),
                        failed: None,
                        pinned: false,
                    }),
                    poll_ok: false,
                    last_success: Some(at(1_699_500_000.0)),
                    error_kind: None,
                },
                AssociationState::unknown("44444444-4444-4444-4444-444444444444"),
            ],
            region_associations: None,
        };
        let got = String::from_utf8(render(&[(None, &snapshot)], Vec::new()).expect("renders"))
            .expect("utf-8");
        let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/snapshot.prom");
        // UPDATE_GOLDEN=1 rewrites the file; review its diff before committing it.
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(golden, &got).expect("write golden file");
        }
        let expected = std::fs::read_to_string(golden).expect("read golden file");
        assert_eq!(got, expected, "rendered:\n{got}");
    }

    /// Our writer against the prometheus crate's registry and encoder, for awkward values:
    /// quotes, backslashes, newlines, a value that is a prefix of another, characters that sort
    /// before `"`, non-ASCII, a repeated label set, fractional and large values.
    #[test]
    fn series_text_matches_the_prometheus_crate() {
        let rows: Vec<(Vec<&str>, f64)> = vec![
            (
                vec!["a", "x\"y", "", "r1", "111111111111", "us-east-1"],
                1.0,
            ),
            (vec!["a", "x", "", "r1", "111111111111", "us-east-1"], 2.5),
            (
                vec!["a b", "x", "\\", "r1", "111111111111", "us-east-1"],
                3.0,
            ),
            (
                vec!["a!", "line\nbreak", "é", "r1", "111111111111", "us-east-1"],
                1_700_000_000.125,
            ),
            (vec!["a,b", "x", "", "r2", "222222222222", "eu-west-1"], 0.0),
            (vec!["a", "x", "", "r1", "111111111111", "us-east-1"], 7.0),
            (vec!["", "", "", "", "", ""], 1e21),
        ];
        // The family's fifth label (resource_type) is left empty; the last two are the place.
        let registry = prometheus::Registry::new();
        let names: Vec<&str> = TARGETS
            .labels
            .iter()
            .chain(&PLACE_LABELS)
            .copied()
            .collect();
        let vec =
            prometheus::GaugeVec::new(prometheus::Opts::new(TARGETS.name, TARGETS.help), &names)
                .expect("valid");
        registry.register(Box::new(vec.clone())).expect("registers");
        let mut ours = Series::new(&TARGETS, true);
        for (values, value) in &rows {
            let mut all = values[..4].to_vec();
            all.push("");
            all.extend(&values[4..]);
            vec.with_label_values(&all).set(*value);
            ours.set(&all[..5], &all[5..], *value);
        }
        let mut theirs = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut theirs)
            .expect("encodes");
        let mut text = Vec::new();
        ours.write_into(&mut text);
        assert_eq!(
            String::from_utf8(text).expect("utf-8"),
            String::from_utf8(theirs).expect("utf-8")
        );
    }

    #[test]
    fn places_add_account_and_region_to_every_series() {
        let place = Place {
            account_id: "111111111111".into(),
            region: "eu-west-1".into(),
        };
        let mut snapshot = Snapshot::default();
        let mut a = AssociationState::unknown("11111111-1111-1111-1111-111111111111");
        a.poll_ok = true;
        a.last_success = Some(at(1_700_000_000.0));
        a.association.association_name = Some("patch".into());
        snapshot.associations.push(a);
        let got = render(&[(Some(&place), &snapshot)], Vec::new()).expect("renders");
        let series: Vec<String> = String::from_utf8(got)
            .expect("utf-8")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        assert_eq!(
            series,
            [
                r#"ssm_association_info{account_id="111111111111",association_id="11111111-1111-1111-1111-111111111111",association_name="patch",association_version="",document_name="",document_version="",region="eu-west-1"} 1"#,
                r#"ssm_association_last_successful_poll_timestamp_seconds{account_id="111111111111",association_id="11111111-1111-1111-1111-111111111111",region="eu-west-1"} 1700000000"#,
                r#"ssm_association_poll_success{account_id="111111111111",association_id="11111111-1111-1111-1111-111111111111",region="eu-west-1"} 1"#,
            ]
        );
    }

    #[test]
    fn empty_snapshot_renders_only_extra() {
        let got = render(&[(None, &Snapshot::default())], Vec::new()).expect("renders");
        assert_eq!(String::from_utf8(got).expect("utf-8"), "");
    }
}
