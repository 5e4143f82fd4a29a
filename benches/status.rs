//! The status page at 10,000 associations: how long the renderer takes to render the page's
//! variants, the views and the JSON once, and how large what a request gets is.
//!
//! `cargo bench --bench status`

use std::collections::BTreeMap;
use std::time::Instant;

use ssm_association_exporter::status::{
    AssociationStatus, BUILD, CycleStatus, ExecutionStatus, FailedTargetStatus,
    FailedTargetsStatus, PairStatus, Status, StatusPage, TargetCountStatus,
};

const ASSOCIATIONS: usize = 10_000;
const RUNS: usize = 20;

/// One association in four failed, each with a few target counts and named failed targets.
fn fleet() -> Status {
    let associations = (0..ASSOCIATIONS)
        .map(|i| {
            let failed = i % 4 == 0;
            let status = if failed { "Failed" } else { "Success" };
            let targets = vec![
                TargetCountStatus {
                    status: "Success".into(),
                    detailed_status: "Success".into(),
                    resource_type: "ManagedInstance".into(),
                    count: 95,
                },
                TargetCountStatus {
                    status: status.into(),
                    detailed_status: status.into(),
                    resource_type: "ManagedInstance".into(),
                    count: 5,
                },
            ];
            let mut by_status = BTreeMap::new();
            for t in &targets {
                *by_status.entry(t.status.clone()).or_insert(0) += t.count;
            }
            AssociationStatus {
                account_id: Some("111111111111".into()),
                region: Some("us-east-1".into()),
                association_id: format!("{i:08x}-1111-4111-8111-111111111111"),
                name: Some(format!("patch-fleet-{i}")),
                document_name: Some("AWS-RunPatchBaseline".into()),
                execution: Some(ExecutionStatus {
                    execution_id: format!("{i:08x}-2222-4222-8222-222222222222"),
                    pinned: false,
                    status: Some(status.into()),
                    detailed_status: Some(status.into()),
                    created_unix: Some(1_700_000_000.0),
                    targets,
                }),
                targets_by_status: by_status,
                failed_targets: Some(FailedTargetsStatus {
                    named: (0..if failed { 5 } else { 0 })
                        .map(|n| FailedTargetStatus {
                            resource_id: format!("i-{i:08x}{n:09x}"),
                            resource_type: "ManagedInstance".into(),
                            detailed_status: "Failed".into(),
                        })
                        .collect(),
                    omitted: 0,
                }),
                poll_success: true,
                error_kind: None,
                last_success_unix: Some(1_700_000_540.0),
                data_age_seconds: Some(60.0),
                failed,
            }
        })
        .collect();
    Status {
        build: BUILD,
        rendered_unix: 1_700_000_600.0,
        generation: 1,
        config: "discovery of every association, poll interval 1m".into(),
        ready: true,
        events: None,
        pairs: vec![PairStatus {
            account_id: Some("111111111111".into()),
            region: Some("us-east-1".into()),
            cycles: 1,
            targeted_polls: 0,
            associations: ASSOCIATIONS,
            last_cycle: Some(CycleStatus {
                finished_unix: 1_700_000_540.0,
                duration_seconds: 12.0,
                api_calls: 2_700,
                throttled_calls: 0,
                failures: 0,
                outcome: "success",
                error_kind: None,
            }),
        }],
        associations,
    }
}

fn main() {
    let status = fleet();
    let mut renders = Vec::with_capacity(RUNS);
    let mut page = StatusPage::default();
    for _ in 0..RUNS {
        let started = Instant::now();
        page = StatusPage::render(&status, "/metrics");
        renders.push(started.elapsed());
    }
    renders.sort();
    let index = page.index(None).expect("the page");
    let failed = page.index(Some("Failed")).expect("the failed ones");
    let view = page
        .association(&status.associations[0].association_id)
        .expect("a view");
    let started = Instant::now();
    let requests = 1_000;
    for _ in 0..requests {
        std::hint::black_box(page.index(None));
    }
    let per_request = started.elapsed() / requests;
    println!("status page at {ASSOCIATIONS} associations ({RUNS} renderings):");
    println!(
        "  render (every variant, {ASSOCIATIONS} views, JSON): median {:.1} ms, max {:.1} ms",
        renders[RUNS / 2].as_secs_f64() * 1e3,
        renders[RUNS - 1].as_secs_f64() * 1e3
    );
    println!("  / : {} bytes (the first 500 rows)", index.len());
    println!("  /?status=Failed : {} bytes", failed.len());
    println!("  /association/<id> : {} bytes", view.len());
    println!(
        "  /api/v1/status : {} bytes (every association)",
        page.json.len()
    );
    println!(
        "  a request for / (concatenating the pre-rendered rows): {:.1} µs",
        per_request.as_secs_f64() * 1e6
    );
}
