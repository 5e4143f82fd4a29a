//! The configuration file: YAML in, a validated [`Config`] out. This is the only module that
//! names serde_yaml, and no type past [`load`] can hold an ID or a duration that was not checked.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A whole, validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The AWS region; `None` leaves it to the standard chain (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// Overrides the SSM endpoint (`AWS_ENDPOINT_URL_SSM` does the same from the environment).
    pub endpoint_url: Option<String>,
    pub poll_interval: Duration,
    pub watch: Watch,
    /// A finished execution whose summary has not changed keeps its counts without a re-read
    /// for at most this long; zero re-reads every target every cycle.
    pub full_refresh_interval: Duration,
    /// A cycle's associations not polled by then keep their last values, marked failed.
    pub cycle_timeout: Duration,
    pub api: Api,
    /// Name failed and timed-out targets, at most this many per association; `None` (the
    /// default) only counts them.
    pub failed_targets: Option<usize>,
    /// The share of the associations this replica polls: from flags, not from the file.
    pub shard: Shard,
    /// Accounts and regions to poll, each pair on its own client; empty: one pair, the
    /// default credentials in `region`.
    pub accounts: Vec<Account>,
    /// Overrides the STS endpoint that roles are assumed through (`AWS_ENDPOINT_URL_STS` does
    /// the same from the environment).
    pub sts_endpoint_url: Option<String>,
}

/// One account and the regions polled in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Twelve digits: from the role ARN, or given for the default credentials.
    pub account_id: String,
    /// The role to assume; `None` polls with the default credentials.
    pub role: Option<Role>,
    pub regions: Vec<String>,
    /// SSM endpoints by region, for VPC endpoints and simulators; the rest use the default.
    pub endpoint_urls: std::collections::BTreeMap<String, String>,
}

/// A role assumed through STS, as `AssumeRole` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
}

/// The session name when the configuration gives none: CloudTrail shows it.
pub const DEFAULT_SESSION_NAME: &str = "ssm-association-exporter";

/// Where associations come from, as labels: an account and a region. Series carry it only
/// when the configuration lists `accounts`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Place {
    pub account_id: String,
    pub region: String,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.account_id, self.region)
    }
}

/// One (account, region) pair to poll, with what its client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// `None` without `accounts`: the series then carry no account or region labels.
    pub place: Option<Place>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub role: Option<Role>,
}

/// One of `total` replicas that split the associations between them by a stable hash of the
/// association ID, without talking to each other (as kube-state-metrics shards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub total: u32,
}

impl Shard {
    /// Every association: no sharding.
    pub const ALL: Shard = Shard { index: 0, total: 1 };

    /// # Errors
    ///
    /// A message when `index` is not below `total`, or `total` is 0.
    pub fn new(index: u32, total: u32) -> Result<Shard, String> {
        if total == 0 {
            return Err("--total-shards must be at least 1".to_owned());
        }
        if index >= total {
            return Err(format!(
                "--shard {index} is not below --total-shards {total}: shards count from 0"
            ));
        }
        Ok(Shard { index, total })
    }

    /// Whether this replica polls the association. The hash (FNV-1a of the lower-case ID) is
    /// fixed: every replica, of every version, agrees on who polls what.
    pub fn owns(&self, association_id: &str) -> bool {
        if self.total <= 1 {
            return true;
        }
        let hash = association_id
            .bytes()
            .map(|b| b.to_ascii_lowercase())
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        hash % u64::from(self.total) == u64::from(self.index)
    }
}

/// How the exporter treats the SSM API of one account and region.
#[derive(Debug, Clone, PartialEq)]
pub struct Api {
    /// The steady rate of calls, with `burst` of them at once after a quiet spell.
    pub requests_per_second: f64,
    pub burst: u32,
    /// Calls in flight at once; also how many associations are polled side by side.
    pub max_in_flight: usize,
    /// Attempts per call, the first included, with the SDK's backoff and jitter between.
    pub max_attempts: u32,
    pub retry_mode: RetryMode,
    /// One call, every attempt included.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryMode {
    /// Exponential backoff with full jitter.
    Standard,
    /// Standard, plus a client-side rate that slows down after throttling answers.
    Adaptive,
}

impl Default for Api {
    /// Conservative: SSM's Describe and List limits are unpublished and low, shared by every
    /// tool of the account and region.
    fn default() -> Self {
        Api {
            requests_per_second: 5.0,
            burst: 10,
            max_in_flight: 4,
            max_attempts: 5,
            retry_mode: RetryMode::Standard,
            timeout: Duration::from_secs(30),
        }
    }
}

impl Eq for Api {}

/// Which associations a cycle polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    /// Exactly these, in the order of the file.
    Explicit(Vec<WatchedAssociation>),
    /// Every association ListAssociations returns, narrowed by the filter.
    Discover(Discovery),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedAssociation {
    pub association_id: AwsId,
    /// Pins the exporter to this one execution instead of the latest.
    pub execution_id: Option<AwsId>,
    /// Sent as the API's `Filters`: only matching targets are counted.
    pub filters: Vec<TargetFilter>,
    /// Which account and region hold it; set exactly when the configuration lists `accounts`.
    pub place: Option<Place>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// Kept client-side: the API's `AssociationName` filter is documented as a match, not a prefix.
    pub name_prefix: Option<String>,
    /// Sent as the `Name` filter of ListAssociations.
    pub document_name: Option<String>,
}

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

/// An association or execution ID: a UUID, as the API's pattern requires, kept in lower case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AwsId(String);

impl AwsId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AwsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `s` matches the API's ID pattern, `[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}`.
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
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

/// Parses a Prometheus-style duration: one or more `<integer><unit>` with units `ms s m h d`,
/// largest first.
///
/// # Errors
///
/// A message that quotes the input and says what form is expected.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("{s:?} is not a duration like 500ms, 30s, 5m, 1h30m");
    if s.is_empty() {
        return Err(invalid());
    }
    let mut rest = s;
    let mut total = Duration::ZERO;
    let mut last_unit_ms = u64::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let unit_len = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        if digits == 0 || unit_len == 0 {
            return Err(invalid());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        let unit_ms = match &rest[digits..digits + unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(invalid()),
        };
        if unit_ms >= last_unit_ms {
            return Err(invalid());
        }
        last_unit_ms = unit_ms;
        let ms = number.checked_mul(unit_ms).ok_or_else(invalid)?;
        total = total
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(invalid)?;
        rest = &rest[digits + unit_len..];
    }
    Ok(total)
}

/// The shortest poll interval: tests go this low, real fleets never should.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);
/// The safety valve for the assumption that finished executions do not change.
pub const DEFAULT_FULL_REFRESH: Duration = Duration::from_secs(6 * 3600);
pub const DEFAULT_CYCLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Failed targets named per association when naming is on: enough for an alert to list them,
/// few enough that a fleet-wide failure does not flood Prometheus.
pub const DEFAULT_FAILED_TARGETS: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: FileError,
    },
    /// serde_yaml's message names the key path, and the line and column.
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

// The raw shapes hold scalars as plain strings: serde_yaml reports the line of its own errors,
// but an error raised inside a field's Deserialize gets the enclosing mapping's position or
// none at all. So values are checked after parsing, by `field`, which knows the key path and
// finds its line with `locate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of configuration keys")]
struct RawConfig {
    region: Option<String>,
    endpoint_url: Option<String>,
    poll_interval: Option<String>,
    associations: Option<Vec<RawAssociation>>,
    discovery: Option<RawDiscovery>,
    full_refresh_interval: Option<String>,
    cycle_timeout: Option<String>,
    api: Option<RawApi>,
    failed_targets: Option<RawFailedTargets>,
    accounts: Option<Vec<RawAccount>>,
    sts_endpoint_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    role_arn: Option<String>,
    account_id: Option<String>,
    external_id: Option<String>,
    session_name: Option<String>,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    endpoint_urls: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFailedTargets {
    enabled: Option<bool>,
    limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    requests_per_second: Option<f64>,
    burst: Option<u32>,
    max_in_flight: Option<usize>,
    max_attempts: Option<u32>,
    retry_mode: Option<RetryMode>,
    timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAssociation {
    association_id: String,
    execution_id: Option<String>,
    #[serde(default)]
    filters: Vec<RawFilter>,
    account_id: Option<String>,
    region: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    key: TargetFilterKey,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscovery {
    name_prefix: Option<String>,
    document_name: Option<String>,
}

/// Reads and validates the file at `path`.
///
/// # Errors
///
/// [`ConfigError`] naming the file and, for bad content, the key and the line.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, parse)
}

/// Reads the file at `path` and hands its text to `parse`, naming the file in any error.
///
/// # Errors
///
/// [`ConfigError::Read`] if the file cannot be read, [`ConfigError::Invalid`] with the
/// message of `parse` otherwise.
pub fn load_with<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    let read = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let bytes = read_file(path).map_err(read)?;
    let text = String::from_utf8(bytes).map_err(|_| read(FileError::NotText))?;
    parse(&text).map_err(|message| ConfigError::Invalid {
        path: path.to_owned(),
        message,
    })
}

/// The largest file the exporter reads: configuration files and PEM files are a few KiB, and
/// nothing larger is read into memory.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("is larger than {} MiB", MAX_FILE_BYTES >> 20)]
    TooLarge,
    #[error("is not UTF-8 text")]
    NotText,
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`], following symbolic links (a
/// Kubernetes ConfigMap's files are links). Anything else is refused before it is opened:
/// a FIFO would block the open, a device could be read without end.
///
/// # Errors
///
/// [`FileError`] saying what the file is, or the I/O error.
pub fn read_file(path: &Path) -> Result<Vec<u8>, FileError> {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let check = |meta: std::fs::Metadata| {
        let t = meta.file_type();
        let what = if t.is_file() {
            if meta.len() > MAX_FILE_BYTES {
                return Err(FileError::TooLarge);
            }
            return Ok(());
        } else if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "a special file"
        };
        Err(FileError::NotRegular(what))
    };
    check(std::fs::metadata(path)?)?;
    let file = std::fs::File::open(path)?;
    // Looked at again once open, in case the path was replaced in between (a FIFO put there
    // in that instant would still block the open: std has no O_NONBLOCK without libc).
    check(file.metadata()?)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FileError::TooLarge);
    }
    Ok(bytes)
}

/// Deserializes YAML text: the one place that names serde_yaml. An empty text is an empty
/// mapping. The error names the key path and the line.
///
/// # Errors
///
/// serde_yaml's message, with a repeated top-level key placed at its repeat.
pub fn from_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    flow_depth(text)?;
    let parsed = if text.trim().is_empty() {
        serde_yaml::from_str("{}")
    } else {
        serde_yaml::from_str(text)
    };
    parsed.map_err(|e| {
        let message = e.to_string();
        // serde_yaml places a repeated top-level key at the first key of the file, or nowhere;
        // the second occurrence is the culprit.
        let repeated = message
            .strip_prefix("duplicate field `")
            .and_then(|m| m.split_once('`'))
            .map(|(key, _)| key);
        let second = repeated.and_then(|key| {
            text.lines()
                .enumerate()
                .filter(|(_, l)| l.starts_with(&format!("{key}:")))
                .nth(1)
                .map(|(i, _)| (key, i + 1))
        });
        if let Some((key, line)) = second {
            return format!("{key}: repeated at line {line}");
        }
        // serde_yaml gives no position for an unknown key on a file's first line.
        let unknown = message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split_once('`'))
            .map(|(key, _)| key);
        match unknown {
            Some(key) if !message.contains(" at line ") => {
                format!("{message}{}", line_suffix(locate(text, key)))
            }
            _ => message,
        }
    })
}

/// How deep flow collections (`[…]`, `{…}`) may nest: no file of ours needs more than three
/// levels, and serde_yaml's parser takes time quadratic in the depth before its own recursion
/// limit refuses the text (16 s for 100,000 levels).
pub const MAX_FLOW_DEPTH: usize = 32;

/// Refuses text whose flow collections nest deeper than [`MAX_FLOW_DEPTH`], in one pass.
/// Brackets in quoted scalars and comments do not count, nor, outside a flow collection, those
/// where no node can start (`name_prefix: a[1`). Block nesting needs no check here: serde_yaml's
/// recursion limit refuses it in linear time.
fn flow_depth(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut line = 1usize;
    // The byte before, and the last one that is not a space (`\n` at a line's start): where a
    // node can start. Every byte looked at is ASCII, which UTF-8 never uses inside a character.
    let mut raw = b'\n';
    let mut token = b'\n';
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let after_space = matches!(raw, b' ' | b'\t' | b'\n');
        let node_starts = if depth > 0 {
            matches!(token, b'\n' | b'[' | b'{' | b',' | b':' | b'?')
        } else {
            after_space && matches!(token, b'\n' | b':' | b'-' | b'?')
        };
        match b {
            b'\n' => {
                line += 1;
                token = b'\n';
            }
            b'#' if after_space => {
                while i + 1 < bytes.len() && bytes[i + 1] != b'\n' {
                    i += 1;
                }
            }
            b'\'' | b'"' if node_starts => {
                // A quoted scalar runs to its closing quote, over lines if need be; `''` is a
                // quote inside single quotes, a backslash escapes inside double ones.
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\n' => line += 1,
                        b'\\' if b == b'"' => {
                            if bytes.get(i + 1) == Some(&b'\n') {
                                line += 1;
                            }
                            i += 1;
                        }
                        q if q == b => {
                            if b == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                                i += 1;
                            } else {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                token = b;
            }
            b'[' | b'{' if node_starts => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Err(format!(
                        "flow collections ([ and {{) nest deeper than {MAX_FLOW_DEPTH} levels at line {line}"
                    ));
                }
                token = b;
            }
            b']' | b'}' if depth > 0 => {
                depth -= 1;
                token = b;
            }
            b' ' | b'\t' | b'\r' => {}
            _ => token = b,
        }
        raw = bytes.get(i).copied().unwrap_or(b);
        i += 1;
    }
    Ok(())
}

/// Validates configuration text; the error is a message naming the key and the line.
///
/// # Errors
///
/// The message for the first problem found.
pub fn parse(text: &str) -> Result<Config, String> {
    let raw: RawConfig = from_yaml(text)?;
    let field = |path: &str, value: &str, check: fn(&str) -> Result<(), String>| {
        check(value)
            .map_err(|message| format!("{path}: {message}{}", line_suffix(locate(text, path))))
    };
    let text_field = |path: &str, value: Option<String>| -> Result<Option<String>, String> {
        if let Some(v) = &value {
            field(path, v, non_empty)?;
        }
        Ok(value)
    };

    let duration = |path: &str, value: Option<&String>, default: Duration, min: Duration| {
        let Some(v) = value else {
            return Ok(default);
        };
        let d = parse_duration(v)
            .map_err(|message| format!("{path}: {message}{}", line_suffix(locate(text, path))))?;
        if d < min {
            return Err(format!(
                "{path}: must be at least {}{}",
                format_duration(min),
                line_suffix(locate(text, path))
            ));
        }
        Ok(d)
    };
    let poll_interval = duration(
        "poll_interval",
        raw.poll_interval.as_ref(),
        DEFAULT_POLL_INTERVAL,
        MIN_POLL_INTERVAL,
    )?;
    let region = text_field("region", raw.region)?;
    if let Some(r) = &region {
        field("region", r, region_name)?;
    }
    let endpoint_url = text_field("endpoint_url", raw.endpoint_url)?;
    if let Some(url) = &endpoint_url {
        field("endpoint_url", url, http_url)?;
    }
    let sts_endpoint_url = text_field("sts_endpoint_url", raw.sts_endpoint_url)?;
    if let Some(url) = &sts_endpoint_url {
        field("sts_endpoint_url", url, http_url)?;
    }
    let accounts = accounts(text, raw.accounts.unwrap_or_default())?;
    if !accounts.is_empty() {
        for (key, given) in [
            ("region", region.is_some()),
            ("endpoint_url", endpoint_url.is_some()),
        ] {
            if given {
                return Err(format!(
                    "{key}: give regions and endpoint_urls under accounts when accounts are listed{}",
                    line_suffix(locate(text, key))
                ));
            }
        }
    }
    let places: Vec<Place> = accounts
        .iter()
        .flat_map(|a| {
            a.regions.iter().map(|r| Place {
                account_id: a.account_id.clone(),
                region: r.clone(),
            })
        })
        .collect();

    let associations = raw.associations.unwrap_or_default();
    let watch = if associations.is_empty() {
        let discovery = raw.discovery.map_or(Ok(Discovery::default()), |d| {
            Ok::<_, String>(Discovery {
                name_prefix: text_field("discovery.name_prefix", d.name_prefix)?,
                document_name: text_field("discovery.document_name", d.document_name)?,
            })
        })?;
        Watch::Discover(discovery)
    } else {
        if raw.discovery.is_some() {
            return Err(format!(
                "discovery: applies only when no associations are listed; remove one of the two{}",
                line_suffix(locate(text, "discovery"))
            ));
        }
        let mut watched: Vec<WatchedAssociation> = Vec::new();
        for (i, a) in associations.into_iter().enumerate() {
            let path = format!("associations[{i}]");
            field(&format!("{path}.association_id"), &a.association_id, uuid)?;
            let association_id = AwsId(a.association_id.to_ascii_lowercase());
            if let Some(first) = watched
                .iter()
                .position(|w| w.association_id == association_id)
            {
                return Err(format!(
                    "{path}.association_id: {association_id} is listed already as associations[{first}]{}",
                    line_suffix(locate(text, &format!("{path}.association_id"))),
                ));
            }
            let execution_id = match a.execution_id {
                Some(e) => {
                    field(&format!("{path}.execution_id"), &e, uuid)?;
                    Some(AwsId(e.to_ascii_lowercase()))
                }
                None => None,
            };
            let mut filters = Vec::new();
            for (j, f) in a.filters.into_iter().enumerate() {
                field(&format!("{path}.filters[{j}].value"), &f.value, non_empty)?;
                filters.push(TargetFilter {
                    key: f.key,
                    value: NonEmpty(f.value),
                });
            }
            let place = match (a.account_id, a.region) {
                (None, None) if places.is_empty() => None,
                (Some(account_id), Some(region)) if !places.is_empty() => {
                    let place = Place { account_id, region };
                    if !places.contains(&place) {
                        return Err(format!(
                            "{path}: account {} and region {} are not a pair listed under accounts{}",
                            place.account_id,
                            place.region,
                            line_suffix(locate(text, &format!("{path}.association_id"))),
                        ));
                    }
                    Some(place)
                }
                _ if places.is_empty() => {
                    return Err(format!(
                        "{path}: account_id and region apply only when accounts are listed{}",
                        line_suffix(locate(text, &format!("{path}.association_id"))),
                    ));
                }
                _ => {
                    return Err(format!(
                        "{path}: needs account_id and region, to say which listed account and region hold it{}",
                        line_suffix(locate(text, &format!("{path}.association_id"))),
                    ));
                }
            };
            watched.push(WatchedAssociation {
                association_id,
                execution_id,
                filters,
                place,
            });
        }
        Watch::Explicit(watched)
    };

    let full_refresh_interval = duration(
        "full_refresh_interval",
        raw.full_refresh_interval.as_ref(),
        DEFAULT_FULL_REFRESH,
        Duration::ZERO,
    )?;
    let cycle_timeout = duration(
        "cycle_timeout",
        raw.cycle_timeout.as_ref(),
        DEFAULT_CYCLE_TIMEOUT,
        MIN_POLL_INTERVAL,
    )?;
    let api = match raw.api {
        None => Api::default(),
        Some(a) => {
            let defaults = Api::default();
            let range = |path: &str, ok: bool, what: &str| {
                if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "{path}: must be {what}{}",
                        line_suffix(locate(text, path))
                    ))
                }
            };
            let requests_per_second = a
                .requests_per_second
                .unwrap_or(defaults.requests_per_second);
            range(
                "api.requests_per_second",
                requests_per_second.is_finite() && requests_per_second >= 0.01,
                "a number of at least 0.01",
            )?;
            let burst = a.burst.unwrap_or(defaults.burst);
            range("api.burst", (1..=1000).contains(&burst), "from 1 to 1000")?;
            let max_in_flight = a.max_in_flight.unwrap_or(defaults.max_in_flight);
            range(
                "api.max_in_flight",
                (1..=64).contains(&max_in_flight),
                "from 1 to 64",
            )?;
            let max_attempts = a.max_attempts.unwrap_or(defaults.max_attempts);
            range(
                "api.max_attempts",
                (1..=10).contains(&max_attempts),
                "from 1 to 10",
            )?;
            Api {
                requests_per_second,
                burst,
                max_in_flight,
                max_attempts,
                retry_mode: a.retry_mode.unwrap_or(defaults.retry_mode),
                timeout: duration(
                    "api.timeout",
                    a.timeout.as_ref(),
                    defaults.timeout,
                    MIN_POLL_INTERVAL,
                )?,
            }
        }
    };

    let failed_targets = match raw.failed_targets {
        Some(RawFailedTargets {
            enabled: Some(true),
            limit,
        }) => {
            let limit = limit.unwrap_or(DEFAULT_FAILED_TARGETS);
            if !(1..=10_000).contains(&limit) {
                return Err(format!(
                    "failed_targets.limit: must be from 1 to 10000{}",
                    line_suffix(locate(text, "failed_targets.limit"))
                ));
            }
            Some(limit)
        }
        _ => None,
    };

    Ok(Config {
        region,
        endpoint_url,
        poll_interval,
        watch,
        full_refresh_interval,
        cycle_timeout,
        api,
        failed_targets,
        shard: Shard::ALL,
        accounts,
        sts_endpoint_url,
    })
}

/// Validates the `accounts` list: each pair of account and region once, every key checked.
fn accounts(text: &str, raw: Vec<RawAccount>) -> Result<Vec<Account>, String> {
    let at = |path: &str| line_suffix(locate(text, path));
    let mut accounts: Vec<Account> = Vec::new();
    for (i, a) in raw.into_iter().enumerate() {
        let path = format!("accounts[{i}]");
        let from_arn = match &a.role_arn {
            Some(arn) => Some(role_account(arn).ok_or_else(|| {
                format!(
                    "{path}.role_arn: {arn:?} is not an IAM role ARN like arn:aws:iam::123456789012:role/name{}",
                    at(&format!("{path}.role_arn"))
                )
            })?),
            None => None,
        };
        let account_id = match (from_arn, a.account_id) {
            (Some(from_arn), Some(given)) if from_arn != given => {
                return Err(format!(
                    "{path}.account_id: {given} is not the account of the role ARN, {from_arn}{}",
                    at(&format!("{path}.account_id"))
                ));
            }
            (Some(id), _) => id,
            (None, Some(given)) => {
                if given.len() != 12 || !given.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!(
                        "{path}.account_id: {given:?} is not a 12-digit account ID{}",
                        at(&format!("{path}.account_id"))
                    ));
                }
                given
            }
            (None, None) => {
                return Err(format!(
                    "{path}: needs role_arn, or account_id to poll with the default credentials{}",
                    at(&path)
                ));
            }
        };
        let role = match a.role_arn {
            Some(arn) => Some(Role {
                arn,
                external_id: match a.external_id {
                    Some(id) if !(2..=1224).contains(&id.len()) => {
                        return Err(format!(
                            "{path}.external_id: must be 2 to 1224 characters{}",
                            at(&format!("{path}.external_id"))
                        ));
                    }
                    id => id,
                },
                session_name: match a.session_name {
                    Some(name) if !valid_session_name(&name) => {
                        return Err(format!(
                            "{path}.session_name: {name:?} must be 2 to 64 letters, digits or +=,.@_-{}",
                            at(&format!("{path}.session_name"))
                        ));
                    }
                    Some(name) => name,
                    None => DEFAULT_SESSION_NAME.to_owned(),
                },
            }),
            None => {
                for (key, given) in [
                    ("external_id", a.external_id.is_some()),
                    ("session_name", a.session_name.is_some()),
                ] {
                    if given {
                        return Err(format!(
                            "{path}.{key}: applies only with role_arn{}",
                            at(&format!("{path}.{key}"))
                        ));
                    }
                }
                None
            }
        };
        if a.regions.is_empty() {
            return Err(format!(
                "{path}.regions: list at least one region{}",
                at(&path)
            ));
        }
        for (j, region) in a.regions.iter().enumerate() {
            let key = format!("{path}.regions[{j}]");
            region_name(region)
                .map_err(|m| format!("{key}: {m}{}", at(&format!("{path}.regions"))))?;
            if a.regions[..j].contains(region) {
                return Err(format!(
                    "{key}: {region} is listed twice{}",
                    at(&format!("{path}.regions"))
                ));
            }
            if let Some(k) = accounts
                .iter()
                .position(|o| o.account_id == account_id && o.regions.contains(region))
            {
                return Err(format!(
                    "{key}: account {account_id} in {region} is listed already under accounts[{k}]{}",
                    at(&format!("{path}.regions"))
                ));
            }
        }
        for (region, url) in &a.endpoint_urls {
            let key = format!("{path}.endpoint_urls.{region}");
            if !a.regions.contains(region) {
                return Err(format!(
                    "{key}: {region} is not one of the account's regions{}",
                    at(&format!("{path}.endpoint_urls"))
                ));
            }
            http_url(url)
                .map_err(|m| format!("{key}: {m}{}", at(&format!("{path}.endpoint_urls"))))?;
        }
        accounts.push(Account {
            account_id,
            role,
            regions: a.regions,
            endpoint_urls: a.endpoint_urls,
        });
    }
    Ok(accounts)
}

/// The account of an IAM role ARN, `arn:<partition>:iam::<12 digits>:role/<path and name>`.
fn role_account(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (arn_, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let ok = arn_ == "arn"
        && partition.starts_with("aws")
        && service == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && resource
            .strip_prefix("role/")
            .is_some_and(|r| !r.is_empty());
    ok.then(|| account.to_owned())
}

/// STS's `RoleSessionName` pattern: `[\w+=,.@-]{2,64}`.
fn valid_session_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

/// A region name as AWS spells them: `us-east-1`, `ap-southeast-2`, `us-gov-west-1`,
/// `eusc-de-east-1`; it becomes part of a host name and of every series' labels.
fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    region.len() <= 32
        && parts.len() >= 3
        && (2..=4).contains(&parts[0].len())
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

fn region_name(region: &str) -> Result<(), String> {
    if valid_region(region) {
        Ok(())
    } else {
        Err(format!("{region:?} is not a region name like us-east-1"))
    }
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

fn http_url(url: &str) -> Result<(), String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(format!("{url:?} is not an http:// or https:// URL"))
    }
}

fn uuid(value: &str) -> Result<(), String> {
    if is_uuid(value) {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not an ID of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)"
        ))
    }
}

fn non_empty(value: &str) -> Result<(), String> {
    if value.is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(())
    }
}

/// The 1-based line of a key path such as `associations[2].filters[1].value` in block-style
/// YAML (flow-style entries are found when each sits on its own line). serde_yaml reports no
/// position for values that fail our checks, so the text is read again to find one.
pub(crate) fn locate(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut range = 0..lines.len();
    let mut found = None;
    for (n, part) in path.split('.').enumerate() {
        let (key, index) = match part.split_once('[') {
            Some((key, rest)) => (key, Some(rest.trim_end_matches(']').parse::<usize>().ok()?)),
            None => (part, None),
        };
        // A path starts at a top-level key: `region` is not `associations[0].region`.
        let (at, indent) = if n == 0 {
            let mut start = range.start;
            loop {
                let (at, indent) = find_key(&lines, start..range.end, key)?;
                if indent == 0 {
                    break (at, indent);
                }
                start = at + 1;
            }
        } else {
            find_key(&lines, range.clone(), key)?
        };
        let end = (at + 1..range.end)
            .find(|&i| {
                let (depth, content) = split_indent(lines[i]);
                !content.is_empty()
                    && !content.starts_with('#')
                    && (depth < indent || (depth == indent && !content.starts_with('-')))
            })
            .unwrap_or(range.end);
        found = Some(at);
        range = at..end;
        if let Some(index) = index {
            let items = list_items(&lines, at + 1..end);
            let start = *items.get(index)?;
            found = Some(start);
            range = start..items.get(index + 1).copied().unwrap_or(end);
        }
    }
    found.map(|i| i + 1)
}

/// The first line in `range` that holds `key:` (a comment never does), and the column where
/// the key starts, which is the indentation of the key's block.
fn find_key(lines: &[&str], range: std::ops::Range<usize>, key: &str) -> Option<(usize, usize)> {
    let wanted = format!("{key}:");
    range.into_iter().find_map(|i| {
        let (depth, content) = split_indent(lines[i]);
        if content.starts_with('#') {
            return None;
        }
        let unlisted = content.trim_start_matches(['-', ' ']);
        if unlisted.starts_with(&wanted) {
            return Some((i, depth + content.len() - unlisted.len()));
        }
        // A flow mapping: `{ key: Status, value: "" }`.
        [
            format!("{{{wanted}"),
            format!("{{ {wanted}"),
            format!(", {wanted}"),
            format!(",{wanted}"),
        ]
        .iter()
        .any(|p| content.contains(p.as_str()))
        .then_some((i, depth))
    })
}

/// Lines in `range` that start a list item, at the outermost list's indentation.
fn list_items(lines: &[&str], range: std::ops::Range<usize>) -> Vec<usize> {
    let dashes: Vec<(usize, usize)> = range
        .filter_map(|i| {
            let (depth, content) = split_indent(lines[i]);
            (content == "-" || content.starts_with("- ")).then_some((i, depth))
        })
        .collect();
    let outer = dashes.iter().map(|(_, d)| *d).min().unwrap_or(0);
    dashes
        .into_iter()
        .filter(|(_, d)| *d == outer)
        .map(|(i, _)| i)
        .collect()
}

fn split_indent(line: &str) -> (usize, &str) {
    let content = line.trim_start_matches(' ');
    (line.len() - content.len(), content.trim_end())
}

pub(crate) fn line_suffix(line: Option<usize>) -> String {
    line.map(|l| format!(" at line {l}")).unwrap_or_default()
}

impl Config {
    /// The keys whose change a reload cannot apply: they shape the AWS client, which is built
    /// once at start.
    pub fn needs_restart(&self, new: &Config) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.region != new.region {
            keys.push("region");
        }
        if self.endpoint_url != new.endpoint_url {
            keys.push("endpoint_url");
        }
        if self.api.max_attempts != new.api.max_attempts {
            keys.push("api.max_attempts");
        }
        if self.api.retry_mode != new.api.retry_mode {
            keys.push("api.retry_mode");
        }
        if self.api.timeout != new.api.timeout {
            keys.push("api.timeout");
        }
        if self.accounts != new.accounts {
            keys.push("accounts");
        }
        if self.sts_endpoint_url != new.sts_endpoint_url {
            keys.push("sts_endpoint_url");
        }
        keys
    }

    /// Every (account, region) pair to poll, in the order of the file; without `accounts`,
    /// the one pair of the default credentials.
    pub fn sources(&self) -> Vec<SourceSpec> {
        if self.accounts.is_empty() {
            return vec![SourceSpec {
                place: None,
                region: self.region.clone(),
                endpoint_url: self.endpoint_url.clone(),
                role: None,
            }];
        }
        self.accounts
            .iter()
            .flat_map(|a| {
                a.regions.iter().map(|region| SourceSpec {
                    place: Some(Place {
                        account_id: a.account_id.clone(),
                        region: region.clone(),
                    }),
                    region: Some(region.clone()),
                    endpoint_url: a.endpoint_urls.get(region).cloned(),
                    role: a.role.clone(),
                })
            })
            .collect()
    }

    /// A one-line description, for `--config.check` and the start-up log.
    pub fn summary(&self) -> String {
        let watch = match &self.watch {
            Watch::Explicit(list) => {
                let pinned = list.iter().filter(|a| a.execution_id.is_some()).count();
                format!("{} explicit associations ({pinned} pinned)", list.len())
            }
            Watch::Discover(d) => {
                let mut s = "discovery of every association".to_owned();
                if let Some(p) = &d.name_prefix {
                    s.push_str(&format!(" named {p}*"));
                }
                if let Some(doc) = &d.document_name {
                    s.push_str(&format!(" running {doc}"));
                }
                s
            }
        };
        let shard = if self.shard.total > 1 {
            format!(", shard {} of {}", self.shard.index, self.shard.total)
        } else {
            String::new()
        };
        let pairs = self.sources().len();
        let place = if self.accounts.is_empty() {
            format!(
                "region {}, endpoint {}",
                self.region.as_deref().unwrap_or("from the environment"),
                self.endpoint_url
                    .as_deref()
                    .map_or("default".into(), redacted_url),
            )
        } else {
            format!(
                "{} accounts in {pairs} account-region pairs",
                self.accounts.len()
            )
        };
        let per = if pairs > 1 { " per pair" } else { "" };
        format!(
            "{watch}, poll interval {}, {place}, at most {} calls/s{per}{shard}",
            format_duration(self.poll_interval),
            self.api.requests_per_second,
        )
    }
}

/// Writes a duration back in the form [`parse_duration`] reads.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A1: &str = "fa94c678-85c6-4d40-926b-7c791a0b1c2d";
    const E1: &str = "d6d51ef5-4eca-48ef-9d7d-bd6ce3e4f5a6";

    #[test]
    fn durations() {
        let ok = [
            ("1s", 1_000),
            ("500ms", 500),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("1d", 86_400_000),
            ("2m3s", 123_000),
        ];
        for (input, ms) in ok {
            assert_eq!(
                parse_duration(input),
                Ok(Duration::from_millis(ms)),
                "{input}"
            );
            assert_eq!(format_duration(Duration::from_millis(ms)), input);
        }
        for bad in [
            "",
            "60",
            "s",
            "1.5s",
            "5 m",
            "1x",
            "3s1m",
            "1m1m",
            "-1s",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn ids() {
        assert!(is_uuid(A1));
        assert!(is_uuid(&A1.to_ascii_uppercase()));
        for bad in [
            "fa94c678-85c6-4d40-926b-7c791EXAMPLE",
            "fa94c678-85c6-4d40-926b",
            "fa94c67885c64d40926b7c791a0b1c2d",
            "fa94c678-85c6-4d40-926b-7c791a0b1c2d-",
            "",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
    }

    #[test]
    fn the_issue_example_parses() {
        let text = format!(
            "region: us-east-2\npoll_interval: 60s\nassociations:\n  - association_id: {A1}\n    execution_id: {E1}\n    filters:\n      - {{ key: Status, value: Failed }}\n"
        );
        let config = parse(&text).expect("valid");
        assert_eq!(config.region.as_deref(), Some("us-east-2"));
        assert_eq!(config.poll_interval, Duration::from_secs(60));
        let Watch::Explicit(list) = &config.watch else {
            panic!("expected explicit associations, got {:?}", config.watch)
        };
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].association_id.as_str(), A1);
        assert_eq!(list[0].execution_id.as_ref().map(AwsId::as_str), Some(E1));
        assert_eq!(
            list[0].filters,
            vec![TargetFilter {
                key: TargetFilterKey::Status,
                value: NonEmpty("Failed".into())
            }]
        );
        assert_eq!(
            config.summary(),
            "1 explicit associations (1 pinned), poll interval 1m, region us-east-2, endpoint default, at most 5 calls/s"
        );
    }

    #[test]
    fn the_example_file_loads() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml"));
        let config = load(path).expect("config.example.yaml is valid");
        assert_eq!(
            config.summary(),
            "3 explicit associations (1 pinned), poll interval 1m, region us-east-2, endpoint default, at most 5 calls/s"
        );
        let Watch::Explicit(list) = &config.watch else {
            panic!("expected explicit associations")
        };
        assert_eq!(list[2].filters.len(), 2);
        // The commented-out discovery block is valid too, once the associations are gone.
        let text = std::fs::read_to_string(path).expect("read example");
        let start = text.find("associations:\n").expect("associations key");
        let end = text
            .find("# Narrowing for discovery")
            .expect("discovery comment");
        let accounts_at = text.find("# Several accounts").expect("accounts comment");
        let accounts_key = text.find("# accounts:").expect("accounts key");
        let sts_key = text.find("# sts_endpoint_url:").expect("sts key");
        let uncomment = |block: &str| -> String {
            block
                .lines()
                .skip(1)
                .map(|l| l.strip_prefix("# ").unwrap_or(l))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let discovery = uncomment(&text[end..accounts_at]);
        let swapped = format!("{}{discovery}\n", &text[..start]);
        let config = parse(&swapped).expect("the example's discovery block is valid");
        assert_eq!(
            config.watch,
            Watch::Discover(Discovery {
                name_prefix: Some("patch-".into()),
                document_name: Some("AWS-RunPatchBaseline".into()),
            })
        );
        // And so is the accounts block, in place of the region.
        // The keys without the prose between them: the line before each is skipped.
        let accounts = format!(
            "{}\n{}",
            uncomment(&text[accounts_key - 1..text.find("#\n# STS").expect("STS comment")]),
            uncomment(&text[sts_key - 1..])
        );
        let with_accounts = format!(
            "{}{accounts}\n",
            text[..start].replace("\nregion: us-east-2\n", "\n")
        );
        let config = parse(&with_accounts).expect("the example's accounts block is valid");
        assert_eq!(config.sources().len(), 3);
        assert_eq!(
            config.sts_endpoint_url.as_deref(),
            Some("https://sts.us-east-1.amazonaws.com")
        );
    }

    #[test]
    fn api_settings_and_their_defaults() {
        let config = parse("").expect("empty is valid");
        assert_eq!(config.api, Api::default());
        assert_eq!(config.full_refresh_interval, DEFAULT_FULL_REFRESH);
        assert_eq!(config.cycle_timeout, DEFAULT_CYCLE_TIMEOUT);
        let config = parse(
            "full_refresh_interval: 0s\ncycle_timeout: 2m\napi:\n  requests_per_second: 2.5\n  burst: 3\n  max_in_flight: 2\n  max_attempts: 8\n  retry_mode: adaptive\n  timeout: 10s\n",
        )
        .expect("valid");
        assert_eq!(config.full_refresh_interval, Duration::ZERO);
        assert_eq!(config.cycle_timeout, Duration::from_secs(120));
        assert_eq!(
            config.api,
            Api {
                requests_per_second: 2.5,
                burst: 3,
                max_in_flight: 2,
                max_attempts: 8,
                retry_mode: RetryMode::Adaptive,
                timeout: Duration::from_secs(10),
            }
        );
    }

    #[test]
    fn shards_split_every_id_exactly_once() {
        assert_eq!(
            Shard::new(0, 0),
            Err("--total-shards must be at least 1".to_owned())
        );
        assert_eq!(
            Shard::new(3, 3),
            Err("--shard 3 is not below --total-shards 3: shards count from 0".to_owned())
        );
        let shards: Vec<Shard> = (0..4).map(|i| Shard::new(i, 4).expect("valid")).collect();
        let mut per_shard = [0usize; 4];
        for n in 0..1000u32 {
            let id = format!("{n:08x}-85c6-4d40-926b-7c791a0b1c2d");
            let owners: Vec<usize> = (0..4).filter(|&i| shards[i].owns(&id)).collect();
            assert_eq!(owners.len(), 1, "{id}");
            assert!(
                shards[owners[0]].owns(&id.to_ascii_uppercase()),
                "case does not matter"
            );
            per_shard[owners[0]] += 1;
        }
        // FNV spreads UUIDs evenly enough: each shard gets a fair part.
        assert!(
            per_shard.iter().all(|&n| (200..=300).contains(&n)),
            "{per_shard:?}"
        );
        // The hash is fixed: this ID belongs to shard 0 of 4 in every build.
        let owner = (0..4).find(|&i| shards[i].owns("fa94c678-85c6-4d40-926b-7c791a0b1c2d"));
        assert_eq!(owner, Some(0));
        assert!(Shard::ALL.owns("anything"));
    }

    #[test]
    fn empty_means_discover_everything() {
        for text in ["", "associations: []\n", "associations:\n"] {
            let config = parse(text).expect(text);
            assert_eq!(
                config.watch,
                Watch::Discover(Discovery::default()),
                "{text:?}"
            );
            assert_eq!(config.poll_interval, DEFAULT_POLL_INTERVAL);
        }
        let config =
            parse("discovery:\n  name_prefix: patch-\n  document_name: AWS-RunPatchBaseline\n")
                .expect("valid");
        assert_eq!(
            config.watch,
            Watch::Discover(Discovery {
                name_prefix: Some("patch-".into()),
                document_name: Some("AWS-RunPatchBaseline".into())
            })
        );
    }

    /// Each bad file and the exact message it gets: what is wrong, which key, which line.
    #[test]
    fn bad_configs() {
        let cases: &[(&str, &str)] = &[
            (
                "region: us-east-2\npoll_interval: 60s\nscrape_timeout: 5s\n",
                "unknown field `scrape_timeout`, expected one of `region`, `endpoint_url`, `poll_interval`, `associations`, `discovery`, `full_refresh_interval`, `cycle_timeout`, `api`, `failed_targets`, `accounts`, `sts_endpoint_url` at line 3 column 1",
            ),
            (
                "poll_interval: 60\n",
                "poll_interval: \"60\" is not a duration like 500ms, 30s, 5m, 1h30m at line 1",
            ),
            (
                "poll_interval: 1m\n\npoll_interval: 2m\n",
                "poll_interval: repeated at line 3",
            ),
            (
                "poll_interval: 500ms\n",
                "poll_interval: must be at least 1s at line 1",
            ),
            (
                "associations:\n  - association_id: fa94c678-85c6-4d40-926b-7c791EXAMPLE\n",
                "associations[0].association_id: \"fa94c678-85c6-4d40-926b-7c791EXAMPLE\" is not an ID of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits) at line 2",
            ),
            (
                &format!("associations:\n  - association_id: {A1}\n    execution_id: 42\n"),
                "associations[0].execution_id: \"42\" is not an ID of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits) at line 3",
            ),
            (
                &format!(
                    "associations:\n  - association_id: {A1}\n    filters:\n      - {{ key: Colour, value: red }}\n"
                ),
                "associations[0].filters[0].key: unknown variant `Colour`, expected one of `Status`, `ResourceId`, `ResourceType` at line 4 column 16",
            ),
            (
                &format!(
                    "associations:\n  - association_id: {A1}\n    filters:\n      - {{ key: Status, value: \"\" }}\n"
                ),
                "associations[0].filters[0].value: must not be empty at line 4",
            ),
            (
                &format!(
                    "associations:\n  - association_id: {A1}\n    filters:\n      - {{ key: Status }}\n"
                ),
                "associations[0].filters[0]: missing field `value` at line 4 column 9",
            ),
            (
                "associations:\n  - execution_id: d6d51ef5-4eca-48ef-9d7d-bd6ce3e4f5a6\n",
                "associations[0]: missing field `association_id` at line 2 column 5",
            ),
            (
                &format!("associations:\n  - association_id: {A1}\n    pinned: true\n"),
                "associations[0]: unknown field `pinned`, expected one of `association_id`, `execution_id`, `filters`, `account_id`, `region` at line 3 column 5",
            ),
            (
                &format!(
                    "associations:\n  - association_id: {A1}\n  - association_id: {}\n",
                    A1.to_ascii_uppercase()
                ),
                &format!(
                    "associations[1].association_id: {A1} is listed already as associations[0] at line 3"
                ),
            ),
            (
                &format!(
                    "associations:\n  - association_id: {A1}\ndiscovery:\n  name_prefix: patch-\n"
                ),
                "discovery: applies only when no associations are listed; remove one of the two at line 3",
            ),
            (
                "discovery:\n  name_prefix: patch-\n  document: AWS-RunPatchBaseline\n",
                "discovery: unknown field `document`, expected `name_prefix` or `document_name` at line 3 column 3",
            ),
            (
                "cycle_timeout: 0s\n",
                "cycle_timeout: must be at least 1s at line 1",
            ),
            (
                "full_refresh_interval: soon\n",
                "full_refresh_interval: \"soon\" is not a duration like 500ms, 30s, 5m, 1h30m at line 1",
            ),
            (
                "api:\n  requests_per_second: 0\n",
                "api.requests_per_second: must be a number of at least 0.01 at line 2",
            ),
            (
                "api:\n  requests_per_second: fast\n",
                "api.requests_per_second: invalid type: string \"fast\", expected f64 at line 2 column 24",
            ),
            (
                "api:\n  max_in_flight: 0\n",
                "api.max_in_flight: must be from 1 to 64 at line 2",
            ),
            (
                "api:\n  burst: 5000\n",
                "api.burst: must be from 1 to 1000 at line 2",
            ),
            (
                "api:\n  max_attempts: -1\n",
                "api.max_attempts: invalid type: integer `-1`, expected u32 at line 2 column 17",
            ),
            (
                "api:\n  retry_mode: turbo\n",
                "api.retry_mode: unknown variant `turbo`, expected `standard` or `adaptive` at line 2 column 15",
            ),
            (
                "api:\n  timeout: 100ms\n",
                "api.timeout: must be at least 1s at line 2",
            ),
            (
                "api:\n  rate: 5\n",
                "api: unknown field `rate`, expected one of `requests_per_second`, `burst`, `max_in_flight`, `max_attempts`, `retry_mode`, `timeout` at line 2 column 3",
            ),
            (
                "associations: all\n",
                "associations: invalid type: string \"all\", expected a sequence at line 1 column 15",
            ),
            (
                "endpoint_url: localhost:4566\n",
                "endpoint_url: \"localhost:4566\" is not an http:// or https:// URL at line 1",
            ),
            (
                "region: ../../etc\n",
                "region: \"../../etc\" is not a region name like us-east-1 at line 1",
            ),
            (
                "poll_interval: 1m\nregion: us-east-1-\n",
                "region: \"us-east-1-\" is not a region name like us-east-1 at line 2",
            ),
            (
                "discovery:\n  name_prefix: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
                "flow collections ([ and {) nest deeper than 32 levels at line 2",
            ),
            (
                "region: [us-east-1]\n",
                "region: invalid type: sequence, expected a string at line 1 column 9",
            ),
            (
                "- region\n",
                "invalid type: sequence, expected a mapping of configuration keys",
            ),
            (
                "accounts:\n  - role_arn: arn:aws:iam::12345:role/x\n    regions: [us-east-1]\n",
                "accounts[0].role_arn: \"arn:aws:iam::12345:role/x\" is not an IAM role ARN like arn:aws:iam::123456789012:role/name at line 2",
            ),
            (
                "accounts:\n  - regions: [us-east-1]\n",
                "accounts[0]: needs role_arn, or account_id to poll with the default credentials at line 2",
            ),
            (
                "accounts:\n  - role_arn: arn:aws:iam::111111111111:role/x\n    account_id: \"222222222222\"\n    regions: [us-east-1]\n",
                "accounts[0].account_id: 222222222222 is not the account of the role ARN, 111111111111 at line 3",
            ),
            (
                "accounts:\n  - account_id: \"1111\"\n    regions: [us-east-1]\n",
                "accounts[0].account_id: \"1111\" is not a 12-digit account ID at line 2",
            ),
            (
                "accounts:\n  - account_id: \"111111111111\"\n    external_id: abc\n    regions: [us-east-1]\n",
                "accounts[0].external_id: applies only with role_arn at line 3",
            ),
            (
                "accounts:\n  - role_arn: arn:aws:iam::111111111111:role/x\n",
                "accounts[0].regions: list at least one region at line 2",
            ),
            (
                "accounts:\n  - role_arn: arn:aws:iam::111111111111:role/x\n    regions: [us-east-1, US-West-2]\n",
                "accounts[0].regions[1]: \"US-West-2\" is not a region name like us-east-1 at line 3",
            ),
            (
                "accounts:\n  - role_arn: arn:aws:iam::111111111111:role/x\n    session_name: \"a b\"\n    regions: [us-east-1]\n",
                "accounts[0].session_name: \"a b\" must be 2 to 64 letters, digits or +=,.@_- at line 3",
            ),
            (
                "accounts:\n  - role_arn: arn:aws:iam::111111111111:role/x\n    regions: [us-east-1]\n  - account_id: \"111111111111\"\n    regions: [eu-west-1, us-east-1]\n",
                "accounts[1].regions[1]: account 111111111111 in us-east-1 is listed already under accounts[0] at line 5",
            ),
            (
                "accounts:\n  - role_arn: arn:aws:iam::111111111111:role/x\n    regions: [us-east-1]\n    endpoint_urls:\n      eu-west-1: http://127.0.0.1:1\n",
                "accounts[0].endpoint_urls.eu-west-1: eu-west-1 is not one of the account's regions at line 4",
            ),
            (
                "region: us-east-1\naccounts:\n  - role_arn: arn:aws:iam::111111111111:role/x\n    regions: [us-east-1]\n",
                "region: give regions and endpoint_urls under accounts when accounts are listed at line 1",
            ),
            (
                &format!(
                    "accounts:\n  - role_arn: arn:aws:iam::111111111111:role/x\n    regions: [us-east-1]\nassociations:\n  - association_id: {A1}\n"
                ),
                "associations[0]: needs account_id and region, to say which listed account and region hold it at line 5",
            ),
            (
                &format!(
                    "accounts:\n  - role_arn: arn:aws:iam::111111111111:role/x\n    regions: [us-east-1]\nassociations:\n  - association_id: {A1}\n    account_id: \"111111111111\"\n    region: eu-west-1\n"
                ),
                "associations[0]: account 111111111111 and region eu-west-1 are not a pair listed under accounts at line 5",
            ),
            (
                &format!(
                    "associations:\n  - association_id: {A1}\n    account_id: \"111111111111\"\n    region: eu-west-1\nregion: us-east-1\naccounts:\n  - role_arn: arn:aws:iam::111111111111:role/x\n    regions: [eu-west-1]\n"
                ),
                "region: give regions and endpoint_urls under accounts when accounts are listed at line 5",
            ),
            (
                &format!("associations:\n  - association_id: {A1}\n    region: eu-west-1\n"),
                "associations[0]: account_id and region apply only when accounts are listed at line 2",
            ),
        ];
        let mismatches: Vec<String> = cases
            .iter()
            .filter_map(|(text, expected)| {
                let got = parse(text).expect_err(text);
                (got != *expected)
                    .then(|| format!("config:\n{text}\n  got: {got}\n want: {expected}"))
            })
            .collect();
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
    }

    #[test]
    fn accounts_become_one_source_per_pair() {
        let config = parse(&format!(
            "sts_endpoint_url: http://127.0.0.1:9\naccounts:\n  - role_arn: arn:aws:iam::111111111111:role/reader\n    external_id: ext-1\n    regions: [us-east-1, eu-west-1]\n    endpoint_urls:\n      eu-west-1: http://127.0.0.1:8\n  - account_id: \"222222222222\"\n    regions: [ap-southeast-2]\nassociations:\n  - association_id: {A1}\n    account_id: \"111111111111\"\n    region: eu-west-1\n"
        ))
        .expect("valid");
        let role = Role {
            arn: "arn:aws:iam::111111111111:role/reader".into(),
            external_id: Some("ext-1".into()),
            session_name: DEFAULT_SESSION_NAME.into(),
        };
        let place = |a: &str, r: &str| Place {
            account_id: a.into(),
            region: r.into(),
        };
        assert_eq!(
            config.sources(),
            vec![
                SourceSpec {
                    place: Some(place("111111111111", "us-east-1")),
                    region: Some("us-east-1".into()),
                    endpoint_url: None,
                    role: Some(role.clone()),
                },
                SourceSpec {
                    place: Some(place("111111111111", "eu-west-1")),
                    region: Some("eu-west-1".into()),
                    endpoint_url: Some("http://127.0.0.1:8".into()),
                    role: Some(role),
                },
                SourceSpec {
                    place: Some(place("222222222222", "ap-southeast-2")),
                    region: Some("ap-southeast-2".into()),
                    endpoint_url: None,
                    role: None,
                },
            ]
        );
        assert_eq!(
            config.sts_endpoint_url.as_deref(),
            Some("http://127.0.0.1:9")
        );
        let Watch::Explicit(list) = &config.watch else {
            panic!("explicit: {:?}", config.watch);
        };
        assert_eq!(list[0].place, Some(place("111111111111", "eu-west-1")));
        assert_eq!(
            config.summary(),
            "1 explicit associations (0 pinned), poll interval 1m, 2 accounts in 3 account-region pairs, at most 5 calls/s per pair"
        );
        let mut other = config.clone();
        other.accounts.pop();
        assert_eq!(config.needs_restart(&other), vec!["accounts"]);
        // Without accounts: one pair, no place.
        let single = parse("region: us-east-1\n").expect("valid");
        assert_eq!(
            single.sources(),
            vec![SourceSpec {
                place: None,
                region: Some("us-east-1".into()),
                endpoint_url: None,
                role: None,
            }]
        );
    }

    #[test]
    fn region_names() {
        for ok in [
            "us-east-1",
            "ap-southeast-2",
            "us-gov-west-1",
            "us-isob-east-1",
            "eusc-de-east-1",
        ] {
            assert!(valid_region(ok), "{ok}");
        }
        let long = format!("us-{}-1", "a".repeat(40));
        for bad in [
            "",
            "../../etc",
            "true",
            "US-East-1",
            "us-east",
            "us-east-1-",
            "useast1",
            &long,
        ] {
            assert!(!valid_region(bad), "{bad}");
        }
    }

    #[test]
    fn flow_nesting_is_bounded_in_linear_time() {
        let deep = format!("associations: {}\n", "[".repeat(100_000));
        let started = std::time::Instant::now();
        assert_eq!(
            parse(&deep),
            Err("flow collections ([ and {) nest deeper than 32 levels at line 1".to_owned())
        );
        // Block nesting is serde_yaml's to refuse, and it does so as quickly.
        let block = format!("associations:\n{}x\n", "- ".repeat(100_000));
        assert_eq!(
            from_yaml::<serde_yaml::Value>(&block).map(|_| ()),
            Err("recursion limit exceeded at line 2 column 255".to_owned())
        );
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        // Brackets in quoted scalars, comments and plain scalars do not nest.
        let many = "[".repeat(40);
        for text in [
            format!("discovery:\n  name_prefix: \"{many}\"\n"),
            format!("discovery:\n  name_prefix: '{many}'\n"),
            format!("discovery:\n  name_prefix: 'it''s {many}'\n"),
            format!("# {many}\ndiscovery:\n  name_prefix: x # {many}\n"),
            format!("discovery:\n  name_prefix: a{many}\n"),
            format!("discovery: {{ name_prefix: \"a\\\"{many}\" }}\n"),
        ] {
            assert!(parse(&text).is_ok(), "{text}");
        }
        let nested = format!(
            "discovery: {{name_prefix: x}}\nassociations: {}{}\n",
            "[".repeat(32),
            "]".repeat(32)
        );
        assert_eq!(from_yaml::<serde_yaml::Value>(&nested).map(|_| ()), Ok(()));
    }

    #[test]
    fn userinfo_is_redacted_from_printed_urls() {
        for (url, shown) in [
            (
                "http://user:pass@127.0.0.1:4566/x",
                "http://***@127.0.0.1:4566/x",
            ),
            (
                "https://token@ssm.example.com",
                "https://***@ssm.example.com",
            ),
            ("http://a:b@c@host/p@q", "http://***@host/p@q"),
            ("http://127.0.0.1:4566/a@b", "http://127.0.0.1:4566/a@b"),
            (
                "https://ssm.us-east-1.amazonaws.com",
                "https://ssm.us-east-1.amazonaws.com",
            ),
        ] {
            assert_eq!(redacted_url(url), shown, "{url}");
        }
        let config = parse("region: us-east-1\nendpoint_url: http://user:pass@127.0.0.1:4566\n")
            .expect("valid");
        assert_eq!(
            config.summary(),
            "discovery of every association, poll interval 1m, region us-east-1, endpoint http://***@127.0.0.1:4566, at most 5 calls/s"
        );
    }

    /// Every file is a regular file of at most 4 MiB, refused before it is read otherwise;
    /// a link to one (as in a Kubernetes ConfigMap) is fine.
    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let dir = std::env::temp_dir().join(format!("sae-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let fifo = dir.join("fifo.yaml");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let big = dir.join("big.yaml");
        std::fs::write(&big, vec![b'#'; MAX_FILE_BYTES as usize + 1]).expect("write");
        let cases = [
            (dir.clone(), "is a directory, not a regular file"),
            (
                PathBuf::from("/dev/zero"),
                "is a character device, not a regular file",
            ),
            (fifo, "is a FIFO, not a regular file"),
            (big, "is larger than 4 MiB"),
        ];
        for (path, problem) in cases {
            let err = load(&path).expect_err("refused");
            assert_eq!(err.to_string(), format!("{}: {problem}", path.display()));
        }
        let fits = dir.join("fits.yaml");
        let mut text = b"region: us-east-1\n".to_vec();
        text.resize(MAX_FILE_BYTES as usize, b'#');
        std::fs::write(&fits, &text).expect("write");
        let link = dir.join("link.yaml");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&fits, &link).expect("symlink");
        assert_eq!(
            load(&link)
                .expect("a link to a regular file")
                .region
                .as_deref(),
            Some("us-east-1")
        );
        let binary = dir.join("binary.yaml");
        std::fs::write(&binary, [0xff, 0xfe]).expect("write");
        assert_eq!(
            load(&binary).expect_err("not text").to_string(),
            format!("{}: is not UTF-8 text", binary.display())
        );
    }

    #[test]
    fn load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("sae-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bad.yaml");
        std::fs::write(&path, "poll_interval: soon\n").expect("write");
        let err = load(&path).expect_err("bad file");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: poll_interval: \"soon\" is not a duration like 500ms, 30s, 5m, 1h30m at line 1",
                path.display()
            )
        );
        let missing = dir.join("missing.yaml");
        let err = load(&missing).expect_err("missing file");
        assert!(
            err.to_string()
                .starts_with(&format!("{}: cannot read: ", missing.display())),
            "{err}"
        );
    }
}
