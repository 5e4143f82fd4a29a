//! Which executions are the newest: reading an association's executions (in whatever order
//! SSM lists them), its pinned one, and when it last succeeded.

use std::ops::ControlFlow;
use std::time::SystemTime;

use crate::ids;
use crate::snapshot::{AssociationState, LastSuccess};
use crate::ssm::{Association, Execution, ExecutionQuery, Operation, Ssm, finished};

use super::change::Wanted;
use super::paging::Step;
use super::{CallError, Poller, Read};

impl<S: Ssm> Poller<'_, S> {
    /// Reads an association's newest executions and counts the targets of its latest finished
    /// one and of the one running, where they changed since `prior`.
    pub(super) async fn read_latest(
        &self,
        association_id: &str,
        prior: Option<&AssociationState>,
        wanted: &Wanted<'_>,
        last_execution: Option<SystemTime>,
    ) -> Result<Read, CallError> {
        // Once an association has been read, the latest finished execution it had stays the
        // latest until a newer one shows on the first page; only a first reading looks further.
        let known_finished = prior.and_then(|p| p.finished.as_ref());
        let search_older = prior.is_none_or(|p| p.last_good_poll.is_none())
            || known_finished.is_some_and(|k| k.pinned);
        let latest = self
            .latest(association_id, last_execution, search_older)
            .await?;
        let finished = match (latest.finished, known_finished) {
            (Some(e), known) => Some(self.counted(association_id, e, known, wanted).await?),
            // Not on the pages read: the one known stands, read again if it must be.
            (None, Some(known)) if !known.pinned => {
                let e = known.execution.clone();
                Some(self.counted(association_id, e, Some(known), wanted).await?)
            }
            (None, _) => None,
        };
        let running = match latest.running {
            Some(e) => Some(self.counted(association_id, e, None, wanted).await?),
            None => None,
        };
        let prior_success = prior.map_or(LastSuccess::Unknown, |p| p.last_successful_execution);
        Ok(Read {
            finished,
            running,
            success: newer_success(prior_success, latest.success),
        })
    }

    /// When the association's newest successful execution was created: `found` if the pages
    /// read said, else what DescribeAssociation's `LastSuccessfulExecutionDate` says where it
    /// was `described` (its absence: none), else, the first time only, the newest execution
    /// that a `Status EQUAL Success` listing shows: one call in the life of the exporter for a
    /// listed association without a success among its newest executions.
    pub(super) async fn last_success(
        &self,
        association_id: &str,
        association: &Association,
        described: bool,
        found: LastSuccess,
    ) -> Result<LastSuccess, CallError> {
        if found != LastSuccess::Unknown {
            return Ok(found);
        }
        if described {
            return Ok(association
                .last_successful_execution_date
                .map_or(LastSuccess::None, LastSuccess::At));
        }
        let query = ExecutionQuery::Status("Success");
        let mut newest = LastSuccess::None;
        self.each_execution_page(association_id, &query, |step| match step {
            Step::Items(page) if !page.is_empty() => {
                newest = newer_success(newest, page.iter().filter_map(|e| e.created_time).max());
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        })
        .await?;
        Ok(newest)
    }

    /// The newest executions of an association: the newest of all, and the newest finished
    /// one (the same when the newest has finished), and the newest success among those read.
    ///
    /// Reads only until a page has executions: SSM has always listed them newest first, so
    /// the first non-empty page holds the newest. Nothing documents that order, so the newest
    /// read is checked against the association's own `last_execution`: when it is older, the
    /// executions created since are read as well (a `CreatedTime` filter), and the newest of
    /// everything read wins, whatever the order. When newest first holds, that costs nothing.
    /// When the pages read have no finished execution, `search_older` reads on until one is
    /// found.
    async fn latest(
        &self,
        association_id: &str,
        last_execution: Option<SystemTime>,
        search_older: bool,
    ) -> Result<Latest, CallError> {
        let mut newest = Newest::default();
        self.each_execution_page(association_id, &ExecutionQuery::All, |step| match step {
            Step::Restart => {
                newest = Newest::default();
                ControlFlow::Continue(())
            }
            Step::Items(page) if page.is_empty() => ControlFlow::Continue(()),
            Step::Items(page) => {
                newest.merge(page);
                if newest.finished.is_some() || !search_older {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }
        })
        .await?;
        let seen = newest.any.as_ref().and_then(|e| e.created_time);
        if let (Some(seen), Some(last)) = (seen, last_execution)
            && seen < last
        {
            // Merged into the newest read so far: taking the newest is idempotent, so pages
            // seen again after a restart change nothing.
            let since = ExecutionQuery::CreatedAfter(seen);
            self.each_execution_page(association_id, &since, |step| {
                if let Step::Items(page) = step {
                    newest.merge(page);
                }
                ControlFlow::Continue(())
            })
            .await?;
        }
        Ok(Latest {
            running: newest.any.filter(|e| !finished(e.status.as_deref())),
            finished: newest.finished,
            success: newest.success,
        })
    }

    /// Every page of an association's executions that `query` selects, to `each`, through
    /// [`Poller::each_page`].
    async fn each_execution_page(
        &self,
        association_id: &str,
        query: &ExecutionQuery,
        each: impl FnMut(Step<Execution>) -> ControlFlow<()>,
    ) -> Result<(), CallError> {
        self.each_page(
            Operation::DescribeAssociationExecutions,
            |token| {
                self.ssm
                    .describe_association_executions(association_id, query, token)
            },
            each,
        )
        .await
    }

    /// The pinned execution, `None` if SSM does not have it.
    pub(super) async fn pinned_execution(
        &self,
        association_id: &str,
        execution_id: &str,
    ) -> Result<Option<Execution>, CallError> {
        let query = ExecutionQuery::Id(execution_id.to_owned());
        let mut found = None;
        self.each_execution_page(association_id, &query, |step| match step {
            Step::Items(page) => {
                found = page
                    .into_iter()
                    .find(|e| ids::same(&e.execution_id, execution_id));
                if found.is_some() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }
            Step::Restart => ControlFlow::Continue(()),
        })
        .await?;
        Ok(found.map(|e| Execution {
            execution_id: execution_id.to_owned(),
            ..e
        }))
    }
}

/// The executions that the first page (or pages) of an association's executions showed.
#[derive(Default)]
struct Latest {
    /// The newest execution, when it has not finished.
    running: Option<Execution>,
    /// The newest finished execution on the pages read.
    finished: Option<Execution>,
    /// When the newest successful execution on those pages was created.
    success: Option<SystemTime>,
}

/// The newest executions among pages read, in whatever order they came.
#[derive(Default)]
struct Newest {
    any: Option<Execution>,
    finished: Option<Execution>,
    success: Option<SystemTime>,
}

impl Newest {
    fn merge(&mut self, page: Vec<Execution>) {
        for e in page {
            if e.status.as_deref() == Some("Success") {
                self.success = self.success.max(e.created_time);
            }
            if finished(e.status.as_deref()) {
                self.finished = newer(self.finished.take(), e.clone());
            }
            self.any = newer(self.any.take(), e);
        }
    }
}

/// The later-created of `known` and `e`; on equal or missing times, the one read first.
fn newer(known: Option<Execution>, e: Execution) -> Option<Execution> {
    match known {
        Some(k) if k.created_time >= e.created_time => Some(k),
        _ => Some(e),
    }
}

/// The later of a known last success and one just found.
fn newer_success(known: LastSuccess, found: Option<SystemTime>) -> LastSuccess {
    match (known.time(), found) {
        (Some(k), Some(f)) => LastSuccess::At(k.max(f)),
        (None, Some(f)) => LastSuccess::At(f),
        (_, None) => known,
    }
}
