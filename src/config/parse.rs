//! Configuration text → [`Config`]: the raw serde shapes, and the checks of every value, one
//! function per section of the file. Every error names the key path and, where it can be
//! found, the line.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::duration::{duration_words, format_duration, parse_duration};
use super::region::{region_name, valid_region};
use super::yaml::from_yaml_described;
use super::{
    Account, Api, AwsId, Config, DEFAULT_CYCLE_TIMEOUT, DEFAULT_FAILED_TARGETS,
    DEFAULT_FULL_REFRESH, DEFAULT_POLL_INTERVAL, DEFAULT_SESSION_NAME, Discovery, Events, Invalid,
    MIN_POLL_INTERVAL, Place, RetryMode, Role, Watch, WatchedAssociation, locate,
};
use crate::ids::{self, is_uuid};
use crate::ssm::{NonEmpty, TargetFilter, TargetFilterKey};

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
    events: Option<RawEvents>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    queue_url: String,
    endpoint_url: Option<String>,
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
    endpoint_urls: BTreeMap<String, String>,
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

/// What each key takes, in the words of the configuration reference (README's table and
/// config.example.yaml), for the error about a value of the wrong type; list indices are
/// written `[]`. The checks below use the same words where they say what a key takes.
fn expects(key: &str) -> Option<String> {
    if let Some((_, min)) = DURATION_KEYS.iter().find(|(k, _)| *k == key) {
        return Some(duration_words(*min));
    }
    let words = match key {
        "region" | "associations[].region" | "accounts[].regions[]" => REGION,
        "endpoint_url" | "sts_endpoint_url" | "events.queue_url" | "events.endpoint_url" => URL,
        "associations" => "a list of associations",
        "associations[]" => "a mapping with association_id",
        "associations[].association_id" | "associations[].execution_id" => ID,
        "associations[].filters" => "a list of { key, value } filters",
        "associations[].filters[]" => "a mapping of key and value",
        "associations[].filters[].key" => "Status, ResourceId or ResourceType",
        "associations[].filters[].value" => "text",
        "associations[].account_id" | "accounts[].account_id" => ACCOUNT_ID,
        "discovery" => "a mapping of name_prefix and document_name",
        "discovery.name_prefix" | "discovery.document_name" => "text",
        "api" => "a mapping of API settings",
        "api.requests_per_second" => REQUESTS_PER_SECOND,
        "api.burst" => BURST,
        "api.max_in_flight" => MAX_IN_FLIGHT,
        "api.max_attempts" => MAX_ATTEMPTS,
        "api.retry_mode" => "standard or adaptive",
        "failed_targets" => "a mapping of enabled and limit",
        "failed_targets.enabled" => "true or false",
        "failed_targets.limit" => FAILED_TARGETS_LIMIT,
        "accounts" => "a list of accounts",
        "accounts[]" => "a mapping with role_arn or account_id, and regions",
        "accounts[].role_arn" => ROLE_ARN,
        "accounts[].external_id" => "text of 2 to 1224 characters",
        "accounts[].session_name" => SESSION_NAME,
        "accounts[].regions" => "a list of region names such as us-east-1",
        "accounts[].endpoint_urls" => "a mapping of region names to http:// or https:// URLs",
        "events" => "a mapping of queue_url and endpoint_url",
        _ => return None,
    };
    Some(words.to_owned())
}

const REGION: &str = "a region name like us-east-1";
const URL: &str = "an http:// or https:// URL";
const ID: &str = "an ID of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)";
const ACCOUNT_ID: &str = "a 12-digit account ID";
const ROLE_ARN: &str = "an IAM role ARN like arn:aws:iam::123456789012:role/name";
const SESSION_NAME: &str = "2 to 64 letters, digits or +=,.@_-";
const REQUESTS_PER_SECOND: &str = "a number of at least 0.01";
const BURST: &str = "a whole number from 1 to 1000";
const MAX_IN_FLIGHT: &str = "a whole number from 1 to 64";
const MAX_ATTEMPTS: &str = "a whole number from 1 to 10";
const FAILED_TARGETS_LIMIT: &str = "a whole number from 1 to 10000";

/// Validates configuration text.
///
/// # Errors
///
/// [`Invalid`] for the first problem found, in the order of the sections below.
pub fn parse(text: &str) -> Result<Config, Invalid> {
    let raw: RawConfig = from_yaml_described(text, expects)?;
    let poll_interval = duration(
        text,
        POLL_INTERVAL,
        raw.poll_interval.as_deref(),
        DEFAULT_POLL_INTERVAL,
    )?;
    let endpoints = endpoints(text, raw.region, raw.endpoint_url, raw.sts_endpoint_url)?;
    let accounts = accounts(text, raw.accounts.unwrap_or_default())?;
    let places = places(text, &endpoints, &accounts)?;
    let watch = watch(
        text,
        raw.associations.unwrap_or_default(),
        raw.discovery,
        &places,
    )?;
    let full_refresh_interval = duration(
        text,
        FULL_REFRESH_INTERVAL,
        raw.full_refresh_interval.as_deref(),
        DEFAULT_FULL_REFRESH,
    )?;
    let cycle_timeout = duration(
        text,
        CYCLE_TIMEOUT,
        raw.cycle_timeout.as_deref(),
        DEFAULT_CYCLE_TIMEOUT,
    )?;
    let api = api(text, raw.api)?;
    let failed_targets = failed_targets(text, raw.failed_targets)?;
    let events = raw.events.map(|e| events(text, e)).transpose()?;
    Ok(Config {
        region: endpoints.region,
        endpoint_url: endpoints.endpoint_url,
        poll_interval,
        watch,
        full_refresh_interval,
        cycle_timeout,
        api,
        failed_targets,
        accounts,
        sts_endpoint_url: endpoints.sts_endpoint_url,
        events,
    })
}

/// The events queue: an http(s) URL; the account and region it names, when it has the AWS
/// form, choose whose credentials read it.
fn events(text: &str, raw: RawEvents) -> Result<Events, Invalid> {
    field(text, "events.queue_url", &raw.queue_url, non_empty)?;
    field(text, "events.queue_url", &raw.queue_url, http_url)?;
    let endpoint_url = text_field(text, "events.endpoint_url", raw.endpoint_url)?;
    if let Some(url) = &endpoint_url {
        field(text, "events.endpoint_url", url, http_url)?;
    }
    Ok(Events {
        queue_place: queue_place(&raw.queue_url),
        queue_url: raw.queue_url,
        endpoint_url,
    })
}

/// The account and region of `https://sqs.<region>.amazonaws.com/<account>/<name>`.
fn queue_place(url: &str) -> Option<Place> {
    let rest = url.strip_prefix("https://sqs.")?;
    let (region, rest) = rest.split_once('.')?;
    let (_, path) = rest.split_once('/')?;
    let (account_id, _) = path.split_once('/')?;
    (valid_region(region)
        && account_id.len() == 12
        && account_id.bytes().all(|b| b.is_ascii_digit()))
    .then(|| Place {
        account_id: account_id.to_owned(),
        region: region.to_owned(),
    })
}

/// Checks one value with `check`, whose message is placed at `key`.
fn field(
    text: &str,
    key: &str,
    value: &str,
    check: fn(&str) -> Result<(), String>,
) -> Result<(), Invalid> {
    check(value).map_err(|message| Invalid::at(text, key, message))
}

/// An optional string, which must not be empty when given.
fn text_field(text: &str, key: &str, value: Option<String>) -> Result<Option<String>, Invalid> {
    if let Some(v) = &value {
        field(text, key, v, non_empty)?;
    }
    Ok(value)
}

/// A key that takes a duration, and the least it takes.
type DurationKey = (&'static str, Duration);

const POLL_INTERVAL: DurationKey = ("poll_interval", MIN_POLL_INTERVAL);
const FULL_REFRESH_INTERVAL: DurationKey = ("full_refresh_interval", Duration::ZERO);
const CYCLE_TIMEOUT: DurationKey = ("cycle_timeout", MIN_POLL_INTERVAL);
const API_TIMEOUT: DurationKey = ("api.timeout", MIN_POLL_INTERVAL);
const DURATION_KEYS: [DurationKey; 4] = [
    POLL_INTERVAL,
    FULL_REFRESH_INTERVAL,
    CYCLE_TIMEOUT,
    API_TIMEOUT,
];

/// An optional duration of at least the key's least, `default` when absent.
fn duration(
    text: &str,
    (key, min): DurationKey,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, Invalid> {
    let Some(v) = value else {
        return Ok(default);
    };
    let d = parse_duration(v).ok_or_else(|| {
        Invalid::at(
            text,
            key,
            format!("expected {}, got {v:?}", duration_words(min)),
        )
    })?;
    if d < min {
        return Err(Invalid::at(
            text,
            key,
            format!("must be at least {}", format_duration(min)),
        ));
    }
    Ok(d)
}

/// The top-level region and endpoints, for the one pair of a file without `accounts`.
struct Endpoints {
    region: Option<String>,
    endpoint_url: Option<String>,
    sts_endpoint_url: Option<String>,
}

fn endpoints(
    text: &str,
    region: Option<String>,
    endpoint_url: Option<String>,
    sts_endpoint_url: Option<String>,
) -> Result<Endpoints, Invalid> {
    let region = text_field(text, "region", region)?;
    if let Some(r) = &region {
        field(text, "region", r, region_name)?;
    }
    let endpoint_url = text_field(text, "endpoint_url", endpoint_url)?;
    if let Some(url) = &endpoint_url {
        field(text, "endpoint_url", url, http_url)?;
    }
    let sts_endpoint_url = text_field(text, "sts_endpoint_url", sts_endpoint_url)?;
    if let Some(url) = &sts_endpoint_url {
        field(text, "sts_endpoint_url", url, http_url)?;
    }
    Ok(Endpoints {
        region,
        endpoint_url,
        sts_endpoint_url,
    })
}

/// Every (account, region) pair the accounts list, once the top-level region and endpoint
/// are known to be absent beside them.
fn places(text: &str, endpoints: &Endpoints, accounts: &[Account]) -> Result<Vec<Place>, Invalid> {
    if !accounts.is_empty() {
        for (key, given) in [
            ("region", endpoints.region.is_some()),
            ("endpoint_url", endpoints.endpoint_url.is_some()),
        ] {
            if given {
                return Err(Invalid::at(
                    text,
                    key,
                    "give regions and endpoint_urls under accounts when accounts are listed",
                ));
            }
        }
    }
    Ok(accounts
        .iter()
        .flat_map(|a| {
            a.regions.iter().map(|r| Place {
                account_id: a.account_id.clone(),
                region: r.clone(),
            })
        })
        .collect())
}

/// Validates the `accounts` list: each pair of account and region once, every key checked.
fn accounts(text: &str, raw: Vec<RawAccount>) -> Result<Vec<Account>, Invalid> {
    let mut accounts: Vec<Account> = Vec::new();
    for (i, a) in raw.into_iter().enumerate() {
        let account = account(text, &format!("accounts[{i}]"), a, &accounts)?;
        accounts.push(account);
    }
    Ok(accounts)
}

/// One entry of `accounts` at `path`, after the `earlier` ones.
fn account(text: &str, path: &str, a: RawAccount, earlier: &[Account]) -> Result<Account, Invalid> {
    let account_id = account_id(text, path, a.role_arn.as_deref(), a.account_id)?;
    let role = role(text, path, a.role_arn, a.external_id, a.session_name)?;
    if a.regions.is_empty() {
        return Err(
            Invalid::of(format!("{path}.regions"), "list at least one region")
                .on_line(locate(text, path)),
        );
    }
    for (j, region) in a.regions.iter().enumerate() {
        let invalid = |message: String| {
            Invalid::of(format!("{path}.regions[{j}]"), message)
                .on_line(locate(text, &format!("{path}.regions")))
        };
        region_name(region).map_err(invalid)?;
        if a.regions[..j].contains(region) {
            return Err(invalid(format!("{region} is listed twice")));
        }
        if let Some(k) = earlier
            .iter()
            .position(|o| o.account_id == account_id && o.regions.contains(region))
        {
            return Err(invalid(format!(
                "account {account_id} in {region} is listed already under accounts[{k}]"
            )));
        }
    }
    for (region, url) in &a.endpoint_urls {
        let invalid = |message: String| {
            Invalid::of(format!("{path}.endpoint_urls.{region}"), message)
                .on_line(locate(text, &format!("{path}.endpoint_urls")))
        };
        if !a.regions.contains(region) {
            return Err(invalid(format!(
                "{region} is not one of the account's regions"
            )));
        }
        http_url(url).map_err(invalid)?;
    }
    Ok(Account {
        account_id,
        role,
        regions: a.regions,
        endpoint_urls: a.endpoint_urls,
    })
}

/// The account's ID: from the role ARN, or given for the default credentials; both must agree.
fn account_id(
    text: &str,
    path: &str,
    role_arn: Option<&str>,
    given: Option<String>,
) -> Result<String, Invalid> {
    let from_arn = match role_arn {
        Some(arn) => Some(role_account(arn).ok_or_else(|| {
            Invalid::at(
                text,
                &format!("{path}.role_arn"),
                format!("{arn:?} is not {ROLE_ARN}"),
            )
        })?),
        None => None,
    };
    let key = format!("{path}.account_id");
    match (from_arn, given) {
        (Some(from_arn), Some(given)) if from_arn != given => Err(Invalid::at(
            text,
            &key,
            format!("{given} is not the account of the role ARN, {from_arn}"),
        )),
        (Some(id), _) => Ok(id),
        (None, Some(given)) => {
            if given.len() != 12 || !given.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Invalid::at(
                    text,
                    &key,
                    format!("{given:?} is not {ACCOUNT_ID}"),
                ));
            }
            Ok(given)
        }
        (None, None) => Err(Invalid::at(
            text,
            path,
            "needs role_arn, or account_id to poll with the default credentials",
        )),
    }
}

/// The role to assume, if any; `external_id` and `session_name` apply only with one.
fn role(
    text: &str,
    path: &str,
    role_arn: Option<String>,
    external_id: Option<String>,
    session_name: Option<String>,
) -> Result<Option<Role>, Invalid> {
    let Some(arn) = role_arn else {
        for (key, given) in [
            ("external_id", external_id.is_some()),
            ("session_name", session_name.is_some()),
        ] {
            if given {
                return Err(Invalid::at(
                    text,
                    &format!("{path}.{key}"),
                    "applies only with role_arn",
                ));
            }
        }
        return Ok(None);
    };
    let external_id = match external_id {
        Some(id) if !(2..=1224).contains(&id.len()) => {
            return Err(Invalid::at(
                text,
                &format!("{path}.external_id"),
                "must be 2 to 1224 characters",
            ));
        }
        id => id,
    };
    let session_name = match session_name {
        Some(name) if !valid_session_name(&name) => {
            return Err(Invalid::at(
                text,
                &format!("{path}.session_name"),
                format!("{name:?} must be {SESSION_NAME}"),
            ));
        }
        Some(name) => name,
        None => DEFAULT_SESSION_NAME.to_owned(),
    };
    Ok(Some(Role {
        arn,
        external_id,
        session_name,
    }))
}

/// Which associations to poll: the listed ones, or discovery when none are listed.
fn watch(
    text: &str,
    associations: Vec<RawAssociation>,
    discovery: Option<RawDiscovery>,
    places: &[Place],
) -> Result<Watch, Invalid> {
    if associations.is_empty() {
        let discovery = match discovery {
            None => Discovery::default(),
            Some(d) => Discovery {
                name_prefix: text_field(text, "discovery.name_prefix", d.name_prefix)?,
                document_name: text_field(text, "discovery.document_name", d.document_name)?,
            },
        };
        return Ok(Watch::Discover(discovery));
    }
    if discovery.is_some() {
        return Err(Invalid::at(
            text,
            "discovery",
            "applies only when no associations are listed; remove one of the two",
        ));
    }
    let mut watched: Vec<WatchedAssociation> = Vec::new();
    for (i, a) in associations.into_iter().enumerate() {
        let association = association(text, &format!("associations[{i}]"), a, &watched, places)?;
        watched.push(association);
    }
    Ok(Watch::Explicit(watched))
}

/// One entry of `associations` at `path`, after the `earlier` ones.
fn association(
    text: &str,
    path: &str,
    a: RawAssociation,
    earlier: &[WatchedAssociation],
    places: &[Place],
) -> Result<WatchedAssociation, Invalid> {
    let id_key = format!("{path}.association_id");
    field(text, &id_key, &a.association_id, uuid)?;
    let association_id = AwsId(ids::fold(&a.association_id));
    if let Some(first) = earlier
        .iter()
        .position(|w| w.association_id == association_id)
    {
        return Err(Invalid::at(
            text,
            &id_key,
            format!("{association_id} is listed already as associations[{first}]"),
        ));
    }
    let execution_id = match a.execution_id {
        Some(e) => {
            field(text, &format!("{path}.execution_id"), &e, uuid)?;
            Some(AwsId(ids::fold(&e)))
        }
        None => None,
    };
    let mut filters = Vec::new();
    for (j, f) in a.filters.into_iter().enumerate() {
        let value = NonEmpty::new(f.value).ok_or_else(|| {
            Invalid::at(
                text,
                &format!("{path}.filters[{j}].value"),
                "must not be empty",
            )
        })?;
        filters.push(TargetFilter { key: f.key, value });
    }
    // Placed at the entry's first key: the entry has no key of its own.
    let invalid = |message: String| Invalid::of(path, message).on_line(locate(text, &id_key));
    let place = match (a.account_id, a.region) {
        (None, None) if places.is_empty() => None,
        (Some(account_id), Some(region)) if !places.is_empty() => {
            let place = Place { account_id, region };
            if !places.contains(&place) {
                return Err(invalid(format!(
                    "account {} and region {} are not a pair listed under accounts",
                    place.account_id, place.region,
                )));
            }
            Some(place)
        }
        _ if places.is_empty() => {
            return Err(invalid(
                "account_id and region apply only when accounts are listed".to_owned(),
            ));
        }
        _ => {
            return Err(invalid(
                "needs account_id and region, to say which listed account and region hold it"
                    .to_owned(),
            ));
        }
    };
    Ok(WatchedAssociation {
        association_id,
        execution_id,
        filters,
        place,
    })
}

/// The `api` section, each key within its range, the defaults for the rest.
fn api(text: &str, raw: Option<RawApi>) -> Result<Api, Invalid> {
    let defaults = Api::default();
    let Some(a) = raw else {
        return Ok(defaults);
    };
    let range = |key: &str, ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(Invalid::at(text, key, format!("must be {what}")))
        }
    };
    let requests_per_second = a
        .requests_per_second
        .unwrap_or(defaults.requests_per_second);
    range(
        "api.requests_per_second",
        requests_per_second.is_finite() && requests_per_second >= 0.01,
        REQUESTS_PER_SECOND,
    )?;
    let burst = a.burst.unwrap_or(defaults.burst);
    range("api.burst", (1..=1000).contains(&burst), BURST)?;
    let max_in_flight = a.max_in_flight.unwrap_or(defaults.max_in_flight);
    range(
        "api.max_in_flight",
        (1..=64).contains(&max_in_flight),
        MAX_IN_FLIGHT,
    )?;
    let max_attempts = a.max_attempts.unwrap_or(defaults.max_attempts);
    range(
        "api.max_attempts",
        (1..=10).contains(&max_attempts),
        MAX_ATTEMPTS,
    )?;
    Ok(Api {
        requests_per_second,
        burst,
        max_in_flight,
        max_attempts,
        retry_mode: a.retry_mode.unwrap_or(defaults.retry_mode),
        timeout: duration(text, API_TIMEOUT, a.timeout.as_deref(), defaults.timeout)?,
    })
}

/// How many failed targets to name per association; `None` unless enabled. The limit is
/// checked whether or not the feature is on, so that turning it on later cannot reveal a
/// mistake made long before.
fn failed_targets(text: &str, raw: Option<RawFailedTargets>) -> Result<Option<usize>, Invalid> {
    let Some(RawFailedTargets { enabled, limit }) = raw else {
        return Ok(None);
    };
    let limit = limit.unwrap_or(DEFAULT_FAILED_TARGETS);
    if !(1..=10_000).contains(&limit) {
        return Err(Invalid::at(
            text,
            "failed_targets.limit",
            format!("must be {FAILED_TARGETS_LIMIT}"),
        ));
    }
    Ok((enabled == Some(true)).then_some(limit))
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

fn http_url(url: &str) -> Result<(), String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(format!("{url:?} is not {URL}"))
    }
}

fn uuid(value: &str) -> Result<(), String> {
    if is_uuid(value) {
        Ok(())
    } else {
        Err(format!("{value:?} is not {ID}"))
    }
}

fn non_empty(value: &str) -> Result<(), String> {
    if value.is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{PairSpec, Watch};

    const A1: &str = "fa94c678-85c6-4d40-926b-7c791a0b1c2d";
    const E1: &str = "d6d51ef5-4eca-48ef-9d7d-bd6ce3e4f5a6";

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
                value: NonEmpty::new("Failed").expect("non-empty")
            }]
        );
        assert_eq!(
            config.summary(),
            "1 explicit association (1 pinned), poll interval 1m, region us-east-2, endpoint default, at most 5 calls/s"
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
                "unknown field `scrape_timeout`, expected one of `region`, `endpoint_url`, `poll_interval`, `associations`, `discovery`, `full_refresh_interval`, `cycle_timeout`, `api`, `failed_targets`, `accounts`, `sts_endpoint_url`, `events` at line 3 column 1",
            ),
            (
                "poll_interval: 60\n",
                "poll_interval: expected a duration of at least 1s, such as 30s, 5m or 1h30m (units ms, s, m, h, d), got \"60\" at line 1",
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
                "failed_targets:\n  limit: 20000\n",
                "failed_targets.limit: must be a whole number from 1 to 10000 at line 2",
            ),
            (
                "failed_targets:\n  enabled: false\n  limit: 0\n",
                "failed_targets.limit: must be a whole number from 1 to 10000 at line 3",
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
                "full_refresh_interval: expected a duration, such as 30s, 5m or 1h30m (units ms, s, m, h, d), got \"soon\" at line 1",
            ),
            (
                "api:\n  requests_per_second: 0\n",
                "api.requests_per_second: must be a number of at least 0.01 at line 2",
            ),
            (
                "api:\n  requests_per_second: fast\n",
                "api.requests_per_second: expected a number of at least 0.01, got \"fast\" at line 2",
            ),
            (
                "api:\n  max_in_flight: 0\n",
                "api.max_in_flight: must be a whole number from 1 to 64 at line 2",
            ),
            (
                "api:\n  burst: 5000\n",
                "api.burst: must be a whole number from 1 to 1000 at line 2",
            ),
            (
                "api:\n  max_attempts: -1\n",
                "api.max_attempts: expected a whole number from 1 to 10, got -1 at line 2",
            ),
            // A value of the wrong type: what the key takes, in the reference's words.
            (
                "api:\n  max_in_flight: -5\n",
                "api.max_in_flight: expected a whole number from 1 to 64, got -5 at line 2",
            ),
            (
                "api:\n  burst: 1.5\n",
                "api.burst: expected a whole number from 1 to 1000, got 1.5 at line 2",
            ),
            (
                "failed_targets:\n  enabled: yes\n",
                "failed_targets.enabled: expected true or false, got \"yes\" at line 2",
            ),
            (
                "failed_targets:\n  limit: many\n",
                "failed_targets.limit: expected a whole number from 1 to 10000, got \"many\" at line 2",
            ),
            (
                "poll_interval: [1m]\n",
                "poll_interval: expected a duration of at least 1s, such as 30s, 5m or 1h30m (units ms, s, m, h, d), got a list at line 1",
            ),
            (
                "api:\n  timeout: 30\n",
                "api.timeout: expected a duration of at least 1s, such as 30s, 5m or 1h30m (units ms, s, m, h, d), got \"30\" at line 2",
            ),
            (
                "endpoint_url:\n  url: http://127.0.0.1:4566\n",
                "endpoint_url: expected an http:// or https:// URL, got a mapping at line 2",
            ),
            (
                "discovery: patch-\n",
                "discovery: expected a mapping of name_prefix and document_name, got \"patch-\" at line 1",
            ),
            (
                &format!("associations:\n  - {A1}\n"),
                &format!(
                    "associations[0]: expected a mapping with association_id, got \"{A1}\" at line 2"
                ),
            ),
            (
                &format!(
                    "associations:\n  - association_id: {A1}\n    filters:\n      - {{ key: [Status], value: x }}\n"
                ),
                "associations[0].filters[0].key: expected Status, ResourceId or ResourceType, got a list at line 4",
            ),
            (
                "accounts:\n  - role_arn: arn:aws:iam::111111111111:role/x\n    regions: us-east-1\n",
                "accounts[0].regions: expected a list of region names such as us-east-1, got \"us-east-1\" at line 3",
            ),
            (
                "accounts:\n  - role_arn: arn:aws:iam::111111111111:role/x\n    regions: [[us-east-1]]\n",
                "accounts[0].regions[0]: expected a region name like us-east-1, got a list at line 3",
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
                "associations: expected a list of associations, got \"all\" at line 1",
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
                "region: expected a region name like us-east-1, got a list at line 1",
            ),
            (
                "- region\n",
                "expected a mapping of configuration keys, got a list at line 1",
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
                let got = parse(text).expect_err(text).to_string();
                (got != *expected)
                    .then(|| format!("config:\n{text}\n  got: {got}\n want: {expected}"))
            })
            .collect();
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
    }

    /// Every key of the configuration reference's table has words for the error about a
    /// value of the wrong type.
    #[test]
    fn every_documented_key_says_what_it_takes() {
        let reference = include_str!("../../docs/configuration.md");
        let section = reference
            .split_once("\n## The keys\n")
            .and_then(|(_, rest)| rest.split_once("\n## "))
            .map(|(section, _)| section)
            .expect("docs/configuration.md has a section The keys");
        let keys: Vec<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once(" |").map(|(cell, _)| cell))
            .flat_map(|cell| cell.split(", "))
            .map(|k| k.trim_matches('`'))
            .collect();
        assert!(keys.len() >= 30, "{keys:?}");
        let missing: Vec<&str> = keys.into_iter().filter(|k| expects(k).is_none()).collect();
        assert!(missing.is_empty(), "no words for {missing:?}");
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
            config.pairs(),
            vec![
                PairSpec {
                    place: Some(place("111111111111", "us-east-1")),
                    region: Some("us-east-1".into()),
                    endpoint_url: None,
                    role: Some(role.clone()),
                },
                PairSpec {
                    place: Some(place("111111111111", "eu-west-1")),
                    region: Some("eu-west-1".into()),
                    endpoint_url: Some("http://127.0.0.1:8".into()),
                    role: Some(role),
                },
                PairSpec {
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
            "1 explicit association (0 pinned), poll interval 1m, 2 accounts in 3 account-region pairs, at most 5 calls/s per pair"
        );
        let mut other = config.clone();
        other.accounts.pop();
        assert_eq!(config.needs_restart(&other), vec!["accounts"]);
        // Without accounts: one pair, no place.
        let single = parse("region: us-east-1\n").expect("valid");
        assert_eq!(
            single.pairs(),
            vec![PairSpec {
                place: None,
                region: Some("us-east-1".into()),
                endpoint_url: None,
                role: None,
            }]
        );
    }
}
