//! Exact API calls per cycle: what change detection leaves to read.

use ssm_association_exporter::sim::{Faults, Sim};

use crate::harness::{Metrics, Rig, expected_targets, fleet};

const A: &str = "fa94c678-85c6-4d40-926b-7c791a0b1c2d";
const B: &str = "0b7e1a52-3c0d-4c1e-9f43-5a1d2c3b4e5f";
const C: &str = "9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f";

/// The operations the simulator saw since the last call, counted by name.
fn calls(sim: &Sim) -> Vec<(String, usize)> {
    let mut counted: std::collections::BTreeMap<String, usize> = Default::default();
    for r in sim.requests() {
        *counted.entry(r.operation).or_default() += 1;
    }
    sim.clear_requests();
    counted.into_iter().collect()
}

fn expect(pairs: &[(&str, usize)]) -> Vec<(String, usize)> {
    pairs.iter().map(|(op, n)| ((*op).to_owned(), *n)).collect()
}

fn total(metrics: &Metrics, id: &str) -> f64 {
    metrics.targets(id).values().sum()
}

/// 120 associations of 60 targets each: three pages of associations, two of targets each.
fn fleet_of_120() -> (Sim, Vec<String>) {
    let sim = Sim::new(61);
    let ids: Vec<String> = (0..120)
        .map(|i| {
            let id = sim.create_association(Some(&format!("a-{i:03}")), "AWS-RunPatchBaseline");
            sim.start_execution(
                &id,
                fleet(&format!("i-{i:03}aaaaaaaaaa"), 60, &["Success", "Failed"]),
            )
            .expect("association exists");
            id
        })
        .collect();
    (sim, ids)
}

#[tokio::test]
async fn discovery_costs_one_call_per_page_of_associations_once_settled() {
    let (sim, ids) = fleet_of_120();
    let rig = Rig::launch(sim, "").await;
    rig.exporter.wait_for_cycle(1).await.expect("first cycle");
    assert_eq!(
        calls(&rig.sim),
        expect(&[
            ("DescribeAssociationExecutionTargets", 240),
            ("DescribeAssociationExecutions", 240),
            ("ListAssociations", 3),
        ]),
        "the first cycle reads everything, and looks once for a success that no newest page had"
    );

    let steady = rig.cycle().await;
    assert_eq!(
        calls(&rig.sim),
        expect(&[("ListAssociations", 3)]),
        "ceil(120/50) = 3"
    );
    assert_eq!(
        steady.get("ssm_association_exporter_last_cycle_api_requests", &[]),
        Some(3.0)
    );
    for id in &ids {
        assert_eq!(total(&steady, id), 60.0);
        assert_eq!(
            steady.get("ssm_association_poll_success", &[("association_id", id)]),
            Some(1.0)
        );
    }

    // One new run of 130 targets: 1 + ceil(130/50) calls more.
    let run = rig
        .sim
        .start_execution(
            &ids[7],
            fleet("i-007bbbbbbbbbb", 130, &["Success", "TimedOut"]),
        )
        .expect("association exists");
    let after = rig.cycle().await;
    assert_eq!(
        calls(&rig.sim),
        expect(&[
            ("DescribeAssociationExecutionTargets", 3),
            ("DescribeAssociationExecutions", 1),
            ("ListAssociations", 3),
        ])
    );
    assert_eq!(
        after.targets(&ids[7]),
        expected_targets(&rig.sim, &ids[7], &run, |_| true)
    );

    rig.cycle().await;
    assert_eq!(calls(&rig.sim), expect(&[("ListAssociations", 3)]));
    rig.stop().await;
}

/// Renderings of the pair's series so far.
fn renders(metrics: &Metrics) -> f64 {
    metrics
        .get("ssm_association_exporter_renders_total", &[])
        .expect("renders_total")
}

/// A cycle that reads nothing new renders nothing: the series are the same bytes as before,
/// and only the exporter's own counters moved. A new run renders the pair once.
#[tokio::test]
async fn a_cycle_that_reads_nothing_new_renders_nothing() {
    let (sim, ids) = fleet_of_120();
    let rig = Rig::launch(sim, "").await;
    rig.exporter.wait_for_cycle(1).await.expect("first cycle");
    let first = rig.scrape().await;
    let rendered = renders(&first);
    let series = |m: &Metrics| {
        m.0.iter()
            .filter(|(name, _)| !name.starts_with("ssm_association_exporter_"))
            .map(|(name, value)| (name.clone(), *value))
            .collect::<Vec<_>>()
    };
    for _ in 0..2 {
        let steady = rig.cycle().await;
        assert_eq!(renders(&steady), rendered);
        assert_eq!(series(&steady), series(&first));
        // Each: two target counts, info, execution info and start, last run, poll success,
        // next run and schedule interval.
        assert_eq!(series(&first).len(), 120 * 9);
    }
    rig.sim
        .start_execution(&ids[3], fleet("i-003bbbbbbbbbb", 10, &["Success"]))
        .expect("association exists");
    let after = rig.cycle().await;
    assert_eq!(renders(&after), rendered + 1.0);
    assert_eq!(total(&after, &ids[3]), 10.0);
    let steady = rig.cycle().await;
    assert_eq!(renders(&steady), rendered + 1.0);
    rig.stop().await;
}

#[tokio::test]
async fn a_running_execution_is_read_every_cycle_until_it_finishes() {
    let sim = Sim::new(62);
    sim.insert_association(A, Some("patch"), "AWS-RunPatchBaseline");
    let run = sim
        .start_execution(
            A,
            fleet("i-0ccccccccccc", 75, &["InProgress", "Pending", "Success"]),
        )
        .expect("association exists");
    let rig = Rig::start(sim, "").await;

    // Running: listing, executions, two pages of targets, every cycle, even if nothing moved.
    for _ in 0..2 {
        let metrics = rig.cycle().await;
        assert_eq!(
            calls(&rig.sim),
            expect(&[
                ("DescribeAssociationExecutionTargets", 2),
                ("DescribeAssociationExecutions", 1),
                ("ListAssociations", 1),
            ])
        );
        assert_eq!(
            metrics.targets(A),
            expected_targets(&rig.sim, A, &run, |_| true)
        );
    }

    // It finishes: read once more, then never again.
    for i in (0..75).filter(|i| i % 3 != 2) {
        rig.sim.set_target(
            A,
            &run,
            &format!("i-0ccccccccccc{i:05}"),
            "Success",
            "Success",
        );
    }
    let finished = rig.cycle().await;
    assert_eq!(
        calls(&rig.sim),
        expect(&[
            ("DescribeAssociationExecutionTargets", 2),
            ("DescribeAssociationExecutions", 1),
            ("ListAssociations", 1),
        ])
    );
    assert_eq!(total(&finished, A), 75.0);
    assert_eq!(finished.targets(A).len(), 1, "all Success now");
    rig.cycle().await;
    assert_eq!(calls(&rig.sim), expect(&[("ListAssociations", 1)]));
    rig.stop().await;
}

#[tokio::test]
async fn a_finished_execution_whose_summary_moves_is_read_again() {
    let sim = Sim::new(63);
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    let run = sim
        .start_execution(A, fleet("i-0ddddddddddd", 10, &["Success", "Failed"]))
        .expect("association exists");
    let rig = Rig::start(sim, "").await;
    // A late report from a node: the execution stays Failed, its counts move.
    rig.sim
        .set_target(A, &run, "i-0ddddddddddd00001", "Success", "Success");
    let metrics = rig.cycle().await;
    assert_eq!(
        calls(&rig.sim),
        expect(&[
            ("DescribeAssociationExecutionTargets", 1),
            ("DescribeAssociationExecutions", 1),
            ("ListAssociations", 1),
        ])
    );
    assert_eq!(
        metrics.targets(A),
        expected_targets(&rig.sim, A, &run, |_| true)
    );
    rig.stop().await;
}

/// A, B and C with one finished run of 20 targets each, and the configuration that lists them.
fn three_watched(seed: u64) -> (Sim, String) {
    let sim = Sim::new(seed);
    for (id, prefix) in [
        (A, "i-0eeeeeeeeee1"),
        (B, "i-0eeeeeeeeee2"),
        (C, "i-0eeeeeeeeee3"),
    ] {
        sim.insert_association(id, None, "AWS-RunPatchBaseline");
        sim.start_execution(id, fleet(prefix, 20, &["Success"]))
            .expect("association exists");
    }
    let yaml = format!(
        "associations:\n  - association_id: {A}\n  - association_id: {B}\n  - association_id: {C}\n"
    );
    (sim, yaml)
}

#[tokio::test]
async fn explicit_associations_are_listed_once_listing_is_cheaper() {
    let (sim, yaml) = three_watched(64);
    let rig = Rig::launch(sim, &yaml).await;
    rig.exporter.wait_for_cycle(1).await.expect("first cycle");
    assert_eq!(
        calls(&rig.sim),
        expect(&[
            ("DescribeAssociation", 3),
            ("DescribeAssociationExecutionTargets", 3),
            ("DescribeAssociationExecutions", 3),
        ]),
        "the first cycle describes each"
    );
    // The second learns the region's size with one listing, which answers for all three.
    rig.cycle().await;
    assert_eq!(calls(&rig.sim), expect(&[("ListAssociations", 1)]));
    let steady = rig.cycle().await;
    assert_eq!(calls(&rig.sim), expect(&[("ListAssociations", 1)]));
    for id in [A, B, C] {
        assert_eq!(total(&steady, id), 20.0);
    }
    // A deleted association is missing from the listing: gone, at no extra cost.
    rig.sim.delete_association(B);
    let after = rig.cycle().await;
    assert_eq!(calls(&rig.sim), expect(&[("ListAssociations", 1)]));
    assert_eq!(
        after.associations_in("ssm_association_poll_success"),
        [C, A],
        "sorted by ID"
    );
    rig.stop().await;
}

/// In explicit mode a refused listing (an expired session's token) turns the pair to
/// describing each association, says so in `association_read_mode`, and costs no refused
/// call at every cycle: the listing waits 15 minutes before it is tried again (a unit test
/// of the poller shows the return).
#[tokio::test]
async fn a_refused_listing_in_explicit_mode_describes_each_and_says_so() {
    let (sim, yaml) = three_watched(67);
    let rig = Rig::start(sim, &yaml).await;
    let mode = |m: &Metrics, mode: &str| {
        m.get(
            "ssm_association_exporter_association_read_mode",
            &[("mode", mode)],
        )
    };
    let listed = rig.cycle().await;
    assert_eq!(calls(&rig.sim), expect(&[("ListAssociations", 1)]));
    assert_eq!(
        (mode(&listed, "list"), mode(&listed, "describe")),
        (Some(1.0), Some(0.0))
    );
    rig.sim.set_faults(Faults {
        refuse_listings: 1,
        ..Faults::default()
    });
    let refused = rig.cycle().await;
    assert_eq!(
        calls(&rig.sim),
        expect(&[("DescribeAssociation", 3), ("ListAssociations", 1)])
    );
    assert_eq!(
        (mode(&refused, "list"), mode(&refused, "describe")),
        (Some(0.0), Some(1.0))
    );
    for id in [A, B, C] {
        assert_eq!(total(&refused, id), 20.0);
        assert_eq!(
            refused.get("ssm_association_poll_success", &[("association_id", id)]),
            Some(1.0)
        );
    }
    rig.cycle().await;
    assert_eq!(calls(&rig.sim), expect(&[("DescribeAssociation", 3)]));
    rig.stop().await;
}

#[tokio::test]
async fn full_refresh_zero_rereads_everything_every_cycle() {
    let sim = Sim::new(65);
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    sim.start_execution(A, fleet("i-0fffffffffff", 51, &["Success"]))
        .expect("association exists");
    let rig = Rig::start(sim, "full_refresh_interval: 0s\n").await;
    rig.cycle().await;
    assert_eq!(
        calls(&rig.sim),
        expect(&[
            ("DescribeAssociationExecutionTargets", 2),
            ("DescribeAssociationExecutions", 1),
            ("ListAssociations", 1),
        ])
    );
    rig.stop().await;
}

/// One listing that fails after its retries costs the next cycle nothing extra: the listing
/// after it is compared with the last complete one, and only what changed between them is
/// read.
#[tokio::test]
async fn a_failed_listing_costs_the_next_cycle_only_what_changed() {
    let (sim, ids) = fleet_of_120();
    let rig = Rig::start(sim, "").await;
    rig.sim.set_faults(Faults {
        throttle_rate: 1.0,
        ..Faults::default()
    });
    let during = rig.cycle().await;
    assert_eq!(
        calls(&rig.sim),
        expect(&[("ListAssociations", 2)]),
        "one call and its one retry, then the cycle gives up"
    );
    assert_eq!(
        during.get(
            "ssm_association_poll_success",
            &[("association_id", &ids[0])]
        ),
        Some(0.0)
    );
    // A run that starts while the listing is down is what the next listing finds changed.
    let run = rig
        .sim
        .start_execution(&ids[9], fleet("i-009cccccccccc", 70, &["Failed"]))
        .expect("association exists");
    rig.sim.set_faults(Faults::default());
    let after = rig.cycle().await;
    assert_eq!(
        calls(&rig.sim),
        expect(&[
            ("DescribeAssociationExecutionTargets", 2),
            ("DescribeAssociationExecutions", 1),
            ("ListAssociations", 3),
        ]),
        "ceil(120/50) listings, and 1 + ceil(70/50) for the new run"
    );
    for id in &ids {
        assert_eq!(
            after.get("ssm_association_poll_success", &[("association_id", id)]),
            Some(1.0)
        );
    }
    assert_eq!(
        after.targets(&ids[9]),
        expected_targets(&rig.sim, &ids[9], &run, |_| true)
    );
    rig.cycle().await;
    assert_eq!(calls(&rig.sim), expect(&[("ListAssociations", 3)]));
    rig.stop().await;
}

/// In explicit mode a listing that fails (not one that is refused) does not turn the exporter
/// to describing each association: the cycle keeps the last values and lists again next time.
#[tokio::test]
async fn a_failed_listing_in_explicit_mode_lists_again_next_cycle() {
    let (sim, yaml) = three_watched(66);
    let rig = Rig::start(sim, &yaml).await;
    rig.cycle().await;
    assert_eq!(calls(&rig.sim), expect(&[("ListAssociations", 1)]));
    rig.sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let during = rig.cycle().await;
    assert_eq!(calls(&rig.sim), expect(&[("ListAssociations", 2)]));
    for id in [A, B, C] {
        assert_eq!(total(&during, id), 20.0);
        assert_eq!(
            during.get("ssm_association_poll_success", &[("association_id", id)]),
            Some(0.0)
        );
    }
    rig.sim.set_faults(Faults::default());
    let after = rig.cycle().await;
    assert_eq!(calls(&rig.sim), expect(&[("ListAssociations", 1)]));
    for id in [A, B, C] {
        assert_eq!(
            after.get("ssm_association_poll_success", &[("association_id", id)]),
            Some(1.0)
        );
    }
    rig.stop().await;
}

/// Started while a run is in progress, the exporter also counts the last finished run: from
/// the same page of executions, so the first cycle costs only that run's target pages more.
/// A success that no newest page shows is looked for once, not at every new run.
#[tokio::test]
async fn a_first_cycle_during_a_run_also_counts_the_last_finished_one() {
    let sim = Sim::new(62);
    let id = sim.create_association(Some("patch"), "AWS-RunPatchBaseline");
    let finished = sim
        .start_execution(&id, fleet("i-000aaaaaaaaaa", 70, &["Success", "Failed"]))
        .expect("association exists");
    let running = sim
        .start_execution(
            &id,
            fleet("i-000aaaaaaaaaa", 70, &["InProgress", "Success"]),
        )
        .expect("association exists");
    let rig = Rig::launch(sim, "").await;
    rig.exporter.wait_for_cycle(1).await.expect("first cycle");
    assert_eq!(
        calls(&rig.sim),
        expect(&[
            // Two pages of each run's targets.
            ("DescribeAssociationExecutionTargets", 4),
            // The newest executions, then the newest success (none of the two succeeded).
            ("DescribeAssociationExecutions", 2),
            ("ListAssociations", 1),
        ])
    );
    let first = rig.scrape().await;
    assert_eq!(
        first.finished_targets(&id),
        expected_targets(&rig.sim, &id, &finished, |_| true)
    );
    assert_eq!(
        first.running_targets(&id),
        expected_targets(&rig.sim, &id, &running, |_| true)
    );
    assert_eq!(
        first.get(
            "ssm_association_last_successful_execution_timestamp_seconds",
            &[("association_id", &id)]
        ),
        None
    );

    // While it runs, each cycle reads the running one only: the finished one's counts stand.
    rig.cycle().await;
    assert_eq!(
        calls(&rig.sim),
        expect(&[
            ("DescribeAssociationExecutionTargets", 2),
            ("DescribeAssociationExecutions", 1),
            ("ListAssociations", 1),
        ])
    );

    // It fails too: read once more, and no new look for a success.
    for i in (0..70).step_by(2) {
        rig.sim.set_target(
            &id,
            &running,
            &format!("i-000aaaaaaaaaa{i:05}"),
            "Failed",
            "Failed",
        );
    }
    let after = rig.cycle().await;
    assert_eq!(
        calls(&rig.sim),
        expect(&[
            ("DescribeAssociationExecutionTargets", 2),
            ("DescribeAssociationExecutions", 1),
            ("ListAssociations", 1),
        ])
    );
    assert_eq!(
        after.finished_targets(&id),
        expected_targets(&rig.sim, &id, &running, |_| true)
    );
    assert_eq!(after.running_targets(&id).len(), 0);

    // A run that succeeds is the last success from then on, at no extra call.
    let success = rig
        .sim
        .start_execution(&id, fleet("i-000aaaaaaaaaa", 70, &["Success"]))
        .expect("association exists");
    let last = rig.cycle().await;
    assert_eq!(
        calls(&rig.sim),
        expect(&[
            ("DescribeAssociationExecutionTargets", 2),
            ("DescribeAssociationExecutions", 1),
            ("ListAssociations", 1),
        ])
    );
    assert_eq!(last.execution_id(&id, true), Some(success.clone()));
    assert!(
        last.get(
            "ssm_association_last_successful_execution_timestamp_seconds",
            &[("association_id", &id)]
        )
        .is_some()
    );
    rig.cycle().await;
    assert_eq!(calls(&rig.sim), expect(&[("ListAssociations", 1)]));
    rig.stop().await;
}
