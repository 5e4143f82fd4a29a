//! The AWS boundary: a narrow trait over the four SSM operations we call, and the plain records
//! they return. Only `ssm/aws.rs` names an `aws_sdk_ssm` type; everything else sees these.

pub mod aws;

use std::borrow::Cow;
use std::future::Future;
use std::time::SystemTime;

use serde::Deserialize;

/// One `AssociationExecutionTargetsFilter`: always an equality match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFilter {
    pub key: TargetFilterKey,
    pub value: NonEmpty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TargetFilterKey {
    Status,
    ResourceId,
    ResourceType,
}

impl TargetFilterKey {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetFilterKey::Status => "Status",
            TargetFilterKey::ResourceId => "ResourceId",
            TargetFilterKey::ResourceType => "ResourceType",
        }
    }
}

/// A string that is not empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonEmpty(String);

impl NonEmpty {
    /// `None` for an empty string.
    pub fn new(s: impl Into<String>) -> Option<Self> {
        let s = s.into();
        (!s.is_empty()).then_some(NonEmpty(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Every listing asks for the API's maximum page, to make the fewest calls.
pub const MAX_RESULTS: i32 = 50;

/// One page of a listing and the token for the next, `None` at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// An association as ListAssociations or DescribeAssociation report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Association {
    pub association_id: String,
    pub association_name: Option<String>,
    pub document_name: Option<String>,
    pub document_version: Option<String>,
    pub association_version: Option<String>,
    pub last_execution_date: Option<SystemTime>,
    /// The status of the latest run with its nodes counted by status: when it and the
    /// last execution date are unchanged, the association has not run since (ssm-api.md §6.2).
    pub overview: Option<Overview>,
    /// When and how long it runs: both operations report it.
    pub schedule: ScheduleFields,
    /// When it was created (`Date`): only DescribeAssociation reports it.
    pub created: Option<SystemTime>,
    /// When it last ran successfully: only DescribeAssociation reports it.
    pub last_successful_execution_date: Option<SystemTime>,
}

/// An association's schedule fields, as SSM reports them, unparsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleFields {
    /// `cron(...)`, `rate(...)` or `at(...)`; absent for an association that runs only when
    /// it is created or updated.
    pub expression: Option<String>,
    /// Days after a cron schedule's day that runs start (1 to 6).
    pub offset_days: Option<u8>,
    /// Hours a run may take before SSM cancels it (1 to 24).
    pub duration_hours: Option<u8>,
    /// Whether the first run waits for the schedule instead of starting at creation; only
    /// DescribeAssociation reports it.
    pub apply_only_at_cron_interval: Option<bool>,
}

/// An association's `Overview`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overview {
    pub status: Option<Label>,
    pub detailed_status: Option<Label>,
    /// Its nodes by status, sorted by status.
    pub counts: Vec<(Label, i64)>,
}

/// A status or resource type as SSM reports it: free text (ssm-api.md §5), nearly always one
/// of a few dozen values. Those are held once, in the binary, however many targets and
/// associations carry them; another value is held by each record that has it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Label(Cow<'static, str>);

/// The values of ssm-api.md §5 (statuses, detailed statuses, resource types).
const KNOWN_LABELS: &[&str] = &[
    "",
    "Success",
    "Failed",
    "TimedOut",
    "Pending",
    "InProgress",
    "Cancelled",
    "Cancelling",
    "Skipped",
    "Delayed",
    "Queued",
    "Waiting",
    "Associated",
    "Creating",
    "Undeliverable",
    "DeliveryTimedOut",
    "ExecutionTimedOut",
    "Terminated",
    "StuckAtInProgress",
    "UnsupportedAgent",
    "CompletedWithSuccess",
    "CompletedWithFailure",
    "Exited",
    "ManagedInstance",
    "AWS::EC2::Instance",
];

impl Label {
    pub fn new(text: &str) -> Label {
        match KNOWN_LABELS.iter().find(|known| **known == text) {
            Some(known) => Label(Cow::Borrowed(known)),
            None => Label(Cow::Owned(text.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Label {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Label {
    fn from(text: &str) -> Label {
        Label::new(text)
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The failures a node's agent reports (ssm-api.md §5.1); a target in one is named by
/// `failed_targets` ("failed or timed-out", docs/metrics.md).
const AGENT_FAILED: &[&str] = &["Failed", "TimedOut"];

/// Final statuses that are failures: the agent's, and those of Run Command and Automation.
pub const FAILED: &[&str] = &[
    "Failed",
    "TimedOut",
    "CompletedWithFailure",
    "ExecutionTimedOut",
    "DeliveryTimedOut",
    "Undeliverable",
];

/// Final statuses that are not failures.
const ENDED: &[&str] = &[
    "Success",
    "Cancelled",
    "Skipped",
    "Terminated",
    "CompletedWithSuccess",
    "Rejected",
];

/// Whether an execution (or target) in `status` has finished, after which its targets are
/// taken not to change (ssm-api.md §6.3): anything else counts as running.
pub fn finished(status: Option<&str>) -> bool {
    status.is_some_and(|s| FAILED.contains(&s) || ENDED.contains(&s))
}

/// Whether an execution in `status` failed.
pub fn failed(status: Option<&str>) -> bool {
    status.is_some_and(|s| FAILED.contains(&s))
}

/// Whether a target in `status` failed as its agent reports it.
pub fn target_failed(status: Option<&str>) -> bool {
    status.is_some_and(|s| AGENT_FAILED.contains(&s))
}

/// One run of an association, from DescribeAssociationExecutions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub execution_id: String,
    pub status: Option<Label>,
    pub detailed_status: Option<Label>,
    pub created_time: Option<SystemTime>,
    /// The API's summary string, such as `{Failed=1, Success=2}`; opaque to us.
    pub resource_count_by_status: Option<String>,
}

/// The fields of an execution target that we count by, and its ID for naming failed ones;
/// the rest is never kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub resource_id: Option<String>,
    pub status: Option<String>,
    pub detailed_status: Option<String>,
    pub resource_type: Option<String>,
}

/// What narrows ListAssociations server-side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssociationQuery {
    pub document_name: Option<String>,
}

/// Which executions DescribeAssociationExecutions should return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionQuery {
    /// All of them, newest first as far as the API has ever been seen to order them.
    All,
    /// Only this one (an `ExecutionId EQUAL` filter).
    Id(String),
    /// Only those with this status (a `Status EQUAL` filter).
    Status(&'static str),
    /// Only those created after this time, to the second (a `CreatedTime GREATER_THAN`
    /// filter): may include executions of that same second.
    CreatedAfter(SystemTime),
}

/// The SSM operations a poll cycle needs, one page per call.
///
/// Implementations make exactly one API operation per method call (with the SDK's retries
/// inside it), so callers can count calls.
pub trait Ssm: Send + Sync {
    fn list_associations(
        &self,
        query: &AssociationQuery,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<Association>, SsmError>> + Send;

    fn describe_association(
        &self,
        association_id: &str,
    ) -> impl Future<Output = Result<Association, SsmError>> + Send;

    fn describe_association_executions(
        &self,
        association_id: &str,
        query: &ExecutionQuery,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<Execution>, SsmError>> + Send;

    fn describe_association_execution_targets(
        &self,
        association_id: &str,
        execution_id: &str,
        filters: &[TargetFilter],
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<Target>, SsmError>> + Send;
}

/// A shared source is a source: tests keep a handle on the fake they hand to the scheduler.
impl<T: Ssm> Ssm for std::sync::Arc<T> {
    fn list_associations(
        &self,
        query: &AssociationQuery,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<Association>, SsmError>> + Send {
        (**self).list_associations(query, next_token)
    }

    fn describe_association(
        &self,
        association_id: &str,
    ) -> impl Future<Output = Result<Association, SsmError>> + Send {
        (**self).describe_association(association_id)
    }

    fn describe_association_executions(
        &self,
        association_id: &str,
        query: &ExecutionQuery,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<Execution>, SsmError>> + Send {
        (**self).describe_association_executions(association_id, query, next_token)
    }

    fn describe_association_execution_targets(
        &self,
        association_id: &str,
        execution_id: &str,
        filters: &[TargetFilter],
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<Target>, SsmError>> + Send {
        (**self).describe_association_execution_targets(
            association_id,
            execution_id,
            filters,
            next_token,
        )
    }
}

/// The operations, as a closed set for metric labels and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    ListAssociations,
    DescribeAssociation,
    DescribeAssociationExecutions,
    DescribeAssociationExecutionTargets,
}

impl Operation {
    pub const ALL: [Operation; 4] = [
        Operation::ListAssociations,
        Operation::DescribeAssociation,
        Operation::DescribeAssociationExecutions,
        Operation::DescribeAssociationExecutionTargets,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::ListAssociations => "ListAssociations",
            Operation::DescribeAssociation => "DescribeAssociation",
            Operation::DescribeAssociationExecutions => "DescribeAssociationExecutions",
            Operation::DescribeAssociationExecutionTargets => "DescribeAssociationExecutionTargets",
        }
    }
}

/// Why an SSM call failed, after the SDK's retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsmError {
    #[error("association does not exist")]
    AssociationDoesNotExist,
    #[error("association execution does not exist")]
    ExecutionDoesNotExist,
    #[error("invalid next token")]
    InvalidNextToken,
    #[error("throttled: {message}")]
    Throttled { message: String },
    /// A 4xx answer other than the ones above: denied access, bad credentials, validation.
    #[error("rejected with {code}: {message}")]
    Rejected { code: String, message: String },
    /// A 5xx answer, or an error code we cannot tell apart.
    #[error("service error {code}: {message}")]
    Service { code: String, message: String },
    #[error("timed out: {0}")]
    Timeout(String),
    /// Connect, DNS, TLS, reset: no answer came back.
    #[error("no response: {0}")]
    Network(String),
    /// An answer came back that could not be read.
    #[error("unreadable response: {0}")]
    Response(String),
    /// No credentials to sign with: a role that cannot be assumed, an empty chain.
    #[error("no credentials: {0}")]
    Credentials(String),
    /// Region or other client setup that keeps any call from being sent.
    #[error("cannot send request: {0}")]
    Setup(String),
}

impl SsmError {
    /// A closed set of outcome names, safe as metric label values.
    pub fn kind(&self) -> &'static str {
        match self {
            SsmError::AssociationDoesNotExist | SsmError::ExecutionDoesNotExist => "not_found",
            SsmError::InvalidNextToken => "invalid_token",
            SsmError::Throttled { .. } => "throttled",
            SsmError::Rejected { .. } => "client_error",
            SsmError::Service { .. } => "server_error",
            SsmError::Timeout(_) => "timeout",
            SsmError::Network(_) => "network_error",
            SsmError::Response(_) => "invalid_response",
            SsmError::Credentials(_) => "credentials_error",
            SsmError::Setup(_) => "setup_error",
        }
    }
}
