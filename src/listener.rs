//! The events queue's reader: long-polls SQS for State Manager's events, hands each to the
//! pair its account and region name, and deletes what it has handled. Events are hints: the
//! values always come from SSM. A message that is no State Manager event is counted, logged
//! and deleted; an unreachable queue is retried with backoff while polling goes on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::board::Board;
use crate::config::Place;
use crate::events;
use crate::hints::{HintOutcome, Hints};
use crate::logging::LogBudget;
use crate::sqs::{LONG_POLL, MAX_MESSAGES, Message, Queue, SqsError};
use crate::telemetry::EventsTelemetry;

/// The first pause after a failed receive; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Where a pair's events go.
#[derive(Debug, Clone)]
pub struct Route {
    /// `None` without `accounts`: the one pair takes the events of the listener's `region`,
    /// whatever their account says (it may not know its own account ID).
    pub place: Option<Place>,
    pub hints: Arc<Hints>,
}

/// Messages that are not State Manager events logged per [`INVALID_LOG_WINDOW`]; the rest are
/// counted (`events_received_total{outcome="invalid"}` counts every one) and their number
/// logged with the next line after the window.
const INVALID_LOG_BURST: u32 = 5;
const INVALID_LOG_WINDOW: Duration = Duration::from_secs(10);

/// Reads the queue at `queue_url` until `shutdown`.
#[derive(Debug)]
pub struct Listener<Q> {
    pub queue: Q,
    pub queue_url: String,
    pub routes: Vec<Route>,
    /// The region whose events a pair without a place takes; `None`: every region's.
    pub region: Option<String>,
    pub telemetry: EventsTelemetry,
    /// Bumped when the events' own metrics change, so that the next exposition shows them: a
    /// scrape never renders.
    pub board: Board,
}

impl<Q: Queue> Listener<Q> {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = FIRST_BACKOFF;
        let mut up = None;
        // A queue full of junk must not become a log full of it.
        let mut invalid_log = LogBudget::new(INVALID_LOG_BURST, INVALID_LOG_WINDOW);
        // After an answer too large to read, messages are asked for one at a time until one
        // is read: each then fits, unless it alone is too large.
        let mut asked = MAX_MESSAGES;
        loop {
            // The first receive does not wait, so that the queue's health is known at once.
            let wait = if up.is_some() {
                LONG_POLL
            } else {
                Duration::ZERO
            };
            let received = tokio::select! {
                received = self.queue.receive(&self.queue_url, wait, asked) => received,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            match received {
                Ok(messages) => {
                    let changed = up != Some(true) || !messages.is_empty();
                    if up != Some(true) {
                        info!("events queue reachable; reading State Manager's events");
                    }
                    up = Some(true);
                    asked = MAX_MESSAGES;
                    backoff = FIRST_BACKOFF;
                    self.telemetry.record_queue_up(true);
                    self.handle(messages, &mut invalid_log).await;
                    if changed {
                        self.board.bump();
                    }
                }
                // The queue answered: it is up. Those messages are in flight now, and come back
                // after their visibility timeout, one at a time; one too large alone is never
                // read, and the queue's redrive policy moves it to the dead-letter queue.
                Err(e @ SqsError::TooLarge { .. }) => {
                    if invalid_log.admit(Instant::now()).is_some() {
                        warn!(error = %e, asked, "an answer of the events queue is too large to read; asking for one message at a time");
                    }
                    if asked == 1 {
                        // One message alone too large: SQS hides it for its visibility
                        // timeout, but a queue that hands it straight back must not spin.
                        tokio::select! {
                            () = tokio::time::sleep(FIRST_BACKOFF) => {}
                            _ = shutdown.wait_for(|stop| *stop) => return,
                        }
                    }
                    asked = 1;
                }
                Err(e) => {
                    // Once per outage, not once per retry.
                    if up != Some(false) {
                        warn!(error = %e, kind = e.kind(), "cannot read the events queue; polling goes on, and the queue is retried with backoff");
                        self.telemetry.record_queue_up(false);
                        self.board.bump();
                    }
                    up = Some(false);
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = shutdown.wait_for(|stop| *stop) => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Routes each message and deletes every one: handled, ignored or unreadable alike, since
    /// reading it again would change nothing.
    async fn handle(&self, messages: Vec<Message>, invalid_log: &mut LogBudget) {
        if messages.is_empty() {
            return;
        }
        let mut handles = Vec::with_capacity(messages.len());
        for message in messages {
            let outcome = self.route(&message.body, invalid_log);
            self.telemetry.record_event(outcome);
            handles.push(message.receipt_handle);
        }
        // A batch's entry IDs are the messages' places in it, not their MessageIds: a queue
        // that hands out one MessageId twice would otherwise make SQS refuse the whole batch
        // (BatchEntryIdsNotDistinct), and both messages would come back forever. A receive
        // that returned more than asked for is deleted in batches SQS takes.
        for batch in handles.chunks(MAX_MESSAGES as usize) {
            let entries: Vec<(String, String)> = batch
                .iter()
                .enumerate()
                .map(|(i, handle)| (i.to_string(), handle.clone()))
                .collect();
            match self.queue.delete(&self.queue_url, &entries).await {
                Ok(outcome) if outcome.failed.is_empty() => {}
                // Not deleted, a message comes back after its visibility timeout; handling it
                // twice changes nothing.
                Ok(outcome) => warn!(
                    failed = outcome.failed.len(),
                    "some handled events could not be deleted; they will be read again"
                ),
                Err(e) => {
                    warn!(error = %e, kind = e.kind(), "handled events could not be deleted; they will be read again")
                }
            }
        }
    }

    /// What becomes of one message: one of the outcome labels of `events_received_total`.
    fn route(&self, body: &str, invalid_log: &mut LogBudget) -> &'static str {
        let event = match events::parse(body) {
            Ok(event) => event,
            Err(e) => {
                if let Some(left_out) = invalid_log.admit(Instant::now()) {
                    if left_out > 0 {
                        warn!(
                            left_out,
                            "{left_out} messages on the events queue that were not State Manager events were not logged, at most {} are per {}s",
                            invalid_log.burst(),
                            invalid_log.window().as_secs()
                        );
                    }
                    warn!(error = %e, kind = e.kind(), "a message on the events queue is not a State Manager event; deleted");
                }
                return "invalid";
            }
        };
        let route = self.routes.iter().find(|r| match &r.place {
            Some(p) => p.account_id == event.account && p.region == event.region,
            None => self
                .region
                .as_ref()
                .is_none_or(|region| *region == event.region),
        });
        let Some(route) = route else {
            debug!(account = %event.account, region = %event.region, "an event for an account and region this exporter does not poll; ignored");
            return "ignored";
        };
        let outcome = route.hints.add(&event);
        if outcome == HintOutcome::Ignored {
            debug!(association_id = %event.association_id, "an event for an association this exporter does not watch; ignored");
        }
        outcome.as_str()
    }
}
