//! Accounts × regions benchmark: 10,000 associations across 4 regions of one account, each
//! region its own simulated endpoint with its own rate limit, the role assumed through the STS
//! stub; polled by one replica (M = 1), then by four shards of the real binary (M = 4).
//! Prints, per shard, the calls of the first and of the steady cycles, the first cycle's time
//! and the peak resident set; and whether across the shards every target was counted once.
//!
//! Then the memory sweep (issue 16): one replica watching none, 2,500, 5,000 and 10,000
//! associations, in one region and in four. Per row: peak and lasting resident set, the
//! lasting set above the exporter with none in as many regions, per association, the exposition's bytes per
//! association (plain and gzip), the CPU time of a steady cycle, the renderings that steady
//! cycles caused, and the time of one rendering; then the slope of the sweep.
//!
//!     cargo bench --bench accounts            # M = 1, then M = 4, then the sweep
//!     cargo bench --bench accounts -- 4       # M = 4 only
//!     cargo bench --bench accounts -- sweep   # the sweep only
//!     cargo bench --bench accounts -- sweep five   # the sweep's five-status fleet only
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
    let sweep_only = std::env::args().any(|a| a == "sweep");
    let mut rows = Vec::new();
    let shard_counts = if sweep_only { Vec::new() } else { vec![1, 4] };
    for shards in shard_counts
        .into_iter()
        .filter(|m| only.is_none_or(|o| o == *m))
    {
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
            row.counted = sum(&metrics, "ssm_association_targets");
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
    if !rows.is_empty() {
        print_table(&rows, assumed);
    }
    runtime.block_on(async {
        for (_, _, server) in regions {
            server.stop().await;
        }
        sts_server.stop().await;
    });
    if only.is_none() {
        sweep(&runtime, &dir);
    }
}

/// Calls a second each simulated region allows in the sweep, and the exporter makes: the
/// sweep measures memory and rendering, not throttling.
const SWEEP_RATE: f64 = 1500.0;

/// The fleets the sweep measures.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mix {
    /// The main rows' fleet: 20 targets an association over Success, Failed and TimedOut.
    Accounts,
    /// 10 targets an association, two in each of five statuses (Success, Failed, TimedOut,
    /// Cancelled, Skipped), and one association in five with a run in progress beside its
    /// finished one (10 targets: InProgress, Pending, Success): two executions' counts.
    FiveStatuses,
}

impl Mix {
    fn name(self) -> &'static str {
        match self {
            Mix::Accounts => "accounts",
            Mix::FiveStatuses => "five statuses",
        }
    }
}

/// One row of the sweep.
struct Sized {
    mix: Mix,
    regions: usize,
    associations: usize,
    peak_mib: f64,
    lasting_mib: f64,
    plain_bytes: usize,
    gzip_bytes: usize,
    steady_cpu_ms: f64,
    steady_renders: f64,
    render_ms: f64,
}

/// One replica over fleets of growing size, in one region and in four.
fn sweep(runtime: &tokio::runtime::Runtime, dir: &std::path::Path) {
    let mut rows = Vec::new();
    let sizes = [0, 2_500, 5_000, 10_000];
    let five_only = std::env::args().any(|a| a == "five");
    let runs = sizes
        .iter()
        .map(|n| (Mix::Accounts, 1, *n))
        .chain(sizes.iter().map(|n| (Mix::Accounts, 4, *n)))
        .filter(|_| !five_only)
        .chain(sizes.iter().map(|n| (Mix::FiveStatuses, 1, *n)));
    for (mix, regions, associations) in runs {
        eprintln!(
            "sweep: {associations} associations in {regions} region(s), {} ...",
            mix.name()
        );
        rows.push(sized(runtime, dir, mix, regions, associations));
    }
    // The exporter with none, with as many regions: what a pair costs is not an association's.
    let empty = |regions: usize| {
        rows.iter()
            .find(|r| r.regions == regions && r.associations == 0)
            .map_or(0.0, |r| r.lasting_mib)
    };
    println!();
    println!(
        "| fleet | regions | associations | peak RSS MiB | lasting RSS MiB | above empty, bytes/association lasting / peak | exposition bytes/association plain / gzip | CPU ms per steady cycle | renders in steady cycles | ms per render |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let per = |mib: f64| {
            if r.associations == 0 {
                "—".to_owned()
            } else {
                format!(
                    "{:.0}",
                    (mib - empty(r.regions)) * 1024.0 * 1024.0 / r.associations as f64
                )
            }
        };
        let per_bytes = |bytes: usize| {
            if r.associations == 0 {
                "—".to_owned()
            } else {
                format!("{:.0}", bytes as f64 / r.associations as f64)
            }
        };
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {} / {} | {} / {} | {:.1} | {} | {:.1} |",
            r.mix.name(),
            r.regions,
            r.associations,
            r.peak_mib,
            r.lasting_mib,
            per(r.lasting_mib),
            per(r.peak_mib),
            per_bytes(r.plain_bytes),
            per_bytes(r.gzip_bytes),
            r.steady_cpu_ms,
            r.steady_renders,
            r.render_ms,
        );
    }
    for (mix, regions) in [
        (Mix::Accounts, 1),
        (Mix::Accounts, 4),
        (Mix::FiveStatuses, 1),
    ] {
        let points: Vec<(f64, f64, f64)> = rows
            .iter()
            .filter(|r| r.mix == mix && r.regions == regions)
            .map(|r| (r.associations as f64, r.lasting_mib, r.peak_mib))
            .collect();
        let slope = |y: fn(&(f64, f64, f64)) -> f64| {
            let n = points.len() as f64;
            let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
            let mean_y = points.iter().map(y).sum::<f64>() / n;
            let cov: f64 = points
                .iter()
                .map(|p| (p.0 - mean_x) * (y(p) - mean_y))
                .sum();
            let var: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
            cov / var * 1024.0 * 1024.0
        };
        println!(
            "{}, {regions} region(s): slope {:.0} bytes/association lasting, {:.0} peak (least squares over 0, 2,500, 5,000, 10,000)",
            mix.name(),
            slope(|p| p.1),
            slope(|p| p.2),
        );
    }
}

/// Runs one replica over `associations` spread over `regions` simulated regions until its
/// steady cycles are done, and measures it.
fn sized(
    runtime: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    mix: Mix,
    regions: usize,
    associations: usize,
) -> Sized {
    let servers: Vec<(&str, SimServer)> = runtime.block_on(async {
        let mut servers = Vec::new();
        for (r, region) in REGIONS.iter().take(regions).enumerate() {
            let sim = Sim::new(70 + r as u64);
            sim.expect_caller(ACCOUNT, region);
            match mix {
                Mix::Accounts => populate(&sim, r, region, associations / regions),
                Mix::FiveStatuses => populate_five(&sim, region, associations / regions),
            }
            sim.set_faults(Faults {
                rate_limit: Some(SWEEP_RATE),
                ..Faults::default()
            });
            servers.push((*region, sim.start().await.expect("simulator starts")));
        }
        servers
    });
    let sts = Sim::new(4);
    sts.add_role(ROLE, None);
    let sts_server = runtime.block_on(sts.start()).expect("STS stub starts");
    let config = dir.join(format!("sweep-{regions}-{associations}.yaml"));
    let endpoints: String = servers
        .iter()
        .map(|(region, server)| format!("      {region}: {}\n", server.endpoint_url()))
        .collect();
    let names: Vec<&str> = servers.iter().map(|(r, _)| *r).collect();
    std::fs::write(
        &config,
        format!(
            "poll_interval: 2s\ncycle_timeout: 1h\nsts_endpoint_url: {}\napi:\n  requests_per_second: {SWEEP_RATE}\n  burst: 10\n  max_in_flight: 8\naccounts:\n  - role_arn: {ROLE}\n    regions: [{}]\n    endpoint_urls:\n{endpoints}",
            sts_server.endpoint_url(),
            names.join(", "),
        ),
    )
    .expect("write config");
    let (child, lines, addr) = spawn_exporter_with(&config, &[]);
    let pid = child.id();
    // Every region's first cycle, then the steady ones; CPU and renderings in between.
    cycles_of(&lines, regions, 1);
    let before = runtime.block_on(scrape(&addr));
    let cpu_before = common::cpu_seconds(pid);
    cycles_of(&lines, regions, STEADY_CYCLES);
    let cpu_after = common::cpu_seconds(pid);
    let after = runtime.block_on(scrape(&addr));
    let plain_bytes = runtime.block_on(common::scrape_len(&addr, false));
    let gzip_bytes = runtime.block_on(common::scrape_len(&addr, true));
    let (renders, seconds) = (
        sum(&after, "ssm_association_exporter_renders_total"),
        sum(&after, "ssm_association_exporter_render_seconds_total"),
    );
    let row = Sized {
        mix,
        regions,
        associations,
        peak_mib: peak_rss_kib(pid) / 1024.0,
        lasting_mib: rss_kib(pid) / 1024.0,
        plain_bytes,
        gzip_bytes,
        steady_cpu_ms: (cpu_after - cpu_before) * 1000.0 / (STEADY_CYCLES * regions) as f64,
        steady_renders: renders - sum(&before, "ssm_association_exporter_renders_total"),
        render_ms: if renders > 0.0 {
            seconds * 1000.0 / renders
        } else {
            0.0
        },
    };
    stop(child);
    runtime.block_on(async {
        for (_, server) in servers {
            server.stop().await;
        }
        sts_server.stop().await;
    });
    row
}

/// `per_region` associations of `TARGETS` targets each, as in the main rows.
fn populate(sim: &Sim, r: usize, region: &str, per_region: usize) {
    let statuses = ["Success", "Success", "Success", "Failed", "TimedOut"];
    for a in 0..per_region {
        let id = sim.create_association(Some(&format!("{region}-{a:05}")), "AWS-RunPatchBaseline");
        let targets = (0..TARGETS)
            .map(|t| {
                SimTarget::instance(
                    format!("i-{r}{a:05}{t:011}"),
                    statuses[(a + t) % statuses.len()],
                )
            })
            .collect();
        sim.start_execution(&id, targets)
            .expect("association exists");
    }
}

/// `per_region` associations of [`Mix::FiveStatuses`].
fn populate_five(sim: &Sim, region: &str, per_region: usize) {
    let finished = ["Success", "Failed", "TimedOut", "Cancelled", "Skipped"];
    let running = ["InProgress", "Pending", "Success"];
    let targets = |a: usize, statuses: &[&str]| -> Vec<SimTarget> {
        (0..10)
            .map(|t| SimTarget::instance(format!("i-{a:06}{t:011}"), statuses[t % statuses.len()]))
            .collect()
    };
    for a in 0..per_region {
        let id = sim.create_association(Some(&format!("{region}-{a:05}")), "AWS-RunPatchBaseline");
        sim.start_execution(&id, targets(a, &finished))
            .expect("association exists");
        if a % 5 == 0 {
            sim.start_execution(&id, targets(a, &running))
                .expect("association exists");
        }
    }
}

/// Waits until each of `regions` regions has logged `count` more finished cycles.
fn cycles_of(lines: &std::sync::mpsc::Receiver<String>, regions: usize, count: usize) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    while seen.len() < regions || seen.values().any(|n| *n < count) {
        let line = common::wait_for(lines, "poll cycle finished");
        *seen.entry(field(&line, "region")).or_default() += 1;
    }
}

/// The sum of every series of `name` in an exposition.
fn sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// The STS stub, and per region a simulator expecting the role's credentials, throttling
/// beyond `RATE`.
async fn world() -> (Sim, SimServer, Vec<(&'static str, Sim, SimServer)>) {
    let sts = Sim::new(3);
    sts.add_role(ROLE, None);
    let sts_server = sts.start().await.expect("STS stub starts");
    let mut regions = Vec::new();
    for (r, region) in REGIONS.iter().enumerate() {
        let sim = Sim::new(40 + r as u64);
        sim.expect_caller(ACCOUNT, region);
        populate(&sim, r, region, ASSOCIATIONS_PER_REGION);
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
