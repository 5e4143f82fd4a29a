//! The board: the latest snapshot of every (account, region) pair, and the renderer that turns
//! it into the exposition the server hands out. Only [`Board::post`] (a pair's cycle) and
//! [`Board::bump`] (a reload) move its generation; only the [`Renderer`] publishes.

use std::sync::Arc;
use std::time::Instant;

use prometheus::proto::MetricFamily;
use tokio::sync::watch;
use tracing::error;

use crate::config::Place;
use crate::render::{Headers, Joined, Part, RenderError, join, renders_same};
use crate::snapshot::Snapshot;
use crate::telemetry::{CycleOutcome, EventsHealth, Telemetry};

/// The content type of the exposition: Prometheus' text format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a scrape hands out: the exposition as of the last change of the board.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    /// The text format as gzip members in one buffer, sent as they are to the scrapers that
    /// accept gzip (Prometheus does) and decompressed as they are sent to the others.
    pub body: Joined,
    /// Cycles every (account, region) pair has finished.
    pub cycles: u64,
    /// Some pair has finished a cycle. A pair that hangs or fails must not hold the others'
    /// series back from Prometheus, so readiness does not wait for every pair.
    pub ready: bool,
    /// The generation of the board it was rendered from.
    pub generation: u64,
    /// What the status page and its JSON are made from: the same board.
    pub status: Arc<Published>,
}

/// The latest snapshot of every pair, in the order of the configuration, as posted so far.
#[derive(Debug, Clone, Default)]
pub struct Posts {
    pairs: Vec<PairPost>,
    /// Counts every change, so that a waiter can tell when the exposition has caught up.
    generation: u64,
    /// The running configuration as `--config.check` prints it, for the status page.
    summary: Arc<str>,
}

/// One pair's latest snapshot.
#[derive(Debug, Clone)]
pub struct PairPost {
    pub place: Option<Place>,
    pub snapshot: Arc<Snapshot>,
    /// Cycles of this pair finished so far.
    pub cycles: u64,
    /// Targeted polls (of associations events named) of this pair published so far.
    pub targeted: u64,
    /// How the pair's last cycle went; `None` before its first.
    pub last_cycle: Option<CycleOutcome>,
}

impl Posts {
    pub fn pairs(&self) -> &[PairPost] {
        &self.pairs
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Cycles that every pair has finished.
    pub fn cycles(&self) -> u64 {
        self.pairs.iter().map(|s| s.cycles).min().unwrap_or(0)
    }

    /// Whether some pair has finished a cycle: then there is something true to serve.
    pub fn ready(&self) -> bool {
        self.pairs.iter().any(|s| s.cycles > 0)
    }

    pub fn summary(&self) -> &str {
        &self.summary
    }
}

/// The board as an exposition shows it, published with it for the status page: its snapshots
/// are shared, not copied, beside the events' health as the exposition counts it.
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub posts: Posts,
    /// `None` when events are off.
    pub events: Option<EventsHealth>,
}

/// Which generation of the board the server hands out: what a poster waits on to know that
/// its post is served, without holding what is served.
#[derive(Debug, Clone)]
pub struct Served(watch::Receiver<u64>);

/// The renderer has stopped: nothing posted from now on will be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the renderer has stopped")]
pub struct RendererStopped;

impl Served {
    /// The served generation, and the end the renderer moves it with.
    pub fn channel() -> (watch::Sender<u64>, Served) {
        let (sender, served) = watch::channel(0);
        (sender, Served(served))
    }

    /// Waits until `generation`, or a later one, is served.
    ///
    /// # Errors
    ///
    /// [`RendererStopped`] once the renderer has gone.
    pub async fn reach(&self, generation: u64) -> Result<(), RendererStopped> {
        self.0
            .clone()
            .wait_for(|served| *served >= generation)
            .await
            .map(drop)
            .map_err(|_| RendererStopped)
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
            pairs: places
                .into_iter()
                .map(|place| PairPost {
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
    pub fn post(
        &self,
        slot: usize,
        snapshot: Arc<Snapshot>,
        cycles: u64,
        last: CycleOutcome,
    ) -> u64 {
        self.post_as(slot, snapshot, cycles, Ok(last))
    }

    /// Posts the snapshot of the pair at `slot` after targeted polls of `polled` associations
    /// between its cycles; returns the generation whose exposition will show it.
    pub fn post_targeted(
        &self,
        slot: usize,
        snapshot: Arc<Snapshot>,
        cycles: u64,
        polled: u64,
    ) -> u64 {
        self.post_as(slot, snapshot, cycles, Err(polled))
    }

    /// Posts a cycle's snapshot with how it went, or targeted polls' with how many
    /// associations they polled.
    fn post_as(
        &self,
        slot: usize,
        snapshot: Arc<Snapshot>,
        cycles: u64,
        last: Result<CycleOutcome, u64>,
    ) -> u64 {
        let mut generation = 0;
        self.posts.send_modify(|posts| {
            if let Some(posted) = posts.pairs.get_mut(slot) {
                posted.snapshot = snapshot;
                posted.cycles = cycles;
                match last {
                    Ok(last) => posted.last_cycle = Some(last),
                    Err(polled) => posted.targeted += polled,
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

/// Renders the board as each change leaves it: the series of the pairs whose series changed,
/// joined with those of the others and the exporter's own metrics.
#[derive(Debug)]
pub struct Renderer {
    pub board: watch::Receiver<Posts>,
    pub telemetry: Telemetry,
    /// Where each rendering goes; the server reads the other end.
    pub publish: watch::Sender<Arc<Exposition>>,
    /// Moved after each publication, for the posters that wait to be served.
    pub served: watch::Sender<u64>,
}

impl Renderer {
    /// Renders at start and after every change of the board, until `shutdown`. Changes that
    /// arrive during a rendering are rendered together, once.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut parts = Parts::default();
        loop {
            let posts = self.board.borrow_and_update().clone();
            self.publish_rendered(&posts, &mut parts);
            tokio::select! {
                changed = self.board.changed() => if changed.is_err() { return },
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    fn publish_rendered(&self, posts: &Posts, parts: &mut Parts) {
        let (cycles, ready, generation) = (posts.cycles(), posts.ready(), posts.generation);
        parts.update(posts, &self.telemetry);
        // Gathered after the renderings, so that they count themselves.
        let families = self.telemetry.gather();
        let status = Arc::new(Published {
            posts: posts.clone(),
            events: self.telemetry.events_health(),
        });
        match parts.join(families) {
            Ok(body) => {
                self.publish.send_replace(Arc::new(Exposition {
                    body,
                    cycles,
                    ready,
                    generation,
                    status,
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
                        status,
                        ..Exposition::clone(current)
                    });
                });
            }
        }
        // After the publication: whoever sees its generation served can scrape it.
        self.served.send_replace(generation);
    }
}

/// What the renderer keeps between renderings: each pair's part and the snapshot it shows.
#[derive(Debug, Default)]
struct Parts {
    headers: Headers,
    placed: bool,
    pairs: Vec<Option<Rendered>>,
}

#[derive(Debug)]
struct Rendered {
    place: Option<Place>,
    snapshot: Arc<Snapshot>,
    part: Arc<Part>,
}

impl Parts {
    /// Joins every pair's part, as [`Parts::update`] left them, with the exporter's `own`
    /// families; the parts' gzip members become slices of the exposition's.
    fn join(&mut self, own: Vec<MetricFamily>) -> Result<Joined, RenderError> {
        let mut pairs: Vec<&mut Part> = self
            .pairs
            .iter_mut()
            .flatten()
            .map(|rendered| Arc::make_mut(&mut rendered.part))
            .collect();
        join(&self.headers, &mut pairs, own)
    }

    /// Keeps each pair's part for `posts`, rendering only those whose series changed since
    /// the last call; each rendering is counted in `telemetry`.
    fn update(&mut self, posts: &Posts, telemetry: &Telemetry) {
        let placed = posts.pairs.iter().any(|s| s.place.is_some());
        if placed != self.placed {
            // Every series gains or loses its place labels.
            self.pairs.clear();
            self.placed = placed;
        }
        self.pairs.resize_with(posts.pairs.len(), || None);
        for (posted, kept) in posts.pairs.iter().zip(&mut self.pairs) {
            if let Some(kept) = kept.as_mut()
                && kept.place == posted.place
                && (Arc::ptr_eq(&kept.snapshot, &posted.snapshot)
                    || renders_same(&kept.snapshot, &posted.snapshot))
            {
                // The same series: hold the newer snapshot, so that the older can go.
                kept.snapshot = Arc::clone(&posted.snapshot);
                continue;
            }
            // The part this replaces is released first: the peak is the published
            // exposition and this one part, not two.
            *kept = None;
            if posted.snapshot.associations.is_empty() {
                // Before the first cycle, or nothing watched: no series, nothing to render.
                continue;
            }
            let started = Instant::now();
            let part = Part::render(posted.place.as_ref(), placed, &posted.snapshot);
            telemetry.record_render(posted.place.as_ref(), started.elapsed().as_secs_f64());
            *kept = Some(Rendered {
                place: posted.place.clone(),
                snapshot: Arc::clone(&posted.snapshot),
                part: Arc::new(part),
            });
        }
    }

    /// Each pair's part as kept now, for tests to tell whether one was rendered again.
    #[cfg(test)]
    fn parts(&self) -> Vec<Arc<Part>> {
        self.pairs
            .iter()
            .map(|kept| {
                kept.as_ref()
                    .map_or_else(Arc::default, |k| Arc::clone(&k.part))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn place(region: &str) -> Place {
        Place {
            account_id: "111111111111".into(),
            region: region.into(),
        }
    }

    fn last_cycle() -> CycleOutcome {
        CycleOutcome {
            finished: SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
            watched: 0,
            calls: 1,
            throttled: 0,
            failures: 0,
            error_kind: None,
            listed: true,
        }
    }

    /// A snapshot of `ids`, each polled successfully at `polled` seconds.
    fn snapshot(ids: &[&str], polled: u64) -> Arc<Snapshot> {
        let mut snapshot = Snapshot::default();
        for id in ids {
            let mut a = crate::snapshot::AssociationState::unknown(id);
            a.poll_ok = true;
            a.last_good_poll = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(polled));
            a.association.association_name = Some(format!("name-{id}"));
            snapshot.associations.push(a);
        }
        Arc::new(snapshot)
    }

    fn renders(telemetry: &Telemetry, region: &str) -> f64 {
        telemetry
            .gather()
            .iter()
            .find(|f| f.name() == "ssm_association_exporter_renders_total")
            .and_then(|f| {
                f.get_metric().iter().find(|m| {
                    m.get_label()
                        .iter()
                        .any(|l| l.name() == "region" && l.value() == region)
                })
            })
            .map_or(f64::NAN, |m| m.get_counter().get_value())
    }

    /// A cycle that read nothing new (only the time of its poll moved) renders nothing: the
    /// pair's part is the same buffers; a pair whose series changed renders alone.
    #[test]
    fn a_steady_cycle_renders_nothing() {
        let board = Board::new([Some(place("us-east-1")), Some(place("eu-west-1"))], "");
        let telemetry = Telemetry::new(true);
        let mut parts = Parts::default();
        let (a, b) = (
            "11111111-1111-1111-1111-111111111111",
            "22222222-2222-2222-2222-222222222222",
        );
        board.post(0, snapshot(&[a], 100), 1, last_cycle());
        board.post(1, snapshot(&[b], 100), 1, last_cycle());
        parts.update(&board.subscribe().borrow(), &telemetry);
        let first = parts.parts();
        assert_eq!(
            (
                renders(&telemetry, "us-east-1"),
                renders(&telemetry, "eu-west-1")
            ),
            (1.0, 1.0)
        );

        // Both pairs cycle again: nothing new in either, only later poll times.
        board.post(0, snapshot(&[a], 160), 2, last_cycle());
        board.post(1, snapshot(&[b], 160), 2, last_cycle());
        parts.update(&board.subscribe().borrow(), &telemetry);
        let steady = parts.parts();
        assert_eq!(
            (
                renders(&telemetry, "us-east-1"),
                renders(&telemetry, "eu-west-1")
            ),
            (1.0, 1.0)
        );
        for (before, after) in first.iter().zip(&steady) {
            assert!(Arc::ptr_eq(before, after));
        }

        // A new association in the second pair: it alone renders.
        board.post(
            1,
            snapshot(&[b, "33333333-3333-3333-3333-333333333333"], 220),
            3,
            last_cycle(),
        );
        parts.update(&board.subscribe().borrow(), &telemetry);
        let changed = parts.parts();
        assert_eq!(
            (
                renders(&telemetry, "us-east-1"),
                renders(&telemetry, "eu-west-1")
            ),
            (1.0, 2.0)
        );
        assert!(Arc::ptr_eq(&steady[0], &changed[0]));
        assert!(!Arc::ptr_eq(&steady[1], &changed[1]));

        // A failed poll shows (and its time is rendered while it lasts), and so does recovery.
        let mut failed = Snapshot::clone(&snapshot(&[a], 160));
        failed.associations[0].poll_ok = false;
        board.post(0, Arc::new(failed.clone()), 4, last_cycle());
        parts.update(&board.subscribe().borrow(), &telemetry);
        board.post(0, Arc::new(failed), 5, last_cycle());
        parts.update(&board.subscribe().borrow(), &telemetry);
        assert_eq!(renders(&telemetry, "us-east-1"), 2.0);
        board.post(0, snapshot(&[a], 340), 6, last_cycle());
        parts.update(&board.subscribe().borrow(), &telemetry);
        assert_eq!(renders(&telemetry, "us-east-1"), 3.0);
    }

    /// The renderer serves every change of the board: readiness once any pair has a cycle,
    /// `cycles` as the fewest any pair has, the generation it rendered, each pair's series
    /// with its place.
    #[tokio::test]
    async fn the_renderer_serves_the_whole_board() {
        let board = Board::new([Some(place("us-east-1")), Some(place("eu-west-1"))], "");
        let (publish, mut served) = watch::channel(Arc::new(Exposition::default()));
        let (stop, stopped) = watch::channel(false);
        let renderer = Renderer {
            board: board.subscribe(),
            telemetry: Telemetry::new(true),
            publish,
            served: Served::channel().0,
        };
        let task = tokio::spawn(renderer.run(stopped));
        let post = |slot: usize, cycles: u64, id: &str| {
            let mut snapshot = Snapshot::default();
            let mut a = crate::snapshot::AssociationState::unknown(id);
            a.poll_ok = true;
            snapshot.associations.push(a);
            board.post(slot, Arc::new(snapshot), cycles, last_cycle())
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
        let text = String::from_utf8(crate::render::gunzip(&e.body.gzip)).expect("utf-8");
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
