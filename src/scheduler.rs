//! When cycles run: at start, then every poll interval, and whenever one is asked for. It is the
//! only writer of the published exposition, and since it runs cycles one after another in a
//! single task, two cycles never overlap.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Interval, MissedTickBehavior};
use tracing::{error, info};

use crate::config::{Config, MIN_POLL_INTERVAL};
use crate::limit::Limiter;
use crate::poll::{PollSettings, poll_once};
use crate::render::render;
use crate::server::Exposition;
use crate::snapshot::Snapshot;
use crate::ssm::Ssm;
use crate::telemetry::{CycleRecord, Telemetry};

/// A request for a cycle; answered with that cycle's number once it is published.
pub type Trigger = oneshot::Sender<u64>;

/// What the rest of the exporter can ask of a running scheduler.
#[derive(Debug)]
pub enum Control {
    /// Run a cycle that starts after this request.
    Poll(Trigger),
    /// A new configuration, for the cycles that start after it; `None` when a reload was
    /// refused, which the reload metrics report. Answered once the outcome is served.
    Reload(Option<Box<Config>>, oneshot::Sender<()>),
}

/// Everything a scheduler needs; it owns the source, the limit and the exporter's metrics.
#[derive(Debug)]
pub struct Scheduler<S> {
    pub ssm: S,
    /// Every call of every cycle passes through it, so the limit holds across cycles.
    pub limiter: Limiter,
    pub settings: PollSettings,
    pub interval: Duration,
    pub telemetry: Telemetry,
    /// Where each cycle's rendering goes; the server reads the other end.
    pub publish: watch::Sender<Arc<Exposition>>,
}

impl<S: Ssm> Scheduler<S> {
    /// Runs cycles until `shutdown` turns true; a cycle under way then is abandoned, since its
    /// result would never be served.
    pub async fn run(
        mut self,
        mut controls: mpsc::Receiver<Control>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut ticks = ticks(self.interval);
        let mut snapshot = Snapshot::default();
        let mut cycles: u64 = 0;
        self.publish_rendered(&snapshot, cycles);
        loop {
            let mut waiting: Vec<Trigger> = Vec::new();
            if cycles > 0 {
                tokio::select! {
                    _ = ticks.tick() => {}
                    Some(control) = controls.recv() => match control {
                        Control::Poll(trigger) => waiting.push(trigger),
                        Control::Reload(config, done) => {
                            self.reload(config, &mut ticks);
                            self.publish_rendered(&snapshot, cycles);
                            let _ = done.send(());
                            continue;
                        }
                    },
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
            // Requests that arrived meanwhile: polls are served by this cycle, reloads apply
            // to it.
            while let Ok(control) = controls.try_recv() {
                match control {
                    Control::Poll(trigger) => waiting.push(trigger),
                    Control::Reload(config, done) => {
                        self.reload(config, &mut ticks);
                        self.publish_rendered(&snapshot, cycles);
                        let _ = done.send(());
                    }
                }
            }
            let started = Instant::now();
            let cycle = tokio::select! {
                cycle = poll_once(&self.ssm, &self.limiter, &self.settings, &snapshot, &self.telemetry) => cycle,
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
            snapshot = cycle.snapshot;
            self.publish_rendered(&snapshot, cycles);
            info!(
                cycle = cycles,
                associations = snapshot.associations.len(),
                failures = cycle.failures,
                api_requests = cycle.calls,
                duration_ms = elapsed.as_millis() as u64,
                "poll cycle finished"
            );
            for trigger in waiting {
                // The asker may have given up waiting; nothing to do then.
                let _ = trigger.send(cycles);
            }
        }
    }

    /// Takes a reloaded configuration for the next cycles, or records a refused reload.
    fn reload(&mut self, config: Option<Box<Config>>, ticks: &mut Interval) {
        let Some(config) = config else {
            self.telemetry.record_reload(false);
            return;
        };
        self.settings = PollSettings::from(config.as_ref());
        self.limiter = Limiter::for_api(&config.api);
        if config.poll_interval != self.interval {
            self.interval = config.poll_interval;
            *ticks = self::ticks(self.interval);
        }
        self.telemetry.record_reload(true);
        info!(config = %config.summary(), "configuration reloaded");
    }

    /// Renders the snapshot, and its gzip form, once for every scrape until the next.
    fn publish_rendered(&self, snapshot: &Snapshot, cycles: u64) {
        match render(snapshot, self.telemetry.gather()) {
            Ok(body) => {
                self.publish
                    .send_replace(Arc::new(Exposition::new(Bytes::from(body), cycles)));
            }
            // Keep serving the previous bytes (stale numbers beat none), but count the cycle,
            // so that whoever waits for it is not left waiting.
            Err(e) => {
                error!(error = %e, "cannot render metrics; serving the previous ones");
                self.publish.send_modify(|current| {
                    *current = Arc::new(Exposition {
                        cycles,
                        ..Exposition::clone(current)
                    });
                });
            }
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
    use crate::config::{Discovery, TargetFilter, Watch};
    use crate::ssm::{
        Association, AssociationQuery, Execution, ExecutionQuery, Page, SsmError, Target,
    };

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
        watch::Receiver<Arc<Exposition>>,
        mpsc::Sender<Control>,
        watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ) {
        let (publish, published) = watch::channel(Arc::new(Exposition::default()));
        let (triggers, trigger_rx) = mpsc::channel(4);
        let (stop, stopped) = watch::channel(false);
        let scheduler = Scheduler {
            ssm,
            limiter: Limiter::new(1000.0, 1000, 4),
            settings: PollSettings {
                watch: Watch::Discover(Discovery::default()),
                full_refresh_interval: Duration::from_secs(3600),
                cycle_timeout: Duration::from_secs(600),
                concurrency: 4,
                failed_targets: None,
                shard: crate::config::Shard::ALL,
            },
            interval,
            telemetry: Telemetry::new(),
            publish,
        };
        let task = tokio::spawn(scheduler.run(trigger_rx, stopped));
        (published, triggers, stop, task)
    }

    async fn cycles_after(published: &mut watch::Receiver<Arc<Exposition>>, n: u64) {
        published
            .wait_for(|e| e.cycles >= n)
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
