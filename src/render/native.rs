//! The shipped templates (`default.md.tera`, `default.txt.tera`, `title.tera`) evaluated as
//! Rust, for speed: building Tera's context and interpreting them was two fifths of a
//! 10-alert delivery's CPU (BENCHMARKS.md). The `.tera` files stay the reference: a profile
//! renders natively only while its template's text is exactly the shipped one, so an edited
//! copy is always rendered by Tera. Tests render thousands of generated notifications both
//! ways and require the same bytes (`native/tests.rs`).

use std::fmt::Write;

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;

use super::filters::{human_duration_into, local_time_into, md_escape_into, md_url_into};
use super::{BUILTIN_MARKDOWN, BUILTIN_TEXT, BUILTIN_TITLE};
use crate::alert::{Alert, KeyValues, Notification, Status, is_zero_time};

/// A shipped body template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    /// `default.md.tera`.
    Markdown,
    /// `default.txt.tera`.
    Text,
}

impl Body {
    /// The shipped body template whose text is exactly `source`, if any.
    pub(super) fn of(source: &str) -> Option<Self> {
        if source == BUILTIN_MARKDOWN {
            Some(Self::Markdown)
        } else if source == BUILTIN_TEXT {
            Some(Self::Text)
        } else {
            None
        }
    }

    /// The body, trimmed as every render is.
    pub(super) fn render(self, n: &Notification, zone: Tz, now: DateTime<Utc>) -> String {
        let ctx = Times::new(zone, now);
        let mut out = String::with_capacity(256 + 512 * n.alerts.len());
        match self {
            Self::Markdown => markdown(n, &ctx, &mut out),
            Self::Text => text(n, &ctx, &mut out),
        }
        trimmed(out)
    }
}

/// Whether `source` is the shipped title template.
pub(super) fn is_title(source: &str) -> bool {
    source == BUILTIN_TITLE
}

/// `title.tera`: `[故障:2 恢复:1] 磁盘使用率告警`, counting alerts a cut left out.
pub(super) fn title(n: &Notification) -> String {
    let firing = n.total(Status::Firing);
    let resolved = n.total(Status::Resolved);
    let mut out = String::with_capacity(64);
    let _ = if firing > 0 {
        write!(out, "[故障:{firing}")
    } else {
        write!(out, "[恢复:{resolved}")
    };
    if firing > 0 && resolved > 0 {
        let _ = write!(out, " 恢复:{resolved}");
    }
    out.push_str("] ");
    let name = n
        .group_labels
        .get("alertname")
        .or_else(|| n.common_labels.get("alertname"))
        .unwrap_or("告警通知");
    out.push_str(name);
    trimmed(out)
}

/// The render's time zone and its `now`, at the whole second the templates see.
struct Times {
    zone: Tz,
    now: DateTime<FixedOffset>,
}

impl Times {
    fn new(zone: Tz, now: DateTime<Utc>) -> Self {
        // Templates get `now` as RFC 3339 without fractions; `since` counts from that.
        let whole = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        Self {
            zone,
            now: whole.fixed_offset(),
        }
    }

    /// `{{ time | localtime }}`: "" for Go's zero time.
    fn local(&self, time: &DateTime<FixedOffset>, out: &mut String) {
        if !is_zero_time(time) {
            local_time_into(time, self.zone, out);
        }
    }

    /// `{{ start | since(until=end) | human_duration }}`; no end (or a zero one) is now.
    fn lasted(
        &self,
        start: &DateTime<FixedOffset>,
        end: Option<&DateTime<FixedOffset>>,
        out: &mut String,
    ) {
        let seconds = if is_zero_time(start) {
            0
        } else {
            let end = end.filter(|e| !is_zero_time(e)).unwrap_or(&self.now);
            (*end - *start).num_seconds().max(0)
        };
        human_duration_into(seconds.unsigned_abs(), false, out);
    }
}

/// The two sections of both bodies: firing ones in red, resolved ones in green.
const SECTIONS: [(Status, &str, &str); 2] = [
    (Status::Firing, "故障", "#FF0000"),
    (Status::Resolved, "恢复", "#008000"),
];

/// One non-empty section of a notification.
struct Section<'n, 'a> {
    name: &'static str,
    color: &'static str,
    alerts: Vec<&'n Alert<'a>>,
    /// What the heading counts: the section's alerts, also those a cut left out.
    total: usize,
}

/// The non-empty sections, firing first, each with its alerts in payload order.
fn sections<'n, 'a>(n: &'n Notification<'a>) -> impl Iterator<Item = Section<'n, 'a>> {
    SECTIONS.into_iter().filter_map(|(status, name, color)| {
        let alerts: Vec<&Alert<'_>> = n.alerts.iter().filter(|a| a.status == status).collect();
        let section = Section {
            name,
            color,
            total: alerts.len() + n.left_out.of(status),
            alerts,
        };
        (!section.alerts.is_empty()).then_some(section)
    })
}

/// `【故障】2 条告警` after the `prefix` pieces.
fn section_heading(out: &mut String, prefix: &[&str], section: &Section<'_, '_>) {
    push(out, prefix);
    push(out, &["【", section.name, "】"]);
    let _ = write!(out, "{} 条告警", section.total);
}

/// `另有 N 条告警因 max_alerts 未列出` between `prefix` and `suffix`, when Alertmanager left
/// alerts out (the receiver's `max_alerts`).
fn truncated_line(n: &Notification, prefix: &str, suffix: &str, out: &mut String) {
    if n.truncated_alerts > 0 {
        let count = n.truncated_alerts;
        let _ = write!(
            out,
            "{prefix}另有 {count} 条告警因 max_alerts 未列出{suffix}"
        );
    }
}

fn markdown(n: &Notification, t: &Times, out: &mut String) {
    for section in sections(n) {
        section_heading(out, &["\n### <font color=", section.color, ">"], &section);
        out.push_str("</font>\n");
        for alert in &section.alerts {
            markdown_alert(alert, section.color, t, out);
        }
    }
    truncated_line(n, "\n> ", "\n", out);
    if !n.external_url.is_empty() {
        out.push_str("\n[在 Alertmanager 中查看](");
        md_url_into(&n.external_url, out);
        out.push(')');
    }
}

fn markdown_alert(alert: &Alert, color: &str, t: &Times, out: &mut String) {
    let labels = &alert.labels;
    let escaped = |out: &mut String, text: &str| md_escape_into(text, out);
    push(out, &["\n#### <font color=", color, ">"]);
    escaped(out, or(labels, "alertname", "未命名告警"));
    out.push_str("</font>\n\n- 级别: ");
    escaped(out, or(labels, "severity", "未设置"));
    out.push_str("\n- 主机: ");
    escaped(out, or(labels, "instance", "-"));
    if let Some(name) = set(labels, "name") {
        out.push_str(" (");
        escaped(out, name);
        out.push(')');
    }
    for (key, heading) in LABEL_LINES {
        if let Some(value) = set(labels, key) {
            push(out, &["\n- ", heading, ": "]);
            escaped(out, value);
        }
    }
    for (key, heading) in ANNOTATIONS {
        if let Some(value) = set(&alert.annotations, key) {
            push(out, &["\n- ", heading, ": "]);
            escaped(out, value.trim());
        }
    }
    out.push_str("\n- 开始时间: ");
    t.local(&alert.starts_at, out);
    lines_of_end(alert, t, "\n- ", out);
    if !alert.generator_url.is_empty() {
        out.push_str("\n- [Prometheus 图表](");
        md_url_into(&alert.generator_url, out);
        out.push(')');
    }
    out.push('\n');
}

fn text(n: &Notification, t: &Times, out: &mut String) {
    for section in sections(n) {
        section_heading(out, &["\n"], &section);
        for alert in &section.alerts {
            text_alert(alert, section.name, t, out);
        }
        out.push('\n');
    }
    truncated_line(n, "\n", "", out);
    if !n.external_url.is_empty() {
        out.push_str("\nAlertmanager: ");
        out.push_str(&n.external_url);
    }
}

fn text_alert(alert: &Alert, section: &str, t: &Times, out: &mut String) {
    let labels = &alert.labels;
    push(
        out,
        &[
            "\n--------------------\n",
            section,
            " | ",
            or(labels, "alertname", "未命名告警"),
            "\n级别: ",
            or(labels, "severity", "未设置"),
            "\n主机: ",
            or(labels, "instance", "-"),
        ],
    );
    if let Some(name) = set(labels, "name") {
        push(out, &[" (", name, ")"]);
    }
    for (key, heading) in LABEL_LINES {
        if let Some(value) = set(labels, key) {
            push(out, &["\n", heading, ": ", value]);
        }
    }
    for (key, heading) in ANNOTATIONS {
        if let Some(value) = set(&alert.annotations, key) {
            push(out, &["\n", heading, ": ", value.trim()]);
        }
    }
    out.push_str("\n开始时间: ");
    t.local(&alert.starts_at, out);
    lines_of_end(alert, t, "\n", out);
    if !alert.generator_url.is_empty() {
        out.push_str("\n图表: ");
        out.push_str(&alert.generator_url);
    }
}

/// The labels both bodies show on a line of their own when set, in this order.
const LABEL_LINES: [(&str, &str); 3] =
    [("hostname", "主机名"), ("project", "项目"), ("env", "环境")];

/// The annotations both bodies show, trimmed, in this order.
const ANNOTATIONS: [(&str, &str); 3] = [
    ("summary", "摘要"),
    ("description", "详情"),
    ("info", "附加信息"),
];

/// "恢复时间" and "持续时长" for a resolved alert, "已持续" for a firing one; each line
/// starts with `prefix`.
fn lines_of_end(alert: &Alert, t: &Times, prefix: &str, out: &mut String) {
    if alert.status == Status::Resolved {
        push(out, &[prefix, "恢复时间: "]);
        t.local(&alert.ends_at, out);
        push(out, &[prefix, "持续时长: "]);
        t.lasted(&alert.starts_at, Some(&alert.ends_at), out);
    } else {
        push(out, &[prefix, "已持续: "]);
        t.lasted(&alert.starts_at, None, out);
    }
}

/// Appends each piece in turn.
fn push(out: &mut String, pieces: &[&str]) {
    for piece in pieces {
        out.push_str(piece);
    }
}

/// `{{ map.key | default(value=fallback) }}`: the value when the key is present, even empty.
fn or<'a>(map: &'a KeyValues, key: &str, fallback: &'a str) -> &'a str {
    map.get(key).unwrap_or(fallback)
}

/// `{% if map.key %}`: the value when present and not empty.
fn set<'a>(map: &'a KeyValues, key: &str) -> Option<&'a str> {
    map.get(key).filter(|v| !v.is_empty())
}

/// Every render's output is trimmed (template files end in a newline).
fn trimmed(text: String) -> String {
    if text.trim().len() == text.len() {
        text
    } else {
        text.trim().to_owned()
    }
}

#[cfg(test)]
mod tests;
