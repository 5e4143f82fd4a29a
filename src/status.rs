//! The status page at `/`, each association's view and the JSON at `/api/v1/status`: what the
//! exporter sees, per pair and per association. Each is made on request from the [`Published`]
//! the renderer published, whose snapshots are shared, not copied: a page renders at most
//! [`MAX_ROWS`] rows, a view one association, and the JSON is serialised a batch at a time
//! as the client reads it. No request calls AWS or copies the fleet. No value from SSM or the
//! configuration reaches the HTML without passing [`escape`].

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::body::Frame;
use prometheus::proto::MetricFamily;
use serde::Serialize;

use crate::board::{LastCycle, Posted, Published};
use crate::snapshot::{AssociationState, ExecutionState, Timing};
use crate::ssm;
use crate::telemetry::NAMESPACE;

pub const HTML_TYPE: &str = "text/html; charset=utf-8";
pub const JSON_TYPE: &str = "application/json";

/// Rows the page shows per filter, failed ones first, then overdue ones; the rest are counted,
/// not shown. It bounds the page whatever the fleet: the JSON has every association.
pub const MAX_ROWS: usize = 500;

/// Associations serialised into one frame of the JSON: what a request holds at a time
/// (about 18 kB at some 1,100 bytes each), never the whole document. Small, since the last
/// frame outlives the body: hyper holds it until the client takes it, and a slow reader that
/// stops there holds it for the write timeout, past the server's bound on readers.
const JSON_BATCH: usize = 16;

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


/// What the JSON has before its associations (docs/status-api.md), and the page's head shows.
/// The fields and their order are the document's.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Head {
    build: Build,
    /// When the answer was made: ages are measured to this moment.
    rendered_unix: f64,
    generation: u64,
    /// The running configuration as `--config.check` prints it.
    config: String,
    ready: bool,
    /// `None` when events are off.
    events: Option<EventsStatus>,
    pairs: Vec<PairStatus>,
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

/// One association as the JSON has it, made for one row, view or batch and dropped after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssociationStatus {
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub association_id: String,
    pub name: Option<String>,
    pub document_name: Option<String>,
    /// `None` when it has no schedule (it runs only when created or updated).
    pub schedule: Option<ScheduleStatus>,
    /// The latest finished (or pinned) execution; `None` when none finished.
    pub execution: Option<ExecutionStatus>,
    /// The execution in progress; `None` while none runs.
    pub running: Option<ExecutionStatus>,
    /// Targets of the execution by status, summed over detailed status and resource type.
    pub targets_by_status: BTreeMap<String, u64>,
    /// `None` unless the configuration names failed targets.
    pub failed_targets: Option<FailedTargetsStatus>,
    /// When the newest execution started: what the next run counts from.
    pub last_run_unix: Option<f64>,
    pub next_run_unix: Option<f64>,
    /// The next run is before `rendered_unix`: the schedule should have fired, and no run
    /// since is known. No grace: the alert adds its own.
    pub overdue: bool,
    pub schedule_interval_seconds: Option<f64>,
    pub last_successful_execution_unix: Option<f64>,
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
    /// Targets in a final status ([`ssm::finished`]): of all its targets, those done.
    pub targets_done: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleStatus {
    pub expression: String,
    pub offset_days: Option<u8>,
    pub duration_hours: Option<u8>,
    pub apply_only_at_cron_interval: Option<bool>,
    /// Whether the exporter could read the expression: without, there is no next run.
    pub parsed: bool,
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

impl Head {
    fn of(source: &Published, now: SystemTime, build: Build) -> Head {
        let posts = &source.posts;
        Head {
            build,
            rendered_unix: unix(now),
            generation: posts.generation(),
            config: posts.summary().to_owned(),
            ready: posts.ready(),
            events: events_status(&source.families),
            pairs: posts.sources().iter().map(pair_status).collect(),
        }
    }
}

fn pair_status(posted: &Posted) -> PairStatus {
    PairStatus {
        account_id: posted.place.as_ref().map(|p| p.account_id.clone()),
        region: posted.place.as_ref().map(|p| p.region.clone()),
        cycles: posted.cycles,
        targeted_polls: posted.targeted,
        associations: posted.snapshot.associations.len(),
        last_cycle: posted.last_cycle.as_ref().map(cycle_status),
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

/// The status of the association's execution, if it ran and SSM gave one.
fn execution_status(a: &AssociationState) -> Option<&str> {
    a.finished
        .as_ref()
        .and_then(|e| e.execution.status.as_deref())
}

/// Its poll failed, or its execution's status is a failure.
fn is_failed(a: &AssociationState) -> bool {
    !a.poll_ok || execution_status(a).is_some_and(|s| FAILED.contains(&s))
}

fn next_run(a: &AssociationState) -> Option<SystemTime> {
    match a.timing {
        Timing::Scheduled { next_run, .. } => next_run,
        Timing::Unscheduled | Timing::Unparsed => None,
    }
}

/// Its schedule's next run is before `now`.
fn is_overdue(a: &AssociationState, now: SystemTime) -> bool {
    next_run(a).is_some_and(|t| t < now)
}

/// When its newest execution started, as the next run is counted from: a pinned execution is
/// not the newest, so then (and when the execution gave no time) the association's own
/// `LastExecutionDate`.
fn last_run(a: &AssociationState) -> Option<SystemTime> {
    a.newest()
        .filter(|e| !e.pinned)
        .and_then(|e| e.execution.created_time)
        .or(a.association.last_execution_date)
}

fn execution_of(e: &ExecutionState) -> ExecutionStatus {
    // The target keys' fields are read as `&str`, whatever string type the snapshot keeps.
    let targets: Vec<TargetCountStatus> = e
        .targets
        .iter()
        .map(|(k, count)| TargetCountStatus {
            status: k.status.to_string(),
            detailed_status: k.detailed_status.to_string(),
            resource_type: k.resource_type.to_string(),
            count,
        })
        .collect();
    ExecutionStatus {
        execution_id: e.execution.execution_id.clone(),
        pinned: e.pinned,
        status: e.execution.status.as_deref().map(str::to_owned),
        detailed_status: e.execution.detailed_status.as_deref().map(str::to_owned),
        created_unix: e.execution.created_time.map(unix),
        targets_done: targets
            .iter()
            .filter(|t| ssm::finished(Some(&t.status)))
            .map(|t| t.count)
            .sum(),
        targets,
    }
}

/// An execution's targets by status, summed over detailed status and resource type.
fn by_status(e: &ExecutionStatus) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for t in &e.targets {
        *counts.entry(t.status.clone()).or_insert(0) += t.count;
    }
    counts
}

fn association_status(
    a: &AssociationState,
    account_id: Option<String>,
    region: Option<String>,
    now: SystemTime,
) -> AssociationStatus {
    let execution = a.finished.as_deref().map(execution_of);
    let targets_by_status = execution.as_ref().map(by_status).unwrap_or_default();
    let fields = &a.association.schedule;
    let schedule = fields.expression.as_ref().map(|expression| ScheduleStatus {
        expression: expression.clone(),
        offset_days: fields.offset_days,
        duration_hours: fields.duration_hours,
        apply_only_at_cron_interval: fields.apply_only_at_cron_interval,
        parsed: a.timing != Timing::Unparsed,
    });
    let interval = match a.timing {
        Timing::Scheduled { interval, .. } => interval,
        Timing::Unscheduled | Timing::Unparsed => None,
    };
    let failed_targets = a
        .finished
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
    AssociationStatus {
        account_id,
        region,
        association_id: a.id().to_owned(),
        name: a.association.association_name.clone(),
        document_name: a.association.document_name.clone(),
        schedule,
        execution,
        running: a.running.as_deref().map(execution_of),
        targets_by_status,
        failed_targets,
        last_run_unix: last_run(a).map(unix),
        next_run_unix: next_run(a).map(unix),
        overdue: is_overdue(a, now),
        schedule_interval_seconds: interval.map(|d| d.as_secs_f64()),
        last_successful_execution_unix: a.last_successful_execution.time().map(unix),
        poll_success: a.poll_ok,
        error_kind: a.error_kind,
        last_success_unix: a.last_good_poll.map(unix),
        data_age_seconds: a
            .last_good_poll
            .map(|t| now.duration_since(t).unwrap_or_default().as_secs_f64()),
        failed: is_failed(a),
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

/// One association where the board holds it, by reference, with what the page orders and
/// filters it by.
#[derive(Debug, Clone, Copy)]
struct Entry<'a> {
    /// Its pair's position on the board.
    slot: usize,
    posted: &'a Posted,
    state: &'a AssociationState,
    failed: bool,
    /// As of the request's moment.
    overdue: bool,
}

impl<'a> Entry<'a> {
    fn new(
        slot: usize,
        posted: &'a Posted,
        state: &'a AssociationState,
        now: SystemTime,
    ) -> Entry<'a> {
        Entry {
            slot,
            posted,
            state,
            failed: is_failed(state),
            overdue: is_overdue(state, now),
        }
    }

    /// Failed ones first, then overdue ones (a schedule that stopped firing fails silently),
    /// then by pair, name and ID: the order of the page and of the JSON.
    fn order(&self, other: &Entry<'a>) -> Ordering {
        self.key().cmp(&other.key())
    }

    fn key(&self) -> (bool, bool, usize, Option<&'a str>, &'a str) {
        (
            !self.failed,
            !self.overdue,
            self.slot,
            self.state.association.association_name.as_deref(),
            self.state.id(),
        )
    }

    /// What the status filter matches: the execution's status, or [`NO_EXECUTION`].
    fn filter_key(&self) -> &'a str {
        execution_status(self.state).unwrap_or(NO_EXECUTION)
    }

    fn status(&self, now: SystemTime) -> AssociationStatus {
        let place = self.posted.place.as_ref();
        association_status(
            self.state,
            place.map(|p| p.account_id.clone()),
            place.map(|p| p.region.clone()),
            now,
        )
    }
}

impl Published {
    /// Whether the renderer has published the board: before, it has no pair.
    pub fn is_published(&self) -> bool {
        !self.posts.sources().is_empty()
    }

    /// Every association on the board as of `now`, pair by pair, with its position in its
    /// pair's snapshot.
    fn entries(&self, now: SystemTime) -> impl Iterator<Item = (Entry<'_>, usize)> {
        self.posts
            .sources()
            .iter()
            .enumerate()
            .flat_map(move |(slot, posted)| {
                posted
                    .snapshot
                    .associations
                    .iter()
                    .enumerate()
                    .map(move |(index, state)| (Entry::new(slot, posted, state, now), index))
            })
    }

    /// The page as of `now`: its head, the filters with their counts, and the first
    /// [`MAX_ROWS`] rows of every association, or of those with the status that `filter`
    /// (the `status` query value, percent-encoded as the filter's link spells it) names.
    /// `None` for a status no association has.
    pub fn index(
        &self,
        filter: Option<&str>,
        now: SystemTime,
        build: Build,
        telemetry_path: &str,
    ) -> Option<Bytes> {
        let (mut watched, mut failed, mut overdue) = (0, 0, 0);
        let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
        for (e, _) in self.entries(now) {
            watched += 1;
            failed += usize::from(e.failed);
            overdue += usize::from(e.overdue);
            *by_status.entry(e.filter_key()).or_default() += 1;
        }
        let current = match filter {
            Some(query) => Some(*by_status.keys().find(|k| encode(k) == query)?),
            None => None,
        };
        let mut shown: Vec<Entry<'_>> = self
            .entries(now)
            .map(|(e, _)| e)
            .filter(|e| current.is_none_or(|c| e.filter_key() == c))
            .collect();
        let matching = shown.len();
        first_rows(&mut shown);

        let placed = self.posts.sources().iter().any(|p| p.place.is_some());
        let choices: Vec<(Option<&str>, usize)> = std::iter::once((None, watched))
            .chain(by_status.iter().map(|(k, n)| (Some(*k), *n)))
            .collect();
        let counted = Counted {
            watched,
            failed,
            overdue,
        };
        let mut page = page_head(&Head::of(self, now, build), counted, telemetry_path);
        page.push_str(&filter_open(&choices, current, placed));
        for e in &shown {
            page.push_str(&row(&e.status(now), placed, unix(now)));
        }
        page.push_str(&filter_close(matching));
        page.push_str(&page_foot());
        Some(Bytes::from(page))
    }

    /// The view, as of `now`, of the association whose ID its link spells as `id`
    /// (percent-encoded): its facts in every pair that has it. `None` when no pair has it.
    pub fn association(&self, id: &str, now: SystemTime) -> Option<Bytes> {
        let id = decode(id)?;
        let mut found: Vec<Entry<'_>> = self
            .posts
            .sources()
            .iter()
            .enumerate()
            .filter_map(|(slot, posted)| {
                Some(Entry::new(slot, posted, posted.snapshot.get(&id)?, now))
            })
            .collect();
        if found.is_empty() {
            return None;
        }
        found.sort_by(Entry::order);
        let mut page = view_head(unix(now));
        for e in &found {
            view(&mut page, &e.status(now), unix(now));
        }
        page.push_str(&page_foot());
        Some(Bytes::from(page))
    }
}

/// Keeps the first [`MAX_ROWS`] of `entries` in the page's order, sorted: a partial
/// selection, then a sort of the few kept.
fn first_rows(entries: &mut Vec<Entry<'_>>) {
    if entries.len() > MAX_ROWS {
        entries.select_nth_unstable_by(MAX_ROWS, Entry::order);
        entries.truncate(MAX_ROWS);
    }
    entries.sort_by(Entry::order);
}

/// The body of `/api/v1/status`: the document of docs/status-api.md, made as hyper asks for
/// its frames. The first frame is the head; each next one serialises [`JSON_BATCH`]
/// associations from the board it shares, so that a request holds one batch and the
/// document's order (a position per association), never the document.
#[derive(Debug)]
pub struct StatusJson {
    source: Arc<Published>,
    now: SystemTime,
    /// The document up to its associations' opening bracket, until the first frame takes it.
    head: Option<Vec<u8>>,
    /// Every association as (its pair's slot, its index in the pair's snapshot), in the
    /// document's order.
    order: Vec<(usize, usize)>,
    /// How many of `order` went into frames.
    sent: usize,
    /// Associations written so far: every one after the first follows a comma.
    written: usize,
    /// The closing brackets went out.
    done: bool,
}

impl StatusJson {
    /// The document of `source` as of `now`, to be made frame by frame.
    pub fn new(source: Arc<Published>, now: SystemTime, build: Build) -> StatusJson {
        let mut entries: Vec<(Entry<'_>, usize)> = source.entries(now).collect();
        entries.sort_by(|(a, _), (b, _)| a.order(b));
        let order = entries
            .into_iter()
            .map(|(e, index)| (e.slot, index))
            .collect();
        // These types always serialise (no maps with non-string keys, no failing
        // Serialize); should the head not, the body is empty. The head is an object: its
        // closing brace makes way for the associations.
        let mut head = serde_json::to_vec(&Head::of(&source, now, build)).unwrap_or_default();
        let done = head.pop() != Some(b'}');
        head.extend_from_slice(b",\"associations\":[");
        StatusJson {
            source,
            now,
            head: Some(head),
            order,
            sent: 0,
            written: 0,
            done,
        }
    }

    /// The head, else the next batch; the last frame closes the document.
    fn next_frame(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut frame = match self.head.take() {
            Some(head) => head,
            None => self.batch(),
        };
        if self.sent == self.order.len() {
            frame.extend_from_slice(b"]}");
            self.done = true;
        }
        Some(Bytes::from(frame))
    }

    fn batch(&mut self) -> Vec<u8> {
        let end = (self.sent + JSON_BATCH).min(self.order.len());
        let sources = self.source.posts.sources();
        let mut frame = Vec::new();
        for &(slot, index) in &self.order[self.sent..end] {
            let Some(posted) = sources.get(slot) else {
                continue;
            };
            let Some(state) = posted.snapshot.associations.get(index) else {
                continue;
            };
            let start = frame.len();
            if self.written > 0 {
                frame.push(b',');
            }
            let status = Entry::new(slot, posted, state, self.now).status(self.now);
            // As for the head: never fails; should it, the association is left out rather
            // than the document broken.
            match serde_json::to_writer(&mut frame, &status) {
                Ok(()) => self.written += 1,
                Err(_) => frame.truncate(start),
            }
        }
        self.sent = end;
        frame
    }
}

impl hyper::body::Body for StatusJson {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.next_frame().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
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

/// The text a percent-encoded path segment spells; `None` when it is malformed or not UTF-8.
fn decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let digit = |b: Option<u8>| char::from(b?).to_digit(16);
            let value = digit(bytes.next())? * 16 + digit(bytes.next())?;
            out.push(u8::try_from(value).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
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
.late{background:#fdecc8;color:#7c2d12}tr.overdue td:first-child{border-left:4px solid #d97706}.muted{color:#666}";

fn html_open(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    )
}

/// Associations on the board, and those of them the page lists first.
#[derive(Debug, Clone, Copy)]
struct Counted {
    watched: usize,
    failed: usize,
    overdue: usize,
}

/// The page down to the associations' filters.
fn page_head(head: &Head, counted: Counted, telemetry_path: &str) -> String {
    let mut h = html_open("SSM Association Exporter");
    h.push_str("<h1>SSM Association Exporter</h1>\n");
    let _ = writeln!(
        h,
        "<p>Version {} (rustc {}) · rendered {} · generation {} · {}</p>",
        escape(head.build.version),
        escape(head.build.rustc),
        timestamp(head.rendered_unix),
        head.generation,
        if head.ready {
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
        escape(&head.config)
    );
    if let Some(events) = &head.events {
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
    for p in &head.pairs {
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
                    age(head.rendered_unix - c.finished_unix),
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
    let Counted {
        watched,
        failed,
        overdue,
    } = counted;
    let _ = writeln!(
        h,
        "<h2>Associations</h2>\n<p>{watched} watched, {failed} failed, {overdue} overdue (listed first, failed before overdue).</p>"
    );
    h
}

/// The filter links, each with how many it matches, `current` marked; the table's head.
fn filter_open(choices: &[(Option<&str>, usize)], current: Option<&str>, placed: bool) -> String {
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
        let _ = write!(h, " <a href=\"{href}\"{class}>{label} ({matching})</a>");
    }
    h.push_str("</nav>\n<div class=\"scroll\"><table id=\"associations\">\n<thead><tr><th>Association</th>");
    if placed {
        h.push_str("<th>Pair</th>");
    }
    h.push_str("<th>Document</th><th>Execution</th><th>Status</th><th>Targets</th><th>Failed targets</th><th>Running</th><th>Next run</th><th>Poll</th><th>Error</th><th>Data age</th></tr></thead>\n<tbody>\n");
    h
}

fn filter_close(matching: usize) -> String {
    let mut h = String::from("</tbody></table></div>\n");
    if matching > MAX_ROWS {
        let _ = writeln!(
            h,
            "<p class=\"more\">{} more not shown: the page shows the first {MAX_ROWS}, failed ones first, then overdue ones; <a href=\"/api/v1/status\">the JSON</a> has them all.</p>",
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

/// "12 of 40 done": of an execution's targets, those in a final status.
fn progress(e: &ExecutionStatus) -> String {
    let total: u64 = e.targets.iter().map(|t| t.count).sum();
    format!("{} of {total} done", e.targets_done)
}

/// The running execution in a row: its status and progress.
fn running_cell(running: Option<&ExecutionStatus>) -> String {
    match running {
        Some(e) => format!("{} {}", status_badge(e.status.as_deref()), progress(e)),
        None => "—".to_owned(),
    }
}

/// The next run in a row: how far ahead, or how long overdue, its time in the title.
fn next_run_cell(a: &AssociationStatus, rendered_unix: f64) -> String {
    match (a.next_run_unix, &a.schedule) {
        (Some(next), _) if a.overdue => format!(
            "<span class=\"c late\" title=\"{}\">overdue {}</span>",
            timestamp(next),
            age(rendered_unix - next)
        ),
        (Some(next), _) => format!(
            "<span title=\"{}\">in {}</span>",
            timestamp(next),
            age(next - rendered_unix)
        ),
        (None, Some(schedule)) if !schedule.parsed => UNPARSED.to_owned(),
        (None, _) => "—".to_owned(),
    }
}

const UNPARSED: &str = "<span class=\"c other\">unparsed</span>";

fn row(a: &AssociationStatus, placed: bool, rendered_unix: f64) -> String {
    let id = encode(&a.association_id);
    let mut h = String::with_capacity(512);
    let class = if a.failed {
        " class=\"failed\""
    } else if a.overdue {
        " class=\"overdue\""
    } else {
        ""
    };
    let _ = write!(
        h,
        "<tr{class}><td><a href=\"/association/{id}\">{}</a><div class=\"id\">{}</div></td>",
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
        "<td>{}</td><td class=\"id\">{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
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
        running_cell(a.running.as_ref()),
        next_run_cell(a, rendered_unix),
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

fn view_head(rendered_unix: f64) -> String {
    let mut h = html_open("Association · SSM Association Exporter");
    let _ = writeln!(
        h,
        "<p><a href=\"/\">← Status page</a> · rendered {}</p>",
        timestamp(rendered_unix)
    );
    h
}

/// A time and how long before `rendered_unix` it was; `absent` without one.
fn when_ago(at: Option<f64>, rendered_unix: f64, absent: &str) -> String {
    at.map_or_else(
        || absent.to_owned(),
        |t| {
            format!(
                "{} <span class=\"muted\">({} ago)</span>",
                timestamp(t),
                age(rendered_unix - t)
            )
        },
    )
}

fn schedule_fact(schedule: Option<&ScheduleStatus>) -> String {
    match schedule {
        Some(s) if s.parsed => format!("<code>{}</code>", escape(&s.expression)),
        Some(s) => format!("<code>{}</code> {UNPARSED}", escape(&s.expression)),
        None => "<span class=\"muted\">none: it runs when created or updated</span>".to_owned(),
    }
}

/// The next run in a view: its time, then as a row shows it.
fn next_run_fact(a: &AssociationStatus, rendered_unix: f64) -> String {
    match (a.next_run_unix, &a.schedule) {
        (Some(next), _) => format!("{} {}", timestamp(next), next_run_cell(a, rendered_unix)),
        (None, Some(schedule)) if !schedule.parsed => {
            "<span class=\"muted\">unknown: the schedule could not be read</span>".to_owned()
        }
        (None, _) => "—".to_owned(),
    }
}

/// Appends the facts of `a` to its view: the association, its schedule and its poll; its
/// last finished and its running execution side by side; the targets of each.
fn view(h: &mut String, a: &AssociationStatus, rendered_unix: f64) {
    let _ = writeln!(
        h,
        "<h1>{}</h1>\n<table>",
        opt(a.name.as_deref().or(Some(&a.association_id)))
    );
    let schedule = a.schedule.as_ref();
    let facts: [(&str, String); 15] = [
        (
            "Association ID",
            format!("<code>{}</code>", escape(&a.association_id)),
        ),
        ("Pair", place(a.account_id.as_deref(), a.region.as_deref())),
        ("Document", opt(a.document_name.as_deref())),
        ("Schedule", schedule_fact(schedule)),
        (
            "Schedule offset",
            schedule.and_then(|s| s.offset_days).map_or_else(
                || "—".to_owned(),
                |d| format!("{d} day{}", if d == 1 { "" } else { "s" }),
            ),
        ),
        (
            "Duration",
            schedule.and_then(|s| s.duration_hours).map_or_else(
                || "—".to_owned(),
                |d| format!("{d}h, then SSM cancels the run"),
            ),
        ),
        (
            "Apply only at cron interval",
            match schedule.and_then(|s| s.apply_only_at_cron_interval) {
                Some(true) => "yes",
                Some(false) => "no",
                None => "—",
            }
            .to_owned(),
        ),
        (
            "Interval",
            a.schedule_interval_seconds
                .map_or_else(|| "—".to_owned(), age),
        ),
        (
            "Last run",
            when_ago(a.last_run_unix, rendered_unix, "never"),
        ),
        ("Next run", next_run_fact(a, rendered_unix)),
        (
            "Last successful execution",
            when_ago(a.last_successful_execution_unix, rendered_unix, "—"),
        ),
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
    executions(h, [a.execution.as_ref(), a.running.as_ref()]);
    for (title, execution) in [
        ("Targets of the last finished execution", &a.execution),
        ("Targets of the running execution", &a.running),
    ] {
        if let Some(e) = execution {
            targets_table(h, title, e);
        }
    }
    if let Some(failed) = &a.failed_targets {
        h.push_str("<h2>Failed targets of the last finished execution</h2>\n<table>\n<thead><tr><th>Resource</th><th>Type</th><th>Detailed status</th></tr></thead>\n<tbody>\n");
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

/// The last finished and the running execution, a column each.
fn executions(h: &mut String, columns: [Option<&ExecutionStatus>; 2]) {
    h.push_str("<h2>Executions</h2>\n<table>\n<thead><tr><th></th><th>Last finished</th><th>Running</th></tr></thead>\n<tbody>\n");
    type Fact = fn(&ExecutionStatus) -> String;
    let facts: [(&str, Fact); 6] = [
        ("Execution", |e| {
            format!(
                "<code>{}</code>{}",
                escape(&e.execution_id),
                if e.pinned { " (pinned)" } else { "" }
            )
        }),
        ("Status", |e| status_badge(e.status.as_deref())),
        ("Detailed status", |e| opt(e.detailed_status.as_deref())),
        ("Started", |e| {
            e.created_unix.map_or_else(|| "—".to_owned(), timestamp)
        }),
        ("Targets", |e| counts(&by_status(e))),
        ("Progress", progress),
    ];
    for (i, (name, fact)) in facts.into_iter().enumerate() {
        let _ = write!(h, "<tr><th>{name}</th>");
        for column in columns {
            let value = match column {
                Some(e) => fact(e),
                None if i == 0 => "<span class=\"muted\">none</span>".to_owned(),
                None => "—".to_owned(),
            };
            let _ = write!(h, "<td>{value}</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n");
}

fn targets_table(h: &mut String, title: &str, e: &ExecutionStatus) {
    let _ = writeln!(
        h,
        "<h2>{title}</h2>\n<table>\n<thead><tr><th>Status</th><th>Detailed status</th><th>Resource type</th><th>Count</th></tr></thead>\n<tbody>"
    );
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

fn page_foot() -> String {
    "</body>\n</html>\n".to_owned()
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use hyper::body::Body as _;
    use serde_json::{Value, json};

    use crate::board::Posts;

    use super::*;
    use crate::board::Board;
    use crate::config::Place;
    use crate::snapshot::{
        ExecutionState, FailedTargets, LastSuccess, Snapshot, TargetCounts, Timing,
    };
    use crate::ssm::{Association, Execution, ScheduleFields, Target};
    use crate::telemetry::Telemetry;

    const NOW: f64 = 1_700_000_600.0;
    const TEST_BUILD: Build = Build {
        version: "0.0.0-test",
        rustc: "1.0.0",
    };

    fn at(seconds: f64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds)
    }

    /// The whole document in one value, as the renderer once built it for every change of
    /// the board: what the streamed JSON must equal byte for byte.
    #[derive(Debug, Serialize)]
    struct Status {
        build: Build,
        rendered_unix: f64,
        generation: u64,
        config: String,
        ready: bool,
        events: Option<EventsStatus>,
        pairs: Vec<PairStatus>,
        associations: Vec<AssociationStatus>,
    }

    impl Status {
        fn of(posts: &Posts, families: &[MetricFamily], now: SystemTime, build: Build) -> Status {
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
                (!a.failed, !a.overdue, slot_a, &a.name, &a.association_id).cmp(&(
                    !b.failed,
                    !b.overdue,
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

    /// The body's frames, taken as hyper takes them.
    fn frames(mut body: StatusJson) -> Vec<Bytes> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut frames = Vec::new();
        while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
            let frame = frame.expect("infallible");
            frames.push(frame.into_data().expect("a data frame"));
        }
        assert!(body.done);
        frames
    }

    fn json(source: &Published) -> Vec<u8> {
        frames(StatusJson::new(
            Arc::new(source.clone()),
            at(NOW),
            TEST_BUILD,
        ))
        .concat()
    }

    fn whole(source: &Published) -> Vec<u8> {
        let status = Status::of(&source.posts, &source.families, at(NOW), TEST_BUILD);
        serde_json::to_vec(&status).expect("JSON")
    }

    fn index(source: &Published, filter: Option<&str>) -> Option<String> {
        source
            .index(filter, at(NOW), TEST_BUILD, "/metrics")
            .map(|b| String::from_utf8(b.to_vec()).expect("utf-8"))
    }

    fn association(source: &Published, id: &str) -> Option<String> {
        source
            .association(id, at(NOW))
            .map(|b| String::from_utf8(b.to_vec()).expect("utf-8"))
    }

    fn last_cycle(finished: f64) -> LastCycle {
        LastCycle {
            finished: at(finished),
            duration: Duration::ZERO,
            calls: 0,
            throttled: 0,
            failures: 0,
            error_kind: None,
        }
    }

    /// The association IDs of a page's rows, in order.
    fn row_ids(html: &str) -> Vec<String> {
        html.lines()
            .filter(|l| l.starts_with("<tr") && l.contains("/association/"))
            .map(|l| {
                let start = l.find("/association/").expect("link") + 13;
                let end = start + l[start..].find('"').expect("link's end");
                l[start..end].to_owned()
            })
            .collect()
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
                ..Association::default()
            },
            finished: Some(Arc::new(ExecutionState {
                execution: Execution {
                    execution_id: format!("{}-e", &id[..8]),
                    status: Some(status.into()),
                    detailed_status: Some(status.into()),
                    created_time: Some(at(1_700_000_000.0)),
                    resource_count_by_status: None,
                },
                targets: counts,
                filters: Vec::new(),
                read_at: at(polled),
                failed,
                pinned: false,
            })),
            running: None,
            last_successful_execution: LastSuccess::Unknown,
            timing: Timing::Unscheduled,
            poll_ok: true,
            last_good_poll: Some(at(polled)),
            error_kind: None,
        }
    }

    /// An execution in progress over `targets`, started at `started`.
    fn running(id: &str, status: &str, targets: &[Target], started: f64) -> Arc<ExecutionState> {
        let mut counts = TargetCounts::default();
        for t in targets {
            counts.add(t);
        }
        Arc::new(ExecutionState {
            execution: Execution {
                execution_id: format!("{}-r", &id[..8]),
                status: Some(status.into()),
                detailed_status: Some(status.into()),
                created_time: Some(at(started)),
                resource_count_by_status: None,
            },
            targets: counts,
            filters: Vec::new(),
            read_at: at(NOW),
            failed: None,
            pinned: false,
        })
    }

    /// `a` on `expression` with `offset_days`, its last run started at `last_start`: its
    /// timing as the schedule's own reckoning has it.
    fn scheduled(a: &mut AssociationState, expression: &str, offset_days: u8, last_start: f64) {
        a.association.schedule.expression = Some(expression.into());
        a.association.schedule.offset_days = Some(offset_days).filter(|d| *d > 0);
        a.association.last_execution_date = Some(at(last_start));
        let schedule = crate::schedule::parse(expression).expect("a schedule");
        let offset = u32::from(offset_days);
        let next_run = schedule.next_run(Some(at(last_start)), None, offset);
        a.timing = Timing::Scheduled {
            next_run,
            interval: next_run.and_then(|next| schedule.interval(next, offset)),
        };
    }

    fn place(account_id: &str, region: &str) -> Option<Place> {
        Some(Place {
            account_id: account_id.into(),
            region: region.into(),
        })
    }

    /// Two pairs. One whose last cycle went well: a success on `rate(30 minutes)` whose next
    /// run is overdue; a failed run whose name carries markup, on a weekly cron schedule with
    /// an offset, its next run already running; a success whose schedule carries markup and
    /// could not be read. One throttled, with a pinned run it could not re-read and an
    /// association it never could.
    fn fixture() -> Published {
        let board = Board::new(
            [
                place("111111111111", "us-east-1"),
                place("222222222222", "eu-west-1"),
            ],
            "discovery of every association named <prod>*, poll interval 1m",
        );
        let mut east = Snapshot::default();
        let mut overdue = ran(
            "11111111-1111-1111-1111-111111111111",
            "patch-linux",
            "Success",
            &[
                target("i-01", "Success", "Success"),
                target("i-02", "Success", "Success"),
            ],
            None,
            NOW - 30.0,
        );
        // Its schedule stopped firing: the last run, two hours ago, was its last success.
        scheduled(&mut overdue, "rate(30 minutes)", 0, NOW - 7_200.0);
        if let Some(e) = &mut overdue.finished {
            Arc::make_mut(e).execution.created_time = Some(at(NOW - 7_200.0));
        }
        overdue.last_successful_execution = LastSuccess::At(at(NOW - 7_200.0));
        east.associations.push(overdue);
        let id = "22222222-2222-2222-2222-222222222222";
        let mut weekly = ran(
            id,
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
        );
        // Sundays at 22:00 two days on: Tuesdays, the day NOW is. Last week's run failed; this
        // week's started 23m 20s ago; the one before last week's was the last success.
        let this_week = 1_699_999_200.0;
        let week = 604_800.0;
        if let Some(e) = &mut weekly.finished {
            Arc::make_mut(e).execution.created_time = Some(at(this_week - week));
        }
        weekly.running = Some(running(
            id,
            "InProgress",
            &[
                target("i-03", "Success", "Success"),
                target("i-04", "InProgress", "InProgress"),
                target("i-05", "Pending", "Pending"),
                target("i-06", "Failed", "Failed"),
            ],
            this_week,
        ));
        scheduled(&mut weekly, "cron(0 22 ? * SUN *)", 2, this_week);
        weekly.association.schedule.duration_hours = Some(4);
        weekly.association.schedule.apply_only_at_cron_interval = Some(true);
        weekly.last_successful_execution = LastSuccess::At(at(this_week - 2.0 * week));
        east.associations.push(weekly);
        let mut unparsed = ran(
            "66666666-6666-6666-6666-666666666666",
            "baseline",
            "Success",
            &[target("i-09", "Success", "Success")],
            None,
            NOW - 30.0,
        );
        unparsed.association.schedule = ScheduleFields {
            expression: Some("rate(<b>2</b> fortnights)".into()),
            ..ScheduleFields::default()
        };
        unparsed.timing = Timing::Unparsed;
        east.associations.push(unparsed);
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
        pinned.last_successful_execution = LastSuccess::None;
        if let Some(e) = &mut pinned.finished {
            std::sync::Arc::make_mut(e).pinned = true;
        }
        let never = AssociationState {
            error_kind: Some("timeout"),
            ..AssociationState::unknown("44444444-4444-4444-4444-444444444444")
        };
        let west = Snapshot {
            associations: vec![pinned, never],
            region_associations: None,
            listing_refused: None,
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
        Published {
            posts,
            families: Vec::new(),
        }
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
        let source = fixture();
        golden("status.html", &index(&source, None).expect("the page"));
        golden(
            "association.html",
            &association(&source, "22222222-2222-2222-2222-222222222222").expect("a view"),
        );
    }

    /// Overdue ones after the failed ones, before the rest: "patch-linux" before "baseline".
    #[test]
    fn failed_ones_come_first_then_overdue_ones_then_by_pair_and_name() {
        let source = fixture();
        let expected = [
            "22222222-2222-2222-2222-222222222222",
            "44444444-4444-4444-4444-444444444444",
            "33333333-3333-3333-3333-333333333333",
            "11111111-1111-1111-1111-111111111111",
            "66666666-6666-6666-6666-666666666666",
        ];
        assert_eq!(row_ids(&index(&source, None).expect("the page")), expected);
        let value: Value = serde_json::from_slice(&json(&source)).expect("JSON");
        let order: Vec<(&str, bool, bool)> = value["associations"]
            .as_array()
            .expect("associations")
            .iter()
            .map(|a| {
                (
                    a["association_id"].as_str().expect("an ID"),
                    a["failed"] == json!(true),
                    a["overdue"] == json!(true),
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                (expected[0], true, false),
                (expected[1], true, false),
                (expected[2], true, false),
                (expected[3], false, true),
                (expected[4], false, false),
            ]
        );
    }

    #[test]
    fn markup_in_a_name_or_a_schedule_shows_as_text() {
        let source = fixture();
        let index = index(&source, None).expect("the page");
        let view = association(&source, "22222222-2222-2222-2222-222222222222").expect("a view");
        for html in [&index, &view] {
            assert!(!html.contains("<script"), "{html}");
            assert!(
                html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "{html}"
            );
        }
        assert!(index.contains("named &lt;prod&gt;*"), "{index}");
        let view = association(&source, "66666666-6666-6666-6666-666666666666").expect("a view");
        assert!(!view.contains("<b>"), "{view}");
        assert!(
            view.contains(
                "<tr><th>Schedule</th><td><code>rate(&lt;b&gt;2&lt;/b&gt; fortnights)</code> <span class=\"c other\">unparsed</span></td></tr>"
            ),
            "{view}"
        );
    }

    /// The facts of a schedule in a view and a row: ahead, overdue, unparsed or none, and
    /// the running execution's progress beside the finished one's counts.
    #[test]
    fn a_view_and_a_row_tell_when_it_runs_next_and_how_far_the_run_is() {
        let source = fixture();
        let fact = |id: &str, name: &str| -> String {
            let view = association(&source, id).expect("a view");
            let start = format!("<tr><th>{name}</th><td>");
            let line = view
                .lines()
                .find_map(|l| l.strip_prefix(&start))
                .unwrap_or_else(|| panic!("{name} in {view}"));
            line.strip_suffix("</td></tr>").unwrap_or(line).to_owned()
        };
        let weekly = "22222222-2222-2222-2222-222222222222";
        let overdue = "11111111-1111-1111-1111-111111111111";
        let pinned = "33333333-3333-3333-3333-333333333333";
        let unparsed = "66666666-6666-6666-6666-666666666666";
        for (id, name, expected) in [
            (weekly, "Schedule", "<code>cron(0 22 ? * SUN *)</code>"),
            (weekly, "Schedule offset", "2 days"),
            (weekly, "Duration", "4h, then SSM cancels the run"),
            (weekly, "Apply only at cron interval", "yes"),
            (weekly, "Interval", "7d 0h"),
            (
                weekly,
                "Last run",
                "2023-11-14T22:00:00Z <span class=\"muted\">(23m 20s ago)</span>",
            ),
            (
                weekly,
                "Next run",
                "2023-11-21T22:00:00Z <span title=\"2023-11-21T22:00:00Z\">in 6d 23h</span>",
            ),
            (
                weekly,
                "Last successful execution",
                "2023-10-31T22:00:00Z <span class=\"muted\">(14d 0h ago)</span>",
            ),
            (
                weekly,
                "Progress",
                "<td>4 of 4 done</td><td>2 of 4 done</td>",
            ),
            (overdue, "Schedule offset", "—"),
            (overdue, "Interval", "30m 0s"),
            (
                overdue,
                "Next run",
                "2023-11-14T20:53:20Z <span class=\"c late\" title=\"2023-11-14T20:53:20Z\">overdue 1h 30m</span>",
            ),
            (
                pinned,
                "Schedule",
                "<span class=\"muted\">none: it runs when created or updated</span>",
            ),
            (pinned, "Next run", "—"),
            (pinned, "Last successful execution", "—"),
            (
                unparsed,
                "Next run",
                "<span class=\"muted\">unknown: the schedule could not be read</span>",
            ),
        ] {
            // The executions' rows have a cell per column.
            let got = if name == "Progress" {
                let view = association(&source, id).expect("a view");
                let start = format!("<tr><th>{name}</th>");
                let line = view.lines().find_map(|l| l.strip_prefix(&start));
                line.and_then(|l| l.strip_suffix("</tr>"))
                    .unwrap_or_default()
                    .to_owned()
            } else {
                fact(id, name)
            };
            assert_eq!(got, expected, "{id} {name}");
        }
        let page = index(&source, None).expect("the page");
        let row = |id: &str| {
            page.lines()
                .find(|l| l.contains(&format!("/association/{id}")))
                .expect("a row")
                .to_owned()
        };
        assert!(row(overdue).starts_with("<tr class=\"overdue\">"));
        assert!(row(overdue).contains(
            "<td>—</td><td><span class=\"c late\" title=\"2023-11-14T20:53:20Z\">overdue 1h 30m</span></td>"
        ));
        assert!(row(weekly).contains(
            "<td><span class=\"c run\">InProgress</span> 2 of 4 done</td><td><span title=\"2023-11-21T22:00:00Z\">in 6d 23h</span></td>"
        ));
        assert!(
            row(unparsed).contains("<td>—</td><td><span class=\"c other\">unparsed</span></td>")
        );
        assert!(
            page.contains(
                "<p>5 watched, 3 failed, 1 overdue (listed first, failed before overdue).</p>"
            ),
            "{page}"
        );
    }

    #[test]
    fn a_filter_picks_the_rows_of_one_status() {
        let source = fixture();
        let rows = |filter| row_ids(&index(&source, filter).expect("a page"));
        let short = |ids: Vec<String>| -> Vec<String> {
            ids.into_iter().map(|id| id[..8].to_owned()).collect()
        };
        assert_eq!(
            short(rows(None)),
            ["22222222", "44444444", "33333333", "11111111", "66666666"]
        );
        assert_eq!(short(rows(Some("Failed"))), ["22222222"]);
        assert_eq!(short(rows(Some("Success"))), ["11111111", "66666666"]);
        assert_eq!(short(rows(Some("InProgress"))), ["33333333"]);
        assert_eq!(short(rows(Some(NO_EXECUTION))), ["44444444"]);
        assert_eq!(index(&source, Some("Cancelled")), None);
        assert!(
            index(&source, Some("Failed"))
                .expect("a page")
                .contains("<a href=\"/?status=Failed\" class=\"current\">Failed (1)</a>")
        );
    }

    #[test]
    fn a_view_is_found_by_its_id_as_its_link_spells_it() {
        let source = fixture();
        let view = association(&source, "22222222-2222-2222-2222-222222222222");
        assert_eq!(
            association(&source, "%32%32222222-2222-2222-2222-222222222222"),
            view
        );
        for missing in [
            "55555555-5555-5555-5555-555555555555",
            "22222222-2222-2222-2222-22222222222",
            "%3",
            "%zz",
            "%FF",
            "",
        ] {
            assert_eq!(association(&source, missing), None, "{missing}");
        }
        assert_eq!(decode("a%20b%2F%C3%BC"), Some("a b/ü".to_owned()));
        assert_eq!(decode(&encode("<ü> &")), Some("<ü> &".to_owned()));
        assert_eq!(decode("%+1"), None);
    }

    /// An association that two pairs both watch has its facts from each in one view, failed
    /// first.
    #[test]
    fn a_view_shows_the_association_in_every_pair_that_has_it() {
        let id = "55555555-5555-5555-5555-555555555555";
        let board = Board::new(
            [
                place("111111111111", "us-east-1"),
                place("222222222222", "eu-west-1"),
            ],
            "",
        );
        let healthy = ran(id, "shared", "Success", &[], None, NOW - 5.0);
        let mut failing = healthy.clone();
        failing.poll_ok = false;
        for (slot, state) in [healthy, failing].into_iter().enumerate() {
            let snapshot = Snapshot {
                associations: vec![state],
                region_associations: None,
                listing_refused: None,
            };
            board.post(slot, Arc::new(snapshot), 1, last_cycle(NOW));
        }
        let source = Published {
            posts: board.subscribe().borrow().clone(),
            families: Vec::new(),
        };
        let view = association(&source, id).expect("a view");
        let pairs: Vec<&str> = view
            .lines()
            .filter_map(|l| l.strip_prefix("<tr><th>Pair</th><td>"))
            .collect();
        assert_eq!(
            pairs,
            [
                "222222222222 eu-west-1</td></tr>",
                "111111111111 us-east-1</td></tr>"
            ]
        );
    }

    /// Byte for byte the document serialised whole, for a board of several pairs with
    /// failed associations, events and more than one batch; and for a board with none.
    #[test]
    fn the_streamed_json_is_the_document_serialised_whole() {
        let board = Board::new(
            [
                place("111111111111", "us-east-1"),
                place("222222222222", "eu-west-1"),
                place("333333333333", "ap-south-1"),
            ],
            "every association, poll interval 1m",
        );
        let telemetry = Telemetry::new(true);
        let events = telemetry.events();
        events.record_event("applied");
        events.record_event("ignored");
        events.record_queue_up(true);
        let families = telemetry.gather();
        let empty = Published {
            posts: board.subscribe().borrow().clone(),
            families: families.clone(),
        };
        assert_eq!(
            frames(StatusJson::new(
                Arc::new(empty.clone()),
                at(NOW),
                TEST_BUILD
            ))
            .len(),
            1
        );
        assert_eq!(json(&empty), whole(&empty));

        let statuses = ["Success", "Failed", "InProgress", "TimedOut", "Success"];
        for (slot, count) in [(0, 300), (1, 0), (2, 250)] {
            let mut snapshot = Snapshot::default();
            for i in 0..count {
                let id = format!("{slot}{i:07}-0000-4000-8000-000000000000");
                let status = statuses[i % statuses.len()];
                let targets = [
                    target(&format!("i-{i:04}a"), "Success", "Success"),
                    target(&format!("i-{i:04}b"), status, status),
                ];
                // Names repeat, so that the ID orders some; one in seven has none.
                let mut a = ran(
                    &id,
                    &format!("run-{}", i % 40),
                    status,
                    &targets,
                    Some(1),
                    NOW - 60.0,
                );
                if i % 7 == 0 {
                    a.association.association_name = None;
                }
                // Some overdue, some ahead, some running: the order puts the overdue ones
                // after the failed ones.
                if i % 3 == 0 {
                    a.timing = Timing::Scheduled {
                        next_run: Some(at(NOW + 60.0 - (i % 2) as f64 * 120.0)),
                        interval: Some(Duration::from_secs(1_800)),
                    };
                    a.association.schedule.expression = Some("rate(30 minutes)".into());
                }
                if i % 4 == 0 {
                    a.running = Some(running(&id, "InProgress", &targets, NOW - 10.0));
                    a.last_successful_execution = LastSuccess::At(at(NOW - 3_600.0));
                }
                if i % 11 == 0 {
                    a.poll_ok = false;
                    a.error_kind = Some("throttled");
                }
                if i % 13 == 0 {
                    a = AssociationState::unknown(&id);
                }
                snapshot.associations.push(a);
            }
            board.post(slot, Arc::new(snapshot), 2, last_cycle(NOW - 30.0));
        }
        let source = Published {
            posts: board.subscribe().borrow().clone(),
            families,
        };
        let sent = frames(StatusJson::new(
            Arc::new(source.clone()),
            at(NOW),
            TEST_BUILD,
        ));
        // The head, then ⌈550/16⌉ batches.
        assert_eq!(sent.len(), 36);
        let expected = whole(&source);
        assert_eq!(sent.concat(), expected);
        let value: Value = serde_json::from_slice(&expected).expect("JSON");
        assert_eq!(value["associations"].as_array().map(Vec::len), Some(550));
        assert_eq!(
            value["events"],
            json!({"queue_up": true, "received": {"applied": 1, "coalesced": 0, "ignored": 1, "invalid": 0}})
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
        let value: Value = serde_json::from_slice(&json(&fixture())).expect("JSON");
        let mut failed = value["associations"][0].clone();
        let execution = json!({
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
            }],
            "targets_done": "number"
        });
        assert_eq!(
            shape(&failed),
            json!({
                "account_id": "string",
                "region": "string",
                "association_id": "string",
                "name": "string",
                "document_name": "string",
                "schedule": {
                    "expression": "string",
                    "offset_days": "number",
                    "duration_hours": "number",
                    "apply_only_at_cron_interval": "bool",
                    "parsed": "bool"
                },
                "execution": execution,
                "running": execution,
                "targets_by_status": {"Failed": "number", "Success": "number", "TimedOut": "number"},
                "failed_targets": {
                    "named": [{
                        "resource_id": "string",
                        "resource_type": "string",
                        "detailed_status": "string"
                    }],
                    "omitted": "number"
                },
                "last_run_unix": "number",
                "next_run_unix": "number",
                "overdue": "bool",
                "schedule_interval_seconds": "number",
                "last_successful_execution_unix": "number",
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
        assert_eq!(
            failed["schedule"],
            json!({
                "expression": "cron(0 22 ? * SUN *)",
                "offset_days": 2,
                "duration_hours": 4,
                "apply_only_at_cron_interval": true,
                "parsed": true
            })
        );
        assert_eq!(
            (
                &failed["execution"]["targets_done"],
                &failed["running"]["status"],
                &failed["running"]["targets_done"]
            ),
            (&json!(4), &json!("InProgress"), &json!(2))
        );
        assert_eq!(
            (
                &failed["last_run_unix"],
                &failed["next_run_unix"],
                &failed["overdue"],
                &failed["schedule_interval_seconds"],
                &failed["last_successful_execution_unix"]
            ),
            (
                &json!(1_699_999_200.0),
                &json!(1_700_604_000.0),
                &json!(false),
                &json!(604_800.0),
                &json!(1_698_789_600.0)
            )
        );
        failed = value["associations"][1].clone();
        assert_eq!(
            (
                &failed["execution"],
                &failed["failed_targets"],
                &failed["error_kind"]
            ),
            (&json!(null), &json!(null), &json!("timeout"))
        );
        for key in [
            "schedule",
            "running",
            "last_run_unix",
            "next_run_unix",
            "schedule_interval_seconds",
            "last_successful_execution_unix",
        ] {
            assert_eq!(failed[key], json!(null), "{key}");
        }
        assert_eq!(failed["overdue"], json!(false));
        let overdue = &value["associations"][3];
        assert_eq!(
            (&overdue["next_run_unix"], &overdue["overdue"]),
            (&json!(NOW - 5_400.0), &json!(true))
        );
        let unparsed = &value["associations"][4];
        assert_eq!(
            (&unparsed["schedule"]["parsed"], &unparsed["next_run_unix"]),
            (&json!(false), &json!(null))
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

    /// Two pairs of 1,200 associations in all, every third one's poll fine: each filter shows
    /// the first 500 of its own in the document's order and counts the rest.
    #[test]
    fn a_large_fleet_shows_the_first_rows_and_counts_the_rest() {
        let board = Board::new([None, None], "");
        for (slot, range) in [(0, 0..500), (1, 500..MAX_ROWS + 700)] {
            let mut snapshot = Snapshot::default();
            for i in range {
                let id = format!("{i:08}-0000-0000-0000-000000000000");
                let mut a = if i % 2 == 0 {
                    AssociationState::unknown(&id)
                } else {
                    // Names in the reverse of the IDs' order, so that the name orders them.
                    ran(
                        &id,
                        &format!("run-{}", 10_000 - i),
                        "Success",
                        &[],
                        None,
                        NOW,
                    )
                };
                a.poll_ok = i % 3 == 0;
                snapshot.associations.push(a);
            }
            board.post(slot, Arc::new(snapshot), 1, last_cycle(NOW));
        }
        let source = Published {
            posts: board.subscribe().borrow().clone(),
            families: Vec::new(),
        };
        let order = Status::of(&source.posts, &[], at(NOW), TEST_BUILD).associations;
        let first = |filter: Option<&str>| -> Vec<String> {
            order
                .iter()
                .filter(|a| {
                    filter.is_none_or(|f| {
                        a.execution
                            .as_ref()
                            .and_then(|e| e.status.as_deref())
                            .unwrap_or(NO_EXECUTION)
                            == f
                    })
                })
                .take(MAX_ROWS)
                .map(|a| a.association_id.clone())
                .collect()
        };
        let all = index(&source, None).expect("the page");
        assert_eq!(row_ids(&all), first(None));
        let rows: Vec<&str> = all
            .lines()
            .filter(|l| l.starts_with("<tr") && l.contains("/association/"))
            .collect();
        assert!(rows.iter().all(|r| r.starts_with("<tr class=\"failed\">")));
        assert!(
            all.contains(
                "<p>1200 watched, 800 failed, 0 overdue (listed first, failed before overdue).</p>"
            ),
            "{all}"
        );
        assert!(
            all.contains("<p class=\"more\">700 more not shown:"),
            "{all}"
        );
        assert!(
            all.contains(
                " <a href=\"/\" class=\"current\">All (1200)</a> <a href=\"/?status=Success\">Success (600)</a> <a href=\"/?status=none\">No execution (600)</a></nav>"
            ),
            "{all}"
        );
        for (filter, more) in [("Success", 100), (NO_EXECUTION, 100)] {
            let page = index(&source, Some(filter)).expect("a page");
            assert_eq!(row_ids(&page), first(Some(filter)), "{filter}");
            assert!(
                page.contains(&format!("<p class=\"more\">{more} more not shown:")),
                "{filter}"
            );
        }
        let value: Value = serde_json::from_slice(&json(&source)).expect("JSON");
        assert_eq!(
            value["associations"].as_array().map(Vec::len),
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
