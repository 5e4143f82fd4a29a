//! The exporter's own metrics: API calls, cycles, build info. They live across cycles, unlike
//! the snapshot's series, and belong to one exporter instance: there is no global registry.

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::ssm::{Operation, SsmError};

pub const NAMESPACE: &str = "ssm_association_exporter";

/// What the scheduler reports of each finished cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleRecord {
    /// Every call of the cycle succeeded.
    pub ok: bool,
    pub seconds: f64,
    pub finished_unix: f64,
    pub watched: usize,
    pub calls: usize,
}

#[derive(Debug, Clone)]
pub struct Telemetry {
    registry: Registry,
    api_requests: IntCounterVec,
    cycles: IntCounterVec,
    cycle_duration: Gauge,
    last_success: Gauge,
    watched: IntGauge,
    cycle_calls: IntGauge,
    reload_ok: IntGauge,
    reload_time: Gauge,
}

impl Telemetry {
    pub fn new() -> Self {
        let registry = Registry::new();
        let api_requests = IntCounterVec::new(
            Opts::new(
                "api_requests_total",
                "SSM API calls made, by operation and outcome; a call that the SDK retried counts once, with its final outcome.",
            )
            .namespace(NAMESPACE),
            &["operation", "outcome"],
        )
        .expect("static metric options are valid");
        let cycles = IntCounterVec::new(
            Opts::new(
                "cycles_total",
                "Poll cycles run, by outcome: success when every SSM call of the cycle succeeded.",
            )
            .namespace(NAMESPACE),
            &["outcome"],
        )
        .expect("static metric options are valid");
        let cycle_duration = Gauge::with_opts(
            Opts::new(
                "last_cycle_duration_seconds",
                "How long the last poll cycle took.",
            )
            .namespace(NAMESPACE),
        )
        .expect("static metric options are valid");
        let last_success = Gauge::with_opts(
            Opts::new(
                "last_successful_cycle_timestamp_seconds",
                "When the last poll cycle in which every SSM call succeeded finished, in seconds since the epoch; 0 before the first.",
            )
            .namespace(NAMESPACE),
        )
        .expect("static metric options are valid");
        let watched = IntGauge::with_opts(
            Opts::new(
                "watched_associations",
                "Associations the last poll cycle watched.",
            )
            .namespace(NAMESPACE),
        )
        .expect("static metric options are valid");
        let cycle_calls = IntGauge::with_opts(
            Opts::new(
                "last_cycle_api_requests",
                "SSM API calls the last poll cycle made: what change detection left to read.",
            )
            .namespace(NAMESPACE),
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
                "The version of the exporter and of the Rust compiler it was built with; always 1.",
            )
            .namespace(NAMESPACE),
            &["version", "rustc_version"],
        )
        .expect("static metric options are valid");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("SAE_RUSTC_VERSION")])
            .set(1);
        // Zero series for the outcomes every dashboard plots, so rate() has a start.
        for op in Operation::ALL {
            api_requests.with_label_values(&[op.as_str(), "success"]);
        }
        for outcome in ["success", "failure"] {
            cycles.with_label_values(&[outcome]);
        }

        let collectors: [Box<dyn Collector>; 9] = [
            Box::new(api_requests.clone()),
            Box::new(cycles.clone()),
            Box::new(cycle_duration.clone()),
            Box::new(last_success.clone()),
            Box::new(watched.clone()),
            Box::new(cycle_calls.clone()),
            Box::new(reload_ok.clone()),
            Box::new(reload_time.clone()),
            Box::new(build_info),
        ];
        for c in collectors {
            registry
                .register(c)
                .expect("each metric name is registered once");
        }
        Telemetry {
            registry,
            api_requests,
            cycles,
            cycle_duration,
            last_success,
            watched,
            cycle_calls,
            reload_ok,
            reload_time,
        }
    }

    pub fn record_call<T>(&self, operation: Operation, result: &Result<T, SsmError>) {
        let outcome = match result {
            Ok(_) => "success",
            Err(e) => e.kind(),
        };
        self.api_requests
            .with_label_values(&[operation.as_str(), outcome])
            .inc();
    }

    pub fn record_cycle(&self, cycle: &CycleRecord) {
        self.cycles
            .with_label_values(&[if cycle.ok { "success" } else { "failure" }])
            .inc();
        self.cycle_duration.set(cycle.seconds);
        if cycle.ok {
            self.last_success.set(cycle.finished_unix);
        }
        self.watched
            .set(i64::try_from(cycle.watched).unwrap_or(i64::MAX));
        self.cycle_calls
            .set(i64::try_from(cycle.calls).unwrap_or(i64::MAX));
    }

    pub fn record_reload(&self, ok: bool) {
        self.reload_ok.set(i64::from(ok));
        if ok {
            self.reload_time.set(unix_now());
        }
    }

    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
