//! Log output: logfmt (the default, as Prometheus' own tools write) or JSON, to stderr, at the
//! level of `--log.level`. No code of ours logs a header, a token or a credential; the AWS
//! SDK's own events are kept at warn and above, whatever the level, since its debug and trace
//! events describe requests.

use std::fmt;
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// The filter for a level: our own events at `level`, every dependency's at warn at most
/// (an allow-list: a dependency added later cannot start logging requests).
pub fn filter(level: Level) -> EnvFilter {
    let level = level.as_str().to_ascii_lowercase();
    let deps = if matches!(level.as_str(), "error") {
        "error"
    } else {
        "warn"
    };
    EnvFilter::new(format!("{deps},ssm_association_exporter={level}"))
}

/// Installs the global subscriber, once, in `main`.
pub fn init(level: Level, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        LogFormat::Logfmt => builder.event_format(Logfmt).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// `time=… level=… target=… msg="…" key=value …`, one event a line.
#[derive(Debug, Clone, Copy)]
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut time = String::new();
        SystemTime.format_time(&mut Writer::new(&mut time))?;
        let meta = event.metadata();
        write!(
            writer,
            "time={} level={} target={}",
            time,
            meta.level().as_str().to_ascii_lowercase(),
            quote(meta.target())
        )?;
        // The fields of the spans around the event: the account and region a pair's scheduler
        // works for. Spans hold only our own IDs and names, never text that needs quoting.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, " {fields}")?;
                }
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        writeln!(writer, "{}", fields.0)
    }
}

struct Fields(String);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, &format!("{value:?}"));
    }
}

impl Fields {
    fn push(&mut self, field: &Field, value: &str) {
        let key = match field.name() {
            "message" => "msg",
            name => name,
        };
        self.0.push(' ');
        self.0.push_str(key);
        self.0.push('=');
        self.0.push_str(&quote(value));
    }
}

/// A logfmt value: bare when it can be, quoted and escaped otherwise.
fn quote(value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=' && c != '\\');
    if bare {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Lines of one kind that a flood must not multiply: at most `burst` per `window`, the rest
/// counted, and the count given to the first line of the next window.
#[derive(Debug)]
pub struct LogBudget {
    burst: u32,
    window: Duration,
    window_start: Option<Instant>,
    logged: u32,
    left_out: u64,
}

impl LogBudget {
    pub const fn new(burst: u32, window: Duration) -> Self {
        LogBudget {
            burst,
            window,
            window_start: None,
            logged: 0,
            left_out: 0,
        }
    }

    /// `Some(n)` if a line is to be logged now, `n` being how many were left out since the
    /// last one logged; `None` if it is left out.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        let expired = self
            .window_start
            .is_none_or(|start| now.duration_since(start) >= self.window);
        let mut left_out = 0;
        if expired {
            left_out = std::mem::take(&mut self.left_out);
            self.window_start = Some(now);
            self.logged = 0;
        }
        if self.logged < self.burst {
            self.logged += 1;
            Some(left_out)
        } else {
            self.left_out += 1;
            None
        }
    }

    /// How many lines a window admits.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    pub fn window(&self) -> Duration {
        self.window
    }
}

/// A value from outside (a user name, an event's field) as a log line shows it: its first
/// `max_chars` characters, escaped as Debug escapes them (control characters, quotes) but
/// without Debug's quotes, the log format quoting the value itself; `…` marks a cut.
pub fn shown(value: &str, max_chars: usize) -> String {
    let cut: String = value.chars().take(max_chars).collect();
    let mut shown = cut.escape_debug().to_string();
    if value.chars().nth(max_chars).is_some() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_budget_admits_a_burst_per_window() {
        let mut log = LogBudget::new(5, Duration::from_secs(10));
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let admitted: Vec<Option<u64>> = (0..8).map(|i| log.admit(at(i * 100))).collect();
        assert_eq!(
            admitted,
            [
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                None,
                None,
                None
            ]
        );
        assert_eq!(log.admit(at(9_999)), None);
        // The next window's first line says how many were left out.
        assert_eq!(log.admit(at(10_000)), Some(4));
        assert_eq!(log.admit(at(10_001)), Some(0));
        assert_eq!(log.admit(at(60_000)), Some(0));
    }

    #[test]
    fn shown_values_are_cut_and_escaped() {
        assert_eq!(shown("alice", 64), "alice");
        assert_eq!(shown("a\"b\nc", 64), "a\\\"b\\nc");
        assert_eq!(shown(&"é".repeat(70), 64), format!("{}…", "é".repeat(64)));
    }

    #[test]
    fn values_are_quoted_only_when_they_must_be() {
        assert_eq!(quote("cycle"), "cycle");
        assert_eq!(quote("127.0.0.1:8467"), "127.0.0.1:8467");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("poll cycle finished"), "\"poll cycle finished\"");
        assert_eq!(quote("a=b"), "\"a=b\"");
        assert_eq!(quote("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
        assert_eq!(quote("back\\slash"), "\"back\\\\slash\"");
    }
}
