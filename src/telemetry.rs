//! The exporter's own metrics: API calls, cycles, build info. They live across cycles, unlike
//! the snapshot's series, and belong to one exporter instance: there is no global registry.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{
    CounterVec, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry,
};

use crate::config::Place;
use crate::ssm::{Operation, SsmError};

pub const NAMESPACE: &str = "ssm_association_exporter";

/// How one finished cycle of a pair went, made once by the scheduler: the pair's metrics
/// record it, and the board keeps it for the status page. A few numbers and a closed error
/// kind, never error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleOutcome {
    pub finished: SystemTime,
    pub duration: Duration,
    /// Associations the cycle ended with.
    pub watched: usize,
    pub calls: usize,
    /// Calls answered with throttling, after the SDK's retries.
    pub throttled: usize,
    /// Associations (or the listing) whose calls failed.
    pub failures: usize,
    /// From [`crate::ssm::SsmError::kind`]: the listing's, else the first failed association's.
    pub error_kind: Option<&'static str>,
    /// The cycle took its associations from ListAssociations rather than describing each.
    pub listed: bool,
}

impl CycleOutcome {
    /// Every call of the cycle succeeded.
    pub fn ok(&self) -> bool {
        self.failures == 0
    }
}

/// The labels that say which account and region a series is about, when `accounts` are
/// configured.
pub const PLACE_LABELS: [&str; 2] = ["account_id", "region"];

/// `labels`, then [`PLACE_LABELS`] when the series are placed.
pub fn with_place_labels(labels: &[&'static str], placed: bool) -> Vec<&'static str> {
    let place: &[&'static str] = if placed { &PLACE_LABELS } else { &[] };
    labels.iter().chain(place).copied().collect()
}

/// The values of [`PLACE_LABELS`] for a pair's series: none when the series are not placed,
/// empty ones for a pair without a place among placed ones.
pub fn place_values(placed: bool, place: Option<&Place>) -> Vec<&str> {
    match (placed, place) {
        (false, _) => Vec::new(),
        (true, Some(p)) => vec![p.account_id.as_str(), p.region.as_str()],
        (true, None) => vec!["", ""],
    }
}

/// One exporter's metrics. The per-pair ones carry [`PLACE_LABELS`] when the exporter was
/// made `placed`, and none otherwise; [`Telemetry::source`] hands out a pair's share.
#[derive(Debug, Clone)]
pub struct Telemetry {
    registry: Registry,
    placed: bool,
    /// Registered by the first [`Telemetry::events`] call, when events are configured.
    events: Arc<OnceLock<EventsTelemetry>>,
    api_requests: IntCounterVec,
    cycles: IntCounterVec,
    cycle_duration: GaugeVec,
    last_good_poll: GaugeVec,
    cycle_ok: IntGaugeVec,
    watched: IntGaugeVec,
    cycle_calls: IntGaugeVec,
    read_mode: IntGaugeVec,
    interval: GaugeVec,
    reload_ok: IntGauge,
    reload_time: Gauge,
    renders: IntCounterVec,
    render_seconds: CounterVec,
}

/// The metrics of one (account, region) pair: what its scheduler and poller record.
#[derive(Debug, Clone)]
pub struct PairTelemetry {
    telemetry: Telemetry,
    /// The values of [`PLACE_LABELS`], or nothing when the exporter is not placed.
    place: Vec<String>,
}

impl Telemetry {
    /// `placed`: the per-pair metrics carry `account_id` and `region`.
    pub fn new(placed: bool) -> Self {
        let registry = Registry::new();
        let with_place = |labels: &[&'static str]| with_place_labels(labels, placed);
        let api_requests = IntCounterVec::new(
            Opts::new(
                "api_requests_total",
                "SSM API calls made, by operation and outcome; a call that the SDK retried counts once, with its final outcome.",
            )
            .namespace(NAMESPACE),
            &with_place(&["operation", "outcome"]),
        )
        .expect("static metric options are valid");
        let cycles = IntCounterVec::new(
            Opts::new(
                "cycles_total",
                "Poll cycles run, by outcome: success when every SSM call of the cycle succeeded.",
            )
            .namespace(NAMESPACE),
            &with_place(&["outcome"]),
        )
        .expect("static metric options are valid");
        let cycle_duration = GaugeVec::new(
            Opts::new(
                "last_cycle_duration_seconds",
                "How long the last poll cycle took.",
            )
            .namespace(NAMESPACE),
            &with_place(&[]),
        )
        .expect("static metric options are valid");
        let last_good_poll = GaugeVec::new(
            Opts::new(
                "last_successful_cycle_timestamp_seconds",
                "When the last poll cycle in which every SSM call succeeded finished, in seconds since the epoch; 0 before the first.",
            )
            .namespace(NAMESPACE),
            &with_place(&[]),
        )
        .expect("static metric options are valid");
        let cycle_ok = IntGaugeVec::new(
            Opts::new(
                "last_cycle_success",
                "1 if every SSM call of the last poll cycle succeeded, 0 if one failed (a denied role, an unreachable region, an error); absent before the first cycle ends.",
            )
            .namespace(NAMESPACE),
            &with_place(&[]),
        )
        .expect("static metric options are valid");
        let watched = IntGaugeVec::new(
            Opts::new(
                "watched_associations",
                "Associations the last poll cycle watched.",
            )
            .namespace(NAMESPACE),
            &with_place(&[]),
        )
        .expect("static metric options are valid");
        let cycle_calls = IntGaugeVec::new(
            Opts::new(
                "last_cycle_api_requests",
                "SSM API calls the last poll cycle made: what change detection left to read.",
            )
            .namespace(NAMESPACE),
            &with_place(&[]),
        )
        .expect("static metric options are valid");
        let read_mode = IntGaugeVec::new(
            Opts::new(
                "association_read_mode",
                "How the last poll cycle found its associations: 1 for mode=\"list\" (ListAssociations, discovery or a listed explicit set) or for mode=\"describe\" (DescribeAssociation each, in explicit mode when that is cheaper or the listing was refused), 0 for the other.",
            )
            .namespace(NAMESPACE),
            &with_place(&["mode"]),
        )
        .expect("static metric options are valid");
        let interval = GaugeVec::new(
            Opts::new(
                "poll_interval_seconds",
                "The configured time between the starts of a pair's poll cycles: what the age of its last successful cycle is measured against.",
            )
            .namespace(NAMESPACE),
            &with_place(&[]),
        )
        .expect("static metric options are valid");
        let reload_ok = IntGauge::with_opts(
            Opts::new(
                "config_last_reload_successful",
                "1 if the last configuration reload succeeded, 0 if it was refused and the previous configuration still runs.",
            )
            .namespace(NAMESPACE),
        )
        .expect("static metric options are valid");
        reload_ok.set(1);
        let reload_time = Gauge::with_opts(
            Opts::new(
                "config_last_reload_success_timestamp_seconds",
                "When the running configuration was loaded, in seconds since the epoch.",
            )
            .namespace(NAMESPACE),
        )
        .expect("static metric options are valid");
        reload_time.set(unix_now());
        let build_info = IntGaugeVec::new(
            Opts::new(
                "build_info",
                "The version of the exporter, the git revision and branch it was built from (unknown when not built from a git checkout) and the Rust compiler's version; always 1.",
            )
            .namespace(NAMESPACE),
            &["version", "revision", "branch", "rustc_version"],
        )
        .expect("static metric options are valid");
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                env!("SAE_REVISION"),
                env!("SAE_BRANCH"),
                env!("SAE_RUSTC_VERSION"),
            ])
            .set(1);

        let renders = IntCounterVec::new(
            Opts::new(
                "renders_total",
                "Renderings of a pair's series into the exposition: one after each cycle or targeted poll that changed what the pair exports, none after one that changed nothing.",
            )
            .namespace(NAMESPACE),
            &with_place(&[]),
        )
        .expect("static metric options are valid");
        let render_seconds = CounterVec::new(
            Opts::new(
                "render_seconds_total",
                "Time spent rendering and compressing a pair's series.",
            )
            .namespace(NAMESPACE),
            &with_place(&[]),
        )
        .expect("static metric options are valid");

        let collectors: [Box<dyn Collector>; 14] = [
            Box::new(read_mode.clone()),
            Box::new(api_requests.clone()),
            Box::new(cycles.clone()),
            Box::new(cycle_duration.clone()),
            Box::new(last_good_poll.clone()),
            Box::new(cycle_ok.clone()),
            Box::new(watched.clone()),
            Box::new(cycle_calls.clone()),
            Box::new(interval.clone()),
            Box::new(reload_ok.clone()),
            Box::new(reload_time.clone()),
            Box::new(build_info),
            Box::new(renders.clone()),
            Box::new(render_seconds.clone()),
        ];
        for c in collectors {
            registry
                .register(c)
                .expect("each metric name is registered once");
        }
        Telemetry {
            registry,
            placed,
            events: Arc::default(),
            api_requests,
            cycles,
            cycle_duration,
            last_good_poll,
            cycle_ok,
            watched,
            cycle_calls,
            read_mode,
            interval,
            reload_ok,
            reload_time,
            renders,
            render_seconds,
        }
    }

    /// The share of one pair. Its counters start at zero for the outcomes every dashboard
    /// plots, so that rate() has a start.
    pub fn pair(&self, place: Option<&Place>) -> PairTelemetry {
        let place = place_values(self.placed, place)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let source = PairTelemetry {
            telemetry: self.clone(),
            place,
        };
        for op in Operation::ALL {
            self.api_requests
                .with_label_values(&source.labels(&[op.as_str(), "success"]));
        }
        for outcome in ["success", "failure"] {
            self.cycles.with_label_values(&source.labels(&[outcome]));
        }
        // Gauges that read 0 until the first cycle says otherwise, as they always have.
        let place = source.labels(&[]);
        self.cycle_duration.with_label_values(&place);
        self.last_good_poll.with_label_values(&place);
        self.watched.with_label_values(&place);
        self.cycle_calls.with_label_values(&place);
        self.renders.with_label_values(&place);
        self.render_seconds.with_label_values(&place);
        source
    }

    pub fn record_reload(&self, ok: bool) {
        self.reload_ok.set(i64::from(ok));
        if ok {
            self.reload_time.set(unix_now());
        }
    }

    /// One rendering of the series of the pair at `place`, which took `seconds`.
    pub fn record_render(&self, place: Option<&Place>, seconds: f64) {
        let place = place_values(self.placed, place);
        self.renders.with_label_values(&place).inc();
        self.render_seconds
            .with_label_values(&place)
            .inc_by(seconds.max(0.0));
    }

    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }

    /// The metrics of State Manager's events, registered by the first call, when events are
    /// configured, so that an exporter without them shows none; later calls share them.
    pub fn events(&self) -> EventsTelemetry {
        self.events.get_or_init(|| self.register_events()).clone()
    }

    /// The events' health, when events are configured.
    pub fn events_health(&self) -> Option<EventsHealth> {
        self.events.get().map(EventsTelemetry::health)
    }

    fn register_events(&self) -> EventsTelemetry {
        let received = IntCounterVec::new(
            Opts::new(
                "events_received_total",
                "State Manager events read from the queue, by outcome: applied (an association will be polled for it; for one its pair's last listing did not hold, the pair will be listed, at most once a minute), coalesced (that poll or listing was already due), ignored (an account, region, association or document this exporter does not watch), invalid (not a State Manager event).",
            )
            .namespace(NAMESPACE),
            &["outcome"],
        )
        .expect("static metric options are valid");
        let targeted = IntCounterVec::new(
            Opts::new(
                "targeted_polls_total",
                "Polls of single associations that events asked for, between the regular cycles.",
            )
            .namespace(NAMESPACE),
            &with_place_labels(&[], self.placed),
        )
        .expect("static metric options are valid");
        // A vector without labels, so that it has no series until the first receive answers:
        // a gauge at 0 would say the queue is down before it was ever read.
        let queue_up = IntGaugeVec::new(
            Opts::new(
                "events_queue_up",
                "1 while the last ReceiveMessage on the events queue succeeded, 0 while the queue is unreachable, denied or throttling (polling goes on); absent until the first receive ends.",
            )
            .namespace(NAMESPACE),
            &[],
        )
        .expect("static metric options are valid");
        let delay = Histogram::with_opts(
            HistogramOpts::new(
                "event_publish_delay_seconds",
                "From an event's time to the publish of its association's new values on /metrics.",
            )
            .namespace(NAMESPACE)
            .buckets(vec![0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0]),
        )
        .expect("static metric options are valid");
        for outcome in EVENT_OUTCOMES {
            received.with_label_values(&[outcome]);
        }
        let collectors: [Box<dyn Collector>; 4] = [
            Box::new(received.clone()),
            Box::new(targeted.clone()),
            Box::new(queue_up.clone()),
            Box::new(delay.clone()),
        ];
        for c in collectors {
            // A fresh registry, and names no other collector of it takes.
            let _ = self.registry.register(c);
        }
        EventsTelemetry {
            received,
            targeted,
            queue_up,
            delay,
        }
    }
}

/// What becomes of a received event; the values of `events_received_total`'s label.
pub const EVENT_OUTCOMES: [&str; 4] = ["applied", "coalesced", "ignored", "invalid"];

/// The metrics of State Manager's events, shared by the queue's reader and the schedulers.
#[derive(Debug, Clone)]
pub struct EventsTelemetry {
    received: IntCounterVec,
    targeted: IntCounterVec,
    queue_up: IntGaugeVec,
    delay: Histogram,
}

/// The events' health as the status page shows it, read from the collectors themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsHealth {
    /// Whether the last receive from the queue succeeded; `None` before the first ended.
    pub queue_up: Option<bool>,
    /// Events read, by each of [`EVENT_OUTCOMES`].
    pub received: Vec<(&'static str, u64)>,
}

impl EventsTelemetry {
    pub fn health(&self) -> EventsHealth {
        // Collected rather than asked by label: asking would make the series that stays
        // absent until the first receive ends.
        let queue_up = self
            .queue_up
            .collect()
            .first()
            .and_then(|family| family.get_metric().first())
            .map(|m| m.get_gauge().get_value() != 0.0);
        let received = EVENT_OUTCOMES
            .iter()
            .map(|outcome| (*outcome, self.received.with_label_values(&[outcome]).get()))
            .collect();
        EventsHealth { queue_up, received }
    }

    /// Counts a received event; `outcome` is one of [`EVENT_OUTCOMES`].
    pub fn record_event(&self, outcome: &'static str) {
        self.received.with_label_values(&[outcome]).inc();
    }

    /// Counts targeted polls of `polled` associations of the pair with these place label
    /// values: one per association, however many were polled together.
    pub fn record_targeted(&self, place: &[String], polled: u64) {
        let place: Vec<&str> = place.iter().map(String::as_str).collect();
        self.targeted.with_label_values(&place).inc_by(polled);
    }

    pub fn record_queue_up(&self, up: bool) {
        self.queue_up
            .with_label_values(&[] as &[&str])
            .set(i64::from(up));
    }

    pub fn record_delay(&self, seconds: f64) {
        self.delay.observe(seconds.max(0.0));
    }
}

impl PairTelemetry {
    /// The pair's place label values, or none when the exporter is not placed.
    pub fn place(&self) -> &[String] {
        &self.place
    }

    /// `first`, then the pair's place labels, if any.
    fn labels<'a>(&'a self, first: &[&'a str]) -> Vec<&'a str> {
        first
            .iter()
            .copied()
            .chain(self.place.iter().map(String::as_str))
            .collect()
    }

    pub fn record_call<T>(&self, operation: Operation, result: &Result<T, SsmError>) {
        let outcome = match result {
            Ok(_) => "success",
            Err(e) => e.kind(),
        };
        self.telemetry
            .api_requests
            .with_label_values(&self.labels(&[operation.as_str(), outcome]))
            .inc();
    }

    /// The pair's poll interval, at start and after each reload.
    pub fn record_interval(&self, interval: std::time::Duration) {
        self.telemetry
            .interval
            .with_label_values(&self.labels(&[]))
            .set(interval.as_secs_f64());
    }

    pub fn record_cycle(&self, cycle: &CycleOutcome) {
        let t = &self.telemetry;
        let place = self.labels(&[]);
        let ok = cycle.ok();
        t.cycles
            .with_label_values(&self.labels(&[if ok { "success" } else { "failure" }]))
            .inc();
        t.cycle_duration
            .with_label_values(&place)
            .set(cycle.duration.as_secs_f64());
        if ok {
            t.last_good_poll
                .with_label_values(&place)
                .set(crate::timestamp::unix(cycle.finished));
        }
        t.cycle_ok.with_label_values(&place).set(i64::from(ok));
        t.watched
            .with_label_values(&place)
            .set(i64::try_from(cycle.watched).unwrap_or(i64::MAX));
        t.cycle_calls
            .with_label_values(&place)
            .set(i64::try_from(cycle.calls).unwrap_or(i64::MAX));
        for (mode, on) in [("list", cycle.listed), ("describe", !cycle.listed)] {
            t.read_mode
                .with_label_values(&self.labels(&[mode]))
                .set(i64::from(on));
        }
    }
}

fn unix_now() -> f64 {
    crate::timestamp::unix(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The listener records into the events' metrics and the status page reads them, each
    /// through its own `events()`: both must be the one registered set of collectors.
    #[test]
    fn later_events_calls_share_the_collectors_the_first_registered() {
        let telemetry = Telemetry::new(false);
        assert_eq!(telemetry.events_health(), None);
        let listener = telemetry.events();
        let later = telemetry.events();
        listener.record_event("ignored");
        later.record_event("ignored");
        later.record_queue_up(true);

        let health = telemetry.events_health().expect("events are registered");
        assert_eq!(health.queue_up, Some(true));
        assert_eq!(
            health.received,
            [
                ("applied", 0),
                ("coalesced", 0),
                ("ignored", 2),
                ("invalid", 0)
            ]
        );
        let ignored: Vec<f64> = telemetry
            .gather()
            .iter()
            .filter(|f| f.name() == "ssm_association_exporter_events_received_total")
            .flat_map(|f| f.get_metric())
            .filter(|m| m.get_label().iter().any(|l| l.value() == "ignored"))
            .map(|m| m.get_counter().get_value())
            .collect();
        assert_eq!(ignored, [2.0]);
    }
}
