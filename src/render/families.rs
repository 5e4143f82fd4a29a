//! The snapshot's metric families, declared once: name, help and label names of each, in one
//! table that the text, the headers and the documentation all read.

/// One metric family of the snapshot: its name, help and label names, kept in one table so
/// the README's metric list and the code cannot drift apart silently.
pub(super) struct Family {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) labels: &'static [&'static str],
}

pub(super) const TARGETS: Family = Family {
    name: "ssm_association_targets",
    help: "Targets of the association's latest finished (or its pinned) execution, by status, detailed status and resource type, as of the last poll; a run that starts changes nothing here, one that finishes replaces them.",
    labels: &[
        "association_id",
        "status",
        "detailed_status",
        "resource_type",
    ],
};
const RUNNING_TARGETS: Family = Family {
    name: "ssm_association_running_targets",
    help: "Targets of the association's execution in progress, by status, detailed status and resource type, as of the last poll; only while one runs.",
    labels: &[
        "association_id",
        "status",
        "detailed_status",
        "resource_type",
    ],
};
const EXECUTION_INFO: Family = Family {
    name: "ssm_association_execution_info",
    help: "Always 1: the executions that ssm_association_targets (a finished status) and ssm_association_running_targets (any other) describe, as of the last poll.",
    labels: &[
        "association_id",
        "execution_id",
        "status",
        "detailed_status",
    ],
};
const INFO: Family = Family {
    name: "ssm_association_info",
    help: "Always 1: the association's name, document, versions and schedule, as of the last successful poll.",
    labels: &[
        "association_id",
        "association_name",
        "document_name",
        "document_version",
        "association_version",
        "schedule_expression",
    ],
};
const EXECUTION_CREATED: Family = Family {
    name: "ssm_association_execution_created_timestamp_seconds",
    help: "When the execution that ssm_association_targets describes started, in seconds since the epoch, as of the last poll.",
    labels: &["association_id"],
};
const RUNNING_CREATED: Family = Family {
    name: "ssm_association_running_execution_created_timestamp_seconds",
    help: "When the association's execution in progress started, in seconds since the epoch, as of the last poll; only while one runs.",
    labels: &["association_id"],
};
const LAST_EXECUTION: Family = Family {
    name: "ssm_association_last_execution_timestamp_seconds",
    help: "When the association last ran (its LastExecutionDate), in seconds since the epoch, as of the last poll.",
    labels: &["association_id"],
};
const NEXT_RUN: Family = Family {
    name: "ssm_association_next_run_timestamp_seconds",
    help: "When the association's schedule fires next after its last execution started (or, never run, after its creation), in seconds since the epoch; absent without a schedule the exporter can read, or for a one-time schedule that has run.",
    labels: &["association_id"],
};
const SCHEDULE_INTERVAL: Family = Family {
    name: "ssm_association_schedule_interval_seconds",
    help: "The period of the association's schedule: a rate's, or for cron the time from its next run to the one after; absent for one-time schedules.",
    labels: &["association_id"],
};
const LAST_SUCCESSFUL_EXECUTION: Family = Family {
    name: "ssm_association_last_successful_execution_timestamp_seconds",
    help: "When the association's newest successful execution was created, in seconds since the epoch; absent when none is known.",
    labels: &["association_id"],
};
const MAX_DURATION: Family = Family {
    name: "ssm_association_max_duration_seconds",
    help: "The association's Duration: how long a run may take before SSM cancels it; absent when not set.",
    labels: &["association_id"],
};
const POLL_SUCCESS: Family = Family {
    name: "ssm_association_poll_success",
    help: "1 if every SSM call about the association succeeded in the last poll, 0 if one failed and the other series of the association are from an earlier poll.",
    labels: &["association_id"],
};
const POLL_LAST_SUCCESS: Family = Family {
    name: "ssm_association_last_successful_poll_timestamp_seconds",
    help: "When the association was last polled successfully, in seconds since the epoch; only while its last poll failed (poll_success 0): the age of its other series. Otherwise they are as of its pair's last cycle.",
    labels: &["association_id"],
};
const FAILED_TARGET: Family = Family {
    name: "ssm_association_failed_target",
    help: "Always 1: a failed or timed-out target of the association's latest finished (or its pinned) execution, by resource, as of the last poll; only when failed_targets is enabled, at most failed_targets.limit per association.",
    labels: &[
        "association_id",
        "resource_id",
        "resource_type",
        "detailed_status",
    ],
};
const FAILED_OMITTED: Family = Family {
    name: "ssm_association_failed_targets_omitted",
    help: "Failed or timed-out targets of the association's latest finished (or its pinned) execution left unnamed by failed_targets.limit, as of the last poll.",
    labels: &["association_id"],
};
const UNPARSED_SCHEDULES: Family = Family {
    name: "ssm_association_exporter_unparsed_schedules",
    help: "Associations whose ScheduleExpression the exporter cannot read: they are polled as any other, with no next run.",
    labels: &[],
};

/// Every family the snapshot renders, in the order of their names: the order of the
/// exposition and of each [`Part`]'s chunks.
pub(super) const SNAPSHOT_FAMILIES: [&Family; 16] = [
    &EXECUTION_CREATED,
    &EXECUTION_INFO,
    &UNPARSED_SCHEDULES,
    &FAILED_TARGET,
    &FAILED_OMITTED,
    &INFO,
    &LAST_EXECUTION,
    &LAST_SUCCESSFUL_EXECUTION,
    &POLL_LAST_SUCCESS,
    &MAX_DURATION,
    &NEXT_RUN,
    &POLL_SUCCESS,
    &RUNNING_CREATED,
    &RUNNING_TARGETS,
    &SCHEDULE_INTERVAL,
    &TARGETS,
];

/// The names of the snapshot's families, for documentation and tests.
pub fn snapshot_family_names() -> impl Iterator<Item = &'static str> {
    SNAPSHOT_FAMILIES.iter().map(|f| f.name)
}
