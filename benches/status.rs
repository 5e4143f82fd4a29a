//! The status endpoints at 10,000 associations, as a request costs them now that each is made
//! on request from the published board: time per request (connect to last byte) and bytes of
//! `/`, `/?status=Failed`, one association's view and the whole JSON, streamed; the JSON's
//! chunks; the exporter's resident set before and after the requests.
//!
//!     cargo bench --bench status
//!
//! The exporter binary polls the simulator once; the simulator runs in this process and the
//! exporter in its own, so that the exporter's resident set is its own.

mod common;

use std::time::{Duration, Instant};

use common::{peak_rss_kib, rss_kib, wait_for};
use ssm_association_exporter::sim::{Sim, SimTarget};

const ASSOCIATIONS: usize = 10_000;
const TARGETS: usize = 20;
/// Targets failed in one association of four; the configuration names them all.
const FAILED_TARGETS: usize = 5;
/// Requests per endpoint, one after the other, each on a connection of its own.
const REQUESTS: usize = 50;

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let sim = Sim::new(16);
    let mut failed_one = None;
    for i in 0..ASSOCIATIONS {
        let id =
            sim.create_association(Some(&format!("patch-fleet-{i:05}")), "AWS-RunPatchBaseline");
        let failed = if i % 4 == 0 { FAILED_TARGETS } else { 0 };
        let targets = (0..TARGETS)
            .map(|t| {
                let status = if t < failed { "Failed" } else { "Success" };
                SimTarget::instance(format!("i-{i:05}{t:012}"), status)
            })
            .collect();
        sim.start_execution(&id, targets)
            .expect("association exists");
        failed_one.get_or_insert(id);
    }
    let server = sim.start().await.expect("simulator starts");
    let dir = std::env::temp_dir().join(format!("sae-bench-status-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("status.yaml");
    std::fs::write(
        &config,
        format!(
            "region: us-east-2\nendpoint_url: {}\npoll_interval: 1h\ncycle_timeout: 1h\nfailed_targets:\n  enabled: true\n  limit: {FAILED_TARGETS}\napi:\n  requests_per_second: 100000\n  burst: 1000\n  max_in_flight: 16\n",
            server.endpoint_url()
        ),
    )
    .expect("write config");

    eprintln!("polling {ASSOCIATIONS} associations once ...");
    let (child, lines, addr) = common::spawn_exporter(&config);
    let pid = child.id();
    wait_for(&lines, "poll cycle finished");
    let (rss_before, peak_before) = (rss_kib(pid), peak_rss_kib(pid));

    let view = format!("/association/{}", failed_one.expect("an association"));
    let endpoints = [
        ("/", "/"),
        ("/?status=Failed", "/?status=Failed"),
        ("/association/<id>", view.as_str()),
        ("/api/v1/status", "/api/v1/status"),
    ];
    println!(
        "status endpoints at {ASSOCIATIONS} associations ({REQUESTS} requests each, one at a time):"
    );
    println!("| request | bytes | median ms | max ms | chunks (largest bytes) |");
    println!("|---|---|---|---|---|");
    for (name, path) in endpoints {
        let mut times = Vec::with_capacity(REQUESTS);
        let mut last = None;
        for _ in 0..REQUESTS {
            let started = Instant::now();
            let answer = get(&addr, path).await;
            times.push(started.elapsed());
            assert_eq!(answer.status, 200, "{path}");
            last = Some(answer);
        }
        times.sort();
        let answer = last.expect("a request");
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let chunks = match answer.chunks.iter().max() {
            Some(largest) => format!("{} ({largest})", answer.chunks.len()),
            None => "none: Content-Length".to_owned(),
        };
        println!(
            "| {name} | {} | {:.2} | {:.2} | {chunks} |",
            answer.body_bytes,
            ms(times[REQUESTS / 2]),
            ms(times[REQUESTS - 1]),
        );
    }
    let mib = |kib: f64| kib / 1024.0;
    println!(
        "exporter RSS after its first cycle {:.1} MiB (peak {:.1}); after {} requests {:.1} MiB (peak {:.1})",
        mib(rss_before),
        mib(peak_before),
        REQUESTS * endpoints.len(),
        mib(rss_kib(pid)),
        mib(peak_rss_kib(pid)),
    );
    common::stop(child);
    server.stop().await;
}

/// What the benchmark reads of an answer.
struct Answer {
    status: u16,
    body_bytes: usize,
    /// The sizes of the body's chunks; empty when it came with a `Content-Length`.
    chunks: Vec<usize>,
}

/// One GET over a fresh loopback connection, read to the end.
async fn get(addr: &str, path: &str) -> Answer {
    let (head, body) = common::get(addr, path, "").await;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = &body[..];
    if !head.contains("\r\ntransfer-encoding: chunked") {
        return Answer {
            status,
            body_bytes: body.len(),
            chunks: Vec::new(),
        };
    }
    let chunks = chunk_sizes(body);
    Answer {
        status,
        body_bytes: chunks.iter().sum(),
        chunks,
    }
}

/// The sizes of a chunked body's chunks, up to its last.
fn chunk_sizes(mut body: &[u8]) -> Vec<usize> {
    let mut sizes = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .expect("a chunk size");
        if size == 0 {
            break;
        }
        sizes.push(size);
        body = body.get(end + 2 + size + 2..).expect("a whole chunk");
    }
    sizes
}
