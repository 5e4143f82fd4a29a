//! Soak benchmark: thousands of poll cycles in a row, to show that the exporter's memory stays
//! flat. The exporter runs in this process, driven by `poll_now`, so cycles follow each other
//! as fast as they go; the simulator beside it keeps a fixed state (its request log is cleared
//! every cycle), so what the resident set does is the exporter's doing.
//!
//!     cargo bench --bench soak

mod common;

use std::time::{Duration, Instant};

use ssm_association_exporter::app::Exporter;
use ssm_association_exporter::config;
use ssm_association_exporter::server::ServerOptions;
use ssm_association_exporter::sim::{Sim, SimTarget};
use ssm_association_exporter::ssm::aws::{AwsSsm, ClientOptions};
use tokio::net::TcpListener;

const ASSOCIATIONS: usize = 50;
const TARGETS: usize = 100;
const CYCLES: u64 = 3000;

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(soak());
}

async fn soak() {
    let sim = Sim::new(5);
    let mut runs = Vec::new();
    for a in 0..ASSOCIATIONS {
        let id = sim.create_association(Some(&format!("soak-{a:04}")), "AWS-RunPatchBaseline");
        let statuses = ["Success", "Failed", "TimedOut", "Success"];
        let targets = (0..TARGETS)
            .map(|t| SimTarget::instance(format!("i-{a:04}{t:013}"), statuses[t % statuses.len()]))
            .collect();
        let run = sim
            .start_execution(&id, targets)
            .expect("association exists");
        runs.push((id, run));
    }
    let server = sim.start().await.expect("simulator starts");
    // Every target re-read every cycle, failed targets named: the most work a cycle can do.
    let config = config::parse(
        "poll_interval: 1h\nfull_refresh_interval: 0s\nfailed_targets:\n  enabled: true\n  limit: 20\napi:\n  requests_per_second: 100000\n  burst: 1000\n  max_in_flight: 8\n",
    )
    .expect("valid config");
    let ssm = AwsSsm::connect(&ClientOptions {
        region: Some("us-east-2".to_owned()),
        endpoint_url: Some(server.endpoint_url()),
        static_credentials: Some(("AKIDSOAK".to_owned(), "soak".to_owned())),
        operation_timeout: Duration::from_secs(30),
        ..ClientOptions::default()
    })
    .await
    .expect("client");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let exporter =
        Exporter::start(ssm, &config, listener, ServerOptions::default()).expect("exporter");
    exporter.wait_for_cycle(1).await.expect("first cycle");

    println!("| cycles | RSS MiB | cycles/s since last row |");
    println!("|---|---|---|");
    let mut last = Instant::now();
    let mut rows = Vec::new();
    for cycle in 2..=CYCLES {
        // A run finishes somewhere every cycle, so the series change, too.
        let (id, run) = &runs[(cycle as usize) % runs.len()];
        let resource = format!("i-{:04}{:013}", (cycle as usize) % runs.len(), 0);
        let status = if cycle % 2 == 0 { "Failed" } else { "Success" };
        sim.set_target(id, run, &resource, status, status);
        exporter.poll_now().await.expect("cycle");
        sim.clear_requests();
        if cycle == 10 || cycle % 500 == 0 {
            let rss = common::rss_kib(std::process::id()) / 1024.0;
            let rate = if cycle == 10 { 8.0 } else { 500.0 } / last.elapsed().as_secs_f64();
            println!("| {cycle} | {rss:.1} | {rate:.1} |");
            rows.push(rss);
            last = Instant::now();
        }
    }
    if let (Some(first), Some(end)) = (rows.first(), rows.last()) {
        println!(
            "\nRSS after 10 cycles {first:.1} MiB, after {CYCLES} cycles {end:.1} MiB ({:+.1} MiB)",
            end - first
        );
    }
    exporter.shutdown().await;
    server.stop().await;
}
