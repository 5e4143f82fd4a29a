//! [`Queue`] over the real `aws-sdk-sqs` client. The only file that names an `aws_sdk_sqs`
//! type: SDK shapes become our records here, and SDK errors become [`SqsError`].

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::config::retry::RetryPartition;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;

use aws_sdk_sqs::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};

use super::{
    CALL_MARGIN, DeleteFailure, DeleteOutcome, MAX_RECEIVE_BYTES, Message, Queue, SqsError,
};
use crate::ssm::aws::{ClientError, ClientOptions, Failure, failure, find_source, shared_config};

/// The SQS client; cheap to clone, every clone shares one connection pool.
#[derive(Debug, Clone)]
pub struct AwsQueue {
    client: aws_sdk_sqs::Client,
}

impl AwsQueue {
    /// Builds the SQS client from the same options as the pair's SSM client: region,
    /// credentials, retries and timeout. `endpoint_url` is SQS's own and beats
    /// `AWS_ENDPOINT_URL_SQS`, which the SDK reads from the loaded config when it is `None`
    /// (`aws_sdk_sqs::config::Builder::from(&SdkConfig)` looks up the `SQS` service key).
    /// Nothing is sent yet.
    ///
    /// # Errors
    ///
    /// [`ClientError::NoRegion`] when neither the options nor the chain name a region.
    pub async fn connect(
        options: &ClientOptions,
        endpoint_url: Option<String>,
    ) -> Result<Self, ClientError> {
        let shared = shared_config(options).await?;
        let retry = if options.adaptive {
            RetryConfig::adaptive()
        } else {
            RetryConfig::standard()
        };
        // A partition of its own: a throttled queue never spends the pair's SSM retry quota.
        let mut builder = aws_sdk_sqs::config::Builder::from(&shared)
            .retry_config(
                retry
                    .with_max_attempts(options.max_attempts)
                    .with_initial_backoff(options.initial_backoff),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(options.operation_timeout)
                    .build(),
            )
            .retry_partition(RetryPartition::new(format!(
                "{}-sqs",
                options.retry_partition
            )));
        if let Some(url) = endpoint_url {
            builder = builder.endpoint_url(url);
        }
        Ok(AwsQueue {
            client: aws_sdk_sqs::Client::from_conf(builder.build()),
        })
    }
}

impl Queue for AwsQueue {
    async fn receive(
        &self,
        queue_url: &str,
        wait: Duration,
        max_messages: i32,
    ) -> Result<Vec<Message>, SqsError> {
        let seconds = i32::try_from(wait.as_secs()).unwrap_or(i32::MAX);
        // The wait and a margin, retries included, whatever `api.timeout` says: a hung queue
        // must show as down within a long poll's time, not after several.
        let out = self
            .client
            .receive_message()
            .queue_url(queue_url)
            .wait_time_seconds(seconds)
            .max_number_of_messages(max_messages)
            .customize()
            .config_override(
                aws_sdk_sqs::config::Builder::default().timeout_config(within(wait + CALL_MARGIN)),
            )
            .interceptor(BodyLimit(MAX_RECEIVE_BYTES))
            .send()
            .await
            .map_err(|e| match find_source::<Oversized>(&e) {
                Some(Oversized(bytes)) => SqsError::TooLarge {
                    bytes: *bytes,
                    limit: MAX_RECEIVE_BYTES,
                },
                None => classify(e),
            })?;
        out.messages()
            .iter()
            .map(|m| {
                // Without both, a message could be neither told apart nor deleted.
                let (Some(message_id), Some(receipt_handle)) = (m.message_id(), m.receipt_handle())
                else {
                    return Err(SqsError::Response(
                        "ReceiveMessage answered a message without MessageId or ReceiptHandle"
                            .into(),
                    ));
                };
                Ok(Message {
                    message_id: message_id.to_owned(),
                    receipt_handle: receipt_handle.to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                })
            })
            .collect()
    }

    async fn delete(
        &self,
        queue_url: &str,
        entries: &[(String, String)],
    ) -> Result<DeleteOutcome, SqsError> {
        let entries = entries
            .iter()
            .map(|(id, receipt_handle)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(id)
                    .receipt_handle(receipt_handle)
                    .build()
                    .map_err(|e| SqsError::Setup(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The next receive waits for it: bounded as a receive that does not wait is.
        let out = self
            .client
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .customize()
            .config_override(
                aws_sdk_sqs::config::Builder::default().timeout_config(within(CALL_MARGIN)),
            )
            .send()
            .await
            .map_err(classify)?;
        Ok(DeleteOutcome {
            deleted: out.successful().iter().map(|s| s.id().to_owned()).collect(),
            failed: out
                .failed()
                .iter()
                .map(|f| DeleteFailure {
                    id: f.id().to_owned(),
                    code: f.code().to_owned(),
                    message: f.message().unwrap_or_default().to_owned(),
                    sender_fault: f.sender_fault(),
                })
                .collect(),
        })
    }
}

/// A whole call's timeout, retries included.
fn within(limit: Duration) -> TimeoutConfig {
    TimeoutConfig::builder().operation_timeout(limit).build()
}

/// Refuses an answer whose Content-Length exceeds its limit before its body is read: the SDK
/// reads a whole answer into memory before it parses it.
#[derive(Debug)]
struct BodyLimit(u64);

/// The error [`BodyLimit`] stops a call with: the answer's size.
#[derive(Debug, thiserror::Error)]
#[error("answer of {0} bytes refused unread")]
struct Oversized(u64);

impl Intercept for BodyLimit {
    fn name(&self) -> &'static str {
        "BodyLimit"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_sqs::error::BoxError> {
        let length = context
            .response()
            .headers()
            .get("content-length")
            .and_then(|v| v.parse::<u64>().ok());
        match length {
            Some(bytes) if bytes > self.0 => Err(Box::new(Oversized(bytes))),
            _ => Ok(()),
        }
    }
}

/// Codes that mean "slow down". SQS's JSON protocol names its errors by their old query codes
/// (the `x-amzn-query-error` header wins over `__type`), so both forms are listed.
const THROTTLING_CODES: &[&str] = &[
    "RequestThrottled",
    "ThrottlingException",
    "Throttling",
    "KMS.ThrottlingException",
];

/// Codes of a caller that may not use the queue, or the key it is encrypted with.
const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "KMS.AccessDeniedException",
];

fn classify<E>(err: SdkError<E, HttpResponse>) -> SqsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match failure(err) {
        Failure::Credentials(text) => SqsError::Credentials(text),
        Failure::Answered {
            code,
            message,
            status,
            text,
        } => match code.as_str() {
            "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist" => {
                SqsError::QueueDoesNotExist
            }
            c if THROTTLING_CODES.contains(&c) => SqsError::Throttled { message },
            c if ACCESS_DENIED_CODES.contains(&c) => SqsError::AccessDenied { code, message },
            // A 200 whose body is not the output: the SDK reports it as a service error
            // without a code, but the service answered; its answer was unreadable.
            "" if status < 300 => SqsError::Response(text),
            "" => SqsError::Service {
                code: format!("HTTP {status}"),
                message,
            },
            _ if status >= 500 => SqsError::Service { code, message },
            _ => SqsError::Rejected { code, message },
        },
        Failure::Timeout(text) => SqsError::Timeout(text),
        Failure::Setup(text) => SqsError::Setup(text),
        Failure::Network(text) => SqsError::Network(text),
        Failure::ServerPage { status, text } => SqsError::Service {
            code: format!("HTTP {status}"),
            message: text,
        },
        Failure::Unreadable(text) => SqsError::Response(text),
        Failure::Unknown(text) => SqsError::Service {
            code: "unknown".into(),
            message: text,
        },
    }
}
