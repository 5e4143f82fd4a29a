//! The awsJson1.1 side of the simulator: routing on `X-Amz-Target`, request validation, the
//! four operations, pagination tokens and the error envelopes, as ssm-api.md §1, §3, §4 and §9
//! describe them; a request without `X-Amz-Target` goes to the STS stub (`router` sends those
//! whose target starts `AmazonSQS.` to the SQS side). Signatures are not checked, but the key ID and region of the
//! credential scope are, when the simulator expects a caller.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::wire::{MAX_REQUEST_BYTES, Reset, add_request_id, parse_attempt};
use super::{Association, Execution, Fault, Recorded, Sim, State};
use crate::http::{self, Body};
use crate::ids::is_uuid;
use crate::timestamp::parse_time;

const JSON: &str = "application/x-amz-json-1.1";
const DEFAULT_PAGE: usize = 50;

/// An error answer: HTTP status, `__type`, message.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn validation(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "ValidationException",
            message: format!("1 validation error detected: {}", message.into()),
        }
    }

    fn client(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }
}

enum Answer {
    Ok(Value),
    Err(ApiError),
    /// A 503 whose body is not JSON, as a load balancer in front of SSM might send.
    Unavailable,
    /// A 200 whose body is not JSON.
    Garbage,
    Reset,
    /// An answer an hour late.
    Hang,
}

/// Serves one SSM request, or an STS one (no `X-Amz-Target`).
pub(super) async fn handle(sim: Sim, request: Request<Incoming>) -> Result<Response<Body>, Reset> {
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("AmazonSSM."))
        .unwrap_or_default()
        .to_owned();
    let attempt = request
        .headers()
        .get("amz-sdk-request")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_attempt);
    let scope = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(credential_scope)
        .map(|(key, region)| (key.to_owned(), region.to_owned()));
    let body = match Limited::new(request.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(error_response(
                &ApiError::client(
                    "SerializationException",
                    "request body unreadable or too large",
                ),
                "",
            ));
        }
    };
    if operation.is_empty() {
        let (status, xml) = super::sts::answer(&mut sim.lock(), &body);
        return Ok(http::response(status, "text/xml", xml));
    }
    let (answer, latency, request_id) = {
        let mut state = sim.lock();
        state.serial += 1;
        let request_id = format!("00000000-0000-4000-8000-{:012x}", state.serial);
        let answer = answer(&mut state, &operation, &body, attempt, scope.as_ref());
        let status = match &answer {
            Answer::Ok(_) | Answer::Garbage => 200,
            Answer::Err(e) => e.status.as_u16(),
            Answer::Unavailable => 503,
            Answer::Hang => 500,
            Answer::Reset => 0,
        };
        if let Some(last) = state.requests.last_mut() {
            last.status = status;
        }
        (answer, state.faults.latency, request_id)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match answer {
        Answer::Ok(value) => {
            let mut r = http::response(StatusCode::OK, JSON, Bytes::from(value.to_string()));
            add_request_id(&mut r, &request_id);
            r
        }
        Answer::Err(e) => error_response(&e, &request_id),
        Answer::Unavailable => http::response(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "Service Unavailable",
        ),
        Answer::Garbage => http::response(StatusCode::OK, JSON, "<html>not json"),
        Answer::Reset => return Err(Reset),
        Answer::Hang => {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            error_response(&internal(), &request_id)
        }
    };
    Ok(response)
}

/// The key ID and region of a SigV4 `Authorization` header's credential scope:
/// `AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request, ...`.
fn credential_scope(header: &str) -> Option<(&str, &str)> {
    let credential = header.split_once("Credential=")?.1;
    let credential = credential.split([',', ' ']).next()?;
    let mut parts = credential.split('/');
    let key = parts.next()?;
    let region = parts.nth(1)?;
    Some((key, region))
}

/// Why a request is refused for its credentials, if the simulator expects a caller.
fn caller_refused(state: &State, scope: Option<&(String, String)>) -> Option<ApiError> {
    let (account, region) = state.caller.as_ref()?;
    let (key, signed_region) = scope.map_or(("", ""), |(k, r)| (k.as_str(), r.as_str()));
    if !key.starts_with(&super::sts::access_key_prefix(account)) {
        return Some(ApiError::client(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    if signed_region != region {
        return Some(ApiError::client(
            "InvalidSignatureException",
            format!("Credential should be scoped to a valid region, not '{signed_region}'."),
        ));
    }
    None
}

fn error_response(e: &ApiError, request_id: &str) -> Response<Body> {
    let body = json!({ "__type": e.code, "message": e.message }).to_string();
    let mut r = http::response(e.status, JSON, body);
    add_request_id(&mut r, request_id);
    r
}

/// Records the request, checks its credentials, applies faults, then runs the operation.
fn answer(
    state: &mut State,
    operation: &str,
    body: &[u8],
    attempt: Option<u32>,
    scope: Option<&(String, String)>,
) -> Answer {
    let parsed: Result<Map<String, Value>, _> = if body.is_empty() {
        Ok(Map::new())
    } else {
        serde_json::from_slice(body)
    };
    let association_id = parsed
        .as_ref()
        .ok()
        .and_then(|m| m.get("AssociationId"))
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    let member = |name: &str| parsed.as_ref().ok().and_then(|m| m.get(name));
    state.requests.push(Recorded {
        operation: operation.to_owned(),
        association_id: association_id.clone(),
        queue_url: None,
        attempt,
        max_results: member("MaxResults").and_then(Value::as_i64),
        status: 0,
    });
    if let Some(refused) = caller_refused(state, scope) {
        return Answer::Err(refused);
    }

    if let Some(fault) = association_id.as_ref().and_then(|id| state.failing.get(id)) {
        return match fault {
            Fault::Throttle => Answer::Err(throttled()),
            Fault::InternalError => Answer::Err(internal()),
            Fault::Unavailable => Answer::Unavailable,
            Fault::AccessDenied => Answer::Err(ApiError::client(
                "AccessDeniedException",
                format!("User is not authorized to perform: ssm:{operation}"),
            )),
            Fault::Reset => Answer::Reset,
            Fault::Garbage => Answer::Garbage,
            Fault::Hang => Answer::Hang,
        };
    }
    if !state.within_rate() {
        return Answer::Err(throttled());
    }
    let faults = state.faults.clone();
    let mut chance = |rate: f64| rate > 0.0 && state.random() < rate;
    if chance(faults.throttle_rate) {
        return Answer::Err(throttled());
    }
    if chance(faults.error_rate) {
        return Answer::Err(internal());
    }
    if chance(faults.reset_rate) {
        return Answer::Reset;
    }
    if chance(faults.garbage_rate) {
        return Answer::Garbage;
    }
    if faults.expire_tokens > 0 && member("NextToken").is_some() {
        state.faults.expire_tokens -= 1;
        return Answer::Err(invalid_token());
    }
    if faults.refuse_listings > 0 && operation == "ListAssociations" {
        state.faults.refuse_listings -= 1;
        return Answer::Err(ApiError::client(
            "ExpiredTokenException",
            "The security token included in the request is expired".to_owned(),
        ));
    }

    if operation == "DescribeAssociationExecutionTargets"
        && let (Some(a), Some(e)) = (
            association_id.as_deref(),
            member("ExecutionId").and_then(Value::as_str),
        )
    {
        let wanted = (a.to_owned(), e.to_ascii_lowercase());
        if let Some(i) = state.expire_on_read.iter().position(|x| *x == wanted) {
            state.expire_on_read.swap_remove(i);
            if let Some(association) = state.association_mut(a) {
                association.executions.retain(|x| x.id != wanted.1);
            }
        }
    }
    let input = match parsed {
        Ok(m) => m,
        Err(e) => {
            return Answer::Err(ApiError::client(
                "SerializationException",
                format!("request body is not a JSON object: {e}"),
            ));
        }
    };
    let result = match operation {
        "ListAssociations" => list_associations(state, &input),
        "DescribeAssociation" => describe_association(state, &input),
        "DescribeAssociationExecutions" => describe_association_executions(state, &input),
        "DescribeAssociationExecutionTargets" => {
            describe_association_execution_targets(state, &input)
        }
        _ => Err(ApiError::client(
            "UnknownOperationException",
            format!("unknown operation {operation:?}"),
        )),
    };
    match result {
        Ok(v) => Answer::Ok(v),
        Err(e) => Answer::Err(e),
    }
}

fn invalid_token() -> ApiError {
    ApiError::client("InvalidNextToken", "The specified token isn't valid.")
}

fn throttled() -> ApiError {
    ApiError::client("ThrottlingException", "Rate exceeded")
}

fn internal() -> ApiError {
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "InternalServerError",
        message: "An error occurred on the server side.".to_owned(),
    }
}

// ---- request members ------------------------------------------------------------------------

/// An optional string member; present but not a string is a validation error.
fn string<'a>(input: &'a Map<String, Value>, member: &str) -> Result<Option<&'a str>, ApiError> {
    match input.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::validation(format!(
            "Value at '{}' failed to satisfy constraint: Member must be a string",
            camel(member)
        ))),
    }
}

/// A required ID member matching the UUID pattern.
fn id<'a>(input: &'a Map<String, Value>, member: &str) -> Result<&'a str, ApiError> {
    let value = string(input, member)?.ok_or_else(|| {
        ApiError::validation(format!(
            "Value null at '{}' failed to satisfy constraint: Member must not be null",
            camel(member)
        ))
    })?;
    if !is_uuid(value) {
        return Err(ApiError::validation(format!(
            "Value '{value}' at '{}' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}",
            camel(member)
        )));
    }
    Ok(value)
}

fn max_results(input: &Map<String, Value>) -> Result<usize, ApiError> {
    match input.get("MaxResults") {
        None | Some(Value::Null) => Ok(DEFAULT_PAGE),
        Some(v) => match v.as_i64() {
            Some(n @ 1..=50) => Ok(usize::try_from(n).unwrap_or(DEFAULT_PAGE)),
            Some(n) if n < 1 => Err(ApiError::validation(format!(
                "Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"
            ))),
            Some(n) => Err(ApiError::validation(format!(
                "Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50"
            ))),
            None => Err(ApiError::validation(
                "Value at 'maxResults' failed to satisfy constraint: Member must be an integer",
            )),
        },
    }
}

/// One entry of a request's filter list.
struct Filter<'a> {
    key: &'a str,
    value: &'a str,
    /// The operator, for the filters that have one.
    kind: Option<&'a str>,
}

/// A filter list member: absent, or 1 or more objects whose `key`/`value` members (names as
/// given) are non-empty strings.
fn filters<'a>(
    input: &'a Map<String, Value>,
    member: &str,
    key: &str,
    value: &str,
) -> Result<Vec<Filter<'a>>, ApiError> {
    let Some(list) = input.get(member).filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = list.as_array().ok_or_else(|| {
        ApiError::validation(format!(
            "Value at '{}' failed to satisfy constraint: Member must be a list",
            camel(member)
        ))
    })?;
    if list.is_empty() {
        return Err(ApiError::validation(format!(
            "Value '[]' at '{}' failed to satisfy constraint: Member must have length greater than or equal to 1",
            camel(member)
        )));
    }
    list.iter()
        .enumerate()
        .map(|(i, f)| {
            let at = |m: &str| format!("{}.{}.member.{}", camel(member), i + 1, camel(m));
            let get = |m: &str| -> Result<&'a str, ApiError> {
                match f.get(m).and_then(Value::as_str) {
                    Some(s) if !s.is_empty() => Ok(s),
                    _ => Err(ApiError::validation(format!(
                        "Value at '{}' failed to satisfy constraint: Member must not be null and must have length greater than or equal to 1",
                        at(m)
                    ))),
                }
            };
            Ok(Filter {
                key: get(key)?,
                value: get(value)?,
                kind: f.get("Type").and_then(Value::as_str),
            })
        })
        .collect()
}

/// `AssociationId` → `associationId`, as Coral names members in validation messages.
fn camel(member: &str) -> String {
    let mut chars = member.chars();
    chars
        .next()
        .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn enum_error(member: &str, value: &str, allowed: &str) -> ApiError {
    ApiError::validation(format!(
        "Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy enum value set: [{allowed}]"
    ))
}

// ---- pagination -----------------------------------------------------------------------------

/// Where a listing resumes. The token is bound to the operation and the request's members
/// (NextToken and MaxResults aside), so a token from another request is refused.
struct Cursor {
    offset: usize,
    /// With empty pages switched on: whether the empty page before `offset` was served.
    empty_served: bool,
}

fn fingerprint(operation: &str, input: &Map<String, Value>) -> u64 {
    let mut bound = input.clone();
    bound.remove("NextToken");
    bound.remove("MaxResults");
    // serde_json's map is ordered, so equal requests serialise equally.
    let text = format!("{operation}{}", Value::Object(bound));
    // FNV-1a: stable across processes, unlike std's hasher.
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn cursor(operation: &str, input: &Map<String, Value>) -> Result<Cursor, ApiError> {
    let Some(token) = string(input, "NextToken")? else {
        return Ok(Cursor {
            offset: 0,
            empty_served: false,
        });
    };
    let invalid = invalid_token;
    if token.len() != 25 || !token.is_ascii() {
        return Err(invalid());
    }
    let fp = u64::from_str_radix(&token[..16], 16).map_err(|_| invalid())?;
    let offset = usize::from_str_radix(&token[16..24], 16).map_err(|_| invalid())?;
    let empty_served = match &token[24..] {
        "0" => false,
        "1" => true,
        _ => return Err(invalid()),
    };
    if fp != fingerprint(operation, input) {
        return Err(invalid());
    }
    Ok(Cursor {
        offset,
        empty_served,
    })
}

fn token(operation: &str, input: &Map<String, Value>, offset: usize, empty_served: bool) -> String {
    format!(
        "{:016x}{offset:08x}{}",
        fingerprint(operation, input),
        u8::from(empty_served)
    )
}

/// One page of `items` as `{ <member>: [...], NextToken? }`; only the page's items are
/// rendered, so a long listing costs each call its own page and no more.
fn page<T>(
    state: &State,
    operation: &str,
    input: &Map<String, Value>,
    member: &str,
    items: &[T],
    render: impl Fn(&T) -> Value,
) -> Result<Value, ApiError> {
    let size = max_results(input)?;
    let at = cursor(operation, input)?;
    if at.offset > items.len() {
        return Err(invalid_token());
    }
    let mut out = Map::new();
    let next = |offset: usize, empty_served: bool| {
        Value::String(token(operation, input, offset, empty_served))
    };
    if state.faults.empty_pages && !at.empty_served && at.offset < items.len() {
        out.insert(member.to_owned(), Value::Array(Vec::new()));
        out.insert("NextToken".to_owned(), next(at.offset, true));
        return Ok(Value::Object(out));
    }
    let end = (at.offset + size).min(items.len());
    out.insert(
        member.to_owned(),
        Value::Array(items[at.offset..end].iter().map(render).collect()),
    );
    if end < items.len() {
        out.insert("NextToken".to_owned(), next(end, false));
    } else if state.faults.blank_final_token {
        out.insert("NextToken".to_owned(), Value::String(String::new()));
    }
    Ok(Value::Object(out))
}

// ---- operations -----------------------------------------------------------------------------

fn list_associations(state: &State, input: &Map<String, Value>) -> Result<Value, ApiError> {
    const KEYS: &str = "InstanceId, Name, AssociationId, AssociationStatusName, LastExecutedBefore, LastExecutedAfter, AssociationName, ResourceGroupName, CloudConnectorId";
    let filters = filters(input, "AssociationFilterList", "key", "value")?;
    for &Filter { key, value, .. } in &filters {
        match key {
            "Name" | "AssociationId" | "AssociationName" | "InstanceId" | "ResourceGroupName"
            | "CloudConnectorId" => {}
            "AssociationStatusName" if !["Pending", "Success", "Failed"].contains(&value) => {
                return Err(enum_error(
                    "associationFilterList.member.value",
                    value,
                    "Pending, Success, Failed",
                ));
            }
            "AssociationStatusName" => {}
            "LastExecutedBefore" | "LastExecutedAfter" if parse_time(value).is_none() => {
                return Err(ApiError::validation(format!(
                    "Value '{value}' at 'associationFilterList.member.value' failed to satisfy constraint: Member must be an ISO-8601 date-time"
                )));
            }
            "LastExecutedBefore" | "LastExecutedAfter" => {}
            other => return Err(enum_error("associationFilterList.member.key", other, KEYS)),
        }
    }
    let items: Vec<&Association> = state
        .associations
        .values()
        .filter(|a| {
            filters.iter().all(|&Filter { key, value, .. }| {
                let last = a.latest().map(|e| e.created);
                match key {
                    "Name" => a.document_name == value,
                    "AssociationId" => a.id.eq_ignore_ascii_case(value),
                    "AssociationName" => a.name.as_deref() == Some(value),
                    "AssociationStatusName" => a.overview_status().0 == value,
                    "LastExecutedBefore" => last.zip(parse_time(value)).is_some_and(|(l, t)| l < t),
                    "LastExecutedAfter" => last.zip(parse_time(value)).is_some_and(|(l, t)| l > t),
                    // No legacy instance associations, resource groups or connectors here.
                    _ => false,
                }
            })
        })
        .collect();
    page(
        state,
        "ListAssociations",
        input,
        "Associations",
        &items,
        |a| {
            let mut v = json!({
                "AssociationId": a.id,
                "Name": a.document_name,
                "AssociationVersion": a.version.to_string(),
                "DocumentVersion": a.document_version,
                "Targets": [{ "Key": "tag:PatchGroup", "Values": ["fleet"] }],
            });
            schedule_into(&mut v, &a.schedule);
            if let Some(name) = &a.name {
                v["AssociationName"] = json!(name);
            }
            record_into(&mut v, a);
            v
        },
    )
}

fn describe_association(state: &State, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let association_id = id(input, "AssociationId")?;
    let a = association(state, association_id)?;
    if let Some(version) = string(input, "AssociationVersion")?
        && version != "$LATEST"
        && version != a.version.to_string()
    {
        return Err(ApiError::client(
            "InvalidAssociationVersion",
            format!("Association version {version} does not exist."),
        ));
    }
    let (status, _) = a.overview_status();
    let mut d = json!({
        "AssociationId": a.id,
        "Name": a.document_name,
        "AssociationVersion": a.version.to_string(),
        "DocumentVersion": a.document_version,
        "Date": a.created,
        "LastUpdateAssociationDate": a.created,
        "Status": { "Date": a.created, "Name": status, "Message": "Associated with the targets" },
        "Targets": [{ "Key": "tag:PatchGroup", "Values": ["fleet"] }],
        "ApplyOnlyAtCronInterval": a.schedule.apply_only_at_cron_interval,
        "ComplianceSeverity": "UNSPECIFIED",
        "SyncCompliance": "AUTO",
    });
    schedule_into(&mut d, &a.schedule);
    if let Some(name) = &a.name {
        d["AssociationName"] = json!(name);
    }
    record_into(&mut d, a);
    if let Some(e) = a.latest_success() {
        d["LastSuccessfulExecutionDate"] = json!(e.created);
    }
    Ok(json!({ "AssociationDescription": d }))
}

/// The schedule members both ListAssociations and DescribeAssociation carry, those set.
fn schedule_into(v: &mut Value, schedule: &super::SimSchedule) {
    if let Some(expression) = &schedule.expression {
        v["ScheduleExpression"] = json!(expression);
    }
    if let Some(offset) = schedule.offset_days {
        v["ScheduleOffset"] = json!(offset);
    }
    if let Some(hours) = schedule.duration_hours {
        v["Duration"] = json!(hours);
    }
}

fn describe_association_executions(
    state: &State,
    input: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let association_id = id(input, "AssociationId")?;
    let filters = filters(input, "Filters", "Key", "Value")?;
    for &Filter { key, value, kind } in &filters {
        let kind = kind.ok_or_else(|| {
            ApiError::validation("Value null at 'filters.member.type' failed to satisfy constraint: Member must not be null")
        })?;
        if !["EQUAL", "LESS_THAN", "GREATER_THAN"].contains(&kind) {
            return Err(enum_error(
                "filters.member.type",
                kind,
                "EQUAL, LESS_THAN, GREATER_THAN",
            ));
        }
        match key {
            "ExecutionId" | "Status" if kind != "EQUAL" => {
                return Err(ApiError::validation(format!(
                    "Filter {key} supports only the EQUAL type, not {kind}"
                )));
            }
            "ExecutionId" | "Status" => {}
            "CreatedTime" if parse_time(value).is_none() => {
                return Err(ApiError::validation(format!(
                    "Value '{value}' at 'filters.member.value' failed to satisfy constraint: Member must be an ISO-8601 date-time"
                )));
            }
            "CreatedTime" => {}
            other => {
                return Err(enum_error(
                    "filters.member.key",
                    other,
                    "ExecutionId, Status, CreatedTime",
                ));
            }
        }
    }
    max_results(input)?;
    let a = association(state, association_id)?;
    let mut executions: Vec<&Execution> = a
        .executions
        .iter()
        .filter(|e| {
            filters
                .iter()
                .all(|&Filter { key, value, kind }| match key {
                    "ExecutionId" => e.id.eq_ignore_ascii_case(value),
                    "Status" => e.status().0 == value,
                    _ => parse_time(value).is_some_and(|t| match kind.unwrap_or_default() {
                        "LESS_THAN" => e.created < t,
                        "GREATER_THAN" => e.created > t,
                        _ => e.created == t,
                    }),
                })
        })
        .collect();
    if state.faults.executions_oldest_first {
        executions.sort_by(|x, y| x.created.total_cmp(&y.created));
    } else {
        executions.sort_by(|x, y| y.created.total_cmp(&x.created));
    }
    page(
        state,
        "DescribeAssociationExecutions",
        input,
        "AssociationExecutions",
        &executions,
        |e| {
            let (status, detailed) = e.status();
            json!({
                "AssociationId": a.id,
                "AssociationVersion": e.association_version.to_string(),
                "ExecutionId": e.id,
                "Status": status,
                "DetailedStatus": detailed,
                "CreatedTime": e.created,
                "ResourceCountByStatus": e.resource_count_by_status(),
            })
        },
    )
}

fn describe_association_execution_targets(
    state: &State,
    input: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let association_id = id(input, "AssociationId")?;
    let execution_id = id(input, "ExecutionId")?;
    let filters = filters(input, "Filters", "Key", "Value")?;
    for &Filter { key, .. } in &filters {
        if !["Status", "ResourceId", "ResourceType"].contains(&key) {
            return Err(enum_error(
                "filters.member.key",
                key,
                "Status, ResourceId, ResourceType",
            ));
        }
    }
    max_results(input)?;
    let a = association(state, association_id)?;
    let e = a.execution(execution_id).ok_or_else(|| {
        ApiError::client(
            "AssociationExecutionDoesNotExist",
            format!("AssociationExecution with ID {execution_id} does not exist."),
        )
    })?;
    let targets: Vec<&super::SimTarget> = e
        .targets
        .iter()
        .filter(|t| {
            filters.iter().all(|&Filter { key, value, .. }| match key {
                "Status" => t.status == value,
                "ResourceId" => t.resource_id == value,
                _ => t.resource_type == value,
            })
        })
        .collect();
    page(
        state,
        "DescribeAssociationExecutionTargets",
        input,
        "AssociationExecutionTargets",
        &targets,
        |t| {
            let mut v = json!({
                "AssociationId": a.id,
                "AssociationVersion": e.association_version.to_string(),
                "ExecutionId": e.id,
                "ResourceId": t.resource_id,
                "ResourceType": t.resource_type,
                "Status": t.status,
                "DetailedStatus": t.detailed_status,
                "OutputSource": {
                    "OutputSourceId": output_source_id(&e.id, &t.resource_id),
                    "OutputSourceType": "RunCommand",
                },
            });
            if let Some(d) = t.last_execution_date {
                v["LastExecutionDate"] = json!(d);
            }
            v
        },
    )
}

fn association<'a>(state: &'a State, id: &str) -> Result<&'a Association, ApiError> {
    state.association(id).ok_or_else(|| {
        ApiError::client(
            "AssociationDoesNotExist",
            format!("Association with ID {id} does not exist."),
        )
    })
}

/// The `Overview` and `LastExecutionDate` of an association's record: its latest run's, or
/// what [`super::Sim::freeze_records`] froze.
fn record_into(v: &mut Value, a: &Association) {
    let (last, overview) = match &a.frozen {
        Some((last, overview)) => (*last, overview.clone()),
        None => (a.latest().map(|e| e.created), a.overview()),
    };
    v["Overview"] = overview;
    if let Some(last) = last {
        v["LastExecutionDate"] = json!(last);
    }
}

/// A stable 36-character command ID for a target's run.
fn output_source_id(execution_id: &str, resource_id: &str) -> String {
    let h = fingerprint(
        execution_id,
        &Map::from_iter([("r".to_owned(), json!(resource_id))]),
    );
    super::uuid(h, h.rotate_left(29))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts() {
        assert_eq!(parse_attempt("attempt=2; max=3"), Some(2));
        assert_eq!(parse_attempt("max=3"), None);
    }
}
