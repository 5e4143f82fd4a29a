//! Through every fault the exporter keeps serving, keeps the last good values of what it
//! could not read (marked with `ssm_association_poll_success` 0), and converges to the truth
//! within one cycle after the fault clears.

use std::time::Duration;

use ssm_association_exporter::sim::{Fault, Faults, Sim};
use ssm_association_exporter::ssm::aws::ClientOptions;

use crate::harness::{Metrics, Rig, expected_targets, fleet};

const A: &str = "fa94c678-85c6-4d40-926b-7c791a0b1c2d";
const B: &str = "0b7e1a52-3c0d-4c1e-9f43-5a1d2c3b4e5f";
const E1: &str = "d6d51ef5-4eca-48ef-9d7d-bd6ce3e4f5a6";
const E2: &str = "7abb6378-a4a5-4f10-8312-0123456789ab";

fn success(metrics: &Metrics, id: &str) -> Option<f64> {
    metrics.get("ssm_association_poll_success", &[("association_id", id)])
}

/// Forty associations, each with one finished run of 120 targets (three pages).
fn forty() -> (Sim, Vec<(String, String)>) {
    let sim = Sim::new(71);
    let runs = (0..40)
        .map(|i| {
            let id = sim.create_association(Some(&format!("a-{i:02}")), "AWS-RunPatchBaseline");
            let run = sim
                .start_execution(
                    &id,
                    fleet(
                        &format!("i-{i:02}aaaaaaaaaaa"),
                        120,
                        &["Success", "Failed", "TimedOut"],
                    ),
                )
                .expect("association exists");
            (id, run)
        })
        .collect();
    (sim, runs)
}

/// A storm of throttling, server errors, resets and unreadable bodies on a third of all calls,
/// while every association starts a new run: whatever could be read is the truth, whatever
/// could not is the previous truth, marked stale; the next calm cycle is all truth.
#[tokio::test]
async fn a_storm_loses_nothing_and_invents_nothing() {
    let (sim, runs) = forty();
    let rig = Rig::start(sim, "").await;
    let before = rig.scrape().await;

    let mut new_runs = Vec::new();
    for (i, (id, _)) in runs.iter().enumerate() {
        let run = rig
            .sim
            .start_execution(
                id,
                fleet(&format!("i-{i:02}bbbbbbbbbbb"), 60, &["Success", "Failed"]),
            )
            .expect("association exists");
        new_runs.push(run);
    }
    rig.sim.set_faults(Faults {
        throttle_rate: 0.15,
        error_rate: 0.1,
        reset_rate: 0.05,
        garbage_rate: 0.05,
        ..Faults::default()
    });
    let during = rig.cycle().await;
    let mut stale = 0;
    for ((id, _), new_run) in runs.iter().zip(&new_runs) {
        match success(&during, id) {
            Some(1.0) => assert_eq!(
                during.targets(id),
                expected_targets(&rig.sim, id, new_run, |_| true)
            ),
            Some(0.0) => {
                stale += 1;
                assert_eq!(
                    during.targets(id),
                    before.targets(id),
                    "{id} kept its last values"
                );
            }
            other => panic!("{id}: poll success {other:?}"),
        }
    }
    // With this seed and these rates some, not all, associations fail; the storm is real.
    assert!(
        stale > 0 && stale < runs.len(),
        "{stale} of {} stale",
        runs.len()
    );

    rig.sim.set_faults(Faults::default());
    let after = rig.cycle().await;
    for ((id, _), new_run) in runs.iter().zip(&new_runs) {
        assert_eq!(success(&after, id), Some(1.0));
        assert_eq!(
            after.targets(id),
            expected_targets(&rig.sim, id, new_run, |_| true)
        );
    }
    rig.stop().await;
}

/// A throttling account that the client-side limit keeps under its rate: slower, no failure.
#[tokio::test]
async fn a_rate_limited_account_is_polled_without_throttling() {
    let (sim, runs) = forty();
    sim.set_faults(Faults {
        rate_limit: Some(200.0),
        ..Faults::default()
    });
    let rig = Rig::launch(
        sim,
        "api:\n  requests_per_second: 150\n  burst: 20\n  max_in_flight: 4\n",
    )
    .await;
    rig.exporter.wait_for_cycle(1).await.expect("first cycle");
    let metrics = rig.scrape().await;
    let throttled: Vec<_> = rig
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.status == 400)
        .collect();
    assert_eq!(throttled, [], "no call was throttled");
    for (id, run) in &runs {
        assert_eq!(
            metrics.targets(id),
            expected_targets(&rig.sim, id, run, |_| true)
        );
    }
    // 1 listing + 40 × (1 + 3) calls, and 40 looks for a success that no newest page had.
    assert_eq!(rig.sim.requests().len(), 201);
    rig.stop().await;
}

#[tokio::test]
async fn a_refused_token_restarts_the_listing_once() {
    let sim = Sim::new(72);
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    sim.insert_execution(
        A,
        E1,
        1_700_000_000.0,
        fleet("i-01111111111a", 140, &["Success", "Failed"]),
    );
    let rig = Rig::start(sim, "full_refresh_interval: 0s\n").await;
    let before = rig.scrape().await;

    // Once: the listing starts over and completes.
    rig.sim.set_target(
        A,
        E1,
        "i-01111111111a00000",
        "TimedOut",
        "ExecutionTimedOut",
    );
    rig.sim.set_faults(Faults {
        expire_tokens: 1,
        ..Faults::default()
    });
    let once = rig.cycle().await;
    assert_eq!(success(&once, A), Some(1.0));
    assert_eq!(once.targets(A), expected_targets(&rig.sim, A, E1, |_| true));
    let target_calls = rig
        .sim
        .requests()
        .iter()
        .filter(|r| r.operation == "DescribeAssociationExecutionTargets")
        .count();
    assert_eq!(target_calls, 5, "a page, a refused token, then three pages");

    // Twice in one listing: the association keeps its last values for this cycle.
    rig.sim
        .set_target(A, E1, "i-01111111111a00000", "Success", "Success");
    rig.sim.set_faults(Faults {
        expire_tokens: 2,
        ..Faults::default()
    });
    let twice = rig.cycle().await;
    assert_eq!(success(&twice, A), Some(0.0));
    assert_eq!(twice.targets(A), once.targets(A));
    let healed = rig.cycle().await;
    assert_eq!(healed.targets(A), before.targets(A));
    rig.stop().await;
}

#[tokio::test]
async fn an_execution_that_expires_before_it_is_read_gives_way_to_the_newest_that_exists() {
    let sim = Sim::new(73);
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    sim.insert_execution(
        A,
        E1,
        1_700_000_000.0,
        fleet("i-02222222222a", 4, &["Failed"]),
    );
    let rig = Rig::start(sim, "").await;
    rig.sim.insert_execution(
        A,
        E2,
        1_700_000_900.0,
        fleet("i-02222222222a", 4, &["Success"]),
    );
    rig.sim.expire_on_read(A, E2);
    let metrics = rig.cycle().await;
    assert_eq!(success(&metrics, A), Some(1.0));
    assert_eq!(
        metrics.targets(A),
        expected_targets(&rig.sim, A, E1, |_| true)
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_call_that_times_out_keeps_the_last_values() {
    let sim = Sim::new(74);
    for (id, e) in [(A, E1), (B, E2)] {
        sim.insert_association(id, None, "AWS-RunPatchBaseline");
        sim.insert_execution(
            id,
            e,
            1_700_000_000.0,
            fleet("i-03333333333a", 3, &["Success"]),
        );
    }
    let yaml = format!("associations:\n  - association_id: {A}\n  - association_id: {B}\n");
    let rig = Rig::launch_with(sim, &yaml, |options| ClientOptions {
        operation_timeout: Duration::from_secs(1),
        ..options
    })
    .await;
    rig.exporter.wait_for_cycle(1).await.expect("first cycle");
    let before = rig.scrape().await;
    // B's counts move, so that it must be read, and every call about it hangs.
    rig.sim
        .set_target(B, E2, "i-03333333333a00000", "Failed", "Failed");
    rig.sim.fail_association(B, Some(Fault::Hang));
    let during = rig.cycle().await;
    assert_eq!(
        (success(&during, A), success(&during, B)),
        (Some(1.0), Some(0.0))
    );
    assert_eq!(during.targets(B), before.targets(B));
    assert_eq!(
        during.get(
            "ssm_association_exporter_api_requests_total",
            &[("operation", "ListAssociations"), ("outcome", "success")]
        ),
        Some(1.0),
        "the second cycle lists; B's executions time out"
    );
    rig.stop().await;
}

#[tokio::test]
async fn the_cycle_timeout_cuts_off_what_is_not_done() {
    let sim = Sim::new(75);
    for (id, e) in [(A, E1), (B, E2)] {
        sim.insert_association(id, None, "AWS-RunPatchBaseline");
        sim.insert_execution(
            id,
            e,
            1_700_000_000.0,
            fleet("i-04444444444a", 3, &["Success"]),
        );
    }
    let yaml = format!(
        "cycle_timeout: 3s\nassociations:\n  - association_id: {A}\n  - association_id: {B}\n"
    );
    let rig = Rig::launch_with(sim, &yaml, |options| ClientOptions {
        operation_timeout: Duration::from_secs(7200),
        ..options
    })
    .await;
    rig.exporter.wait_for_cycle(1).await.expect("first cycle");
    let before = rig.scrape().await;
    rig.sim
        .set_target(B, E2, "i-04444444444a00000", "Failed", "Failed");
    rig.sim.fail_association(B, Some(Fault::Hang));
    rig.sim
        .set_target(A, E1, "i-04444444444a00000", "Failed", "Failed");
    let during = rig.cycle().await;
    assert_eq!(
        (success(&during, A), success(&during, B)),
        (Some(1.0), Some(0.0))
    );
    assert_eq!(
        during.targets(A),
        expected_targets(&rig.sim, A, E1, |_| true)
    );
    assert_eq!(during.targets(B), before.targets(B));
    rig.sim.fail_association(B, None);
    let after = rig.cycle().await;
    assert_eq!(success(&after, B), Some(1.0));
    rig.stop().await;
}

/// The execution ID of run `k` of the oldest-first test.
fn run_id(k: u32) -> String {
    format!("e0000000-0000-4000-8000-{k:012}")
}

/// DescribeAssociationExecutions listed oldest first, which nothing in AWS's documentation
/// rules out: the newest execution is still the one served, found with one more call (the
/// executions created since the first page's newest), first reading and new run alike.
#[tokio::test]
async fn executions_listed_oldest_first_still_give_the_newest() {
    let sim = Sim::new(74);
    sim.set_faults(Faults {
        executions_oldest_first: true,
        ..Faults::default()
    });
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    // 60 runs half an hour apart, more than a page; only the newest failed.
    for k in 0..60 {
        let status = if k == 59 { "Failed" } else { "Success" };
        sim.insert_execution(
            A,
            &run_id(k),
            1_700_000_000.0 + f64::from(k) * 1800.0,
            fleet("i-03333333333a", 3, &[status]),
        );
    }
    let rig = Rig::launch(sim, "").await;
    rig.exporter.wait_for_cycle(1).await.expect("first cycle");
    let first = rig.scrape().await;
    assert_eq!(
        first.execution_id(A, true).as_deref(),
        Some(run_id(59).as_str())
    );
    assert_eq!(
        first.targets(A),
        expected_targets(&rig.sim, A, &run_id(59), |_| true)
    );
    rig.sim.clear_requests();

    rig.sim.insert_execution(
        A,
        &run_id(60),
        1_700_000_000.0 + 60.0 * 1800.0,
        fleet("i-03333333333a", 3, &["Success"]),
    );
    let next = rig.cycle().await;
    assert_eq!(
        next.execution_id(A, true).as_deref(),
        Some(run_id(60).as_str())
    );
    assert_eq!(
        next.targets(A),
        expected_targets(&rig.sim, A, &run_id(60), |_| true)
    );
    let executions = rig
        .sim
        .requests()
        .iter()
        .filter(|r| r.operation == "DescribeAssociationExecutions")
        .count();
    assert_eq!(executions, 2, "the oldest page, then those created since");
    rig.stop().await;
}

/// A run that moves neither the association's `LastExecutionDate` nor its `Overview` (SSM has
/// never been seen to do it; the exporter's one assumption) goes unseen by cycles that trust
/// those records, and the full refresh catches it: here a reload to a refresh of 0s, where
/// the default waits 6 hours.
#[tokio::test]
async fn a_run_that_moves_no_record_is_caught_by_the_full_refresh() {
    let sim = Sim::new(75);
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    sim.insert_execution(
        A,
        E1,
        1_700_000_000.0,
        fleet("i-04444444444a", 4, &["Success"]),
    );
    let rig = Rig::start(sim, "").await;
    rig.sim.freeze_records(A).expect("association exists");
    rig.sim.insert_execution(
        A,
        E2,
        1_700_001_800.0,
        fleet("i-04444444444a", 4, &["Failed"]),
    );
    let trusted = rig.cycle().await;
    assert_eq!(trusted.execution_id(A, true).as_deref(), Some(E1));
    assert_eq!(
        trusted.targets(A),
        expected_targets(&rig.sim, A, E1, |_| true)
    );

    let refreshing = ssm_association_exporter::config::parse(
        "poll_interval: 1h\napi:\n  requests_per_second: 100000\n  burst: 1000\nfull_refresh_interval: 0s\n",
    )
    .expect("valid");
    rig.exporter
        .reload(Some(refreshing))
        .await
        .expect("scheduler runs");
    let refreshed = rig.cycle().await;
    assert_eq!(refreshed.execution_id(A, true).as_deref(), Some(E2));
    assert_eq!(
        refreshed.targets(A),
        expected_targets(&rig.sim, A, E2, |_| true)
    );
    rig.stop().await;
}
