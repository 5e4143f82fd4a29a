//! One poll cycle: which associations → their latest (or pinned) execution → its targets,
//! counted page by page. What has not changed since the previous snapshot is not read again;
//! targets are never held beyond their page; a failed association keeps its last values.

mod change;
mod executions;
mod paging;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::config::{Config, Discovery, Place, Shard, Watch, WatchedAssociation};
use crate::ids;
use crate::limit::Limiter;
use crate::schedule::{self, Schedule};
use crate::snapshot::{
    AssociationState, ExecutionState, FailedTargets, LastSuccess, Snapshot, TargetCounts, Timing,
};
use crate::ssm::{
    Association, AssociationQuery, Execution, Operation, Page, Ssm, SsmError, TargetFilter,
};
use crate::telemetry::PairTelemetry;

pub use change::REFUSED_LISTING_RETRY;
use change::{Wanted, listing_is_cheaper, settled, unchanged};
use paging::{Step, Tokens};

/// What a cycle needs from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollSettings {
    pub watch: Watch,
    pub full_refresh_interval: Duration,
    pub cycle_timeout: Duration,
    /// Associations polled side by side.
    pub concurrency: usize,
    /// Name failed targets, at most this many per association; `None`: only count them.
    pub failed_targets: Option<usize>,
    /// Only the associations this replica owns are polled.
    pub shard: Shard,
}

impl PollSettings {
    /// The settings of one (account, region) pair: explicit associations are those placed in
    /// it; everything else is the same for every pair. Only what `shard` owns is polled.
    pub fn for_place(config: &Config, shard: Shard, place: Option<&Place>) -> Self {
        let watch = match &config.watch {
            Watch::Explicit(list) => Watch::Explicit(
                list.iter()
                    .filter(|a| a.place.as_ref() == place)
                    .cloned()
                    .collect(),
            ),
            Watch::Discover(d) => Watch::Discover(d.clone()),
        };
        PollSettings {
            watch,
            full_refresh_interval: config.full_refresh_interval,
            cycle_timeout: config.cycle_timeout,
            concurrency: config.api.max_in_flight,
            failed_targets: config.failed_targets,
            shard,
        }
    }
}

/// What a cycle produced: the next snapshot, how many associations (or listings) failed, and
/// how many API calls it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    pub snapshot: Snapshot,
    pub failures: usize,
    pub calls: usize,
    /// Calls SSM answered with throttling (after the SDK's retries).
    pub throttled: usize,
    /// The kind of the listing's error, else of the first failed association's by ID.
    pub error_kind: Option<&'static str>,
    /// Whether the cycle took (or tried to take) its associations from ListAssociations,
    /// rather than describing each.
    pub listed: bool,
}

/// Why one association (or the discovery listing) could not be read this cycle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed: {error}")]
pub struct CallError {
    pub operation: &'static str,
    #[source]
    pub error: SsmError,
}

impl CallError {
    fn is(&self, error: &SsmError) -> bool {
        self.error == *error
    }
}

/// Runs one cycle against `ssm` and returns the next snapshot.
///
/// Never fails as a whole: an association whose calls fail, or that the cycle timeout cuts
/// off, keeps its state from `previous` with `poll_ok` false; if the association listing
/// fails, every association of `previous` is kept that way.
pub async fn poll_once<S: Ssm>(
    ssm: &S,
    limiter: &Limiter,
    settings: &PollSettings,
    previous: &Snapshot,
    telemetry: &PairTelemetry,
) -> Cycle {
    let deadline = Instant::now() + settings.cycle_timeout;
    let poller = Poller::new(ssm, limiter, settings, telemetry);
    let plan = match within(
        deadline,
        poller.plan(&settings.watch, settings.shard, previous),
    )
    .await
    {
        Ok(plan) => plan,
        Err(e) => {
            warn!(error = %e, "listing associations failed; keeping every association's last values");
            let kind = e.error.kind();
            let associations = previous
                .associations
                .iter()
                .map(|a| kept(a, kind))
                .collect();
            return Cycle {
                snapshot: Snapshot {
                    associations,
                    region_associations: previous.region_associations,
                    listing_refused: previous.listing_refused,
                },
                // Only a listing can fail a plan: describing each is planned without a call.
                listed: true,
                failures: 1,
                calls: poller.calls.into_inner(),
                throttled: poller.throttled.into_inner(),
                error_kind: Some(kind),
            };
        }
    };

    let (states, failures) = poller
        .run(plan.jobs, previous, deadline, settings.concurrency)
        .await;
    Cycle {
        error_kind: first_error(&states),
        snapshot: Snapshot {
            associations: states,
            region_associations: plan.region_associations.or(previous.region_associations),
            listing_refused: plan.listing_refused,
        },
        listed: plan.listed,
        failures,
        calls: poller.calls.into_inner(),
        throttled: poller.throttled.into_inner(),
    }
}

/// Whether this pair may watch `association_id`, decided without a call: its shard owns it,
/// and an explicit list names it (in discovery mode one not seen yet may be new).
pub fn may_watch(settings: &PollSettings, association_id: &str) -> bool {
    settings.shard.owns(association_id)
        && match &settings.watch {
            Watch::Explicit(list) => list
                .iter()
                .any(|w| ids::same(w.association_id.as_str(), association_id)),
            Watch::Discover(_) => true,
        }
}

/// Polls only the associations `ids` names (those this pair may watch), each as a cycle
/// would, and returns `previous` with their states replaced: between cycles, when events say
/// they changed. No listing: each is described, then read as far as it changed.
pub async fn poll_some<S: Ssm>(
    ssm: &S,
    limiter: &Limiter,
    settings: &PollSettings,
    previous: &Snapshot,
    ids: &[String],
    telemetry: &PairTelemetry,
) -> Cycle {
    let deadline = Instant::now() + settings.cycle_timeout;
    let poller = Poller::new(ssm, limiter, settings, telemetry);
    let jobs: Vec<Job> = ids
        .iter()
        .filter(|id| settings.shard.owns(id))
        .filter_map(|id| match &settings.watch {
            Watch::Explicit(list) => list
                .iter()
                .find(|w| ids::same(w.association_id.as_str(), id))
                .map(Job::watched),
            Watch::Discover(discovery) => Some(Job {
                // The spelling its series already carry, if it has any.
                association_id: previous
                    .associations
                    .iter()
                    .find(|a| ids::same(a.id(), id))
                    .map_or_else(|| id.clone(), |a| a.id().to_owned()),
                listed: None,
                pinned: None,
                filters: Vec::new(),
                narrowing: Some(discovery.clone()),
            }),
        })
        .collect();
    let polled: Vec<String> = jobs.iter().map(|j| j.association_id.clone()).collect();
    let (fresh, failures) = poller
        .run(jobs, previous, deadline, settings.concurrency)
        .await;
    let mut states: Vec<AssociationState> = previous
        .associations
        .iter()
        .filter(|a| !polled.iter().any(|id| id == a.id()))
        .cloned()
        .chain(fresh)
        .collect();
    states.sort_by(|a, b| a.id().cmp(b.id()));
    Cycle {
        error_kind: first_error(&states),
        snapshot: Snapshot {
            associations: states,
            region_associations: previous.region_associations,
            listing_refused: previous.listing_refused,
        },
        listed: false,
        failures,
        calls: poller.calls.into_inner(),
        throttled: poller.throttled.into_inner(),
    }
}

/// Whether discovery with `narrowing` takes `association`.
fn discovered(narrowing: &Discovery, association: &Association) -> bool {
    !association.association_id.is_empty()
        && narrowing.name_prefix.as_ref().is_none_or(|prefix| {
            association
                .association_name
                .as_deref()
                .is_some_and(|n| n.starts_with(prefix.as_str()))
        })
        && narrowing
            .document_name
            .as_ref()
            .is_none_or(|d| association.document_name.as_ref() == Some(d))
}

/// `work`, or a timeout error once the cycle's deadline passes.
async fn within<T>(
    deadline: Instant,
    work: impl Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    tokio::time::timeout_at(deadline, work)
        .await
        .unwrap_or_else(|_| {
            Err(CallError {
                operation: "poll cycle",
                error: SsmError::Timeout("the cycle timeout passed".to_owned()),
            })
        })
}

/// The previous state of an association, marked as not freshly polled.
fn stale(previous: &Snapshot, association_id: &str, kind: &'static str) -> AssociationState {
    previous.get(association_id).map_or_else(
        || AssociationState {
            error_kind: Some(kind),
            ..AssociationState::unknown(association_id)
        },
        |state| kept(state, kind),
    )
}

/// A state kept from an earlier cycle: its values stand, its poll this cycle failed.
fn kept(state: &AssociationState, kind: &'static str) -> AssociationState {
    AssociationState {
        poll_ok: false,
        error_kind: Some(kind),
        ..state.clone()
    }
}

/// The error kind of the first association (by ID) whose poll failed this time.
fn first_error(states: &[AssociationState]) -> Option<&'static str> {
    states
        .iter()
        .filter(|a| !a.poll_ok)
        .find_map(|a| a.error_kind)
}

/// The associations to poll this cycle.
struct Plan {
    jobs: Vec<Job>,
    /// Set when this cycle listed every association of the region.
    region_associations: Option<usize>,
    /// When the listing was refused, while it is not tried again.
    listing_refused: Option<SystemTime>,
    /// Whether the associations come from a listing.
    listed: bool,
}

/// One association to poll. It owns its settings, so that the futures polling the jobs
/// borrow nothing but the poller.
struct Job {
    association_id: String,
    /// Its record, when a listing already brought it; otherwise it is described.
    listed: Option<Association>,
    pinned: Option<String>,
    filters: Vec<TargetFilter>,
    /// Discovery's narrowing, for an association no listing selected: one it does not take
    /// is left as it was.
    narrowing: Option<Discovery>,
}

impl Job {
    /// An association the configuration lists, to be described.
    fn watched(w: &WatchedAssociation) -> Job {
        Job {
            association_id: w.association_id.as_str().to_owned(),
            listed: None,
            pinned: w.execution_id.as_ref().map(|e| e.as_str().to_owned()),
            filters: w.filters.clone(),
            narrowing: None,
        }
    }
}

enum Outcome {
    Polled(Box<AssociationState>),
    /// The association does not exist (any more): its series go.
    Gone,
    /// Described, it is not one discovery takes: nothing more is read.
    Unwatched,
}

struct Poller<'a, S> {
    ssm: &'a S,
    limiter: &'a Limiter,
    telemetry: &'a PairTelemetry,
    calls: AtomicUsize,
    throttled: AtomicUsize,
    /// The cycle's start, for the age of counts.
    now: SystemTime,
    full_refresh_interval: Duration,
    failed_targets: Option<usize>,
}

impl<'a, S: Ssm> Poller<'a, S> {
    fn new(
        ssm: &'a S,
        limiter: &'a Limiter,
        settings: &PollSettings,
        telemetry: &'a PairTelemetry,
    ) -> Self {
        Poller {
            ssm,
            limiter,
            telemetry,
            calls: AtomicUsize::new(0),
            throttled: AtomicUsize::new(0),
            now: SystemTime::now(),
            full_refresh_interval: settings.full_refresh_interval,
            failed_targets: settings.failed_targets,
        }
    }

    /// Makes one call through the rate limit, counts it, and names it in its error.
    async fn call<T>(
        &self,
        operation: Operation,
        call: impl Future<Output = Result<T, SsmError>>,
    ) -> Result<T, CallError> {
        let result = self.limiter.run(call).await;
        self.calls.fetch_add(1, Ordering::Relaxed);
        if matches!(result, Err(SsmError::Throttled { .. })) {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
        self.telemetry.record_call(operation, &result);
        result.map_err(|error| CallError {
            operation: operation.as_str(),
            error,
        })
    }

    /// The associations to poll: listed or described, only those `shard` owns.
    async fn plan(
        &self,
        watch: &Watch,
        shard: Shard,
        previous: &Snapshot,
    ) -> Result<Plan, CallError> {
        match watch {
            Watch::Discover(discovery) => {
                let jobs = self
                    .list(discovery)
                    .await?
                    .into_iter()
                    .filter(|a| shard.owns(&a.association_id))
                    .map(|a| Job {
                        association_id: a.association_id.clone(),
                        listed: Some(a),
                        pinned: None,
                        filters: Vec::new(),
                        narrowing: None,
                    })
                    .collect();
                Ok(Plan {
                    jobs,
                    region_associations: None,
                    listing_refused: None,
                    listed: true,
                })
            }
            Watch::Explicit(list) => {
                let mut jobs: Vec<Job> = list
                    .iter()
                    .filter(|w| shard.owns(w.association_id.as_str()))
                    .map(Job::watched)
                    .collect();
                if !listing_is_cheaper(jobs.len(), previous, self.now) {
                    return Ok(Plan {
                        jobs,
                        region_associations: None,
                        listing_refused: previous.listing_refused,
                        listed: false,
                    });
                }
                let all = match self.list(&Discovery::default()).await {
                    Ok(all) => all,
                    // Explicit mode does not need the listing, and a role may not be allowed
                    // it: a refused listing turns to describing each association, until the
                    // listing is tried again (a refusal may pass: an expired token, a skewed
                    // clock).
                    Err(e) if matches!(e.error, SsmError::Rejected { .. }) => {
                        warn!(error = %e, retry_in_s = REFUSED_LISTING_RETRY.as_secs(), "listing associations was refused; describing each watched association instead until it is tried again");
                        return Ok(Plan {
                            jobs,
                            region_associations: previous.region_associations,
                            listing_refused: Some(self.now),
                            listed: false,
                        });
                    }
                    // Any other failure passes: describing each association now would cost
                    // more calls than the listing saves, in the cycle the API is struggling.
                    Err(e) => return Err(e),
                };
                let total = all.len();
                let mut by_id: std::collections::HashMap<String, Association> = all
                    .into_iter()
                    .map(|a| (ids::fold(&a.association_id), a))
                    .collect();
                // A watched association missing from a complete listing does not exist.
                jobs.retain_mut(|job| match by_id.remove(&job.association_id) {
                    Some(a) => {
                        job.listed = Some(a);
                        true
                    }
                    None => {
                        debug!(association_id = %job.association_id, "association does not exist; its series are dropped");
                        false
                    }
                });
                Ok(Plan {
                    jobs,
                    region_associations: Some(total),
                    listing_refused: None,
                    listed: true,
                })
            }
        }
    }

    /// Every association the discovery settings select, across all pages.
    async fn list(&self, discovery: &Discovery) -> Result<Vec<Association>, CallError> {
        let query = AssociationQuery {
            document_name: discovery.document_name.clone(),
        };
        let mut found = Vec::new();
        self.each_page(
            Operation::ListAssociations,
            |token| self.ssm.list_associations(&query, token),
            |step| {
                match step {
                    Step::Restart => found.clear(),
                    Step::Items(page) => {
                        found.extend(page.into_iter().filter(|a| discovered(discovery, a)));
                    }
                }
                ControlFlow::Continue(())
            },
        )
        .await?;
        Ok(found)
    }

    async fn poll(&self, job: Job, prior: Option<&AssociationState>) -> Result<Outcome, CallError> {
        // Whichever call says so, an association SSM does not have is gone: its series go.
        match self.read(job, prior).await {
            Ok(Some(state)) => Ok(Outcome::Polled(Box::new(state))),
            Ok(None) => Ok(Outcome::Unwatched),
            Err(e) if e.is(&SsmError::AssociationDoesNotExist) => Ok(Outcome::Gone),
            Err(e) => Err(e),
        }
    }

    /// Polls `jobs` side by side, `concurrency` at a time, until `deadline`; returns the
    /// states they yield, sorted by ID, and how many failed. A failed one keeps its state from
    /// `previous`; one that is gone yields none; one discovery does not take keeps its state
    /// from `previous`, if it had one.
    async fn run(
        &self,
        jobs: Vec<Job>,
        previous: &Snapshot,
        deadline: Instant,
        concurrency: usize,
    ) -> (Vec<AssociationState>, usize) {
        let outcomes: Vec<(String, Result<Outcome, CallError>)> = futures_util::stream::iter(jobs)
            .map(|job| {
                let prior = previous.get(&job.association_id);
                async move {
                    let id = job.association_id.clone();
                    (id, within(deadline, self.poll(job, prior)).await)
                }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut failures = 0;
        let mut states = Vec::with_capacity(outcomes.len());
        for (id, outcome) in outcomes {
            match outcome {
                Ok(Outcome::Polled(state)) => states.push(*state),
                Ok(Outcome::Gone) => {
                    debug!(association_id = %id, "association does not exist; its series are dropped");
                }
                Ok(Outcome::Unwatched) => states.extend(previous.get(&id).cloned()),
                Err(e) => {
                    failures += 1;
                    warn!(association_id = %id, error = %e, "poll of association failed; keeping its last values");
                    states.push(stale(previous, &id, e.error.kind()));
                }
            }
        }
        states.sort_by(|a, b| a.id().cmp(b.id()));
        // A listing that repeated an association (pages shifting under us) would otherwise
        // render duplicate series.
        states.dedup_by(|a, b| a.id() == b.id());
        (states, failures)
    }

    /// Reads of one association what may have changed since `prior`.
    async fn read(
        &self,
        job: Job,
        prior: Option<&AssociationState>,
    ) -> Result<Option<AssociationState>, CallError> {
        let id = job.association_id.as_str();
        let wanted = Wanted {
            pinned: job.pinned.as_deref(),
            filters: &job.filters,
            failed_targets: self.failed_targets,
            now: self.now,
            full_refresh_interval: self.full_refresh_interval,
        };
        let described = job.listed.is_none();
        let association = match job.listed {
            Some(a) => a,
            None => {
                self.call(
                    Operation::DescribeAssociation,
                    self.ssm.describe_association(id),
                )
                .await?
            }
        };
        // Our own spelling of the ID keys the series, whatever case the API answers in.
        let association = Association {
            association_id: id.to_owned(),
            ..association
        };
        if let Some(narrowing) = &job.narrowing
            && !discovered(narrowing, &association)
        {
            return Ok(None);
        }
        if let Some(prior) = prior
            && settled(prior, &association, &wanted)
        {
            let kept = Read {
                finished: prior.finished.clone(),
                running: None,
                success: prior.last_successful_execution,
            };
            return Ok(Some(self.polled(
                association,
                kept,
                wanted.pinned.is_some(),
            )));
        }
        let last_execution = association.last_execution_date;
        let read = match wanted.pinned {
            Some(pin) => match self.pinned_execution(id, pin).await? {
                Some(e) => {
                    let known = prior.and_then(|p| p.finished.as_ref());
                    match self.counted(id, e, known, &wanted).await {
                        Ok(counted) => Read {
                            finished: Some(counted),
                            running: None,
                            success: prior
                                .map_or(LastSuccess::Unknown, |p| p.last_successful_execution),
                        },
                        Err(e) if e.is(&SsmError::ExecutionDoesNotExist) => {
                            return Ok(Some(pinned_gone(self, association, pin)));
                        }
                        Err(e) => return Err(e),
                    }
                }
                None => return Ok(Some(pinned_gone(self, association, pin))),
            },
            None => match self.read_latest(id, prior, &wanted, last_execution).await {
                // An execution expired between listing and reading: read again, once.
                Err(e) if e.is(&SsmError::ExecutionDoesNotExist) => {
                    self.read_latest(id, prior, &wanted, last_execution).await?
                }
                other => other?,
            },
        };
        let read = Read {
            success: self
                .last_success(id, &association, described, read.success)
                .await?,
            ..read
        };
        Ok(Some(self.polled(
            association,
            read,
            wanted.pinned.is_some(),
        )))
    }

    /// `known`'s counts when they stand for `execution`, else its targets counted afresh.
    async fn counted(
        &self,
        association_id: &str,
        execution: Execution,
        known: Option<&Arc<ExecutionState>>,
        wanted: &Wanted<'_>,
    ) -> Result<Arc<ExecutionState>, CallError> {
        if let Some(known) = known
            && unchanged(known, &execution, wanted)
        {
            // The same record, most cycles: shared, not copied.
            return Ok(if known.execution == execution {
                Arc::clone(known)
            } else {
                Arc::new(ExecutionState {
                    execution,
                    ..ExecutionState::clone(known)
                })
            });
        }
        Ok(Arc::new(
            self.count(association_id, execution, wanted).await?,
        ))
    }

    /// The association's state after a successful poll: what was read, and the schedule's
    /// next run from when its newest execution started.
    fn polled(&self, association: Association, read: Read, pinned: bool) -> AssociationState {
        // A pinned execution is not the newest: the association's own date says when it
        // last ran.
        let newest = if pinned {
            None
        } else {
            read.running.as_ref().or(read.finished.as_ref())
        };
        let last_start = newest
            .and_then(|e| e.execution.created_time)
            .or(association.last_execution_date);
        let timing = timing(&association, last_start);
        AssociationState {
            association,
            finished: read.finished,
            running: read.running,
            last_successful_execution: read.success,
            timing,
            poll_ok: true,
            last_good_poll: Some(self.now),
            error_kind: None,
        }
    }

    /// Counts every target of an execution, page by page.
    async fn count(
        &self,
        association_id: &str,
        execution: Execution,
        wanted: &Wanted<'_>,
    ) -> Result<ExecutionState, CallError> {
        let fresh = || Counted {
            targets: TargetCounts::default(),
            failed: self.failed_targets.map(FailedTargets::new),
        };
        let mut counted = fresh();
        self.each_page(
            Operation::DescribeAssociationExecutionTargets,
            |token| {
                self.ssm.describe_association_execution_targets(
                    association_id,
                    &execution.execution_id,
                    wanted.filters,
                    token,
                )
            },
            |step| {
                match step {
                    Step::Restart => counted = fresh(),
                    Step::Items(page) => {
                        for target in &page {
                            counted.targets.add(target);
                            if let Some(failed) = counted.failed.as_mut() {
                                failed.add(target);
                            }
                        }
                    }
                }
                ControlFlow::Continue(())
            },
        )
        .await?;
        let mut targets = counted.targets;
        targets.shrink();
        Ok(ExecutionState {
            execution,
            targets,
            filters: wanted.filters.to_vec(),
            read_at: self.now,
            failed: counted.failed,
            pinned: wanted.pinned.is_some(),
        })
    }

    /// Follows a listing to its end, or until `each` breaks, handing over each page as it
    /// comes. A token the service refuses mid-listing (`InvalidNextToken`: it expired, or the
    /// data moved) restarts the listing once.
    async fn each_page<T, F, Fut>(
        &self,
        operation: Operation,
        mut call: F,
        mut each: impl FnMut(Step<T>) -> ControlFlow<()>,
    ) -> Result<(), CallError>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<Page<T>, SsmError>>,
    {
        let mut restarted = false;
        let mut tokens = Tokens::default();
        let mut token: Option<String> = None;
        loop {
            let page = match self.call(operation, call(token.clone())).await {
                Ok(page) => page,
                Err(e) if e.is(&SsmError::InvalidNextToken) && token.is_some() && !restarted => {
                    debug!(
                        operation = operation.as_str(),
                        "page token refused mid-listing; starting the listing over"
                    );
                    restarted = true;
                    tokens = Tokens::default();
                    token = None;
                    if each(Step::Restart).is_break() {
                        return Ok(());
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if each(Step::Items(page.items)).is_break() {
                return Ok(());
            }
            match tokens.next(operation, page.next_token)? {
                Some(t) => token = Some(t),
                None => return Ok(()),
            }
        }
    }
}

/// What reading an execution's targets yields.
struct Counted {
    targets: TargetCounts,
    failed: Option<FailedTargets>,
}

/// A pinned execution that SSM no longer has (its retention ended): its series go, and the
/// association reports a failed poll so that someone notices the pin is stale.
fn pinned_gone<S: Ssm>(
    poller: &Poller<'_, S>,
    association: Association,
    execution_id: &str,
) -> AssociationState {
    warn!(
        association_id = %association.association_id,
        execution_id,
        "the pinned execution does not exist; its series are dropped"
    );
    AssociationState {
        poll_ok: false,
        ..poller.polled(association, Read::default(), true)
    }
}

/// What one poll read of an association's executions.
#[derive(Default)]
struct Read {
    finished: Option<Arc<ExecutionState>>,
    running: Option<Arc<ExecutionState>>,
    success: LastSuccess,
}

/// The schedule's next run and period, from the association's schedule and when its newest
/// execution started. An association that never ran counts from its creation; one whose
/// schedule does not wait for the cron interval should have run at its creation.
fn timing(association: &Association, last_start: Option<SystemTime>) -> Timing {
    let fields = &association.schedule;
    let Some(expression) = fields.expression.as_deref() else {
        return Timing::Unscheduled;
    };
    let Ok(schedule) = schedule::parse(expression) else {
        return Timing::Unparsed;
    };
    let offset = fields.offset_days.map_or(0, u32::from);
    let next_run = match schedule {
        Schedule::Rate(_) | Schedule::Cron(_)
            if last_start.is_none() && fields.apply_only_at_cron_interval == Some(false) =>
        {
            association.created
        }
        _ => schedule.next_run(last_start, association.created, offset),
    };
    Timing::Scheduled {
        next_run,
        interval: next_run.and_then(|next| schedule.interval(next, offset)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssm::Overview;
    use crate::ssm::finished;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn association(last: Option<u64>, overview: Option<&str>) -> Association {
        Association {
            association_id: "a".into(),
            last_execution_date: last.map(at),
            overview: overview.map(|s| Overview {
                status: Some(s.into()),
                detailed_status: Some(s.into()),
                counts: vec![(s.into(), 3)],
            }),
            ..Association::default()
        }
    }

    /// A state read at `now`, its execution where a poll puts it: finished or running.
    fn polled(
        association: Association,
        execution: Option<Arc<ExecutionState>>,
        now: SystemTime,
    ) -> AssociationState {
        let done = execution
            .as_ref()
            .is_some_and(|e| finished(e.execution.status.as_deref()));
        let (finished, running) = if done {
            (execution, None)
        } else {
            (None, execution)
        };
        AssociationState {
            association,
            finished,
            running,
            last_successful_execution: LastSuccess::Unknown,
            timing: Timing::Unscheduled,
            poll_ok: true,
            last_good_poll: Some(now),
            error_kind: None,
        }
    }

    fn state(status: &str, read_at: u64) -> AssociationState {
        polled(
            association(Some(100), Some("Success")),
            Some(Arc::new(ExecutionState {
                execution: Execution {
                    execution_id: "e1".into(),
                    status: Some(status.into()),
                    detailed_status: Some(status.into()),
                    created_time: Some(at(90)),
                    resource_count_by_status: Some(format!("{{{status}=3}}")),
                },
                targets: TargetCounts::default(),
                filters: Vec::new(),
                read_at: at(read_at),
                failed: None,
                pinned: false,
            })),
            at(read_at),
        )
    }

    /// `settled` with the cycle's wishes spelled out.
    fn settled_with(
        prior: &AssociationState,
        current: &Association,
        pinned: Option<&str>,
        filters: &[TargetFilter],
        failed_targets: Option<usize>,
        now: SystemTime,
        full_refresh_interval: Duration,
    ) -> bool {
        let wanted = Wanted {
            pinned,
            filters,
            failed_targets,
            now,
            full_refresh_interval,
        };
        settled(prior, current, &wanted)
    }

    /// When an association costs no call at all, and each reason it must be read again.
    #[test]
    fn settled_only_when_nothing_can_have_changed() {
        let hour = Duration::from_secs(3600);
        let now = at(1000);
        let same = association(Some(100), Some("Success"));
        assert!(settled_with(
            &state("Success", 500),
            &same,
            None,
            &[],
            None,
            now,
            hour
        ));
        // Kept through a failed cycle, it is still the last good reading: a listing that
        // matches it says nothing changed since.
        assert!(settled_with(
            &AssociationState {
                running: None,
                last_successful_execution: LastSuccess::Unknown,
                timing: Timing::Unscheduled,
                poll_ok: false,
                ..state("Success", 500)
            },
            &same,
            None,
            &[],
            None,
            now,
            hour
        ));
        let pinned = |mut a: AssociationState| {
            if let Some(e) = a.finished.as_mut() {
                Arc::make_mut(e).pinned = true;
            }
            a
        };
        assert!(settled_with(
            &pinned(state("Success", 500)),
            &same,
            Some("E1"),
            &[],
            None,
            now,
            hour
        ));
        // A pin that was added, or removed, by a reload: the execution must be read again.
        assert!(!settled_with(
            &state("Success", 500),
            &same,
            Some("E1"),
            &[],
            None,
            now,
            hour
        ));
        assert!(!settled_with(
            &pinned(state("Success", 500)),
            &same,
            None,
            &[],
            None,
            now,
            hour
        ));

        let cases: Vec<(&str, AssociationState, Association, Option<&str>, Duration)> = vec![
            (
                "a run since",
                state("Success", 500),
                association(Some(200), Some("Success")),
                None,
                hour,
            ),
            (
                "overview moved",
                state("Success", 500),
                association(Some(100), Some("Failed")),
                None,
                hour,
            ),
            (
                "still running",
                state("InProgress", 500),
                same.clone(),
                None,
                hour,
            ),
            (
                "unknown status",
                state("Quarantined", 500),
                same.clone(),
                None,
                hour,
            ),
            (
                "too old",
                state("Success", 500),
                same.clone(),
                None,
                Duration::from_secs(400),
            ),
            (
                "full refresh off",
                state("Success", 999),
                same.clone(),
                None,
                Duration::ZERO,
            ),
            (
                "other pin",
                state("Success", 500),
                same.clone(),
                Some("e2"),
                hour,
            ),
            (
                "no signal",
                polled(
                    association(None, None),
                    state("Success", 500).finished,
                    at(500),
                ),
                association(None, None),
                None,
                hour,
            ),
        ];
        for (why, prior, current, pin, refresh) in cases {
            assert!(
                !settled_with(&prior, &current, pin, &[], None, now, refresh),
                "{why}"
            );
        }
        let never_ran = polled(association(None, Some("Pending")), None, at(500));
        assert!(settled_with(
            &never_ran,
            &association(None, Some("Pending")),
            None,
            &[],
            None,
            now,
            hour
        ));
        // Without an overview, a first run could not be told apart: ask every cycle.
        let silent = polled(association(None, None), None, at(500));
        assert!(!settled_with(
            &silent,
            &association(None, None),
            None,
            &[],
            None,
            now,
            hour
        ));
        assert!(!settled_with(
            &never_ran,
            &association(Some(600), None),
            None,
            &[],
            None,
            now,
            hour
        ));
        let filtered = [TargetFilter {
            key: crate::ssm::TargetFilterKey::Status,
            value: crate::ssm::NonEmpty::new("Failed").expect("non-empty"),
        }];
        assert!(
            !settled_with(
                &state("Success", 500),
                &same,
                None,
                &filtered,
                None,
                now,
                hour
            ),
            "filters changed"
        );
        assert!(
            !settled_with(
                &state("Success", 500),
                &same,
                None,
                &[],
                Some(10),
                now,
                hour
            ),
            "failed targets now named"
        );
    }
}
