//! Change detection: whether an association's earlier reading stands for this cycle, and
//! whether listing the region answers for the watched associations more cheaply than
//! describing each. Nothing here calls SSM.

use std::time::{Duration, SystemTime};

use crate::ids;
use crate::snapshot::{AssociationState, ExecutionState, Snapshot};
use crate::ssm::TargetFilter;
use crate::ssm::{Association, Execution, MAX_RESULTS, finished};

/// What this cycle wants of an association's counts, for deciding whether earlier ones stand.
pub(super) struct Wanted<'a> {
    pub(super) pinned: Option<&'a str>,
    pub(super) filters: &'a [TargetFilter],
    pub(super) failed_targets: Option<usize>,
    pub(super) now: SystemTime,
    pub(super) full_refresh_interval: Duration,
}

impl Wanted<'_> {
    /// Whether counts read earlier can stand for this cycle: those of a finished run, read with
    /// the same filters, naming limit and pin, young enough.
    pub(super) fn kept_by(&self, e: &ExecutionState) -> bool {
        finished(e.execution.status.as_deref())
            && e.filters == self.filters
            && e.failed.as_ref().map(|f| f.limit) == self.failed_targets
            && match self.pinned {
                Some(p) => e.pinned && ids::same(p, &e.execution.execution_id),
                None => !e.pinned,
            }
            && young(e.read_at, self.now, self.full_refresh_interval)
    }
}

/// Whether the association is as `prior` left it: no run since, nothing in flight, counts
/// young enough. Then it costs no call at all.
pub(super) fn settled(
    prior: &AssociationState,
    association: &Association,
    wanted: &Wanted<'_>,
) -> bool {
    // `prior.poll_ok` is not asked: a state kept through a failure is still the reading of
    // the last cycle that succeeded, so comparing it with this listing tells what changed
    // since then. Re-reading everything after one failed listing would multiply its calls.
    if prior.association.last_execution_date != association.last_execution_date
        || prior.association.overview != association.overview
    {
        return false;
    }
    if prior.running.is_some() {
        return false;
    }
    match &prior.finished {
        // Never ran, and still has not: no pin to look for, nothing to count. Without an
        // overview, a first run could not be told apart.
        None => {
            wanted.pinned.is_none()
                && association.last_execution_date.is_none()
                && association.overview.is_some()
        }
        // Without either signal a new run could not be told apart.
        Some(e) => {
            (association.last_execution_date.is_some() || association.overview.is_some())
                && wanted.kept_by(e)
        }
    }
}

/// Whether an execution's counts can be kept: the same finished run with the same summary.
pub(super) fn unchanged(
    known: &ExecutionState,
    execution: &Execution,
    wanted: &Wanted<'_>,
) -> bool {
    let before = &known.execution;
    before.execution_id == execution.execution_id
        && before.status == execution.status
        && before.detailed_status == execution.detailed_status
        && before.resource_count_by_status == execution.resource_count_by_status
        && wanted.kept_by(known)
}

/// Whether counts read at `read_at` are within the full-refresh interval. A read in the future
/// (the clock was set back) is not trusted.
pub(super) fn young(read_at: SystemTime, now: SystemTime, full_refresh_interval: Duration) -> bool {
    now.duration_since(read_at)
        .is_ok_and(|age| age < full_refresh_interval)
}

/// How long a refused listing is not tried again, in explicit mode: a role that may never
/// list costs one refused call a quarter of an hour.
pub const REFUSED_LISTING_RETRY: Duration = Duration::from_secs(15 * 60);

/// Listing the whole region costs ⌈associations/50⌉ calls and answers for every watched one
/// at once; describing costs one call each. With no count of the region yet, the first cycle
/// describes, and the second lists once to learn it. A listing refused less than
/// [`REFUSED_LISTING_RETRY`] before `now` is not tried.
pub(super) fn listing_is_cheaper(watched: usize, previous: &Snapshot, now: SystemTime) -> bool {
    let max = usize::try_from(MAX_RESULTS).unwrap_or(50);
    if previous.listing_refused.is_some_and(|at| {
        now.duration_since(at)
            .is_ok_and(|d| d < REFUSED_LISTING_RETRY)
    }) {
        return false;
    }
    match previous.region_associations {
        Some(total) => total.div_ceil(max).max(1) < watched,
        None => watched >= 2 && !previous.associations.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::AssociationState;

    #[test]
    fn listing_is_chosen_when_it_costs_fewer_calls() {
        let with = |total: Option<usize>, known: usize| Snapshot {
            associations: vec![AssociationState::unknown("a"); known],
            region_associations: total,
            listing_refused: None,
        };
        let now = SystemTime::UNIX_EPOCH;
        assert!(
            !listing_is_cheaper(5, &with(None, 0), now),
            "first cycle describes"
        );
        assert!(
            listing_is_cheaper(5, &with(None, 5), now),
            "second cycle learns the region"
        );
        assert!(
            !listing_is_cheaper(1, &with(None, 1), now),
            "one association never lists"
        );
        assert!(
            listing_is_cheaper(3, &with(Some(100), 3), now),
            "2 pages < 3 calls"
        );
        assert!(
            !listing_is_cheaper(2, &with(Some(100), 2), now),
            "2 pages = 2 calls"
        );
        assert!(
            !listing_is_cheaper(40, &with(Some(5000), 40), now),
            "100 pages > 40 calls"
        );
    }

    /// A refused listing is not tried for 15 minutes, then is, as any cheaper listing.
    #[test]
    fn a_refused_listing_is_tried_again_after_a_quarter_of_an_hour() {
        let refused = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let previous = Snapshot {
            associations: Vec::new(),
            region_associations: Some(3),
            listing_refused: Some(refused),
        };
        let after = |s: u64| refused + Duration::from_secs(s);
        assert!(!listing_is_cheaper(3, &previous, after(0)));
        assert!(!listing_is_cheaper(3, &previous, after(899)));
        assert!(listing_is_cheaper(3, &previous, after(900)));
        // Still only where it is cheaper.
        assert!(!listing_is_cheaper(1, &previous, after(900)));
        // A clock set back does not hold the listing off for good.
        assert!(listing_is_cheaper(
            3,
            &previous,
            refused - Duration::from_secs(60)
        ));
    }
}
