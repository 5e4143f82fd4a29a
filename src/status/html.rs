//! The HTML of the status page and of an association's view, written from the JSON's
//! shapes. No value from SSM or the configuration reaches the HTML without passing
//! [`escape`]; links spell IDs and statuses through [`encode`].

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use super::model::{
    AssociationStatus, ExecutionStatus, FailedTargetsStatus, Head, ScheduleStatus, by_status,
};
use super::select::{MAX_ROWS, NO_EXECUTION};
use super::verdict::FAILED;

/// Failed targets a row names; the association's own view names all that were kept.
const ROW_FAILED_TARGETS: usize = 3;

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
pub(super) fn encode(text: &str) -> String {
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
pub(super) fn decode(text: &str) -> Option<String> {
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
pub(super) struct Counted {
    pub(super) watched: usize,
    pub(super) failed: usize,
    pub(super) overdue: usize,
}

/// The page down to the associations' filters.
pub(super) fn page_head(head: &Head, counted: Counted, telemetry_path: &str) -> String {
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
pub(super) fn filter_open(
    choices: &[(Option<&str>, usize)],
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
        let _ = write!(h, " <a href=\"{href}\"{class}>{label} ({matching})</a>");
    }
    h.push_str("</nav>\n<div class=\"scroll\"><table id=\"associations\">\n<thead><tr><th>Association</th>");
    if placed {
        h.push_str("<th>Pair</th>");
    }
    h.push_str("<th>Document</th><th>Execution</th><th>Status</th><th>Targets</th><th>Failed targets</th><th>Running</th><th>Next run</th><th>Poll</th><th>Error</th><th>Data age</th></tr></thead>\n<tbody>\n");
    h
}

pub(super) fn filter_close(matching: usize) -> String {
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

pub(super) fn row(a: &AssociationStatus, placed: bool, rendered_unix: f64) -> String {
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

pub(super) fn view_head(rendered_unix: f64) -> String {
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
pub(super) fn view(h: &mut String, a: &AssociationStatus, rendered_unix: f64) {
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

pub(super) fn page_foot() -> String {
    "</body>\n</html>\n".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

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
