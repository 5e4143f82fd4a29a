//! State Manager's events through the simulated SQS queue: a run reaches `/metrics` after its
//! event, between cycles, with the calls a poll of that association makes and no listing;
//! events coalesce; events that change nothing cost nothing; a failing queue or SSM loses
//! nothing.

use std::time::Duration;

use ssm_association_exporter::app::{Exporter, Pair, Setup};
use ssm_association_exporter::config::{self, Place, Shard};
use ssm_association_exporter::events::ASSOCIATION_STATE_CHANGE;
use ssm_association_exporter::server::ServerOptions;
use ssm_association_exporter::sim::{DEFAULT_ACCOUNT, DEFAULT_REGION, Fault, Faults, Sim};
use ssm_association_exporter::sqs::aws::AwsQueue;
use ssm_association_exporter::ssm::aws::AwsSsm;
use tokio::net::TcpListener;

use crate::harness::{Metrics, Rig, client_options, expected_targets, fleet};

const A: &str = "fa94c678-85c6-4d40-926b-7c791a0b1c2d";
const B: &str = "0b7e1a52-3c0d-4c1e-9f43-5a1d2c3b4e5f";
/// Only a bound for a test that misbehaves; every wait ends on an event before it.
const PATIENCE: Duration = Duration::from_secs(30);

/// The SSM operations the simulator saw since the last call, by name; the queue's own calls
/// are left out.
fn ssm_calls(sim: &Sim) -> Vec<(String, usize)> {
    let mut counted: std::collections::BTreeMap<String, usize> = Default::default();
    for r in sim.requests() {
        if r.queue_url.is_none() {
            *counted.entry(r.operation).or_default() += 1;
        }
    }
    sim.clear_requests();
    counted.into_iter().collect()
}

fn expect(pairs: &[(&str, usize)]) -> Vec<(String, usize)> {
    pairs.iter().map(|(op, n)| ((*op).to_owned(), *n)).collect()
}

fn received(metrics: &Metrics, outcome: &str) -> f64 {
    metrics
        .get(
            "ssm_association_exporter_events_received_total",
            &[("outcome", outcome)],
        )
        .unwrap_or(-1.0)
}

fn received_in_all(metrics: &Metrics) -> f64 {
    ["applied", "coalesced", "ignored", "invalid"]
        .iter()
        .map(|o| received(metrics, o))
        .sum()
}

/// A queue the simulated SSM announces its changes on, subscribed from now on (what the
/// fixture set up before has no events).
fn subscribed_queue(sim: &Sim) -> String {
    let url = sim.create_queue(DEFAULT_ACCOUNT, "events");
    sim.subscribe(&url, DEFAULT_ACCOUNT, DEFAULT_REGION)
        .expect("queue exists");
    url
}

/// An exporter that polls only when asked (hourly) and reads the queue at `url`; its first
/// cycle is done and the request log cleared.
async fn with_events(rig: Rig) -> Rig {
    let mut rig = rig;
    let endpoint = rig.server.endpoint_url();
    let queue = AwsQueue::connect(&client_options(endpoint.clone()), Some(endpoint))
        .await
        .expect("queue client");
    rig.exporter.listen(queue).expect("events are configured");
    rig
}

fn events_yaml(url: &str) -> String {
    format!("events:\n  queue_url: {url}\n")
}

/// Scrapes until `done` holds; the bound only ends a test that misbehaves.
async fn until(rig: &Rig, done: impl Fn(&Metrics) -> bool) -> Metrics {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let metrics = rig.scrape().await;
            if done(&metrics) {
                return metrics;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the exporter got there")
}

/// An event as EventBridge delivers it, for the association `id` of `account`.
fn event(account: &str, id: &str) -> String {
    serde_json::json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": ASSOCIATION_STATE_CHANGE,
        "source": "aws.ssm",
        "account": account,
        "time": "2026-11-30T12:00:00Z",
        "region": DEFAULT_REGION,
        "resources": [],
        "detail": {"association-id": id, "status": "Success"}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_run_is_served_after_its_event_with_one_associations_calls() {
    let sim = Sim::new(91);
    sim.insert_association(A, Some("patch"), "AWS-RunPatchBaseline");
    sim.start_execution(A, fleet("i-0aaaaaaaaaa1", 60, &["Success"]))
        .expect("association exists");
    let url = subscribed_queue(&sim);
    let rig = with_events(Rig::start(sim, &events_yaml(&url)).await).await;

    let run = rig
        .sim
        .start_execution(A, fleet("i-0aaaaaaaaaa2", 70, &["Failed", "Success"]))
        .expect("association exists");
    rig.exporter
        .wait_for_targeted(1)
        .await
        .expect("a targeted poll");
    let after = rig.scrape().await;
    assert_eq!(
        after.targets(A),
        expected_targets(&rig.sim, A, &run, |_| true)
    );
    // No listing: the association described, its newest run, 2 pages of 70 targets.
    assert_eq!(
        ssm_calls(&rig.sim),
        expect(&[
            ("DescribeAssociation", 1),
            ("DescribeAssociationExecutionTargets", 2),
            ("DescribeAssociationExecutions", 1),
        ])
    );
    assert_eq!(
        after.get(
            "ssm_association_exporter_cycles_total",
            &[("outcome", "success")]
        ),
        Some(1.0),
        "no cycle ran: the hourly one is far off"
    );
    assert_eq!(
        after.get("ssm_association_exporter_events_queue_up", &[]),
        Some(1.0)
    );
    assert_eq!(
        after.get("ssm_association_exporter_targeted_polls_total", &[]),
        Some(1.0)
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_instance_events_of_one_run_cost_at_most_two_targeted_polls() {
    let sim = Sim::new(92);
    sim.insert_association(A, Some("patch"), "AWS-RunPatchBaseline");
    let url = subscribed_queue(&sim);
    let rig = with_events(Rig::start(sim, &events_yaml(&url)).await).await;

    // One association event and 1,000 instance events, all at once.
    let run = rig
        .sim
        .start_execution(A, fleet("i-0bbbbbbbbbb1", 1000, &["Success", "TimedOut"]))
        .expect("association exists");
    let metrics = until(&rig, |m| received_in_all(m) >= 1001.0).await;
    let applied = received(&metrics, "applied");
    assert_eq!(received_in_all(&metrics), 1001.0);
    assert!((1.0..=2.0).contains(&applied), "{applied} polls asked for");
    assert_eq!(received(&metrics, "coalesced"), 1001.0 - applied);
    rig.exporter
        .wait_for_targeted(applied as u64)
        .await
        .expect("the targeted polls");
    let after = rig.scrape().await;
    assert_eq!(
        after.targets(A),
        expected_targets(&rig.sim, A, &run, |_| true)
    );
    assert_eq!(rig.sim.queue_depth(&url), Some(0), "every event deleted");
    rig.stop().await;
}

/// Unreadable, foreign, unwatched and repeated events: counted, deleted, and the only SSM
/// call is the one poll the watched association's event asks for.
#[tokio::test(flavor = "multi_thread")]
async fn events_that_change_nothing_cost_nothing() {
    let sim = Sim::new(93);
    sim.insert_association(A, Some("watched"), "AWS-RunPatchBaseline");
    sim.insert_association(B, Some("not watched"), "AWS-RunPatchBaseline");
    sim.start_execution(A, fleet("i-0ccccccccccc", 5, &["Success"]))
        .expect("association exists");
    let url = subscribed_queue(&sim);
    let yaml = format!(
        "associations:\n  - association_id: {A}\n{}",
        events_yaml(&url)
    );
    let rig = with_events(Rig::start(sim, &yaml).await).await;

    for body in [
        "not json".to_owned(),
        r#"{"source": "aws.ec2"}"#.to_owned(),
        event("999999999999", A),
        event(DEFAULT_ACCOUNT, B),
        event(DEFAULT_ACCOUNT, A),
        event(DEFAULT_ACCOUNT, A),
    ] {
        rig.sim.send_raw(&url, &body).expect("queue exists");
    }
    rig.exporter
        .wait_for_targeted(1)
        .await
        .expect("one targeted poll");
    let metrics = until(&rig, |m| received_in_all(m) >= 6.0).await;
    assert_eq!(received(&metrics, "invalid"), 2.0);
    // Without accounts the one pair takes its region's events whatever their account says:
    // the foreign-account event for A counts as A's.
    assert_eq!(received(&metrics, "ignored"), 1.0);
    assert_eq!(
        received(&metrics, "applied") + received(&metrics, "coalesced"),
        3.0
    );
    assert_eq!(received(&metrics, "applied"), 1.0);
    // A's run did not change: described, it is settled, and nothing more is read.
    assert_eq!(ssm_calls(&rig.sim), expect(&[("DescribeAssociation", 1)]));
    assert_eq!(rig.sim.queue_depth(&url), Some(0), "every message deleted");
    rig.stop().await;
}

/// With accounts, an event for an account and region no pair polls is ignored.
#[tokio::test(flavor = "multi_thread")]
async fn events_of_an_account_no_pair_polls_are_ignored() {
    let sim = Sim::new(95);
    sim.insert_association(A, Some("watched"), "AWS-RunPatchBaseline");
    let url = subscribed_queue(&sim);
    let config = config::parse(&format!(
        "poll_interval: 1h\napi:\n  requests_per_second: 100000\n  burst: 1000\naccounts:\n  - account_id: \"{DEFAULT_ACCOUNT}\"\n    regions: [{DEFAULT_REGION}]\n{}",
        events_yaml(&url)
    ))
    .expect("valid");
    // One pair, placed as the accounts list says.
    let server = sim.start().await.expect("simulator");
    let ssm = AwsSsm::connect(&client_options(server.endpoint_url()))
        .await
        .expect("client");
    let place = Place {
        account_id: DEFAULT_ACCOUNT.into(),
        region: DEFAULT_REGION.into(),
    };
    let exporter = Exporter::start_pairs(
        vec![Pair {
            place: Some(place),
            ssm,
        }],
        &config,
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        ServerOptions::default(),
    )
    .expect("exporter starts");
    let rig = Rig {
        sim,
        server,
        exporter,
    };
    rig.exporter.wait_for_cycle(1).await.expect("first cycle");
    rig.sim.clear_requests();
    let rig = with_events(rig).await;
    rig.sim
        .send_raw(&url, &event("999999999999", A))
        .expect("queue exists");
    rig.sim
        .send_raw(&url, &event(DEFAULT_ACCOUNT, A))
        .expect("queue exists");
    rig.exporter
        .wait_for_targeted(1)
        .await
        .expect("a targeted poll");
    let metrics = until(&rig, |m| received_in_all(m) >= 2.0).await;
    assert_eq!(received(&metrics, "ignored"), 1.0);
    assert_eq!(received(&metrics, "applied"), 1.0);
    rig.stop().await;
}

/// The queue denied, then back: polling goes on meanwhile, the gauge says so, and events are
/// read again once it is back.
#[tokio::test(flavor = "multi_thread")]
async fn a_queue_that_fails_then_recovers() {
    let sim = Sim::new(94);
    sim.insert_association(A, Some("patch"), "AWS-RunPatchBaseline");
    let url = subscribed_queue(&sim);
    sim.fail_queue(&url, Some(Fault::AccessDenied));
    let rig = with_events(Rig::start(sim, &events_yaml(&url)).await).await;
    let down = until(&rig, |m| {
        m.get("ssm_association_exporter_events_queue_up", &[]) == Some(0.0)
    })
    .await;
    assert_eq!(
        down.get("ssm_association_poll_success", &[("association_id", A)]),
        Some(1.0)
    );
    // Polling goes on without the queue.
    let run = rig
        .sim
        .start_execution(A, fleet("i-0dddddddddd1", 3, &["Success"]))
        .expect("association exists");
    let cycled = rig.cycle().await;
    assert_eq!(
        cycled.targets(A),
        expected_targets(&rig.sim, A, &run, |_| true)
    );

    rig.sim.fail_queue(&url, None);
    let later = rig
        .sim
        .start_execution(A, fleet("i-0dddddddddd2", 4, &["Failed"]))
        .expect("association exists");
    rig.exporter
        .wait_for_targeted(1)
        .await
        .expect("a targeted poll once the queue is back");
    let after = rig.scrape().await;
    assert_eq!(
        after.get("ssm_association_exporter_events_queue_up", &[]),
        Some(1.0)
    );
    assert_eq!(
        after.targets(A),
        expected_targets(&rig.sim, A, &later, |_| true)
    );
    rig.stop().await;
}

/// SSM throttles every call while a burst of events arrives: the targeted poll fails and keeps
/// the last values, marked failed; the next cycle reads the truth.
#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_ssm_during_a_burst_of_events_loses_nothing() {
    let sim = Sim::new(96);
    let ids: Vec<String> = (0..10)
        .map(|i| {
            let id = sim.create_association(Some(&format!("t-{i}")), "AWS-RunPatchBaseline");
            sim.start_execution(&id, fleet(&format!("i-{i:02}eeeeeeeeeee"), 3, &["Success"]))
                .expect("association exists");
            id
        })
        .collect();
    let url = subscribed_queue(&sim);
    let rig = with_events(Rig::start(sim, &events_yaml(&url)).await).await;
    let before = rig.scrape().await;

    rig.sim.set_faults(Faults {
        throttle_rate: 1.0,
        ..Faults::default()
    });
    let runs: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            rig.sim
                .start_execution(id, fleet(&format!("i-{i:02}fffffffffff"), 4, &["Failed"]))
                .expect("association exists")
        })
        .collect();
    let during = until(&rig, |m| {
        ids.iter()
            .all(|id| m.get("ssm_association_poll_success", &[("association_id", id)]) == Some(0.0))
    })
    .await;
    for id in &ids {
        assert_eq!(during.targets(id), before.targets(id), "kept");
        assert_eq!(
            during.get("ssm_association_poll_success", &[("association_id", id)]),
            Some(0.0)
        );
    }
    rig.sim.set_faults(Faults::default());
    let after = rig.cycle().await;
    for (id, run) in ids.iter().zip(&runs) {
        assert_eq!(
            after.targets(id),
            expected_targets(&rig.sim, id, run, |_| true)
        );
    }
    rig.stop().await;
}

/// A replica ignores, at no cost, the events of associations another shard owns.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_for_another_shards_association_costs_nothing() {
    let sim = Sim::new(97);
    let mine = Shard::new(1, 2).expect("valid shard");
    let ids: Vec<String> = (0..8)
        .map(|i| sim.create_association(Some(&format!("s-{i}")), "AWS-RunPatchBaseline"))
        .collect();
    let theirs = ids
        .iter()
        .find(|id| !mine.owns(id))
        .expect("some association is the other shard's")
        .clone();
    let url = subscribed_queue(&sim);
    let config = config::parse(&format!(
        "poll_interval: 1h\napi:\n  requests_per_second: 100000\n  burst: 1000\n{}",
        events_yaml(&url)
    ))
    .expect("valid");
    let setup = Setup {
        config,
        shard: mine,
        file: None,
    };
    let rig = Rig::launch_config(sim, setup, |o| o, ServerOptions::default()).await;
    rig.exporter.wait_for_cycle(1).await.expect("first cycle");
    rig.sim.clear_requests();
    let rig = with_events(rig).await;
    rig.sim
        .send_raw(&url, &event(DEFAULT_ACCOUNT, &theirs))
        .expect("queue exists");
    let metrics = until(&rig, |m| received_in_all(m) >= 1.0).await;
    assert_eq!(received(&metrics, "ignored"), 1.0);
    assert_eq!(ssm_calls(&rig.sim), expect(&[]));
    rig.stop().await;
}

/// Two messages with one MessageId in a receive: both are deleted (the batch's entry IDs are
/// the exporter's own), instead of coming back after every visibility timeout.
#[tokio::test(flavor = "multi_thread")]
async fn messages_that_share_a_message_id_are_deleted() {
    let sim = Sim::new(97);
    sim.insert_association(A, Some("patch"), "AWS-RunPatchBaseline");
    let url = subscribed_queue(&sim);
    let rig = with_events(Rig::start(sim, &events_yaml(&url)).await).await;
    for body in ["not an event", "not one either"] {
        rig.sim
            .send_raw_as(&url, "a7d1a3c8-0000-4000-8000-000000000001", body)
            .expect("queue exists");
    }
    let metrics = until(&rig, |m| received(m, "invalid") >= 2.0).await;
    assert_eq!(received_in_all(&metrics), 2.0);
    // Deleted after they are counted; the bound only ends a test that misbehaves.
    tokio::time::timeout(PATIENCE, async {
        while rig.sim.queue_depth(&url) != Some(0) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("both messages deleted");
    rig.stop().await;
}

/// Events for two associations polled together count two targeted polls: the counter counts
/// associations polled, not batches.
#[tokio::test(flavor = "multi_thread")]
async fn targeted_polls_count_associations_not_batches() {
    let sim = Sim::new(98);
    sim.insert_association(A, Some("patch"), "AWS-RunPatchBaseline");
    sim.insert_association(B, Some("inventory"), "AWS-GatherSoftwareInventory");
    let url = subscribed_queue(&sim);
    let rig = with_events(Rig::start(sim, &events_yaml(&url)).await).await;
    for id in [A, B] {
        rig.sim
            .send_raw(&url, &event(DEFAULT_ACCOUNT, id))
            .expect("queue exists");
    }
    tokio::time::timeout(PATIENCE, rig.exporter.wait_for_targeted(2))
        .await
        .expect("both associations polled in time")
        .expect("the exporter runs");
    let metrics = rig.scrape().await;
    assert_eq!(received(&metrics, "applied"), 2.0);
    assert_eq!(
        metrics.get("ssm_association_exporter_targeted_polls_total", &[]),
        Some(2.0)
    );
    // Each described once, whether the two went in one batch or two.
    assert_eq!(
        ssm_calls(&rig.sim)
            .into_iter()
            .find(|(op, _)| op == "DescribeAssociation"),
        Some(("DescribeAssociation".to_owned(), 2))
    );
    rig.stop().await;
}

/// An event as EventBridge delivers it for association `id`, run from `document`.
fn event_of_document(id: &str, document: &str) -> String {
    let mut body: serde_json::Value =
        serde_json::from_str(&event(DEFAULT_ACCOUNT, id)).expect("an event is JSON");
    body["detail"]["document-name"] = document.into();
    body.to_string()
}

/// A UUID of its own for each `k`, lower case, as SSM writes them.
fn made_up_id(k: usize) -> String {
    format!("5eedf00d-0000-4000-8000-{k:012}")
}

/// Discovery narrowed to `patch` names: events for an association outside the prefix, and
/// for made-up IDs, cost no call of their own, only one listing of the pair, which also picks
/// up an association created since; a document the narrowing leaves out is ignored outright.
#[tokio::test(flavor = "multi_thread")]
async fn events_for_associations_the_listing_did_not_hold_cost_one_listing() {
    let sim = Sim::new(99);
    sim.insert_association(A, Some("patch-a"), "AWS-RunPatchBaseline");
    sim.insert_association(B, Some("inventory"), "AWS-RunPatchBaseline");
    let url = subscribed_queue(&sim);
    let yaml = format!(
        "discovery:\n  name_prefix: patch\n  document_name: AWS-RunPatchBaseline\n{}",
        events_yaml(&url)
    );
    let rig = with_events(Rig::start(sim, &yaml).await).await;
    assert_eq!(
        rig.scrape()
            .await
            .get("ssm_association_exporter_watched_associations", &[]),
        Some(1.0)
    );
    // Created after the first listing: only a listing finds it.
    let c = "c0ffee00-1111-4222-8333-444455556666";
    rig.sim
        .insert_association(c, Some("patch-c"), "AWS-RunPatchBaseline");
    for _ in 0..40 {
        rig.sim
            .send_raw(&url, &event(DEFAULT_ACCOUNT, B))
            .expect("queue exists");
    }
    for k in 0..100 {
        rig.sim
            .send_raw(&url, &event(DEFAULT_ACCOUNT, &made_up_id(k)))
            .expect("queue exists");
    }
    rig.sim
        .send_raw(&url, &event(DEFAULT_ACCOUNT, c))
        .expect("queue exists");
    for k in 100..110 {
        rig.sim
            .send_raw(
                &url,
                &event_of_document(&made_up_id(k), "AWS-GatherSoftwareInventory"),
            )
            .expect("queue exists");
    }
    let metrics = until(&rig, |m| {
        received_in_all(m) >= 151.0
            && m.get("ssm_association_exporter_watched_associations", &[]) == Some(2.0)
    })
    .await;
    assert_eq!(received(&metrics, "applied"), 1.0, "one listing asked for");
    assert_eq!(received(&metrics, "coalesced"), 140.0);
    assert_eq!(received(&metrics, "ignored"), 10.0, "another document");
    assert_eq!(
        metrics.associations_in("ssm_association_info"),
        vec![c.to_owned(), A.to_owned()]
    );
    assert_eq!(
        metrics.get("ssm_association_exporter_targeted_polls_total", &[]),
        Some(0.0)
    );
    // The listing, and the new association's first reading; nothing for B or the made-up IDs.
    let calls = ssm_calls(&rig.sim);
    assert_eq!(
        calls
            .iter()
            .filter(|(op, _)| op == "ListAssociations" || op == "DescribeAssociation")
            .cloned()
            .collect::<Vec<_>>(),
        expect(&[("ListAssociations", 1)]),
        "{calls:?}"
    );
    assert_eq!(rig.sim.queue_depth(&url), Some(0), "every event deleted");
    rig.stop().await;
}

/// With every SSM call failing, events for made-up IDs create nothing: no association is
/// added to what the exporter watches, serves or shows.
#[tokio::test(flavor = "multi_thread")]
async fn while_ssm_fails_events_create_no_associations() {
    let sim = Sim::new(100);
    sim.insert_association(A, Some("patch"), "AWS-RunPatchBaseline");
    let url = subscribed_queue(&sim);
    let rig = with_events(Rig::start(sim, &events_yaml(&url)).await).await;
    rig.sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    for k in 0..100 {
        rig.sim
            .send_raw(&url, &event(DEFAULT_ACCOUNT, &made_up_id(k)))
            .expect("queue exists");
    }
    // The listing they ask for fails.
    let metrics = until(&rig, |m| {
        received_in_all(m) >= 100.0
            && m.get(
                "ssm_association_exporter_cycles_total",
                &[("outcome", "failure")],
            ) == Some(1.0)
    })
    .await;
    assert_eq!(
        metrics.get("ssm_association_exporter_watched_associations", &[]),
        Some(1.0)
    );
    assert_eq!(
        metrics.associations_in("ssm_association_poll_success"),
        vec![A.to_owned()]
    );
    assert_eq!(received(&metrics, "applied"), 1.0);
    assert_eq!(received(&metrics, "coalesced"), 99.0);
    let status = crate::harness::get(rig.exporter.local_addr(), "/api/v1/status").await;
    assert!(
        !status.body.contains("5eedf00d"),
        "no made-up ID on the status page"
    );
    rig.stop().await;
}

/// Messages too large to read ten at a time (500 KB each: no EventBridge event is) are read
/// one at a time after the refused answer, counted invalid and deleted; the queue stays up.
#[tokio::test(flavor = "multi_thread")]
async fn messages_too_large_to_read_together_are_read_one_at_a_time() {
    let sim = Sim::new(101);
    sim.insert_association(A, Some("patch"), "AWS-RunPatchBaseline");
    let url = subscribed_queue(&sim);
    // What the refused answer held comes back a second later.
    sim.set_visibility_timeout(&url, Duration::from_secs(1))
        .expect("queue exists");
    // All twelve are on the queue before the first receive, so that it meets 6 MB at once
    // (sent after the start, a receive could take a few, small enough to read together).
    let body = "x".repeat(500_000);
    for _ in 0..12 {
        sim.send_raw(&url, &body).expect("queue exists");
    }
    let rig = with_events(Rig::start(sim, &events_yaml(&url)).await).await;
    let metrics = until(&rig, |m| received(m, "invalid") >= 12.0).await;
    tokio::time::timeout(PATIENCE, async {
        while rig.sim.queue_depth(&url) != Some(0) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("every message deleted");
    assert_eq!(
        metrics.get("ssm_association_exporter_events_queue_up", &[]),
        Some(1.0)
    );
    let asked: std::collections::BTreeSet<i64> = rig
        .sim
        .requests()
        .iter()
        .filter(|r| r.operation == "ReceiveMessage")
        .filter_map(|r| r.max_results)
        .collect();
    assert_eq!(
        asked,
        [1, 10].into_iter().collect(),
        "ten, then one at a time"
    );
    rig.stop().await;
}

/// Before the first receive ends, the queue's health is unknown, not down: no
/// `events_queue_up` series, and the status page's `queue_up` is null.
#[tokio::test(flavor = "multi_thread")]
async fn the_queue_is_not_down_before_it_was_ever_read() {
    let sim = Sim::new(102);
    sim.insert_association(A, Some("patch"), "AWS-RunPatchBaseline");
    let url = subscribed_queue(&sim);
    // The first receive hangs (until its own timeout, seconds away).
    sim.fail_queue(&url, Some(Fault::Hang));
    let rig = with_events(Rig::start(sim, &events_yaml(&url)).await).await;
    tokio::time::timeout(PATIENCE, async {
        while !rig
            .sim
            .requests()
            .iter()
            .any(|r| r.operation == "ReceiveMessage")
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the first receive reached the queue");
    let metrics = rig.scrape().await;
    assert_eq!(
        metrics.get("ssm_association_exporter_events_queue_up", &[]),
        None
    );
    let status = crate::harness::get(rig.exporter.local_addr(), "/api/v1/status").await;
    assert!(
        status.body.contains(r#""queue_up":null"#),
        "{}",
        status.body
    );
    rig.stop().await;
}
