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

use crate::board::{Board, Exposition};
use crate::config::{Config, MIN_POLL_INTERVAL, Place, Shard};
use crate::limit::Limiter;
use crate::poll::{PollSettings, poll_once};
use crate::snapshot::Snapshot;
use crate::ssm::Ssm;
use crate::telemetry::{CycleRecord, SourceTelemetry};

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
    /// Every call of every cycle passes through it, so the limit holds across cycles.
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
    pub telemetry: SourceTelemetry,
    pub board: Board,
    /// What the renderer published: a cycle is reported once its result is served.
    pub served: watch::Receiver<Arc<Exposition>>,
    /// The latest configuration: a reload reaches every pair at once and never waits for a
    /// pair's queue, so no pair can be left on the old one.
    pub configs: watch::Receiver<Arc<Config>>,
}

impl<S: Ssm> Scheduler<S> {
    /// Runs cycles until `shutdown` turns true; a cycle under way then is abandoned, since its
    /// result would never be served.
    pub async fn run(
        mut self,
        mut controls: mpsc::Receiver<Control>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut ticks = ticks(self.pair.interval);
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
            if cycles > 0 {
                tokio::select! {
                    _ = ticks.tick() => {}
                    Some(Control::Poll(trigger)) = controls.recv() => waiting.push(trigger),
                    Ok(()) = self.configs.changed() => {
                        self.reload(&mut ticks);
                        continue;
                    }
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
            // Requests that arrived meanwhile are served by this cycle, and a configuration
            // that arrived meanwhile applies to it.
            while let Ok(Control::Poll(trigger)) = controls.try_recv() {
                waiting.push(trigger);
            }
            if self.configs.has_changed().unwrap_or(false) {
                self.reload(&mut ticks);
            }
            let started = Instant::now();
            let cycle = tokio::select! {
                cycle = poll_once(&self.ssm, &self.pair.limiter, &self.pair.poll, &snapshot, &self.telemetry).instrument(span.clone()) => cycle,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            cycles += 1;
            let elapsed = started.elapsed();
            let finished = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            self.telemetry.record_cycle(&CycleRecord {
                ok: cycle.failures == 0,
                seconds: elapsed.as_secs_f64(),
                finished_unix: finished.as_secs_f64(),
                watched: cycle.snapshot.associations.len(),
                calls: cycle.calls,
            });
            snapshot = Arc::new(cycle.snapshot);
            let generation = self.board.post(self.slot, snapshot.clone(), cycles);
            tokio::select! {
                served = self.served.wait_for(|e| e.generation >= generation) => if served.is_err() {
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

    /// Takes the configuration a reload posted, for the next cycles.
    fn reload(&mut self, ticks: &mut Interval) {
        let config = self.configs.borrow_and_update().clone();
        let before = self.pair.interval;
        self.pair = PairSettings::new(&config, self.shard, self.place.as_ref());
        if self.pair.interval != before {
            *ticks = self::ticks(self.pair.interval);
        }
    }
}

/// The interval between cycle starts. The first cycle runs at once, and the interval counts
/// from its start; a cycle longer than the interval pushes the next one back instead of
/// starting a burst of catch-up cycles. A config built without `config::parse` could hold a
/// zero interval, which `interval_at` rejects.
fn ticks(interval: Duration) -> Interval {
    let interval = interval.max(MIN_POLL_INTERVAL);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::board::Posts;
    use crate::config::{Discovery, TargetFilter, Watch};
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

    /// Starts a scheduler over `ssm`; returns what it publishes and the trigger and stop handles.
    fn start(
        ssm: Arc<Empty>,
        interval: Duration,
    ) -> (
        watch::Receiver<Posts>,
        mpsc::Sender<Control>,
        watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ) {
        let board = Board::new([None]);
        let published = board.subscribe();
        // No renderer here: serve every generation at once.
        let (_, served) = watch::channel(Arc::new(Exposition {
            generation: u64::MAX,
            ..Exposition::default()
        }));
        let (triggers, trigger_rx) = mpsc::channel(4);
        let (stop, stopped) = watch::channel(false);
        let scheduler = Scheduler {
            ssm,
            slot: 0,
            place: None,
            shard: Shard::ALL,
            pair: PairSettings {
                limiter: Limiter::new(1000.0, 1000, 4),
                poll: PollSettings {
                    watch: Watch::Discover(Discovery::default()),
                    full_refresh_interval: Duration::from_secs(3600),
                    cycle_timeout: Duration::from_secs(600),
                    concurrency: 4,
                    failed_targets: None,
                    shard: Shard::ALL,
                },
                interval,
            },
            telemetry: Telemetry::new(false).source(None),
            board,
            served,
            configs: watch::channel(Arc::new(crate::config::parse("").expect("valid"))).1,
        };
        let task = tokio::spawn(scheduler.run(trigger_rx, stopped));
        (published, triggers, stop, task)
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
        let (mut published, _triggers, stop, task) = start(ssm.clone(), Duration::from_secs(60));
        cycles_after(&mut published, 1).await;
        let first = tokio::time::Instant::now();
        cycles_after(&mut published, 3).await;
        assert_eq!(first.elapsed(), Duration::from_secs(120));
        assert_eq!(ssm.lists.load(Ordering::SeqCst), 3);
        stop.send_replace(true);
        task.await.expect("scheduler stops");
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_cycle_delays_the_next_instead_of_overlapping() {
        let ssm = Arc::new(Empty::slow(Duration::from_secs(90)));
        let start_time = tokio::time::Instant::now();
        let (mut published, _triggers, stop, task) = start(ssm.clone(), Duration::from_secs(60));
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
        let (_published, triggers, stop, task) = start(ssm.clone(), Duration::from_secs(3600));
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
}
