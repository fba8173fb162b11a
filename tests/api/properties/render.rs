//! Property tests for rendering hostile label and annotation text through the two shipped
//! templates (markdown and text): never a panic or a fallback, a valid DingTalk body within the cap, and markdown that stays inside its line
//! (line by line, and as CommonMark parses it).

use std::sync::LazyLock;

use alertrelay::alert::{Alert, KeyValues, Notification, Status, zero_time};
use alertrelay::channel::dingtalk::MAX_BODY_BYTES;
use alertrelay::compose::{Composed, compose};
use alertrelay::config::Config;
use alertrelay::render::Renderer;
use alertrelay::render::filters::md_escape;
use chrono::{DateTime, Utc};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;

use super::{config, hostile_text};

/// The shipped templates, as profiles that name none render with.
pub(crate) static RENDERER: LazyLock<Renderer> = LazyLock::new(|| {
    let yaml = "profiles:\n  md:\n    url: http://127.0.0.1:1/robot/send?access_token=t\n  txt:\n    url: http://127.0.0.1:1/robot/send?access_token=t\n    message: text\n";
    let config = Config::from_yaml(yaml, std::path::Path::new("profiles.yaml")).unwrap();
    Renderer::new(&config).unwrap()
});

pub(crate) fn now() -> DateTime<Utc> {
    "2026-11-25T04:06:31Z".parse().unwrap()
}

/// Text meant to leave its line in markdown: every kind of line break, then what opens a
/// block at the start of a line, mixed with the generally hostile text.
fn line_breaking_text() -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        "\n",
        "\r",
        "\r\n",
        "\n\n",
        "\u{85}",
        "\u{2028}",
        " ",
        "  ",
        "    ",
        "\t",
        "#",
        "# ",
        "###",
        "> ",
        ">",
        "- ",
        "-",
        "+ ",
        "* ",
        "*",
        "1. ",
        "2) ",
        "10.",
        "===",
        "=== ",
        "---",
        "--- ",
        "```",
        "~~~",
        "___",
        "<font color=#f00>",
        "</font>",
        "<br>",
        "[x](javascript:y)",
        "**",
        "_",
        "\\",
        "&#35;",
        "x",
        "故障",
        "|a|b|",
    ];
    prop_oneof![
        2 => hostile_text(),
        3 => vec(select(PIECES), 0..16).prop_map(|p| p.concat()),
        1 => Just(String::new()),
    ]
}

/// The labels and annotations the templates show, and one they do not, each maybe absent.
const LABELS: &[&str] = &[
    "alertname",
    "severity",
    "instance",
    "name",
    "hostname",
    "project",
    "env",
    "job",
];
const ANNOTATIONS: &[&str] = &["summary", "description", "info", "runbook"];

fn key_values(keys: &'static [&'static str]) -> impl Strategy<Value = KeyValues<'static>> {
    vec((select(keys), line_breaking_text()), 0..8).prop_map(|pairs| {
        let mut map = KeyValues::new();
        for (key, value) in pairs {
            map.insert(key, value);
        }
        map
    })
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("http://prometheus-0:9090/graph?g0.expr=up&g0.tab=1".to_owned()),
        line_breaking_text(),
    ]
}

fn alert() -> impl Strategy<Value = Alert<'static>> {
    let times = (0i64..86_400 * 400, 0i64..86_400 * 30);
    (
        any::<bool>(),
        key_values(LABELS),
        key_values(ANNOTATIONS),
        url(),
        times,
    )
        .prop_map(|(firing, labels, annotations, url, (ago, lasted))| {
            let starts = now() - chrono::Duration::seconds(ago);
            let ends = starts + chrono::Duration::seconds(lasted);
            Alert {
                status: if firing {
                    Status::Firing
                } else {
                    Status::Resolved
                },
                labels,
                annotations,
                starts_at: starts.fixed_offset(),
                ends_at: if firing {
                    zero_time()
                } else {
                    ends.fixed_offset()
                },
                generator_url: url.into(),
                fingerprint: "0123456789abcdef".into(),
            }
        })
}

fn notification() -> impl Strategy<Value = Notification<'static>> {
    (
        vec(alert(), 0..4),
        key_values(&["alertname"]),
        key_values(&["alertname", "job"]),
        url(),
        prop_oneof![3 => Just(0u64), 1 => 1u64..1000],
    )
        .prop_map(
            |(alerts, group_labels, common_labels, external, truncated)| {
                let status = if alerts.iter().any(|a| a.status == Status::Firing) {
                    Status::Firing
                } else {
                    Status::Resolved
                };
                Notification {
                    alerts,
                    status,
                    group_labels,
                    common_labels,
                    external_url: external.into(),
                    truncated_alerts: truncated,
                    ..Notification::default()
                }
            },
        )
}

/// The starts of the lines `default.md.tera` and the cut write. Any other line of a
/// markdown message continues a multi-line value (each line break of a value becomes a
/// hard break), so it must not open a block.
const TEMPLATE_LINES: &[&str] = &[
    "### <font color=",
    "#### <font color=",
    "- 级别: ",
    "- 主机: ",
    "- 主机名: ",
    "- 项目: ",
    "- 环境: ",
    "- 摘要: ",
    "- 详情: ",
    "- 附加信息: ",
    "- 开始时间: ",
    "- 恢复时间: ",
    "- 持续时长: ",
    "- 已持续: ",
    "- [Prometheus 图表](",
    "> 另有 ",
    "[在 Alertmanager 中查看](",
    // After an alert name ending in a line break: the heading's closing tag. (A heading
    // cannot hold a hard break, so the rest of a multi-line name shows below it, escaped.)
    "</font>",
];

/// What ends the text of an alert that was cut inside.
const CUT_MARK: &str = "\n\n…（内容过长，已截断）";

/// Whether CommonMark reads `line` as opening a block: a heading, quote, list item, setext
/// underline or thematic break, code fence or HTML block.
fn opens_a_block(line: &str) -> bool {
    let line = line.trim_start_matches([' ', '\t']);
    let spaced = |rest: &str| rest.is_empty() || rest.starts_with([' ', '\t']);
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let underline = line.trim_end_matches([' ', '\t']);
    line.starts_with(['#', '>', '<'])
        || (line.starts_with(['-', '+', '*']) && spaced(&line[1..]))
        || (digits > 0 && line[digits..].starts_with(['.', ')']) && spaced(&line[digits + 1..]))
        || (!underline.is_empty()
            && (underline.bytes().all(|b| b == b'=') || underline.bytes().all(|b| b == b'-')))
        || line.starts_with("```")
        || line.starts_with("~~~")
}

/// The lines of markdown as CommonMark splits them: at LF, CRLF and a lone CR.
fn markdown_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
        .flat_map(|line| line.strip_suffix('\r').unwrap_or(line).split('\r'))
}

/// A value as the template shows it: labels whole, annotations trimmed.
fn shown<'v>(alert: &'v Alert, key: &str) -> Option<&'v str> {
    alert
        .labels
        .get(key)
        .or_else(|| alert.annotations.get(key).map(str::trim))
        .filter(|_| key != "job" && key != "runbook")
}

/// What every message must be, whichever template made it: a DingTalk body that parses,
/// within the cap, carrying the composed title and text; a title of one line.
fn check_body(composed: &Composed) -> Result<(), TestCaseError> {
    prop_assert!(composed.fallback.is_none(), "{:?}", composed.fallback);
    let bytes = composed.body();
    prop_assert!(bytes.len() <= MAX_BODY_BYTES, "{} bytes", bytes.len());
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| TestCaseError::fail(format!("not JSON: {e}")))?;
    let (field, content) = match body["msgtype"].as_str() {
        Some("markdown") => {
            prop_assert_eq!(body["markdown"]["title"].as_str(), Some(&*composed.title));
            ("markdown", &body["markdown"]["text"])
        }
        Some("text") => ("text", &body["text"]["content"]),
        other => return Err(TestCaseError::fail(format!("msgtype {other:?}"))),
    };
    prop_assert_eq!(content.as_str(), Some(&*composed.text), "{}", field);
    let breaks = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    prop_assert!(!composed.title.contains(breaks), "{:?}", composed.title);
    Ok(())
}

/// Markdown stays inside its line: no line a value continues opens a block, and every shown
/// value is in the text as `md_escape` writes it (when nothing was cut).
fn check_markdown(composed: &Composed, n: &Notification) -> Result<(), TestCaseError> {
    // A cut inside the text may end the last line it keeps inside a template's line start.
    let (kept, rest) = composed
        .text
        .split_once(CUT_MARK)
        .unwrap_or((&composed.text, ""));
    let last = markdown_lines(kept).last();
    for line in markdown_lines(kept).chain(markdown_lines(rest)) {
        let template = line == "---"
            || TEMPLATE_LINES
                .iter()
                .any(|t| line.trim_start().starts_with(t))
            || (Some(line) == last && TEMPLATE_LINES.iter().any(|t| t.starts_with(line)));
        prop_assert!(
            template || !opens_a_block(line),
            "{:?} in {:?}",
            line,
            composed.text
        );
    }
    if composed.omitted == 0 && composed.cut.text.is_none() {
        for alert in &n.alerts {
            for key in LABELS.iter().chain(ANNOTATIONS) {
                if let Some(value) = shown(alert, key) {
                    let escaped = md_escape(value);
                    prop_assert!(composed.text.contains(&escaped), "{}: {:?}", key, escaped);
                }
            }
        }
    }
    Ok(())
}

/// The blocks and links CommonMark finds (parsed as the preview renders DingTalk markdown)
/// are the template's: a heading per section and alert, no code block, a quote only for
/// the lines that say alerts are missing, a link only where the template writes one.
fn check_blocks(composed: &Composed, n: &Notification) -> Result<(), TestCaseError> {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let (mut headings, mut code, mut quotes, mut links) = (0, 0, 0, 0);
    for event in Parser::new_ext(&composed.text, Options::empty()) {
        match event {
            Event::Start(Tag::Heading { .. }) => headings += 1,
            Event::Start(Tag::CodeBlock(_)) => code += 1,
            Event::Start(Tag::BlockQuote(_)) => quotes += 1,
            Event::Start(Tag::Link { .. } | Tag::Image { .. }) => links += 1,
            _ => {}
        }
    }
    let sections = [Status::Firing, Status::Resolved]
        .into_iter()
        .filter(|&status| n.alerts.iter().any(|a| a.status == status))
        .count();
    let expected = sections + n.alerts.len();
    let whole = composed.omitted == 0 && composed.cut.text.is_none();
    let text = &composed.text;
    prop_assert!(headings <= expected, "{} headings in {:?}", headings, text);
    prop_assert!(
        !whole || headings == expected,
        "{} headings in {:?}",
        headings,
        text
    );
    prop_assert_eq!(code, 0, "a code block in {:?}", text);
    let missing = usize::from(n.truncated_alerts > 0) + usize::from(composed.omitted > 0);
    prop_assert!(quotes <= missing, "{} quotes in {:?}", quotes, text);
    prop_assert!(links <= n.alerts.len() + 2, "{} links in {:?}", links, text);
    Ok(())
}

/// Text messages show values as written.
fn check_text(composed: &Composed, n: &Notification) -> Result<(), TestCaseError> {
    if composed.omitted == 0 && composed.cut.text.is_none() {
        for alert in &n.alerts {
            for key in LABELS.iter().chain(ANNOTATIONS) {
                if let Some(value) = shown(alert, key) {
                    prop_assert!(composed.text.contains(value), "{}: {:?}", key, value);
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn hostile_labels_render_through_both_shipped_templates_into_valid_bodies_within_the_cap(
        n in notification()
    ) {
        for profile in ["md", "txt"] {
            let composed = compose(&RENDERER, profile, &n, now(), MAX_BODY_BYTES)
                .map_err(|e| TestCaseError::fail(format!("{profile}: {e}")))?;
            check_body(&composed)?;
            if profile == "md" {
                check_markdown(&composed, &n)?;
                check_blocks(&composed, &n)?;
            } else {
                check_text(&composed, &n)?;
            }
        }
    }
}
