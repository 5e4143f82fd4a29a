//! When cycles run: at start, then every poll interval, and whenever one is asked for. There is
//! one scheduler per (account, region) pair, so that a slow or failing pair never holds up the
//! others; each runs its cycles one after another in a single task, so two cycles of a pair
//! never overlap. Each posts its snapshots on the shared [`Board`]; the board's renderer
//! publishes them.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Interval, MissedTickBehavior};
use tracing::{Instrument, error, info};

use crate::board::{Board, Served};
use crate::config::{Config, MIN_POLL_INTERVAL, Place, Shard};
use crate::hints::{Due, Hints};
use crate::limit::Limiter;
use crate::poll::{PollSettings, poll_once, poll_some};
use crate::snapshot::Snapshot;
use crate::ssm::Ssm;
use crate::telemetry::{CycleOutcome, EventsTelemetry, PairTelemetry};

/// A request for a cycle; answered with that cycle's number once its result is served.
pub type Trigger = oneshot::Sender<u64>;

/// What the rest of the exporter can ask of a running scheduler.
#[derive(Debug)]
pub enum Control {
    /// Run a cycle that starts after this request.
    Poll(Trigger),
}

/// What one pair runs with, derived from a configuration: at start and on every reload.
#[derive(Debug)]
pub struct PairSettings {
    /// Every call of every cycle passes through it, so the limit holds across cycles, and
    /// across reloads that leave the limit as it was.
    pub limiter: Limiter,
    pub poll: PollSettings,
    pub interval: Duration,
}

impl PairSettings {
    /// The settings of the pair at `place` under `config`, for this replica's `shard`.
    pub fn new(config: &Config, shard: Shard, place: Option<&Place>) -> Self {
        PairSettings {
            limiter: Limiter::for_api(&config.api),
            poll: PollSettings::for_place(config, shard, place),
            interval: config.poll_interval,
        }
    }

    /// Takes a reloaded `config`. The limiter stays, with the calls it has booked, unless the
    /// limit changed: a new one would grant a fresh burst at every reload.
    pub fn reload(&mut self, config: &Config, shard: Shard, place: Option<&Place>) {
        if !self.limiter.is_for(&config.api) {
            self.limiter = Limiter::for_api(&config.api);
        }
        self.poll = PollSettings::for_place(config, shard, place);
        self.interval = config.poll_interval;
    }
}

/// Everything one pair's scheduler needs; it owns the pair's client and limit.
#[derive(Debug)]
pub struct Scheduler<S> {
    pub ssm: S,
    /// Its slot on the board.
    pub slot: usize,
    pub place: Option<Place>,
    /// This replica's shard: fixed for the process, beside whatever configuration it runs.
    pub shard: Shard,
    pub pair: PairSettings,
    pub telemetry: PairTelemetry,
    pub board: Board,
    /// What the renderer published: a cycle is reported once its result is served.
    pub served: Served,
    /// The latest configuration: a reload reaches every pair at once and never waits for a
    /// pair's queue, so no pair can be left on the old one.
    pub configs: watch::Receiver<Arc<Config>>,
    /// Associations events say changed; polled between cycles.
    pub hints: Arc<Hints>,
    /// `None` when events are off.
    pub events: Option<EventsTelemetry>,
}

impl<S: Ssm> Scheduler<S> {
    /// Runs cycles until `shutdown` turns true; a cycle under way then is abandoned, since its
    /// result would never be served.
    pub async fn run(
        mut self,
        mut controls: mpsc::Receiver<Control>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        // When the last cycle started: a new interval counts from it.
        let mut last_start = tokio::time::Instant::now();
        let mut ticks = ticks(last_start, self.pair.interval);
        self.telemetry.record_interval(self.pair.interval);
        if let Some(events) = &self.events {
            // From zero, so that rate() has a start.
            events.record_targeted(self.telemetry.place(), 0);
        }
        let mut snapshot = Arc::new(Snapshot::default());
        // Every log line of the pair's cycles names it. At error level, so that the span exists
        // whatever the log level: a warning must still say which pair it is about.
        let span = match &self.place {
            Some(place) => tracing::error_span!(
                "pair",
                account_id = %place.account_id,
                region = %place.region
            ),
            None => tracing::Span::none(),
        };
        let mut cycles: u64 = 0;
        loop {
            let mut waiting: Vec<Trigger> = Vec::new();
            let mut hinted = false;
            if cycles > 0 {
                // Biased, so that a due cycle goes first, whatever events are pending.
                tokio::select! {
                    biased;
                    _ = shutdown.wait_for(|stop| *stop) => return,
                    _ = ticks.tick() => {}
                    Some(Control::Poll(trigger)) = controls.recv() => waiting.push(trigger),
                    Ok(()) = self.configs.changed() => {
                        self.reload(&mut ticks, last_start);
                        continue;
                    }
                    () = self.hints.due() => hinted = true,
                }
            }
            if hinted {
                // A few associations at a time, so that a due cycle waits for no more than
                // one batch of them; a listing is a cycle.
                if let Due::Polls(polls) = self.hints.take_due(self.pair.poll.concurrency) {
                    // Between cycles, in this task: never beside a cycle's own work.
                    tokio::select! {
                        polled = self.targeted(polls, snapshot.clone(), cycles).instrument(span.clone()) => match polled {
                            Some(next) => snapshot = next,
                            None => return,
                        },
                        _ = shutdown.wait_for(|stop| *stop) => return,
                    }
                    self.hints.set_known(snapshot.clone(), None);
                    continue;
                }
            }
            // Requests that arrived meanwhile are served by this cycle, and a configuration
            // that arrived meanwhile applies to it.
            while let Ok(Control::Poll(trigger)) = controls.try_recv() {
                waiting.push(trigger);
            }
            last_start = tokio::time::Instant::now();
            if self.configs.has_changed().unwrap_or(false) {
                self.reload(&mut ticks, last_start);
            }
            let started = Instant::now();
            let cycle = tokio::select! {
                cycle = poll_once(&self.ssm, &self.pair.limiter, &self.pair.poll, &snapshot, &self.telemetry).instrument(span.clone()) => cycle,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            cycles += 1;
            let elapsed = started.elapsed();
            let outcome = CycleOutcome {
                finished: SystemTime::now(),
                duration: elapsed,
                watched: cycle.snapshot.associations.len(),
                calls: cycle.calls,
                throttled: cycle.throttled,
                failures: cycle.failures,
                error_kind: cycle.error_kind,
                listed: cycle.listed,
            };
            self.telemetry.record_cycle(&outcome);
            snapshot = Arc::new(cycle.snapshot);
            self.hints.set_known(snapshot.clone(), Some(last_start));
            let generation = self
                .board
                .post(self.slot, snapshot.clone(), cycles, outcome);
            tokio::select! {
                served = self.served.reach(generation) => if served.is_err() {
                    error!("the renderer has stopped; this pair stops polling");
                    return;
                },
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            span.in_scope(|| {
                info!(
                    cycle = cycles,
                    associations = snapshot.associations.len(),
                    failures = cycle.failures,
                    api_requests = cycle.calls,
                    duration_ms = elapsed.as_millis() as u64,
                    "poll cycle finished"
                );
            });
            for trigger in waiting {
                // The asker may have given up waiting; nothing to do then.
                let _ = trigger.send(cycles);
            }
        }
    }

    /// Polls the associations events named, publishes, and returns the new snapshot; `None`
    /// once the renderer has stopped.
    async fn targeted(
        &self,
        hinted: Vec<(String, Option<SystemTime>)>,
        snapshot: Arc<Snapshot>,
        cycles: u64,
    ) -> Option<Arc<Snapshot>> {
        if hinted.is_empty() {
            return Some(snapshot);
        }
        let ids: Vec<String> = hinted.iter().map(|(id, _)| id.clone()).collect();
        let started = Instant::now();
        let polled = poll_some(
            &self.ssm,
            &self.pair.limiter,
            &self.pair.poll,
            &snapshot,
            &ids,
            &self.telemetry,
        )
        .await;
        let next = Arc::new(polled.snapshot);
        // Recorded before the post, so that the exposition it causes shows them.
        if let Some(events) = &self.events {
            events.record_targeted(self.telemetry.place(), ids.len() as u64);
            let now = SystemTime::now();
            for time in hinted.iter().filter_map(|(_, t)| *t) {
                events.record_delay(now.duration_since(time).unwrap_or_default().as_secs_f64());
            }
        }
        let generation =
            self.board
                .post_targeted(self.slot, next.clone(), cycles, ids.len() as u64);
        if self.served.reach(generation).await.is_err() {
            error!("the renderer has stopped; this pair stops polling");
            return None;
        }
        info!(
            associations = ids.len(),
            failures = polled.failures,
            api_requests = polled.calls,
            duration_ms = started.elapsed().as_millis() as u64,
            "targeted poll finished"
        );
        Some(next)
    }

    /// Takes the configuration a reload posted, for the next cycles. A new interval counts
    /// from `last_start`, the start of the last cycle, so that reloads that keep changing it
    /// never hold the next cycle back past the later of its old and new due times.
    fn reload(&mut self, ticks: &mut Interval, last_start: tokio::time::Instant) {
        let config = self.configs.borrow_and_update().clone();
        let before = self.pair.interval;
        self.pair.reload(&config, self.shard, self.place.as_ref());
        self.hints.set_settings(self.pair.poll.clone());
        self.telemetry.record_interval(self.pair.interval);
        if self.pair.interval != before {
            *ticks = self::ticks(last_start, self.pair.interval);
        }
    }
}

/// The interval between cycle starts, counted from `from`, a cycle's start (the first cycle
/// runs at once); a due time already past is now. A cycle that starts late (a long one before it,
/// or a batch of targeted polls) is one cycle, never a burst of catch-up cycles, and the ones
/// after it keep their due times. A config built without
/// `config::parse` could hold a zero interval, which `interval_at` rejects.
fn ticks(from: tokio::time::Instant, interval: Duration) -> Interval {
    let interval = interval.max(MIN_POLL_INTERVAL);
    let next = (from + interval).max(tokio::time::Instant::now());
    let mut ticks = tokio::time::interval_at(next, interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    ticks
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::board::Posts;
    use crate::config::{Discovery, Watch};
    use crate::events::Event;
    use crate::hints::{COALESCE, HintOutcome, MIN_LISTING_SPACING};
    use crate::ssm::TargetFilter;
    use crate::ssm::{
        Association, AssociationQuery, Execution, ExecutionQuery, Page, SsmError, Target,
    };
    use crate::telemetry::Telemetry;

    /// An account with no associations, whose listing takes `delay` and is counted.
    #[derive(Debug, Default)]
    struct Empty {
        delay: Duration,
        lists: AtomicUsize,
        running: AtomicUsize,
        most_running: AtomicUsize,
    }

    impl Empty {
        fn slow(delay: Duration) -> Self {
            Empty {
                delay,
                ..Empty::default()
            }
        }
    }

    impl Ssm for Empty {
        async fn list_associations(
            &self,
            _: &AssociationQuery,
            _: Option<String>,
        ) -> Result<Page<Association>, SsmError> {
            self.lists.fetch_add(1, Ordering::SeqCst);
            let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_running.fetch_max(running, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(Page {
                items: Vec::new(),
                next_token: None,
            })
        }
        async fn describe_association(&self, _: &str) -> Result<Association, SsmError> {
            Err(SsmError::AssociationDoesNotExist)
        }
        async fn describe_association_executions(
            &self,
            _: &str,
            _: &ExecutionQuery,
            _: Option<String>,
        ) -> Result<Page<Execution>, SsmError> {
            Err(SsmError::AssociationDoesNotExist)
        }
        async fn describe_association_execution_targets(
            &self,
            _: &str,
            _: &str,
            _: &[TargetFilter],
            _: Option<String>,
        ) -> Result<Page<Target>, SsmError> {
            Err(SsmError::AssociationDoesNotExist)
        }
    }

    /// A scheduler under test: what it publishes, and its trigger, stop and reload handles.
    struct Started {
        published: watch::Receiver<Posts>,
        triggers: mpsc::Sender<Control>,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
        configs: watch::Sender<Arc<Config>>,
        hints: Arc<Hints>,
    }

    /// Starts a scheduler over `ssm`.
    fn start<S: Ssm + Send + Sync + 'static>(ssm: Arc<S>, interval: Duration) -> Started {
        let (configs_tx, configs) =
            watch::channel(Arc::new(crate::config::parse("").expect("valid")));
        let board = Board::new([None], "");
        let published = board.subscribe();
        // No renderer here: serve every generation at once.
        let (serve, served) = Served::channel();
        serve.send_replace(u64::MAX);
        let (triggers, trigger_rx) = mpsc::channel(4);
        let (stop, stopped) = watch::channel(false);
        let poll = PollSettings {
            watch: Watch::Discover(Discovery::default()),
            full_refresh_interval: Duration::from_secs(3600),
            cycle_timeout: Duration::from_secs(600),
            concurrency: 4,
            failed_targets: None,
            shard: Shard::ALL,
        };
        let hints = Arc::new(Hints::new(poll.clone()));
        let scheduler = Scheduler {
            ssm,
            slot: 0,
            place: None,
            shard: Shard::ALL,
            pair: PairSettings {
                limiter: Limiter::new(1000.0, 1000, 4),
                poll: poll.clone(),
                interval,
            },
            telemetry: Telemetry::new(false).pair(None),
            board,
            served,
            configs,
            hints: hints.clone(),
            events: None,
        };
        let task = tokio::spawn(scheduler.run(trigger_rx, stopped));
        Started {
            published,
            triggers,
            stop,
            task,
            configs: configs_tx,
            hints,
        }
    }

    async fn cycles_after(published: &mut watch::Receiver<Posts>, n: u64) {
        published
            .wait_for(|b| b.cycles() >= n)
            .await
            .expect("scheduler runs");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cycle_at_start_then_one_per_interval() {
        let ssm = Arc::new(Empty::default());
        let Started {
            mut published,
            stop,
            task,
            ..
        } = start(ssm.clone(), Duration::from_secs(60));
        cycles_after(&mut published, 1).await;
        let first = tokio::time::Instant::now();
        cycles_after(&mut published, 3).await;
        assert_eq!(first.elapsed(), Duration::from_secs(120));
        assert_eq!(ssm.lists.load(Ordering::SeqCst), 3);
        stop.send_replace(true);
        task.await.expect("scheduler stops");
    }

    /// Twenty reloads, one a second, alternating 4s and 5s: each new interval counts from the
    /// last cycle's start, so cycles go on every 4 s (at 4.5 s the 4 s due time is past, and
    /// so on), where restarting the timer at each change gave no cycle at all.
    #[tokio::test(start_paused = true)]
    async fn reloads_that_keep_changing_the_interval_do_not_hold_cycles_back() {
        let ssm = Arc::new(Empty::default());
        let Started {
            mut published,
            stop,
            task,
            configs,
            ..
        } = start(ssm.clone(), Duration::from_secs(5));
        cycles_after(&mut published, 1).await;
        let first = tokio::time::Instant::now();
        for k in 0..20u64 {
            tokio::time::sleep_until(first + Duration::from_millis(k * 1000 + 500)).await;
            let interval = if k % 2 == 0 { "4s" } else { "5s" };
            let config =
                crate::config::parse(&format!("poll_interval: {interval}\n")).expect("valid");
            configs.send_replace(Arc::new(config));
        }
        tokio::time::sleep_until(first + Duration::from_secs(20)).await;
        assert_eq!(
            published.borrow().cycles(),
            5,
            "at 0, 4.5, 8.5, 12.5 and 16.5 s"
        );
        assert_eq!(ssm.lists.load(Ordering::SeqCst), 5);
        stop.send_replace(true);
        task.await.expect("scheduler stops");
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_cycle_delays_the_next_instead_of_overlapping() {
        let ssm = Arc::new(Empty::slow(Duration::from_secs(90)));
        let start_time = tokio::time::Instant::now();
        let Started {
            mut published,
            stop,
            task,
            ..
        } = start(ssm.clone(), Duration::from_secs(60));
        cycles_after(&mut published, 3).await;
        // Cycles of 90 s with a 60 s interval: back to back, never two at once.
        assert_eq!(start_time.elapsed(), Duration::from_secs(270));
        assert_eq!(ssm.most_running.load(Ordering::SeqCst), 1);
        stop.send_replace(true);
        task.await.expect("scheduler stops");
    }

    #[tokio::test(start_paused = true)]
    async fn triggers_during_a_cycle_are_served_by_the_next_one_together() {
        let ssm = Arc::new(Empty::slow(Duration::from_secs(5)));
        let Started {
            triggers,
            stop,
            task,
            ..
        } = start(ssm.clone(), Duration::from_secs(3600));
        let ask = || {
            let (reply, answer) = oneshot::channel();
            triggers
                .try_send(Control::Poll(reply))
                .expect("scheduler listens");
            answer
        };
        let before_start = ask();
        // Let the first cycle begin its (slow) listing.
        while ssm.lists.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let during = [ask(), ask()];
        assert_eq!(before_start.await.expect("answered"), 1);
        for answer in during {
            assert_eq!(answer.await.expect("answered"), 2);
        }
        assert_eq!(ssm.lists.load(Ordering::SeqCst), 2);
        stop.send_replace(true);
        task.await.expect("scheduler stops");
    }

    /// An account of `count` associations that never ran, whose DescribeAssociation takes
    /// `describe`; the start of each listing is recorded.
    #[derive(Debug)]
    struct Listed {
        count: usize,
        describe: Duration,
        listings: std::sync::Mutex<Vec<tokio::time::Instant>>,
        described: AtomicUsize,
    }

    impl Listed {
        fn id(k: usize) -> String {
            format!("00000000-0000-4000-8000-{k:012}")
        }

        fn new(count: usize, describe: Duration) -> Self {
            Listed {
                count,
                describe,
                listings: std::sync::Mutex::new(Vec::new()),
                described: AtomicUsize::new(0),
            }
        }

        fn listings(&self) -> Vec<tokio::time::Instant> {
            self.listings.lock().expect("not poisoned").clone()
        }
    }

    impl Ssm for Listed {
        async fn list_associations(
            &self,
            _: &AssociationQuery,
            _: Option<String>,
        ) -> Result<Page<Association>, SsmError> {
            self.listings
                .lock()
                .expect("not poisoned")
                .push(tokio::time::Instant::now());
            Ok(Page {
                items: (0..self.count)
                    .map(|k| Association {
                        association_id: Listed::id(k),
                        ..Association::default()
                    })
                    .collect(),
                next_token: None,
            })
        }
        async fn describe_association(&self, id: &str) -> Result<Association, SsmError> {
            tokio::time::sleep(self.describe).await;
            self.described.fetch_add(1, Ordering::SeqCst);
            Ok(Association {
                association_id: id.to_owned(),
                ..Association::default()
            })
        }
        async fn describe_association_executions(
            &self,
            _: &str,
            _: &ExecutionQuery,
            _: Option<String>,
        ) -> Result<Page<Execution>, SsmError> {
            Ok(Page {
                items: Vec::new(),
                next_token: None,
            })
        }
        async fn describe_association_execution_targets(
            &self,
            _: &str,
            _: &str,
            _: &[TargetFilter],
            _: Option<String>,
        ) -> Result<Page<Target>, SsmError> {
            Ok(Page {
                items: Vec::new(),
                next_token: None,
            })
        }
    }

    fn event_for(id: &str) -> Event {
        Event {
            account: "123456789012".to_owned(),
            region: "us-east-1".to_owned(),
            association_id: id.to_owned(),
            time: None,
            document_name: None,
        }
    }

    /// Events for 40 watched associations, each poll 1 s, 4 side by side: taken 4 at a time,
    /// so every cycle starts within one batch (1 s) of its due time, where polling all 40 as
    /// one batch held the 5 s cycle back 10 s.
    #[tokio::test(start_paused = true)]
    async fn pending_targeted_polls_never_hold_a_cycle_back() {
        let ssm = Arc::new(Listed::new(40, Duration::from_secs(1)));
        let Started {
            mut published,
            stop,
            task,
            hints,
            ..
        } = start(ssm.clone(), Duration::from_secs(5));
        cycles_after(&mut published, 1).await;
        let first = tokio::time::Instant::now();
        for k in 0..40 {
            assert_eq!(hints.add(&event_for(&Listed::id(k))), HintOutcome::Applied);
        }
        tokio::time::sleep_until(first + Duration::from_millis(20_900)).await;
        let late: Vec<Duration> = ssm
            .listings()
            .iter()
            .zip(0..)
            .map(|(at, k)| at.duration_since(first + Duration::from_secs(5 * k)))
            .collect();
        assert_eq!(late.len(), 5, "cycles at 0, 5, 10, 15 and 20 s: {late:?}");
        assert!(
            late.iter().all(|l| *l <= Duration::from_secs(1)),
            "each within a batch of its due time: {late:?}"
        );
        assert_eq!(
            ssm.described.load(Ordering::SeqCst),
            40,
            "every event served"
        );
        stop.send_replace(true);
        task.await.expect("scheduler stops");
    }

    /// In discovery, events naming associations the last listing did not hold cost no call of
    /// their own: the first asks for a listing, the rest wait for it, and the next listing
    /// events ask for comes no sooner than a minute after.
    #[tokio::test(start_paused = true)]
    async fn events_for_unknown_associations_coalesce_into_one_listing_a_minute() {
        let ssm = Arc::new(Listed::new(2, Duration::ZERO));
        let Started {
            mut published,
            stop,
            task,
            hints,
            ..
        } = start(ssm.clone(), Duration::from_secs(3600));
        cycles_after(&mut published, 1).await;
        let first = tokio::time::Instant::now();
        let unknown = |k: usize| event_for(&format!("11111111-0000-4000-8000-{k:012}"));
        assert_eq!(hints.add(&unknown(0)), HintOutcome::Applied);
        for k in 1..250 {
            assert_eq!(hints.add(&unknown(k)), HintOutcome::Coalesced);
        }
        cycles_after(&mut published, 2).await;
        assert_eq!(
            first.elapsed(),
            COALESCE,
            "one listing, half a second later"
        );
        // More, at once: one listing, a minute after the last.
        for k in 250..500 {
            let outcome = hints.add(&unknown(k));
            assert_eq!(outcome == HintOutcome::Applied, k == 250, "event {k}");
        }
        cycles_after(&mut published, 3).await;
        assert_eq!(first.elapsed(), COALESCE + MIN_LISTING_SPACING);
        assert_eq!(ssm.listings().len(), 3);
        assert_eq!(
            ssm.described.load(Ordering::SeqCst),
            0,
            "no call of their own"
        );
        // A known association's event is still a targeted poll.
        assert_eq!(hints.add(&event_for(&Listed::id(1))), HintOutcome::Applied);
        published
            .wait_for(|b| b.pairs().iter().map(|s| s.targeted).sum::<u64>() >= 1)
            .await
            .expect("scheduler runs");
        assert_eq!(ssm.described.load(Ordering::SeqCst), 1);
        assert_eq!(ssm.listings().len(), 3);
        stop.send_replace(true);
        task.await.expect("scheduler stops");
    }

    /// A reload that leaves the limit as it was keeps the limiter and the calls it booked: at
    /// one call a second, the call after a reload still waits its second.
    #[tokio::test(start_paused = true)]
    async fn a_reload_keeps_the_rate_limit_it_does_not_change() {
        let config =
            crate::config::parse("api:\n  requests_per_second: 1\n  burst: 1\n").expect("valid");
        let mut pair = PairSettings::new(&config, Shard::ALL, None);
        let start = tokio::time::Instant::now();
        pair.limiter.run(async {}).await;
        pair.reload(&config, Shard::ALL, None);
        pair.limiter.run(async {}).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        // A changed limit is a new limiter, from now.
        let faster =
            crate::config::parse("api:\n  requests_per_second: 2\n  burst: 1\n").expect("valid");
        pair.reload(&faster, Shard::ALL, None);
        pair.limiter.run(async {}).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
