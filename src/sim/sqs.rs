//! The SQS side of the simulator: ReceiveMessage (long polling, a visibility timeout),
//! DeleteMessageBatch and DeleteMessage over awsJson1.0 as `aws-sdk-sqs` speaks it, on the SSM
//! endpoint; and the State Manager events the simulated SSM puts into subscribed queues, in
//! EventBridge's envelope. A long poll never holds the state's lock while it waits.
//!
//! Errors carry both names SQS sends: the JSON `__type` and the `x-amzn-query-error` header
//! (`<query code>;Sender`), which the SDK prefers, so its typed errors (`QueueDoesNotExist` for
//! `AWS.SimpleQueueService.NonExistentQueue`) come out as against SQS. The exact `__type`
//! strings are inferred; the header codes are the ones the SDK matches on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::wire::{MAX_REQUEST_BYTES, Reset, add_request_id, parse_attempt};
use super::{Fault, Recorded, Sim, State};
use crate::http::{self, Body};

const JSON: &str = "application/x-amz-json-1.0";
/// SQS's default visibility timeout.
const VISIBILITY: Duration = Duration::from_secs(30);
/// Receipt handles start so; one that does not was never issued by SQS.
const RECEIPT_PREFIX: &str = "AQEB";

/// Every queue, its messages and subscriptions.
#[derive(Debug, Default)]
pub(super) struct Queues {
    /// By the path of their URL, `/{account}/{name}`: the host does not matter, as for SQS's
    /// legacy and current endpoints alike.
    by_path: BTreeMap<String, SimQueue>,
    /// Queues and the (account, region) whose State Manager events they get, as an
    /// EventBridge rule would deliver them.
    subscriptions: Vec<(String, String, String)>,
    failing: HashMap<String, Fault>,
}

#[derive(Debug)]
struct SimQueue {
    visibility: Duration,
    /// In the order sent; deleted ones are removed.
    messages: Vec<Stored>,
}

#[derive(Debug)]
struct Stored {
    id: String,
    body: String,
    /// The handle of the latest delivery; only it deletes the message.
    receipt: Option<String>,
    /// Received and not deleted: hidden until then.
    visible_at: Instant,
}

/// The path of a queue URL: what follows the host.
pub(super) fn queue_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/').map_or("", |i| &rest[i..])
}

impl Queues {
    pub(super) fn create(&mut self, path: String) {
        self.by_path.entry(path).or_insert_with(|| SimQueue {
            visibility: VISIBILITY,
            messages: Vec::new(),
        });
    }

    pub(super) fn set_visibility(&mut self, path: &str, visibility: Duration) -> Option<()> {
        self.by_path.get_mut(path)?.visibility = visibility;
        Some(())
    }

    pub(super) fn subscribe(&mut self, path: &str, account: &str, region: &str) -> Option<()> {
        self.by_path.get(path)?;
        self.subscriptions
            .push((path.to_owned(), account.to_owned(), region.to_owned()));
        Some(())
    }

    pub(super) fn fail(&mut self, path: &str, fault: Option<Fault>) {
        match fault {
            Some(f) => self.failing.insert(path.to_owned(), f),
            None => self.failing.remove(path),
        };
    }

    /// Messages not yet deleted, visible or not.
    pub(super) fn depth(&self, path: &str) -> Option<usize> {
        Some(self.by_path.get(path)?.messages.len())
    }

    pub(super) fn push(&mut self, path: &str, id: String, body: String) -> Option<()> {
        self.by_path.get_mut(path)?.messages.push(Stored {
            id,
            body,
            receipt: None,
            visible_at: Instant::now(),
        });
        Some(())
    }
}

// ---- events -----------------------------------------------------------------------------------

impl State {
    /// The account and region the simulated SSM is in: the expected caller's, or the defaults.
    fn place(&self) -> (String, String) {
        self.caller.clone().unwrap_or_else(|| {
            (
                super::DEFAULT_ACCOUNT.to_owned(),
                super::DEFAULT_REGION.to_owned(),
            )
        })
    }

    /// Whether any queue would get this place's events: if none, no event is even built,
    /// so that benchmarks with thousands of runs pay nothing for them.
    fn subscribed(&self) -> bool {
        let (account, region) = self.place();
        self.queues
            .subscriptions
            .iter()
            .any(|(_, a, r)| *a == account && *r == region)
    }

    /// Puts one event in EventBridge's envelope into every queue subscribed to this place.
    fn publish(&mut self, detail_type: &str, resources: Vec<String>, detail: Value) {
        let (account, region) = self.place();
        let paths: Vec<String> = self
            .queues
            .subscriptions
            .iter()
            .filter(|(_, a, r)| *a == account && *r == region)
            .map(|(path, _, _)| path.clone())
            .collect();
        if paths.is_empty() {
            return;
        }
        self.serial += 1;
        let event = json!({
            "version": "0",
            "id": super::uuid(0xe7e7_e7e7_0000_0000, self.serial),
            "detail-type": detail_type,
            "source": crate::events::SOURCE,
            "account": account,
            "time": crate::timestamp::format_time(super::now()),
            "region": region,
            "resources": resources,
            "detail": detail,
        })
        .to_string();
        for path in paths {
            let id = self.message_id();
            self.queues.push(&path, id, event.clone());
        }
    }

    pub(super) fn message_id(&mut self) -> String {
        self.serial += 1;
        super::uuid(0x5e55_a6e5_0000_0000, self.serial)
    }

    fn receipt_handle(&mut self) -> String {
        self.serial += 1;
        format!("{RECEIPT_PREFIX}{:016x}", self.serial)
    }

    /// `EC2 State Manager Association State Change`: a run of the association started or
    /// finished, or its status changed otherwise.
    pub(super) fn association_changed(&mut self, association_id: &str) {
        if !self.subscribed() {
            return;
        }
        let (account, region) = self.place();
        let Some(a) = self.association(association_id) else {
            return;
        };
        let (status, _) = a.overview_status();
        let counts: BTreeMap<&str, u32> = a
            .latest()
            .map(super::Execution::counts_by_status)
            .unwrap_or_default();
        let mut detail = json!({
            "association-id": a.id,
            "document-name": a.document_name,
            "association-version": a.version.to_string(),
            "document-version": a.document_version,
            "targets": r#"[{"key":"tag:PatchGroup","values":["fleet"]}]"#,
            "creation-date": crate::timestamp::format_time(a.created),
            "last-updated-date": crate::timestamp::format_time(a.created),
            "status": status,
            "association-status-aggregated-count": json!(counts).to_string(),
            "schedule-expression": "rate(30 minutes)",
            "association-cwe-version": "1.0",
        });
        if let Some(e) = a.latest() {
            detail["last-execution-date"] = json!(crate::timestamp::format_time(e.created));
            if status == "Success" {
                detail["last-successful-execution-date"] =
                    json!(crate::timestamp::format_time(e.created));
            }
        }
        let resources = vec![document_arn(&region, &account, &a.document_name)];
        self.publish(crate::events::ASSOCIATION_STATE_CHANGE, resources, detail);
    }

    /// `EC2 State Manager Instance Association State Change`: one target's status changed.
    pub(super) fn target_changed(
        &mut self,
        association_id: &str,
        execution_id: &str,
        resource_id: &str,
    ) {
        if !self.subscribed() {
            return;
        }
        let (account, region) = self.place();
        let Some(a) = self.association(association_id) else {
            return;
        };
        let Some(e) = a.execution(execution_id) else {
            return;
        };
        let Some(t) = e.targets.iter().find(|t| t.resource_id == resource_id) else {
            return;
        };
        let last = crate::timestamp::format_time(t.last_execution_date.unwrap_or(e.created));
        let mut detail = json!({
            "association-id": a.id,
            "instance-id": t.resource_id,
            "document-name": a.document_name,
            "document-version": a.document_version,
            "targets": r#"[{"key":"tag:PatchGroup","values":["fleet"]}]"#,
            "creation-date": crate::timestamp::format_time(a.created),
            "last-execution-date": last,
            "status": t.status,
            "detailed-status": t.detailed_status,
            "error-code": "",
            "execution-summary": "",
            "output-url": "",
            "instance-association-cwe-version": "1",
        });
        if t.status == "Success" {
            detail["last-successful-execution-date"] = json!(last);
        }
        let resources = vec![
            format!("arn:aws:ec2:{region}:{account}:instance/{}", t.resource_id),
            document_arn(&region, &account, &a.document_name),
        ];
        self.publish(
            crate::events::INSTANCE_ASSOCIATION_STATE_CHANGE,
            resources,
            detail,
        );
    }
}

/// AWS-owned documents have no account in their ARN, as the user guide's example shows.
fn document_arn(region: &str, account: &str, document: &str) -> String {
    let owner = if document.starts_with("AWS-") {
        ""
    } else {
        account
    };
    format!("arn:aws:ssm:{region}:{owner}:document/{document}")
}

// ---- the wire ---------------------------------------------------------------------------------

/// An error answer: HTTP status, the query code for `x-amzn-query-error`, `__type`, message.
#[derive(Debug)]
struct SqsFailure {
    status: StatusCode,
    query_code: &'static str,
    type_name: &'static str,
    message: String,
}

fn failure(
    status: StatusCode,
    query_code: &'static str,
    type_name: &'static str,
    message: impl Into<String>,
) -> SqsFailure {
    SqsFailure {
        status,
        query_code,
        type_name,
        message: message.into(),
    }
}

fn invalid(message: impl Into<String>) -> SqsFailure {
    failure(
        StatusCode::BAD_REQUEST,
        "InvalidParameterValue",
        "com.amazonaws.sqs#InvalidParameterValueException",
        message,
    )
}

fn no_queue() -> SqsFailure {
    failure(
        StatusCode::BAD_REQUEST,
        "AWS.SimpleQueueService.NonExistentQueue",
        "com.amazonaws.sqs#QueueDoesNotExist",
        "The specified queue does not exist.",
    )
}

fn batch_error(query_code: &'static str, type_name: &'static str, message: &str) -> SqsFailure {
    failure(StatusCode::BAD_REQUEST, query_code, type_name, message)
}

enum Answer {
    Ok(Value),
    Err(SqsFailure),
    /// A long poll: answer when the queue has messages or at the deadline.
    Wait {
        path: String,
        max: usize,
        visibility: Option<Duration>,
        deadline: Instant,
    },
    Unavailable,
    Garbage,
    Reset,
    Hang,
}

/// Serves one SQS request: records it, applies the queue's fault, runs the operation.
pub(super) async fn handle(
    sim: Sim,
    operation: String,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reset> {
    let attempt = request
        .headers()
        .get("amz-sdk-request")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_attempt);
    let body = Limited::new(request.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let (answer, request_id) = {
        let mut state = sim.lock();
        state.serial += 1;
        let request_id = format!("00000000-0000-4000-a000-{:012x}", state.serial);
        (answer(&mut state, &operation, &body, attempt), request_id)
    };
    let value = match answer {
        Answer::Ok(value) => value,
        Answer::Err(e) => return Ok(error_response(&e, &request_id)),
        Answer::Wait {
            path,
            max,
            visibility,
            deadline,
        } => long_poll(&sim, &path, max, visibility, deadline).await,
        Answer::Unavailable => {
            return Ok(http::response(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "Service Unavailable",
            ));
        }
        Answer::Garbage => return Ok(http::response(StatusCode::OK, JSON, "<html>not json")),
        Answer::Reset => return Err(Reset),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Ok(error_response(&internal(), &request_id));
        }
    };
    let mut r = http::response(StatusCode::OK, JSON, value.to_string());
    add_request_id(&mut r, &request_id);
    Ok(r)
}

fn internal() -> SqsFailure {
    failure(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        "com.amazonaws.sqs#InternalError",
        "We encountered an internal error. Please try again.",
    )
}

fn error_response(e: &SqsFailure, request_id: &str) -> Response<Body> {
    let body = json!({ "__type": e.type_name, "message": e.message }).to_string();
    let mut r = http::response(e.status, JSON, body);
    add_request_id(&mut r, request_id);
    if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("{};Sender", e.query_code)) {
        r.headers_mut().insert("x-amzn-query-error", v);
    }
    r
}

/// Waits for messages without holding the lock: takes what is visible, else sleeps until a
/// message is sent, one becomes visible again, or the deadline.
async fn long_poll(
    sim: &Sim,
    path: &str,
    max: usize,
    visibility: Option<Duration>,
    deadline: Instant,
) -> Value {
    loop {
        // Registered before looking, so that a message sent between the look and the wait
        // still wakes this poll.
        let changed = sim.queue_changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let (messages, next_visible) = sim.lock().take(path, max, visibility);
        let now = Instant::now();
        if !messages.is_empty() || now >= deadline {
            return messages_value(messages);
        }
        let wake = next_visible.map_or(deadline, |t| t.min(deadline));
        tokio::select! {
            () = &mut changed => {}
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

fn messages_value(messages: Vec<Value>) -> Value {
    if messages.is_empty() {
        json!({})
    } else {
        json!({ "Messages": messages })
    }
}

impl State {
    /// Receives up to `max` visible messages of the queue at `path`, hiding each for the
    /// visibility timeout; and, when there are none, when the next hidden one shows again.
    fn take(
        &mut self,
        path: &str,
        max: usize,
        visibility: Option<Duration>,
    ) -> (Vec<Value>, Option<Instant>) {
        let now = Instant::now();
        let Some(queue) = self.queues.by_path.get(path) else {
            // Deleted while polling: answer empty, as the next call will say why.
            return (Vec::new(), None);
        };
        let hide = visibility.unwrap_or(queue.visibility);
        let visible: Vec<usize> = queue
            .messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.visible_at <= now)
            .map(|(i, _)| i)
            .take(max)
            .collect();
        let next_visible = queue.messages.iter().map(|m| m.visible_at).min();
        let mut out = Vec::with_capacity(visible.len());
        for i in visible {
            let receipt = self.receipt_handle();
            let Some(m) = self
                .queues
                .by_path
                .get_mut(path)
                .and_then(|q| q.messages.get_mut(i))
            else {
                break;
            };
            m.receipt = Some(receipt.clone());
            m.visible_at = now + hide;
            out.push(json!({
                "MessageId": m.id,
                "ReceiptHandle": receipt,
                "Body": m.body,
            }));
        }
        (out, next_visible)
    }
}

fn answer(state: &mut State, operation: &str, body: &[u8], attempt: Option<u32>) -> Answer {
    let input: Map<String, Value> = if body.is_empty() {
        Map::new()
    } else {
        match serde_json::from_slice(body) {
            Ok(m) => m,
            Err(e) => {
                return Answer::Err(failure(
                    StatusCode::BAD_REQUEST,
                    "SerializationException",
                    "com.amazon.coral.service#SerializationException",
                    format!("request body is not a JSON object: {e}"),
                ));
            }
        }
    };
    let queue_url = input.get("QueueUrl").and_then(Value::as_str);
    state.requests.push(Recorded {
        operation: operation.to_owned(),
        association_id: None,
        queue_url: queue_url.map(str::to_owned),
        attempt,
        max_results: input.get("MaxNumberOfMessages").and_then(Value::as_i64),
        status: 0,
    });
    let answer = run(state, operation, &input, queue_url);
    // A long poll's status is settled before it waits: only a 200 waits.
    let status = match &answer {
        Answer::Ok(_) | Answer::Garbage | Answer::Wait { .. } => 200,
        Answer::Err(e) => e.status.as_u16(),
        Answer::Unavailable => 503,
        Answer::Hang => 500,
        Answer::Reset => 0,
    };
    if let Some(last) = state.requests.last_mut() {
        last.status = status;
    }
    answer
}

fn run(
    state: &mut State,
    operation: &str,
    input: &Map<String, Value>,
    queue_url: Option<&str>,
) -> Answer {
    let Some(queue_url) = queue_url else {
        return Answer::Err(failure(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            "com.amazonaws.sqs#MissingParameter",
            "The request must contain the parameter QueueUrl.",
        ));
    };
    let path = queue_path(queue_url).to_owned();
    if let Some(fault) = state.queues.failing.get(&path) {
        return match fault {
            Fault::Throttle => Answer::Err(failure(
                StatusCode::BAD_REQUEST,
                "RequestThrottled",
                "com.amazonaws.sqs#RequestThrottled",
                "Rate exceeded",
            )),
            Fault::InternalError => Answer::Err(internal()),
            Fault::Unavailable => Answer::Unavailable,
            Fault::AccessDenied => Answer::Err(failure(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "com.amazon.coral.service#AccessDeniedException",
                format!(
                    "User is not authorized to perform: sqs:{operation} on resource: {queue_url}"
                ),
            )),
            Fault::Reset => Answer::Reset,
            Fault::Garbage => Answer::Garbage,
            Fault::Hang => Answer::Hang,
        };
    }
    if !state.queues.by_path.contains_key(&path) {
        return Answer::Err(no_queue());
    }
    let result = match operation {
        "ReceiveMessage" => return receive(input, path),
        "DeleteMessageBatch" => delete_message_batch(state, input, &path),
        "DeleteMessage" => delete_message(state, input, &path),
        _ => Err(failure(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            "com.amazon.coral.service#UnknownOperationException",
            format!("unknown operation {operation:?}"),
        )),
    };
    match result {
        Ok(v) => Answer::Ok(v),
        Err(e) => Answer::Err(e),
    }
}

/// An optional integer member within `range`.
fn integer(
    input: &Map<String, Value>,
    member: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, SqsFailure> {
    match input.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(invalid(format!(
                "Value {v} for parameter {member} is invalid. Reason: Must be between {} and {}.",
                range.start(),
                range.end()
            ))),
        },
    }
}

fn receive(input: &Map<String, Value>, path: String) -> Answer {
    let checked = (|| {
        let max = integer(input, "MaxNumberOfMessages", 1..=10)?.unwrap_or(1);
        let wait = integer(input, "WaitTimeSeconds", 0..=20)?.unwrap_or(0);
        let visibility = integer(input, "VisibilityTimeout", 0..=43_200)?;
        Ok::<_, SqsFailure>((max, wait, visibility))
    })();
    match checked {
        Ok((max, wait, visibility)) => Answer::Wait {
            path,
            max: usize::try_from(max).unwrap_or(1),
            visibility: visibility.map(|s| Duration::from_secs(s.unsigned_abs())),
            deadline: Instant::now() + Duration::from_secs(wait.unsigned_abs()),
        },
        Err(e) => Answer::Err(e),
    }
}

/// Deletes the message whose latest delivery `receipt` is; a handle of an older delivery, or
/// of a message already deleted, deletes nothing and still succeeds, as SQS does.
fn delete_receipt(state: &mut State, path: &str, receipt: &str) -> bool {
    if !receipt.starts_with(RECEIPT_PREFIX) {
        return false;
    }
    if let Some(queue) = state.queues.by_path.get_mut(path) {
        queue
            .messages
            .retain(|m| m.receipt.as_deref() != Some(receipt));
    }
    true
}

fn delete_message_batch(
    state: &mut State,
    input: &Map<String, Value>,
    path: &str,
) -> Result<Value, SqsFailure> {
    let entries = input
        .get("Entries")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if entries.is_empty() {
        return Err(batch_error(
            "AWS.SimpleQueueService.EmptyBatchRequest",
            "com.amazonaws.sqs#EmptyBatchRequest",
            "There should be at least one DeleteMessageBatchRequestEntry in the request.",
        ));
    }
    if entries.len() > 10 {
        return Err(batch_error(
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            "com.amazonaws.sqs#TooManyEntriesInBatchRequest",
            &format!(
                "Maximum number of entries per request are 10. You have sent {}.",
                entries.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    let mut pairs = Vec::with_capacity(entries.len());
    for entry in entries {
        let id = entry.get("Id").and_then(Value::as_str).unwrap_or_default();
        let receipt = entry
            .get("ReceiptHandle")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let well_formed = !id.is_empty()
            && id.len() <= 80
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(batch_error(
                "AWS.SimpleQueueService.InvalidBatchEntryId",
                "com.amazonaws.sqs#InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if !seen.insert(id) {
            return Err(batch_error(
                "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                "com.amazonaws.sqs#BatchEntryIdsNotDistinct",
                &format!("Id {id} repeated."),
            ));
        }
        pairs.push((id, receipt));
    }
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for (id, receipt) in pairs {
        if delete_receipt(state, path, receipt) {
            successful.push(json!({ "Id": id }));
        } else {
            failed.push(json!({
                "Id": id,
                "SenderFault": true,
                "Code": "ReceiptHandleIsInvalid",
                "Message": format!("The input receipt handle \"{receipt}\" is not a valid receipt handle."),
            }));
        }
    }
    Ok(json!({ "Successful": successful, "Failed": failed }))
}

fn delete_message(
    state: &mut State,
    input: &Map<String, Value>,
    path: &str,
) -> Result<Value, SqsFailure> {
    let receipt = input
        .get("ReceiptHandle")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if delete_receipt(state, path, receipt) {
        Ok(json!({}))
    } else {
        Err(failure(
            StatusCode::BAD_REQUEST,
            "ReceiptHandleIsInvalid",
            "com.amazonaws.sqs#ReceiptHandleIsInvalid",
            format!("The input receipt handle \"{receipt}\" is not a valid receipt handle."),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            queue_path("https://sqs.us-east-2.amazonaws.com/111111111111/events"),
            "/111111111111/events"
        );
        assert_eq!(queue_path("http://127.0.0.1:4000/1/q"), "/1/q");
        assert_eq!(queue_path("http://127.0.0.1:4000"), "");
    }
}
