//! Prometheus-style durations: `500ms`, `5s`, `1m30s`, `2h`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The longest duration any setting takes (ten years): past it, adding one to a clock's
/// reading could overflow, and no setting means anything that long.
pub const MAX: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Parses a duration such as `5s` or `1m30s` (units ms, s, m, h, d), at most ten years.
pub fn parse(text: &str) -> Result<Duration, String> {
    let total = parse_any(text)?;
    within(total, text)
}

fn within(total: Duration, text: &str) -> Result<Duration, String> {
    if total > MAX {
        return Err(format!("duration {text:?} is longer than ten years"));
    }
    Ok(total)
}

fn parse_any(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (write e.g. 500ms, 5s, 1m30s)");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            _ => return Err(bad()),
        };
        let term = unit * u32::try_from(number).map_err(|_| bad())?;
        total = total.checked_add(term).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// For `#[serde(deserialize_with)]`: a duration string, or a bare number of seconds.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Seconds(s) => {
            within(Duration::from_secs(s), &s.to_string()).map_err(serde::de::Error::custom)
        }
        Raw::Text(t) => parse(&t).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_duration_is_longer_than_ten_years() {
        assert_eq!(parse("3650d"), Ok(MAX));
        assert!(
            parse("3651d")
                .unwrap_err()
                .contains("longer than ten years")
        );
        assert!(parse("4294967295d4294967295d").is_err());
        let bare: Result<Duration, _> =
            deserialize(serde_json::Value::from(u64::MAX)).map_err(|e| e.to_string());
        assert!(bare.unwrap_err().contains("longer than ten years"));
    }

    #[test]
    fn prometheus_durations_parse() {
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn nonsense_durations_are_refused() {
        for text in ["", "5", "s", "5 seconds", "1.5s", "-1s"] {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }
}
