//! When cycles run: at start, then every poll interval, and whenever one is asked for. It is the
//! only writer of the published exposition, and since it runs cycles one after another in a
//! single task, two cycles never overlap.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::MissedTickBehavior;
use tracing::{error, info};

use crate::config::Watch;
use crate::poll::poll_once;
use crate::render::render;
use crate::server::Exposition;
use crate::snapshot::Snapshot;
use crate::ssm::Ssm;
use crate::telemetry::Telemetry;

/// A request for a cycle; answered with that cycle's number once it is published.
pub type Trigger = oneshot::Sender<u64>;

#[derive(Debug)]
pub struct Scheduler<S> {
    pub ssm: S,
    pub watch: Watch,
    pub interval: Duration,
    pub telemetry: Telemetry,
    pub publish: watch::Sender<Arc<Exposition>>,
}

impl<S: Ssm> Scheduler<S> {
    /// Runs cycles until `shutdown` turns true; a cycle under way then is abandoned, since its
    /// result would never be served.
    pub async fn run(
        self,
        mut triggers: mpsc::Receiver<Trigger>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        // The first cycle runs at once; the interval counts from its start.
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + self.interval, self.interval);
        // A cycle longer than the interval pushes the next one back instead of starting
        // a burst of catch-up cycles.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut snapshot = Snapshot::default();
        let mut cycles: u64 = 0;
        self.publish_rendered(&snapshot, cycles);
        loop {
            let mut waiting: Vec<Trigger> = Vec::new();
            if cycles > 0 {
                tokio::select! {
                    _ = ticks.tick() => {}
                    Some(trigger) = triggers.recv() => waiting.push(trigger),
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
            // Triggers that arrived meanwhile are served by this same cycle.
            while let Ok(trigger) = triggers.try_recv() {
                waiting.push(trigger);
            }
            let started = Instant::now();
            let cycle = tokio::select! {
                cycle = poll_once(&self.ssm, &self.watch, &snapshot, &self.telemetry) => cycle,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            cycles += 1;
            let elapsed = started.elapsed();
            let finished = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            self.telemetry.record_cycle(
                cycle.failures == 0,
                elapsed.as_secs_f64(),
                finished.as_secs_f64(),
                cycle.snapshot.associations.len(),
            );
            snapshot = cycle.snapshot;
            self.publish_rendered(&snapshot, cycles);
            info!(
                cycle = cycles,
                associations = snapshot.associations.len(),
                failures = cycle.failures,
                duration_ms = elapsed.as_millis() as u64,
                "poll cycle finished"
            );
            for trigger in waiting {
                // The asker may have given up waiting; nothing to do then.
                let _ = trigger.send(cycles);
            }
        }
    }

    fn publish_rendered(&self, snapshot: &Snapshot, cycles: u64) {
        match render(snapshot, self.telemetry.gather()) {
            Ok(body) => {
                self.publish.send_replace(Arc::new(Exposition {
                    body: Bytes::from(body),
                    cycles,
                }));
            }
            // Keep serving the previous exposition: stale numbers beat none.
            Err(e) => error!(error = %e, "cannot render metrics; serving the previous ones"),
        }
    }
}
