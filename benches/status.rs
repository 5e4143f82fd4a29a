//! The status endpoints at 10,000 associations, as a request costs them now that each is made
//! on request from the published board: time per request (connect to last byte) and bytes of
//! `/`, `/?status=Failed`, one association's view and the whole JSON, streamed; the JSON's
//! chunks; the exporter's resident set before and after the requests.
//!
//!     cargo bench --bench status
//!
//! The exporter binary polls the simulator once; the simulator runs in this process and the
//! exporter in its own, so that the exporter's resident set is its own.
//!
//!     cargo bench --bench status -- slow-readers
//!
//! Issue 22's slow readers instead: 6,000 associations, then 250 clients that each ask for
//! the JSON at once and read it at 40 kB/s; the exporter's resident set before and at its
//! peak while they read, and how many were answered 200 and how many 503.

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
/// The slow readers' fleet and their number, as issue 22 measured them.
const SLOW_ASSOCIATIONS: usize = 6_000;
const SLOW_READERS: usize = 250;
/// Each slow reader takes this much every [`SLOW_PAUSE`]: 40 kB/s.
const SLOW_READ: usize = 8 * 1024;
const SLOW_PAUSE: Duration = Duration::from_millis(200);
/// How long the slow readers read before the peak is taken: long enough for the exporter to
/// have handed each one what it will hold.
const SLOW_FOR: Duration = Duration::from_secs(10);

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    if std::env::args().any(|a| a == "slow-readers") {
        runtime.block_on(slow_readers());
    } else {
        runtime.block_on(bench());
    }
}

/// A simulator with `associations`, each with a finished execution of [`TARGETS`] targets,
/// one in four with [`FAILED_TARGETS`] failed; and the first association's ID.
fn fleet(associations: usize) -> (Sim, String) {
    let sim = Sim::new(16);
    let mut failed_one = None;
    for i in 0..associations {
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
    (sim, failed_one.expect("an association"))
}

/// The exporter binary, configured for `endpoint_url`, after its first cycle: the child,
/// its address.
fn exporter(endpoint_url: &str) -> (std::process::Child, String) {
    let dir = std::env::temp_dir().join(format!("sae-bench-status-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("status.yaml");
    std::fs::write(
        &config,
        format!(
            "region: us-east-2\nendpoint_url: {}\npoll_interval: 1h\ncycle_timeout: 1h\nfailed_targets:\n  enabled: true\n  limit: {FAILED_TARGETS}\napi:\n  requests_per_second: 100000\n  burst: 1000\n  max_in_flight: 16\n",
            endpoint_url
        ),
    )
    .expect("write config");
    let (child, lines, addr) = common::spawn_exporter(&config);
    wait_for(&lines, "poll cycle finished");
    (child, addr)
}

async fn bench() {
    let (sim, failed_one) = fleet(ASSOCIATIONS);
    let server = sim.start().await.expect("simulator starts");
    eprintln!("polling {ASSOCIATIONS} associations once ...");
    let (child, addr) = exporter(&server.endpoint_url());
    let pid = child.id();
    let (rss_before, peak_before) = (rss_kib(pid), peak_rss_kib(pid));

    let view = format!("/association/{failed_one}");
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

/// [`SLOW_READERS`] clients ask for the JSON at once and read it slowly; the exporter's
/// resident set is taken before and, at its peak, after [`SLOW_FOR`].
async fn slow_readers() {
    let (sim, _) = fleet(SLOW_ASSOCIATIONS);
    let server = sim.start().await.expect("simulator starts");
    eprintln!("polling {SLOW_ASSOCIATIONS} associations once ...");
    let (child, addr) = exporter(&server.endpoint_url());
    let pid = child.id();
    let json_bytes = get(&addr, "/api/v1/status").await.body_bytes;
    let (rss_before, peak_before) = (rss_kib(pid), peak_rss_kib(pid));

    let readers: Vec<_> = (0..SLOW_READERS)
        .map(|_| tokio::spawn(read_slowly(addr.clone())))
        .collect();
    tokio::time::sleep(SLOW_FOR).await;
    let (rss_during, peak_during) = (rss_kib(pid), peak_rss_kib(pid));
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for reader in readers {
        *by_status.entry(reader.await.expect("reader")).or_default() += 1;
    }
    let mib = |kib: f64| kib / 1024.0;
    println!(
        "{SLOW_READERS} slow readers (40 kB/s each) of the {json_bytes}-byte JSON at {SLOW_ASSOCIATIONS} associations:"
    );
    println!(
        "exporter RSS before {:.1} MiB (peak {:.1}); after {}s of reading {:.1} MiB (peak {:.1}); answers by status {by_status:?}",
        mib(rss_before),
        mib(peak_before),
        SLOW_FOR.as_secs(),
        mib(rss_during),
        mib(peak_during),
    );
    common::stop(child);
    server.stop().await;
}

/// Asks for the JSON over a connection with a small receive buffer and reads [`SLOW_READ`]
/// bytes every [`SLOW_PAUSE`] for [`SLOW_FOR`], then closes; the answer's status.
async fn read_slowly(addr: String) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(SLOW_READ as u32)
        .expect("receive buffer");
    let mut stream = socket
        .connect(addr.parse().expect("an address"))
        .await
        .expect("connect to exporter");
    let request =
        format!("GET /api/v1/status HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut buffer = vec![0; SLOW_READ];
    let mut head = Vec::new();
    let started = Instant::now();
    while started.elapsed() < SLOW_FOR {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) if head.len() < 12 => head.extend_from_slice(&buffer[..n]),
            Ok(_) => {}
        }
        tokio::time::sleep(SLOW_PAUSE).await;
    }
    std::str::from_utf8(head.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
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
