//! What State Manager's events ask of one (account, region) pair: polls of associations its
//! last snapshot holds, coalesced and spaced, or, in discovery, one listing a minute for those
//! it does not. The queue's reader adds; the pair's scheduler takes what is due between its
//! cycles. On tokio's clock, so that paused-time tests see its windows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{Discovery, Watch};
use crate::events::Event;
use crate::poll::{PollSettings, may_watch};
use crate::snapshot::Snapshot;

/// How long the events of one association are gathered before it is polled: a run over many
/// instances sends an event per instance, close together.
pub(crate) const COALESCE: Duration = Duration::from_millis(500);
/// The least time between two targeted polls of one association: a long run's stream of
/// instance events costs one poll per spell, not one per event.
pub(crate) const MIN_SPACING: Duration = Duration::from_secs(5);
/// The least time between two listings events ask for: events naming associations the pair
/// does not hold cost at most one listing a minute however many arrive, and a new association
/// is still picked up within a minute of its first event.
pub(crate) const MIN_LISTING_SPACING: Duration = Duration::from_secs(60);

/// Associations that events said changed, waiting for a targeted poll of their pair. The
/// queue's reader adds to it; the pair's scheduler takes what is due between its cycles.
#[derive(Debug)]
pub struct Hints {
    state: std::sync::Mutex<HintState>,
    /// Wakes the scheduler when something new is due.
    added: tokio::sync::Notify,
}

#[derive(Debug)]
struct HintState {
    /// What the pair watches, to ignore the rest without a call; kept current by reloads.
    settings: PollSettings,
    /// The pair's latest snapshot. In discovery, an event for an association it does not hold
    /// asks for a listing of the pair instead of a call of its own: the association may be new,
    /// outside the narrowing, or made up, and only a listing tells which.
    known: Arc<Snapshot>,
    /// Association → when its poll is due, and the earliest event time waiting on it.
    due: HashMap<String, (tokio::time::Instant, Option<SystemTime>)>,
    /// When each association was last polled for an event.
    polled: HashMap<String, tokio::time::Instant>,
    /// When a listing that events asked for is due, and when it was first asked for.
    listing: Option<(tokio::time::Instant, tokio::time::Instant)>,
    /// When the last listing events asked for was taken: only those are spaced, since a
    /// regular cycle's listing costs nothing extra.
    listed: Option<tokio::time::Instant>,
}

/// What is due at a pair.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// A listing of the whole pair: a cycle.
    Listing,
    /// Polls of these associations, each with the earliest event time waiting on it.
    Polls(Vec<(String, Option<SystemTime>)>),
}

/// What became of one event at its pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HintOutcome {
    /// A poll of the association is now due.
    Applied,
    /// A poll of it was due already.
    Coalesced,
    /// The pair does not watch it: no call.
    Ignored,
}

impl HintOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            HintOutcome::Applied => "applied",
            HintOutcome::Coalesced => "coalesced",
            HintOutcome::Ignored => "ignored",
        }
    }
}

impl Hints {
    pub fn new(settings: PollSettings) -> Self {
        Hints {
            state: std::sync::Mutex::new(HintState {
                settings,
                known: Arc::new(Snapshot::default()),
                due: HashMap::new(),
                polled: HashMap::new(),
                listing: None,
                listed: None,
            }),
            added: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HintState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that `event` arrived now.
    pub fn add(&self, event: &Event) -> HintOutcome {
        let id = crate::ids::fold(&event.association_id);
        let mut state = self.lock();
        if !may_watch(&state.settings, &id) {
            return HintOutcome::Ignored;
        }
        let now = tokio::time::Instant::now();
        if let Watch::Discover(discovery) = &state.settings.watch {
            if excluded_document(discovery, event.document_name.as_deref()) {
                return HintOutcome::Ignored;
            }
            if state.known.get(&id).is_none() {
                if state.listing.is_some() {
                    return HintOutcome::Coalesced;
                }
                let spaced = state.listed.map(|at| at + MIN_LISTING_SPACING);
                let at = spaced.map_or(now + COALESCE, |s| s.max(now + COALESCE));
                state.listing = Some((at, now));
                drop(state);
                self.added.notify_one();
                return HintOutcome::Applied;
            }
        }
        if let Some((_, first)) = state.due.get_mut(&id) {
            *first = match (*first, event.time) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            return HintOutcome::Coalesced;
        }
        let spaced = state.polled.get(&id).map(|at| *at + MIN_SPACING);
        let at = spaced.map_or(now + COALESCE, |s| s.max(now + COALESCE));
        state.due.insert(id, (at, event.time));
        drop(state);
        self.added.notify_one();
        HintOutcome::Applied
    }

    pub(crate) fn set_settings(&self, settings: PollSettings) {
        self.lock().settings = settings;
    }

    /// Records the pair's newest snapshot; after a cycle that started at `listed_at`, also
    /// that the pair was listed, which serves any listing events asked for before.
    pub(crate) fn set_known(
        &self,
        snapshot: Arc<Snapshot>,
        listed_at: Option<tokio::time::Instant>,
    ) {
        let mut state = self.lock();
        state.known = snapshot;
        if let Some(started) = listed_at
            && state.listing.is_some_and(|(_, asked)| asked <= started)
        {
            state.listing = None;
        }
    }

    /// Waits until some association's poll, or a listing, is due.
    pub(crate) async fn due(&self) {
        loop {
            let added = self.added.notified();
            let next = {
                let state = self.lock();
                state
                    .due
                    .values()
                    .map(|(at, _)| *at)
                    .chain(state.listing.map(|(at, _)| at))
                    .min()
            };
            match next {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => return,
                        () = added => {}
                    }
                }
                None => added.await,
            }
        }
    }

    /// Takes what is due now: a listing, or else at most `most` associations' polls (the
    /// earliest due first), each with the earliest event time waiting on it. The rest stay
    /// due, so that a cycle never waits behind more than `most` of them.
    pub(crate) fn take_due(&self, most: usize) -> Due {
        let now = tokio::time::Instant::now();
        let mut state = self.lock();
        if state.listing.is_some_and(|(at, _)| at <= now) {
            state.listing = None;
            state.listed = Some(now);
            return Due::Listing;
        }
        let mut ready: Vec<(tokio::time::Instant, String)> = state
            .due
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(id, (at, _))| (*at, id.clone()))
            .collect();
        ready.sort();
        ready.truncate(most.max(1));
        let mut polls = Vec::with_capacity(ready.len());
        for (_, id) in ready {
            if let Some((_, first)) = state.due.remove(&id) {
                state.polled.insert(id.clone(), now);
                polls.push((id, first));
            }
        }
        // Spacing only matters for a while; forget polls older than it.
        state
            .polled
            .retain(|_, at| now.duration_since(*at) < MIN_SPACING);
        Due::Polls(polls)
    }
}

/// Whether a discovery narrowed to one document leaves out an event's document: only when the
/// event names another one, by name or as the tail of its ARN.
fn excluded_document(discovery: &Discovery, named: Option<&str>) -> bool {
    match (&discovery.document_name, named) {
        (Some(wanted), Some(named)) => {
            named != wanted && named.rsplit('/').next() != Some(wanted.as_str())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_narrowing_excludes_only_documents_an_event_names() {
        let narrowed = Discovery {
            name_prefix: None,
            document_name: Some("AWS-RunPatchBaseline".to_owned()),
        };
        assert!(excluded_document(
            &narrowed,
            Some("AWS-GatherSoftwareInventory")
        ));
        assert!(!excluded_document(&narrowed, Some("AWS-RunPatchBaseline")));
        assert!(!excluded_document(
            &narrowed,
            Some("arn:aws:ssm:us-east-1:123456789012:document/AWS-RunPatchBaseline")
        ));
        assert!(!excluded_document(&narrowed, None));
        assert!(!excluded_document(&Discovery::default(), Some("anything")));
    }
}
