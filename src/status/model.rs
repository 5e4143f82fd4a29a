//! The JSON's shapes (docs/status-api.md) and how each is made from what the board holds:
//! the head, a pair, a cycle, an association and its executions. Only these types are
//! serialised; nothing here writes HTML or chooses rows.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use super::verdict::{is_failed, is_overdue, next_run};
use crate::board::{PairPost, Published};
use crate::snapshot::{AssociationState, ExecutionState, Timing};
use crate::ssm;
use crate::telemetry::CycleOutcome;
use crate::telemetry::EventsHealth;
/// The page's times in the JSON's unit; `status/mod.rs` takes it from here.
pub(super) use crate::timestamp::unix;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Build {
    pub version: &'static str,
    pub rustc: &'static str,
}

/// What the JSON has before its associations (docs/status-api.md), and the page's head shows.
/// The fields and their order are the document's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Head {
    pub(super) build: Build,
    /// When the answer was made: ages are measured to this moment.
    pub(super) rendered_unix: f64,
    pub(super) generation: u64,
    /// The running configuration as `--config.check` prints it.
    pub(super) config: String,
    pub(super) ready: bool,
    /// `None` when events are off.
    pub(super) events: Option<EventsStatus>,
    pub(super) pairs: Vec<PairStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventsStatus {
    /// Whether the last receive from the queue succeeded; `None` before the first.
    pub queue_up: Option<bool>,
    /// Events read, by outcome.
    pub received: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairStatus {
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub cycles: u64,
    pub targeted_polls: u64,
    pub associations: usize,
    pub last_cycle: Option<CycleStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CycleStatus {
    pub finished_unix: f64,
    pub duration_seconds: f64,
    pub api_calls: usize,
    pub throttled_calls: usize,
    pub failures: usize,
    /// `success` when every call succeeded, else `failure`.
    pub outcome: &'static str,
    pub error_kind: Option<&'static str>,
}

/// One association as the JSON has it, made for one row, view or batch and dropped after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssociationStatus {
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub association_id: String,
    pub name: Option<String>,
    pub document_name: Option<String>,
    /// `None` when it has no schedule (it runs only when created or updated).
    pub schedule: Option<ScheduleStatus>,
    /// The latest finished (or pinned) execution; `None` when none finished.
    pub execution: Option<ExecutionStatus>,
    /// The execution in progress; `None` while none runs.
    pub running: Option<ExecutionStatus>,
    /// Targets of the execution by status, summed over detailed status and resource type.
    pub targets_by_status: BTreeMap<String, u64>,
    /// `None` unless the configuration names failed targets.
    pub failed_targets: Option<FailedTargetsStatus>,
    /// When the newest execution started: what the next run counts from.
    pub last_run_unix: Option<f64>,
    pub next_run_unix: Option<f64>,
    /// The next run is before `rendered_unix`: the schedule should have fired, and no run
    /// since is known. No grace: the alert adds its own.
    pub overdue: bool,
    pub schedule_interval_seconds: Option<f64>,
    pub last_successful_execution_unix: Option<f64>,
    pub poll_success: bool,
    pub error_kind: Option<&'static str>,
    pub last_success_unix: Option<f64>,
    /// Seconds from the last successful poll to `rendered_unix`.
    pub data_age_seconds: Option<f64>,
    /// Its poll failed, or its execution's status is a failure: listed first.
    pub failed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionStatus {
    pub execution_id: String,
    pub pinned: bool,
    pub status: Option<String>,
    pub detailed_status: Option<String>,
    pub created_unix: Option<f64>,
    pub targets: Vec<TargetCountStatus>,
    /// Targets in a final status ([`ssm::finished`]): of all its targets, those done.
    pub targets_done: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleStatus {
    pub expression: String,
    pub offset_days: Option<u8>,
    pub duration_hours: Option<u8>,
    pub apply_only_at_cron_interval: Option<bool>,
    /// Whether the exporter could read the expression: without, there is no next run.
    pub parsed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetCountStatus {
    pub status: String,
    pub detailed_status: String,
    pub resource_type: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedTargetsStatus {
    pub named: Vec<FailedTargetStatus>,
    /// Failed targets beyond the configured limit, not named.
    pub omitted: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedTargetStatus {
    pub resource_id: String,
    pub resource_type: String,
    pub detailed_status: String,
}

impl Head {
    pub(super) fn of(source: &Published, now: SystemTime, build: Build) -> Head {
        let posts = &source.posts;
        Head {
            build,
            rendered_unix: unix(now),
            generation: posts.generation(),
            config: posts.summary().to_owned(),
            ready: posts.ready(),
            events: source.events.as_ref().map(events_status),
            pairs: posts.pairs().iter().map(pair_status).collect(),
        }
    }
}

fn pair_status(posted: &PairPost) -> PairStatus {
    PairStatus {
        account_id: posted.place.as_ref().map(|p| p.account_id.clone()),
        region: posted.place.as_ref().map(|p| p.region.clone()),
        cycles: posted.cycles,
        targeted_polls: posted.targeted,
        associations: posted.snapshot.associations.len(),
        last_cycle: posted.last_cycle.as_ref().map(cycle_status),
    }
}

pub(super) fn cycle_status(c: &CycleOutcome) -> CycleStatus {
    CycleStatus {
        finished_unix: unix(c.finished),
        duration_seconds: c.duration.as_secs_f64(),
        api_calls: c.calls,
        throttled_calls: c.throttled,
        failures: c.failures,
        outcome: if c.ok() { "success" } else { "failure" },
        error_kind: c.error_kind,
    }
}

/// When its newest execution started, as the next run is counted from: a pinned execution is
/// not the newest, so then (and when the execution gave no time) the association's own
/// `LastExecutionDate`.
fn last_run(a: &AssociationState) -> Option<SystemTime> {
    a.newest()
        .filter(|e| !e.pinned)
        .and_then(|e| e.execution.created_time)
        .or(a.association.last_execution_date)
}

fn execution_of(e: &ExecutionState) -> ExecutionStatus {
    // The target keys' fields are read as `&str`, whatever string type the snapshot keeps.
    let targets: Vec<TargetCountStatus> = e
        .targets
        .iter()
        .map(|(k, count)| TargetCountStatus {
            status: k.status.to_string(),
            detailed_status: k.detailed_status.to_string(),
            resource_type: k.resource_type.to_string(),
            count,
        })
        .collect();
    ExecutionStatus {
        execution_id: e.execution.execution_id.clone(),
        pinned: e.pinned,
        status: e.execution.status.as_deref().map(str::to_owned),
        detailed_status: e.execution.detailed_status.as_deref().map(str::to_owned),
        created_unix: e.execution.created_time.map(unix),
        targets_done: targets
            .iter()
            .filter(|t| ssm::finished(Some(&t.status)))
            .map(|t| t.count)
            .sum(),
        targets,
    }
}

/// An execution's targets by status, summed over detailed status and resource type.
pub(super) fn by_status(e: &ExecutionStatus) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for t in &e.targets {
        *counts.entry(t.status.clone()).or_insert(0) += t.count;
    }
    counts
}

pub(super) fn association_status(
    a: &AssociationState,
    account_id: Option<String>,
    region: Option<String>,
    now: SystemTime,
) -> AssociationStatus {
    let execution = a.finished.as_deref().map(execution_of);
    let targets_by_status = execution.as_ref().map(by_status).unwrap_or_default();
    let fields = &a.association.schedule;
    let schedule = fields.expression.as_ref().map(|expression| ScheduleStatus {
        expression: expression.clone(),
        offset_days: fields.offset_days,
        duration_hours: fields.duration_hours,
        apply_only_at_cron_interval: fields.apply_only_at_cron_interval,
        parsed: a.timing != Timing::Unparsed,
    });
    let interval = match a.timing {
        Timing::Scheduled { interval, .. } => interval,
        Timing::Unscheduled | Timing::Unparsed => None,
    };
    let failed_targets = a
        .finished
        .as_ref()
        .and_then(|e| e.failed.as_ref())
        .map(|f| FailedTargetsStatus {
            named: f
                .iter()
                .map(|(id, t)| FailedTargetStatus {
                    resource_id: id.clone(),
                    resource_type: t.resource_type.clone(),
                    detailed_status: t.detailed_status.clone(),
                })
                .collect(),
            omitted: f.omitted,
        });
    AssociationStatus {
        account_id,
        region,
        association_id: a.id().to_owned(),
        name: a.association.association_name.clone(),
        document_name: a.association.document_name.clone(),
        schedule,
        execution,
        running: a.running.as_deref().map(execution_of),
        targets_by_status,
        failed_targets,
        last_run_unix: last_run(a).map(unix),
        next_run_unix: next_run(a).map(unix),
        overdue: is_overdue(a, now),
        schedule_interval_seconds: interval.map(|d| d.as_secs_f64()),
        last_successful_execution_unix: a.last_successful_execution.time().map(unix),
        poll_success: a.poll_ok,
        error_kind: a.error_kind,
        last_success_unix: a.last_good_poll.map(unix),
        data_age_seconds: a
            .last_good_poll
            .map(|t| now.duration_since(t).unwrap_or_default().as_secs_f64()),
        failed: is_failed(a),
    }
}

/// The events' health as the JSON has it.
pub(super) fn events_status(health: &EventsHealth) -> EventsStatus {
    EventsStatus {
        queue_up: health.queue_up,
        received: health.received.iter().copied().collect(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::status::tests::{NOW, fixture, json};

    /// Each value replaced by its JSON type; an array by the shape of its first element.
    fn shape(v: &Value) -> Value {
        match v {
            Value::Null => json!("null"),
            Value::Bool(_) => json!("bool"),
            Value::Number(_) => json!("number"),
            Value::String(_) => json!("string"),
            Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
            }
        }
    }

    /// The schema of docs/status-api.md, field by field: names and types.
    #[test]
    fn the_json_has_the_documented_schema() {
        let value: Value = serde_json::from_slice(&json(&fixture())).expect("JSON");
        let mut failed = value["associations"][0].clone();
        let execution = json!({
            "execution_id": "string",
            "pinned": "bool",
            "status": "string",
            "detailed_status": "string",
            "created_unix": "number",
            "targets": [{
                "status": "string",
                "detailed_status": "string",
                "resource_type": "string",
                "count": "number"
            }],
            "targets_done": "number"
        });
        assert_eq!(
            shape(&failed),
            json!({
                "account_id": "string",
                "region": "string",
                "association_id": "string",
                "name": "string",
                "document_name": "string",
                "schedule": {
                    "expression": "string",
                    "offset_days": "number",
                    "duration_hours": "number",
                    "apply_only_at_cron_interval": "bool",
                    "parsed": "bool"
                },
                "execution": execution,
                "running": execution,
                "targets_by_status": {"Failed": "number", "Success": "number", "TimedOut": "number"},
                "failed_targets": {
                    "named": [{
                        "resource_id": "string",
                        "resource_type": "string",
                        "detailed_status": "string"
                    }],
                    "omitted": "number"
                },
                "last_run_unix": "number",
                "next_run_unix": "number",
                "overdue": "bool",
                "schedule_interval_seconds": "number",
                "last_successful_execution_unix": "number",
                "poll_success": "bool",
                "error_kind": "null",
                "last_success_unix": "number",
                "data_age_seconds": "number",
                "failed": "bool"
            })
        );
        assert_eq!(
            failed["targets_by_status"],
            json!({"Failed": 2, "Success": 1, "TimedOut": 1})
        );
        assert_eq!(
            failed["failed_targets"],
            json!({"named": [
                {"resource_id": "i-04", "resource_type": "ManagedInstance", "detailed_status": "DeliveryTimedOut"},
                {"resource_id": "i-05", "resource_type": "ManagedInstance", "detailed_status": "Failed"}
            ], "omitted": 1})
        );
        assert_eq!(failed["data_age_seconds"], json!(30.0));
        assert_eq!(
            failed["schedule"],
            json!({
                "expression": "cron(0 22 ? * SUN *)",
                "offset_days": 2,
                "duration_hours": 4,
                "apply_only_at_cron_interval": true,
                "parsed": true
            })
        );
        assert_eq!(
            (
                &failed["execution"]["targets_done"],
                &failed["running"]["status"],
                &failed["running"]["targets_done"]
            ),
            (&json!(4), &json!("InProgress"), &json!(2))
        );
        assert_eq!(
            (
                &failed["last_run_unix"],
                &failed["next_run_unix"],
                &failed["overdue"],
                &failed["schedule_interval_seconds"],
                &failed["last_successful_execution_unix"]
            ),
            (
                &json!(1_699_999_200.0),
                &json!(1_700_604_000.0),
                &json!(false),
                &json!(604_800.0),
                &json!(1_698_789_600.0)
            )
        );
        failed = value["associations"][1].clone();
        assert_eq!(
            (
                &failed["execution"],
                &failed["failed_targets"],
                &failed["error_kind"]
            ),
            (&json!(null), &json!(null), &json!("timeout"))
        );
        for key in [
            "schedule",
            "running",
            "last_run_unix",
            "next_run_unix",
            "schedule_interval_seconds",
            "last_successful_execution_unix",
        ] {
            assert_eq!(failed[key], json!(null), "{key}");
        }
        assert_eq!(failed["overdue"], json!(false));
        let overdue = &value["associations"][3];
        assert_eq!(
            (&overdue["next_run_unix"], &overdue["overdue"]),
            (&json!(NOW - 5_400.0), &json!(true))
        );
        let unparsed = &value["associations"][4];
        assert_eq!(
            (&unparsed["schedule"]["parsed"], &unparsed["next_run_unix"]),
            (&json!(false), &json!(null))
        );
        let mut top = value.clone();
        for key in ["pairs", "associations"] {
            top[key] = json!([]);
        }
        assert_eq!(
            shape(&top),
            json!({
                "build": {"version": "string", "rustc": "string"},
                "rendered_unix": "number",
                "generation": "number",
                "config": "string",
                "ready": "bool",
                "events": "null",
                "pairs": [],
                "associations": []
            })
        );
        assert_eq!(
            shape(&value["pairs"][1]),
            json!({
                "account_id": "string",
                "region": "string",
                "cycles": "number",
                "targeted_polls": "number",
                "associations": "number",
                "last_cycle": {
                    "finished_unix": "number",
                    "duration_seconds": "number",
                    "api_calls": "number",
                    "throttled_calls": "number",
                    "failures": "number",
                    "outcome": "string",
                    "error_kind": "string"
                }
            })
        );
        assert_eq!(
            value["pairs"][1]["last_cycle"],
            json!({
                "finished_unix": NOW - 90.0,
                "duration_seconds": 30.0,
                "api_calls": 12,
                "throttled_calls": 4,
                "failures": 2,
                "outcome": "failure",
                "error_kind": "throttled"
            })
        );
        let events = EventsStatus {
            queue_up: Some(false),
            received: [("applied", 3)].into_iter().collect(),
        };
        assert_eq!(
            serde_json::to_value(events).expect("JSON"),
            json!({"queue_up": false, "received": {"applied": 3}})
        );
    }
}
