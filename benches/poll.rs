//! Poll-cycle benchmark: the real exporter binary, polling the simulator over loopback under a
//! simulated account rate limit, measured from outside. Prints one row per scenario.
//!
//!     cargo bench --bench poll                 # every scenario
//!     cargo bench --bench poll -- 50x200       # the scenarios whose name contains 50x200
//!
//! The simulator runs in this process and the exporter in its own, so that the exporter's
//! peak RSS is its own and not the simulator's million targets.

mod common;

use std::time::Instant;

use common::{cpu_seconds, field, peak_rss_kib, scrape, wait_for};
use ssm_association_exporter::sim::{Faults, Sim, SimTarget};

struct Scenario {
    associations: usize,
    targets: usize,
    /// Calls a second the simulated account allows; the exporter is configured to the same.
    rate: f64,
}

impl Scenario {
    fn name(&self) -> String {
        format!("{}x{}", self.associations, self.targets)
    }

    /// Calls of a first cycle in discovery mode: the listing, then per association its
    /// executions and every page of its targets.
    fn first_cycle_calls(&self) -> usize {
        self.associations.div_ceil(50) + self.associations * (1 + self.targets.div_ceil(50))
    }

    /// The steady-state bound issue 3 sets: ceil(associations/50) + 1.
    fn steady_bound(&self) -> usize {
        self.associations.div_ceil(50) + 1
    }
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        associations: 50,
        targets: 200,
        rate: 100.0,
    },
    Scenario {
        associations: 500,
        targets: 200,
        rate: 500.0,
    },
    Scenario {
        associations: 500,
        targets: 2000,
        rate: 1000.0,
    },
];

/// Steady cycles measured after the first.
const STEADY_CYCLES: u64 = 3;

struct Row {
    name: String,
    first_calls: usize,
    first_bound: usize,
    steady_calls: Vec<usize>,
    steady_bound: usize,
    first_seconds: f64,
    first_seconds_bound: f64,
    throttled: usize,
    series_ok: bool,
    peak_rss_mib: f64,
    first_cpu_ms: f64,
    steady_cpu_ms: f64,
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let mut rows = Vec::new();
    for scenario in SCENARIOS
        .iter()
        .filter(|s| filter.is_empty() || filter.iter().any(|f| s.name().contains(f.as_str())))
    {
        eprintln!(
            "running {} at {} calls/s ...",
            scenario.name(),
            scenario.rate
        );
        rows.push(runtime.block_on(run(scenario)));
    }
    print_table(&rows);
}

async fn run(scenario: &Scenario) -> Row {
    let sim = Sim::new(7);
    let statuses = [
        "Success", "Success", "Success", "Success", "Failed", "TimedOut",
    ];
    for a in 0..scenario.associations {
        let id = sim.create_association(Some(&format!("bench-{a:04}")), "AWS-RunPatchBaseline");
        let targets = (0..scenario.targets)
            .map(|t| {
                SimTarget::instance(
                    format!("i-{a:04}{t:013}"),
                    statuses[(a + t) % statuses.len()],
                )
            })
            .collect();
        sim.start_execution(&id, targets)
            .expect("association exists");
    }
    sim.set_faults(Faults {
        rate_limit: Some(scenario.rate),
        ..Faults::default()
    });
    let server = sim.start().await.expect("simulator starts");

    let dir = std::env::temp_dir().join(format!("sae-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join(format!("{}.yaml", scenario.name()));
    std::fs::write(
        &config,
        format!(
            "region: us-east-2\nendpoint_url: {}\npoll_interval: 2s\ncycle_timeout: 1h\napi:\n  requests_per_second: {}\n  burst: 10\n  max_in_flight: 8\n",
            server.endpoint_url(),
            scenario.rate
        ),
    )
    .expect("write config");

    let (child, lines, addr) = common::spawn_exporter(&config);
    let pid = child.id();

    let started = Instant::now();
    let first = wait_for(&lines, "poll cycle finished");
    let wall = started.elapsed().as_secs_f64();
    let first_cpu = cpu_seconds(pid);
    let first_seconds = field(&first, "duration_ms")
        .parse::<f64>()
        .unwrap_or(wall * 1000.0)
        / 1000.0;
    let first_calls: usize = field(&first, "api_requests").parse().unwrap_or(0);
    let throttled = sim.requests().iter().filter(|r| r.status == 400).count();

    let mut steady_calls = Vec::new();
    for _ in 0..STEADY_CYCLES {
        let line = wait_for(&lines, "poll cycle finished");
        steady_calls.push(field(&line, "api_requests").parse().unwrap_or(usize::MAX));
    }
    let steady_cpu = (cpu_seconds(pid) - first_cpu) / STEADY_CYCLES as f64;

    let metrics = scrape(&addr).await;
    let counted: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("ssm_association_targets{"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum();
    let series_ok = counted == (scenario.associations * scenario.targets) as f64;
    let peak_rss_mib = peak_rss_kib(pid) / 1024.0;

    common::stop(child);
    server.stop().await;

    Row {
        name: scenario.name(),
        first_calls,
        first_bound: scenario.first_cycle_calls(),
        steady_calls,
        steady_bound: scenario.steady_bound(),
        first_seconds,
        first_seconds_bound: scenario.first_cycle_calls() as f64 / scenario.rate,
        throttled,
        series_ok,
        peak_rss_mib,
        first_cpu_ms: first_cpu * 1000.0,
        steady_cpu_ms: steady_cpu * 1000.0,
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "| scenario | first-cycle calls (lower bound) | steady-cycle calls (bound) | first cycle s (calls/R) | ratio | throttled | all targets counted | peak RSS MiB | CPU ms first cycle | CPU ms per steady cycle |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} ({}) | {} ({}) | {:.2} ({:.2}) | {:.3} | {} | {} | {:.1} | {:.0} | {:.1} |",
            r.name,
            r.first_calls,
            r.first_bound,
            r.steady_calls
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            r.steady_bound,
            r.first_seconds,
            r.first_seconds_bound,
            r.first_seconds / r.first_seconds_bound,
            r.throttled,
            if r.series_ok { "yes" } else { "NO" },
            r.peak_rss_mib,
            r.first_cpu_ms,
            r.steady_cpu_ms,
        );
    }
}
