//! Property tests for the two parsers that take text from outside: the webhook payload
//! (any bytes, and well-shaped payloads full of hostile text) and `profiles.yaml` (any text,
//! and YAML built from the keys and values the loader knows). Each property runs a bounded
//! number of cases so that all of them together stay within a few seconds in debug builds.
//! Rendering and the cut to the cap have their own modules.

mod cut;
pub(crate) mod render;

use alertrelay::alert::Notification;
use alertrelay::config::{Config, ConfigError};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::helpers::payload;

/// Cases per property: enough to reach the odd corners, few enough for a debug build. A
/// failure is not saved to a file: it becomes a named unit test beside the code it breaks.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text an alert might carry to break a parser, a template or a page: quotes, escapes,
/// NULs, controls, markup, template syntax, bidi overrides, astral characters.
pub(crate) const HOSTILE: &[&str] = &[
    "\"",
    "\\",
    "\0",
    "\n",
    "\r\n",
    "\t",
    "\u{7f}",
    "\u{202e}",
    "\u{feff}",
    "\u{10ffff}",
    "😀",
    "故障",
    "</script>",
    "<font color=#f00>",
    "{{",
    "}}",
    "{%",
    "%}",
    "[a](javascript:x)",
    "![i](data:x)",
    "&amp;",
    "%s",
    "${x}",
    "'",
    "`",
    "|",
    "\u{2028}",
];

/// [`HOSTILE`] pieces joined or repeated, or any string.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        vec(prop::sample::select(HOSTILE), 0..24).prop_map(|p| p.concat()),
        (prop::sample::select(HOSTILE), 1usize..4096).prop_map(|(p, n)| p.repeat(n)),
    ]
}

/// An RFC 3339 time as Go writes it: years 1..9999, 0 to 9 fractional digits, any offset.
fn go_time() -> impl Strategy<Value = String> {
    (
        (1u32..=9999, 1u32..=12, 1u32..=28),
        (0u32..24, 0u32..60, 0u32..60),
        (0u32..1_000_000_000, 0usize..=9),
        prop_oneof![
            Just("Z".to_owned()),
            (prop::bool::ANY, 0u32..24, 0u32..60)
                .prop_map(|(east, h, m)| format!("{}{h:02}:{m:02}", if east { '+' } else { '-' })),
        ],
    )
        .prop_map(|((y, mo, d), (h, mi, s), (nanos, digits), zone)| {
            let fraction = if digits == 0 {
                String::new()
            } else {
                format!(".{:09}", nanos)[..=digits].to_owned()
            };
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{fraction}{zone}")
        })
}

/// Labels or annotations: hostile keys and values, each key once (as a JSON object has).
fn key_values() -> impl Strategy<Value = std::collections::BTreeMap<String, String>> {
    btree_map(hostile_text(), hostile_text(), 0..6)
}

/// One alert as Alertmanager shapes it, its text hostile, its times valid.
fn alert() -> impl Strategy<Value = Value> {
    (
        prop::bool::ANY,
        key_values(),
        key_values(),
        go_time(),
        go_time(),
        hostile_text(),
    )
        .prop_map(|(firing, labels, annotations, starts, ends, url)| {
            json!({
                "status": if firing { "firing" } else { "resolved" },
                "labels": labels, "annotations": annotations,
                "startsAt": starts, "endsAt": ends,
                "generatorURL": url, "fingerprint": "0123456789abcdef",
            })
        })
}

/// The sample webhook body with a few bytes inserted, removed or replaced.
fn mangled_payload() -> impl Strategy<Value = Vec<u8>> {
    let body = payload("firing_single.json").into_bytes();
    let edits = vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..8);
    edits.prop_map(move |edits| {
        let mut bytes = body.clone();
        for (at, op, byte) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 => bytes.insert(i, byte),
                1 if i < bytes.len() => drop(bytes.remove(i)),
                _ if i < bytes.len() => bytes[i] = byte,
                _ => bytes.push(byte),
            }
        }
        bytes
    })
}

/// `alerts` nested in as many arrays or objects as a stack could not hold without the
/// parser's depth limit.
fn deep_payload() -> impl Strategy<Value = Vec<u8>> {
    (1usize..20_000, prop::bool::ANY).prop_map(|(depth, objects)| {
        let (open, close) = if objects {
            ("{\"a\":", "}")
        } else {
            ("[", "]")
        };
        format!(
            "{{\"alerts\":{}0{}}}",
            open.repeat(depth),
            close.repeat(depth)
        )
        .into_bytes()
    })
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn any_bytes_are_a_payload_or_an_error_and_never_a_panic(
        bytes in prop_oneof![vec(any::<u8>(), 0..512), mangled_payload(), deep_payload()]
    ) {
        match Notification::from_json(&bytes) {
            Ok(notification) => prop_assert!(!notification.alerts.is_empty()),
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn payloads_full_of_hostile_text_parse_and_keep_every_string(
        alerts in vec(alert(), 1..5),
        common in key_values(),
        external in hostile_text(),
    ) {
        let body = json!({
            "receiver": "ops", "status": "firing", "alerts": alerts,
            "groupLabels": {}, "commonLabels": common, "commonAnnotations": {},
            "externalURL": external, "version": "4", "groupKey": "{}:{}",
        });
        let bytes = serde_json::to_vec(&body).unwrap();

        let notification = Notification::from_json(&bytes).map_err(|e| {
            TestCaseError::fail(format!("{e}"))
        })?;

        prop_assert_eq!(notification.alerts.len(), alerts.len());
        prop_assert_eq!(&*notification.external_url, external.as_str());
        for (parsed, sent) in notification.alerts.iter().zip(&alerts) {
            for field in ["labels", "annotations"] {
                let map = if field == "labels" { &parsed.labels } else { &parsed.annotations };
                let got: Vec<(&str, &str)> = map.iter().collect();
                let want: Vec<(&str, &str)> = sent[field]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
                    .collect();
                prop_assert_eq!(got, want);
            }
            prop_assert_eq!(&*parsed.generator_url, sent["generatorURL"].as_str().unwrap());
            let starts = sent["startsAt"].as_str().unwrap();
            prop_assert_eq!(
                parsed.starts_at,
                chrono::DateTime::parse_from_rfc3339(starts).unwrap(),
                "{}", starts
            );
        }
    }
}

/// Keys the loader knows (and a few it does not), at the top level and in a profile.
const TOP_KEYS: &[&str] = &[
    "profiles",
    "templates",
    "timeout",
    "max_wait",
    "rate_limit",
    "retries",
    "nope",
];
const PROFILE_KEYS: &[&str] = &[
    "url",
    "secret",
    "secret_file",
    "message",
    "template",
    "title",
    "mention",
    "rate_limit",
    "timeout",
    "extra",
];
/// Values, right and wrong, for any of those keys.
const VALUES: &[&str] = &[
    "http://127.0.0.1:9/robot/send?access_token=t",
    "https://oapi.dingtalk.com/robot/send?access_token=abc",
    "ftp://x/y",
    "not a url",
    "''",
    "~",
    "[]",
    "{}",
    "0",
    "-1",
    "99999999999999999999999",
    "1.5",
    "2s",
    "0s",
    "100000000h",
    "true",
    "markdown",
    "text",
    "SECxyz",
    "default.md.tera",
    "../../etc/passwd",
    "\"\\u0000\"",
    "&anchor x",
    "*anchor",
    "!!binary aGk=",
    "{ mobiles: [\"13800000000\"], all: yes }",
    "[1, [2, [3]]]",
    "|\n      block",
    "\"故障\"",
];

/// A line of a profile: a known key, maybe a wrong indent, and a value.
fn profile_line() -> impl Strategy<Value = String> {
    (
        prop::sample::select(PROFILE_KEYS),
        prop::sample::select(VALUES),
        prop_oneof![4 => Just("    "), 1 => Just("   "), 1 => Just("\t"), 1 => Just("      ")],
    )
        .prop_map(|(key, value, indent)| format!("{indent}{key}: {value}\n"))
}

/// YAML shaped like profiles.yaml: top-level keys, profiles with odd names and lines.
fn profiles_yaml() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("ops".to_owned()),
        Just("wms.prod".to_owned()),
        Just("a b".to_owned()),
        Just("\"\"".to_owned()),
        Just("页".to_owned()),
        "[a-z_.-]{1,8}",
    ];
    let profile = (name, vec(profile_line(), 0..6))
        .prop_map(|(name, lines)| format!("  {name}:\n{}", lines.concat()));
    let top = (prop::sample::select(TOP_KEYS), prop::sample::select(VALUES))
        .prop_map(|(k, v)| format!("{k}: {v}\n"));
    (vec(top, 0..3), prop::bool::ANY, vec(profile, 0..4)).prop_map(|(top, with, profiles)| {
        let mut text = top.concat();
        if with {
            text.push_str("profiles:\n");
            text.push_str(&profiles.concat());
        }
        text
    })
}

/// How many lines YAML sees: it also breaks lines at a lone CR, NEL, LS and PS.
pub(crate) fn yaml_lines(text: &str) -> usize {
    let breaks = text.replace("\r\n", "\n");
    1 + breaks
        .chars()
        .filter(|c| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'))
        .count()
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn any_yaml_is_a_config_or_errors_that_name_the_file_and_a_line_in_it(
        text in prop_oneof![any::<String>(), vec(hostile_text(), 0..4).prop_map(|t| t.concat()), profiles_yaml()]
    ) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("profiles.yaml");
        let name = file.display().to_string();
        let lines = yaml_lines(&text);

        match Config::from_yaml(&text, &file) {
            // No profiles is no error here: `--ding.profile` flags may add them.
            Ok(_) => {}
            Err(ConfigError::Invalid(problems)) => {
                prop_assert!(!problems.is_empty());
                for problem in problems {
                    prop_assert_eq!(&problem.file, &name);
                    if let Some(line) = problem.line {
                        prop_assert!((1..=lines + 1).contains(&line), "line {} of {}: {}", line, lines, problem);
                    }
                    prop_assert!(!problem.message.is_empty());
                }
            }
            Err(other) => prop_assert!(false, "{other}"),
        }
    }
}

/// Found by the property above: YAML text that the parser reads as a second document
/// (`---` twice, or anything after a closed flow mapping or an anchor) was refused without
/// a line, so the operator was not told where to look.
#[test]
fn text_after_the_first_yaml_document_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profiles.yaml");
    let unplaced: Vec<String> = ["---\n---\n", "{}\nx", "&m]"]
        .into_iter()
        .filter_map(|text| match Config::from_yaml(text, &file) {
            Err(ConfigError::Invalid(problems)) if problems.iter().all(|p| p.line.is_some()) => {
                None
            }
            other => Some(format!("{text:?}: {:?}", other.map(|_| ()))),
        })
        .collect();
    assert!(unplaced.is_empty(), "{unplaced:#?}");
}
