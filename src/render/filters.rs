//! The filters alertrelay adds to Tera: local times, durations, and text that shows as written
//! in DingTalk markdown (`md_escape`), WeCom markdown (`wecom_escape`) and Feishu's `lark_md`
//! (`lark_escape`).
//! Each is documented for template authors in `docs/templates.md`.
//!
//! A message calls them a dozen times per alert, so they are written for Tera's values: a
//! value with nothing to change is handed back as it came (a reference count, not a copy),
//! a local time is built on the stack, and times are read and written by the payload's own
//! RFC 3339 code (`alert::time`).

mod links;

pub use links::{matchers, percent_encode};

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use tera::{Error, Kwargs, State, StringInput, Tera, TeraResult, Value};

use crate::alert::{is_zero_time, time};

/// The format `localtime` uses when none is given.
pub const DEFAULT_TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Registers every filter on `tera`; `timezone` is the configured zone for `localtime`.
pub fn register(tera: &mut Tera, timezone: Tz) {
    tera.register_filter("localtime", move |time: &str, kwargs: Kwargs, _: &State| {
        localtime(time, &kwargs, timezone)
    });
    tera.register_filter("since", since);
    tera.register_filter("human_duration", human_duration_filter);
    tera.register_filter("md_escape", |text: StringInput, _: Kwargs, _: &State| {
        changed_or_same(text, md_escape_changes)
    });
    tera.register_filter("md_url", |url: StringInput, _: Kwargs, _: &State| {
        changed_or_same(url, md_url_changes)
    });
    tera.register_filter("wecom_escape", |text: StringInput, _: Kwargs, _: &State| {
        changed_or_same(text, wecom_escape_changes)
    });
    tera.register_filter("lark_escape", |text: StringInput, _: Kwargs, _: &State| {
        changed_or_same(text, lark_escape_changes)
    });
    links::register(tera);
}

/// What `change` writes for `input`, or `input` itself (a reference count, not a copy) when
/// `change` says it would leave it as it is.
fn changed_or_same(input: StringInput, change: fn(&str, &mut String) -> bool) -> Value {
    let mut out = String::new();
    if change(input.as_str(), &mut out) {
        Value::from(out)
    } else {
        input.into_value()
    }
}

/// `text` through `change`, as a new string.
fn changed(text: &str, change: fn(&str, &mut String) -> bool) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    if !change(text, &mut out) {
        out.push_str(text);
    }
    out
}

fn parse_time(text: &str) -> TeraResult<Option<DateTime<FixedOffset>>> {
    if text.is_empty() {
        return Ok(None);
    }
    let time = time::parse(text)
        .map_err(|e| Error::message(format!("not an RFC 3339 time {text:?}: {e}")))?;
    Ok((!is_zero_time(&time)).then_some(time))
}

/// `{{ alert.startsAt | localtime }}`: the time in the configured zone (or `tz=`), formatted
/// with `format=` (strftime, default `%Y-%m-%d %H:%M:%S`). Go's zero time gives "".
fn localtime(text: &str, kwargs: &Kwargs, timezone: Tz) -> TeraResult<Value> {
    let format = kwargs.get::<&str>("format")?.unwrap_or(DEFAULT_TIME_FORMAT);
    let zone = match kwargs.get::<&str>("tz")? {
        Some(name) => name
            .parse::<Tz>()
            .map_err(|_| Error::message(format!("unknown time zone {name:?}")))?,
        None => timezone,
    };
    let Some(time) = parse_time(text)? else {
        return Ok(Value::from(""));
    };
    if format == DEFAULT_TIME_FORMAT
        && let Some(local) = local_time(&time, zone)
    {
        return Ok(Value::from(local.as_str()));
    }
    use std::fmt::Write;
    let mut out = String::with_capacity(32);
    write!(out, "{}", in_zone(&time, zone).format(format))
        .map_err(|_| Error::message(format!("invalid time format {format:?}")))?;
    Ok(Value::from(out))
}

/// `time` in `zone`, but never past the zone's last second of year 9999. RFC 3339 stops at
/// 9999, yet 9999-12-31T23:00Z is already 10000 in Tokyo, and chrono writes that year as
/// `+10000`: a clamped time reads as "as late as can be" and keeps every format's shape.
fn in_zone(time: &DateTime<FixedOffset>, zone: Tz) -> DateTime<Tz> {
    use chrono::{Datelike, NaiveDate, TimeZone};
    let local = time.with_timezone(&zone);
    if local.year() <= 9999 {
        return local;
    }
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|day| day.and_hms_opt(23, 59, 59))
        .and_then(|last| zone.from_local_datetime(&last).earliest())
        .unwrap_or(local)
}

/// A [`DEFAULT_TIME_FORMAT`] time: `2026-11-25 11:56:31`.
struct LocalTime([u8; 19]);

impl LocalTime {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// `time` in `zone` as [`DEFAULT_TIME_FORMAT`], without interpreting the format string;
/// `None` for leap seconds and years chrono must write (it knows how `%Y` and `%S` show them).
fn local_time(time: &DateTime<FixedOffset>, zone: Tz) -> Option<LocalTime> {
    use chrono::{Datelike, Timelike};
    // The local wall time once: each accessor of a zoned time would add the offset again.
    let local = in_zone(time, zone).naive_local();
    if !(0..=9999).contains(&local.year()) || local.nanosecond() >= 1_000_000_000 {
        return None;
    }
    let mut text = *b"0000-00-00 00:00:00";
    time::put_digits(&mut text[0..4], local.year().unsigned_abs());
    time::put_digits(&mut text[5..7], local.month());
    time::put_digits(&mut text[8..10], local.day());
    time::put_digits(&mut text[11..13], local.hour());
    time::put_digits(&mut text[14..16], local.minute());
    time::put_digits(&mut text[17..19], local.second());
    Some(LocalTime(text))
}

/// `{{ alert.startsAt | since }}`: whole seconds from the time to `until=` (when given and
/// set) or else to the render time (`now` in the context). Never negative.
fn since(text: &str, kwargs: Kwargs, state: &State) -> TeraResult<i64> {
    let Some(start) = parse_time(text)? else {
        return Ok(0);
    };
    let end = match kwargs
        .get::<&str>("until")?
        .map(parse_time)
        .transpose()?
        .flatten()
    {
        Some(end) => end,
        None => {
            let now: Option<Value> = state.get("now")?;
            match now
                .as_ref()
                .and_then(Value::as_str)
                .map(parse_time)
                .transpose()?
                .flatten()
            {
                Some(now) => now,
                None => Utc::now().fixed_offset(),
            }
        }
    };
    Ok((end - start).num_seconds().max(0))
}

fn human_duration_filter(seconds: f64, kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let english = match kwargs.get::<&str>("lang")? {
        None | Some("zh") => false,
        Some("en") => true,
        Some(other) => {
            return Err(Error::message(format!(
                "lang must be zh or en, not {other:?}"
            )));
        }
    };
    Ok(Value::from(human_duration(
        seconds.max(0.0).round() as u64,
        english,
    )))
}

/// Seconds as the two largest units: `2小时5分钟`, `3分12秒`, `1天4小时` (or `2h 5m`).
pub fn human_duration(seconds: u64, english: bool) -> String {
    let mut out = String::with_capacity(16);
    const UNITS: [(u64, &str, &str); 4] = [
        (86_400, "天", "d"),
        (3600, "小时", "h"),
        (60, "分钟", "m"),
        (1, "秒", "s"),
    ];
    let mut parts = 0;
    let mut rest = seconds;
    for (size, zh, en) in UNITS {
        let count = rest / size;
        rest %= size;
        if count > 0 {
            if english && parts > 0 {
                out.push(' ');
            }
            push_decimal(&mut out, count);
            out.push_str(if english { en } else { zh });
            parts += 1;
        } else if parts > 0 {
            break; // "1天" rather than "1天0小时"
        }
        if parts == 2 {
            break;
        }
    }
    if parts == 0 {
        out.push_str(if english { "0s" } else { "0秒" });
    }
    out
}

/// Appends `value` in decimal, without the formatting machinery (a message shows one or two
/// numbers per alert).
fn push_decimal(out: &mut String, value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// Escapes text so it shows as written in DingTalk markdown and cannot add headings, links,
/// emphasis, quotes, lists, code blocks or HTML (`<font>`). It escapes only where markdown
/// would act, so a client that shows backslashes literally shows as few as possible:
/// `node_exporter` and `192.168.0.1` stay untouched. `<` and `>` become entities; each line
/// break (LF, CRLF or a lone CR) becomes a markdown hard break so multi-line annotations keep
/// their lines.
pub fn md_escape(text: &str) -> String {
    changed(text, md_escape_changes)
}

/// Appends `text` escaped to `out` and returns true, or returns false and appends nothing
/// when escaping would leave it as it is (most values: instances, names, severities).
fn md_escape_changes(text: &str, out: &mut String) -> bool {
    if !text.bytes().any(|b| MARKDOWN_SPECIAL[usize::from(b)]) {
        // One line with nothing inline to escape: it stays as it is unless its start opens
        // a block or its indentation would be rewritten.
        let body = text.trim_start();
        let indent = &text[..text.len() - body.len()];
        if indent.len() <= 3 && indent.bytes().all(|b| b == b' ') && line_start_mark(body).is_none()
        {
            return false;
        }
    }
    escape_lines(text, out);
    true
}

/// [`md_escape`]'s rules, line by line.
fn escape_lines(text: &str, out: &mut String) {
    for (index, line) in markdown_lines(text).enumerate() {
        if index > 0 {
            out.push_str("  \n");
        }
        let body = line.trim_start();
        // A line of blanks is a blank line however many it has; written out, they would
        // run on into what the template writes after the value (` (name)`), and four of
        // them open a code block.
        if index == 0 || !body.is_empty() {
            push_indent(&line[..line.len() - body.len()], out);
        }
        let rest = escape_line_start(body, out);
        escape_inline(rest, out);
    }
}

/// The lines of `text` as markdown reads them, like `str::lines` but also ended by a lone CR,
/// which CommonMark takes as a line break: a value must not start a line unescaped behind it.
fn markdown_lines(text: &str) -> impl Iterator<Item = &str> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    text.split('\n')
        .flat_map(|line| line.strip_suffix('\r').unwrap_or(line).split('\r'))
}

/// A line's indentation, but at most three spaces of it (a tab counts as one): four would
/// open a code block. Markdown does not show a paragraph line's indentation anyway.
fn push_indent(indent: &str, out: &mut String) {
    let mut spaces = 0;
    for c in indent.chars() {
        match c {
            ' ' | '\t' if spaces == 3 => {}
            ' ' | '\t' => {
                out.push(' ');
                spaces += 1;
            }
            other => out.push(other),
        }
    }
}

/// Block syntax at the start of a line: `#` headings, `-`/`+`/`1.` lists, `===` underlines.
/// Writes the escaped prefix and returns the rest of the line.
fn escape_line_start<'a>(line: &'a str, out: &mut String) -> &'a str {
    match line_start_mark(line) {
        Some(at) => {
            out.push_str(&line[..at]);
            out.push('\\');
            &line[at..]
        }
        None => line,
    }
}

/// Where a backslash must go so the start of `line` (its indentation removed) opens no
/// block: before the `.` or `)` of an ordered list marker, or before the first character of
/// a heading, bullet or setext underline; `None` when the line opens none.
fn line_start_mark(line: &str) -> Option<usize> {
    let followed_by_space = |s: &str| s.is_empty() || s.starts_with(char::is_whitespace);
    let digits = line
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(line.len());
    if digits > 0
        && line[digits..].starts_with(['.', ')'])
        && followed_by_space(&line[digits + 1..])
    {
        return Some(digits);
    }
    // An underline may end in blanks.
    let underline = line.trim_end_matches([' ', '\t']);
    let setext = !underline.is_empty()
        && (underline.bytes().all(|b| b == b'=') || underline.bytes().all(|b| b == b'-'));
    let marker =
        line.starts_with('#') || (line.starts_with(['-', '+']) && followed_by_space(&line[1..]));
    (setext || marker).then_some(0)
}

/// A table marking `bytes`, so a scan over a label or link is one lookup per byte.
const fn byte_set(bytes: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
}

/// The characters that markdown may act on inside a line; all ASCII.
const MARKDOWN_INLINE: [bool; 256] = byte_set(b"*`[]_\\~<>&");
/// Those, and line breaks.
const MARKDOWN_SPECIAL: [bool; 256] = byte_set(b"*`[]_\\~<>&\n\r");

fn inline_special(byte: u8) -> bool {
    MARKDOWN_INLINE[usize::from(byte)]
}

fn escape_inline(text: &str, out: &mut String) {
    // Copy the runs between characters that may need escaping whole.
    let mut run = 0;
    for (at, byte) in text.bytes().enumerate() {
        if !inline_special(byte) {
            continue;
        }
        let prev = text[..at].chars().next_back();
        let next = text[at + 1..].chars().next();
        let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        let (escape, replaced) = match byte {
            b'*' | b'`' | b'[' | b']' => ("\\", false),
            // Inside a word (node_exporter) an underscore never emphasises.
            b'_' if !(word(prev) && word(next)) => ("\\", false),
            b'\\' if next.is_some_and(|n| n.is_ascii_punctuation()) => ("\\", false),
            b'~' if prev == Some('~') || next == Some('~') => ("\\", false),
            b'<' => ("&lt;", true),
            b'>' => ("&gt;", true),
            b'&' if next.is_some_and(|n| n.is_ascii_alphanumeric() || n == '#') => ("&amp;", true),
            _ => continue,
        };
        out.push_str(&text[run..at]);
        out.push_str(escape);
        // A backslash goes before the character; an entity replaces it.
        run = if replaced { at + 1 } else { at };
    }
    out.push_str(&text[run..]);
}

/// Makes text show as written in a WeCom (企业微信) group robot's markdown, where it could
/// otherwise add bold (`**`), inline code, a link, a `<font>` colour, a `<@userid>` mention, a
/// heading or a quote. WeCom documents no escape (neither a backslash nor an HTML entity is
/// said to work), so the few characters that act are written as their full-width forms, which
/// read the same and act as nothing: `*` `＊`, `` ` `` `｀`, `<` `＜`, a `]` that a `(` follows
/// (or that ends the text) `］`, and `#` or `>` at the start of a line `＃` `＞`. Everything
/// else is left as it is (`node_exporter`, `192.168.0.1:9100`, `a > b`, `[5m]`); line breaks
/// (LF, CRLF or a lone CR) become LF, which WeCom shows as a line break.
pub fn wecom_escape(text: &str) -> String {
    changed(text, wecom_escape_changes)
}

/// The characters [`wecom_escape`] may change inside a line, and line breaks.
const WECOM_SPECIAL: [bool; 256] = byte_set(b"*`<]\n\r");

/// Appends `text` escaped for WeCom markdown to `out` and returns true, or returns false and
/// appends nothing when it would stay as it is.
fn wecom_escape_changes(text: &str, out: &mut String) -> bool {
    if !text.bytes().any(|b| WECOM_SPECIAL[usize::from(b)])
        && !text.trim_start().starts_with(['#', '>'])
    {
        return false;
    }
    let mut lines = markdown_lines(text).peekable();
    let mut first = true;
    while let Some(line) = lines.next() {
        if !first {
            out.push('\n');
        }
        first = false;
        // What the template writes next follows the last line: a `]` ending it may meet a `(`.
        let last_line = lines.peek().is_none();
        let body = line.trim_start();
        out.push_str(&line[..line.len() - body.len()]);
        let rest = match body.chars().next() {
            Some('#') => {
                out.push('＃');
                &body[1..]
            }
            Some('>') => {
                out.push('＞');
                &body[1..]
            }
            _ => body,
        };
        for (at, c) in rest.char_indices() {
            match c {
                '*' => out.push('＊'),
                '`' => out.push('｀'),
                '<' => out.push('＜'),
                ']' if rest[at + 1..].starts_with('(') || (last_line && at + 1 == rest.len()) => {
                    out.push('］')
                }
                _ => out.push(c),
            }
        }
    }
    true
}

/// Makes text show as written in the `lark_md` text of a Feishu/Lark message card, where it
/// could otherwise add emphasis, strikethrough, a link, a `<font>` colour, an `<at>` mention
/// (`<at id=all></at>` would notify the whole group), a `<text_tag>` or an emoji (`:DONE:`).
/// Feishu's card documentation says to write such characters as HTML character references
/// (`&#42;` for `*`), not with a backslash, and so this does: `<` `>` `*` `_` `~` `` ` `` `[`
/// `]` and `\` always, `&` where it would start a reference, a `:` that opens a `:word:`, and
/// a line's opening `#`, list marker or underline. Line breaks (LF, CRLF or a lone CR) become
/// LF, which `lark_md` shows as a line break.
pub fn lark_escape(text: &str) -> String {
    changed(text, lark_escape_changes)
}

/// The characters [`lark_escape`] may change inside a line, and line breaks.
const LARK_SPECIAL: [bool; 256] = byte_set(b"<>*_~`[]\\&:\n\r");

/// Appends `text` escaped for `lark_md` to `out` and returns true, or returns false and
/// appends nothing when it would stay as it is.
fn lark_escape_changes(text: &str, out: &mut String) -> bool {
    if !text.bytes().any(|b| LARK_SPECIAL[usize::from(b)])
        && line_start_mark(text.trim_start()).is_none()
    {
        return false;
    }
    for (index, line) in markdown_lines(text).enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let body = line.trim_start();
        out.push_str(&line[..line.len() - body.len()]);
        let rest = match line_start_mark(body) {
            Some(at) => {
                out.push_str(&body[..at]);
                let mark = body[at..].chars().next().unwrap_or(' ');
                push_reference(mark, out);
                &body[at + mark.len_utf8()..]
            }
            None => body,
        };
        for (at, c) in rest.char_indices() {
            let after = &rest[at + c.len_utf8()..];
            let next = after.chars().next();
            let escape = match c {
                '<' | '>' | '*' | '_' | '~' | '`' | '[' | ']' | '\\' => true,
                '&' => next.is_some_and(|n| n.is_ascii_alphanumeric() || n == '#'),
                ':' => opens_emoji(after),
                _ => false,
            };
            if escape {
                push_reference(c, out);
            } else {
                out.push(c);
            }
        }
    }
    true
}

/// Whether `rest`, what follows a `:`, makes it a Feishu emoji code such as `:DONE:` or
/// `:2022:`: a word of ASCII letters, digits or `_` and a closing `:`.
fn opens_emoji(rest: &str) -> bool {
    let word = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    word > 0 && rest[word..].starts_with(':')
}

/// Appends the decimal character reference of an ASCII `c` (`&#42;`).
fn push_reference(c: char, out: &mut String) {
    out.push_str("&#");
    push_decimal(out, u64::from(u32::from(c)));
    out.push(';');
}

/// Makes a URL safe as the target of a markdown link `[text](url)`: characters that would end
/// the link or the markdown (space, parentheses, angle brackets) are percent-encoded.
pub fn md_url(url: &str) -> String {
    changed(url, md_url_changes)
}

/// Appends the link target made of `url` to `out` and returns true, or returns false and
/// appends nothing when it is `url` itself (most links).
fn md_url_changes(url: &str, out: &mut String) -> bool {
    let trimmed = url.trim();
    // Prometheus links are long and rarely hold any of these.
    const SPECIAL: [bool; 256] = byte_set(b" ()<>\n\r");
    if !trimmed.bytes().any(|b| SPECIAL[usize::from(b)]) {
        if trimmed.len() == url.len() {
            return false;
        }
        out.push_str(trimmed);
        return true;
    }
    let url = trimmed;
    for c in url.chars() {
        match c {
            ' ' => out.push_str("%20"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '\n' | '\r' => {}
            _ => out.push(c),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_as_format_writes_them() {
        for value in [0, 1, 9, 10, 59, 100, 86_399, 1_000_000, u64::MAX] {
            let mut out = String::from("x");
            push_decimal(&mut out, value);
            assert_eq!(out, format!("x{value}"));
        }
    }

    #[test]
    fn a_time_past_year_9999_in_a_far_east_zone_stops_at_the_last_second_of_9999() {
        let mut tera = Tera::default();
        register(&mut tera, chrono_tz::Asia::Tokyo);
        let mut context = tera::Context::new();
        context.insert("t", "9999-12-31T23:00:00Z");
        let render = |template: &str| tera.render_str(template, &context, false).unwrap();
        assert_eq!(render("{{ t | localtime }}"), "9999-12-31 23:59:59");
        assert_eq!(
            render("{{ t | localtime(format=\"%Y-%m-%d %H:%M %z\") }}"),
            "9999-12-31 23:59 +0900"
        );
        assert_eq!(
            render("{{ t | localtime(tz=\"UTC\") }}"),
            "9999-12-31 23:00:00"
        );
        let west = DateTime::parse_from_rfc3339("9999-12-31T23:00:00-05:00").unwrap();
        let local = local_time(&west, chrono_tz::UTC).unwrap();
        assert_eq!(local.as_str(), "9999-12-31 23:59:59");
    }

    #[test]
    fn durations_show_their_two_largest_units() {
        assert_eq!(human_duration(0, false), "0秒");
        assert_eq!(human_duration(42, false), "42秒");
        assert_eq!(human_duration(192, false), "3分钟12秒");
        assert_eq!(human_duration(3600, false), "1小时");
        assert_eq!(human_duration(7500, false), "2小时5分钟");
        assert_eq!(human_duration(7505, false), "2小时5分钟");
        assert_eq!(human_duration(86_400 + 4 * 3600 + 59, false), "1天4小时");
        assert_eq!(human_duration(86_400 + 59, false), "1天");
        assert_eq!(human_duration(7500, true), "2h 5m");
    }

    #[test]
    fn markdown_punctuation_and_html_are_neutralised() {
        assert_eq!(
            md_escape("<b>html</b> & \"quotes\""),
            "&lt;b&gt;html&lt;/b&gt; & \"quotes\""
        );
        assert_eq!(md_escape("a&amp;b"), "a&amp;amp;b");
        assert_eq!(md_escape("# not a heading"), "\\# not a heading");
        assert_eq!(md_escape("> not a quote"), "&gt; not a quote");
        assert_eq!(md_escape("[x](http://evil)"), "\\[x\\](http://evil)");
        assert_eq!(md_escape("**bold** _it_"), "\\*\\*bold\\*\\* \\_it\\_");
        assert_eq!(
            md_escape("1. item\n- item\n==="),
            "1\\. item  \n\\- item  \n\\==="
        );
        assert_eq!(md_escape("~~gone~~ ~1"), "\\~\\~gone\\~\\~ ~1");
        assert_eq!(md_escape("C:\\data \\*"), "C:\\data \\\\\\*");
    }

    /// Found by the rendering property (tests/api/properties/render.rs): a lone CR was kept,
    /// and markdown started a heading or an HTML block behind it.
    #[test]
    fn a_lone_carriage_return_breaks_the_line_and_the_next_line_is_escaped() {
        assert_eq!(md_escape("a\r# b"), "a  \n\\# b");
        assert_eq!(md_escape("a\r\r- b"), "a  \n  \n\\- b");
        assert_eq!(md_escape("a\r\n# b\r"), "a  \n\\# b");
        assert_eq!(md_escape("a\n\n"), "a  \n");
    }

    /// Found by the rendering property: CommonMark lets a setext underline end in blanks.
    #[test]
    fn an_underline_ending_in_blanks_is_escaped_too() {
        assert_eq!(md_escape("a\n===   "), "a  \n\\===   ");
        assert_eq!(md_escape("a\n---\t"), "a  \n\\---\t");
    }

    /// Found by the rendering property: a line of a value indented by four spaces (or a tab)
    /// opened a code block, after a heading or wherever a template put the value.
    #[test]
    fn indentation_cannot_open_a_code_block() {
        assert_eq!(md_escape("a\n    b"), "a  \n   b");
        assert_eq!(md_escape("a\n\t\t\t\tb"), "a  \n   b");
        assert_eq!(md_escape("      b"), "   b");
        assert_eq!(md_escape("a\n \u{3000}  b"), "a  \n \u{3000}  b");
        assert_eq!(md_escape("  padded  "), "  padded  ");
    }

    /// Found by the rendering property: an instance label ending in a line of blanks, then
    /// the template's ` (name)`, made a four-space line after a blank one: a code block.
    #[test]
    fn a_line_of_blanks_in_a_value_adds_no_indentation_to_what_follows() {
        assert_eq!(md_escape("a\n    "), "a  \n");
        // The first line follows the template's text on its line; the others are blank.
        assert_eq!(md_escape("  \n\n\u{85}\n\n    "), "    \n  \n  \n  \n");
        assert_eq!(md_escape("a\n   b"), "a  \n   b");
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in [
            "使用超过 85%",
            "192.168.10.21:9100",
            "node_exporter",
            "-1 and +2",
            "3.5 GB",
        ] {
            assert_eq!(md_escape(text), text);
        }
    }

    /// The plain character-by-character statement of [`escape_inline`]'s rules.
    fn escape_inline_reference(text: &str) -> String {
        let mut out = String::new();
        let chars: Vec<char> = text.chars().collect();
        let word = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric());
        for (i, &c) in chars.iter().enumerate() {
            let prev = i.checked_sub(1).and_then(|p| chars.get(p));
            let next = chars.get(i + 1);
            match c {
                '*' | '`' | '[' | ']' => out.push('\\'),
                '_' if !(word(prev) && word(next)) => out.push('\\'),
                '\\' if next.is_some_and(|n| n.is_ascii_punctuation()) => out.push('\\'),
                '~' if prev == Some(&'~') || next == Some(&'~') => out.push('\\'),
                '<' => {
                    out.push_str("&lt;");
                    continue;
                }
                '>' => {
                    out.push_str("&gt;");
                    continue;
                }
                '&' if next.is_some_and(|n| n.is_ascii_alphanumeric() || *n == '#') => {
                    out.push_str("&amp;");
                    continue;
                }
                _ => {}
            }
            out.push(c);
        }
        out
    }

    /// The shortcut that hands a value back unescaped agrees with escaping it, on random
    /// text made of what matters at a line's start.
    #[test]
    fn text_handed_back_unchanged_is_what_escaping_would_give() {
        let mut rng = fastrand::Rng::with_seed(12);
        let alphabet: Vec<char> = "19.)#-+= \t\u{3000}a_*:".chars().collect();
        for _ in 0..20_000 {
            let text: String = (0..rng.usize(0..10))
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let mut full = String::new();
            escape_lines(&text, &mut full);
            let mut out = String::new();
            if !md_escape_changes(&text, &mut out) {
                assert!(out.is_empty());
                assert_eq!(full, text, "{text:?} was handed back unescaped");
            } else {
                assert_eq!(out, full, "{text:?}");
            }
        }
    }

    #[test]
    fn inline_escaping_matches_its_reference_on_random_text() {
        let mut rng = fastrand::Rng::with_seed(11);
        let alphabet: Vec<char> = "a1 _*`[]\\~<>&#.!故é".chars().collect();
        for len in 0..400 {
            let text: String = (0..len % 40)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let mut fast = String::new();
            escape_inline(&text, &mut fast);
            assert_eq!(fast, escape_inline_reference(&text), "{text:?}");
        }
    }

    /// A label or annotation cannot add formatting, a colour, a mention or a link to a WeCom
    /// markdown message: what would act becomes its full-width twin.
    #[test]
    fn wecom_markdown_cannot_be_added_by_a_value() {
        assert_eq!(wecom_escape("**x**"), "＊＊x＊＊");
        assert_eq!(
            wecom_escape("<font color=\"warning\">x</font>"),
            "＜font color=\"warning\">x＜/font>"
        );
        assert_eq!(
            wecom_escape("[a](javascript:alert(1))"),
            "[a］(javascript:alert(1))"
        );
        assert_eq!(wecom_escape("<@zhangsan> `code`"), "＜@zhangsan> ｀code｀");
        assert_eq!(wecom_escape("# h\n  > q"), "＃ h\n  ＞ q");
        // A `]` ending the value may meet a `(` the template writes next.
        assert_eq!(wecom_escape("[a]"), "[a］");
        assert_eq!(wecom_escape("[a]\n"), "[a］");
        assert_eq!(wecom_escape("a\r\nb\rc\n"), "a\nb\nc");
    }

    #[test]
    fn wecom_escaping_leaves_ordinary_text_alone() {
        for text in [
            "使用超过 85%",
            "192.168.10.21:9100",
            "node_exporter",
            "CPU > 90%",
            "rate(node_cpu_seconds_total[5m]) 1 < 2",
            "- 1. ~~x~~ _y_ &amp;",
        ] {
            let expected = text.replace('<', "＜");
            assert_eq!(wecom_escape(text), expected);
        }
    }

    /// Nothing a WeCom client could act on is left in random text made of what it acts on.
    #[test]
    fn wecom_escaped_random_text_has_no_markdown_left() {
        let mut rng = fastrand::Rng::with_seed(13);
        let alphabet: Vec<char> = "*`<>[]()#@ \t\n\r\u{3000}a_~&故".chars().collect();
        for _ in 0..20_000 {
            let text: String = (0..rng.usize(0..12))
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let escaped = wecom_escape(&text);
            for bad in ["*", "`", "<", "](", "\r"] {
                assert!(!escaped.contains(bad), "{text:?} -> {escaped:?}");
            }
            assert!(!escaped.ends_with(']'), "{text:?} -> {escaped:?}");
            for line in escaped.split('\n') {
                let body = line.trim_start();
                assert!(!body.starts_with(['#', '>']), "{text:?} -> {escaped:?}");
            }
            let mut out = String::new();
            if !wecom_escape_changes(&text, &mut out) {
                assert_eq!(escaped, text, "{text:?} was handed back unescaped");
            }
        }
    }

    /// A label or annotation cannot add formatting, a colour, a link, an emoji or a mention
    /// (above all not an @all) to a Feishu card's lark_md text.
    #[test]
    fn lark_md_cannot_be_added_by_a_value() {
        assert_eq!(lark_escape("**x**"), "&#42;&#42;x&#42;&#42;");
        assert_eq!(
            lark_escape("<at id=all></at>"),
            "&#60;at id=all&#62;&#60;/at&#62;"
        );
        assert_eq!(
            lark_escape("<font color='red'>x</font>"),
            "&#60;font color='red'&#62;x&#60;/font&#62;"
        );
        assert_eq!(
            lark_escape("[a](javascript:alert(1))"),
            "&#91;a&#93;(javascript:alert(1))"
        );
        assert_eq!(
            lark_escape("~~x~~ `y`"),
            "&#126;&#126;x&#126;&#126; &#96;y&#96;"
        );
        assert_eq!(lark_escape("node_exporter"), "node&#95;exporter");
        assert_eq!(lark_escape("C:\\data"), "C:&#92;data");
        assert_eq!(
            lark_escape("a&amp;b &#42; R&D a & b"),
            "a&#38;amp;b &#38;#42; R&#38;D a & b"
        );
        assert_eq!(
            lark_escape("ok :DONE: 11:56:31"),
            "ok &#58;DONE: 11&#58;56:31"
        );
        assert_eq!(
            lark_escape("# h\r\n- i\r1. j\n==="),
            "&#35; h\n&#45; i\n1&#46; j\n&#61;=="
        );
        assert_eq!(lark_escape("a\n"), "a");
    }

    #[test]
    fn lark_escaping_leaves_ordinary_text_alone() {
        for text in [
            "使用超过 85%",
            "192.168.10.21:9100",
            "-1 and +2",
            "3.5 GB",
            "/dev/vda1 (当前值: 91)",
        ] {
            assert_eq!(lark_escape(text), text);
        }
    }

    /// Reads the references [`lark_escape`] writes back into characters.
    fn lark_unescape(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("&#") {
            out.push_str(&rest[..at]);
            let end = rest[at..].find(';').unwrap() + at;
            let code: u32 = rest[at + 2..end].parse().unwrap();
            out.push(char::from_u32(code).unwrap());
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// On random text made of what lark_md acts on: nothing it acts on is left, and reading
    /// the references back gives the text (its line breaks as LF).
    #[test]
    fn lark_escaped_random_text_reads_back_as_written() {
        let mut rng = fastrand::Rng::with_seed(14);
        let alphabet: Vec<char> = "<>*_~`[]\\&#:;=-+.1aZ /\n\r\u{3000}故".chars().collect();
        for _ in 0..20_000 {
            let text: String = (0..rng.usize(0..12))
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let escaped = lark_escape(&text);
            for bad in ['<', '>', '*', '_', '~', '`', '[', ']', '\\', '\r'] {
                assert!(!escaped.contains(bad), "{text:?} -> {escaped:?}");
            }
            let lines: Vec<&str> = markdown_lines(&text).collect();
            assert_eq!(lark_unescape(&escaped), lines.join("\n"), "{text:?}");
            for line in escaped.split('\n') {
                assert_eq!(line_start_mark(line.trim_start()), None, "{text:?}");
            }
            let mut out = String::new();
            if !lark_escape_changes(&text, &mut out) {
                assert_eq!(escaped, text, "{text:?} was handed back unescaped");
            }
        }
    }

    #[test]
    fn the_channel_filters_are_registered() {
        let mut tera = Tera::default();
        register(&mut tera, chrono_tz::Asia::Shanghai);
        let mut context = tera::Context::new();
        context.insert("v", "**x**");
        let render = |template: &str| tera.render_str(template, &context, false).unwrap();
        assert_eq!(render("{{ v | wecom_escape }}"), "＊＊x＊＊");
        assert_eq!(render("{{ v | lark_escape }}"), "&#42;&#42;x&#42;&#42;");
    }

    #[test]
    fn link_targets_cannot_end_early() {
        assert_eq!(md_url("http://x/a b(c)"), "http://x/a%20b%28c%29");
        assert_eq!(
            md_url("http://prometheus-0:9090/graph?g0.expr=up&g0.tab=1"),
            "http://prometheus-0:9090/graph?g0.expr=up&g0.tab=1"
        );
        // Each special byte is caught wherever it is, line breaks dropped.
        for (special, written) in [
            (" ", "%20"),
            ("(", "%28"),
            (")", "%29"),
            ("<", "%3C"),
            (">", "%3E"),
            ("\n", ""),
            ("\r", ""),
        ] {
            assert_eq!(
                md_url(&format!("http://p/a{special}b")),
                format!("http://p/a{written}b")
            );
        }
    }
}
