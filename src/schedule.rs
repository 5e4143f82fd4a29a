//! State Manager schedule expressions (`cron(...)`, `rate(...)`, `at(...)`) and when an association
//! runs next, in UTC; nothing here reads the clock. No crate is used: the cron crates speak Unix or
//! Quartz cron (seconds first, Sunday as 0, no year field) and bring chrono or jiff, and each
//! difference from AWS's dialect would give a wrong time rather than an error. Whatever the Systems
//! Manager reference does not describe is an error, never a guess.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECONDS_PER_DAY: i64 = 86_400;
/// The year field's range in the reference; it also bounds every search for a next match.
const FIRST_YEAR: i64 = 1970;
const LAST_YEAR: i64 = 2199;
/// Associations accept rates from 30 minutes up to, but not including, 31 days.
const SHORTEST_RATE: Duration = Duration::from_secs(30 * 60);
const LONGEST_RATE_EXCLUSIVE: Duration = Duration::from_secs(31 * 86_400);
/// Errors echo at most this many characters of the input, so a hostile or garbled value from the
/// API cannot blow up a log line.
const ECHO_LIMIT: usize = 80;

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
/// In AWS's numbering 1 is Sunday and 7 is Saturday, not Unix's 0 = Sunday.
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const SATURDAY: u32 = 7;
const SUNDAY: u32 = 1;

/// A parsed association schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `rate(N minutes|hours|days)`: N after the previous run.
    Rate(Duration),
    /// `cron(...)`: the minutes that match, in UTC.
    Cron(Cron),
    /// `at(yyyy-mm-ddThh:mm:ss)`: once, at that UTC instant.
    At(SystemTime),
}

/// A parsed cron expression: the set of UTC minutes it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Bits,
    hours: Bits,
    months: Bits,
    /// Indexed by `year - FIRST_YEAR`.
    years: Bits,
    days: Days,
}

/// Which day field decides: the reference makes exactly one of day-of-month and day-of-week `?`,
/// so the other one alone picks the days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Days {
    OfMonth(DayOfMonth),
    OfWeek(DayOfWeek),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayOfMonth {
    Days(Bits),
    /// `L`
    Last,
    /// `15W`: the weekday nearest the 15th, never leaving the month.
    NearestWeekday(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayOfWeek {
    /// Weekdays 1-7 (Sunday is 1).
    Days(Bits),
    /// `6L`: the last Friday of the month.
    Last(u32),
    /// `TUE#3`: the third Tuesday of the month.
    Nth { weekday: u32, nth: u32 },
}

/// A set of small numbers (0-255); each field stores its values, years as offsets from 1970.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Bits([u64; 4]);

impl Bits {
    fn insert(&mut self, value: u32) {
        self.0[(value / 64) as usize] |= 1 << (value % 64);
    }

    fn contains(&self, value: u32) -> bool {
        value < 256 && self.0[(value / 64) as usize] & (1 << (value % 64)) != 0
    }

    /// The smallest member that is at least `from`.
    fn first_from(&self, from: u32) -> Option<u32> {
        (from..256).find(|&value| self.contains(value))
    }
}

/// What went wrong with an expression; every message quotes (at most 80 characters of) it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule '{expression}' is not cron(...), rate(...) or at(...)")]
    Form { expression: String },
    #[error(
        "{expression}: expected 6 fields (minutes hours day-of-month month day-of-week year) \
         or 7 with seconds first, found {found}"
    )]
    FieldCount { expression: String, found: usize },
    #[error("{expression}: {field} field '{value}' {problem}")]
    Field {
        expression: String,
        field: &'static str,
        value: String,
        problem: String,
    },
    /// The rule that exactly one of day-of-month and day-of-week is `?`.
    #[error("{expression}: {problem}")]
    Days { expression: String, problem: String },
    #[error("{expression}: {problem}")]
    Rate { expression: String, problem: String },
    #[error("{expression}: {problem}")]
    At { expression: String, problem: String },
}

/// Parses a State Manager schedule expression as the Systems Manager reference describes it for
/// associations. Surrounding whitespace is ignored, and fields may be separated by any run of
/// spaces; `cron`, `rate`, `at` and rate units are lower case as the reference writes them, while
/// day and month names, `L` and `W` are matched in any case (Quartz, whose syntax AWS's cron
/// follows, does the same, and a lower-case name has only one meaning).
///
/// # Errors
///
/// A [`ScheduleError`] naming the part of the expression that is not in the reference's dialect.
pub fn parse(expression: &str) -> Result<Schedule, ScheduleError> {
    let expression = expression.trim();
    if let Some(body) = inside(expression, "cron(") {
        Cron::parse(expression, body).map(Schedule::Cron)
    } else if let Some(body) = inside(expression, "rate(") {
        let rate = rate(body).map_err(|problem| ScheduleError::Rate {
            expression: echo(expression),
            problem,
        });
        rate.map(Schedule::Rate)
    } else if let Some(body) = inside(expression, "at(") {
        let at = at(body.trim()).map_err(|problem| ScheduleError::At {
            expression: echo(expression),
            problem,
        });
        at.map(Schedule::At)
    } else {
        Err(ScheduleError::Form {
            expression: echo(expression),
        })
    }
}

fn inside<'a>(expression: &'a str, opening: &str) -> Option<&'a str> {
    expression.strip_prefix(opening)?.strip_suffix(')')
}

fn echo(text: &str) -> String {
    if text.chars().count() <= ECHO_LIMIT {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(ECHO_LIMIT).collect();
        short.push('…');
        short
    }
}

impl Schedule {
    /// The first time the schedule fires after the association's last execution started
    /// (`last_start`) or, if it never ran, after it was `created`; `None` when a rate or cron
    /// schedule has neither time, or when nothing is left to run.
    ///
    /// - Rate: the base plus the rate. The offset does not apply: AWS offsets cron schedules only.
    /// - Cron after a run: the first match strictly after `last_start - offset_days`, plus the
    ///   offset, so that a run which started `offset_days` after its match is paired with that
    ///   match rather than skipping the next one.
    /// - Cron after creation only: the first match strictly after `created`, plus the offset. The
    ///   reference says a match that already passed when the association was created is not run
    ///   late even if its offset date is still ahead ("it will go into effect in the following
    ///   period").
    /// - At: the instant itself, unless `last_start` is at or after it (it has run, once).
    #[must_use]
    pub fn next_run(
        &self,
        last_start: Option<SystemTime>,
        created: Option<SystemTime>,
        offset_days: u32,
    ) -> Option<SystemTime> {
        match self {
            Schedule::Rate(rate) => last_start.or(created)?.checked_add(*rate),
            Schedule::At(at) => match last_start {
                Some(started) if started >= *at => None,
                _ => Some(*at),
            },
            Schedule::Cron(cron) => {
                let offset = Duration::from_secs(u64::from(offset_days) * 86_400);
                let matched = match last_start {
                    Some(started) => cron.next_after(started.checked_sub(offset)?)?,
                    None => cron.next_after(created?)?,
                };
                matched.checked_add(offset)
            }
        }
    }

    /// The schedule's period as of `next` (a [`Schedule::next_run`] result): a rate's duration;
    /// for cron, the time from `next` to the run after it, by the same offset rule; `None` for a
    /// one-time schedule, or a cron schedule with no run after `next`.
    #[must_use]
    pub fn interval(&self, next: SystemTime, offset_days: u32) -> Option<Duration> {
        match self {
            Schedule::Rate(rate) => Some(*rate),
            Schedule::At(_) => None,
            Schedule::Cron(_) => {
                let following = self.next_run(Some(next), None, offset_days)?;
                following.duration_since(next).ok()
            }
        }
    }
}

impl Cron {
    /// The first matching minute strictly after `t`; `None` if there is none before the year
    /// field's range (at most 2199) ends.
    #[must_use]
    pub fn next_after(&self, t: SystemTime) -> Option<SystemTime> {
        // Matches fall on whole minutes, so the first candidate is the minute after t's.
        let start = unix_seconds(t).div_euclid(60) * 60 + 60;
        let mut day = start.div_euclid(SECONDS_PER_DAY);
        let mut minute_of_day = (start.rem_euclid(SECONDS_PER_DAY) / 60) as u32;
        // Each turn moves to a later day, month or year, and no year past LAST_YEAR matches, so
        // even a cron that never matches (30 FEB) ends after at most some 84,000 days.
        loop {
            let (year, month, day_of_month) = civil_from_days(day);
            if year > LAST_YEAR {
                return None;
            }
            if year < FIRST_YEAR || !self.years.contains((year - FIRST_YEAR) as u32) {
                let from = (year + 1 - FIRST_YEAR).max(0) as u32;
                let next_year = FIRST_YEAR + i64::from(self.years.first_from(from)?);
                day = days_from_civil(next_year, 1, 1);
                minute_of_day = 0;
                continue;
            }
            if !self.months.contains(month) {
                day = match self.months.first_from(month + 1) {
                    Some(next_month) => days_from_civil(year, next_month, 1),
                    None => days_from_civil(year + 1, 1, 1),
                };
                minute_of_day = 0;
                continue;
            }
            if self.matches_day(year, month, day_of_month, day)
                && let Some(minute) = self.first_minute_from(minute_of_day)
            {
                return system_time(day * SECONDS_PER_DAY + i64::from(minute) * 60);
            }
            day += 1;
            minute_of_day = 0;
        }
    }

    fn matches_day(&self, year: i64, month: u32, day_of_month: u32, day: i64) -> bool {
        let last = days_in_month(year, month);
        match self.days {
            Days::OfMonth(DayOfMonth::Days(days)) => days.contains(day_of_month),
            Days::OfMonth(DayOfMonth::Last) => day_of_month == last,
            Days::OfMonth(DayOfMonth::NearestWeekday(target)) => {
                nearest_weekday(year, month, target) == Some(day_of_month)
            }
            Days::OfWeek(DayOfWeek::Days(weekdays)) => weekdays.contains(weekday(day)),
            Days::OfWeek(DayOfWeek::Last(wanted)) => {
                weekday(day) == wanted && day_of_month + 7 > last
            }
            Days::OfWeek(DayOfWeek::Nth {
                weekday: wanted,
                nth,
            }) => weekday(day) == wanted && (day_of_month - 1) / 7 + 1 == nth,
        }
    }

    /// The first matching hour and minute of a day at or after `minute_of_day`, in minutes.
    fn first_minute_from(&self, minute_of_day: u32) -> Option<u32> {
        let mut hour = minute_of_day / 60;
        let mut from_minute = minute_of_day % 60;
        while hour < 24 {
            if self.hours.contains(hour)
                && let Some(minute) = self.minutes.first_from(from_minute)
            {
                return Some(hour * 60 + minute);
            }
            hour += 1;
            from_minute = 0;
        }
        None
    }

    fn parse(expression: &str, body: &str) -> Result<Cron, ScheduleError> {
        let mut fields: Vec<&str> = body.split_ascii_whitespace().collect();
        match fields.len() {
            6 => {}
            7 => {
                // The reference allows a leading seconds field for associations, but only 0.
                let seconds = fields.remove(0);
                if !seconds.bytes().all(|b| b == b'0') {
                    return Err(ScheduleError::Field {
                        expression: echo(expression),
                        field: "seconds",
                        value: echo(seconds),
                        problem: "must be 0 for an association".to_owned(),
                    });
                }
            }
            found => {
                return Err(ScheduleError::FieldCount {
                    expression: echo(expression),
                    found,
                });
            }
        }
        let field_error = |spec: &Spec, value: &str, problem: String| ScheduleError::Field {
            expression: echo(expression),
            field: spec.field,
            value: echo(value),
            problem,
        };
        let values = |spec: &Spec, value: &str| {
            spec.parse_values(value)
                .map_err(|problem| field_error(spec, value, problem))
        };
        let minutes = values(&MINUTES, fields[0])?;
        let hours = values(&HOURS, fields[1])?;
        let day_of_month = parse_day_of_month(fields[2])
            .map_err(|problem| field_error(&DAYS_OF_MONTH, fields[2], problem))?;
        let months = values(&MONTHS, fields[3])?;
        let day_of_week = parse_day_of_week(fields[4])
            .map_err(|problem| field_error(&DAYS_OF_WEEK, fields[4], problem))?;
        let years = values(&YEARS, fields[5])?;
        let days = match (day_of_month, day_of_week) {
            (Some(of_month), None) => Days::OfMonth(of_month),
            (None, Some(of_week)) => Days::OfWeek(of_week),
            (of_month, _) => {
                let problem = if of_month.is_none() {
                    "day-of-month and day-of-week are both '?'; one of them must name the days"
                        .to_owned()
                } else {
                    let (month_days, week_days) = (echo(fields[2]), echo(fields[4]));
                    let both =
                        format!("day-of-month ('{month_days}') and day-of-week ('{week_days}')");
                    format!("one of {both} must be '?'")
                };
                let expression = echo(expression);
                return Err(ScheduleError::Days {
                    expression,
                    problem,
                });
            }
        };
        Ok(Cron {
            minutes,
            hours,
            months,
            years,
            days,
        })
    }
}

/// How to read one cron field's values.
struct Spec {
    field: &'static str,
    min: u32,
    max: u32,
    /// Names for min, min + 1, ... (months and weekdays only).
    names: &'static [&'static str],
    /// Ends "is not ..." in errors.
    expected: &'static str,
}

const MINUTES: Spec = Spec::new("minutes", 0, 59, &[], "a number 0-59");
const HOURS: Spec = Spec::new("hours", 0, 23, &[], "a number 0-23");
const DAYS_OF_MONTH: Spec = Spec::new("day-of-month", 1, 31, &[], "a day 1-31");
const MONTHS: Spec = Spec::new("month", 1, 12, &MONTH_NAMES, "a month name or 1-12");
const DAYS_OF_WEEK: Spec = Spec::new("day-of-week", 1, 7, &DAY_NAMES, "a day name or 1-7");
const YEARS: Spec = Spec::new("year", 1970, 2199, &[], "a year 1970-2199");

impl Spec {
    const fn new(
        field: &'static str,
        min: u32,
        max: u32,
        names: &'static [&'static str],
        expected: &'static str,
    ) -> Spec {
        Spec {
            field,
            min,
            max,
            names,
            expected,
        }
    }

    /// Values are stored as offsets from the field's minimum only for years, so they fit [`Bits`].
    fn base(&self) -> u32 {
        if self.min == FIRST_YEAR as u32 {
            self.min
        } else {
            0
        }
    }

    /// A list of `*`, `v`, `a-b`, each optionally `/step`, as the reference's `, - * /` allow.
    /// The error is the problem, phrased to follow "<field> field '<value>' ".
    fn parse_values(&self, field: &str) -> Result<Bits, String> {
        let mut bits = Bits::default();
        for item in field.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => (range, Some(self.parse_step(step)?)),
                None => (item, None),
            };
            let (low, high) = if range == "*" {
                (self.min, self.max)
            } else if let Some((low, high)) = range.split_once('-') {
                let (low, high) = (self.value(low, field)?, self.value(high, field)?);
                // Quartz would wrap 22-2 around midnight; the reference never says so.
                if low > high {
                    return Err(format!("has range '{range}', which runs backwards"));
                }
                (low, high)
            } else {
                let value = self.value(range, field)?;
                // As in the reference's 0/15 and 1/10: a start value with a step runs to the end.
                (value, if step.is_some() { self.max } else { value })
            };
            let mut value = low;
            while value <= high {
                bits.insert(value - self.base());
                value += step.unwrap_or(1);
            }
        }
        Ok(bits)
    }

    fn parse_step(&self, text: &str) -> Result<u32, String> {
        let span = self.max - self.min + 1;
        match number(text) {
            Some(step) if (1..=span).contains(&step) => Ok(step),
            _ => Err(format!("has step '{text}', not a number 1-{span}")),
        }
    }

    /// One number or name out of `field`, whose text phrases the error.
    fn value(&self, text: &str, field: &str) -> Result<u32, String> {
        if text == "?" {
            return Err(
                "uses '?', which stands only alone in day-of-month or day-of-week".to_owned(),
            );
        }
        let named = self
            .names
            .iter()
            .position(|name| name.eq_ignore_ascii_case(text));
        let value = match named {
            Some(index) => Some(self.min + index as u32),
            None => number(text).filter(|v| (self.min..=self.max).contains(v)),
        };
        value.ok_or_else(|| {
            if text == field {
                format!("is not {}", self.expected)
            } else {
                format!("has '{text}', which is not {}", self.expected)
            }
        })
    }
}

/// ASCII digits only: `str::parse` would also take a sign.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn mentions(text: &str, letter: char) -> bool {
    text.chars().any(|c| c.eq_ignore_ascii_case(&letter))
}

/// `None` for `?`. `L` and `W` stand alone: the reference shows no lists or ranges of them, nor
/// Quartz's `LW` or `L-3`.
fn parse_day_of_month(field: &str) -> Result<Option<DayOfMonth>, String> {
    if field == "?" {
        return Ok(None);
    }
    if field.eq_ignore_ascii_case("L") {
        return Ok(Some(DayOfMonth::Last));
    }
    if mentions(field, 'L') {
        return Err("uses 'L', which stands alone in day-of-month".to_owned());
    }
    if mentions(field, 'W') {
        let day = field.strip_suffix(['W', 'w']).and_then(number);
        return match day.filter(|d| (1..=31).contains(d)) {
            Some(day) => Ok(Some(DayOfMonth::NearestWeekday(day))),
            None => Err("uses 'W', which follows one day 1-31, like '15W'".to_owned()),
        };
    }
    DAYS_OF_MONTH
        .parse_values(field)
        .map(|days| Some(DayOfMonth::Days(days)))
}

/// `None` for `?`. `L` alone is the last day of the week (Saturday), as the reference puts it;
/// `6L` and `TUE#3` stand alone, as in every example of the reference.
fn parse_day_of_week(field: &str) -> Result<Option<DayOfWeek>, String> {
    if field == "?" {
        return Ok(None);
    }
    if field.eq_ignore_ascii_case("L") {
        let mut saturday = Bits::default();
        saturday.insert(SATURDAY);
        return Ok(Some(DayOfWeek::Days(saturday)));
    }
    if let Some((day, nth)) = field.split_once('#') {
        let Ok(weekday) = DAYS_OF_WEEK.value(day, field) else {
            return Err("uses '#', which follows one day, like 'TUE#3'".to_owned());
        };
        return match number(nth).filter(|n| (1..=5).contains(n)) {
            Some(nth) => Ok(Some(DayOfWeek::Nth { weekday, nth })),
            None => Err(format!("has week number '{nth}'; after '#' it must be 1-5")),
        };
    }
    // No day name contains an L, so any L here is the wildcard.
    if mentions(field, 'L') {
        let day = field.strip_suffix(['L', 'l']);
        return match day.map(|day| DAYS_OF_WEEK.value(day, field)) {
            Some(Ok(weekday)) => Ok(Some(DayOfWeek::Last(weekday))),
            _ => Err("uses 'L', which stands alone or follows one day, like '6L'".to_owned()),
        };
    }
    DAYS_OF_WEEK
        .parse_values(field)
        .map(|days| Some(DayOfWeek::Days(days)))
}

/// The inside of `rate(...)`; the error is the problem, to follow the expression.
fn rate(body: &str) -> Result<Duration, String> {
    let parts: Vec<&str> = body.split_ascii_whitespace().collect();
    let [value, unit] = parts[..] else {
        return Err("expected a value and a unit, like rate(30 minutes)".to_owned());
    };
    let (value, unit) = (echo(value), echo(unit));
    if !value.bytes().all(|b| b.is_ascii_digit()) || number(&value) == Some(0) {
        return Err(format!(
            "the value '{value}' is not a positive whole number"
        ));
    }
    let (singular, seconds) = match unit.as_str() {
        "minute" | "minutes" => ("minute", 60),
        "hour" | "hours" => ("hour", 3_600),
        "day" | "days" => ("day", 86_400),
        _ => return Err(format!("unit '{unit}' is not minute(s), hour(s) or day(s)")),
    };
    // Digits that do not fit a u64 are far longer than any rate an association allows.
    let count: u64 = value.parse().unwrap_or(u64::MAX);
    if count == 1 && unit != singular {
        return Err(format!("1 needs the singular unit '{singular}'"));
    }
    if count > 1 && unit == singular {
        return Err(format!("{value} needs the plural unit '{singular}s'"));
    }
    let rate = Duration::from_secs(count.saturating_mul(seconds));
    if rate < SHORTEST_RATE {
        return Err(format!(
            "{value} {unit} is shorter than the 30 minutes an association allows"
        ));
    }
    if rate >= LONGEST_RATE_EXCLUSIVE {
        return Err(format!(
            "{value} {unit} is 31 days or longer; an association's rate must be shorter"
        ));
    }
    Ok(rate)
}

/// The inside of `at(...)`; the error is the problem, to follow the expression.
fn at(text: &str) -> Result<SystemTime, String> {
    let shape = b"dddd-dd-ddTdd:dd:dd";
    let fits = text.len() == shape.len()
        && text.bytes().zip(shape).all(|(byte, &want)| match want {
            b'd' => byte.is_ascii_digit(),
            _ => byte == want,
        });
    if !fits {
        return Err("expected at(yyyy-mm-ddThh:mm:ss), a UTC date and time".to_owned());
    }
    // The shape check guarantees each slice is ASCII digits.
    let part = |from: usize, to: usize| number(&text[from..to]).unwrap_or(u32::MAX);
    let (year, month, day) = (i64::from(part(0, 4)), part(5, 7), part(8, 10));
    let (hour, minute, second) = (part(11, 13), part(14, 16), part(17, 19));
    let real = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !real {
        return Err(format!("{text} is not a real date and time"));
    }
    if year < FIRST_YEAR {
        return Err(format!("{text} is before 1970"));
    }
    let seconds = days_from_civil(year, month, day) * SECONDS_PER_DAY
        + i64::from(hour * 3_600 + minute * 60 + second);
    system_time(seconds).ok_or_else(|| format!("{text} is out of range"))
}

/// Whole seconds since the Unix epoch, rounded down (also before 1970).
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let whole = before.as_secs() + u64::from(before.subsec_nanos() > 0);
            -i64::try_from(whole).unwrap_or(i64::MAX)
        }
    }
}

fn system_time(unix_seconds: i64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(unix_seconds).ok()?))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month 1-12, day 1-31).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = ((month_from_march + 2) % 12 + 1) as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// 1 (Sunday) to 7 (Saturday), AWS's numbering; 1970-01-01 was a Thursday (5).
fn weekday(days: i64) -> u32 {
    ((days + 4).rem_euclid(7) + 1) as u32
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        _ => 28,
    }
}

/// The day `15W` names in a month: the 15th if a weekday, else the nearest weekday within the
/// month (Saturday the 1st moves to Monday the 3rd, Sunday the last to Friday). A day the month
/// lacks (31W in April) names no day: the reference gives no rule and Quartz's is accidental.
fn nearest_weekday(year: i64, month: u32, target: u32) -> Option<u32> {
    let last = days_in_month(year, month);
    if target > last {
        return None;
    }
    let day = match weekday(days_from_civil(year, month, target)) {
        SATURDAY if target == 1 => 3,
        SATURDAY => target - 1,
        SUNDAY if target == last => target - 2,
        SUNDAY => target + 1,
        _ => target,
    };
    Some(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every expected instant below is Unix seconds computed independently of this module: by hand
    // from a calendar, then checked with python3's datetime, by a small brute-force matcher written
    // on datetime and calendar.monthrange (minute by minute through each day), and by
    // int(datetime(..., tzinfo=timezone.utc).timestamp()). The comment beside each is its UTC date.

    /// Wednesday 2024-05-15T10:07:30Z, the instant most rows start from.
    const T0: u64 = 1_715_767_650;

    fn unix(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn cron(expression: &str) -> Cron {
        match parse(expression) {
            Ok(Schedule::Cron(cron)) => cron,
            other => panic!("{expression} should parse as cron, got {other:?}"),
        }
    }

    fn error(expression: &str) -> String {
        match parse(expression) {
            Err(error) => error.to_string(),
            Ok(schedule) => panic!("{expression} should not parse, got {schedule:?}"),
        }
    }

    /// Every cron example of the Systems Manager reference that the association rules accept:
    /// the association section's table and prose (2022 and earlier versions), the general
    /// section's table (which the reference says applies to both), and the maintenance windows'
    /// examples that have six fields or a seconds field of 0. (expression, next match after T0,
    /// what the reference says it means: the 2024 date and time of that next match)
    #[rustfmt::skip]
    const REFERENCE_CRON: &[(&str, u64, &str)] = &[
        ("cron(0/30 * * * ? *)",         1_715_769_000, "every 30 minutes: 05-15 10:30"),
        ("cron(0 0/1 * * ? *)",          1_715_770_800, "every hour: 05-15 11:00"),
        ("cron(0 0/2 * * ? *)",          1_715_774_400, "every 2 hours: 05-15 12:00"),
        ("cron(0 0/4 * * ? *)",          1_715_774_400, "every 4 hours: 05-15 12:00"),
        ("cron(0 0/8 * * ? *)",          1_715_788_800, "every 8 hours: 05-15 16:00"),
        ("cron(0 0/12 * * ? *)",         1_715_774_400, "every 12 hours: 05-15 12:00"),
        ("cron(15 13 ? * * *)",          1_715_778_900, "every day at 1:15 PM: 05-15 13:15"),
        ("cron(15 13 ? * MON *)",        1_716_210_900, "every Monday at 1:15 PM: 05-20 13:15"),
        ("cron(30 23 ? * TUE#3 *)",      1_716_334_200, "third Tuesday at 23:30: 05-21 23:30"),
        ("cron(0 0 ? * THU#2 *)",        1_718_236_800, "second Thursday at midnight: 06-13 00:00"),
        ("cron(0 0 ? * 3L *)",           1_716_854_400, "last Tuesday at midnight: 05-28 00:00"),
        ("cron(0 2 ? * SUN *)",          1_716_084_000, "CLI example, Sundays 2:00: 05-19 02:00"),
        ("cron(0 */30 * * * ? *)",       1_715_769_000, "seconds 0, every 30 min: 05-15 10:30"),
        ("cron(0 0 2 ? * SUN *)",        1_716_084_000, "2020 CLI, Sundays 2:00: 05-19 02:00"),
        ("cron(0 16 ? * TUE *)",         1_716_307_200, "Tuesdays at 16:00: 05-21 16:00"),
        ("cron(0 10 * * ? *)",           1_715_853_600, "10:00 every day: 05-16 10:00"),
        ("cron(15 12 * * ? *)",          1_715_775_300, "12:15 every day: 05-15 12:15"),
        ("cron(0 18 ? * MON-FRI *)",     1_715_796_000, "18:00 Monday-Friday: 05-15 18:00"),
        ("cron(0 8 1 * ? *)",            1_717_228_800, "8:00 on the 1st: 06-01 08:00"),
        ("cron(0/15 * * * ? *)",         1_715_768_100, "every 15 minutes: 05-15 10:15"),
        ("cron(0/10 * ? * MON-FRI *)",   1_715_767_800, "every 10 min, Mon-Fri: 05-15 10:10"),
        ("cron(0/5 8-17 ? * MON-FRI *)", 1_715_767_800, "every 5 min 8:00-17:55: 05-15 10:10"),
        ("cron(30 09 ? * * *)",          1_715_851_800, "9:30 every day: 05-16 09:30"),
        ("cron(0 2 ? * THU#3 *)",        1_715_824_800, "2:00 third Thursday: 05-16 02:00"),
        ("cron(15 10 ? * * *)",          1_715_768_100, "10:15 every day: 05-15 10:15"),
        ("cron(15 10 ? * MON-FRI *)",    1_715_768_100, "10:15 Monday-Friday: 05-15 10:15"),
        ("cron(0 2 L * ? *)",            1_717_120_800, "2:00 on the last day: 05-31 02:00"),
        ("cron(15 10 ? * 6L *)",         1_717_150_500, "10:15 last Friday: 05-31 10:15"),
        ("cron(0 30 23 ? * TUE#3 *)",    1_716_334_200, "2022 offset example: 05-21 23:30"),
        ("cron(0 0 2 ? 1/1 THU#3 *)",    1_715_824_800, "2017: 2:00 third Thursday: 05-16 02:00"),
        ("cron(0 0 0 21 1/1 ? *)",       1_716_249_600, "2017: midnight on the 21st: 05-21 00:00"),
    ];

    #[test]
    fn reference_cron_examples_fire_when_the_reference_says() {
        for &(expression, next, meaning) in REFERENCE_CRON {
            assert_eq!(
                cron(expression).next_after(unix(T0)),
                Some(unix(next)),
                "{expression} ({meaning})"
            );
        }
    }

    #[test]
    fn cron_crosses_weekends_months_years_and_leap_days() {
        #[rustfmt::skip]
        let cases: &[(&str, u64, Option<u64>)] = &[
            // 2024-05-17 17:55 -> 2024-05-20 08:00
            ("cron(0/5 8-17 ? * MON-FRI *)", 1_715_968_500,  Some(1_716_192_000)),
            // 2024-12-12 00:00 -> 2025-01-09 00:00
            ("cron(0 0 ? * THU#2 *)",        1_733_961_600,  Some(1_736_380_800)),
            // 2024-02-28 02:00 -> 2024-02-29 02:00
            ("cron(0 2 L * ? *)",            1_709_085_600,  Some(1_709_172_000)),
            // 2023-02-27 02:00 -> 2023-02-28 02:00
            ("cron(0 2 L * ? *)",            1_677_463_200,  Some(1_677_549_600)),
            // 2024-05-31 10:15 -> 2024-06-28 10:15
            ("cron(15 10 ? * 6L *)",         1_717_150_500,  Some(1_719_569_700)),
            // 2024-12-31 00:00 -> 2025-01-28 00:00
            ("cron(0 0 ? * 3L *)",           1_735_603_200,  Some(1_738_022_400)),
            // 2024-03-01 00:00 -> 2028-02-29 00:00
            ("cron(0 0 29 FEB ? *)",         1_709_251_200,  Some(1_835_395_200)),
            // 2024-05-15 10:07 -> 2030-01-01 00:00
            ("cron(0 0 1 JAN ? 2030-2032)",  T0,             Some(1_893_456_000)),
            // 2199-12-31 23:58 -> 2199-12-31 23:59
            ("cron(59 23 31 12 ? 2199)",     7_258_118_280,  Some(7_258_118_340)),
            // 1970-01-01 00:00 -> 1970-01-01 00:30
            ("cron(0/30 * * * ? *)",         0,              Some(1_800)),
        ];
        for &(expression, after, next) in cases {
            assert_eq!(
                cron(expression).next_after(unix(after)),
                next.map(unix),
                "{expression} after {after}"
            );
        }
        // Before 1970 (1969-12-31T23:59:30) the first match is the epoch itself.
        assert_eq!(
            cron("cron(0/30 * * * ? *)").next_after(UNIX_EPOCH - Duration::from_secs(30)),
            Some(UNIX_EPOCH)
        );
        // Seconds and nanoseconds inside a matching minute move on to the next match.
        let half_past = unix(1_715_769_000) + Duration::from_nanos(1);
        assert_eq!(
            cron("cron(0/30 * * * ? *)").next_after(half_past),
            Some(unix(1_715_770_800))
        );
    }

    #[test]
    fn l_w_and_hash_follow_the_reference() {
        let cases: &[(&str, u64, u64)] = &[
            // Saturday 2024-06-01 -> Monday the 3rd (W never leaves the month)
            ("cron(0 9 1W * ? *)", T0, 1_717_405_200),
            // Sunday 2024-09-15 -> Monday the 16th
            ("cron(0 9 15W * ? *)", 1_725_148_800, 1_726_477_200),
            // Sunday 2024-06-30, the last day -> Friday the 28th
            ("cron(0 9 30W * ? *)", 1_717_200_000, 1_719_565_200),
            // Saturday 2024-06-08 -> Friday the 7th
            ("cron(0 9 8W * ? *)", 1_717_200_000, 1_717_750_800),
            // April has no 31st, so 31W skips it: 2024-04-01 -> Friday 2024-05-31
            ("cron(0 9 31W * ? *)", 1_711_929_600, 1_717_146_000),
            // fifth Friday: 2024-05-31, then none in June or July -> 2024-08-30
            ("cron(0 0 ? * 6#5 *)", T0, 1_717_113_600),
            ("cron(0 0 ? * 6#5 *)", 1_717_200_000, 1_724_976_000),
            // L alone in day-of-week is its last day, Saturday: 2024-05-18
            ("cron(0 12 ? * L *)", T0, 1_716_033_600),
            ("cron(0 12 ? * 7 *)", T0, 1_716_033_600),
            // a fifth Sunday in February needs a leap year starting on Sunday: 2032-02-29
            ("cron(0 0 ? 2 SUN#5 *)", T0, 1_961_625_600),
        ];
        for &(expression, after, next) in cases {
            assert_eq!(
                cron(expression).next_after(unix(after)),
                Some(unix(next)),
                "{expression} after {after}"
            );
        }
    }

    #[test]
    fn a_cron_that_can_never_match_ends_the_search() {
        for expression in [
            "cron(0 0 30 2 ? *)",
            "cron(0 0 31 4,6,9,11 ? *)",
            "cron(0 0 * * ? 2023)",
            "cron(0 0 ? FEB 1#5 2025-2027)",
        ] {
            assert_eq!(cron(expression).next_after(unix(T0)), None, "{expression}");
        }
        let last = cron("cron(59 23 31 12 ? 2199)");
        assert_eq!(last.next_after(unix(7_258_118_340)), None);
    }

    #[test]
    fn names_and_l_w_take_any_case_and_fields_any_spacing() {
        assert_eq!(cron("cron(0 12 ? * sat *)"), cron("cron(0 12 ? * SAT *)"));
        assert_eq!(
            cron("cron(0 12 ? jan-Mar Mon *)"),
            cron("cron(0 12 ? 1-3 2 *)")
        );
        assert_eq!(cron("cron(0 2 l * ? *)"), cron("cron(0 2 L * ? *)"));
        assert_eq!(cron("cron(0 9 15w * ? *)"), cron("cron(0 9 15W * ? *)"));
        assert_eq!(cron("cron(15 10 ? * fril *)"), cron("cron(15 10 ? * 6L *)"));
        assert_eq!(
            cron("  cron( 0  10\t* * ? * )\n"),
            cron("cron(0 10 * * ? *)")
        );
        assert_eq!(cron("cron(0 0 10 * * ? *)"), cron("cron(0 10 * * ? *)"));
    }

    #[test]
    fn reference_rate_and_at_examples() {
        let rates: &[(&str, u64)] = &[
            ("rate(30 minutes)", 1_800),
            ("rate(1 hour)", 3_600),
            ("rate(5 hours)", 18_000),
            ("rate(15 days)", 1_296_000),
            ("rate(7 days)", 604_800),
            ("rate(2 days)", 172_800),
            ("rate(25 days)", 2_160_000),
            ("rate(1 day)", 86_400),
            ("rate(30 days)", 2_592_000),
        ];
        for &(expression, seconds) in rates {
            assert_eq!(
                parse(expression),
                Ok(Schedule::Rate(Duration::from_secs(seconds))),
                "{expression}"
            );
        }
        let ats: &[(&str, u64)] = &[
            ("at(2020-07-07T15:55:00)", 1_594_137_300),
            ("at(2019-07-07T13:15:30)", 1_562_505_330),
            ("at(2021-07-07T13:15:30)", 1_625_663_730),
        ];
        for &(expression, seconds) in ats {
            assert_eq!(
                parse(expression),
                Ok(Schedule::At(unix(seconds))),
                "{expression}"
            );
        }
    }

    #[test]
    fn rate_runs_its_duration_after_the_last_start_or_creation() {
        let rate = parse("rate(30 minutes)").expect("a reference example");
        let after_t0 = Some(unix(T0 + 1_800)); // 2024-05-15T10:37:30
        assert_eq!(rate.next_run(Some(unix(T0)), None, 0), after_t0);
        assert_eq!(rate.next_run(Some(unix(T0)), Some(unix(0)), 0), after_t0);
        assert_eq!(rate.next_run(None, Some(unix(T0)), 0), after_t0);
        // An offset only applies to cron schedules.
        assert_eq!(rate.next_run(Some(unix(T0)), None, 3), after_t0);
        assert_eq!(rate.next_run(None, None, 0), None);
        let fortnight = parse("rate(15 days)").expect("a reference example");
        // 2024-05-15T10:07:30 + 15 days = 2024-05-30T10:07:30
        assert_eq!(
            fortnight.next_run(None, Some(unix(T0)), 0),
            Some(unix(1_717_063_650))
        );
    }

    #[test]
    fn at_runs_once() {
        let at = parse("at(2020-07-07T15:55:00)").expect("the reference's example");
        let moment = unix(1_594_137_300);
        assert_eq!(at.next_run(None, None, 0), Some(moment));
        // It ran when it was created (2020-07-01), before its moment: the moment is still ahead.
        assert_eq!(
            at.next_run(Some(unix(1_593_561_600)), None, 0),
            Some(moment)
        );
        assert_eq!(at.next_run(Some(moment), None, 0), None);
        assert_eq!(at.next_run(Some(unix(1_594_137_303)), None, 0), None);
        assert_eq!(at.interval(moment, 0), None);
    }

    #[test]
    fn cron_without_offset_runs_at_the_next_match() {
        let daily = parse("cron(15 13 ? * * *)").expect("a reference example");
        let today = Some(unix(1_715_778_900)); // 2024-05-15T13:15
        assert_eq!(daily.next_run(Some(unix(T0)), None, 0), today);
        assert_eq!(daily.next_run(None, Some(unix(T0)), 0), today);
        assert_eq!(daily.next_run(None, None, 0), None);
    }

    #[test]
    fn second_thursday_with_offset_3_runs_the_sunday_after() {
        // The reference's association example: cron(0 0 ? * THU#2 *) with schedule offset 3.
        let schedule = parse("cron(0 0 ? * THU#2 *)").expect("the reference's example");
        let sunday_may_12 = unix(1_715_472_000);
        let sunday_june_16 = unix(1_718_496_000);
        // Created 2024-05-01, before May's second Thursday (the 9th): Sunday 2024-05-12.
        assert_eq!(
            schedule.next_run(None, Some(unix(1_714_521_600)), 3),
            Some(sunday_may_12)
        );
        // It ran on Sunday 2024-05-12 at 00:00:20: next is Sunday 2024-06-16 (Thursday 06-13 + 3).
        let ran = unix(1_715_472_020);
        assert_eq!(schedule.next_run(Some(ran), None, 3), Some(sunday_june_16));
        // A manual run on Friday 2024-05-10 does not hide the pending Sunday 2024-05-12.
        let friday = unix(1_715_342_400);
        assert_eq!(
            schedule.next_run(Some(friday), None, 3),
            Some(sunday_may_12)
        );
        // Created on that Friday, after the 9th: "won't run in the period", so 2024-06-16.
        assert_eq!(
            schedule.next_run(None, Some(friday), 3),
            Some(sunday_june_16)
        );
        // June 16 to July 14 (Thursday 07-11 + 3).
        assert_eq!(
            schedule.interval(sunday_june_16, 3),
            Some(Duration::from_secs(28 * 86_400))
        );
    }

    #[test]
    fn third_tuesday_with_offset_2_runs_two_days_later() {
        // The reference's maintenance-window offset example, valid for associations as well.
        let schedule = parse("cron(30 23 ? * TUE#3 *)").expect("the reference's example");
        let thursday = unix(1_716_507_000); // 2024-05-23T23:30 (Tuesday 05-21 + 2)
        assert_eq!(schedule.next_run(None, Some(unix(T0)), 2), Some(thursday));
        // To 2024-06-20T23:30 (Tuesday 06-18 + 2).
        assert_eq!(
            schedule.interval(thursday, 2),
            Some(Duration::from_secs(28 * 86_400))
        );
    }

    #[test]
    fn interval_is_the_rate_or_the_gap_to_the_following_run() {
        let hours = |n: u64| Some(Duration::from_secs(n * 3_600));
        let rate = parse("rate(5 hours)").expect("a reference example");
        assert_eq!(rate.interval(unix(T0), 0), hours(5));
        let four_hourly = parse("cron(0 0/4 * * ? *)").expect("a reference example");
        assert_eq!(four_hourly.interval(unix(1_715_774_400), 0), hours(4));
        let mondays = parse("cron(15 13 ? * MON *)").expect("a reference example");
        assert_eq!(mondays.interval(unix(1_716_210_900), 0), hours(7 * 24));
        // 2024-01-31T02:00 to 2024-02-29T02:00
        let month_end = parse("cron(0 2 L * ? *)").expect("a reference example");
        assert_eq!(month_end.interval(unix(1_706_666_400), 0), hours(29 * 24));
        let last = parse("cron(59 23 31 12 ? 2199)").expect("valid");
        assert_eq!(last.interval(unix(7_258_118_340), 0), None);
    }

    #[test]
    fn invalid_expressions_say_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            ("", "schedule '' is not cron(...), rate(...) or at(...)"),
            (
                "cron(0 10 * * ? *",
                "schedule 'cron(0 10 * * ? *' is not cron(...), rate(...) or at(...)",
            ),
            (
                "CRON(0 10 * * ? *)",
                "schedule 'CRON(0 10 * * ? *)' is not cron(...), rate(...) or at(...)",
            ),
            (
                "cron (0 10 * * ? *)",
                "schedule 'cron (0 10 * * ? *)' is not cron(...), rate(...) or at(...)",
            ),
            (
                "cron(0 10 * * ?)",
                "cron(0 10 * * ?): expected 6 fields (minutes hours day-of-month month day-of-week year) or 7 with seconds first, found 5",
            ),
            (
                "cron(0 0 10 * * ? * *)",
                "cron(0 0 10 * * ? * *): expected 6 fields (minutes hours day-of-month month day-of-week year) or 7 with seconds first, found 8",
            ),
            (
                "cron(24 30 09 ? * * *)",
                "cron(24 30 09 ? * * *): seconds field '24' must be 0 for an association",
            ),
            (
                "cron(0 10 * * FOO *)",
                "cron(0 10 * * FOO *): day-of-week field 'FOO' is not a day name or 1-7",
            ),
            (
                "cron(0 10 ? * MON-FOO *)",
                "cron(0 10 ? * MON-FOO *): day-of-week field 'MON-FOO' has 'FOO', which is not a day name or 1-7",
            ),
            (
                "cron(0 10 ? * 0 *)",
                "cron(0 10 ? * 0 *): day-of-week field '0' is not a day name or 1-7",
            ),
            (
                "cron(60 10 * * ? *)",
                "cron(60 10 * * ? *): minutes field '60' is not a number 0-59",
            ),
            (
                "cron(0 24 * * ? *)",
                "cron(0 24 * * ? *): hours field '24' is not a number 0-23",
            ),
            (
                "cron(0 +1 * * ? *)",
                "cron(0 +1 * * ? *): hours field '+1' is not a number 0-23",
            ),
            (
                "cron(0 10 32 * ? *)",
                "cron(0 10 32 * ? *): day-of-month field '32' is not a day 1-31",
            ),
            (
                "cron(0 10 * 13 ? *)",
                "cron(0 10 * 13 ? *): month field '13' is not a month name or 1-12",
            ),
            (
                "cron(0 10 * JANUARY ? *)",
                "cron(0 10 * JANUARY ? *): month field 'JANUARY' is not a month name or 1-12",
            ),
            (
                "cron(0 10 * * ? 2200)",
                "cron(0 10 * * ? 2200): year field '2200' is not a year 1970-2199",
            ),
            (
                "cron(0 10 * * ? 1969-1999)",
                "cron(0 10 * * ? 1969-1999): year field '1969-1999' has '1969', which is not a year 1970-2199",
            ),
            (
                "cron(0 22-2 * * ? *)",
                "cron(0 22-2 * * ? *): hours field '22-2' has range '22-2', which runs backwards",
            ),
            (
                "cron(0/0 * * * ? *)",
                "cron(0/0 * * * ? *): minutes field '0/0' has step '0', not a number 1-60",
            ),
            (
                "cron(0/61 * * * ? *)",
                "cron(0/61 * * * ? *): minutes field '0/61' has step '61', not a number 1-60",
            ),
            (
                "cron(0,,30 * * * ? *)",
                "cron(0,,30 * * * ? *): minutes field '0,,30' has '', which is not a number 0-59",
            ),
            (
                "cron(? 10 * * ? *)",
                "cron(? 10 * * ? *): minutes field '?' uses '?', which stands only alone in day-of-month or day-of-week",
            ),
            (
                "cron(0 10 * * * *)",
                "cron(0 10 * * * *): one of day-of-month ('*') and day-of-week ('*') must be '?'",
            ),
            (
                "cron(0 10 1 * MON *)",
                "cron(0 10 1 * MON *): one of day-of-month ('1') and day-of-week ('MON') must be '?'",
            ),
            (
                "cron(0 10 ? * ? *)",
                "cron(0 10 ? * ? *): day-of-month and day-of-week are both '?'; one of them must name the days",
            ),
            (
                "cron(0 10 LW * ? *)",
                "cron(0 10 LW * ? *): day-of-month field 'LW' uses 'L', which stands alone in day-of-month",
            ),
            (
                "cron(0 10 L-3 * ? *)",
                "cron(0 10 L-3 * ? *): day-of-month field 'L-3' uses 'L', which stands alone in day-of-month",
            ),
            (
                "cron(0 10 1-5W * ? *)",
                "cron(0 10 1-5W * ? *): day-of-month field '1-5W' uses 'W', which follows one day 1-31, like '15W'",
            ),
            (
                "cron(0 10 32W * ? *)",
                "cron(0 10 32W * ? *): day-of-month field '32W' uses 'W', which follows one day 1-31, like '15W'",
            ),
            (
                "cron(0 10 ? * MON#6 *)",
                "cron(0 10 ? * MON#6 *): day-of-week field 'MON#6' has week number '6'; after '#' it must be 1-5",
            ),
            (
                "cron(0 10 ? * MON-FRI#2 *)",
                "cron(0 10 ? * MON-FRI#2 *): day-of-week field 'MON-FRI#2' uses '#', which follows one day, like 'TUE#3'",
            ),
            (
                "cron(0 10 ? * 1,6L *)",
                "cron(0 10 ? * 1,6L *): day-of-week field '1,6L' uses 'L', which stands alone or follows one day, like '6L'",
            ),
            (
                "cron(0 10 ? * 8L *)",
                "cron(0 10 ? * 8L *): day-of-week field '8L' uses 'L', which stands alone or follows one day, like '6L'",
            ),
            (
                "rate(1 hours)",
                "rate(1 hours): 1 needs the singular unit 'hour'",
            ),
            (
                "rate(5 hour)",
                "rate(5 hour): 5 needs the plural unit 'hours'",
            ),
            (
                "rate(29 minutes)",
                "rate(29 minutes): 29 minutes is shorter than the 30 minutes an association allows",
            ),
            (
                "rate(31 days)",
                "rate(31 days): 31 days is 31 days or longer; an association's rate must be shorter",
            ),
            (
                "rate(99999999999999999999 days)",
                "rate(99999999999999999999 days): 99999999999999999999 days is 31 days or longer; an association's rate must be shorter",
            ),
            (
                "rate(0 minutes)",
                "rate(0 minutes): the value '0' is not a positive whole number",
            ),
            (
                "rate(-5 hours)",
                "rate(-5 hours): the value '-5' is not a positive whole number",
            ),
            (
                "rate(2 weeks)",
                "rate(2 weeks): unit 'weeks' is not minute(s), hour(s) or day(s)",
            ),
            (
                "rate(5 Hours)",
                "rate(5 Hours): unit 'Hours' is not minute(s), hour(s) or day(s)",
            ),
            (
                "rate(30minutes)",
                "rate(30minutes): expected a value and a unit, like rate(30 minutes)",
            ),
            (
                "rate()",
                "rate(): expected a value and a unit, like rate(30 minutes)",
            ),
            (
                "at(2021-07-07 13:15:30)",
                "at(2021-07-07 13:15:30): expected at(yyyy-mm-ddThh:mm:ss), a UTC date and time",
            ),
            (
                "at(2021-07-07T13:15:30Z)",
                "at(2021-07-07T13:15:30Z): expected at(yyyy-mm-ddThh:mm:ss), a UTC date and time",
            ),
            (
                "at(2021-02-29T00:00:00)",
                "at(2021-02-29T00:00:00): 2021-02-29T00:00:00 is not a real date and time",
            ),
            (
                "at(2021-07-07T24:00:00)",
                "at(2021-07-07T24:00:00): 2021-07-07T24:00:00 is not a real date and time",
            ),
            (
                "at(1969-12-31T23:59:59)",
                "at(1969-12-31T23:59:59): 1969-12-31T23:59:59 is before 1970",
            ),
        ];
        for &(expression, message) in cases {
            assert_eq!(error(expression), message, "{expression}");
        }
        // 2024 had a February 29th.
        assert_eq!(
            parse("at(2024-02-29T00:00:00)"),
            Ok(Schedule::At(unix(1_709_164_800)))
        );
    }

    #[test]
    fn errors_echo_at_most_80_characters() {
        let long = format!("cron({})", "1".repeat(200));
        let message = error(&long);
        let expected = format!(
            "{}…: expected 6 fields (minutes hours day-of-month month day-of-week year) \
             or 7 with seconds first, found 1",
            &long[..80]
        );
        assert_eq!(message, expected);
        let junk = "x".repeat(200);
        let expected = format!(
            "schedule '{}…' is not cron(...), rate(...) or at(...)",
            &junk[..80]
        );
        assert_eq!(error(&junk), expected);
        // Two-byte characters are cut on a character boundary, never inside one.
        let wide = format!("cron(0 10 * * {} *)", "é".repeat(100));
        let echoed = format!("cron(0 10 * * {}…", "é".repeat(66));
        let field = format!("{}…", "é".repeat(80));
        assert_eq!(
            error(&wide),
            format!("{echoed}: day-of-week field '{field}' is not a day name or 1-7")
        );
    }

    #[test]
    fn mangled_expressions_never_panic_and_matches_stay_consistent() {
        const SPICE: [char; 16] = [
            ' ', ',', '-', '*', '/', '?', 'L', 'W', '#', '0', '9', '7', '(', ')', 'é', 'x',
        ];
        let mut seeds: Vec<&str> = REFERENCE_CRON.iter().map(|row| row.0).collect();
        seeds.extend([
            "rate(30 minutes)",
            "rate(1 hour)",
            "at(2020-07-07T15:55:00)",
        ]);
        seeds.extend(["cron(0 9 15W * ? *)", "cron(0 0 ? FEB SUN#5 2030-2040)"]);
        let instants = [unix(0), unix(T0), unix(7_258_118_000)];
        let mut parsed = 0;
        for seed in seeds {
            let chars: Vec<char> = seed.chars().collect();
            let mut mangled = Vec::new();
            for at in 0..=chars.len() {
                let (head, tail) = chars.split_at(at);
                mangled.push(head.iter().chain(tail.iter().skip(1)).collect::<String>());
                for spice in SPICE {
                    let insert = head.iter().chain([&spice]).chain(tail.iter());
                    mangled.push(insert.collect::<String>());
                    let replace = head.iter().chain([&spice]).chain(tail.iter().skip(1));
                    mangled.push(replace.collect::<String>());
                }
            }
            for text in &mangled {
                let Ok(schedule) = parse(text) else { continue };
                parsed += 1;
                for &t in &instants {
                    let next = schedule.next_run(Some(t), Some(t), 2);
                    if let Some(next) = next {
                        assert!(next > t || matches!(schedule, Schedule::At(_)), "{text}");
                        let _ = schedule.interval(next, 2);
                    }
                    if let Schedule::Cron(cron) = &schedule
                        && let Some(next) = cron.next_after(t)
                    {
                        assert!(next > t, "{text}");
                        assert_eq!(unix_seconds(next) % 60, 0, "{text}");
                        let just_before = next - Duration::from_secs(1);
                        assert_eq!(cron.next_after(just_before), Some(next), "{text}");
                    }
                }
            }
        }
        assert!(parsed > 1_000, "only {parsed} mangled expressions parsed");
    }

    #[test]
    fn calendar_agrees_with_python() {
        // (year, month, day, days since 1970-01-01, AWS weekday) from python3's datetime.
        let anchors: &[(i64, u32, u32, i64, u32)] = &[
            (1970, 1, 1, 0, 5),
            (1969, 12, 31, -1, 4),
            (2000, 2, 29, 11_016, 3),
            (2024, 5, 15, 19_858, 4),
            (2100, 3, 1, 47_541, 2),
            (2199, 12, 31, 84_005, 3),
        ];
        for &(year, month, day, days, weekday_number) in anchors {
            assert_eq!(
                days_from_civil(year, month, day),
                days,
                "{year}-{month}-{day}"
            );
            assert_eq!(civil_from_days(days), (year, month, day));
            assert_eq!(weekday(days), weekday_number, "{year}-{month}-{day}");
        }
        let mut expected = (1969, 12, 1);
        for days in days_from_civil(1969, 12, 1)..=days_from_civil(2200, 1, 1) {
            assert_eq!(civil_from_days(days), expected);
            assert_eq!(days_from_civil(expected.0, expected.1, expected.2), days);
            let (year, month, day) = expected;
            expected = if day < days_in_month(year, month) {
                (year, month, day + 1)
            } else if month < 12 {
                (year, month + 1, 1)
            } else {
                (year + 1, 1, 1)
            };
        }
    }
}
