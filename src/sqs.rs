//! The SQS boundary: a narrow trait over the two queue operations the events need, and the
//! plain records they return. Only `sqs/aws.rs` names an `aws_sdk_sqs` type; everything else
//! sees [`Queue`], [`Message`], [`DeleteOutcome`] and [`SqsError`].

pub mod aws;

use std::future::Future;
use std::time::Duration;

/// The most messages one ReceiveMessage returns and one DeleteMessageBatch takes.
pub const MAX_MESSAGES: i32 = 10;

/// The longest wait SQS allows a ReceiveMessage (`WaitTimeSeconds` 20).
pub const LONG_POLL: Duration = Duration::from_secs(20);

/// The time a queue call may take beyond its long poll's wait, retries included: a hung queue
/// shows as down, and a hung delete holds up the next receive, for no longer than this.
pub const CALL_MARGIN: Duration = Duration::from_secs(5);

/// The largest ReceiveMessage answer read (by its Content-Length). EventBridge events are at
/// most 256 KB, so ten of them, JSON-escaped, fit; a queue whose messages are larger (SQS
/// allows 1 MiB) holds no events, and its answer is refused before it takes memory.
pub const MAX_RECEIVE_BYTES: u64 = 4 << 20;

/// A message as ReceiveMessage hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub message_id: String,
    /// What deletes this delivery of the message; a later delivery gets another.
    pub receipt_handle: String,
    pub body: String,
}

/// One entry of a DeleteMessageBatch that SQS did not delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteFailure {
    /// The entry's ID, as the caller gave it.
    pub id: String,
    pub code: String,
    pub message: String,
    /// True when the request was at fault (a stale or malformed receipt handle), false when
    /// SQS was: only the latter is worth retrying.
    pub sender_fault: bool,
}

/// What a DeleteMessageBatch did, entry by entry: every entry is in exactly one list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// IDs of the entries deleted.
    pub deleted: Vec<String>,
    pub failed: Vec<DeleteFailure>,
}

/// The SQS operations the events need.
///
/// Implementations make exactly one API operation per method call (with the SDK's retries
/// inside it), so callers can count calls.
pub trait Queue: Send + Sync {
    /// ReceiveMessage: up to `max_messages` (1 to [`MAX_MESSAGES`]) messages, waiting up to
    /// `wait` (whole seconds, at most [`LONG_POLL`]) for the first to arrive.
    fn receive(
        &self,
        queue_url: &str,
        wait: Duration,
        max_messages: i32,
    ) -> impl Future<Output = Result<Vec<Message>, SqsError>> + Send;

    /// DeleteMessageBatch of `(id, receipt_handle)` entries: 1 to [`MAX_MESSAGES`] of them,
    /// IDs distinct and made of `[A-Za-z0-9_-]`, as SQS requires.
    fn delete(
        &self,
        queue_url: &str,
        entries: &[(String, String)],
    ) -> impl Future<Output = Result<DeleteOutcome, SqsError>> + Send;
}

/// A shared queue is a queue: tests keep a handle on the fake they hand out.
impl<T: Queue> Queue for std::sync::Arc<T> {
    fn receive(
        &self,
        queue_url: &str,
        wait: Duration,
        max_messages: i32,
    ) -> impl Future<Output = Result<Vec<Message>, SqsError>> + Send {
        (**self).receive(queue_url, wait, max_messages)
    }

    fn delete(
        &self,
        queue_url: &str,
        entries: &[(String, String)],
    ) -> impl Future<Output = Result<DeleteOutcome, SqsError>> + Send {
        (**self).delete(queue_url, entries)
    }
}

/// Why an SQS call failed, after the SDK's retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqsError {
    /// The queue URL names no queue (`QueueDoesNotExist`).
    #[error("queue does not exist")]
    QueueDoesNotExist,
    #[error("throttled: {message}")]
    Throttled { message: String },
    /// The caller may not use the queue, or its KMS key.
    #[error("access denied with {code}: {message}")]
    AccessDenied { code: String, message: String },
    /// A 4xx answer other than the ones above: bad credentials, validation.
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
    /// An answer larger than [`MAX_RECEIVE_BYTES`], refused unread.
    #[error("answer of {bytes} bytes is larger than the {limit} read")]
    TooLarge { bytes: u64, limit: u64 },
    /// No credentials to sign with: a role that cannot be assumed, an empty chain.
    #[error("no credentials: {0}")]
    Credentials(String),
    /// Region or other client setup that keeps any call from being sent.
    #[error("cannot send request: {0}")]
    Setup(String),
}

impl SqsError {
    /// A closed set of outcome names, safe as metric label values.
    pub fn kind(&self) -> &'static str {
        match self {
            SqsError::QueueDoesNotExist => "not_found",
            SqsError::Throttled { .. } => "throttled",
            SqsError::AccessDenied { .. } => "access_denied",
            SqsError::Rejected { .. } => "client_error",
            SqsError::Service { .. } => "server_error",
            SqsError::Timeout(_) => "timeout",
            SqsError::Network(_) => "network_error",
            SqsError::Response(_) => "invalid_response",
            SqsError::TooLarge { .. } => "too_large",
            SqsError::Credentials(_) => "credentials_error",
            SqsError::Setup(_) => "setup_error",
        }
    }
}
