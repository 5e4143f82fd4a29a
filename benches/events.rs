//! Events benchmark: how soon a run's end reaches `/metrics`, and what polling costs, with
//! State Manager's events (EventBridge → SQS) and without. The exporter runs in this process
//! against the simulator (SSM and SQS on loopback, the real SDK clients on the other side).
//!
//!     cargo bench --bench events             # both parts, about 10 minutes
//!     cargo bench --bench events -- latency  # only the first
//!     cargo bench --bench events -- calls    # only the second
//!     cargo bench --bench events -- calls runs=0   # the second, with another run rate
//!     cargo bench --bench events -- junk     # only the third, about 40 s
//!
//! Latency: 100 associations each with a run of 20 targets in progress; the runs end at
//! random moments over a minute (every target set to a final status, as instances report);
//! a scraper reads `/metrics` every 50 ms and notes when each run's final status shows. Once
//! with events and a 15-minute poll, once with a 60 s poll and no events.
//!
//! Calls: a quiet fleet of 500 associations, 10 runs an hour, for half an hour of simulated
//! time at 10× speed (3 minutes): a 60 s poll alone (6 s scaled) against events with a
//! 15-minute poll (90 s scaled). SSM calls after the first cycle are counted and given per
//! real hour; at the end every association's series must equal the simulator's truth.
//!
//! Junk: discovery narrowed to 50 `patch-` associations of 60, at the default 5 calls/s and a
//! 5 s poll; 250 events naming made-up associations and 40 naming the 10 outside the prefix
//! arrive at once, then a real run fails. Its latency to `/metrics`, the cycles that ran on
//! time in 30 s, and the SSM calls the junk cost.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ssm_association_exporter::app::Exporter;
use ssm_association_exporter::config;
use ssm_association_exporter::server::ServerOptions;
use ssm_association_exporter::sim::{DEFAULT_ACCOUNT, DEFAULT_REGION, Sim, SimServer, SimTarget};
use ssm_association_exporter::sqs::aws::AwsQueue;
use ssm_association_exporter::ssm::aws::{AwsSsm, ClientOptions};
use tokio::net::TcpListener;

const LATENCY_ASSOCIATIONS: usize = 100;
const LATENCY_TARGETS: usize = 20;
const LATENCY_WINDOW: Duration = Duration::from_secs(60);
const SCRAPE_EVERY: Duration = Duration::from_millis(50);

const QUIET_ASSOCIATIONS: usize = 500;
/// Simulated time runs this much faster than the clock in the calls part.
const SPEEDUP: u32 = 10;
const QUIET_WINDOW: Duration = Duration::from_secs(180);
/// Runs an hour across the fleet, unless `runs=N` says otherwise.
const RUNS_PER_HOUR: u32 = 10;

fn main() {
    let only = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-') && !a.contains('='));
    let runs_per_hour = std::env::args()
        .find_map(|a| a.strip_prefix("runs=").and_then(|n| n.parse().ok()))
        .unwrap_or(RUNS_PER_HOUR);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        if only.is_none() || only.as_deref() == Some("latency") {
            latency().await;
        }
        if only.is_none() || only.as_deref() == Some("calls") {
            calls(runs_per_hour).await;
        }
        if only.is_none() || only.as_deref() == Some("junk") {
            junk().await;
        }
    });
}

fn options(server: &SimServer) -> ClientOptions {
    ClientOptions {
        region: Some(DEFAULT_REGION.to_owned()),
        endpoint_url: Some(server.endpoint_url()),
        static_credentials: Some(("AKIDBENCH".to_owned(), "bench".to_owned())),
        operation_timeout: Duration::from_secs(30),
        ..ClientOptions::default()
    }
}

/// An exporter over `sim` with `yaml`; with `queue`, reading its events.
async fn exporter(sim: &Sim, server: &SimServer, yaml: &str, queue: Option<&str>) -> Exporter {
    let yaml = match queue {
        Some(url) => format!("{yaml}events:\n  queue_url: {url}\n"),
        None => yaml.to_owned(),
    };
    let config = config::parse(&yaml).expect("valid config");
    let ssm = AwsSsm::connect(&options(server)).await.expect("client");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut exporter =
        Exporter::start(ssm, &config, listener, ServerOptions::default()).expect("exporter");
    exporter.wait_for_cycle(1).await.expect("first cycle");
    if queue.is_some() {
        let queue = AwsQueue::connect(&options(server), Some(server.endpoint_url()))
            .await
            .expect("queue client");
        exporter.listen(queue).expect("events configured");
    }
    sim.clear_requests();
    exporter
}

fn targets(prefix: &str, n: usize, status: &str) -> Vec<SimTarget> {
    (0..n)
        .map(|t| SimTarget::instance(format!("{prefix}{t:05}"), status))
        .collect()
}

/// The associations whose latest execution shows `status` on `/metrics`.
async fn showing(addr: std::net::SocketAddr, status: &str) -> Vec<String> {
    let body = scrape(addr).await;
    let wanted = format!("status=\"{status}\"");
    body.lines()
        .filter(|l| l.starts_with("ssm_association_execution_info{") && l.contains(&wanted))
        .filter_map(|l| {
            let start = l.find("association_id=\"")? + "association_id=\"".len();
            Some(l[start..start + 36].to_owned())
        })
        .collect()
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    String::from_utf8_lossy(&raw).into_owned()
}

/// A fixed pseudo-random sequence in [0, 1), so that both modes see the same moments.
fn randoms(seed: u64, n: usize) -> Vec<f64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn latency() {
    println!(
        "## Latency: a run's end to /metrics ({LATENCY_ASSOCIATIONS} runs of {LATENCY_TARGETS} targets ending over {} s)\n",
        LATENCY_WINDOW.as_secs()
    );
    println!("| mode | runs seen | p50 s | p99 s | max s | SSM calls |");
    println!("|---|---|---|---|---|---|");
    for events in [true, false] {
        let sim = Sim::new(7);
        let mut runs = Vec::new();
        for a in 0..LATENCY_ASSOCIATIONS {
            let id = sim.create_association(Some(&format!("lat-{a:03}")), "AWS-RunPatchBaseline");
            let run = sim
                .start_execution(
                    &id,
                    targets(&format!("i-{a:03}"), LATENCY_TARGETS, "InProgress"),
                )
                .expect("association exists");
            runs.push((id, run));
        }
        let server = sim.start().await.expect("simulator");
        let queue = sim.create_queue(DEFAULT_ACCOUNT, "events");
        sim.subscribe(&queue, DEFAULT_ACCOUNT, DEFAULT_REGION);
        let api = "api:\n  requests_per_second: 20\n  burst: 20\n";
        let (yaml, mode) = if events {
            (format!("poll_interval: 15m\n{api}"), "events, 15m poll")
        } else {
            (format!("poll_interval: 60s\n{api}"), "60 s poll, no events")
        };
        let exporter = exporter(&sim, &server, &yaml, events.then_some(queue.as_str())).await;
        let addr = exporter.local_addr();

        let at = randoms(42, runs.len());
        let start = Instant::now();
        let finisher = {
            let sim = sim.clone();
            let runs = runs.clone();
            tokio::spawn(async move {
                let mut order: Vec<(Duration, usize)> = at
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (LATENCY_WINDOW.mul_f64(*r), i))
                    .collect();
                order.sort();
                let mut ended = BTreeMap::new();
                for (when, i) in order {
                    tokio::time::sleep_until((start + when).into()).await;
                    let (id, run) = &runs[i];
                    for t in 0..LATENCY_TARGETS {
                        sim.set_target(id, run, &format!("i-{i:03}{t:05}"), "Success", "Success");
                    }
                    ended.insert(id.clone(), Instant::now());
                }
                ended
            })
        };
        let mut seen: BTreeMap<String, Instant> = BTreeMap::new();
        let deadline = start + LATENCY_WINDOW + Duration::from_secs(if events { 20 } else { 75 });
        while seen.len() < runs.len() && Instant::now() < deadline {
            for id in showing(addr, "Success").await {
                seen.entry(id).or_insert_with(Instant::now);
            }
            tokio::time::sleep(SCRAPE_EVERY).await;
        }
        let ended = finisher.await.expect("finisher");
        let mut delays: Vec<f64> = ended
            .iter()
            .filter_map(|(id, end)| seen.get(id).map(|s| s.duration_since(*end).as_secs_f64()))
            .collect();
        delays.sort_by(f64::total_cmp);
        let calls = sim
            .requests()
            .iter()
            .filter(|r| r.queue_url.is_none())
            .count();
        println!(
            "| {mode} | {}/{} | {:.2} | {:.2} | {:.2} | {calls} |",
            delays.len(),
            runs.len(),
            percentile(&delays, 0.5),
            percentile(&delays, 0.99),
            delays.last().copied().unwrap_or(f64::NAN),
        );
        exporter.shutdown().await;
        server.stop().await;
    }
    println!(
        "\n(Delays include up to {} ms of the scraper's own period.)\n",
        SCRAPE_EVERY.as_millis()
    );
}

async fn calls(runs_per_hour: u32) {
    let minutes = QUIET_WINDOW.as_secs() * u64::from(SPEEDUP) / 60;
    println!(
        "## SSM calls for a quiet fleet: {QUIET_ASSOCIATIONS} associations, {runs_per_hour} runs an hour, {minutes} simulated minutes at {SPEEDUP}x\n"
    );
    println!(
        "| mode | poll interval (scaled) | runs | SSM calls | per real hour | every series true at the end |"
    );
    println!("|---|---|---|---|---|---|");
    let mut per_hour = Vec::new();
    for events in [false, true] {
        let sim = Sim::new(9);
        let mut ids = Vec::new();
        for a in 0..QUIET_ASSOCIATIONS {
            let id = sim.create_association(Some(&format!("quiet-{a:03}")), "AWS-RunPatchBaseline");
            sim.start_execution(&id, targets(&format!("i-{a:03}"), 3, "Success"))
                .expect("association exists");
            ids.push(id);
        }
        let server = sim.start().await.expect("simulator");
        let queue = sim.create_queue(DEFAULT_ACCOUNT, "events");
        sim.subscribe(&queue, DEFAULT_ACCOUNT, DEFAULT_REGION);
        let interval = if events { 900 } else { 60 } / SPEEDUP;
        let yaml = format!(
            "poll_interval: {interval}s\napi:\n  requests_per_second: 1000\n  burst: 100\n"
        );
        let exporter = exporter(&sim, &server, &yaml, events.then_some(queue.as_str())).await;

        // Runs at fixed moments, the same in both modes.
        let runs = (QUIET_WINDOW.as_secs_f64() * f64::from(SPEEDUP) / 3600.0
            * f64::from(runs_per_hour))
        .round() as usize;
        let start = Instant::now();
        let mut started = Vec::new();
        for (n, r) in randoms(17, runs).into_iter().enumerate() {
            let at = start + QUIET_WINDOW.mul_f64((n as f64 + r) / runs as f64);
            tokio::time::sleep_until(at.into()).await;
            let id = &ids[(r * QUIET_ASSOCIATIONS as f64) as usize];
            let run = sim
                .start_execution(id, targets(&format!("i-r{n:02}"), 3, "Failed"))
                .expect("association exists");
            started.push((id.clone(), run));
        }
        tokio::time::sleep_until((start + QUIET_WINDOW).into()).await;
        let calls = sim
            .requests()
            .iter()
            .filter(|r| r.queue_url.is_none())
            .count();
        // The truth: each run's failed targets on /metrics, by the next cycle at the latest
        // without events, within seconds with them.
        if events {
            // The last run's events may still be on their way; each run is one targeted poll.
            let polled = tokio::time::timeout(
                Duration::from_secs(10),
                exporter.wait_for_targeted(runs as u64),
            )
            .await;
            assert!(polled.is_ok(), "every run's targeted poll");
        } else {
            exporter.poll_now().await.expect("cycle");
        }
        let body = scrape(exporter.local_addr()).await;
        // Only each association's last run is exported: its counts, and its ID in the info series.
        let last_runs: std::collections::HashMap<&String, &String> =
            started.iter().map(|(id, run)| (id, run)).collect();
        let true_everywhere = last_runs.iter().all(|(id, run)| {
            let association = format!("association_id=\"{id}\"");
            let named = body.lines().any(|l| {
                l.starts_with("ssm_association_execution_info{")
                    && l.contains(&association)
                    && l.contains(&format!("execution_id=\"{run}\""))
            });
            let counted = body.lines().any(|l| {
                l.starts_with("ssm_association_targets{")
                    && l.contains(&association)
                    && l.contains("status=\"Failed\"")
                    && l.ends_with(" 3")
            });
            named && counted
        });
        let hour = calls as f64 * 3600.0 / (QUIET_WINDOW.as_secs_f64() * f64::from(SPEEDUP));
        per_hour.push(hour);
        println!(
            "| {} | {}s ({}s) | {runs} | {calls} | {hour:.0} | {} |",
            if events {
                "events, 15m poll"
            } else {
                "60 s poll, no events"
            },
            interval * SPEEDUP,
            interval,
            if true_everywhere { "yes" } else { "no" },
        );
        exporter.shutdown().await;
        server.stop().await;
    }
    if let [poll, events] = per_hour[..] {
        println!(
            "\nSSM calls per hour: {:.1}x fewer with events",
            poll / events
        );
    }
}

/// An EventBridge event for association `id`.
fn event_body(id: &str) -> String {
    format!(
        r#"{{"version":"0","id":"7bf73129-1428-4cd3-a780-95db273d1602","detail-type":"EC2 State Manager Association State Change","source":"aws.ssm","account":"{DEFAULT_ACCOUNT}","time":"2026-12-03T12:00:00Z","region":"{DEFAULT_REGION}","resources":[],"detail":{{"association-id":"{id}","status":"Success"}}}}"#
    )
}

async fn junk() {
    const WINDOW: Duration = Duration::from_secs(30);
    let sim = Sim::new(11);
    let mut watched = Vec::new();
    for a in 0..50 {
        let id = sim.create_association(Some(&format!("patch-{a:02}")), "AWS-RunPatchBaseline");
        sim.start_execution(&id, targets(&format!("i-{a:03}"), 20, "Success"))
            .expect("association exists");
        watched.push(id);
    }
    let outside: Vec<String> = (0..10)
        .map(|a| sim.create_association(Some(&format!("other-{a:02}")), "AWS-RunPatchBaseline"))
        .collect();
    let server = sim.start().await.expect("simulator");
    let queue = sim.create_queue(DEFAULT_ACCOUNT, "events");
    sim.subscribe(&queue, DEFAULT_ACCOUNT, DEFAULT_REGION);
    let yaml = "poll_interval: 5s\ndiscovery:\n  name_prefix: patch-\n";
    let exporter = exporter(&sim, &server, yaml, Some(&queue)).await;
    let addr = exporter.local_addr();
    let start = Instant::now();
    let made_up = randoms(3, 250);
    for r in &made_up {
        let id = format!("5eedf00d-0000-4000-8000-{:012}", (r * 1e12) as u64);
        sim.send_raw(&queue, &event_body(&id));
    }
    for k in 0..40 {
        sim.send_raw(&queue, &event_body(&outside[k % outside.len()]));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let failed_at = Instant::now();
    sim.start_execution(&watched[0], targets("i-000", 20, "Failed"))
        .expect("association exists");
    let mut seen = None;
    while Instant::now() < start + WINDOW {
        if seen.is_none() && showing(addr, "Failed").await.contains(&watched[0]) {
            seen = Some(failed_at.elapsed());
        }
        tokio::time::sleep(SCRAPE_EVERY).await;
    }
    let body = scrape(addr).await;
    let cycles: f64 = body
        .lines()
        .filter(|l| l.starts_with("ssm_association_exporter_cycles_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let mut calls: BTreeMap<String, usize> = BTreeMap::new();
    for r in sim.requests().iter().filter(|r| r.queue_url.is_none()) {
        *calls.entry(r.operation.clone()).or_default() += 1;
    }
    println!("## Junk on the queue: 290 events for associations the exporter does not watch\n");
    println!(
        "| failed run on /metrics after | cycles in {} s (5 s poll) | SSM calls by operation |",
        WINDOW.as_secs()
    );
    println!("|---|---|---|");
    println!(
        "| {} | {} | {} |\n",
        seen.map_or("never".to_owned(), |d| format!("{:.2} s", d.as_secs_f64())),
        cycles,
        calls
            .iter()
            .map(|(op, n)| format!("{op} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    exporter.shutdown().await;
    server.stop().await;
}
