//! Snapshots → Prometheus text exposition (format 0.0.4): each pair's series rendered once per
//! change of them into a [`Part`], and the parts [`join`]ed with the exporter's own families.
//! The snapshot's series are written directly, the exporter's own through the `prometheus`
//! crate, all in that crate's format. Output is deterministic: families by name; within a
//! family, pair after pair in the board's order, each pair's series by their labels.

mod families;
mod join;
mod text;

#[cfg(test)]
use prometheus::proto::MetricFamily;
#[cfg(test)]
use prometheus::{Encoder, TextEncoder};

#[cfg(test)]
use crate::config::Place;
#[cfg(test)]
use crate::snapshot::Snapshot;
#[cfg(test)]
use crate::telemetry::place_values;

pub use families::snapshot_family_names;
pub use join::{Headers, Joined, RenderError, join};
#[cfg(test)]
pub use text::gunzip;
pub use text::{Part, renders_same};
#[cfg(test)]
use text::{Series, collect, families, write_header_into};

/// Encodes the snapshots of the (account, region) pairs and `extra` families (the exporter's
/// own) as one exposition, all at once: the reference that [`join`]ed [`Part`]s must equal
/// byte for byte. Families by name; within a family, pair after pair in the order given,
/// and a pair's series by their labels, as the prometheus crate's encoder orders them. When
/// any pair has a place, every series also carries `account_id` and `region`, sorted among
/// its labels by name as the rest.
///
/// # Errors
///
/// [`RenderError`] if the prometheus crate refuses one of `extra`.
#[cfg(test)]
pub fn render(
    sources: &[(Option<&Place>, &Snapshot)],
    extra: Vec<MetricFamily>,
) -> Result<Vec<u8>, RenderError> {
    let placed = sources.iter().any(|(place, _)| place.is_some());
    let places: Vec<Vec<&str>> = sources
        .iter()
        .map(|(place, _)| place_values(placed, *place))
        .collect();
    let mut families = families(placed);
    for (slot, ((_, snapshot), place)) in sources.iter().zip(&places).enumerate() {
        collect(&mut families, slot, place, snapshot);
    }
    let mut all: Vec<(String, Option<Series<'_>>, Option<MetricFamily>)> = families
        .into_iter()
        .map(|series| (series.family.name.to_owned(), Some(series), None))
        .chain(
            extra
                .into_iter()
                .map(|family| (family.name().to_owned(), None, Some(family))),
        )
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (_, series, own) in all {
        if let Some(series) = series
            && !series.rows.is_empty()
        {
            write_header_into(&mut out, series.family);
            series.write_series_into(&mut out);
        }
        if let Some(family) = own {
            TextEncoder::new()
                .encode(std::slice::from_ref(&family), &mut out)
                .map_err(RenderError::Encode)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::snapshot::{AssociationState, ExecutionState, LastSuccess, TargetCounts, Timing};
    use crate::ssm::{Association, Execution, ScheduleFields, Target};

    pub(super) fn at(seconds: f64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds)
    }

    pub(super) fn counts(targets: &[(&str, &str, &str)]) -> TargetCounts {
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

    /// The whole exposition for a snapshot of four associations: one whose next run has
    /// started beside its last finished, failed one, with a schedule and a duration; one that
    /// never ran, with a schedule that does not parse; one whose last poll failed after an
    /// earlier success; one never read.
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
                        schedule: ScheduleFields {
                            expression: Some("rate(1 hour)".into()),
                            duration_hours: Some(2),
                            ..ScheduleFields::default()
                        },
                        ..Association::default()
                    },
                    finished: Some(Arc::new(ExecutionState {
                        execution: Execution {
                            execution_id: "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa".into(),
                            status: Some("Failed".into()),
                            detailed_status: Some("Failed".into()),
                            created_time: Some(at(1_700_000_000.25)),
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
                    })),
                    // The next run has started: its counts beside the last finished one's.
                    running: Some(Arc::new(ExecutionState {
                        execution: Execution {
                            execution_id: "cccccccc-cccc-cccc-cccc-cccccccccccc".into(),
                            status: Some("InProgress".into()),
                            detailed_status: Some("InProgress".into()),
                            created_time: Some(at(1_700_003_600.0)),
                            resource_count_by_status: None,
                        },
                        targets: counts(&[
                            ("Success", "Success", "ManagedInstance"),
                            ("InProgress", "InProgress", "ManagedInstance"),
                            ("Pending", "Pending", "ManagedInstance"),
                        ]),
                        filters: Vec::new(),
                        read_at: at(1_700_003_700.0),
                        failed: None,
                        pinned: false,
                    })),
                    last_successful_execution: LastSuccess::At(at(1_699_996_400.0)),
                    timing: Timing::Scheduled {
                        next_run: Some(at(1_700_007_200.0)),
                        interval: Some(Duration::from_secs(3600)),
                    },
                    poll_ok: true,
                    last_good_poll: Some(at(1_700_003_700.0)),
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
                        schedule: ScheduleFields {
                            expression: Some("cron(every \"day\")".into()),
                            ..ScheduleFields::default()
                        },
                        ..Association::default()
                    },
                    finished: None,
                    running: None,
                    last_successful_execution: LastSuccess::None,
                    timing: Timing::Unparsed,
                    poll_ok: true,
                    last_good_poll: Some(at(1_700_000_200.0)),
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
                        ..Association::default()
                    },
                    finished: Some(Arc::new(ExecutionState {
                        execution: Execution {
                            execution_id: "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb".into(),
                            status: Some("Success".into()),
                            detailed_status: Some("Success".into()),
                            created_time: Some(at(1_699_000_000.0)),
                            resource_count_by_status: None,
                        },
                        targets: counts(&[("Success", "Success", "ManagedInstance")]),
                        filters: Vec::new(),
                        read_at: at(1_699_500_000.0),
                        failed: None,
                        pinned: false,
                    })),
                    running: None,
                    last_successful_execution: LastSuccess::Unknown,
                    timing: Timing::Unscheduled,
                    poll_ok: false,
                    last_good_poll: Some(at(1_699_500_000.0)),
                    error_kind: None,
                },
                AssociationState::unknown("44444444-4444-4444-4444-444444444444"),
            ],
            region_associations: None,
            listing_refused: None,
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

    #[test]
    fn places_add_account_and_region_to_every_series() {
        let place = Place {
            account_id: "111111111111".into(),
            region: "eu-west-1".into(),
        };
        let mut snapshot = Snapshot::default();
        let mut a = AssociationState::unknown("11111111-1111-1111-1111-111111111111");
        a.poll_ok = true;
        a.last_good_poll = Some(at(1_700_000_000.0));
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
                r#"ssm_association_exporter_unparsed_schedules{account_id="111111111111",region="eu-west-1"} 0"#,
                r#"ssm_association_info{account_id="111111111111",association_id="11111111-1111-1111-1111-111111111111",association_name="patch",association_version="",document_name="",document_version="",region="eu-west-1",schedule_expression=""} 1"#,
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
