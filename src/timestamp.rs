//! Times as the exporter hands them on: seconds since the Unix epoch, and RFC 3339 text as
//! EventBridge and SSM write it. Nothing here reads the clock or depends on the rest of the crate.

use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// 9999-12-31T23:59:59Z: RFC 3339 has four digits for the year.
const LAST_SECOND: i64 = 253_402_300_799;
/// The longest text [`parse_time`] takes: nanoseconds are as fine as a time is kept.
const LONGEST: usize = "2017-05-16T23:01:10.123456789Z".len();

/// How long after the epoch `t` is; zero before it, so that a clock set wrong shows as 1970
/// rather than failing a metric or a page.
pub fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()
}

/// `t` in seconds since the epoch, as gauges and the status JSON carry times (0 before 1970).
pub fn unix(t: SystemTime) -> f64 {
    since_epoch(t).as_secs_f64()
}

/// Writes seconds since the epoch as EventBridge writes `time`: `2017-05-16T23:01:10Z`, to the
/// second (fractions are dropped, times before 1970 written as 1970, after 9999 as 9999).
pub fn format_time(seconds: f64) -> String {
    // Within these bounds neither conversion can fail, so the empty default is never written.
    let whole = (seconds.max(0.0) as i64).min(LAST_SECOND);
    OffsetDateTime::from_unix_timestamp(whole)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (at most nine digits of fraction) into seconds since
/// the epoch; anything else, including a date that does not exist, is `None`. A leap second
/// (`23:59:60` on a month's last day: `time` keeps no table of those really inserted) is
/// taken as 23:59:59.999999999, which seconds in an `f64` cannot tell from the next minute.
pub fn parse_time(s: &str) -> Option<f64> {
    // RFC 3339 also allows another separator than `T`, a lower-case `z` and numeric offsets;
    // neither EventBridge nor SSM writes them, and an API that did would be misread elsewhere.
    let as_aws_writes = s.as_bytes().get(10) == Some(&b'T') && s.ends_with('Z');
    if !as_aws_writes || s.len() > LONGEST {
        return None;
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some(t.unix_timestamp() as f64 + f64::from(t.nanosecond()) / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_the_epoch() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(unix(t), 1_700_000_000.123);
        assert_eq!(since_epoch(t).as_millis(), 1_700_000_000_123);
        assert_eq!(unix(SystemTime::UNIX_EPOCH - Duration::from_secs(5)), 0.0);
    }

    #[test]
    fn formatted_times() {
        assert_eq!(format_time(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(1_494_975_670.0), "2017-05-16T23:01:10Z");
        assert_eq!(format_time(1_487_863_428.9), "2017-02-23T15:23:48Z");
        assert_eq!(format_time(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(format_time(1_700_000_000.0), "2023-11-14T22:13:20Z");
        assert_eq!(format_time(-5.0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(f64::NAN), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(1e300), "9999-12-31T23:59:59Z");
        for t in [0.0, 951_782_400.0, 1_494_975_670.0, 4_102_444_799.0] {
            assert_eq!(parse_time(&format_time(t)), Some(t));
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_time("2019-02-18T16:00:00Z"), Some(1_550_505_600.0));
        assert_eq!(parse_time("2018-04-10T19:15:38.5Z"), Some(1_523_387_738.5));
        assert_eq!(
            parse_time("2017-02-13T17:22:54.458Z"),
            Some(1_487_006_574.0 + 0.458)
        );
        assert_eq!(
            parse_time("2018-04-10T19:15:38.123456789Z"),
            Some(1_523_387_738.0 + 0.123_456_789)
        );
        assert_eq!(parse_time("1969-12-31T23:59:59Z"), Some(-1.0));
        // A leap second is the next minute's start (2017-01-01T00:00:00Z); `:60` before any
        // minute but a month's last is no time.
        assert_eq!(parse_time("2016-12-31T23:59:60Z"), Some(1_483_228_800.0));
        assert_eq!(parse_time("2018-01-01T12:30:60Z"), None);
        assert_eq!(parse_time("2018-04-10"), None);
        for bad in [
            "2018-13-10T00:00:00Z",
            "2018-02-30T00:00:00Z",
            "9999999999999999-01-01T00:00:00Z",
            "2018-01-01T-1:00:00Z",
            "2018-01-01T24:00:00Z",
            "2018-01-01T00:00:00.5e10Z",
            "2018-01-01T00:00:00.Z",
            "2018-01-01T00:00:00.1234567890Z",
            "2018-01-01T00:00Z",
            "2018-01-01-01T00:00:00Z",
            "2018-01-01 00:00:00Z",
            "2018-01-01t00:00:00z",
            "2018-01-01T00:00:00+00:00",
            "+2018-01-01T00:00:00Z",
            "２０１８-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
