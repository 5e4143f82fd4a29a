//! The configuration file: YAML in, a validated [`Config`] out. [`load`] is the one entry;
//! no type past it can hold an ID or a duration that was not checked, and every error about
//! content is an [`Invalid`] that names the key path and the line.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::ids;
use crate::ssm::TargetFilter;
pub use crate::ssm::aws::{Role, redacted_url};

mod duration;
mod file;
mod parse;
mod region;
mod yaml;

pub use duration::{format_duration, parse_duration};
pub use file::{FileError, MAX_FILE_BYTES, read_file};
pub use parse::parse;
pub use region::KNOWN_REGIONS;
pub(crate) use yaml::locate;
pub use yaml::{MAX_FLOW_DEPTH, from_yaml};

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
    /// Accounts and regions to poll, each pair on its own client; empty: one pair, the
    /// default credentials in `region`.
    pub accounts: Vec<Account>,
    /// Overrides the STS endpoint that roles are assumed through (`AWS_ENDPOINT_URL_STS` does
    /// the same from the environment).
    pub sts_endpoint_url: Option<String>,
    /// The SQS queue State Manager's events arrive on; `None`: polling alone.
    pub events: Option<Events>,
}

/// Where State Manager's events are read: an SQS queue an EventBridge rule feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Events {
    /// `https://sqs.<region>.amazonaws.com/<account>/<name>`, or a simulator's.
    pub queue_url: String,
    /// The account and region the URL names, when it has the AWS form: they choose whose
    /// credentials read it.
    pub queue_place: Option<Place>,
    /// Overrides the SQS endpoint (`AWS_ENDPOINT_URL_SQS` does the same from the environment).
    pub endpoint_url: Option<String>,
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
pub struct PairSpec {
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

    /// How a summary names it: nothing without sharding.
    pub fn summary(&self) -> String {
        if self.total > 1 {
            format!(", shard {} of {}", self.index, self.total)
        } else {
            String::new()
        }
    }

    /// Whether this replica polls the association. The hash (FNV-1a of the lower-case ID) is
    /// fixed: every replica, of every version, agrees on who polls what.
    pub fn owns(&self, association_id: &str) -> bool {
        if self.total <= 1 {
            return true;
        }
        let hash = ids::fold(association_id)
            .bytes()
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

/// The shortest poll interval: tests go this low, real fleets never should.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);
/// The safety valve for the assumption that finished executions do not change.
pub const DEFAULT_FULL_REFRESH: Duration = Duration::from_secs(6 * 3600);
pub const DEFAULT_CYCLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Failed targets named per association when naming is on: enough for an alert to list them,
/// few enough that a fleet-wide failure does not flood Prometheus.
pub const DEFAULT_FAILED_TARGETS: usize = 50;

/// Why a configuration file was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: FileError,
    },
    #[error("{path}: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: Invalid,
    },
}

/// Content that is not a valid configuration: the key path, what is wrong with its value,
/// and the line, as `{key}: {message} at line {line}`. serde_yaml's own messages stand
/// alone: they carry the key path and their position already.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}{}", key_prefix(.key), line_suffix(.line))]
pub struct Invalid {
    key: Option<String>,
    message: String,
    line: Option<usize>,
}

impl Invalid {
    /// A message that names no key: serde_yaml's, or one about the whole text.
    pub fn new(message: impl Into<String>) -> Self {
        Invalid {
            key: None,
            message: message.into(),
            line: None,
        }
    }

    /// A problem with the value of `key`, at no line yet.
    pub fn of(key: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            key: Some(key.into()),
            ..Invalid::new(message)
        }
    }

    /// A problem with the value of the key path `key`, at its line in `text` if it can be found.
    pub fn at(text: &str, key: &str, message: impl Into<String>) -> Self {
        Invalid::of(key, message).on_line(locate(text, key))
    }

    /// Placed at `line` (1-based), for a problem whose line is not its key path's own: a list
    /// item's at its list, a repeat at its second occurrence.
    #[must_use]
    pub fn on_line(self, line: Option<usize>) -> Self {
        Invalid { line, ..self }
    }
}

fn key_prefix(key: &Option<String>) -> String {
    key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default()
}

fn line_suffix(line: &Option<usize>) -> String {
    line.map(|l| format!(" at line {l}")).unwrap_or_default()
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
/// error of `parse` otherwise.
pub fn load_with<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, Invalid>,
) -> Result<T, ConfigError> {
    let read = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let bytes = read_file(path).map_err(read)?;
    let text = String::from_utf8(bytes).map_err(|_| read(FileError::NotText))?;
    parse(&text).map_err(|source| ConfigError::Invalid {
        path: path.to_owned(),
        source,
    })
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
        if self.events != new.events {
            keys.push("events");
        }
        keys
    }

    /// Every (account, region) pair to poll, in the order of the file; without `accounts`,
    /// the one pair of the default credentials.
    pub fn pairs(&self) -> Vec<PairSpec> {
        if self.accounts.is_empty() {
            return vec![PairSpec {
                place: None,
                region: self.region.clone(),
                endpoint_url: self.endpoint_url.clone(),
                role: None,
            }];
        }
        self.accounts
            .iter()
            .flat_map(|a| {
                a.regions.iter().map(|region| PairSpec {
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

    /// What is valid but likely a mistake, each naming its key path: for `--config.check`,
    /// the start-up log and reloads. None of them stops the exporter.
    pub fn warnings(&self) -> Vec<String> {
        let mut regions: Vec<(String, &str)> = Vec::new();
        if let Some(region) = &self.region {
            regions.push(("region".to_owned(), region));
        }
        for (i, account) in self.accounts.iter().enumerate() {
            for (j, region) in account.regions.iter().enumerate() {
                regions.push((format!("accounts[{i}].regions[{j}]"), region));
            }
        }
        if let Some(place) = self.events.as_ref().and_then(|e| e.queue_place.as_ref()) {
            regions.push(("events.queue_url".to_owned(), &place.region));
        }
        regions
            .into_iter()
            .filter_map(|(key, region)| {
                region::unknown_region(region).map(|warning| format!("{key}: {warning}"))
            })
            .collect()
    }

    /// A one-line description, for `--config.check` and the start-up log.
    pub fn summary(&self) -> String {
        self.summary_in(None)
    }

    /// [`Config::summary`], naming `found`, the region the environment or a profile gave the
    /// client, when the file names none.
    pub fn summary_in(&self, found: Option<&str>) -> String {
        let watch = match &self.watch {
            Watch::Explicit(list) => {
                let pinned = list.iter().filter(|a| a.execution_id.is_some()).count();
                format!(
                    "{} ({pinned} pinned)",
                    counted(list.len(), "explicit association")
                )
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
        let pairs = self.pairs().len();
        let place = if self.accounts.is_empty() {
            format!(
                "region {}, endpoint {}",
                match (&self.region, found) {
                    (Some(region), _) => region.clone(),
                    (None, Some(found)) => format!("{found} (from the environment)"),
                    (None, None) => "from the environment".to_owned(),
                },
                self.endpoint_url
                    .as_deref()
                    .map_or("default".into(), redacted_url),
            )
        } else {
            format!(
                "{} in {}",
                counted(self.accounts.len(), "account"),
                counted(pairs, "account-region pair")
            )
        };
        let per = if pairs > 1 { " per pair" } else { "" };
        let events = self.events.as_ref().map_or(String::new(), |e| {
            format!(", events from {}", redacted_url(&e.queue_url))
        });
        let rate = self.api.requests_per_second;
        let calls = if rate == 1.0 { "call" } else { "calls" };
        format!(
            "{watch}, poll interval {}, {place}, at most {rate} {calls}/s{per}{events}",
            format_duration(self.poll_interval),
        )
    }
}

/// `n` and the noun, plural unless `n` is 1: "1 account", "3 accounts", "0 accounts".
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let events_at = text
            .find("\n# State Manager's events")
            .expect("events comment");
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
            uncomment(&text[sts_key - 1..events_at])
        );
        let with_accounts = format!(
            "{}{accounts}\n",
            text[..start].replace("\nregion: us-east-2\n", "\n")
        );
        let config = parse(&with_accounts).expect("the example's accounts block is valid");
        assert_eq!(config.pairs().len(), 3);
        // And the events block, beside the region.
        let events_key = text.find("# events:").expect("events key");
        let events = uncomment(&text[events_key - 1..]);
        let with_events = format!("{}{}\n", &text[..start], events.replace("\n\n", "\n"));
        let events = parse(&with_events)
            .expect("the example's events block is valid")
            .events
            .expect("events");
        assert_eq!(
            events.queue_place,
            Some(Place {
                account_id: "111111111111".into(),
                region: "us-east-2".into(),
            })
        );
        assert_eq!(
            config.sts_endpoint_url.as_deref(),
            Some("https://sts.us-east-1.amazonaws.com")
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

    /// Every counted noun agrees with its number, the call rate's included.
    #[test]
    fn summaries_count_in_the_singular_and_the_plural() {
        const A1: &str = "fa94c678-85c6-4d40-926b-7c791a0b1c2d";
        const A2: &str = "8dfe3659-4309-493a-8755-0123456789ab";
        let summary = |text: &str| parse(text).expect(text).summary();
        assert_eq!(
            summary(&format!(
                "region: us-east-1\napi:\n  requests_per_second: 1\nassociations:\n  - association_id: {A1}\n"
            )),
            "1 explicit association (0 pinned), poll interval 1m, region us-east-1, endpoint default, at most 1 call/s"
        );
        assert_eq!(
            summary(&format!(
                "region: us-east-1\napi:\n  requests_per_second: 0.5\nassociations:\n  - association_id: {A1}\n  - association_id: {A2}\n"
            )),
            "2 explicit associations (0 pinned), poll interval 1m, region us-east-1, endpoint default, at most 0.5 calls/s"
        );
        assert_eq!(
            summary("accounts:\n  - account_id: \"111111111111\"\n    regions: [us-east-1]\n"),
            "discovery of every association, poll interval 1m, 1 account in 1 account-region pair, at most 5 calls/s"
        );
        assert_eq!(
            summary(
                "accounts:\n  - account_id: \"111111111111\"\n    regions: [us-east-1, eu-west-1]\n"
            ),
            "discovery of every association, poll interval 1m, 1 account in 2 account-region pairs, at most 5 calls/s per pair"
        );
        assert_eq!(counted(0, "account"), "0 accounts");
    }

    /// A well-formed region the exporter does not know is started with; its warning names
    /// the key and the nearest known region.
    #[test]
    fn unknown_regions_are_warnings_not_errors() {
        let config = parse("region: us-est-1\n").expect("a well-formed region is valid");
        assert_eq!(
            config.warnings(),
            vec![
                "region: \"us-est-1\" is not a region this exporter knows; did you mean \"us-east-1\"?"
            ]
        );
        let config = parse(
            "accounts:\n  - account_id: \"111111111111\"\n    regions: [eu-west-1, eu-wset-2]\nevents:\n  queue_url: https://sqs.ap-southeast-9.amazonaws.com/111111111111/events\n",
        )
        .expect("valid");
        assert_eq!(
            config.warnings(),
            vec![
                "accounts[0].regions[1]: \"eu-wset-2\" is not a region this exporter knows; did you mean \"eu-west-2\"?",
                "events.queue_url: \"ap-southeast-9\" is not a region this exporter knows; did you mean \"ap-southeast-1\"?",
            ]
        );
        for known in ["", "region: us-gov-west-1\n", "region: cn-northwest-1\n"] {
            assert_eq!(parse(known).expect(known).warnings(), Vec::<String>::new());
        }
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
                "{}: poll_interval: expected a duration of at least 1s, such as 30s, 5m or 1h30m (units ms, s, m, h, d), got \"soon\" at line 1",
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
