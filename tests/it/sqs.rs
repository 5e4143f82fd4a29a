//! The aws-sdk-sqs boundary against the simulator's SQS side: long polls, deletes, the
//! visibility timeout, what each error becomes as an [`SqsError`], and the State Manager events
//! the simulated SSM puts in a subscribed queue.

use std::time::{Duration, Instant};

use ssm_association_exporter::events::{self, EventError};
use ssm_association_exporter::sim::{DEFAULT_ACCOUNT, DEFAULT_REGION, Fault, Sim, SimTarget};
use ssm_association_exporter::sqs::aws::AwsQueue;
use ssm_association_exporter::sqs::{
    DeleteFailure, DeleteOutcome, MAX_RECEIVE_BYTES, Message, Queue, SqsError,
};

use crate::harness::client_options;

const A: &str = "fa94c678-85c6-4d40-926b-7c791a0b1c2d";
const ACCOUNT: &str = "111111111111";

/// Long enough that a test that waited it out would fail its bounded timeout.
const LONG: Duration = Duration::from_secs(20);
const BOUND: Duration = Duration::from_secs(10);

async fn queue(sim: &Sim) -> (AwsQueue, ssm_association_exporter::sim::SimServer) {
    let server = sim.start().await.expect("simulator");
    let queue = AwsQueue::connect(
        &client_options(server.endpoint_url()),
        Some(server.endpoint_url()),
    )
    .await
    .expect("client");
    (queue, server)
}

fn receives(sim: &Sim) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.operation == "ReceiveMessage")
        .count()
}

/// Waits, without sleeping, until the simulator has seen `n` ReceiveMessage calls.
async fn until_receives(sim: &Sim, n: usize) {
    tokio::time::timeout(BOUND, async {
        while receives(sim) < n {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the receive reaches the simulator");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_answers_when_a_message_arrives() {
    let sim = Sim::new(51);
    let (queue, _server) = queue(&sim).await;
    let url = sim.create_queue(ACCOUNT, "events");
    let poll = tokio::spawn({
        let (queue, url) = (queue.clone(), url.clone());
        async move { queue.receive(&url, LONG, 10).await }
    });
    until_receives(&sim, 1).await;
    let started = Instant::now();
    let id = sim.send_raw(&url, "hello").expect("queue exists");
    let messages = tokio::time::timeout(BOUND, poll)
        .await
        .expect("answered before the wait ends")
        .expect("task")
        .expect("receive");
    assert!(started.elapsed() < BOUND);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].message_id, id);
    assert_eq!(messages[0].body, "hello");
    assert_eq!(receives(&sim), 1);
    let recorded = &sim.requests()[0];
    assert_eq!(recorded.queue_url.as_deref(), Some(url.as_str()));
    assert_eq!(recorded.max_results, Some(10));
    assert_eq!(recorded.status, 200);
}

#[tokio::test]
async fn a_long_poll_outlasts_the_client_timeout() {
    let sim = Sim::new(52);
    let server = sim.start().await.expect("simulator");
    let mut options = client_options(server.endpoint_url());
    options.operation_timeout = Duration::from_millis(300);
    let queue = AwsQueue::connect(&options, Some(server.endpoint_url()))
        .await
        .expect("client");
    let url = sim.create_queue(ACCOUNT, "quiet");
    let messages = queue
        .receive(&url, Duration::from_secs(1), 10)
        .await
        .expect("an empty poll is not a timeout");
    assert_eq!(messages, []);
}

#[tokio::test]
async fn delete_removes_and_what_is_not_deleted_comes_back() {
    let sim = Sim::new(53);
    let (queue, _server) = queue(&sim).await;
    let url = sim.create_queue(ACCOUNT, "events");
    sim.set_visibility_timeout(&url, Duration::from_millis(200))
        .expect("queue exists");
    let first = sim.send_raw(&url, "one").expect("queue exists");
    let second = sim.send_raw(&url, "two").expect("queue exists");

    let got = queue
        .receive(&url, Duration::ZERO, 10)
        .await
        .expect("receive");
    let ids: Vec<&str> = got.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str()]);
    let outcome = queue
        .delete(&url, &[("0".to_owned(), got[0].receipt_handle.clone())])
        .await
        .expect("delete");
    assert_eq!(
        outcome,
        DeleteOutcome {
            deleted: vec!["0".to_owned()],
            failed: Vec::new(),
        }
    );
    assert_eq!(sim.queue_depth(&url), Some(1));
    // Hidden for the visibility timeout: nothing now, the second again after it.
    let hidden = queue
        .receive(&url, Duration::ZERO, 10)
        .await
        .expect("receive");
    assert_eq!(hidden, []);
    let again = tokio::time::timeout(BOUND, queue.receive(&url, LONG, 10))
        .await
        .expect("back after the visibility timeout")
        .expect("receive");
    assert_eq!(again.len(), 1);
    let Message {
        message_id,
        receipt_handle,
        body,
    } = &again[0];
    assert_eq!((message_id, body.as_str()), (&second, "two"));
    assert_ne!(receipt_handle, &got[1].receipt_handle);

    // The first delivery's handle no longer deletes (and SQS says it did); a handle SQS never
    // issued fails its entry alone; the latest deletes.
    let outcome = queue
        .delete(
            &url,
            &[
                ("stale".to_owned(), got[1].receipt_handle.clone()),
                ("bogus".to_owned(), "not-a-handle".to_owned()),
                ("latest".to_owned(), receipt_handle.clone()),
            ],
        )
        .await
        .expect("delete");
    assert_eq!(
        outcome,
        DeleteOutcome {
            deleted: vec!["stale".to_owned(), "latest".to_owned()],
            failed: vec![DeleteFailure {
                id: "bogus".to_owned(),
                code: "ReceiptHandleIsInvalid".to_owned(),
                message: "The input receipt handle \"not-a-handle\" is not a valid receipt handle."
                    .to_owned(),
                sender_fault: true,
            }],
        }
    );
    assert_eq!(sim.queue_depth(&url), Some(0));
}

#[tokio::test]
async fn errors_keep_their_kind() {
    let sim = Sim::new(54);
    let (queue, server) = queue(&sim).await;
    let missing = format!("{}/{ACCOUNT}/missing", server.endpoint_url());
    let err = queue
        .receive(&missing, Duration::ZERO, 10)
        .await
        .expect_err("no such queue");
    assert_eq!(
        (err.kind(), &err),
        ("not_found", &SqsError::QueueDoesNotExist)
    );
    let err = queue
        .delete(&missing, &[("0".to_owned(), "AQEB0".to_owned())])
        .await
        .expect_err("no such queue");
    assert_eq!(err, SqsError::QueueDoesNotExist);

    let url = sim.create_queue(ACCOUNT, "events");
    sim.clear_requests();
    sim.fail_queue(&url, Some(Fault::Throttle));
    let err = queue
        .receive(&url, Duration::ZERO, 10)
        .await
        .expect_err("throttled");
    assert_eq!(
        (err.kind(), &err),
        (
            "throttled",
            &SqsError::Throttled {
                message: "Rate exceeded".to_owned()
            }
        )
    );
    // The SDK retried it, as it does any throttling: both attempts reached the queue.
    let attempts: Vec<Option<u32>> = sim.requests().iter().map(|r| r.attempt).collect();
    assert_eq!(attempts, [Some(1), Some(2)]);

    sim.fail_queue(&url, Some(Fault::AccessDenied));
    let err = queue
        .delete(&url, &[("0".to_owned(), "AQEB0".to_owned())])
        .await
        .expect_err("denied");
    assert_eq!(
        (err.kind(), &err),
        (
            "access_denied",
            &SqsError::AccessDenied {
                code: "AccessDenied".to_owned(),
                message: format!(
                    "User is not authorized to perform: sqs:DeleteMessageBatch on resource: {url}"
                ),
            }
        )
    );

    sim.fail_queue(&url, Some(Fault::Garbage));
    let err = queue
        .receive(&url, Duration::ZERO, 10)
        .await
        .expect_err("garbage");
    assert_eq!(err.kind(), "invalid_response");

    sim.fail_queue(&url, None);
    assert_eq!(
        queue.receive(&url, Duration::ZERO, 10).await,
        Ok(Vec::new())
    );
}

/// Receives until `n` messages came, each poll bounded.
async fn receive_n(queue: &AwsQueue, url: &str, n: usize) -> Vec<Message> {
    let mut all = Vec::new();
    while all.len() < n {
        let got = tokio::time::timeout(BOUND, queue.receive(url, LONG, 10))
            .await
            .expect("events arrive")
            .expect("receive");
        all.extend(got);
    }
    all
}

#[tokio::test]
async fn a_run_puts_both_events_in_a_subscribed_queue() {
    let sim = Sim::new(55);
    let (queue, _server) = queue(&sim).await;
    let url = sim.create_queue(ACCOUNT, "events");
    let elsewhere = sim.create_queue(ACCOUNT, "other-region");
    sim.subscribe(&url, DEFAULT_ACCOUNT, DEFAULT_REGION)
        .expect("queue exists");
    sim.subscribe(&elsewhere, DEFAULT_ACCOUNT, "eu-west-1")
        .expect("queue exists");
    sim.insert_association(A, Some("patch"), "AWS-RunPatchBaseline");

    // A start: the association's state, then each target's.
    let run = sim
        .start_execution(
            A,
            vec![
                SimTarget::instance("i-1", "InProgress"),
                SimTarget::instance("i-2", "InProgress"),
            ],
        )
        .expect("association exists");
    let started = receive_n(&queue, &url, 3).await;
    // The end: each target's change, and the association's when the last one finishes.
    sim.set_target(A, &run, "i-1", "Success", "Success")
        .expect("run exists");
    sim.set_target(A, &run, "i-2", "Failed", "Failed")
        .expect("run exists");
    let finished = receive_n(&queue, &url, 3).await;

    let kinds = |messages: &[Message]| -> Vec<(String, String, String, String)> {
        messages
            .iter()
            .map(|m| {
                let e = events::parse(&m.body).expect("an event");
                let body: serde_json::Value = serde_json::from_str(&m.body).expect("JSON");
                let kind = body["detail-type"].as_str().unwrap_or_default().to_owned();
                (kind, e.association_id, e.account, e.region)
            })
            .collect()
    };
    let association = |kind: &str| {
        (
            kind.to_owned(),
            A.to_owned(),
            DEFAULT_ACCOUNT.to_owned(),
            DEFAULT_REGION.to_owned(),
        )
    };
    assert_eq!(
        kinds(&started),
        [
            association("EC2 State Manager Association State Change"),
            association("EC2 State Manager Instance Association State Change"),
            association("EC2 State Manager Instance Association State Change"),
        ]
    );
    assert_eq!(
        kinds(&finished),
        [
            association("EC2 State Manager Instance Association State Change"),
            association("EC2 State Manager Instance Association State Change"),
            association("EC2 State Manager Association State Change"),
        ]
    );
    let last: serde_json::Value = serde_json::from_str(&finished[2].body).expect("JSON");
    assert_eq!(last["detail"]["status"], "Failed");
    assert_eq!(last["source"], "aws.ssm");
    assert_eq!(last["version"], "0");
    assert_eq!(
        last["resources"],
        serde_json::json!(["arn:aws:ssm:us-east-2::document/AWS-RunPatchBaseline"])
    );
    let instance: serde_json::Value = serde_json::from_str(&finished[1].body).expect("JSON");
    assert_eq!(instance["detail"]["instance-id"], "i-2");
    assert_eq!(instance["detail"]["status"], "Failed");
    // Unchanged targets say nothing; another region's queue heard nothing.
    sim.set_target(A, &run, "i-1", "Success", "Success")
        .expect("run exists");
    assert_eq!(sim.queue_depth(&url), Some(6));
    assert_eq!(sim.queue_depth(&elsewhere), Some(0));
}

#[tokio::test]
async fn a_raw_body_comes_back_as_sent() {
    let sim = Sim::new(56);
    let (queue, _server) = queue(&sim).await;
    let url = sim.create_queue(ACCOUNT, "events");
    sim.send_raw(&url, "{\"detail-type\":")
        .expect("queue exists");
    let got = queue
        .receive(&url, Duration::ZERO, 1)
        .await
        .expect("receive");
    assert_eq!(got.len(), 1);
    assert_eq!(
        events::parse(&got[0].body),
        Err(EventError::NotJson(
            "EOF while parsing a value at line 1 column 15".to_owned()
        ))
    );
}

/// Ten messages of 500 KB make an answer over the limit: refused by its Content-Length before
/// its body is read, and then read one message at a time.
#[tokio::test(flavor = "multi_thread")]
async fn an_answer_too_large_is_refused_unread() {
    let sim = Sim::new(56);
    let (queue, _server) = queue(&sim).await;
    let url = sim.create_queue(ACCOUNT, "junk");
    // Refused messages are visible again at once, for the second receive.
    sim.set_visibility_timeout(&url, Duration::ZERO)
        .expect("queue exists");
    let body = "x".repeat(500_000);
    for _ in 0..10 {
        sim.send_raw(&url, &body).expect("queue exists");
    }
    let err = queue
        .receive(&url, Duration::ZERO, 10)
        .await
        .expect_err("too large");
    assert_eq!(err.kind(), "too_large");
    assert!(
        matches!(err, SqsError::TooLarge { bytes, limit } if limit == MAX_RECEIVE_BYTES && bytes > 5_000_000),
        "{err:?}"
    );
    let one = queue
        .receive(&url, Duration::ZERO, 1)
        .await
        .expect("one fits");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].body, body);
}

/// A queue that never answers ends a receive (and a delete) within the long poll's wait and
/// a margin, however long `api.timeout` is.
#[tokio::test(flavor = "multi_thread")]
async fn a_hung_queue_ends_calls_within_their_margin() {
    let sim = Sim::new(57);
    let server = sim.start().await.expect("simulator");
    let mut options = client_options(server.endpoint_url());
    options.operation_timeout = Duration::from_secs(120);
    let queue = AwsQueue::connect(&options, Some(server.endpoint_url()))
        .await
        .expect("client");
    let url = sim.create_queue(ACCOUNT, "hung");
    sim.fail_queue(&url, Some(Fault::Hang));
    let err = tokio::time::timeout(BOUND, queue.receive(&url, Duration::ZERO, 10))
        .await
        .expect("ended by its own timeout")
        .expect_err("hung");
    assert_eq!(err.kind(), "timeout");
    let err = tokio::time::timeout(
        BOUND,
        queue.delete(&url, &[("0".to_owned(), "AQEB0".to_owned())]),
    )
    .await
    .expect("ended by its own timeout")
    .expect_err("hung");
    assert_eq!(err.kind(), "timeout");
}
