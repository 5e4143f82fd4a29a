//! Durations as the configuration writes them, Prometheus-style: `1h30m`, `500ms`.

use std::time::Duration;

/// Parses a Prometheus-style duration: one or more `<integer><unit>` with units `ms s m h d`,
/// largest first.
///
/// # Errors
///
/// A message that quotes the input and says what form is expected.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let invalid =
        || format!("{s:?} is not a duration like 30s, 5m or 1h30m (units ms, s, m, h, d)");
    if s.is_empty() {
        return Err(invalid());
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
            return Err(invalid());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        let unit_ms = match &rest[digits..digits + unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(invalid()),
        };
        if unit_ms >= last_unit_ms {
            return Err(invalid());
        }
        last_unit_ms = unit_ms;
        let ms = number.checked_mul(unit_ms).ok_or_else(invalid)?;
        total = total
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(invalid)?;
        rest = &rest[digits + unit_len..];
    }
    Ok(total)
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
                Ok(Duration::from_millis(ms)),
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
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
