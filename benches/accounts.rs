//! Accounts × regions benchmark: 10,000 associations across 4 regions of one account, each
//! region its own simulated endpoint with its own rate limit, the role assumed through the STS
//! stub; polled by one replica (M = 1), then by four shards of the real binary (M = 4).
//! Prints, per shard, the calls of the first and of the steady cycles, the first cycle's time
//! and the peak resident set; and whether across the shards every target was counted once.
//!
//!     cargo bench --bench accounts        # M = 1, then M = 4
//!     cargo bench --bench accounts -- 4   # M = 4 only
//!
//! The simulators run in this process, each exporter in its own.

mod common;

use std::collections::BTreeMap;

use common::{field, peak_rss_kib, rss_kib, scrape, spawn_exporter_with, stop};
use ssm_association_exporter::sim::{Faults, Sim, SimServer, SimTarget};

const ACCOUNT: &str = "123456789012";
const ROLE: &str = "arn:aws:iam::123456789012:role/ssm-association-exporter";
const REGIONS: [&str; 4] = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];
const ASSOCIATIONS_PER_REGION: usize = 2_500;
const TARGETS: usize = 20;
/// Calls a second each simulated region allows; the shards share it, each set to `RATE / M`.
const RATE: f64 = 400.0;
const STEADY_CYCLES: usize = 3;

struct Row {
    shards: u32,
    shard: u32,
    first_calls: usize,
    first_seconds: f64,
    steady_calls: Vec<usize>,
    peak_rss_mib: f64,
    /// After the steady cycles: what stays.
    rss_mib: f64,
    counted: f64,
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (sts, sts_server, regions) = runtime.block_on(world());
    let dir = std::env::temp_dir().join(format!("sae-accounts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let only: Option<u32> = common::number_arg();
    let mut rows = Vec::new();
    for shards in [1, 4].into_iter().filter(|m| only.is_none_or(|o| o == *m)) {
        eprintln!("polling with {shards} shard(s) ...");
        let config = dir.join(format!("m{shards}.yaml"));
        let endpoints: String = regions
            .iter()
            .map(|(region, _, server)| format!("      {region}: {}\n", server.endpoint_url()))
            .collect();
        std::fs::write(
            &config,
            format!(
                "poll_interval: 2s\ncycle_timeout: 1h\nsts_endpoint_url: {}\napi:\n  requests_per_second: {}\n  burst: 10\n  max_in_flight: 8\naccounts:\n  - role_arn: {ROLE}\n    regions: [{}]\n    endpoint_urls:\n{endpoints}",
                sts_server.endpoint_url(),
                RATE / f64::from(shards),
                REGIONS.join(", "),
            ),
        )
        .expect("write config");
        for (_, sim, _) in &regions {
            sim.clear_requests();
        }
        // All shards at once, as a StatefulSet starts them.
        let children: Vec<_> = (0..shards)
            .map(|shard| {
                let (shard_flag, total_flag) = (shard.to_string(), shards.to_string());
                spawn_exporter_with(
                    &config,
                    &["--shard", &shard_flag, "--total-shards", &total_flag],
                )
            })
            .collect();
        for (shard, (child, lines, addr)) in children.into_iter().enumerate() {
            let mut row = measure(&lines);
            row.shards = shards;
            row.shard = shard as u32;
            row.peak_rss_mib = peak_rss_kib(child.id()) / 1024.0;
            row.rss_mib = rss_kib(child.id()) / 1024.0;
            let metrics = runtime.block_on(scrape(&addr));
            row.counted = metrics
                .lines()
                .filter(|l| l.starts_with("ssm_association_execution_targets{"))
                .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
                .sum();
            stop(child);
            rows.push(row);
        }
        let throttled: usize = regions
            .iter()
            .map(|(_, sim, _)| sim.requests().iter().filter(|r| r.status == 400).count())
            .sum();
        eprintln!("  throttled answers across the regions: {throttled}");
    }
    let assumed = sts
        .requests()
        .iter()
        .filter(|r| r.operation == "AssumeRole" && r.status == 200)
        .count();
    print_table(&rows, assumed);
    runtime.block_on(async {
        for (_, _, server) in regions {
            server.stop().await;
        }
        sts_server.stop().await;
    });
}

/// The STS stub, and per region a simulator expecting the role's credentials, throttling
/// beyond `RATE`.
async fn world() -> (Sim, SimServer, Vec<(&'static str, Sim, SimServer)>) {
    let sts = Sim::new(3);
    sts.add_role(ROLE, None);
    let sts_server = sts.start().await.expect("STS stub starts");
    let statuses = ["Success", "Success", "Success", "Failed", "TimedOut"];
    let mut regions = Vec::new();
    for (r, region) in REGIONS.iter().enumerate() {
        let sim = Sim::new(40 + r as u64);
        sim.expect_caller(ACCOUNT, region);
        for a in 0..ASSOCIATIONS_PER_REGION {
            let id =
                sim.create_association(Some(&format!("{region}-{a:04}")), "AWS-RunPatchBaseline");
            let targets = (0..TARGETS)
                .map(|t| {
                    SimTarget::instance(
                        format!("i-{r}{a:04}{t:012}"),
                        statuses[(a + t) % statuses.len()],
                    )
                })
                .collect();
            sim.start_execution(&id, targets)
                .expect("association exists");
        }
        sim.set_faults(Faults {
            rate_limit: Some(RATE),
            ..Faults::default()
        });
        let server = sim.start().await.expect("simulator starts");
        regions.push((*region, sim, server));
    }
    (sts, sts_server, regions)
}

/// Reads one exporter's cycle log: the first cycle of every region, then `STEADY_CYCLES`
/// more of each; calls summed over the regions, cycle by cycle.
fn measure(lines: &std::sync::mpsc::Receiver<String>) -> Row {
    let mut cycles: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut first_seconds = 0.0;
    while cycles.len() < REGIONS.len() || cycles.values().any(|c| c.len() <= STEADY_CYCLES) {
        let line = common::wait_for(lines, "poll cycle finished");
        let calls: usize = field(&line, "api_requests").parse().unwrap_or(usize::MAX);
        let region = field(&line, "region");
        let seen = cycles.entry(region).or_default();
        seen.push(calls);
        if seen.len() == 1 {
            // The log's own figure: lines of a later shard wait in their channel meanwhile.
            let ms: f64 = field(&line, "duration_ms").parse().unwrap_or(f64::NAN);
            first_seconds = f64::max(first_seconds, ms / 1000.0);
        }
    }
    let first_calls = cycles.values().map(|c| c[0]).sum();
    let steady_calls = (1..=STEADY_CYCLES)
        .map(|i| cycles.values().map(|c| c[i]).sum())
        .collect();
    Row {
        shards: 0,
        shard: 0,
        first_calls,
        first_seconds,
        steady_calls,
        peak_rss_mib: 0.0,
        rss_mib: 0.0,
        counted: 0.0,
    }
}

fn print_table(rows: &[Row], assumed: usize) {
    println!(
        "| M | shard | first-cycle calls | slowest region's first cycle s | steady-cycle calls | peak RSS MiB | RSS after MiB | targets counted |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.1} | {} | {:.1} | {:.1} | {} |",
            r.shards,
            r.shard,
            r.first_calls,
            r.first_seconds,
            r.steady_calls
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            r.peak_rss_mib,
            r.rss_mib,
            r.counted,
        );
    }
    for shards in [1, 4] {
        if !rows.iter().any(|r| r.shards == shards) {
            continue;
        }
        let total: f64 = rows
            .iter()
            .filter(|r| r.shards == shards)
            .map(|r| r.counted)
            .sum();
        println!(
            "M = {shards}: {total} targets counted across the shards, of {}",
            REGIONS.len() * ASSOCIATIONS_PER_REGION * TARGETS
        );
    }
    println!("AssumeRole calls answered: {assumed}");
}
