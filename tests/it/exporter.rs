//! The exporter in-process, with the real aws-sdk-ssm client, against the simulator.

use ssm_association_exporter::sim::{Fault, Faults, Sim, SimTarget};
use ssm_association_exporter::ssm::aws::ClientOptions;

use std::collections::BTreeMap;

use crate::harness::{Metrics, Rig, expected_targets, fleet, get, request};

const A: &str = "fa94c678-85c6-4d40-926b-7c791a0b1c2d";
const B: &str = "0b7e1a52-3c0d-4c1e-9f43-5a1d2c3b4e5f";
const C: &str = "9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f";
const E1: &str = "d6d51ef5-4eca-48ef-9d7d-bd6ce3e4f5a6";
const E2: &str = "7abb6378-a4a5-4f10-8312-0123456789ab";

fn key(e: &str, s: &str, d: &str, r: &str) -> (String, String, String, String) {
    (e.into(), s.into(), d.into(), r.into())
}

fn explicit(ids: &[&str]) -> String {
    let mut yaml = "associations:\n".to_owned();
    for id in ids {
        yaml.push_str(&format!("  - association_id: {id}\n"));
    }
    yaml
}

#[tokio::test]
async fn counts_every_page_of_targets_exactly() {
    let sim = Sim::new(1);
    sim.insert_association(A, Some("patch-linux"), "AWS-RunPatchBaseline");
    let mut targets = fleet(
        "i-0aaaaaaaaaaa",
        237,
        &["Success", "Success", "Success", "Failed"],
    );
    targets[3] = targets[3].clone().detailed("Undeliverable");
    targets[7] =
        SimTarget::instance("i-0aaaaaaaaaaa00007", "TimedOut").detailed("ExecutionTimedOut");
    targets[9] = targets[9].clone().resource_type("AWS::EC2::Instance");
    sim.insert_execution(A, E1, 1_700_000_000.5, targets);
    let rig = Rig::launch(sim, &explicit(&[A])).await;
    rig.exporter.wait_for_cycle(1).await.expect("first cycle");

    let metrics = rig.scrape().await;
    let want = [
        (key(E1, "Failed", "Failed", "ManagedInstance"), 57.0),
        (key(E1, "Failed", "Undeliverable", "ManagedInstance"), 1.0),
        (key(E1, "Success", "Success", "AWS::EC2::Instance"), 1.0),
        (key(E1, "Success", "Success", "ManagedInstance"), 177.0),
        (
            key(E1, "TimedOut", "ExecutionTimedOut", "ManagedInstance"),
            1.0,
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(metrics.targets(A), want);
    assert_eq!(
        metrics.targets(A),
        expected_targets(&rig.sim, A, E1, |_| true)
    );
    assert_eq!(
        metrics.get(
            "ssm_association_info",
            &[
                ("association_id", A),
                ("association_name", "patch-linux"),
                ("document_name", "AWS-RunPatchBaseline"),
                ("document_version", "$DEFAULT"),
                ("association_version", "1"),
                ("schedule_expression", "rate(30 minutes)"),
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        metrics.get(
            "ssm_association_execution_info",
            &[
                ("association_id", A),
                ("execution_id", E1),
                ("status", "Failed"),
                ("detailed_status", "Failed")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        metrics.get(
            "ssm_association_execution_created_timestamp_seconds",
            &[("association_id", A)]
        ),
        Some(1_700_000_000.5)
    );
    // rate(30 minutes) from the run's start.
    assert_eq!(
        metrics.get(
            "ssm_association_next_run_timestamp_seconds",
            &[("association_id", A)]
        ),
        Some(1_700_000_000.5 + 1800.0)
    );
    assert_eq!(
        metrics.get(
            "ssm_association_schedule_interval_seconds",
            &[("association_id", A)]
        ),
        Some(1800.0)
    );
    assert_eq!(
        metrics.get("ssm_association_poll_success", &[("association_id", A)]),
        Some(1.0)
    );

    // 237 targets are five pages of at most 50; every listing asked for 50.
    let requests = rig.sim.requests();
    let pages: Vec<_> = requests
        .iter()
        .filter(|r| r.operation == "DescribeAssociationExecutionTargets")
        .collect();
    assert_eq!(pages.len(), 5, "{requests:?}");
    assert!(pages.iter().all(|r| r.max_results == Some(50)), "{pages:?}");
    assert_eq!(
        requests
            .iter()
            .map(|r| r.operation.as_str())
            .collect::<Vec<_>>(),
        [
            "DescribeAssociation",
            "DescribeAssociationExecutions",
            "DescribeAssociationExecutionTargets",
            "DescribeAssociationExecutionTargets",
            "DescribeAssociationExecutionTargets",
            "DescribeAssociationExecutionTargets",
            "DescribeAssociationExecutionTargets",
        ]
    );
    assert_eq!(
        metrics.get(
            "ssm_association_exporter_api_requests_total",
            &[
                ("operation", "DescribeAssociationExecutionTargets"),
                ("outcome", "success")
            ]
        ),
        Some(5.0)
    );

    // Nothing changed: the next cycle asks whether the association ran, and nothing more.
    rig.sim.clear_requests();
    let steady = rig.cycle().await;
    assert_eq!(steady.targets(A), want);
    let operations: Vec<String> = rig
        .sim
        .requests()
        .into_iter()
        .map(|r| r.operation)
        .collect();
    assert_eq!(operations, ["DescribeAssociation"]);
    assert_eq!(
        steady.get("ssm_association_exporter_last_cycle_api_requests", &[]),
        Some(1.0)
    );
    rig.stop().await;
}

/// The series of an association's counts keep their identity across runs: a run that starts
/// shows beside the last finished one's counts, which stand until it finishes.
#[tokio::test]
async fn a_new_run_leaves_the_last_finished_counts_until_it_finishes() {
    let sim = Sim::new(2);
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    sim.insert_execution(
        A,
        E1,
        1_700_000_000.0,
        fleet("i-0bbbbbbbbbbb", 4, &["Failed"]),
    );
    let rig = Rig::start(sim, &explicit(&[A])).await;
    let first = rig.cycle().await;
    let failed = [(key(E1, "Failed", "Failed", "ManagedInstance"), 4.0)]
        .into_iter()
        .collect();
    assert_eq!(first.finished_targets(A), failed);
    assert_eq!(first.running_targets(A), BTreeMap::new());
    let series = |m: &Metrics| m.family("ssm_association_targets");
    let info = |m: &Metrics| -> Vec<(String, String)> {
        m.family("ssm_association_execution_info")
            .keys()
            .map(|l| (l["execution_id"].clone(), l["status"].clone()))
            .collect()
    };
    assert_eq!(info(&first), [(E1.to_owned(), "Failed".to_owned())]);

    rig.sim.insert_execution(
        A,
        E2,
        1_700_003_600.0,
        fleet("i-0bbbbbbbbbbb", 4, &["InProgress", "Success"]),
    );
    let second = rig.cycle().await;
    // The failed run's counts stand, in the very same series, while the next one runs.
    assert_eq!(series(&second), series(&first));
    assert_eq!(second.finished_targets(A), failed);
    assert_eq!(
        second.running_targets(A),
        [
            (key(E2, "InProgress", "InProgress", "ManagedInstance"), 2.0),
            (key(E2, "Success", "Success", "ManagedInstance"), 2.0),
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(
        info(&second),
        [
            (E1.to_owned(), "Failed".to_owned()),
            (E2.to_owned(), "InProgress".to_owned())
        ]
    );
    assert_eq!(
        second.get(
            "ssm_association_running_execution_created_timestamp_seconds",
            &[("association_id", A)]
        ),
        Some(1_700_003_600.0)
    );
    assert_eq!(
        second.get(
            "ssm_association_execution_created_timestamp_seconds",
            &[("association_id", A)]
        ),
        Some(1_700_000_000.0)
    );
    // The schedule counts from the newest run's start.
    assert_eq!(
        second.get(
            "ssm_association_next_run_timestamp_seconds",
            &[("association_id", A)]
        ),
        Some(1_700_003_600.0 + 1800.0)
    );

    // The run finishes: its counts replace the last one's, and nothing runs.
    for i in [0, 2] {
        rig.sim.set_target(
            A,
            E2,
            &format!("i-0bbbbbbbbbbb{i:05}"),
            "Success",
            "Success",
        );
    }
    let third = rig.cycle().await;
    let succeeded: BTreeMap<_, _> = [(key(E2, "Success", "Success", "ManagedInstance"), 4.0)]
        .into_iter()
        .collect();
    assert_eq!(third.finished_targets(A), succeeded);
    assert_eq!(third.running_targets(A), BTreeMap::new());
    assert_eq!(info(&third), [(E2.to_owned(), "Success".to_owned())]);
    assert_eq!(
        third.get(
            "ssm_association_running_execution_created_timestamp_seconds",
            &[("association_id", A)]
        ),
        None
    );
    assert_eq!(
        third.get(
            "ssm_association_last_successful_execution_timestamp_seconds",
            &[("association_id", A)]
        ),
        Some(1_700_003_600.0)
    );

    // Any number of runs with the same outcome keep the same series.
    for n in 0..3 {
        let e = rig
            .sim
            .start_execution(A, fleet("i-0bbbbbbbbbbb", 4, &["Success"]))
            .expect("association exists");
        let later = rig.cycle().await;
        assert_eq!(series(&later), series(&third), "run {n}");
        assert_eq!(later.execution_id(A, true), Some(e));
    }
    rig.stop().await;
}

#[tokio::test]
async fn a_deleted_association_vanishes() {
    for discovery in [true, false] {
        let sim = Sim::new(3);
        sim.insert_association(A, Some("keep"), "AWS-RunPatchBaseline");
        sim.insert_association(B, Some("drop"), "AWS-RunPatchBaseline");
        sim.insert_execution(
            A,
            E1,
            1_700_000_000.0,
            fleet("i-0cccccccccca", 3, &["Success"]),
        );
        sim.insert_execution(
            B,
            E2,
            1_700_000_000.0,
            fleet("i-0cccccccccca", 2, &["Failed"]),
        );
        let yaml = if discovery {
            String::new()
        } else {
            explicit(&[A, B])
        };
        let rig = Rig::start(sim, &yaml).await;

        let before = rig.cycle().await;
        assert_eq!(
            before.associations_in("ssm_association_poll_success"),
            [B, A],
            "discovery={discovery}"
        );
        assert_eq!(before.targets(B).len(), 1);

        assert!(rig.sim.delete_association(B));
        let after = rig.cycle().await;
        for family in [
            "ssm_association_targets",
            "ssm_association_info",
            "ssm_association_execution_info",
            "ssm_association_execution_created_timestamp_seconds",
            "ssm_association_last_execution_timestamp_seconds",
            "ssm_association_poll_success",
        ] {
            assert_eq!(
                after.associations_in(family),
                [A],
                "{family}, discovery={discovery}"
            );
        }
        assert_eq!(after.targets(A), before.targets(A));
        assert_eq!(
            after.get("ssm_association_exporter_watched_associations", &[]),
            Some(1.0)
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn status_values_never_seen_before_are_exported_as_they_come() {
    let sim = Sim::new(4);
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    sim.insert_execution(
        A,
        E1,
        1_700_000_000.0,
        vec![
            SimTarget::instance("i-0ddddddddddd00001", "Quarantined")
                .detailed("Held \"for\" review\\now"),
            SimTarget::instance("i-0ddddddddddd00002", "Success")
                .resource_type("Automation::Runbook"),
        ],
    );
    sim.set_execution_status(A, E1, "PartiallyDone", "Mostly");
    let rig = Rig::start(sim, &explicit(&[A])).await;
    let metrics = rig.cycle().await;
    assert_eq!(
        metrics.targets(A),
        [
            (
                key(
                    E1,
                    "Quarantined",
                    "Held \"for\" review\\now",
                    "ManagedInstance"
                ),
                1.0
            ),
            (key(E1, "Success", "Success", "Automation::Runbook"), 1.0),
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(
        metrics.get(
            "ssm_association_execution_info",
            &[
                ("association_id", A),
                ("execution_id", E1),
                ("status", "PartiallyDone"),
                ("detailed_status", "Mostly")
            ]
        ),
        Some(1.0)
    );
    rig.stop().await;
}

#[tokio::test]
async fn an_error_on_one_association_leaves_the_others_served() {
    let sim = Sim::new(5);
    for (id, prefix) in [
        (A, "i-0eeeeeeeeee1"),
        (B, "i-0eeeeeeeeee2"),
        (C, "i-0eeeeeeeeee3"),
    ] {
        sim.insert_association(id, None, "AWS-RunPatchBaseline");
        sim.insert_execution(
            id,
            E1,
            1_700_000_000.0,
            fleet(prefix, 60, &["Success", "Failed"]),
        );
    }
    let rig = Rig::start(sim, &explicit(&[A, B, C])).await;
    let mut healthy = rig.cycle().await;
    let b_before = healthy.targets(B);
    assert_eq!(b_before.values().sum::<f64>(), 60.0);

    for fault in [
        Fault::InternalError,
        Fault::Unavailable,
        Fault::AccessDenied,
        Fault::Throttle,
        Fault::Reset,
        Fault::Garbage,
    ] {
        // B's state changes while it cannot be read: the exporter must keep the old counts.
        rig.sim
            .set_target(B, E1, "i-0eeeeeeeeee200000", "Failed", "Failed");
        rig.sim.fail_association(B, Some(fault));
        rig.sim.set_target(
            A,
            E1,
            "i-0eeeeeeeeee100000",
            "TimedOut",
            "ExecutionTimedOut",
        );
        let during = rig.cycle().await;
        assert_eq!(during.targets(B), b_before, "{fault:?}");
        assert_eq!(
            during.get("ssm_association_poll_success", &[("association_id", B)]),
            Some(0.0),
            "{fault:?}"
        );
        assert_eq!(
            during.get("ssm_association_poll_success", &[("association_id", A)]),
            Some(1.0)
        );
        assert_eq!(
            during.targets(A),
            expected_targets(&rig.sim, A, E1, |_| true),
            "{fault:?}"
        );
        assert_eq!(
            during.targets(C),
            expected_targets(&rig.sim, C, E1, |_| true),
            "{fault:?}"
        );
        // B's series are as old as its last successful poll, which the healthy cycle made
        // (at its start); one polled successfully has no such series.
        let polled = during
            .get(
                "ssm_association_last_successful_poll_timestamp_seconds",
                &[("association_id", B)],
            )
            .expect("B's last success while it fails");
        let cycle = |name: &str| healthy.get(name, &[]).expect(name);
        let finished = cycle("ssm_association_exporter_last_successful_cycle_timestamp_seconds");
        let took = cycle("ssm_association_exporter_last_cycle_duration_seconds");
        assert!(
            (finished - took - 0.002..=finished).contains(&polled),
            "{polled} not within the healthy cycle {finished}-{took}"
        );
        assert_eq!(
            healthy.get(
                "ssm_association_last_successful_poll_timestamp_seconds",
                &[("association_id", B)]
            ),
            None
        );

        rig.sim.fail_association(B, None);
        rig.sim
            .set_target(B, E1, "i-0eeeeeeeeee200000", "Success", "Success");
        let healed = rig.cycle().await;
        assert_eq!(healed.targets(B), b_before, "{fault:?}");
        assert_eq!(
            healed.get("ssm_association_poll_success", &[("association_id", B)]),
            Some(1.0)
        );
        healthy = healed;
    }
    // From the second cycle on, one listing answers for all three associations, and only
    // one whose overview moved is asked for its executions: that is the call that fails.
    let metrics = rig.scrape().await;
    assert_eq!(
        metrics.get(
            "ssm_association_exporter_cycles_total",
            &[("outcome", "failure")]
        ),
        Some(6.0)
    );
    assert_eq!(
        metrics.get(
            "ssm_association_exporter_api_requests_total",
            &[
                ("operation", "DescribeAssociationExecutions"),
                ("outcome", "client_error")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        metrics.get(
            "ssm_association_exporter_api_requests_total",
            &[
                ("operation", "DescribeAssociationExecutions"),
                ("outcome", "server_error")
            ]
        ),
        Some(2.0),
        "a 500 with a JSON body, and a 503 with none"
    );
    assert_eq!(
        metrics.get(
            "ssm_association_exporter_api_requests_total",
            &[
                ("operation", "DescribeAssociationExecutions"),
                ("outcome", "throttled")
            ]
        ),
        Some(1.0)
    );
    for outcome in ["network_error", "invalid_response"] {
        assert_eq!(
            metrics.get(
                "ssm_association_exporter_api_requests_total",
                &[
                    ("operation", "DescribeAssociationExecutions"),
                    ("outcome", outcome)
                ]
            ),
            Some(1.0),
            "{outcome}"
        );
    }
    rig.stop().await;
}

#[tokio::test]
async fn a_failed_discovery_keeps_every_association_as_it_was() {
    let sim = Sim::new(15);
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    sim.insert_association(B, None, "AWS-RunPatchBaseline");
    sim.insert_execution(
        A,
        E1,
        1_700_000_000.0,
        fleet("i-08888888888a", 3, &["Success"]),
    );
    sim.insert_execution(
        B,
        E2,
        1_700_000_000.0,
        fleet("i-08888888888b", 2, &["Failed"]),
    );
    let rig = Rig::start(sim, "").await;
    let before = rig.scrape().await;
    rig.sim.set_faults(Faults {
        throttle_rate: 1.0,
        ..Faults::default()
    });
    let during = rig.cycle().await;
    for id in [A, B] {
        assert_eq!(during.targets(id), before.targets(id));
        assert_eq!(
            during.get("ssm_association_poll_success", &[("association_id", id)]),
            Some(0.0)
        );
    }
    assert_eq!(
        during.get(
            "ssm_association_exporter_api_requests_total",
            &[("operation", "ListAssociations"), ("outcome", "throttled")]
        ),
        Some(1.0)
    );
    rig.sim.set_faults(Faults::default());
    let after = rig.cycle().await;
    for id in [A, B] {
        assert_eq!(
            after.get("ssm_association_poll_success", &[("association_id", id)]),
            Some(1.0)
        );
    }
    rig.stop().await;
}

#[tokio::test]
async fn a_pinned_execution_is_counted_even_when_newer_ones_exist() {
    let sim = Sim::new(6);
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    sim.insert_execution(
        A,
        E1,
        1_700_000_000.0,
        fleet("i-0fffffffffff", 75, &["Failed", "Success", "Success"]),
    );
    sim.insert_execution(
        A,
        E2,
        1_700_009_000.0,
        fleet("i-0fffffffffff", 75, &["Success"]),
    );
    // Deleting an old execution changes nothing SSM reports about the association, so only a
    // full refresh notices it: here, every cycle.
    let yaml = format!(
        "full_refresh_interval: 0s\nassociations:\n  - association_id: {A}\n    execution_id: {}\n",
        E1.to_uppercase()
    );
    let rig = Rig::start(sim, &yaml).await;
    let metrics = rig.cycle().await;
    assert_eq!(
        metrics.targets(A),
        [
            (key(E1, "Failed", "Failed", "ManagedInstance"), 25.0),
            (key(E1, "Success", "Success", "ManagedInstance"), 50.0),
        ]
        .into_iter()
        .collect()
    );

    // A pinned execution that SSM no longer has: its series go, the association stays with
    // a failed poll, and the exporter never switches to another run on its own.
    assert!(rig.sim.delete_execution(A, E1));
    let after = rig.cycle().await;
    assert_eq!(after.targets(A).len(), 0);
    assert_eq!(
        after.associations_in("ssm_association_execution_info"),
        Vec::<String>::new()
    );
    assert_eq!(after.associations_in("ssm_association_info"), [A]);
    assert_eq!(
        after.get("ssm_association_poll_success", &[("association_id", A)]),
        Some(0.0)
    );
    rig.stop().await;
}

#[tokio::test]
async fn filters_narrow_the_counted_targets() {
    let sim = Sim::new(7);
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    let mut targets = fleet("i-01111111111a", 120, &["Success", "Failed", "TimedOut"]);
    for t in targets.iter_mut().step_by(4) {
        t.resource_type = "AWS::EC2::Instance".to_owned();
    }
    sim.insert_execution(A, E1, 1_700_000_000.0, targets);
    let yaml = format!(
        "associations:\n  - association_id: {A}\n    filters:\n      - {{ key: Status, value: Failed }}\n      - {{ key: ResourceType, value: ManagedInstance }}\n"
    );
    let rig = Rig::start(sim, &yaml).await;
    let metrics = rig.cycle().await;
    let want = expected_targets(&rig.sim, A, E1, |t| {
        t.status == "Failed" && t.resource_type == "ManagedInstance"
    });
    assert_eq!(want.values().sum::<f64>(), 30.0);
    assert_eq!(metrics.targets(A), want);
    rig.stop().await;
}

#[tokio::test]
async fn discovery_narrows_by_name_prefix_and_document() {
    let sim = Sim::new(8);
    sim.insert_association(A, Some("patch-linux"), "AWS-RunPatchBaseline");
    sim.insert_association(B, Some("patch-inventory"), "AWS-GatherSoftwareInventory");
    sim.insert_association(C, Some("baseline-patch"), "AWS-RunPatchBaseline");
    // More associations than one ListAssociations page holds.
    for i in 0..60 {
        sim.create_association(Some(&format!("patch-{i:02}")), "AWS-RunPatchBaseline");
    }
    sim.insert_execution(
        A,
        E1,
        1_700_000_000.0,
        fleet("i-02222222222a", 2, &["Success"]),
    );
    // ListAssociations is documented to end with an empty token rather than none.
    sim.set_faults(Faults {
        blank_final_token: true,
        ..Faults::default()
    });
    let yaml = "discovery:\n  name_prefix: patch-\n  document_name: AWS-RunPatchBaseline\n";
    let rig = Rig::start(sim, yaml).await;
    let metrics = rig.cycle().await;
    let watched = metrics.associations_in("ssm_association_poll_success");
    assert_eq!(watched.len(), 61);
    assert!(watched.contains(&A.to_owned()));
    assert!(!watched.contains(&B.to_owned()) && !watched.contains(&C.to_owned()));
    assert_eq!(
        metrics.targets(A),
        [(key(E1, "Success", "Success", "ManagedInstance"), 2.0)]
            .into_iter()
            .collect()
    );
    let lists = rig
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.operation == "ListAssociations")
        .count();
    assert_eq!(lists, 2, "62 matching associations are two pages");
    rig.stop().await;
}

#[tokio::test]
async fn empty_pages_that_carry_a_token_are_followed() {
    let sim = Sim::new(9);
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    sim.insert_execution(
        A,
        E1,
        1_700_000_000.0,
        fleet("i-03333333333a", 101, &["Success", "Failed"]),
    );
    sim.set_faults(Faults {
        empty_pages: true,
        ..Faults::default()
    });
    let rig = Rig::launch(sim, "").await;
    rig.exporter.wait_for_cycle(1).await.expect("first cycle");
    let metrics = rig.scrape().await;
    assert_eq!(
        metrics.targets(A),
        expected_targets(&rig.sim, A, E1, |_| true)
    );
    assert_eq!(metrics.targets(A).values().sum::<f64>(), 101.0);
    let target_calls = rig
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.operation == "DescribeAssociationExecutionTargets")
        .count();
    assert_eq!(target_calls, 6, "three empty pages and three full ones");
    rig.stop().await;
}

#[tokio::test]
async fn an_association_that_never_ran_has_info_but_no_targets() {
    let sim = Sim::new(10);
    sim.insert_association(A, Some("fresh"), "AWS-RunPatchBaseline");
    let rig = Rig::start(sim, &explicit(&[A])).await;
    let metrics = rig.cycle().await;
    assert_eq!(metrics.targets(A).len(), 0);
    assert_eq!(metrics.associations_in("ssm_association_info"), [A]);
    assert_eq!(
        metrics.associations_in("ssm_association_execution_info"),
        Vec::<String>::new()
    );
    assert_eq!(
        metrics.get("ssm_association_poll_success", &[("association_id", A)]),
        Some(1.0)
    );
    rig.stop().await;
}

#[tokio::test]
async fn http_endpoints() {
    let sim = Sim::new(11);
    let rig = Rig::start(sim, "").await;
    let addr = rig.exporter.local_addr();

    let landing = get(addr, "/").await;
    assert_eq!(landing.status, 200);
    assert!(
        landing.body.contains("<a href=\"/metrics\">Metrics</a>"),
        "{}",
        landing.body
    );
    assert_eq!(get(addr, "/-/healthy").await.status, 200);
    assert_eq!(get(addr, "/-/ready").await.status, 200);
    assert_eq!(get(addr, "/metricsx").await.status, 404);
    assert_eq!(get(addr, "/favicon.ico").await.status, 404);
    let post = request(addr, "POST", "/metrics").await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let head = request(addr, "HEAD", "/metrics").await;
    assert_eq!(head.status, 200);
    assert_eq!(head.body, "");
    rig.stop().await;
}

#[tokio::test]
async fn not_ready_until_the_first_cycle_finishes() {
    let sim = Sim::new(12);
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    // The first cycle cannot finish while the test runs: every answer takes an hour, and the
    // client waits for it.
    sim.set_faults(Faults {
        latency: std::time::Duration::from_secs(3600),
        ..Faults::default()
    });
    let rig = Rig::launch_with(sim, "", |options| ClientOptions {
        operation_timeout: std::time::Duration::from_secs(7200),
        ..options
    })
    .await;
    let addr = rig.exporter.local_addr();
    let ready = get(addr, "/-/ready").await;
    assert_eq!(ready.status, 503);
    let metrics = rig.scrape().await;
    assert_eq!(
        metrics.get(
            "ssm_association_exporter_cycles_total",
            &[("outcome", "success")]
        ),
        Some(0.0)
    );
    assert_eq!(
        metrics.associations_in("ssm_association_poll_success"),
        Vec::<String>::new()
    );
    // Shutting down abandons the cycle instead of waiting an hour for it.
    rig.exporter.shutdown().await;
}

#[tokio::test]
async fn two_exporters_in_one_process_keep_their_own_metrics() {
    let one = Sim::new(13);
    one.insert_association(A, None, "AWS-RunPatchBaseline");
    let two = Sim::new(14);
    two.insert_association(B, None, "AWS-RunPatchBaseline");
    let (first, second) = tokio::join!(Rig::start(one, ""), Rig::start(two, ""));
    let (m1, m2) = tokio::join!(first.cycle(), second.cycle());
    assert_eq!(m1.associations_in("ssm_association_info"), [A]);
    assert_eq!(m2.associations_in("ssm_association_info"), [B]);
    for m in [&m1, &m2] {
        assert_eq!(
            m.get(
                "ssm_association_exporter_api_requests_total",
                &[("operation", "ListAssociations"), ("outcome", "success")]
            ),
            Some(2.0),
            "one at start, one asked for"
        );
    }
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn failed_targets_are_named_up_to_the_limit() {
    let sim = Sim::new(16);
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    let mut targets = fleet("i-0abcabcabcab", 9, &["Failed", "Success", "TimedOut"]);
    targets[2] = targets[2]
        .clone()
        .detailed("DeliveryTimedOut")
        .resource_type("AWS::EC2::Instance");
    sim.insert_execution(A, E1, 1_700_000_000.0, targets);
    let rig = Rig::start(sim, "failed_targets:\n  enabled: true\n  limit: 4\n").await;
    let metrics = rig.scrape().await;
    let mut named: Vec<(String, String, String)> = metrics
        .family("ssm_association_failed_target")
        .into_iter()
        .map(|(l, v)| {
            assert_eq!(v, 1.0);
            assert_eq!(l["association_id"].as_str(), A);
            assert_eq!(l.get("execution_id"), None);
            (
                l["resource_id"].clone(),
                l["resource_type"].clone(),
                l["detailed_status"].clone(),
            )
        })
        .collect();
    named.sort();
    let row = |id: &str, t: &str, d: &str| (id.to_owned(), t.to_owned(), d.to_owned());
    assert_eq!(
        named,
        [
            row("i-0abcabcabcab00000", "ManagedInstance", "Failed"),
            row(
                "i-0abcabcabcab00002",
                "AWS::EC2::Instance",
                "DeliveryTimedOut"
            ),
            row("i-0abcabcabcab00003", "ManagedInstance", "Failed"),
            row("i-0abcabcabcab00005", "ManagedInstance", "TimedOut"),
        ]
    );
    assert_eq!(
        metrics.get(
            "ssm_association_failed_targets_omitted",
            &[("association_id", A)]
        ),
        Some(2.0),
        "six failed or timed out, four named"
    );
    rig.stop().await;

    // Off by default: counts only.
    let sim = Sim::new(17);
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    sim.insert_execution(
        A,
        E1,
        1_700_000_000.0,
        fleet("i-0abcabcabcab", 3, &["Failed"]),
    );
    let rig = Rig::start(sim, "").await;
    let metrics = rig.scrape().await;
    assert_eq!(metrics.family("ssm_association_failed_target").len(), 0);
    assert_eq!(
        metrics
            .family("ssm_association_failed_targets_omitted")
            .len(),
        0
    );
    rig.stop().await;
}
