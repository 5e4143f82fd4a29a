//! Scrape benchmark: requests/s and latency of `/metrics` under wrk, next to nginx serving the
//! same bytes from a file as the practical ceiling, at about 10,000 and 100,000 series, with
//! and without gzip; the exporter's latency under wrk while poll cycles run back to back; and,
//! at a fixed request rate as scrapers really send them, the latency of the requests that came
//! during a poll cycle next to that of the requests that came between two.
//!
//!     cargo bench --bench scrape          # needs wrk and nginx (Debian's wrk and nginx-light)
//!     cargo bench --bench scrape -- 10000 # only about 10,000 series
//!     cargo bench --bench scrape -- 10000 paced # only the fixed-rate rows
//!     cargo bench --bench scrape -- 10000 paced rate=200 # polling at 200 calls/s, not 100
//!     cargo bench --bench scrape -- 10000 wrk   # only the wrk rows, not the fixed-rate ones
//!
//! Everything runs on loopback; wrk, nginx and the exporter share the machine's cores, and the
//! simulator has them at the lowest priority.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{cpu_seconds, field, number_arg, scrape, spawn_exporter, stop, wait_for};
use ssm_association_exporter::sim::{Sim, SimServer, SimTarget};

/// wrk's run per measurement.
const DURATION: &str = "20s";
/// A handful of scrapers, as a Prometheus HA pair with a few ad-hoc clients would be; more
/// connections on two cores measure queueing, not the server.
const CONNECTIONS: &str = "4";

struct Measure {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == SIMULATE) {
        let associations = args
            .get(at + 1)
            .and_then(|n| n.parse().ok())
            .expect("--simulate takes a number of associations");
        simulate(associations);
        return;
    }
    let dir = std::env::temp_dir().join(format!("sae-scrape-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // `cargo bench --bench scrape -- 10000` runs only the 10,000-series part.
    let only: Option<usize> = number_arg();
    let paced_only = args.iter().any(|a| a == "paced");
    let wrk_only = args.iter().any(|a| a == "wrk");
    // `rate=100`: the fixed-rate part's calls per second while polling.
    let cycle_rate: u64 = args
        .iter()
        .find_map(|a| a.strip_prefix("rate="))
        .map_or(CYCLE_RATE, |r| r.parse().expect("rate=<calls per second>"));
    let mut rows = Vec::new();
    let mut paced_rows = Vec::new();
    for associations in [1_000, 10_000] {
        // The fixed-rate part runs at about 10,000 series only.
        if only.is_some_and(|series| series != associations * 10)
            || (paced_only && associations != 1_000)
        {
            continue;
        }
        eprintln!("setting up {associations} associations ...");
        let simulator = Simulator::start(associations);
        let endpoint = simulator.endpoint_url.clone();
        let quiet = config(
            &dir,
            "quiet",
            &endpoint,
            "poll_interval: 1h\napi:\n  requests_per_second: 5000\n  burst: 100\n  max_in_flight: 8\n",
        );
        let (child, lines, addr) = spawn_exporter(&quiet);
        wait_for(&lines, "poll cycle finished");
        let body = tokio::runtime::Runtime::new()
            .expect("tokio runtime")
            .block_on(scrape(&addr));
        let body = body
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default()
            .to_owned();
        let series = body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count();
        if !paced_only {
            let url = format!("http://{addr}/metrics");
            let nginx = Nginx::start(&dir, body.as_bytes());
            for gzip in [false, true] {
                let exporter = wrk(&url, gzip);
                let ceiling = wrk(&nginx.url(), gzip);
                rows.push((series, gzip, "idle", exporter, Some(ceiling)));
            }
            nginx.stop();
        }
        stop(child);

        if associations == 1_000 {
            if !paced_only {
                rows.extend(under_wrk_while_polling(&dir, &endpoint, series));
            }
            if !wrk_only {
                paced_rows.extend(paced_against_cycles(
                    &dir,
                    &endpoint,
                    series,
                    associations as u64,
                    cycle_rate,
                ));
            }
        }
        simulator.stop();
    }
    print_table(&rows);
    if !paced_rows.is_empty() {
        println!();
        print_paced(&paced_rows);
    }
}

/// wrk against an exporter whose cycles run back to back, every target re-read every cycle at
/// 20 times the default call rate: a cycle runs all the while wrk scrapes.
fn under_wrk_while_polling(
    dir: &Path,
    endpoint: &str,
    series: usize,
) -> Vec<(usize, bool, &'static str, Measure, Option<Measure>)> {
    let busy = config(
        dir,
        "busy",
        endpoint,
        &format!(
            "poll_interval: 1s\nfull_refresh_interval: 0s\napi:\n  requests_per_second: {CYCLE_RATE}\n  burst: 10\n  max_in_flight: 4\n"
        ),
    );
    let (child, lines, addr) = spawn_exporter(&busy);
    wait_for(&lines, "poll cycle finished");
    let rows = [false, true]
        .into_iter()
        .map(|gzip| {
            let during = wrk(&format!("http://{addr}/metrics"), gzip);
            (series, gzip, "polling", during, None)
        })
        .collect();
    stop(child);
    rows
}

/// `associations` associations whose latest run has targets in 4 (status, detailed status)
/// combinations: 10 series each.
async fn fleet(associations: usize) -> (Sim, SimServer) {
    let sim = Sim::new(9);
    let kinds = [
        ("Success", "Success"),
        ("Failed", "Failed"),
        ("TimedOut", "ExecutionTimedOut"),
        ("Failed", "Undeliverable"),
    ];
    for a in 0..associations {
        let id = sim.create_association(Some(&format!("scrape-{a:05}")), "AWS-RunPatchBaseline");
        let targets = (0..8)
            .map(|t| {
                let (status, detailed) = kinds[t % kinds.len()];
                SimTarget::instance(format!("i-{a:05}{t:012}"), status).detailed(detailed)
            })
            .collect();
        sim.start_execution(&id, targets)
            .expect("association exists");
    }
    let server = sim.start().await.expect("simulator starts");
    (sim, server)
}

fn config(dir: &Path, name: &str, endpoint_url: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    let text = format!("region: us-east-2\nendpoint_url: {endpoint_url}\n{extra}");
    std::fs::write(&path, text).expect("write config");
    path
}

/// The argument that makes this benchmark the simulator's process instead.
const SIMULATE: &str = "--simulate";

/// The simulated SSM endpoint in a process of its own, scheduled as SCHED_IDLE (`chrt --idle`).
/// It stands for AWS, whose work costs the exporter's machine nothing. In the benchmark's own
/// process, and even at nice 19, a core it held was handed to a waking scrape only at the end
/// of the simulator's time slice, which put about 1.5 ms on the p99 of gzip scrapes during
/// cycles; the kernel preempts an idle-class thread at once.
struct Simulator {
    child: Child,
    endpoint_url: String,
}

impl Simulator {
    fn start(associations: usize) -> Simulator {
        use std::io::BufRead;
        let mut child = Command::new("chrt")
            .args(["--idle", "0"])
            .arg(std::env::current_exe().expect("this benchmark's path"))
            .args([SIMULATE, &associations.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the simulator's process starts (chrt is in util-linux)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the simulator's endpoint");
        assert!(line.starts_with("http://"), "the simulator said {line:?}");
        Simulator {
            child,
            endpoint_url: line.trim().to_owned(),
        }
    }

    /// Closing its standard input is the simulator's sign to stop.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The simulator's process: serves until its standard input closes.
fn simulate(associations: usize) {
    use std::io::{Read, Write};
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (sim, server) = runtime.block_on(fleet(associations));
    println!("{}", server.endpoint_url());
    std::io::stdout().flush().expect("stdout");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    runtime.block_on(server.stop());
    drop(sim);
}

/// nginx on a free loopback port serving `body` (and its gzip form) as /metrics.
struct Nginx {
    child: Child,
    port: u16,
}

impl Nginx {
    fn start(dir: &Path, body: &[u8]) -> Nginx {
        use std::io::Write;
        let root = dir.join("www");
        std::fs::create_dir_all(&root).expect("nginx root");
        std::fs::write(root.join("metrics"), body).expect("write body");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(body).expect("gzip");
        std::fs::write(root.join("metrics.gz"), gz.finish().expect("gzip")).expect("write gzip");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nworker_processes auto;\nuser root;\npid {dir}/nginx.pid;\nerror_log {dir}/nginx-error.log;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {dir}/tmp;\n  proxy_temp_path {dir}/tmp;\n  fastcgi_temp_path {dir}/tmp;\n  uwsgi_temp_path {dir}/tmp;\n  scgi_temp_path {dir}/tmp;\n  server {{\n    listen 127.0.0.1:{port};\n    root {root};\n    location = /metrics {{\n      default_type \"text/plain; version=0.0.4; charset=utf-8\";\n      gzip_static on;\n    }}\n  }}\n}}\n",
                dir = dir.display(),
                root = root.display(),
            ),
        )
        .expect("write nginx.conf");
        let mut child = Command::new("nginx")
            .args([
                "-c",
                conf.to_str().expect("utf-8"),
                "-p",
                dir.to_str().expect("utf-8"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts (apt-get install nginx-light)");
        // nginx logs nothing when it is ready; its port answering is the sign.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Nginx { child, port };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "nginx did not listen on {port}; see {}/nginx-error.log",
            dir.display()
        );
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.port)
    }

    /// SIGTERM to the master, which stops its workers (SIGKILL would orphan them).
    fn stop(self) {
        stop(self.child);
    }
}

/// wrk against `url`, with `Accept-Encoding: gzip` if asked: requests/s, p50 and p99.
fn wrk(url: &str, gzip: bool) -> Measure {
    let mut command = Command::new("wrk");
    command.args(["-t", "2", "-c", CONNECTIONS, "-d", DURATION, "--latency"]);
    if gzip {
        command.args(["-H", "Accept-Encoding: gzip"]);
    }
    let out = command
        .arg(url)
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let number = |line_start: &str| -> f64 {
        text.lines()
            .find(|l| l.trim_start().starts_with(line_start))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
            .map_or(f64::NAN, |v| milliseconds(&v))
    };
    let requests_per_second = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        eprintln!("wrk reported errors for {url}:\n{text}");
    }
    Measure {
        requests_per_second,
        p50_ms: number("50%"),
        p99_ms: number("99%"),
    }
}

/// The fixed-rate part: one exporter whose cycles re-read every target at `rate` calls/s and
/// start twice as often as a cycle lasts, so that it spends about half its time in a cycle and
/// half between cycles; scrapers at a fixed rate for `PACED_SECONDS`, each request counted as
/// due during a cycle or between two, from the cycles the exporter logs. Both kinds come from
/// the same process, connections and minutes, interleaved: whatever else slows the machine
/// falls on both alike, which comparing one exporter's run with another's (tried first) could
/// not promise.
fn paced_against_cycles(
    dir: &Path,
    endpoint: &str,
    series: usize,
    associations: u64,
    rate: u64,
) -> Vec<PacedRow> {
    // A full cycle takes about two calls per association (its executions, then the targets of
    // the latest), plus a page of the association list per 50.
    let every = (2 * (2 * associations + associations / 50)).div_ceil(rate);
    let cycling = config(
        dir,
        "cycling",
        endpoint,
        &format!(
            "poll_interval: {every}s\nfull_refresh_interval: 0s\napi:\n  requests_per_second: {rate}\n  burst: 10\n  max_in_flight: 4\n"
        ),
    );
    let (child, mut lines, addr) = spawn_exporter(&cycling);
    wait_for(&lines, "poll cycle finished");
    let pid = child.id();
    let mut rows = Vec::new();
    for gzip in [false, true] {
        let cpu_before = cpu_seconds(pid);
        // A cycle still running when the scrapers stop is logged when it finishes, within
        // one interval.
        let watch_until = Instant::now() + Duration::from_secs(PACED_SECONDS + every + 5);
        let watcher = std::thread::spawn(move || cycle_windows(lines, watch_until));
        let (start, samples) = paced(&addr, gzip);
        let cpu = cpu_seconds(pid) - cpu_before;
        let (returned, windows) = watcher.join().expect("log watcher");
        lines = returned;
        let (mut during, mut between): (Vec<_>, Vec<_>) = samples
            .into_iter()
            .partition(|(due, _)| windows.iter().any(|(from, to)| from <= due && due <= to));
        let (during_by_second, between_by_second) =
            (by_second(&during, start), by_second(&between, start));
        rows.push(PacedRow {
            series,
            gzip,
            rate,
            cycles: windows
                .iter()
                .filter(|(from, _)| *from < start + Duration::from_secs(PACED_SECONDS))
                .count(),
            cpu_share: cpu / PACED_SECONDS as f64,
            during: latencies(&mut during),
            between: latencies(&mut between),
            during_second_p99: median_p99_of_seconds_only_in(&during_by_second, &between_by_second),
            between_second_p99: median_p99_of_seconds_only_in(
                &between_by_second,
                &during_by_second,
            ),
        });
    }
    stop(child);
    rows
}

/// Calls per second while polling, unless `rate=N` says otherwise: 20 times the default, as
/// the saturating rows' busy exporter polls; a full cycle of the 10,000-series fleet lasts
/// about 20 s.
const CYCLE_RATE: u64 = 100;

/// The cycles the exporter logs until `until`, each as when it ran, and the log back.
fn cycle_windows(
    lines: mpsc::Receiver<String>,
    until: Instant,
) -> (mpsc::Receiver<String>, Vec<(Instant, Instant)>) {
    let mut windows = Vec::new();
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            // The line comes once the cycle's exposition is served, so the window ends then;
            // `duration_ms` counts the calls only, which puts the window's start late by the
            // rendering's few milliseconds.
            Ok(line) if line.contains("poll cycle finished") => {
                let now = Instant::now();
                let ms: u64 = field(&line, "duration_ms").parse().expect("duration_ms");
                windows.push((now - Duration::from_millis(ms), now));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    (lines, windows)
}

struct PacedRow {
    series: usize,
    gzip: bool,
    rate: u64,
    cycles: usize,
    cpu_share: f64,
    during: Latencies,
    between: Latencies,
    /// The median, over the seconds spent wholly during cycles, of each second's p99.
    during_second_p99: f64,
    between_second_p99: f64,
}

struct Latencies {
    requests: usize,
    p50_ms: f64,
    p99_ms: f64,
}

fn latencies(samples: &mut [(Instant, Duration)]) -> Latencies {
    samples.sort_by_key(|(_, latency)| *latency);
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1)))
            .map_or(f64::NAN, |(_, l)| l.as_secs_f64() * 1000.0)
    };
    Latencies {
        requests: samples.len(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
    }
}

/// Requests by the whole second of the run they were due in.
fn by_second(
    samples: &[(Instant, Duration)],
    start: Instant,
) -> BTreeMap<u64, Vec<(Instant, Duration)>> {
    let mut seconds: BTreeMap<u64, Vec<_>> = BTreeMap::new();
    for sample in samples {
        seconds
            .entry((sample.0 - start).as_secs())
            .or_default()
            .push(*sample);
    }
    seconds
}

/// The median of each second's p99, over the seconds of `these` that hold none of `those`:
/// seconds spent wholly on one side.
fn median_p99_of_seconds_only_in(
    these: &BTreeMap<u64, Vec<(Instant, Duration)>>,
    those: &BTreeMap<u64, Vec<(Instant, Duration)>>,
) -> f64 {
    median(
        these
            .iter()
            .filter(|(second, _)| !those.contains_key(second))
            .map(|(_, samples)| latencies(&mut samples.clone()).p99_ms)
            .collect(),
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Scrapers at a fixed rate: each of `PACED_SCRAPERS` keep-alive connections sends a request
/// every `1 / PACED_RATE` seconds, for `PACED_SECONDS`. Latency counts from when a request was
/// due, so a request held up by a slow one before it is charged for the wait (no coordinated
/// omission). This is the load Prometheus puts on an exporter, unlike wrk's back-to-back
/// requests, under which any other work on two cores shows in the tail by construction.
/// Returns when the run started, and when each request was due with its latency.
fn paced(addr: &str, gzip: bool) -> (Instant, Vec<(Instant, Duration)>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let period = Duration::from_secs_f64(1.0 / PACED_RATE);
    let start = Instant::now() + Duration::from_millis(100);
    let scrapers: Vec<_> = (0..PACED_SCRAPERS)
        .map(|i| {
            let addr = addr.to_owned();
            std::thread::spawn(move || {
                let stream = std::net::TcpStream::connect(&addr).expect("connect to exporter");
                stream.set_nodelay(true).expect("nodelay");
                let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                let mut writer = stream;
                let request = format!(
                    "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n{}\r\n",
                    if gzip {
                        "Accept-Encoding: gzip\r\n"
                    } else {
                        ""
                    }
                );
                let offset = period.mul_f64(i as f64 / PACED_SCRAPERS as f64);
                let mut samples = Vec::new();
                let mut body = Vec::new();
                for n in 0.. {
                    let due = start + offset + period * n;
                    if due > start + Duration::from_secs(PACED_SECONDS) {
                        break;
                    }
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    writer.write_all(request.as_bytes()).expect("send");
                    let mut length = 0;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        reader.read_line(&mut line).expect("read header");
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().expect("content length");
                        }
                    }
                    body.resize(length, 0);
                    reader.read_exact(&mut body).expect("read body");
                    samples.push((due, due.elapsed()));
                }
                samples
            })
        })
        .collect();
    let samples = scrapers
        .into_iter()
        .flat_map(|s| s.join().expect("scraper thread"))
        .collect();
    (start, samples)
}

/// 4 scrapers at 50 requests/s each for 4 minutes: 48,000 requests per row.
const PACED_SCRAPERS: u32 = 4;
const PACED_RATE: f64 = 50.0;
const PACED_SECONDS: u64 = 240;

fn print_paced(rows: &[PacedRow]) {
    println!(
        "| series | gzip | calls/s while polling | cycles | exporter CPU | requests during cycles / between | p50 ms during / between | p99 ms during / between | p99 change | median of each second's p99 ms, during / between | its change |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let change = |during: f64, between: f64| format!("{:+.0}%", (during / between - 1.0) * 100.0);
    for row in rows {
        let (d, b) = (&row.during, &row.between);
        println!(
            "| {} | {} | {} | {} | {:.0}% of a core | {} / {} | {:.2} / {:.2} | {:.2} / {:.2} | {} | {:.2} / {:.2} | {} |",
            row.series,
            if row.gzip { "yes" } else { "no" },
            row.rate,
            row.cycles,
            row.cpu_share * 100.0,
            d.requests,
            b.requests,
            d.p50_ms,
            b.p50_ms,
            d.p99_ms,
            b.p99_ms,
            change(d.p99_ms, b.p99_ms),
            row.during_second_p99,
            row.between_second_p99,
            change(row.during_second_p99, row.between_second_p99),
        );
    }
}

/// wrk's latencies (`812.00us`, `1.25ms`, `2.01s`) in milliseconds.
fn milliseconds(v: &str) -> f64 {
    let (number, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (v, f64::NAN)
    };
    number.parse::<f64>().map_or(f64::NAN, |n| n * scale)
}

fn print_table(rows: &[(usize, bool, &str, Measure, Option<Measure>)]) {
    println!(
        "| series | gzip | exporter | exporter req/s | nginx req/s (same bytes) | ratio | exporter p50 ms | exporter p99 ms | nginx p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (series, gzip, state, exporter, nginx) in rows {
        let (ceiling, ratio, nginx_p99) = match nginx {
            Some(n) => (
                format!("{:.0}", n.requests_per_second),
                format!(
                    "{:.2}",
                    exporter.requests_per_second / n.requests_per_second
                ),
                format!("{:.2}", n.p99_ms),
            ),
            None => ("—".to_owned(), "—".to_owned(), "—".to_owned()),
        };
        println!(
            "| {series} | {} | {state} | {:.0} | {ceiling} | {ratio} | {:.2} | {:.2} | {nginx_p99} |",
            if *gzip { "yes" } else { "no" },
            exporter.requests_per_second,
            exporter.p50_ms,
            exporter.p99_ms,
        );
    }
}
