//! Durations as the configuration writes them, Prometheus-style: `1h30m`, `500ms`.

use std::time::Duration;

/// Parses a Prometheus-style duration: one or more `<integer><unit>` with units `ms s m h d`,
/// largest first; `None` for anything else. [`duration_words`] says what it reads.
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s.is_empty() {
        return None;
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
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        let unit_ms = match &rest[digits..digits + unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        if unit_ms >= last_unit_ms {
            return None;
        }
        last_unit_ms = unit_ms;
        let ms = number.checked_mul(unit_ms)?;
        total = total.checked_add(Duration::from_millis(ms))?;
        rest = &rest[digits + unit_len..];
    }
    Some(total)
}

/// Examples for errors, from which those not below a key's minimum are offered.
const EXAMPLES: [&str; 6] = ["30s", "5m", "1h30m", "6h", "1d", "7d"];

/// What a key that takes a duration of at least `min` expects, in words, with examples none
/// of which is below `min`: "a duration of at least 1s, such as 30s, 5m or 1h30m (units ms, s,
/// m, h, d)".
pub fn duration_words(min: Duration) -> String {
    let examples: Vec<&str> = EXAMPLES
        .into_iter()
        .filter(|e| parse_duration(e).is_some_and(|d| d >= min))
        .take(3)
        .collect();
    let examples = match examples.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => format_duration(min),
    };
    let least = if min.is_zero() {
        String::new()
    } else {
        format!(" of at least {}", format_duration(min))
    };
    format!("a duration{least}, such as {examples} (units ms, s, m, h, d)")
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
                Some(Duration::from_millis(ms)),
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
            assert!(parse_duration(bad).is_none(), "{bad:?} was accepted");
        }
    }

    /// Every example offered parses, and none is below the minimum it is offered for.
    #[test]
    fn examples_are_never_below_the_minimum() {
        for (min, words) in [
            (
                0,
                "a duration, such as 30s, 5m or 1h30m (units ms, s, m, h, d)",
            ),
            (
                1,
                "a duration of at least 1s, such as 30s, 5m or 1h30m (units ms, s, m, h, d)",
            ),
            (
                60,
                "a duration of at least 1m, such as 5m, 1h30m or 6h (units ms, s, m, h, d)",
            ),
            (
                3 * 86_400,
                "a duration of at least 3d, such as 7d (units ms, s, m, h, d)",
            ),
            (
                30 * 86_400,
                "a duration of at least 30d, such as 30d (units ms, s, m, h, d)",
            ),
        ] {
            let min = Duration::from_secs(min);
            assert_eq!(duration_words(min), words, "{min:?}");
        }
    }
}
