//! Scrape benchmark: requests/s and latency of `/metrics` under wrk, next to nginx serving the
//! same bytes from a file as the practical ceiling, at about 10,000 and 100,000 series, with
//! and without gzip; and the exporter's latency while poll cycles run back to back, both under
//! wrk's saturating load and at a fixed request rate, as scrapers really send them.
//!
//!     cargo bench --bench scrape          # needs wrk and nginx (Debian's wrk and nginx-light)
//!     cargo bench --bench scrape -- 10000 # only about 10,000 series
//!     cargo bench --bench scrape -- 10000 paced # only the fixed-rate rows
//!
//! Everything runs on loopback; wrk, nginx and the exporter share the machine's cores.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{cpu_seconds, scrape, signal, spawn_exporter, stop, wait_for};
use ssm_association_exporter::sim::{Sim, SimServer, SimTarget};

/// wrk's run per measurement.
const DURATION: &str = "20s";
/// A handful of scrapers, as a Prometheus HA pair with a few ad-hoc clients would be; more
/// connections on two cores measure queueing, not the server.
const CONNECTIONS: &str = "4";

#[derive(Debug)]
struct Measure {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let dir = std::env::temp_dir().join(format!("sae-scrape-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // `cargo bench --bench scrape -- 10000` runs only the 10,000-series part.
    let only: Option<usize> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .and_then(|a| a.parse().ok());
    let paced_only = std::env::args().any(|a| a == "paced");
    let mut rows = Vec::new();
    let mut paced_rows = Vec::new();
    for associations in [1_000, 10_000] {
        if only.is_some_and(|series| series != associations * 10) {
            continue;
        }
        eprintln!("setting up {associations} associations ...");
        let (sim, server) = runtime.block_on(fleet(associations));
        let quiet = config(&dir, "quiet", &server, "poll_interval: 1h\n");
        let (child, lines, addr) = spawn_exporter(&quiet);
        wait_for(&lines, "poll cycle finished");
        let body = runtime.block_on(scrape(&addr));
        let body = body
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default()
            .to_owned();
        let series = body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count();
        let url = format!("http://{addr}/metrics");
        let nginx = Nginx::start(&dir, body.as_bytes());
        for gzip in [false, true] {
            if paced_only {
                break;
            }
            let exporter = wrk(&url, gzip);
            let ceiling = wrk(&nginx.url(), gzip);
            rows.push((series, gzip, "idle", exporter, Some(ceiling)));
        }
        nginx.stop();
        let quiet = (child, addr);

        if associations == 1_000 {
            // Every target re-read every cycle, at 20 times the default call rate: a cycle runs
            // all the while wrk scrapes.
            let busy = config(
                &dir,
                "busy",
                &server,
                "poll_interval: 1s\nfull_refresh_interval: 0s\napi:\n  requests_per_second: 100\n  burst: 10\n  max_in_flight: 4\n",
            );
            let (child, lines, addr) = spawn_exporter(&busy);
            wait_for(&lines, "poll cycle finished");
            let pid = child.id();
            for gzip in [false, true] {
                if paced_only {
                    break;
                }
                let during = wrk(&format!("http://{addr}/metrics"), gzip);
                rows.push((series, gzip, "polling", during, None));
            }
            // Fixed-rate rounds, the quiet exporter and the polling one in turn, so that drift
            // in the machine's speed falls on both alike. The polling one is stopped
            // (SIGSTOP) while the quiet one is measured: its cycles would load the same cores.
            let mut cpu = 0.0;
            for _ in 0..PACED_ROUNDS {
                for gzip in [false, true] {
                    signal(pid, "STOP");
                    paced_rows.push((series, gzip, "idle", paced(&quiet.1, gzip)));
                    signal(pid, "CONT");
                    let before = cpu_seconds(pid);
                    paced_rows.push((series, gzip, "polling", paced(&addr, gzip)));
                    cpu += cpu_seconds(pid) - before;
                }
            }
            eprintln!(
                "exporter CPU while polling and serving at a fixed rate: {:.0}% of a core",
                cpu / (2 * PACED_ROUNDS) as f64 / PACED_SECONDS as f64 * 100.0
            );
            stop(child);
        }
        stop(quiet.0);
        runtime.block_on(server.stop());
        drop(sim);
    }
    print_table(&rows);
    println!();
    print_paced(&paced_rows);
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

fn config(dir: &Path, name: &str, server: &SimServer, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    let text = if extra.contains("api:") {
        format!(
            "region: us-east-2\nendpoint_url: {}\n{extra}",
            server.endpoint_url()
        )
    } else {
        format!(
            "region: us-east-2\nendpoint_url: {}\n{extra}api:\n  requests_per_second: 5000\n  burst: 100\n  max_in_flight: 8\n",
            server.endpoint_url()
        )
    };
    std::fs::write(&path, text).expect("write config");
    path
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

/// Scrapers at a fixed rate: each of `PACED_SCRAPERS` keep-alive connections sends a request
/// every `1 / PACED_RATE` seconds, for `PACED_SECONDS`. Latency counts from when a request was
/// due, so a request held up by a slow one before it is charged for the wait (no coordinated
/// omission). This is the load Prometheus puts on an exporter, unlike wrk's back-to-back
/// requests, under which any other work on two cores shows in the tail by construction.
fn paced(addr: &str, gzip: bool) -> Measure {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::time::Instant;
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
                let mut latencies = Vec::new();
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
                    latencies.push(due.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all: Vec<Duration> = scrapers
        .into_iter()
        .flat_map(|s| s.join().expect("scraper thread"))
        .collect();
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Measure {
        requests_per_second: all.len() as f64 / PACED_SECONDS as f64,
        p50_ms: at(0.50).as_secs_f64() * 1000.0,
        p99_ms: at(0.99).as_secs_f64() * 1000.0,
    }
}

/// 4 scrapers at 50 requests/s each: 2,000 requests per round, 9 rounds per row.
const PACED_SCRAPERS: u32 = 4;
const PACED_RATE: f64 = 50.0;
const PACED_SECONDS: u64 = 10;
const PACED_ROUNDS: usize = 9;

/// One row per (series, gzip, state): the median of the rounds' p50 and p99, and every
/// round's p99.
fn print_paced(rows: &[(usize, bool, &str, Measure)]) {
    println!(
        "| series | gzip | exporter | fixed rate req/s | median p50 ms | median p99 ms | p99 of each round ms | median p99 change while polling |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let mut keys: Vec<(usize, bool, &str)> =
        rows.iter().map(|(s, g, st, _)| (*s, *g, *st)).collect();
    keys.sort_by_key(|(s, g, st)| (*s, *g, *st != "idle"));
    keys.dedup();
    let of = |key: (usize, bool, &str)| -> Vec<&Measure> {
        rows.iter()
            .filter(|(s, g, st, _)| (*s, *g, *st) == key)
            .map(|(_, _, _, m)| m)
            .collect()
    };
    for (series, gzip, state) in keys {
        let measures = of((series, gzip, state));
        let p99 = median(measures.iter().map(|m| m.p99_ms).collect());
        let idle = median(
            of((series, gzip, "idle"))
                .iter()
                .map(|m| m.p99_ms)
                .collect(),
        );
        let change = if state == "polling" {
            format!("{:+.0}%", (p99 / idle - 1.0) * 100.0)
        } else {
            "—".to_owned()
        };
        println!(
            "| {series} | {} | {state} | {:.0} | {:.2} | {p99:.2} | {} | {change} |",
            if gzip { "yes" } else { "no" },
            median(measures.iter().map(|m| m.requests_per_second).collect()),
            median(measures.iter().map(|m| m.p50_ms).collect()),
            measures
                .iter()
                .map(|m| format!("{:.2}", m.p99_ms))
                .collect::<Vec<_>>()
                .join(", "),
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
