//! State Manager's change events as EventBridge delivers them to SQS: one message body → one
//! [`Event`] naming an association, or an [`EventError`] that says why not. Nothing here calls
//! AWS or trusts an event's status: an event only says which association to read again.
//!
//! The shapes, from the State Manager events of the Systems Manager user guide ("Amazon
//! EventBridge event examples for Systems Manager", page `monitoring-systems-manager-event-examples`,
//! section "State Manager Events"; the envelope from the EventBridge user guide's "AWS service
//! event metadata", page `eb-events-structure`):
//!
//! - The envelope: `version` ("0"), `id` (a UUID per event), `detail-type`, `source`
//!   (`aws.ssm`), `account` (12 digits), `time` (`2017-05-16T23:01:10Z`), `region`,
//!   `resources` (ARNs), `detail` (an object).
//! - `EC2 State Manager Association State Change`: `detail` has `association-id`,
//!   `document-name`, `association-version`, `document-version`, `targets` (a JSON string),
//!   `creation-date`, `last-successful-execution-date`, `last-execution-date`,
//!   `last-updated-date`, `status`, `association-status-aggregated-count` (a JSON string),
//!   `schedule-expression`, `association-cwe-version`; `resources` holds the document's ARN.
//! - `EC2 State Manager Instance Association State Change`: `detail` has `association-id`,
//!   `instance-id`, `document-name`, `document-version`, `targets`, `creation-date`,
//!   `last-successful-execution-date`, `last-execution-date`, `status`, `detailed-status`,
//!   `error-code`, `execution-summary`, `output-url`, `instance-association-cwe-version`;
//!   `resources` holds the instance's and the document's ARNs.
//!
//! Neither names an execution, so an event leads to reading the association's latest one.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::ids::{self, is_uuid};
use crate::logging::shown;
use crate::timestamp::parse_time;

/// The `source` of every Systems Manager event.
pub const SOURCE: &str = "aws.ssm";
/// The `detail-type` of an association's overall state change.
pub const ASSOCIATION_STATE_CHANGE: &str = "EC2 State Manager Association State Change";
/// The `detail-type` of one target's state change.
pub const INSTANCE_ASSOCIATION_STATE_CHANGE: &str =
    "EC2 State Manager Instance Association State Change";

/// A State Manager event, reduced to what routes it: whose association it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub account: String,
    pub region: String,
    /// In lower case, as the simulator and SSM's listings write it.
    pub association_id: String,
    /// When the service says the change happened; `None` when absent or unreadable, since a
    /// bad timestamp does not make the association any less worth reading.
    pub time: Option<SystemTime>,
    /// `detail.document-name`, when the event carries one: enough to tell that a discovery
    /// narrowed to another document does not watch it, without a call.
    pub document_name: Option<String>,
}

/// Why a message body is not a State Manager event we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not JSON: {0}")]
    NotJson(String),
    /// A JSON value without one of the envelope's fields (or with one of the wrong type).
    #[error("not an EventBridge event: no {0}")]
    NotAnEvent(&'static str),
    #[error("source \"{0}\" is not aws.ssm")]
    WrongSource(String),
    #[error("unknown detail-type \"{0}\"")]
    UnknownDetailType(String),
    #[error("no detail.association-id")]
    MissingAssociationId,
    #[error("association-id \"{0}\" is not a UUID")]
    InvalidAssociationId(String),
}

impl EventError {
    /// A closed set of reasons, safe as metric label values.
    pub fn kind(&self) -> &'static str {
        match self {
            EventError::NotJson(_) => "not_json",
            EventError::NotAnEvent(_) => "not_an_event",
            EventError::WrongSource(_) => "wrong_source",
            EventError::UnknownDetailType(_) => "unknown_detail_type",
            EventError::MissingAssociationId | EventError::InvalidAssociationId(_) => {
                "bad_association_id"
            }
        }
    }
}

/// Characters of a bad field that an error (and so a log line) echoes: a message may be 256 KB
/// of one field.
const ECHOED_CHARS: usize = 64;

/// Reads one SQS message body.
///
/// # Errors
///
/// An [`EventError`] for a body that is not JSON, not an EventBridge event, not from
/// `aws.ssm`, of another detail-type, or without a UUID `detail.association-id`.
pub fn parse(body: &str) -> Result<Event, EventError> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| EventError::NotJson(e.to_string()))?;
    let envelope = value.as_object().ok_or(EventError::NotAnEvent("object"))?;
    let field = |name: &'static str| -> Result<&str, EventError> {
        envelope
            .get(name)
            .and_then(Value::as_str)
            .ok_or(EventError::NotAnEvent(name))
    };
    let source = field("source")?;
    let detail_type = field("detail-type")?;
    let account = field("account")?;
    let region = field("region")?;
    let detail: &Map<String, Value> = envelope
        .get("detail")
        .and_then(Value::as_object)
        .ok_or(EventError::NotAnEvent("detail"))?;
    if source != SOURCE {
        return Err(EventError::WrongSource(shown(source, ECHOED_CHARS)));
    }
    // Either event says the same to the exporter: look at this association again. A run's
    // start and end, and each target's change, all come down to one targeted poll.
    if detail_type != ASSOCIATION_STATE_CHANGE && detail_type != INSTANCE_ASSOCIATION_STATE_CHANGE {
        return Err(EventError::UnknownDetailType(shown(
            detail_type,
            ECHOED_CHARS,
        )));
    }
    let association_id = detail
        .get("association-id")
        .and_then(Value::as_str)
        .ok_or(EventError::MissingAssociationId)?;
    if !is_uuid(association_id) {
        return Err(EventError::InvalidAssociationId(shown(
            association_id,
            ECHOED_CHARS,
        )));
    }
    let time = envelope
        .get("time")
        .and_then(Value::as_str)
        .and_then(parse_time)
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .map(|since| SystemTime::UNIX_EPOCH + since);
    Ok(Event {
        account: account.to_owned(),
        region: region.to_owned(),
        association_id: ids::fold(association_id),
        time,
        document_name: detail
            .get("document-name")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The user guide's example of the association event, account and IDs as printed there.
    const ASSOCIATION_EXAMPLE: &str = r#"{
        "version":"0",
        "id":"db839caf-6f6c-40af-9a48-25b2ae2b7774",
        "detail-type":"EC2 State Manager Association State Change",
        "source":"aws.ssm",
        "account":"123456789012",
        "time":"2017-05-16T23:01:10Z",
        "region":"us-east-2",
        "resources":["arn:aws:ssm:us-east-2::document/AWS-RunPowerShellScript"],
        "detail":{
            "association-id":"6e37940a-23ba-4ab0-9b96-5d0a1a05464f",
            "document-name":"AWS-RunPowerShellScript",
            "association-version":"1",
            "document-version":"Optional.empty",
            "targets":"[{\"key\":\"InstanceIds\",\"values\":[\"i-12345678\"]}]",
            "creation-date":"2017-02-13T17:22:54.458Z",
            "last-successful-execution-date":"2017-05-16T23:00:01Z",
            "last-execution-date":"2017-05-16T23:00:01Z",
            "last-updated-date":"2017-02-13T17:22:54.458Z",
            "status":"Success",
            "association-status-aggregated-count":"{\"Success\":1}",
            "schedule-expression":"cron(0 */30 * * * ? *)",
            "association-cwe-version":"1.0"
        }
    }"#;

    /// The user guide's example of the instance event.
    const INSTANCE_EXAMPLE: &str = r#"{
        "version":"0",
        "id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type":"EC2 State Manager Instance Association State Change",
        "source":"aws.ssm",
        "account":"123456789012",
        "time":"2017-02-23T15:23:48Z",
        "region":"us-east-2",
        "resources":[
            "arn:aws:ec2:us-east-2:123456789012:instance/i-12345678",
            "arn:aws:ssm:us-east-2:123456789012:document/my-custom-document"
        ],
        "detail":{
            "association-id":"34fcb7e0-9a14-4984-9989-0e04e3f60bd8",
            "instance-id":"i-12345678",
            "document-name":"my-custom-document",
            "document-version":"1",
            "targets":"[{\"key\":\"instanceids\",\"values\":[\"i-12345678\"]}]",
            "creation-date":"2017-02-23T15:23:48Z",
            "last-successful-execution-date":"2017-02-23T16:23:48Z",
            "last-execution-date":"2017-02-23T16:23:48Z",
            "status":"Success",
            "detailed-status":"",
            "error-code":"testErrorCode",
            "execution-summary":"testExecutionSummary",
            "output-url":"sampleurl",
            "instance-association-cwe-version":"1"
        }
    }"#;

    fn at(seconds: u64) -> Option<SystemTime> {
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
    }

    #[test]
    fn association_example() {
        assert_eq!(
            parse(ASSOCIATION_EXAMPLE),
            Ok(Event {
                account: "123456789012".to_owned(),
                region: "us-east-2".to_owned(),
                association_id: "6e37940a-23ba-4ab0-9b96-5d0a1a05464f".to_owned(),
                time: at(1_494_975_670),
                document_name: Some("AWS-RunPowerShellScript".to_owned()),
            })
        );
    }

    #[test]
    fn instance_example() {
        assert_eq!(
            parse(INSTANCE_EXAMPLE),
            Ok(Event {
                account: "123456789012".to_owned(),
                region: "us-east-2".to_owned(),
                association_id: "34fcb7e0-9a14-4984-9989-0e04e3f60bd8".to_owned(),
                time: at(1_487_863_428),
                document_name: Some("my-custom-document".to_owned()),
            })
        );
    }

    /// The association example with one member of the envelope or detail replaced (a JSON
    /// value) or removed (`None`).
    fn edited(path: &[&str], value: Option<Value>) -> String {
        let mut event: Value = serde_json::from_str(ASSOCIATION_EXAMPLE).expect("example is JSON");
        let (last, parents) = path.split_last().expect("a path");
        let mut object = &mut event;
        for p in parents {
            object = &mut object[*p];
        }
        let object = object.as_object_mut().expect("an object");
        match value {
            Some(v) => object.insert((*last).to_owned(), v),
            None => object.remove(*last),
        };
        event.to_string()
    }

    #[test]
    fn errors() {
        use serde_json::json;
        let cases: Vec<(String, EventError)> = vec![
            (
                "not json".to_owned(),
                EventError::NotJson("expected ident at line 1 column 2".to_owned()),
            ),
            ("[1]".to_owned(), EventError::NotAnEvent("object")),
            (edited(&["source"], None), EventError::NotAnEvent("source")),
            (
                edited(&["detail-type"], Some(json!(7))),
                EventError::NotAnEvent("detail-type"),
            ),
            (
                edited(&["account"], None),
                EventError::NotAnEvent("account"),
            ),
            (edited(&["region"], None), EventError::NotAnEvent("region")),
            (
                edited(&["detail"], Some(json!("{}"))),
                EventError::NotAnEvent("detail"),
            ),
            (
                edited(&["source"], Some(json!("aws.ec2"))),
                EventError::WrongSource("aws.ec2".to_owned()),
            ),
            (
                edited(
                    &["detail-type"],
                    Some(json!("EC2 Command Status-change Notification")),
                ),
                EventError::UnknownDetailType("EC2 Command Status-change Notification".to_owned()),
            ),
            (
                edited(&["detail", "association-id"], None),
                EventError::MissingAssociationId,
            ),
            (
                edited(&["detail", "association-id"], Some(json!(12))),
                EventError::MissingAssociationId,
            ),
            (
                edited(&["detail", "association-id"], Some(json!("assoc-1"))),
                EventError::InvalidAssociationId("assoc-1".to_owned()),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(&body), Err(expected), "{body}");
        }
    }

    /// A field of 255 KB is echoed as its first 64 characters, escaped: an error becomes a
    /// log line per message.
    #[test]
    fn bad_fields_are_echoed_cut() {
        let long = format!("\"{}", "x".repeat(255_000));
        let cut = format!("\\\"{}…", "x".repeat(63));
        let cases = [
            (
                edited(&["source"], Some(Value::String(long.clone()))),
                format!("source \"{cut}\" is not aws.ssm"),
            ),
            (
                edited(&["detail-type"], Some(Value::String(long.clone()))),
                format!("unknown detail-type \"{cut}\""),
            ),
            (
                edited(&["detail", "association-id"], Some(Value::String(long))),
                format!("association-id \"{cut}\" is not a UUID"),
            ),
        ];
        for (body, expected) in cases {
            let error = parse(&body).expect_err("refused");
            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn lenient_where_nothing_is_lost() {
        let upper = edited(
            &["detail", "association-id"],
            Some(Value::String(
                "6E37940A-23BA-4AB0-9B96-5D0A1A05464F".to_owned(),
            )),
        );
        let event = parse(&upper).expect("an upper-case UUID is a UUID");
        assert_eq!(event.association_id, "6e37940a-23ba-4ab0-9b96-5d0a1a05464f");
        for time in [None, Some(Value::String("yesterday".to_owned()))] {
            let event = parse(&edited(&["time"], time)).expect("time is optional");
            assert_eq!(event.time, None);
        }
        // Without a document name the event is still worth a look: it is only not narrowed.
        for name in [None, Some(Value::from(7))] {
            let event = parse(&edited(&["detail", "document-name"], name))
                .expect("document-name is optional");
            assert_eq!(event.document_name, None);
        }
    }
}
