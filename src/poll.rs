//! One poll cycle: which associations → their latest (or pinned) execution → its targets,
//! counted page by page. Targets are never held beyond the page they came in; a failed
//! association keeps what the previous snapshot knew of it.

use std::time::SystemTime;

use tracing::{debug, warn};

use crate::config::{TargetFilter, Watch, WatchedAssociation};
use crate::snapshot::{AssociationState, ExecutionState, Snapshot, TargetCounts};
use crate::ssm::{
    Association, AssociationQuery, Execution, ExecutionQuery, Operation, Page, Ssm, SsmError,
};
use crate::telemetry::Telemetry;

/// What a cycle produced, and whether every call in it succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    pub snapshot: Snapshot,
    pub failures: usize,
}

/// Why one association (or the discovery listing) could not be read this cycle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed: {error}")]
pub struct CallError {
    pub operation: &'static str,
    #[source]
    pub error: SsmError,
}

/// Runs one cycle against `ssm` and returns the next snapshot.
///
/// Never fails as a whole: an association whose calls fail keeps its state from `previous`
/// with `poll_ok` false; if the discovery listing fails, every association of `previous` is
/// kept that way.
pub async fn poll_once<S: Ssm>(
    ssm: &S,
    watch: &Watch,
    previous: &Snapshot,
    telemetry: &Telemetry,
) -> Cycle {
    let poller = Poller { ssm, telemetry };
    let mut failures = 0;
    let mut states = Vec::new();
    match watch {
        Watch::Explicit(list) => {
            for watched in list {
                let id = watched.association_id.as_str();
                match poller.explicit(watched).await {
                    Ok(Some(state)) => states.push(state),
                    Ok(None) => warn!(
                        association_id = id,
                        "association does not exist; its series are dropped"
                    ),
                    Err(e) => {
                        failures += 1;
                        warn!(association_id = id, error = %e, "poll of association failed; keeping its last values");
                        states.push(stale(previous, id));
                    }
                }
            }
        }
        Watch::Discover(discovery) => match poller.discover(discovery).await {
            Ok(found) => {
                for association in found {
                    let id = association.association_id.clone();
                    match poller.latest(association).await {
                        Ok(Some(state)) => states.push(state),
                        Ok(None) => {
                            debug!(association_id = %id, "association deleted during the cycle")
                        }
                        Err(e) => {
                            failures += 1;
                            warn!(association_id = %id, error = %e, "poll of association failed; keeping its last values");
                            states.push(stale(previous, &id));
                        }
                    }
                }
            }
            Err(e) => {
                failures += 1;
                warn!(error = %e, "discovery of associations failed; keeping every association's last values");
                states = previous
                    .associations
                    .iter()
                    .map(|a| AssociationState {
                        poll_ok: false,
                        ..a.clone()
                    })
                    .collect();
            }
        },
    }
    states.sort_by(|a, b| a.association_id.cmp(&b.association_id));
    // A listing that repeated an association (pages shifting under us) would otherwise
    // render duplicate series.
    states.dedup_by(|a, b| a.association_id == b.association_id);
    Cycle {
        snapshot: Snapshot {
            associations: states,
        },
        failures,
    }
}

/// The previous state of an association, marked as not freshly polled.
fn stale(previous: &Snapshot, association_id: &str) -> AssociationState {
    previous.get(association_id).map_or_else(
        || AssociationState::unknown(association_id),
        |a| AssociationState {
            poll_ok: false,
            ..a.clone()
        },
    )
}

struct Poller<'a, S> {
    ssm: &'a S,
    telemetry: &'a Telemetry,
}

impl<S: Ssm> Poller<'_, S> {
    /// Counts one call in the telemetry and names it in the error.
    fn record<T>(&self, operation: Operation, result: Result<T, SsmError>) -> Result<T, CallError> {
        self.telemetry.record_call(operation, &result);
        result.map_err(|error| CallError {
            operation: operation.as_str(),
            error,
        })
    }

    /// Every association the discovery settings select, across all pages.
    async fn discover(
        &self,
        discovery: &crate::config::Discovery,
    ) -> Result<Vec<Association>, CallError> {
        let query = AssociationQuery {
            document_name: discovery.document_name.clone(),
        };
        let mut found = Vec::new();
        self.each_page(
            Operation::ListAssociations,
            |token| self.ssm.list_associations(&query, token),
            |page: Vec<Association>| {
                found.extend(page.into_iter().filter(|a| {
                    !a.association_id.is_empty()
                        && discovery.name_prefix.as_ref().is_none_or(|prefix| {
                            a.association_name
                                .as_deref()
                                .is_some_and(|n| n.starts_with(prefix.as_str()))
                        })
                }));
            },
        )
        .await?;
        Ok(found)
    }

    /// A configured association: describe it, then read its pinned or latest execution.
    /// `Ok(None)` when the association does not exist.
    async fn explicit(
        &self,
        watched: &WatchedAssociation,
    ) -> Result<Option<AssociationState>, CallError> {
        let id = watched.association_id.as_str();
        let association = match self.record(
            Operation::DescribeAssociation,
            self.ssm.describe_association(id).await,
        ) {
            Ok(a) => a,
            Err(CallError {
                error: SsmError::AssociationDoesNotExist,
                ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let association = Association {
            // Our own spelling of the ID keys the series, whatever case the API answers in.
            association_id: id.to_owned(),
            ..association
        };
        match &watched.execution_id {
            Some(pinned) => {
                self.pinned(association, pinned.as_str(), &watched.filters)
                    .await
            }
            None => self.execution_targets(association, &watched.filters).await,
        }
    }

    /// A discovered association: its latest execution, all targets counted.
    async fn latest(
        &self,
        association: Association,
    ) -> Result<Option<AssociationState>, CallError> {
        self.execution_targets(association, &[]).await
    }

    async fn execution_targets(
        &self,
        association: Association,
        filters: &[TargetFilter],
    ) -> Result<Option<AssociationState>, CallError> {
        let Some(newest) = self.newest_execution(&association.association_id).await? else {
            return Ok(None);
        };
        let execution = match newest {
            None => None,
            Some(e) => match self.count(&association.association_id, e, filters).await {
                Ok(counted) => Some(counted),
                Err(CallError {
                    error: SsmError::AssociationDoesNotExist,
                    ..
                }) => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        Ok(Some(fresh(association, execution)))
    }

    async fn pinned(
        &self,
        association: Association,
        execution_id: &str,
        filters: &[TargetFilter],
    ) -> Result<Option<AssociationState>, CallError> {
        let id = association.association_id.clone();
        let mut found = None;
        let query = ExecutionQuery::Id(execution_id.to_owned());
        let listed = self
            .each_page(
                Operation::DescribeAssociationExecutions,
                |token| self.ssm.describe_association_executions(&id, &query, token),
                |page: Vec<Execution>| {
                    found = found.take().or_else(|| {
                        page.into_iter()
                            .find(|e| e.execution_id.eq_ignore_ascii_case(execution_id))
                    });
                },
            )
            .await;
        match listed {
            Ok(()) => {}
            Err(CallError {
                error: SsmError::AssociationDoesNotExist,
                ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        }
        let Some(execution) = found else {
            return Ok(Some(pinned_gone(association, execution_id)));
        };
        let execution = Execution {
            execution_id: execution_id.to_owned(),
            ..execution
        };
        match self.count(&id, execution, filters).await {
            Ok(counted) => Ok(Some(fresh(association, Some(counted)))),
            Err(CallError {
                error: SsmError::ExecutionDoesNotExist,
                ..
            }) => Ok(Some(pinned_gone(association, execution_id))),
            Err(CallError {
                error: SsmError::AssociationDoesNotExist,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The newest execution of an association: `Ok(None)` if the association is gone,
    /// `Ok(Some(None))` if it never ran.
    ///
    /// Reads only until a page has executions: the API lists them newest first (ssm-api.md
    /// §6.1), so the first non-empty page holds the newest. Within it we still take the
    /// greatest CreatedTime rather than trust the order of one page.
    async fn newest_execution(
        &self,
        association_id: &str,
    ) -> Result<Option<Option<Execution>>, CallError> {
        let mut tokens = Tokens::default();
        let mut token = None;
        loop {
            let result = self
                .ssm
                .describe_association_executions(
                    association_id,
                    &ExecutionQuery::All,
                    token.clone(),
                )
                .await;
            let page = match self.record(Operation::DescribeAssociationExecutions, result) {
                Ok(page) => page,
                Err(CallError {
                    error: SsmError::AssociationDoesNotExist,
                    ..
                }) => return Ok(None),
                Err(e) => return Err(e),
            };
            if !page.items.is_empty() {
                let newest = page
                    .items
                    .into_iter()
                    .enumerate()
                    // On equal or missing times, the API's own first wins.
                    .max_by_key(|(i, e)| (e.created_time, std::cmp::Reverse(*i)))
                    .map(|(_, e)| e);
                return Ok(Some(newest));
            }
            match tokens.next(Operation::DescribeAssociationExecutions, page.next_token)? {
                Some(t) => token = Some(t),
                None => return Ok(Some(None)),
            }
        }
    }

    /// Counts every target of an execution, page by page.
    async fn count(
        &self,
        association_id: &str,
        execution: Execution,
        filters: &[TargetFilter],
    ) -> Result<ExecutionState, CallError> {
        let mut targets = TargetCounts::default();
        let execution_id = execution.execution_id.clone();
        self.each_page(
            Operation::DescribeAssociationExecutionTargets,
            |token| {
                self.ssm.describe_association_execution_targets(
                    association_id,
                    &execution_id,
                    filters,
                    token,
                )
            },
            |page| {
                for target in &page {
                    targets.add(target);
                }
            },
        )
        .await?;
        Ok(ExecutionState {
            execution_id: execution.execution_id,
            status: execution.status,
            detailed_status: execution.detailed_status,
            created_time: execution.created_time,
            last_execution_date: execution.last_execution_date,
            targets,
        })
    }

    /// Follows a listing to its end, handing each page's items to `each` as they come.
    async fn each_page<T, F, Fut>(
        &self,
        operation: Operation,
        mut call: F,
        mut each: impl FnMut(Vec<T>),
    ) -> Result<(), CallError>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<Page<T>, SsmError>>,
    {
        let mut tokens = Tokens::default();
        let mut token: Option<String> = None;
        loop {
            let page = self.record(operation, call(token.clone()).await)?;
            each(page.items);
            match tokens.next(operation, page.next_token)? {
                Some(t) => token = Some(t),
                None => return Ok(()),
            }
        }
    }
}

/// The most pages one listing may take: 5 million items at 50 a page, far beyond any real
/// account, and a bound on a service that never ends a listing.
const MAX_PAGES: usize = 100_000;

/// The tokens of one listing so far, to stop a listing that goes round in circles.
#[derive(Default)]
struct Tokens(std::collections::HashSet<String>);

impl Tokens {
    /// The token to send next, or `None` at the end. A token seen before in this listing, or
    /// more pages than any account has, means the listing would never end: an unreadable
    /// response, not a page.
    fn next(
        &mut self,
        operation: Operation,
        received: Option<String>,
    ) -> Result<Option<String>, CallError> {
        let Some(token) = received else {
            return Ok(None);
        };
        let broken = |why: &str| CallError {
            operation: operation.as_str(),
            error: SsmError::Response(why.to_owned()),
        };
        if self.0.len() >= MAX_PAGES {
            return Err(broken("the listing did not end within 100000 pages"));
        }
        if !self.0.insert(token.clone()) {
            return Err(broken(
                "the service returned a NextToken it had returned before",
            ));
        }
        Ok(Some(token))
    }
}

/// A pinned execution that SSM no longer has (its retention ended): its series go, and the
/// association reports a failed poll so that someone notices the pin is stale.
fn pinned_gone(association: Association, execution_id: &str) -> AssociationState {
    warn!(
        association_id = %association.association_id,
        execution_id,
        "the pinned execution does not exist; its series are dropped"
    );
    AssociationState {
        poll_ok: false,
        ..fresh(association, None)
    }
}

fn fresh(association: Association, execution: Option<ExecutionState>) -> AssociationState {
    AssociationState {
        association_id: association.association_id,
        name: association.association_name,
        document_name: association.document_name,
        document_version: association.document_version,
        association_version: association.association_version,
        last_execution_date: association.last_execution_date,
        execution,
        poll_ok: true,
        last_success: Some(SystemTime::now()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_that_repeats_a_token_is_broken() {
        let op = Operation::DescribeAssociationExecutionTargets;
        let mut tokens = Tokens::default();
        assert_eq!(tokens.next(op, Some("a".into())), Ok(Some("a".into())));
        assert_eq!(tokens.next(op, Some("b".into())), Ok(Some("b".into())));
        let err = tokens
            .next(op, Some("a".into()))
            .expect_err("a came before");
        assert_eq!(err.error.kind(), "invalid_response");
        assert_eq!(
            err.to_string(),
            "DescribeAssociationExecutionTargets failed: unreadable response: the service returned a NextToken it had returned before"
        );
        assert_eq!(tokens.next(op, None), Ok(None));
    }

    #[test]
    fn a_listing_that_never_ends_is_cut() {
        let op = Operation::ListAssociations;
        let mut tokens = Tokens::default();
        for i in 0..MAX_PAGES {
            assert!(tokens.next(op, Some(i.to_string())).is_ok());
        }
        let err = tokens
            .next(op, Some("one more".into()))
            .expect_err("too many pages");
        assert_eq!(err.error.kind(), "invalid_response");
    }
}
