//! The HTML of the status page and of an association's view, written by the templates in
//! `templates/` from the JSON's shapes. askama escapes every value they print with
//! [`Entities`] and none is marked safe, so no value from SSM or the configuration reaches
//! the HTML unescaped; links spell IDs and statuses through [`encode`].

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use askama::Template;
use askama::filters::Escaper;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::model::{
    AssociationStatus, ExecutionStatus, FailedTargetsStatus, Head, ScheduleStatus, by_status,
};
use super::select::{Entry, MAX_ROWS, NO_EXECUTION};
use crate::ssm::FAILED;

/// Failed targets a row names; the association's own view names all that were kept.
const ROW_FAILED_TARGETS: usize = 3;

/// What [`encode`] keeps: RFC 3986's unreserved characters, the same set as askama's
/// `urlencode_strict`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The templates' escaper (`templates/askama.toml`): HTML's named entities, as the page has
/// always spelled them, where askama's own writes numeric ones.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entities;

impl Escaper for Entities {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, text: &str) -> fmt::Result {
        let mut last = 0;
        for (i, c) in text.match_indices(['&', '<', '>', '"', '\'']) {
            dest.write_str(&text[last..i])?;
            dest.write_str(match c {
                "&" => "&amp;",
                "<" => "&lt;",
                ">" => "&gt;",
                "\"" => "&quot;",
                _ => "&#39;",
            })?;
            last = i + c.len();
        }
        dest.write_str(&text[last..])
    }
}

/// `text` percent-encoded but for unreserved characters: safe in a path segment or query
/// value, and in HTML.
pub(super) fn encode(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// The text a percent-encoded path segment spells; `None` when it is malformed or not UTF-8.
pub(super) fn decode(text: &str) -> Option<String> {
    // percent-encoding passes a `%` without two hex digits through as text; no link of ours
    // has one.
    let well_formed = text.split('%').skip(1).all(|after| {
        after
            .as_bytes()
            .get(..2)
            .is_some_and(|digits| digits.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

/// A duration as a person reads it: the two largest units.
fn age(seconds: f64) -> String {
    let d = Duration::from_secs_f64(seconds.max(0.0));
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

// The templates' helpers. askama passes a template's values by reference, hence `&f64`.

/// A time as RFC 3339 in UTC, to the second.
fn time(unix_seconds: &f64) -> String {
    crate::timestamp::format_time(*unix_seconds)
}

/// How long before `rendered_unix` a time was.
fn ago(unix_seconds: &f64, rendered_unix: &f64) -> String {
    age(rendered_unix - unix_seconds)
}

/// How long after `rendered_unix` a time is.
fn ahead(unix_seconds: &f64, rendered_unix: &f64) -> String {
    age(unix_seconds - rendered_unix)
}

fn span(seconds: &f64) -> String {
    age(*seconds)
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

/// What a row's link and a view's heading call it.
fn title(a: &AssociationStatus) -> &str {
    a.name.as_deref().unwrap_or(&a.association_id)
}

fn execution_status(a: &AssociationStatus) -> Option<&str> {
    a.execution.as_ref()?.status.as_deref()
}

fn targets_total(e: &ExecutionStatus) -> u64 {
    e.targets.iter().map(|t| t.count).sum()
}

/// Failed targets a row does not name: beyond its first few, and beyond the configured limit.
fn unnamed(failed: &FailedTargetsStatus) -> u64 {
    failed.named.len().saturating_sub(ROW_FAILED_TARGETS) as u64 + failed.omitted
}

/// A view's executions table: the last finished and the running execution, a column each.
fn columns(a: &AssociationStatus) -> [Option<&ExecutionStatus>; 2] {
    [a.execution.as_ref(), a.running.as_ref()]
}

/// Associations on the board, and those of them the page lists first.
#[derive(Debug, Clone, Copy)]
pub(super) struct Counted {
    pub(super) watched: usize,
    pub(super) failed: usize,
    pub(super) overdue: usize,
}

/// The status page: the head, the filter links with how many each matches, and the rows.
#[derive(Template)]
#[template(path = "status.html", config = "templates/askama.toml")]
pub(super) struct StatusPage<'a> {
    pub(super) head: Head,
    pub(super) counted: Counted,
    /// Our own flag's, checked to need no escaping; escaped all the same.
    pub(super) telemetry_path: &'a str,
    /// `None` is every association.
    pub(super) choices: &'a [(Option<&'a str>, usize)],
    pub(super) current: Option<&'a str>,
    /// Whether a pair has an account and region: only then is there a Pair column.
    pub(super) placed: bool,
    /// The rows, in the page's order.
    pub(super) shown: &'a [Entry<'a>],
    /// Associations the filter matches, shown or not.
    pub(super) matching: usize,
    pub(super) now: SystemTime,
}

impl StatusPage<'_> {
    /// Each row's facts, made as the row is written and dropped after: a page holds one
    /// row's at a time.
    fn rows(&self) -> impl Iterator<Item = AssociationStatus> {
        self.shown.iter().map(|e| e.status(self.now))
    }
}

/// An association's view: its facts in every pair that has it.
#[derive(Template)]
#[template(path = "association.html", config = "templates/askama.toml")]
pub(super) struct AssociationPage<'a> {
    /// Its entries, in the order the view shows them.
    pub(super) found: &'a [Entry<'a>],
    pub(super) now: SystemTime,
    pub(super) rendered_unix: f64,
}

impl AssociationPage<'_> {
    fn associations(&self) -> impl Iterator<Item = AssociationStatus> {
        self.found.iter().map(|e| e.status(self.now))
    }
}

/// The page as its template writes it. Writing to a `String` fails only when a value's
/// `Display` does, and none of ours does.
pub(super) fn render<T: Template>(page: &T) -> String {
    let mut out = String::with_capacity(T::SIZE_HINT);
    let _ = page.render_into(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_ages_read_as_people_write_them() {
        assert_eq!(time(&0.0), "1970-01-01T00:00:00Z");
        assert_eq!(time(&951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(time(&1_700_000_600.9), "2023-11-14T22:23:20Z");
        let ages: Vec<String> = [0.4, 59.0, 61.0, 3_725.0, 90_000.0]
            .into_iter()
            .map(age)
            .collect();
        assert_eq!(ages, ["0s", "59s", "1m 1s", "1h 2m", "1d 1h"]);
        assert_eq!(encode("a b/ü"), "a%20b%2F%C3%BC");
        let mut escaped = String::new();
        Entities
            .write_escaped_str(&mut escaped, "<a href='x'>&\"</a>")
            .expect("a String takes any text");
        assert_eq!(escaped, "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
    }

    /// The bytes the hand-written encoding kept, and the escapes its decoding refused.
    #[test]
    fn links_keep_only_unreserved_characters() {
        let all: String = (0..=127u8).map(char::from).collect();
        for c in all.chars() {
            let expected = if c.is_ascii_alphanumeric() || "-_.~".contains(c) {
                c.to_string()
            } else {
                format!("%{:02X}", u32::from(c))
            };
            assert_eq!(encode(&c.to_string()), expected);
        }
        assert_eq!(decode(&encode(&all)).as_deref(), Some(all.as_str()));
        assert_eq!(decode("%41%4a%4A+x"), Some("AJJ+x".to_owned()));
        for malformed in ["%", "%4", "%4%41", "%%41", "%g1", "%C3", "%ff"] {
            assert_eq!(decode(malformed), None, "{malformed}");
        }
    }
}
