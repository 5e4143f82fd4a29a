//! The streamed body of `/api/v1/status`: the document made a batch of associations at a
//! time, as hyper asks for its frames. A request never holds the whole document.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use hyper::body::Frame;

use super::model::{Build, Head};
use super::select::Entry;
use crate::board::Published;

/// Associations serialised into one frame of the JSON: what a request holds at a time
/// (about 18 kB at some 1,100 bytes each), never the whole document. Small, since the last
/// frame outlives the body: hyper holds it until the client takes it, and a slow reader that
/// stops there holds it for the write timeout, past the server's bound on readers.
const JSON_BATCH: usize = 16;

/// The body of `/api/v1/status`: the document of docs/status-api.md, made as hyper asks for
/// its frames. The first frame is the head; each next one serialises [`JSON_BATCH`]
/// associations from the board it shares, so that a request holds one batch and the
/// document's order (a position per association), never the document.
#[derive(Debug)]
pub struct StatusJson {
    published: Arc<Published>,
    now: SystemTime,
    /// The document up to its associations' opening bracket, until the first frame takes it.
    head: Option<Vec<u8>>,
    /// Every association as (its pair's slot, its index in the pair's snapshot), in the
    /// document's order.
    order: Vec<(usize, usize)>,
    /// How many of `order` went into frames.
    sent: usize,
    /// Associations written so far: every one after the first follows a comma.
    written: usize,
    /// The closing brackets went out.
    pub(super) done: bool,
}

impl StatusJson {
    /// The document of `published` as of `now`, to be made frame by frame.
    pub fn new(published: Arc<Published>, now: SystemTime, build: Build) -> StatusJson {
        let mut entries: Vec<(Entry<'_>, usize)> = published.entries(now).collect();
        entries.sort_by(|(a, _), (b, _)| a.order(b));
        let order = entries
            .into_iter()
            .map(|(e, index)| (e.slot, index))
            .collect();
        // These types always serialise (no maps with non-string keys, no failing
        // Serialize); should the head not, the body is empty. The head is an object: its
        // closing brace makes way for the associations.
        let mut head = serde_json::to_vec(&Head::of(&published, now, build)).unwrap_or_default();
        let done = head.pop() != Some(b'}');
        head.extend_from_slice(b",\"associations\":[");
        StatusJson {
            published,
            now,
            head: Some(head),
            order,
            sent: 0,
            written: 0,
            done,
        }
    }

    /// The head, else the next batch; the last frame closes the document.
    fn next_frame(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut frame = match self.head.take() {
            Some(head) => head,
            None => self.batch(),
        };
        if self.sent == self.order.len() {
            frame.extend_from_slice(b"]}");
            self.done = true;
        }
        Some(Bytes::from(frame))
    }

    fn batch(&mut self) -> Vec<u8> {
        let end = (self.sent + JSON_BATCH).min(self.order.len());
        let pairs = self.published.posts.pairs();
        let mut frame = Vec::new();
        for &(slot, index) in &self.order[self.sent..end] {
            let Some(posted) = pairs.get(slot) else {
                continue;
            };
            let Some(state) = posted.snapshot.associations.get(index) else {
                continue;
            };
            let start = frame.len();
            if self.written > 0 {
                frame.push(b',');
            }
            let status = Entry::new(slot, posted, state, self.now).status(self.now);
            // As for the head: never fails; should it, the association is left out rather
            // than the document broken.
            match serde_json::to_writer(&mut frame, &status) {
                Ok(()) => self.written += 1,
                Err(_) => frame.truncate(start),
            }
        }
        self.sent = end;
        frame
    }
}

impl hyper::body::Body for StatusJson {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.next_frame().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;
    use crate::board::Board;
    use crate::snapshot::{AssociationState, LastSuccess, Snapshot, Timing};
    use crate::status::tests::{
        NOW, TEST_BUILD, at, frames, json, last_cycle, place, ran, running, target, whole,
    };
    use crate::telemetry::Telemetry;

    /// Byte for byte the document serialised whole, for a board of several pairs with
    /// failed associations, events and more than one batch; and for a board with none.
    #[test]
    fn the_streamed_json_is_the_document_serialised_whole() {
        let board = Board::new(
            [
                place("111111111111", "us-east-1"),
                place("222222222222", "eu-west-1"),
                place("333333333333", "ap-south-1"),
            ],
            "every association, poll interval 1m",
        );
        let telemetry = Telemetry::new(true);
        let events = telemetry.events();
        events.record_event("applied");
        events.record_event("ignored");
        events.record_queue_up(true);
        let empty = Published {
            posts: board.subscribe().borrow().clone(),
            events: telemetry.events_health(),
        };
        assert_eq!(
            frames(StatusJson::new(
                Arc::new(empty.clone()),
                at(NOW),
                TEST_BUILD
            ))
            .len(),
            1
        );
        assert_eq!(json(&empty), whole(&empty));

        let statuses = ["Success", "Failed", "InProgress", "TimedOut", "Success"];
        for (slot, count) in [(0, 300), (1, 0), (2, 250)] {
            let mut snapshot = Snapshot::default();
            for i in 0..count {
                let id = format!("{slot}{i:07}-0000-4000-8000-000000000000");
                let status = statuses[i % statuses.len()];
                let targets = [
                    target(&format!("i-{i:04}a"), "Success", "Success"),
                    target(&format!("i-{i:04}b"), status, status),
                ];
                // Names repeat, so that the ID orders some; one in seven has none.
                let mut a = ran(
                    &id,
                    &format!("run-{}", i % 40),
                    status,
                    &targets,
                    Some(1),
                    NOW - 60.0,
                );
                if i % 7 == 0 {
                    a.association.association_name = None;
                }
                // Some overdue, some ahead, some running: the order puts the overdue ones
                // after the failed ones.
                if i % 3 == 0 {
                    a.timing = Timing::Scheduled {
                        next_run: Some(at(NOW + 60.0 - (i % 2) as f64 * 120.0)),
                        interval: Some(Duration::from_secs(1_800)),
                    };
                    a.association.schedule.expression = Some("rate(30 minutes)".into());
                }
                if i % 4 == 0 {
                    a.running = Some(running(&id, "InProgress", &targets, NOW - 10.0));
                    a.last_successful_execution = LastSuccess::At(at(NOW - 3_600.0));
                }
                if i % 11 == 0 {
                    a.poll_ok = false;
                    a.error_kind = Some("throttled");
                }
                if i % 13 == 0 {
                    a = AssociationState::unknown(&id);
                }
                snapshot.associations.push(a);
            }
            board.post(slot, Arc::new(snapshot), 2, last_cycle(NOW - 30.0));
        }
        let published = Published {
            posts: board.subscribe().borrow().clone(),
            events: telemetry.events_health(),
        };
        let sent = frames(StatusJson::new(
            Arc::new(published.clone()),
            at(NOW),
            TEST_BUILD,
        ));
        // The head, then ⌈550/16⌉ batches.
        assert_eq!(sent.len(), 36);
        let expected = whole(&published);
        assert_eq!(sent.concat(), expected);
        let value: Value = serde_json::from_slice(&expected).expect("JSON");
        assert_eq!(value["associations"].as_array().map(Vec::len), Some(550));
        assert_eq!(
            value["events"],
            json!({"queue_up": true, "received": {"applied": 1, "coalesced": 0, "ignored": 1, "invalid": 0}})
        );
    }
}
