//! The status page at `/` and its JSON at `/api/v1/status`: what the exporter sees, per pair
//! and per association. The board's renderer builds a [`Status`] and renders a
//! [`StatusPage`] from it once per change of the board; a request only picks and concatenates
//! pre-rendered bytes, never renders, never calls AWS. No value from SSM or the configuration
//! reaches the HTML without passing [`escape`].

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use prometheus::proto::MetricFamily;
use serde::Serialize;

use crate::board::{LastCycle, Posts};
use crate::snapshot::AssociationState;
use crate::telemetry::NAMESPACE;

pub const HTML_TYPE: &str = "text/html; charset=utf-8";
pub const JSON_TYPE: &str = "application/json";

/// Rows the page shows per filter, failed ones first; the rest are counted, not shown. It
/// bounds the page whatever the fleet: the JSON has every association.
pub const MAX_ROWS: usize = 500;

/// Failed targets a row names; the association's own view names all that were kept.
const ROW_FAILED_TARGETS: usize = 3;

/// The filter value of associations that never ran.
pub const NO_EXECUTION: &str = "none";

/// Execution statuses the page counts as failed, and lists first.
const FAILED: &[&str] = &[
    "Failed",
    "TimedOut",
    "CompletedWithFailure",
    "ExecutionTimedOut",
    "DeliveryTimedOut",
    "Undeliverable",
];

/// This build, as the page names it.
pub const BUILD: Build = Build {
    version: env!("CARGO_PKG_VERSION"),
    rustc: env!("SAE_RUSTC_VERSION"),
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Build {
    pub version: &'static str,
    pub rustc: &'static str,
}

/// What the page is made from, published with each exposition: the board as the exposition
/// shows it (its snapshots are shared, not copied) and the exporter's own families.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub posts: Posts,
    pub families: Vec<MetricFamily>,
}

/// Everything the page shows, as `/api/v1/status` serves it (docs/status-api.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub build: Build,
    /// When it was rendered: ages are measured to this moment.
    pub rendered_unix: f64,
    pub generation: u64,
    /// The running configuration as `--config.check` prints it.
    pub config: String,
    pub ready: bool,
    /// `None` when events are off.
    pub events: Option<EventsStatus>,
    pub pairs: Vec<PairStatus>,
    /// Every association of every pair: failed ones first, then by pair, name and ID.
    pub associations: Vec<AssociationStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventsStatus {
    /// Whether the last receive from the queue succeeded; `None` before the first.
    pub queue_up: Option<bool>,
    /// Events read, by outcome.
    pub received: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairStatus {
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub cycles: u64,
    pub targeted_polls: u64,
    pub associations: usize,
    pub last_cycle: Option<CycleStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CycleStatus {
    pub finished_unix: f64,
    pub duration_seconds: f64,
    pub api_calls: usize,
    pub throttled_calls: usize,
    pub failures: usize,
    /// `success` when every call succeeded, else `failure`.
    pub outcome: &'static str,
    pub error_kind: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssociationStatus {
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub association_id: String,
    pub name: Option<String>,
    pub document_name: Option<String>,
    /// The latest (or pinned) execution; `None` when it never ran.
    pub execution: Option<ExecutionStatus>,
    /// Targets of the execution by status, summed over detailed status and resource type.
    pub targets_by_status: BTreeMap<String, u64>,
    /// `None` unless the configuration names failed targets.
    pub failed_targets: Option<FailedTargetsStatus>,
    pub poll_success: bool,
    pub error_kind: Option<&'static str>,
    pub last_success_unix: Option<f64>,
    /// Seconds from the last successful poll to `rendered_unix`.
    pub data_age_seconds: Option<f64>,
    /// Its poll failed, or its execution's status is a failure: listed first.
    pub failed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionStatus {
    pub execution_id: String,
    pub pinned: bool,
    pub status: Option<String>,
    pub detailed_status: Option<String>,
    pub created_unix: Option<f64>,
    pub targets: Vec<TargetCountStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetCountStatus {
    pub status: String,
    pub detailed_status: String,
    pub resource_type: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedTargetsStatus {
    pub named: Vec<FailedTargetStatus>,
    /// Failed targets beyond the configured limit, not named.
    pub omitted: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedTargetStatus {
    pub resource_id: String,
    pub resource_type: String,
    pub detailed_status: String,
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Status {
    /// The status of the board `posts`, with the exporter's own `families`, as of `now`.
    pub(crate) fn of(
        posts: &Posts,
        families: &[MetricFamily],
        now: SystemTime,
        build: Build,
    ) -> Status {
        let mut associations = Vec::new();
        let mut pairs = Vec::new();
        for (slot, posted) in posts.sources().iter().enumerate() {
            let account_id = posted.place.as_ref().map(|p| p.account_id.clone());
            let region = posted.place.as_ref().map(|p| p.region.clone());
            pairs.push(PairStatus {
                account_id: account_id.clone(),
                region: region.clone(),
                cycles: posted.cycles,
                targeted_polls: posted.targeted,
                associations: posted.snapshot.associations.len(),
                last_cycle: posted.last_cycle.as_ref().map(cycle_status),
            });
            for a in &posted.snapshot.associations {
                let status = association_status(a, account_id.clone(), region.clone(), now);
                associations.push((slot, status));
            }
        }
        associations.sort_by(|(slot_a, a), (slot_b, b)| {
            (!a.failed, slot_a, &a.name, &a.association_id).cmp(&(
                !b.failed,
                slot_b,
                &b.name,
                &b.association_id,
            ))
        });
        Status {
            build,
            rendered_unix: unix(now),
            generation: posts.generation(),
            config: posts.summary().to_owned(),
            ready: posts.ready(),
            events: events_status(families),
            pairs,
            associations: associations.into_iter().map(|(_, a)| a).collect(),
        }
    }
}

fn cycle_status(c: &LastCycle) -> CycleStatus {
    CycleStatus {
        finished_unix: unix(c.finished),
        duration_seconds: c.duration.as_secs_f64(),
        api_calls: c.calls,
        throttled_calls: c.throttled,
        failures: c.failures,
        outcome: if c.failures == 0 {
            "success"
        } else {
            "failure"
        },
        error_kind: c.error_kind,
    }
}

fn association_status(
    a: &AssociationState,
    account_id: Option<String>,
    region: Option<String>,
    now: SystemTime,
) -> AssociationStatus {
    let execution = a.execution.as_ref().map(|e| ExecutionStatus {
        execution_id: e.execution.execution_id.clone(),
        pinned: e.pinned,
        status: e.execution.status.clone(),
        detailed_status: e.execution.detailed_status.clone(),
        created_unix: e.execution.created_time.map(unix),
        targets: e
            .targets
            .iter()
            .map(|(k, count)| TargetCountStatus {
                status: k.status.to_string(),
                detailed_status: k.detailed_status.to_string(),
                resource_type: k.resource_type.to_string(),
                count,
            })
            .collect(),
    });
    let mut targets_by_status = BTreeMap::new();
    for t in execution.iter().flat_map(|e| &e.targets) {
        *targets_by_status.entry(t.status.clone()).or_insert(0) += t.count;
    }
    let failed_targets = a
        .execution
        .as_ref()
        .and_then(|e| e.failed.as_ref())
        .map(|f| FailedTargetsStatus {
            named: f
                .iter()
                .map(|(id, t)| FailedTargetStatus {
                    resource_id: id.clone(),
                    resource_type: t.resource_type.clone(),
                    detailed_status: t.detailed_status.clone(),
                })
                .collect(),
            omitted: f.omitted,
        });
    let status = execution.as_ref().and_then(|e| e.status.as_deref());
    let failed = !a.poll_ok || status.is_some_and(|s| FAILED.contains(&s));
    AssociationStatus {
        account_id,
        region,
        association_id: a.id().to_owned(),
        name: a.association.association_name.clone(),
        document_name: a.association.document_name.clone(),
        execution,
        targets_by_status,
        failed_targets,
        poll_success: a.poll_ok,
        error_kind: a.error_kind,
        last_success_unix: a.last_success.map(unix),
        data_age_seconds: a
            .last_success
            .map(|t| now.duration_since(t).unwrap_or_default().as_secs_f64()),
        failed,
    }
}

/// The events' health, read from the exporter's own families: present when events are on.
fn events_status(families: &[MetricFamily]) -> Option<EventsStatus> {
    let family = |name: &str| {
        let full = format!("{NAMESPACE}_{name}");
        families.iter().find(|f| f.name() == full)
    };
    let up = family("events_queue_up");
    let received = family("events_received_total");
    if up.is_none() && received.is_none() {
        return None;
    }
    let queue_up = up
        .and_then(|f| f.get_metric().first())
        .map(|m| m.get_gauge().get_value() != 0.0);
    let received = received
        .map(|f| {
            f.get_metric()
                .iter()
                .map(|m| {
                    let outcome = m
                        .get_label()
                        .iter()
                        .find(|l| l.name() == "outcome")
                        .map(|l| l.value().to_owned())
                        .unwrap_or_default();
                    (outcome, m.get_counter().get_value() as u64)
                })
                .collect()
        })
        .unwrap_or_default();
    Some(EventsStatus { queue_up, received })
}

impl AssociationStatus {
    /// What the status filter matches: the execution's status, or [`NO_EXECUTION`].
    pub fn filter_key(&self) -> &str {
        self.execution
            .as_ref()
            .and_then(|e| e.status.as_deref())
            .unwrap_or(NO_EXECUTION)
    }
}

/// The rendered page, its per-status variants, each association's view and the JSON.
#[derive(Debug, Default)]
pub struct StatusPage {
    /// Everything before the filter links.
    head: Bytes,
    /// The first is "all"; then one per status present.
    filters: Vec<Filter>,
    /// One table row per association, in the order of [`Status::associations`]; empty for
    /// those no filter shows.
    rows: Vec<Bytes>,
    /// Everything after the table.
    foot: Bytes,
    view_head: Bytes,
    /// By the association ID as its link spells it: its facts in every pair that has it.
    views: HashMap<String, Bytes>,
    view_foot: Bytes,
    pub json: Bytes,
}

#[derive(Debug)]
struct Filter {
    /// The `status` query value, percent-encoded as the link spells it; `None` for all.
    query: Option<String>,
    /// The filter links with this one current, and the table's head.
    open: Bytes,
    /// Indexes into `rows`, at most [`MAX_ROWS`].
    rows: Vec<usize>,
    /// The table's end, and how many this filter matches but does not show.
    close: Bytes,
}

impl StatusPage {
    /// Renders every variant of the page, the views and the JSON.
    pub fn render(status: &Status, telemetry_path: &str) -> StatusPage {
        let placed = status.pairs.iter().any(|p| p.account_id.is_some());
        let head = Bytes::from(page_head(status, telemetry_path));
        let mut by_status: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, a) in status.associations.iter().enumerate() {
            by_status.entry(a.filter_key()).or_default().push(i);
        }
        let all: Vec<usize> = (0..status.associations.len()).collect();
        // Only the rows some filter shows are rendered.
        let mut shown = vec![false; all.len()];
        for rows in std::iter::once(&all).chain(by_status.values()) {
            for &i in rows.iter().take(MAX_ROWS) {
                shown[i] = true;
            }
        }
        let rows: Vec<Bytes> = status
            .associations
            .iter()
            .zip(shown)
            .map(|(a, shown)| {
                if shown {
                    Bytes::from(row(a, placed))
                } else {
                    Bytes::new()
                }
            })
            .collect();
        let choices: Vec<(Option<&str>, &Vec<usize>)> = std::iter::once((None, &all))
            .chain(by_status.iter().map(|(k, v)| (Some(*k), v)))
            .collect();
        let filters = choices
            .iter()
            .map(|(current, matching)| Filter {
                query: current.map(encode),
                open: Bytes::from(filter_open(&choices, *current, placed)),
                rows: matching.iter().copied().take(MAX_ROWS).collect(),
                close: Bytes::from(filter_close(matching.len())),
            })
            .collect();

        let mut views: HashMap<String, String> = HashMap::new();
        for a in &status.associations {
            view(views.entry(encode(&a.association_id)).or_default(), a);
        }
        StatusPage {
            head,
            filters,
            rows,
            foot: Bytes::from(page_foot()),
            view_head: Bytes::from(view_head(status)),
            views: views
                .into_iter()
                .map(|(k, v)| (k, Bytes::from(v)))
                .collect(),
            view_foot: Bytes::from(page_foot()),
            // These types always serialise (no maps with non-string keys, no failing Serialize);
            // should one not, the JSON is empty rather than the page gone.
            json: serde_json::to_vec(status)
                .map(Bytes::from)
                .unwrap_or_default(),
        }
    }

    /// The page, all associations or those whose `status` query value is given: pre-rendered
    /// pieces concatenated. `None` for a status no association has, or before the first
    /// rendering.
    pub fn index(&self, status: Option<&str>) -> Option<Bytes> {
        let filter = self.filters.iter().find(|f| f.query.as_deref() == status)?;
        let rows = filter.rows.iter().filter_map(|&i| self.rows.get(i));
        let len = self.head.len()
            + filter.open.len()
            + rows.clone().map(Bytes::len).sum::<usize>()
            + filter.close.len()
            + self.foot.len();
        let mut page = BytesMut::with_capacity(len);
        page.extend_from_slice(&self.head);
        page.extend_from_slice(&filter.open);
        for r in rows {
            page.extend_from_slice(r);
        }
        page.extend_from_slice(&filter.close);
        page.extend_from_slice(&self.foot);
        Some(page.freeze())
    }

    /// The view of the association whose ID its link spells as `id`.
    pub fn association(&self, id: &str) -> Option<Bytes> {
        let body = self.views.get(id)?;
        let mut page =
            BytesMut::with_capacity(self.view_head.len() + body.len() + self.view_foot.len());
        page.extend_from_slice(&self.view_head);
        page.extend_from_slice(body);
        page.extend_from_slice(&self.view_foot);
        Some(page.freeze())
    }
}

/// `text` safe inside HTML text and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` percent-encoded but for unreserved characters: safe in a path segment or query
/// value, and in HTML.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A time as RFC 3339 in UTC, to the second.
pub fn timestamp(unix_seconds: f64) -> String {
    crate::events::format_time(unix_seconds)
}

/// A duration as a person reads it: the two largest units.
pub fn age(seconds: f64) -> String {
    let d = Duration::from_secs_f64(seconds.max(0.0));
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The class of a status's colour: a closed set, whatever SSM says.
fn tone(status: &str) -> &'static str {
    match status {
        "Success" | "CompletedWithSuccess" => "ok",
        s if FAILED.contains(&s) => "bad",
        "InProgress" | "Pending" | "Delayed" => "run",
        _ => "other",
    }
}

fn opt(value: Option<&str>) -> String {
    value.map_or_else(|| "—".to_owned(), escape)
}

fn place(account_id: Option<&str>, region: Option<&str>) -> String {
    match (account_id, region) {
        (Some(a), Some(r)) => format!("{} {}", escape(a), escape(r)),
        _ => "default".to_owned(),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1rem;color:#222;line-height:1.4}\
h1{font-size:1.4rem;margin:0 0 .5rem}h2{font-size:1.15rem;margin:1.2rem 0 .4rem}\
table{border-collapse:collapse;font-size:.9rem}th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.scroll{overflow-x:auto}code,.id{font-family:ui-monospace,monospace;font-size:.8rem}.id{color:#666}\
.c{display:inline-block;border-radius:.6rem;padding:0 .45rem;margin:0 .15rem .15rem 0;font-size:.8rem;white-space:nowrap}\
.ok{background:#d7f0dc;color:#14532d}.bad{background:#fbd5d5;color:#7f1d1d}.run{background:#dbe7fb;color:#1e3a8a}.other{background:#eee;color:#333}\
tr.failed td:first-child{border-left:4px solid #c53030}nav a{margin-right:.6rem}nav a.current{font-weight:bold;text-decoration:none;color:#222}\
.muted{color:#666}";

fn html_open(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    )
}

fn page_head(status: &Status, telemetry_path: &str) -> String {
    let mut h = html_open("SSM Association Exporter");
    h.push_str("<h1>SSM Association Exporter</h1>\n");
    let _ = writeln!(
        h,
        "<p>Version {} (rustc {}) · rendered {} · generation {} · {}</p>",
        escape(status.build.version),
        escape(status.build.rustc),
        timestamp(status.rendered_unix),
        status.generation,
        if status.ready {
            "ready"
        } else {
            "not ready: no cycle has finished"
        }
    );
    // The telemetry path is our own flag's, checked to need no escaping.
    let _ = writeln!(
        h,
        "<nav><a href=\"{}\">Metrics</a><a href=\"/-/healthy\">Health</a><a href=\"/-/ready\">Readiness</a><a href=\"/api/v1/status\">JSON</a></nav>",
        escape(telemetry_path)
    );
    let _ = writeln!(
        h,
        "<p>Configuration: <code>{}</code></p>",
        escape(&status.config)
    );
    if let Some(events) = &status.events {
        let up = match events.queue_up {
            Some(true) => "<span class=\"c ok\">up</span>",
            Some(false) => "<span class=\"c bad\">down</span>",
            None => "<span class=\"c other\">not read yet</span>",
        };
        let received: Vec<String> = events
            .received
            .iter()
            .map(|(k, v)| format!("{} {v}", escape(k)))
            .collect();
        let _ = writeln!(
            h,
            "<p>Events queue: {up} · received: {}</p>",
            if received.is_empty() {
                "none".to_owned()
            } else {
                received.join(", ")
            }
        );
    }
    h.push_str("<h2>Pairs</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th>Pair</th><th>Cycles</th><th>Last cycle</th><th>Took</th><th>API calls</th><th>Throttled</th><th>Outcome</th><th>Error</th><th>Associations</th><th>Targeted polls</th></tr></thead>\n<tbody>\n");
    for p in &status.pairs {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td>",
            place(p.account_id.as_deref(), p.region.as_deref()),
            p.cycles
        );
        match &p.last_cycle {
            Some(c) => {
                let _ = write!(
                    h,
                    "<td>{} <span class=\"muted\">({} ago)</span></td><td>{:.3}s</td><td>{}</td><td>{}</td><td><span class=\"c {}\">{}</span></td><td>{}</td>",
                    timestamp(c.finished_unix),
                    age(status.rendered_unix - c.finished_unix),
                    c.duration_seconds,
                    c.api_calls,
                    c.throttled_calls,
                    if c.failures == 0 { "ok" } else { "bad" },
                    c.outcome,
                    opt(c.error_kind),
                );
            }
            None => h.push_str("<td colspan=\"6\" class=\"muted\">no cycle yet</td>"),
        }
        let _ = writeln!(
            h,
            "<td>{}</td><td>{}</td></tr>",
            p.associations, p.targeted_polls
        );
    }
    h.push_str("</tbody></table></div>\n");
    let failed = status.associations.iter().filter(|a| a.failed).count();
    let _ = writeln!(
        h,
        "<h2>Associations</h2>\n<p>{} watched, {failed} failed (listed first).</p>",
        status.associations.len()
    );
    h
}

fn filter_open(
    choices: &[(Option<&str>, &Vec<usize>)],
    current: Option<&str>,
    placed: bool,
) -> String {
    let mut h = String::from("<nav class=\"filters\">Status:");
    for (choice, matching) in choices {
        let href = choice.map_or_else(|| "/".to_owned(), |s| format!("/?status={}", encode(s)));
        let label = choice.map_or_else(
            || "All".to_owned(),
            |s| {
                if s == NO_EXECUTION {
                    "No execution".to_owned()
                } else {
                    escape(s)
                }
            },
        );
        let class = if *choice == current {
            " class=\"current\""
        } else {
            ""
        };
        let _ = write!(
            h,
            " <a href=\"{href}\"{class}>{label} ({})</a>",
            matching.len()
        );
    }
    h.push_str("</nav>\n<div class=\"scroll\"><table id=\"associations\">\n<thead><tr><th>Association</th>");
    if placed {
        h.push_str("<th>Pair</th>");
    }
    h.push_str("<th>Document</th><th>Execution</th><th>Status</th><th>Targets</th><th>Failed targets</th><th>Poll</th><th>Error</th><th>Data age</th></tr></thead>\n<tbody>\n");
    h
}

fn filter_close(matching: usize) -> String {
    let mut h = String::from("</tbody></table></div>\n");
    if matching > MAX_ROWS {
        let _ = writeln!(
            h,
            "<p class=\"more\">{} more not shown: the page shows the first {MAX_ROWS}, failed ones first; <a href=\"/api/v1/status\">the JSON</a> has them all.</p>",
            matching - MAX_ROWS
        );
    }
    h
}

fn counts(targets_by_status: &BTreeMap<String, u64>) -> String {
    let mut h = String::new();
    for (status, n) in targets_by_status {
        let _ = write!(
            h,
            "<span class=\"c {}\">{} {n}</span>",
            tone(status),
            escape(status)
        );
    }
    h
}

fn status_badge(status: Option<&str>) -> String {
    match status {
        Some(s) => format!("<span class=\"c {}\">{}</span>", tone(s), escape(s)),
        None => "<span class=\"muted\">never ran</span>".to_owned(),
    }
}

fn poll_badge(ok: bool) -> &'static str {
    if ok {
        "<span class=\"c ok\">ok</span>"
    } else {
        "<span class=\"c bad\">failed</span>"
    }
}

fn data_age(a: &AssociationStatus) -> String {
    match (a.data_age_seconds, a.last_success_unix) {
        (Some(age_s), Some(at)) => {
            format!("<span title=\"{}\">{}</span>", timestamp(at), age(age_s))
        }
        _ => "never".to_owned(),
    }
}

fn row(a: &AssociationStatus, placed: bool) -> String {
    let id = encode(&a.association_id);
    let mut h = String::with_capacity(512);
    let _ = write!(
        h,
        "<tr{}><td><a href=\"/association/{id}\">{}</a><div class=\"id\">{}</div></td>",
        if a.failed { " class=\"failed\"" } else { "" },
        opt(a.name.as_deref().or(Some(&a.association_id))),
        escape(&a.association_id)
    );
    if placed {
        let _ = write!(
            h,
            "<td>{}</td>",
            place(a.account_id.as_deref(), a.region.as_deref())
        );
    }
    let execution = a.execution.as_ref();
    let _ = writeln!(
        h,
        "<td>{}</td><td class=\"id\">{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        opt(a.document_name.as_deref()),
        opt(execution.map(|e| e.execution_id.as_str())),
        if execution.is_some_and(|e| e.pinned) {
            " (pinned)"
        } else {
            ""
        },
        status_badge(execution.and_then(|e| e.status.as_deref())),
        counts(&a.targets_by_status),
        failed_names(a.failed_targets.as_ref(), ROW_FAILED_TARGETS),
        poll_badge(a.poll_success),
        opt(a.error_kind),
        data_age(a),
    );
    h
}

/// The first `limit` failed targets' IDs, and how many more there are.
fn failed_names(failed: Option<&FailedTargetsStatus>, limit: usize) -> String {
    let Some(failed) = failed else {
        return "<span class=\"muted\">not named</span>".to_owned();
    };
    let names: Vec<String> = failed
        .named
        .iter()
        .take(limit)
        .map(|t| format!("<code>{}</code>", escape(&t.resource_id)))
        .collect();
    let more = (failed.named.len() - names.len()) as u64 + failed.omitted;
    let mut h = if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(" ")
    };
    if more > 0 {
        let _ = write!(h, " <span class=\"muted\">+{more} more</span>");
    }
    h
}

fn view_head(status: &Status) -> String {
    let mut h = html_open("Association · SSM Association Exporter");
    let _ = writeln!(
        h,
        "<p><a href=\"/\">← Status page</a> · rendered {}</p>",
        timestamp(status.rendered_unix)
    );
    h
}

/// Appends the facts of `a` to its view.
fn view(h: &mut String, a: &AssociationStatus) {
    let _ = writeln!(
        h,
        "<h1>{}</h1>\n<table>",
        opt(a.name.as_deref().or(Some(&a.association_id)))
    );
    let execution = a.execution.as_ref();
    let facts: [(&str, String); 12] = [
        (
            "Association ID",
            format!("<code>{}</code>", escape(&a.association_id)),
        ),
        ("Pair", place(a.account_id.as_deref(), a.region.as_deref())),
        ("Document", opt(a.document_name.as_deref())),
        (
            "Execution",
            format!(
                "<code>{}</code>{}",
                opt(execution.map(|e| e.execution_id.as_str())),
                if execution.is_some_and(|e| e.pinned) {
                    " (pinned)"
                } else {
                    ""
                }
            ),
        ),
        (
            "Status",
            status_badge(execution.and_then(|e| e.status.as_deref())),
        ),
        (
            "Detailed status",
            opt(execution.and_then(|e| e.detailed_status.as_deref())),
        ),
        (
            "Started",
            execution
                .and_then(|e| e.created_unix)
                .map_or_else(|| "—".to_owned(), timestamp),
        ),
        ("Targets", counts(&a.targets_by_status)),
        ("Poll", poll_badge(a.poll_success).to_owned()),
        ("Error", opt(a.error_kind)),
        (
            "Last successful poll",
            a.last_success_unix
                .map_or_else(|| "never".to_owned(), timestamp),
        ),
        ("Data age", data_age(a)),
    ];
    for (name, value) in facts {
        let _ = writeln!(h, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    h.push_str("</table>\n");
    if let Some(e) = execution {
        h.push_str("<h2>Targets</h2>\n<table>\n<thead><tr><th>Status</th><th>Detailed status</th><th>Resource type</th><th>Count</th></tr></thead>\n<tbody>\n");
        for t in &e.targets {
            let _ = writeln!(
                h,
                "<tr><td><span class=\"c {}\">{}</span></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                tone(&t.status),
                escape(&t.status),
                escape(&t.detailed_status),
                escape(&t.resource_type),
                t.count
            );
        }
        h.push_str("</tbody></table>\n");
    }
    if let Some(failed) = &a.failed_targets {
        h.push_str("<h2>Failed targets</h2>\n<table>\n<thead><tr><th>Resource</th><th>Type</th><th>Detailed status</th></tr></thead>\n<tbody>\n");
        for t in &failed.named {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(&t.resource_id),
                escape(&t.resource_type),
                escape(&t.detailed_status)
            );
        }
        h.push_str("</tbody></table>\n");
        if failed.omitted > 0 {
            let _ = writeln!(
                h,
                "<p class=\"muted\">{} more failed, beyond the configured limit.</p>",
                failed.omitted
            );
        }
    }
}

fn page_foot() -> String {
    "</body>\n</html>\n".to_owned()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::board::Board;
    use crate::config::Place;
    use crate::snapshot::{ExecutionState, FailedTargets, Snapshot, TargetCounts};
    use crate::ssm::{Association, Execution, Target};

    const NOW: f64 = 1_700_000_600.0;
    const TEST_BUILD: Build = Build {
        version: "0.0.0-test",
        rustc: "1.0.0",
    };

    fn at(seconds: f64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds)
    }

    fn target(id: &str, status: &str, detailed: &str) -> Target {
        Target {
            resource_id: Some(id.into()),
            status: Some(status.into()),
            detailed_status: Some(detailed.into()),
            resource_type: Some("ManagedInstance".into()),
        }
    }

    /// An association that ran once, over `targets`, polled at `polled`.
    fn ran(
        id: &str,
        name: &str,
        status: &str,
        targets: &[Target],
        naming: Option<usize>,
        polled: f64,
    ) -> AssociationState {
        let mut counts = TargetCounts::default();
        let mut failed = naming.map(FailedTargets::new);
        for t in targets {
            counts.add(t);
            if let Some(f) = &mut failed {
                f.add(t);
            }
        }
        AssociationState {
            association: Association {
                association_id: id.into(),
                association_name: Some(name.into()),
                document_name: Some("AWS-RunShellScript".into()),
                document_version: Some("1".into()),
                association_version: Some("1".into()),
                last_execution_date: Some(at(1_700_000_000.0)),
                overview: None,
            },
            execution: Some(Arc::new(ExecutionState {
                execution: Execution {
                    execution_id: format!("{}-e", &id[..8]),
                    status: Some(status.into()),
                    detailed_status: Some(status.into()),
                    created_time: Some(at(1_700_000_000.0)),
                    last_execution_date: None,
                    resource_count_by_status: None,
                },
                targets: counts,
                filters: Vec::new(),
                read_at: at(polled),
                failed,
                pinned: false,
            })),
            poll_ok: true,
            last_success: Some(at(polled)),
            error_kind: None,
        }
    }

    fn place(account_id: &str, region: &str) -> Option<Place> {
        Some(Place {
            account_id: account_id.into(),
            region: region.into(),
        })
    }

    /// Two pairs: one whose last cycle went well, with a success and a failed run whose name
    /// carries markup; one throttled, with a pinned run it could not re-read and an
    /// association it never could.
    fn fixture() -> Status {
        let board = Board::new(
            [
                place("111111111111", "us-east-1"),
                place("222222222222", "eu-west-1"),
            ],
            "discovery of every association named <prod>*, poll interval 1m",
        );
        let mut east = Snapshot::default();
        east.associations.push(ran(
            "11111111-1111-1111-1111-111111111111",
            "patch-linux",
            "Success",
            &[
                target("i-01", "Success", "Success"),
                target("i-02", "Success", "Success"),
            ],
            None,
            NOW - 30.0,
        ));
        east.associations.push(ran(
            "22222222-2222-2222-2222-222222222222",
            "<script>alert(1)</script>",
            "Failed",
            &[
                target("i-03", "Success", "Success"),
                target("i-05", "Failed", "Failed"),
                target("i-04", "TimedOut", "DeliveryTimedOut"),
                target("i-06", "Failed", "Undeliverable"),
            ],
            Some(2),
            NOW - 30.0,
        ));
        let mut pinned = ran(
            "33333333-3333-3333-3333-333333333333",
            "inventory",
            "InProgress",
            &[
                target("i-07", "InProgress", "InProgress"),
                target("i-08", "Success", "Success"),
            ],
            None,
            NOW - 3_725.0,
        );
        pinned.poll_ok = false;
        pinned.error_kind = Some("throttled");
        if let Some(e) = &mut pinned.execution {
            std::sync::Arc::make_mut(e).pinned = true;
        }
        let never = AssociationState {
            error_kind: Some("timeout"),
            ..AssociationState::unknown("44444444-4444-4444-4444-444444444444")
        };
        let west = Snapshot {
            associations: vec![pinned, never],
            region_associations: None,
        };
        board.post(
            0,
            Arc::new(east),
            3,
            LastCycle {
                finished: at(NOW - 30.0),
                duration: Duration::from_millis(1_250),
                calls: 7,
                throttled: 0,
                failures: 0,
                error_kind: None,
            },
        );
        board.post(
            1,
            Arc::new(west),
            2,
            LastCycle {
                finished: at(NOW - 90.0),
                duration: Duration::from_secs(30),
                calls: 12,
                throttled: 4,
                failures: 2,
                error_kind: Some("throttled"),
            },
        );
        let posts = board.subscribe().borrow().clone();
        Status::of(&posts, &[], at(NOW), TEST_BUILD)
    }

    fn text(bytes: Option<Bytes>) -> String {
        String::from_utf8(bytes.expect("a page").to_vec()).expect("utf-8")
    }

    /// UPDATE_GOLDEN=1 rewrites the files; review their diff before committing them.
    fn golden(name: &str, got: &str) {
        let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, got).expect("write golden file");
        }
        let expected = std::fs::read_to_string(&path).expect("read golden file");
        assert_eq!(got, expected, "rendered:\n{got}");
    }

    #[test]
    fn the_page_of_a_fixed_board_matches_its_golden_file() {
        let page = StatusPage::render(&fixture(), "/metrics");
        golden("status.html", &text(page.index(None)));
        golden(
            "association.html",
            &text(page.association("22222222-2222-2222-2222-222222222222")),
        );
    }

    #[test]
    fn failed_ones_come_first_then_by_pair_and_name() {
        let status = fixture();
        let order: Vec<(&str, bool)> = status
            .associations
            .iter()
            .map(|a| (&a.association_id[..8], a.failed))
            .collect();
        assert_eq!(
            order,
            [
                ("22222222", true),
                ("44444444", true),
                ("33333333", true),
                ("11111111", false),
            ]
        );
    }

    #[test]
    fn markup_in_a_name_shows_as_text() {
        let page = StatusPage::render(&fixture(), "/metrics");
        let index = text(page.index(None));
        let view = text(page.association("22222222-2222-2222-2222-222222222222"));
        for html in [&index, &view] {
            assert!(!html.contains("<script"), "{html}");
            assert!(
                html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "{html}"
            );
        }
        assert!(index.contains("named &lt;prod&gt;*"), "{index}");
    }

    #[test]
    fn a_filter_picks_the_rows_of_one_status() {
        let page = StatusPage::render(&fixture(), "/metrics");
        let rows = |html: &str| -> Vec<String> {
            html.lines()
                .filter(|l| l.starts_with("<tr") && l.contains("/association/"))
                .map(|l| {
                    let start = l.find("/association/").expect("link") + 13;
                    l[start..start + 8].to_owned()
                })
                .collect()
        };
        assert_eq!(
            rows(&text(page.index(None))),
            ["22222222", "44444444", "33333333", "11111111"]
        );
        assert_eq!(rows(&text(page.index(Some("Failed")))), ["22222222"]);
        assert_eq!(rows(&text(page.index(Some("InProgress")))), ["33333333"]);
        assert_eq!(rows(&text(page.index(Some(NO_EXECUTION)))), ["44444444"]);
        assert_eq!(page.index(Some("Cancelled")), None);
        assert_eq!(
            page.association("55555555-5555-5555-5555-555555555555"),
            None
        );
        assert!(
            text(page.index(Some("Failed")))
                .contains("<a href=\"/?status=Failed\" class=\"current\">Failed (1)</a>")
        );
    }

    /// Each value replaced by its JSON type; an array by the shape of its first element.
    fn shape(v: &Value) -> Value {
        match v {
            Value::Null => json!("null"),
            Value::Bool(_) => json!("bool"),
            Value::Number(_) => json!("number"),
            Value::String(_) => json!("string"),
            Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
            }
        }
    }

    /// The schema of docs/status-api.md, field by field: names and types.
    #[test]
    fn the_json_has_the_documented_schema() {
        let page = StatusPage::render(&fixture(), "/metrics");
        let value: Value = serde_json::from_slice(&page.json).expect("JSON");
        let mut failed = value["associations"][0].clone();
        assert_eq!(
            shape(&failed),
            json!({
                "account_id": "string",
                "region": "string",
                "association_id": "string",
                "name": "string",
                "document_name": "string",
                "execution": {
                    "execution_id": "string",
                    "pinned": "bool",
                    "status": "string",
                    "detailed_status": "string",
                    "created_unix": "number",
                    "targets": [{
                        "status": "string",
                        "detailed_status": "string",
                        "resource_type": "string",
                        "count": "number"
                    }]
                },
                "targets_by_status": {"Failed": "number", "Success": "number", "TimedOut": "number"},
                "failed_targets": {
                    "named": [{
                        "resource_id": "string",
                        "resource_type": "string",
                        "detailed_status": "string"
                    }],
                    "omitted": "number"
                },
                "poll_success": "bool",
                "error_kind": "null",
                "last_success_unix": "number",
                "data_age_seconds": "number",
                "failed": "bool"
            })
        );
        assert_eq!(
            failed["targets_by_status"],
            json!({"Failed": 2, "Success": 1, "TimedOut": 1})
        );
        assert_eq!(
            failed["failed_targets"],
            json!({"named": [
                {"resource_id": "i-04", "resource_type": "ManagedInstance", "detailed_status": "DeliveryTimedOut"},
                {"resource_id": "i-05", "resource_type": "ManagedInstance", "detailed_status": "Failed"}
            ], "omitted": 1})
        );
        assert_eq!(failed["data_age_seconds"], json!(30.0));
        failed = value["associations"][1].clone();
        assert_eq!(
            (
                &failed["execution"],
                &failed["failed_targets"],
                &failed["error_kind"]
            ),
            (&json!(null), &json!(null), &json!("timeout"))
        );
        let mut top = value.clone();
        for key in ["pairs", "associations"] {
            top[key] = json!([]);
        }
        assert_eq!(
            shape(&top),
            json!({
                "build": {"version": "string", "rustc": "string"},
                "rendered_unix": "number",
                "generation": "number",
                "config": "string",
                "ready": "bool",
                "events": "null",
                "pairs": [],
                "associations": []
            })
        );
        assert_eq!(
            shape(&value["pairs"][1]),
            json!({
                "account_id": "string",
                "region": "string",
                "cycles": "number",
                "targeted_polls": "number",
                "associations": "number",
                "last_cycle": {
                    "finished_unix": "number",
                    "duration_seconds": "number",
                    "api_calls": "number",
                    "throttled_calls": "number",
                    "failures": "number",
                    "outcome": "string",
                    "error_kind": "string"
                }
            })
        );
        assert_eq!(
            value["pairs"][1]["last_cycle"],
            json!({
                "finished_unix": NOW - 90.0,
                "duration_seconds": 30.0,
                "api_calls": 12,
                "throttled_calls": 4,
                "failures": 2,
                "outcome": "failure",
                "error_kind": "throttled"
            })
        );
        let events = EventsStatus {
            queue_up: Some(false),
            received: [("applied".to_owned(), 3)].into_iter().collect(),
        };
        assert_eq!(
            serde_json::to_value(events).expect("JSON"),
            json!({"queue_up": false, "received": {"applied": 3}})
        );
    }

    #[test]
    fn a_large_fleet_shows_the_first_rows_and_counts_the_rest() {
        let board = Board::new([None], "");
        let mut snapshot = Snapshot::default();
        for i in 0..(MAX_ROWS + 700) {
            let mut a = AssociationState::unknown(&format!("{i:08}-0000-0000-0000-000000000000"));
            // Every third one polled fine: the others are failed, and come first.
            a.poll_ok = i % 3 == 0;
            snapshot.associations.push(a);
        }
        let last = LastCycle {
            finished: at(NOW),
            duration: Duration::ZERO,
            calls: 0,
            throttled: 0,
            failures: 0,
            error_kind: None,
        };
        board.post(0, Arc::new(snapshot), 1, last);
        let posts = board.subscribe().borrow().clone();
        let page = StatusPage::render(&Status::of(&posts, &[], at(NOW), TEST_BUILD), "/m");
        let index = text(page.index(None));
        let rows: Vec<&str> = index
            .lines()
            .filter(|l| l.starts_with("<tr") && l.contains("/association/"))
            .collect();
        assert_eq!(rows.len(), MAX_ROWS);
        assert!(rows.iter().all(|r| r.starts_with("<tr class=\"failed\">")));
        assert!(
            index.contains("<p class=\"more\">700 more not shown:"),
            "{index}"
        );
        let json: Value = serde_json::from_slice(&page.json).expect("JSON");
        assert_eq!(
            json["associations"].as_array().map(Vec::len),
            Some(MAX_ROWS + 700)
        );
    }

    #[test]
    fn times_and_ages_read_as_people_write_them() {
        assert_eq!(timestamp(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(timestamp(1_700_000_600.9), "2023-11-14T22:23:20Z");
        let ages: Vec<String> = [0.4, 59.0, 61.0, 3_725.0, 90_000.0]
            .into_iter()
            .map(age)
            .collect();
        assert_eq!(ages, ["0s", "59s", "1m 1s", "1h 2m", "1d 1h"]);
        assert_eq!(encode("a b/ü"), "a%20b%2F%C3%BC");
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
