//! RFC 3339 times as Go writes them, the shape of every time Alertmanager sends:
//! `2026-11-25T03:56:31.587181032Z`, 0 to 9 fractional digits, `Z` or `±hh:mm`.
//!
//! `#[serde(with = "time")]` reads and writes them on [`super::Alert`]. Every alert carries
//! two, so that exact shape is read digit by digit (chrono's general parser was 6% of the
//! instructions spent parsing a payload, this is a seventh of that). Anything else (lowercase
//! `t`/`z`, a leap second, more than nine fractional digits, a date that does not exist) goes
//! to chrono, which also words the error. Both agree on every text the fast path takes
//! (tested against chrono on random texts near the shape).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, ParseError, TimeZone};
use serde::{Deserialize, Deserializer, Serializer};

use super::Text;

/// Written back as RFC 3339 with the offset it came with: the instant and offset
/// Alertmanager sent, its fraction in 0, 3, 6 or 9 digits (`.5Z` comes back as `.500Z`).
pub fn serialize<S: Serializer>(t: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
    let mut text = TimeText::default();
    write(t, &mut text);
    s.serialize_str(text.as_str())
}

/// A time's RFC 3339 text, on the stack: the longest chrono writes is 38 bytes
/// (`+262143-12-31T23:59:60.999999999+23:59`).
pub struct TimeText {
    bytes: [u8; 40],
    len: usize,
}

impl Default for TimeText {
    fn default() -> Self {
        Self {
            bytes: [0; 40],
            len: 0,
        }
    }
}

impl TimeText {
    /// The text written so far.
    pub fn as_str(&self) -> &str {
        // Only whole `&str`s are ever appended.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }

    fn push(&mut self, text: &[u8]) {
        let end = (self.len + text.len()).min(self.bytes.len());
        self.bytes[self.len..end].copy_from_slice(&text[..end - self.len]);
        self.len = end;
    }
}

impl std::fmt::Write for TimeText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.len + s.len() > self.bytes.len() {
            return Err(std::fmt::Error);
        }
        self.push(s.as_bytes());
        Ok(())
    }
}

/// Writes `t` as chrono's `to_rfc3339_opts(AutoSi, true)` does (fraction in 0, 3, 6 or 9
/// digits, `Z` for UTC, else the offset): digit by digit for the years 0 to 9999, through
/// chrono for the rest (and leap seconds, and offsets with seconds, which chrono rounds). Templates see every payload time this way, two
/// per alert; the two agree on every time (tested).
pub fn write(t: &DateTime<FixedOffset>, out: &mut TimeText) {
    use chrono::{Datelike, Timelike};
    let local = t.naive_local();
    let nanos = local.nanosecond();
    let offset = t.offset().local_minus_utc();
    if !(0..=9999).contains(&local.year()) || nanos >= 1_000_000_000 || offset % 60 != 0 {
        use std::fmt::Write;
        let _ = out.write_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        return;
    }
    let mut text = *b"0000-00-00T00:00:00";
    put_digits(&mut text[0..4], local.year().unsigned_abs());
    put_digits(&mut text[5..7], local.month());
    put_digits(&mut text[8..10], local.day());
    put_digits(&mut text[11..13], local.hour());
    put_digits(&mut text[14..16], local.minute());
    put_digits(&mut text[17..19], local.second());
    out.push(&text);
    let (digits, value) = match nanos {
        0 => (0, 0),
        n if n % 1_000_000 == 0 => (3, n / 1_000_000),
        n if n % 1000 == 0 => (6, n / 1000),
        n => (9, n),
    };
    if digits > 0 {
        let mut fraction = *b".000000000";
        put_digits(&mut fraction[1..=digits], value);
        out.push(&fraction[..=digits]);
    }
    if offset == 0 {
        out.push(b"Z");
        return;
    }
    let minutes = offset.unsigned_abs() / 60;
    let mut zone = *b"+00:00";
    if offset < 0 {
        zone[0] = b'-';
    }
    put_digits(&mut zone[1..3], minutes / 60);
    put_digits(&mut zone[4..6], minutes % 60);
    out.push(&zone);
}

/// `value` in decimal, right-aligned and zero-padded to fill `into` (its lowest digits when
/// it has more).
pub(crate) fn put_digits(into: &mut [u8], value: u32) {
    let mut value = value;
    for at in into.iter_mut().rev() {
        *at = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Read in place from the payload's string; an error names the text.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
    let Text(text) = Text::deserialize(d)?;
    parse(&text)
        .map_err(|e| serde::de::Error::custom(format_args!("invalid RFC 3339 time {text:?}: {e}")))
}

/// Parses an RFC 3339 time, keeping its offset.
pub fn parse(text: &str) -> Result<DateTime<FixedOffset>, ParseError> {
    match go_shape(text.as_bytes()) {
        Some(time) => Ok(time),
        None => DateTime::parse_from_rfc3339(text),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)`, or `None` for anything else.
fn go_shape(b: &[u8]) -> Option<DateTime<FixedOffset>> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(digits(&b[0..4])?).ok()?,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
    )?;
    let (nanos, rest) = match b[19..].split_first() {
        Some((b'.', tail)) => {
            let count = tail.iter().take_while(|c| c.is_ascii_digit()).count();
            if count == 0 || count > 9 {
                return None;
            }
            let scale = 10u32.pow(9 - count as u32);
            (digits(&tail[..count])? * scale, &tail[count..])
        }
        _ => (0, &b[19..]),
    };
    let offset = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (hours, minutes) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            // RFC 3339 offsets, as chrono's parser takes them: up to ±23:59.
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = i32::try_from((hours * 60 + minutes) * 60).ok()?;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    let time = NaiveTime::from_hms_nano_opt(
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
        nanos,
    )?;
    FixedOffset::east_opt(offset)?
        .from_local_datetime(&date.and_time(time))
        .single()
}

/// The decimal value of ASCII digits (at most nine), or `None` if any byte is not one.
fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |value, &byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + u32::from(byte - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same value and offset as chrono when both take the text, an error from both when
    /// either refuses it, and the fast path never takes what chrono refuses.
    fn agree(text: &str) {
        let chrono = DateTime::parse_from_rfc3339(text);
        let ours = parse(text);
        match (&ours, &chrono) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "{text}");
                assert_eq!(a.offset(), b.offset(), "{text}");
            }
            (Err(_), Err(_)) => {}
            _ => panic!("{text:?}: ours {ours:?}, chrono {chrono:?}"),
        }
        if go_shape(text.as_bytes()).is_some() {
            assert!(chrono.is_ok(), "fast path took {text:?}, chrono refuses it");
        }
    }

    #[test]
    fn alertmanagers_shapes_take_the_fast_path() {
        for text in [
            "0001-01-01T00:00:00Z",
            "2026-11-25T03:56:31Z",
            "2026-11-25T03:56:31.5Z",
            "2026-11-25T03:56:31.587181032Z",
            "2026-11-25T11:56:31.587+08:00",
            "2026-11-24T22:56:31-05:00",
            "2024-02-29T23:59:59.999999999+14:00",
            "0001-01-01T00:00:00-23:59",
        ] {
            assert!(go_shape(text.as_bytes()).is_some(), "{text}");
            agree(text);
        }
    }

    #[test]
    fn other_shapes_and_bad_texts_go_to_chrono() {
        for text in [
            "2026-11-25t03:56:31z",
            "2026-11-25 03:56:31Z",
            "2016-12-31T23:59:60Z",
            "2026-11-25T03:56:31.1234567891Z",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T03:56:31.Z",
            "2026-11-25T03:56:31+24:00",
            "2026-11-25T03:56:31+08:60",
            "2026-11-25T03:56:31+0800",
            "2026-11-25T03:56:31",
            "+2026-11-25T03:56:31Z",
            "",
            "soon",
        ] {
            assert!(go_shape(text.as_bytes()).is_none(), "{text}");
            agree(text);
        }
    }

    fn written(t: &DateTime<FixedOffset>) -> String {
        let mut text = TimeText::default();
        write(t, &mut text);
        text.as_str().to_owned()
    }

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        let mut rng = fastrand::Rng::with_seed(9);
        let mut times: Vec<DateTime<FixedOffset>> = [
            "0001-01-01T00:00:00Z",
            "2026-11-25T03:56:31.587181032Z",
            "2026-11-25T11:56:31.587+08:00",
            "2026-11-24T22:56:31.000001-05:30",
            "2016-12-31T23:59:60.5Z",
            "9999-12-31T23:59:59.999999999+23:59",
        ]
        .iter()
        .map(|t| DateTime::parse_from_rfc3339(t).unwrap())
        .collect();
        for _ in 0..50_000 {
            let seconds = rng.i64(-70_000_000_000..300_000_000_000);
            let nanos = match rng.u8(0..4) {
                0 => 0,
                1 => rng.u32(0..1000) * 1_000_000,
                2 => rng.u32(0..1_000_000) * 1000,
                _ => rng.u32(0..1_000_000_000),
            };
            let offset = FixedOffset::east_opt(rng.i32(-86_399..86_400)).unwrap();
            let utc = DateTime::from_timestamp(seconds, nanos).unwrap();
            times.push(utc.with_timezone(&offset));
        }
        for t in times {
            let chrono = t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            assert_eq!(written(&t), chrono);
        }
    }

    #[test]
    fn random_texts_near_the_shape_agree_with_chrono() {
        let mut rng = fastrand::Rng::with_seed(8);
        let alphabet = b"0123456789-+:.TZtz ";
        let base = b"2026-11-25T03:56:31.587181032+08:00";
        for _ in 0..50_000 {
            let mut text = base.to_vec();
            if rng.bool() {
                text.truncate(rng.usize(0..=text.len()));
            }
            for _ in 0..rng.usize(0..4) {
                let at = rng.usize(0..=text.len());
                let byte = alphabet[rng.usize(0..alphabet.len())];
                match rng.u8(0..3) {
                    0 if at < text.len() => text[at] = byte,
                    1 if at < text.len() => {
                        text.remove(at);
                    }
                    _ => text.insert(at, byte),
                }
            }
            agree(std::str::from_utf8(&text).expect("ASCII"));
        }
    }
}
