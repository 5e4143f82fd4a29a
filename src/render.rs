//! Snapshot → Prometheus text exposition (format 0.0.4), built once per cycle with the
//! `prometheus` crate. Output is deterministic: families by name, series by labels.

use std::time::SystemTime;

use prometheus::proto::MetricFamily;
use prometheus::{Encoder, GaugeVec, Opts, Registry, TextEncoder};

use crate::config::Place;
use crate::snapshot::Snapshot;
use crate::telemetry::PLACE_LABELS;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

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
    #[error("cannot build metric {name}: {source}")]
    Metric {
        name: &'static str,
        #[source]
        source: prometheus::Error,
    },
    #[error("cannot encode metrics: {0}")]
    Encode(#[source] prometheus::Error),
}

/// Encodes the snapshot's series and `extra` families (the exporter's own) as one exposition.
///
/// # Errors
///
/// [`RenderError`] if the prometheus crate refuses a family; with our static names it does not.
pub fn render(snapshot: &Snapshot, extra: Vec<MetricFamily>) -> Result<Vec<u8>, RenderError> {
    render_places(&[(None, snapshot)], extra)
}

/// Encodes the snapshots of several (account, region) pairs as one exposition. When any pair
/// has a place, every series carries `account_id` and `region` after its own labels.
///
/// # Errors
///
/// [`RenderError`] if the prometheus crate refuses a family; with our static names it does not.
pub fn render_places(
    sources: &[(Option<&Place>, &Snapshot)],
    extra: Vec<MetricFamily>,
) -> Result<Vec<u8>, RenderError> {
    let placed = sources.iter().any(|(place, _)| place.is_some());
    let registry = Registry::new();
    let gauge = |family: &Family| -> Result<Gauges, RenderError> {
        let metric = |source| RenderError::Metric {
            name: family.name,
            source,
        };
        let labels: Vec<&str> = family
            .labels
            .iter()
            .chain(if placed { &PLACE_LABELS[..] } else { &[] })
            .copied()
            .collect();
        let vec = GaugeVec::new(Opts::new(family.name, family.help), &labels).map_err(metric)?;
        registry.register(Box::new(vec.clone())).map_err(metric)?;
        Ok(Gauges(vec))
    };
    let targets = gauge(&TARGETS)?;
    let info = gauge(&INFO)?;
    let execution_status = gauge(&EXECUTION_STATUS)?;
    let execution_created = gauge(&EXECUTION_CREATED)?;
    let execution_last = gauge(&EXECUTION_LAST)?;
    let last_execution = gauge(&LAST_EXECUTION)?;
    let poll_success = gauge(&POLL_SUCCESS)?;
    let poll_last_success = gauge(&POLL_LAST_SUCCESS)?;
    let failed_target = gauge(&FAILED_TARGET)?;
    let failed_omitted = gauge(&FAILED_OMITTED)?;

    for (place, snapshot) in sources {
        let place: Vec<&str> = match (placed, place) {
            (false, _) => Vec::new(),
            (true, Some(p)) => vec![p.account_id.as_str(), p.region.as_str()],
            (true, None) => vec!["", ""],
        };
        let place = place.as_slice();
        for a in &snapshot.associations {
            let id = a.association_id.as_str();
            let text = |v: &Option<String>| v.clone().unwrap_or_default();
            poll_success.set(&[id], place, if a.poll_ok { 1.0 } else { 0.0 });
            if let Some(t) = a.last_success {
                poll_last_success.set(&[id], place, seconds(t));
            }
            if a.last_success.is_none() {
                // Never read: there is nothing true to say about it beyond the failure.
                continue;
            }
            info.set(
                &[
                    id,
                    &text(&a.name),
                    &text(&a.document_name),
                    &text(&a.document_version),
                    &text(&a.association_version),
                ],
                place,
                1.0,
            );
            if let Some(t) = a.last_execution_date {
                last_execution.set(&[id], place, seconds(t));
            }
            let Some(e) = &a.execution else { continue };
            let exec = e.execution_id.as_str();
            execution_status.set(
                &[id, exec, &text(&e.status), &text(&e.detailed_status)],
                place,
                1.0,
            );
            if let Some(t) = e.created_time {
                execution_created.set(&[id, exec], place, seconds(t));
            }
            if let Some(t) = e.last_execution_date {
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

    let mut families = registry.gather();
    families.extend(extra);
    families.sort_by(|a, b| a.name().cmp(b.name()));
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&families, &mut out)
        .map_err(RenderError::Encode)?;
    Ok(out)
}

/// A family of the snapshot, set with its own label values followed by the pair's.
struct Gauges(GaugeVec);

impl Gauges {
    fn set(&self, own: &[&str], place: &[&str], value: f64) {
        let labels: Vec<&str> = own.iter().chain(place).copied().collect();
        self.0.with_label_values(&labels).set(value);
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
    use crate::ssm::Target;

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
                    association_id: "11111111-1111-1111-1111-111111111111".into(),
                    name: Some("patch-linux".into()),
                    document_name: Some("AWS-RunPatchBaseline".into()),
                    document_version: Some("$DEFAULT".into()),
                    association_version: Some("3".into()),
                    last_execution_date: Some(at(1_700_000_100.5)),
                    overview: None,
                    execution: Some(ExecutionState {
                        execution_id: "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa".into(),
                        status: Some("Failed".into()),
                        detailed_status: Some("Failed".into()),
                        created_time: Some(at(1_700_000_000.25)),
                        last_execution_date: None,
                        targets: counts(&[
                            ("Success", "Success", "ManagedInstance"),
                            ("Success", "Success", "ManagedInstance"),
                            ("Failed", "Failed", "ManagedInstance"),
                            ("TimedOut", "ExecutionTimedOut", "ManagedInstance"),
                            ("Quarantined \"x\"", "New\\Value", "AWS::EC2::Instance"),
                        ]),
                        resource_count_by_status: None,
                        filters: Vec::new(),
                        read_at: at(1_700_000_200.0),
                        failed: None,
                        pinned: false,
                    }),
                    poll_ok: true,
                    last_success: Some(at(1_700_000_200.0)),
                },
                AssociationState {
                    association_id: "22222222-2222-2222-2222-222222222222".into(),
                    name: None,
                    document_name: Some("AWS-GatherSoftwareInventory".into()),
                    document_version: None,
                    association_version: Some("1".into()),
                    last_execution_date: None,
                    overview: None,
                    execution: None,
                    poll_ok: true,
                    last_success: Some(at(1_700_000_200.0)),
                },
                AssociationState {
                    association_id: "33333333-3333-3333-3333-333333333333".into(),
                    name: Some("inventory".into()),
                    document_name: Some("AWS-GatherSoftwareInventory".into()),
                    document_version: Some("1".into()),
                    association_version: Some("2".into()),
                    last_execution_date: Some(at(1_699_000_000.0)),
                    overview: None,
                    execution: Some(ExecutionState {
                        execution_id: "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb".into(),
                        status: Some("Success".into()),
                        detailed_status: Some("Success".into()),
                        created_time: Some(at(1_699_000_000.0)),
                        last_execution_date: Some(at(1_699_000_060.125)),
                        targets: counts(&[("Success", "Success", "ManagedInstance")]),
                        resource_count_by_status: None,
                        filters: Vec::new(),
                        read_at: at(1_699_500_000.0),
                        failed: None,
                        pinned: false,
                    }),
                    poll_ok: false,
                    last_success: Some(at(1_699_500_000.0)),
                },
                AssociationState::unknown("44444444-4444-4444-4444-444444444444"),
            ],
            region_associations: None,
        };
        let got =
            String::from_utf8(render(&snapshot, Vec::new()).expect("renders")).expect("utf-8");
        let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/snapshot.prom");
        // UPDATE_GOLDEN=1 rewrites the file; review its diff before committing it.
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(golden, &got).expect("write golden file");
        }
        let expected = std::fs::read_to_string(golden).expect("read golden file");
        assert_eq!(got, expected, "rendered:\n{got}");
    }

    #[test]
    fn empty_snapshot_renders_only_extra() {
        let got = render(&Snapshot::default(), Vec::new()).expect("renders");
        assert_eq!(String::from_utf8(got).expect("utf-8"), "");
    }
}
