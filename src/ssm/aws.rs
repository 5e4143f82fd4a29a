//! [`Ssm`] over the real `aws-sdk-ssm` client. The only file that names an `aws_sdk_ssm` type:
//! SDK shapes become our records here, and SDK errors become [`SsmError`].

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ssm::config::http::HttpResponse;
use aws_sdk_ssm::config::retry::RetryPartition;
use aws_sdk_ssm::config::{Credentials, Region};
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssm::types as sdk;

use super::{
    Association, AssociationQuery, Execution, ExecutionQuery, Label, MAX_RESULTS, Overview, Page,
    ScheduleFields, Ssm, SsmError, Target, TargetFilter,
};

/// How to build the client. Everything left `None` comes from the standard aws-config chain.
/// Its `Debug` shows the access key ID of static credentials but never the secret.
#[derive(Clone)]
pub struct ClientOptions {
    pub region: Option<String>,
    /// Takes precedence over `AWS_ENDPOINT_URL_SSM` and `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// Fixed credentials instead of the chain: for the demo and tests, which talk to the
    /// simulator and must never probe instance metadata or read the host's profile.
    pub static_credentials: Option<(String, String)>,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// The first retry waits up to this long (full jitter), doubling up to 20 s.
    pub initial_backoff: Duration,
    /// The whole call, every retry included.
    pub operation_timeout: Duration,
    /// The SDK's adaptive retry mode: a client-side rate that slows down after throttling.
    pub adaptive: bool,
    /// The SDK keeps its retry quota and adaptive rate per partition, process-wide; clients
    /// of different accounts, or of tests, must not drain each other's.
    pub retry_partition: String,
    /// A role to assume through STS, with the chain's (or the static) credentials; the SSM
    /// client then signs with the role's.
    pub role: Option<Role>,
    /// Overrides the STS endpoint roles are assumed through.
    pub sts_endpoint_url: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            region: None,
            endpoint_url: None,
            static_credentials: None,
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
            operation_timeout: Duration::from_secs(30),
            adaptive: false,
            retry_partition: "ssm-association-exporter".to_owned(),
            role: None,
            sts_endpoint_url: None,
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ClientOptions {
            region,
            endpoint_url,
            static_credentials,
            max_attempts,
            initial_backoff,
            operation_timeout,
            adaptive,
            retry_partition,
            role,
            sts_endpoint_url,
        } = self;
        f.debug_struct("ClientOptions")
            .field("region", region)
            .field("endpoint_url", &endpoint_url.as_deref().map(redacted_url))
            .field(
                "static_credentials",
                &static_credentials
                    .as_ref()
                    .map(|(key_id, _)| (key_id, "***")),
            )
            .field("max_attempts", max_attempts)
            .field("initial_backoff", initial_backoff)
            .field("operation_timeout", operation_timeout)
            .field("adaptive", adaptive)
            .field("retry_partition", retry_partition)
            .field("role", role)
            .field(
                "sts_endpoint_url",
                &sts_endpoint_url.as_deref().map(redacted_url),
            )
            .finish()
    }
}

/// A role assumed through STS, as `AssumeRole` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
}

/// `url` with its user information, if any, replaced by `***`: an endpoint may carry
/// credentials (`http://user:pass@host`), and every URL the exporter prints goes through here.
pub fn redacted_url(url: &str) -> std::borrow::Cow<'_, str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority = url[start..]
        .find(['/', '?', '#'])
        .map_or(&url[start..], |end| &url[start..start + end]);
    match authority.rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]).into(),
        None => url.into(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no AWS region: set `region` in the config file, or AWS_REGION / AWS_DEFAULT_REGION, or a profile region"
    )]
    NoRegion,
}

/// The SSM client; cheap to clone, every clone shares one connection pool.
#[derive(Debug, Clone)]
pub struct AwsSsm {
    client: aws_sdk_ssm::Client,
}

impl AwsSsm {
    /// The region the client calls, as the configuration or the chain named it.
    pub fn region(&self) -> Option<String> {
        self.client.config().region().map(ToString::to_string)
    }

    /// Loads the aws-config chain and builds the SSM client; nothing is sent yet.
    ///
    /// # Errors
    ///
    /// [`ClientError::NoRegion`] when neither the options nor the chain name a region.
    pub async fn connect(options: &ClientOptions) -> Result<Self, ClientError> {
        let shared = shared_config(options).await?;
        let mut builder = aws_sdk_ssm::config::Builder::from(&shared)
            .retry_partition(RetryPartition::new(options.retry_partition.clone()));
        if let Some(url) = &options.endpoint_url {
            builder = builder.endpoint_url(url.clone());
        }
        Ok(AwsSsm {
            client: aws_sdk_ssm::Client::from_conf(builder.build()),
        })
    }
}

/// The aws-config chain of a pair, with its role assumed when the options name one: what
/// every client of the pair (SSM, and SQS for events) is built from.
///
/// # Errors
///
/// [`ClientError::NoRegion`] when neither the options nor the chain name a region.
pub(crate) async fn shared_config(options: &ClientOptions) -> Result<SdkConfig, ClientError> {
    let shared = loader(options).load().await;
    if shared.region().is_none() {
        return Err(ClientError::NoRegion);
    }
    let Some(role) = &options.role else {
        return Ok(shared);
    };
    // STS in the pair's own region, with the base credentials (static, or the chain's). An
    // endpoint given to the loader beats the environment's, as `endpoint_url` does for SSM.
    let sts = match &options.sts_endpoint_url {
        Some(url) => loader(options).endpoint_url(url.clone()).load().await,
        None => shared.clone(),
    };
    let mut provider = AssumeRoleProvider::builder(role.arn.clone())
        .session_name(role.session_name.clone())
        .configure(&sts);
    if let Some(region) = shared.region() {
        provider = provider.region(region.clone());
    }
    if let Some(id) = &role.external_id {
        provider = provider.external_id(id.clone());
    }
    // Each client caches what the role yields and asks again before it expires.
    let provider = SharedCredentialsProvider::new(provider.build().await);
    Ok(shared.into_builder().credentials_provider(provider).build())
}

/// The aws-config loader for `options`: retries, timeout, region, fixed credentials.
fn loader(options: &ClientOptions) -> aws_config::ConfigLoader {
    let retry = if options.adaptive {
        RetryConfig::adaptive()
    } else {
        RetryConfig::standard()
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            retry
                .with_max_attempts(options.max_attempts)
                .with_initial_backoff(options.initial_backoff),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(options.operation_timeout)
                .build(),
        );
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some((key, secret)) = &options.static_credentials {
        loader = loader.credentials_provider(Credentials::new(
            key.clone(),
            secret.clone(),
            None,
            None,
            "ssm-association-exporter-static",
        ));
    }
    loader
}

impl Ssm for AwsSsm {
    async fn list_associations(
        &self,
        query: &AssociationQuery,
        next_token: Option<String>,
    ) -> Result<Page<Association>, SsmError> {
        let mut request = self
            .client
            .list_associations()
            .max_results(MAX_RESULTS)
            .set_next_token(next_token);
        if let Some(document) = &query.document_name {
            let filter = sdk::AssociationFilter::builder()
                .key(sdk::AssociationFilterKey::Name)
                .value(document)
                .build()
                .map_err(|e| SsmError::Setup(e.to_string()))?;
            request = request.association_filter_list(filter);
        }
        let out = request.send().await.map_err(classify)?;
        Ok(Page {
            items: out.associations().iter().map(association).collect(),
            next_token: token(out.next_token()),
        })
    }

    async fn describe_association(&self, association_id: &str) -> Result<Association, SsmError> {
        let out = self
            .client
            .describe_association()
            .association_id(association_id)
            .send()
            .await
            .map_err(classify)?;
        let d = out.association_description().ok_or_else(|| {
            SsmError::Response("DescribeAssociation answered without AssociationDescription".into())
        })?;
        Ok(Association {
            association_id: d.association_id().unwrap_or(association_id).to_owned(),
            association_name: d.association_name().map(str::to_owned),
            document_name: d.name().map(str::to_owned),
            document_version: d.document_version().map(str::to_owned),
            association_version: d.association_version().map(str::to_owned),
            last_execution_date: d.last_execution_date().and_then(time),
            overview: d.overview().map(overview),
            schedule: ScheduleFields {
                expression: d.schedule_expression().map(str::to_owned),
                offset_days: d.schedule_offset().and_then(small),
                duration_hours: d.duration().and_then(small),
                apply_only_at_cron_interval: Some(d.apply_only_at_cron_interval()),
            },
            created: d.date().and_then(time),
            last_successful_execution_date: d.last_successful_execution_date().and_then(time),
        })
    }

    async fn describe_association_executions(
        &self,
        association_id: &str,
        query: &ExecutionQuery,
        next_token: Option<String>,
    ) -> Result<Page<Execution>, SsmError> {
        let mut request = self
            .client
            .describe_association_executions()
            .association_id(association_id)
            .max_results(MAX_RESULTS)
            .set_next_token(next_token);
        let equal = sdk::AssociationFilterOperatorType::Equal;
        let filter = match query {
            ExecutionQuery::All => None,
            ExecutionQuery::Id(id) => Some((
                sdk::AssociationExecutionFilterKey::ExecutionId,
                id.clone(),
                equal,
            )),
            ExecutionQuery::Status(status) => Some((
                sdk::AssociationExecutionFilterKey::Status,
                (*status).to_owned(),
                equal,
            )),
            ExecutionQuery::CreatedAfter(at) => Some((
                sdk::AssociationExecutionFilterKey::CreatedTime,
                iso_seconds(*at),
                sdk::AssociationFilterOperatorType::GreaterThan,
            )),
        };
        if let Some((key, value, kind)) = filter {
            let filter = sdk::AssociationExecutionFilter::builder()
                .key(key)
                .value(value)
                .r#type(kind)
                .build()
                .map_err(|e| SsmError::Setup(e.to_string()))?;
            request = request.filters(filter);
        }
        let out = request.send().await.map_err(classify)?;
        let items = out
            .association_executions()
            .iter()
            .filter_map(|e| {
                Some(Execution {
                    // An execution without an ID cannot be asked for its targets.
                    execution_id: e.execution_id()?.to_owned(),
                    status: e.status().map(Label::new),
                    detailed_status: e.detailed_status().map(Label::new),
                    created_time: e.created_time().and_then(time),
                    resource_count_by_status: e.resource_count_by_status().map(str::to_owned),
                })
            })
            .collect();
        Ok(Page {
            items,
            next_token: token(out.next_token()),
        })
    }

    async fn describe_association_execution_targets(
        &self,
        association_id: &str,
        execution_id: &str,
        filters: &[TargetFilter],
        next_token: Option<String>,
    ) -> Result<Page<Target>, SsmError> {
        let mut request = self
            .client
            .describe_association_execution_targets()
            .association_id(association_id)
            .execution_id(execution_id)
            .max_results(MAX_RESULTS)
            .set_next_token(next_token);
        for f in filters {
            let filter = sdk::AssociationExecutionTargetsFilter::builder()
                .key(sdk::AssociationExecutionTargetsFilterKey::from(
                    f.key.as_str(),
                ))
                .value(f.value.as_str())
                .build()
                .map_err(|e| SsmError::Setup(e.to_string()))?;
            request = request.filters(filter);
        }
        let out = request.send().await.map_err(classify)?;
        Ok(Page {
            items: out
                .association_execution_targets()
                .iter()
                .map(|t| Target {
                    resource_id: t.resource_id().map(str::to_owned),
                    status: t.status().map(str::to_owned),
                    detailed_status: t.detailed_status().map(str::to_owned),
                    resource_type: t.resource_type().map(str::to_owned),
                })
                .collect(),
            next_token: token(out.next_token()),
        })
    }
}

fn association(a: &sdk::Association) -> Association {
    Association {
        association_id: a.association_id().unwrap_or_default().to_owned(),
        association_name: a.association_name().map(str::to_owned),
        document_name: a.name().map(str::to_owned),
        document_version: a.document_version().map(str::to_owned),
        association_version: a.association_version().map(str::to_owned),
        last_execution_date: a.last_execution_date().and_then(time),
        overview: a.overview().map(overview),
        schedule: ScheduleFields {
            expression: a.schedule_expression().map(str::to_owned),
            offset_days: a.schedule_offset().and_then(small),
            duration_hours: a.duration().and_then(small),
            apply_only_at_cron_interval: None,
        },
        created: None,
        last_successful_execution_date: None,
    }
}

/// A schedule offset or duration: SSM's model bounds them to 1..6 and 1..24 hours; a value
/// out of any sane range is taken as absent rather than wrapped.
fn small(v: i32) -> Option<u8> {
    u8::try_from(v).ok().filter(|v| *v > 0)
}

fn overview(o: &sdk::AssociationOverview) -> Overview {
    Overview {
        status: o.status().map(Label::new),
        detailed_status: o.detailed_status().map(Label::new),
        counts: {
            let mut counts: Vec<(Label, i64)> = o
                .association_status_aggregated_count()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (Label::new(k), i64::from(*v)))
                        .collect()
                })
                .unwrap_or_default();
            counts.sort_unstable();
            counts
        },
    }
}

/// ListAssociations documents `""` as the end of the listing; treat it like an absent token.
fn token(t: Option<&str>) -> Option<String> {
    t.filter(|t| !t.is_empty()).map(str::to_owned)
}

/// A time as the `CreatedTime` filter's examples write it (`2019-02-18T16:00:00Z`), to the
/// second, rounded down.
fn iso_seconds(at: SystemTime) -> String {
    let seconds = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    aws_sdk_ssm::primitives::DateTime::from_secs(i64::try_from(seconds).unwrap_or(i64::MAX))
        .fmt(aws_sdk_ssm::primitives::DateTimeFormat::DateTime)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

fn time(t: &aws_sdk_ssm::primitives::DateTime) -> Option<SystemTime> {
    SystemTime::try_from(*t).ok()
}

/// Error codes that mean "slow down", as the SDK's own retry classifier lists them.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Whether the call failed because no credentials could be had: a role that cannot be
/// assumed, an empty chain. The SDK reports it as a dispatch failure, like a network error.
fn from_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    find_source::<CredentialsError>(err).is_some()
}

/// The first error of type `T` in `err` and its sources: what an SDK error wraps.
pub(crate) fn find_source<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        source = e.source();
    }
    None
}

/// The most of an error's text that goes into an [`SsmError`], which becomes a log line per
/// failure: an unreadable response may be megabytes.
const MAX_ERROR_TEXT: usize = 1024;

/// `text` cut to [`MAX_ERROR_TEXT`] bytes at a character boundary, saying how much was cut.
fn cut(text: &str) -> String {
    if text.len() <= MAX_ERROR_TEXT {
        return text.to_owned();
    }
    let end = (0..=MAX_ERROR_TEXT)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}… ({} more bytes cut)", &text[..end], text.len() - end)
}

/// The error and its sources, without the SDK's `Debug` form that `DisplayErrorContext` adds,
/// which holds the raw response: its headers and its whole body.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// What an SDK error says, for an error's text: the error and its sources, and for an answer
/// that could not be read its status and body (what tells a proxy's page from a bug), cut to
/// [`MAX_ERROR_TEXT`]. Any service's client errors have this type.
fn error_text<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: std::error::Error + Send + Sync + 'static,
{
    match err {
        SdkError::ResponseError(response) => {
            let raw = response.raw();
            let body = raw
                .body()
                .bytes()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            cut(&format!(
                "{}; HTTP {}, body: {body}",
                chain(err),
                raw.status().as_u16()
            ))
        }
        _ => cut(&chain(err)),
    }
}

/// An SDK call's error as every client reads it, before each names it in its own error type:
/// the one place that tells the SDK's kinds of failure apart.
pub(crate) enum Failure {
    /// No credentials could be had: a role that cannot be assumed, an empty chain.
    Credentials(String),
    /// The service answered with an error: its code (`""` if none), message and HTTP status,
    /// and the whole error's text.
    Answered {
        code: String,
        message: String,
        status: u16,
        text: String,
    },
    Timeout(String),
    /// Nothing could be sent: the request itself was wrong.
    Setup(String),
    /// No answer came back: connect, DNS, TLS, reset.
    Network(String),
    /// A 5xx whose body is not the service's (a load balancer's page): still the service
    /// failing.
    ServerPage {
        status: u16,
        text: String,
    },
    /// An answer that could not be read.
    Unreadable(String),
    Unknown(String),
}

pub(crate) fn failure<E>(err: SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = error_text(&err);
    if from_credentials(&err) {
        return Failure::Credentials(text);
    }
    match &err {
        SdkError::ServiceError(service) => Failure::Answered {
            code: service.err().code().unwrap_or_default().to_owned(),
            message: service.err().message().unwrap_or_default().to_owned(),
            status: service.raw().status().as_u16(),
            text,
        },
        SdkError::TimeoutError(_) => Failure::Timeout(text),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => Failure::Timeout(text),
        SdkError::DispatchFailure(failure) if failure.is_user() => Failure::Setup(text),
        SdkError::DispatchFailure(_) => Failure::Network(text),
        SdkError::ResponseError(response) if response.raw().status().as_u16() >= 500 => {
            Failure::ServerPage {
                status: response.raw().status().as_u16(),
                text,
            }
        }
        SdkError::ResponseError(_) => Failure::Unreadable(text),
        SdkError::ConstructionFailure(_) => Failure::Setup(text),
        _ => Failure::Unknown(text),
    }
}

fn classify<E>(err: SdkError<E, HttpResponse>) -> SsmError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match failure(err) {
        Failure::Credentials(text) => SsmError::Credentials(text),
        Failure::Answered {
            code,
            message,
            status,
            ..
        } => match code.as_str() {
            "AssociationDoesNotExist" => SsmError::AssociationDoesNotExist,
            "AssociationExecutionDoesNotExist" => SsmError::ExecutionDoesNotExist,
            "InvalidNextToken" => SsmError::InvalidNextToken,
            c if THROTTLING_CODES.contains(&c) => SsmError::Throttled { message },
            "" => SsmError::Service {
                code: format!("HTTP {status}"),
                message,
            },
            _ if status >= 500 => SsmError::Service { code, message },
            _ => SsmError::Rejected { code, message },
        },
        Failure::Timeout(text) => SsmError::Timeout(text),
        Failure::Setup(text) => SsmError::Setup(text),
        Failure::Network(text) => SsmError::Network(text),
        Failure::ServerPage { status, text } => SsmError::Service {
            code: format!("HTTP {status}"),
            message: text,
        },
        Failure::Unreadable(text) => SsmError::Response(text),
        Failure::Unknown(text) => SsmError::Service {
            code: "unknown".into(),
            message: text,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ssm::operation::list_associations::ListAssociationsError;

    /// Options print for logs and panics without the secret of static credentials, or the
    /// user information of an endpoint.
    #[test]
    fn debug_keeps_the_secret_out() {
        let options = ClientOptions {
            region: Some("eu-west-1".to_owned()),
            endpoint_url: Some("http://user:pass@127.0.0.1:4566".to_owned()),
            static_credentials: Some(("AKIDSHOWN".to_owned(), "never-printed".to_owned())),
            ..ClientOptions::default()
        };
        let shown = format!("{options:?}");
        assert!(!shown.contains("never-printed"), "{shown}");
        assert!(!shown.contains("pass"), "{shown}");
        for field in [
            "region: Some(\"eu-west-1\")",
            "endpoint_url: Some(\"http://***@127.0.0.1:4566\")",
            "static_credentials: Some((\"AKIDSHOWN\", \"***\"))",
            "max_attempts: 3",
            "initial_backoff: 1s",
            "operation_timeout: 30s",
            "adaptive: false",
            "retry_partition: \"ssm-association-exporter\"",
            "role: None",
            "sts_endpoint_url: None",
        ] {
            assert!(shown.contains(field), "{field} in {shown}");
        }
    }

    /// An unreadable answer becomes an error of about 1 KiB, without the response's headers.
    #[test]
    fn an_unreadable_response_is_cut_to_a_kib() {
        let body = format!("<html>{}</html>", "é".repeat(1_000_000));
        let mut raw = HttpResponse::new(200.try_into().expect("a status"), body.clone().into());
        raw.headers_mut()
            .insert("x-secret-header", "header-value-never-logged");
        let err: SdkError<ListAssociationsError, HttpResponse> =
            SdkError::response_error("failed to parse JSON", raw);
        let SsmError::Response(message) = classify(err) else {
            panic!("not a response error");
        };
        let head = "response error: failed to parse JSON; HTTP 200, body: <html>";
        // 60 bytes, then 482 two-byte characters: 1,024 bytes, cut at a character boundary.
        assert_eq!(
            message,
            format!("{head}{}… (1999043 more bytes cut)", "é".repeat(482))
        );
        assert!(!message.contains("header-value-never-logged"));
    }
}
