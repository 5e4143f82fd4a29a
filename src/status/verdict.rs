//! Whether an association is failed or overdue, as the page and the JSON judge it: the
//! judgement that orders both, marks the page's rows and fills the JSON's `failed` and
//! `overdue`. Nothing else in the status module decides either.

use std::time::SystemTime;

use crate::snapshot::{AssociationState, Timing};
use crate::ssm;

/// The status of the association's execution, if it ran and SSM gave one.
pub(super) fn execution_status(a: &AssociationState) -> Option<&str> {
    a.finished
        .as_ref()
        .and_then(|e| e.execution.status.as_deref())
}

/// Its poll failed, or its execution's status is a failure.
pub(super) fn is_failed(a: &AssociationState) -> bool {
    !a.poll_ok || ssm::failed(execution_status(a))
}

pub(super) fn next_run(a: &AssociationState) -> Option<SystemTime> {
    match a.timing {
        Timing::Scheduled { next_run, .. } => next_run,
        Timing::Unscheduled | Timing::Unparsed => None,
    }
}

/// Its schedule's next run is before `now`.
pub(super) fn is_overdue(a: &AssociationState, now: SystemTime) -> bool {
    next_run(a).is_some_and(|t| t < now)
}
