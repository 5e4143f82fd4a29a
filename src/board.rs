//! The board: the latest snapshot of every (account, region) pair, and the renderer that turns
//! it into the exposition the server hands out. Only [`Board::post`] (a pair's cycle) and
//! [`Board::bump`] (a reload) move its generation; only the [`Renderer`] publishes.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::sync::watch;
use tracing::error;

use crate::config::Place;
use crate::render::render;
use crate::snapshot::Snapshot;
use crate::status;
use crate::telemetry::Telemetry;

/// The content type of the exposition: Prometheus' text format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a scrape hands out: the bytes rendered after the last change of the board.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    pub body: Bytes,
    /// The same bytes gzip-compressed, for the scrapers that accept it (Prometheus does).
    pub gzip: Bytes,
    /// Cycles every (account, region) pair has finished.
    pub cycles: u64,
    /// Some pair has finished a cycle. A pair that hangs or fails must not hold the others'
    /// series back from Prometheus, so readiness does not wait for every pair.
    pub ready: bool,
    /// The generation of the board it was rendered from.
    pub generation: u64,
    /// What the status page and its JSON are made from: the same board.
    pub status: Arc<status::Source>,
}

impl Exposition {
    /// Compresses `body` once, for every scrape until the next rendering.
    pub fn new(body: Bytes, cycles: u64, ready: bool, generation: u64) -> Exposition {
        let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
        // Writing to a Vec cannot fail; should it, the plain body is served instead.
        let gzip = encoder
            .write_all(&body)
            .and_then(|()| encoder.finish())
            .map(Bytes::from)
            .unwrap_or_default();
        Exposition {
            body,
            gzip,
            cycles,
            ready,
            generation,
            status: Arc::default(),
        }
    }
}

/// The latest snapshot of every pair, in the order of the configuration, as posted so far.
#[derive(Debug, Clone, Default)]
pub struct Posts {
    sources: Vec<Posted>,
    /// Counts every change, so that a waiter can tell when the exposition has caught up.
    generation: u64,
    /// The running configuration as `--config.check` prints it, for the status page.
    summary: Arc<str>,
}

/// One pair's latest snapshot.
#[derive(Debug, Clone)]
pub struct Posted {
    pub place: Option<Place>,
    pub snapshot: Arc<Snapshot>,
    /// Cycles of this pair finished so far.
    pub cycles: u64,
    /// Targeted polls (of associations events named) of this pair published so far.
    pub targeted: u64,
    /// How the pair's last cycle went; `None` before its first.
    pub last_cycle: Option<LastCycle>,
}

/// What the status page tells of a pair's last cycle: a few numbers and a closed error kind,
/// never error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastCycle {
    pub finished: SystemTime,
    pub duration: Duration,
    pub calls: usize,
    /// Calls answered with throttling, after the SDK's retries.
    pub throttled: usize,
    /// Associations (or the listing) whose calls failed.
    pub failures: usize,
    /// From [`crate::ssm::SsmError::kind`]: the listing's, else the first failed association's.
    pub error_kind: Option<&'static str>,
}

impl Posts {
    pub fn sources(&self) -> &[Posted] {
        &self.sources
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Cycles that every pair has finished.
    pub fn cycles(&self) -> u64 {
        self.sources.iter().map(|s| s.cycles).min().unwrap_or(0)
    }

    /// Whether some pair has finished a cycle: then there is something true to serve.
    pub fn ready(&self) -> bool {
        self.sources.iter().any(|s| s.cycles > 0)
    }

    pub fn summary(&self) -> &str {
        &self.summary
    }
}

/// Where the pairs' schedulers post their snapshots, shared by all of them.
#[derive(Debug, Clone)]
pub struct Board {
    posts: Arc<watch::Sender<Posts>>,
}

impl Board {
    /// An empty snapshot for each pair, before any cycle, under the configuration `summary`.
    pub fn new(places: impl IntoIterator<Item = Option<Place>>, summary: &str) -> Board {
        let posts = Posts {
            sources: places
                .into_iter()
                .map(|place| Posted {
                    place,
                    snapshot: Arc::new(Snapshot::default()),
                    cycles: 0,
                    targeted: 0,
                    last_cycle: None,
                })
                .collect(),
            generation: 0,
            summary: summary.into(),
        };
        Board {
            posts: Arc::new(watch::channel(posts).0),
        }
    }

    /// Posts the snapshot of the pair at `slot` after its `cycles`th cycle, which went as
    /// `last`; returns the generation whose exposition will show it.
    pub fn post(&self, slot: usize, snapshot: Arc<Snapshot>, cycles: u64, last: LastCycle) -> u64 {
        self.post_as(slot, snapshot, cycles, Some(last))
    }

    /// Posts the snapshot of the pair at `slot` after a targeted poll between its cycles;
    /// returns the generation whose exposition will show it.
    pub fn post_targeted(&self, slot: usize, snapshot: Arc<Snapshot>, cycles: u64) -> u64 {
        self.post_as(slot, snapshot, cycles, None)
    }

    /// Posts a cycle's snapshot with how it went, or a targeted poll's without.
    fn post_as(
        &self,
        slot: usize,
        snapshot: Arc<Snapshot>,
        cycles: u64,
        last: Option<LastCycle>,
    ) -> u64 {
        let mut generation = 0;
        self.posts.send_modify(|posts| {
            if let Some(posted) = posts.sources.get_mut(slot) {
                posted.snapshot = snapshot;
                posted.cycles = cycles;
                match last {
                    Some(last) => posted.last_cycle = Some(last),
                    None => posted.targeted += 1,
                }
            }
            posts.generation += 1;
            generation = posts.generation;
        });
        generation
    }

    /// Asks for a rendering of the board as it is, for a change outside the snapshots (a
    /// reload's outcome); returns the generation that will show it.
    pub fn bump(&self) -> u64 {
        let mut generation = 0;
        self.posts.send_modify(|posts| {
            posts.generation += 1;
            generation = posts.generation;
        });
        generation
    }

    /// Records a new running configuration's `summary` and asks for a rendering; returns the
    /// generation that will show it.
    pub fn reconfigure(&self, summary: &str) -> u64 {
        let mut generation = 0;
        self.posts.send_modify(|posts| {
            posts.summary = summary.into();
            posts.generation += 1;
            generation = posts.generation;
        });
        generation
    }

    /// The board as it is now, and each change after.
    pub fn subscribe(&self) -> watch::Receiver<Posts> {
        self.posts.subscribe()
    }
}

/// Renders the board, and its gzip form, once for every scrape until the next change.
#[derive(Debug)]
pub struct Renderer {
    pub board: watch::Receiver<Posts>,
    pub telemetry: Telemetry,
    /// Where each rendering goes; the server reads the other end.
    pub publish: watch::Sender<Arc<Exposition>>,
}

impl Renderer {
    /// Renders at start and after every change of the board, until `shutdown`. Changes that
    /// arrive during a rendering are rendered together, once.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let posts = self.board.borrow_and_update().clone();
            self.publish_rendered(&posts);
            tokio::select! {
                changed = self.board.changed() => if changed.is_err() { return },
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    fn publish_rendered(&self, posts: &Posts) {
        let sources: Vec<(Option<&Place>, &Snapshot)> = posts
            .sources
            .iter()
            .map(|s| (s.place.as_ref(), s.snapshot.as_ref()))
            .collect();
        let (cycles, ready, generation) = (posts.cycles(), posts.ready(), posts.generation);
        let families = self.telemetry.gather();
        let page = status::Source {
            posts: posts.clone(),
            families: families.clone(),
        };
        match render(&sources, families) {
            Ok(body) => {
                self.publish.send_replace(Arc::new(Exposition {
                    status: Arc::new(page),
                    ..Exposition::new(Bytes::from(body), cycles, ready, generation)
                }));
            }
            // Keep serving the previous bytes (stale numbers beat none), but count the change,
            // so that whoever waits for it is not left waiting.
            Err(e) => {
                error!(error = %e, "cannot render metrics; serving the previous ones");
                self.publish.send_modify(|current| {
                    *current = Arc::new(Exposition {
                        cycles,
                        ready,
                        generation,
                        status: Arc::new(page),
                        ..Exposition::clone(current)
                    });
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gzip_form_holds_the_same_bytes() {
        use std::io::Read;
        let body = Bytes::from("metric 1\n".repeat(1000));
        let exposition = Exposition::new(body.clone(), 3, true, 0);
        assert!(exposition.gzip.len() < body.len() / 10);
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&exposition.gzip[..])
            .read_to_end(&mut plain)
            .expect("valid gzip");
        assert_eq!(plain, body);
    }

    /// The renderer serves every change of the board: readiness once any pair has a cycle,
    /// `cycles` as the fewest any pair has, the generation it rendered, each pair's series
    /// with its place.
    #[tokio::test]
    async fn the_renderer_serves_the_whole_board() {
        let place = |region: &str| Place {
            account_id: "111111111111".into(),
            region: region.into(),
        };
        let board = Board::new([Some(place("us-east-1")), Some(place("eu-west-1"))], "");
        let (publish, mut served) = watch::channel(Arc::new(Exposition::default()));
        let (stop, stopped) = watch::channel(false);
        let renderer = Renderer {
            board: board.subscribe(),
            telemetry: Telemetry::new(true),
            publish,
        };
        let task = tokio::spawn(renderer.run(stopped));
        let post = |slot: usize, cycles: u64, id: &str| {
            let mut snapshot = Snapshot::default();
            let mut a = crate::snapshot::AssociationState::unknown(id);
            a.poll_ok = true;
            snapshot.associations.push(a);
            let last = LastCycle {
                finished: SystemTime::UNIX_EPOCH,
                duration: Duration::ZERO,
                calls: 1,
                throttled: 0,
                failures: 0,
                error_kind: None,
            };
            board.post(slot, Arc::new(snapshot), cycles, last)
        };
        let first = post(0, 1, "11111111-1111-1111-1111-111111111111");
        let e = served
            .wait_for(|e| e.generation >= first)
            .await
            .expect("renderer runs")
            .clone();
        assert!(e.ready);
        assert_eq!(e.cycles, 0);
        let second = post(1, 1, "22222222-2222-2222-2222-222222222222");
        let e = served
            .wait_for(|e| e.generation >= second)
            .await
            .expect("renderer runs")
            .clone();
        assert_eq!((e.ready, e.cycles, e.generation), (true, 1, second));
        let text = String::from_utf8(e.body.to_vec()).expect("utf-8");
        let polled: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ssm_association_poll_success{"))
            .collect();
        assert_eq!(
            polled,
            [
                r#"ssm_association_poll_success{account_id="111111111111",association_id="11111111-1111-1111-1111-111111111111",region="us-east-1"} 1"#,
                r#"ssm_association_poll_success{account_id="111111111111",association_id="22222222-2222-2222-2222-222222222222",region="eu-west-1"} 1"#,
            ]
        );
        stop.send_replace(true);
        task.await.expect("renderer stops");
    }
}
