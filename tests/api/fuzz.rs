//! Bounded fuzzing on stable Rust with `arbtest`: random bytes, shaped by `arbitrary` into raw
//! bytes, edited samples and token soup, fed for a fixed time to the webhook parser and
//! compose, and to the config loader. A failure prints its seed; replay it with
//! `ARBTEST_SEED=0x… cargo test --test api fuzz::` and make it a named unit test.

use alertrelay::alert::Notification;
use alertrelay::channel::dingtalk::MAX_BODY_BYTES;
use alertrelay::compose::compose;
use alertrelay::config::{Config, ConfigError};
use arbtest::arbitrary::{Result, Unstructured};
use arbtest::arbtest;
use serde_json::{Value, json};

use crate::helpers::payload;
use crate::properties::render::{RENDERER, now};
use crate::properties::{HOSTILE, yaml_lines};

/// Time each fuzz target runs for: the two together stay well within the test script's
/// budget for property tests and fuzzing.
const BUDGET_MS: u64 = 3_000;

/// `base` with a few bytes inserted, removed or replaced.
fn edited(u: &mut Unstructured, base: &[u8]) -> Result<Vec<u8>> {
    let mut bytes = base.to_vec();
    for _ in 0..u.int_in_range(1..=8)? {
        let at = u.int_in_range(0..=bytes.len())?;
        let byte: u8 = u.arbitrary()?;
        match u.int_in_range(0..=2)? {
            0 => bytes.insert(at, byte),
            1 if at < bytes.len() => drop(bytes.remove(at)),
            _ if at < bytes.len() => bytes[at] = byte,
            _ => bytes.push(byte),
        }
    }
    Ok(bytes)
}

/// Pieces chosen at random and joined, with arbitrary text between some of them.
fn soup(u: &mut Unstructured, pieces: &[&str]) -> Result<String> {
    let mut text = String::new();
    for _ in 0..u.int_in_range(0..=64)? {
        if u.ratio(1, 8)? {
            text.push_str(u.arbitrary::<&str>()?);
        } else {
            text.push_str(u.choose(pieces)?);
        }
    }
    Ok(text)
}

/// JSON tokens and the payload's own keys and values, to reach past the first syntax check.
const JSON_PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"alerts\"",
    "\"status\"",
    "\"labels\"",
    "\"annotations\"",
    "\"startsAt\"",
    "\"endsAt\"",
    "\"generatorURL\"",
    "\"externalURL\"",
    "\"groupLabels\"",
    "\"commonLabels\"",
    "\"truncatedAlerts\"",
    "\"alertname\"",
    "\"summary\"",
    "\"firing\"",
    "\"resolved\"",
    "\"2026-11-25T04:06:31Z\"",
    "\"0001-01-01T00:00:00Z\"",
    "\"9999-12-31T23:59:59+14:00\"",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "\"#\\n- x\\r> y\"",
    "null",
    "true",
    "0",
    "-1",
    "1e999",
    "18446744073709551616",
    "\"\"",
    " ",
    "\n",
];

/// Text for a label, an annotation or a URL: arbitrary, hostile pieces joined, or one piece
/// repeated past the cap.
fn text(u: &mut Unstructured) -> Result<String> {
    Ok(match u.int_in_range(0..=3)? {
        0 => u.arbitrary()?,
        1 => u.choose(HOSTILE)?.repeat(u.int_in_range(1..=1_500)?),
        _ => soup(u, HOSTILE)?,
    })
}

/// Labels or annotations, with the keys the built-in template shows among others.
fn key_values(u: &mut Unstructured) -> Result<serde_json::Map<String, Value>> {
    const KEYS: &[&str] = &[
        "alertname",
        "severity",
        "instance",
        "summary",
        "description",
    ];
    let mut map = serde_json::Map::new();
    for _ in 0..u.int_in_range(0..=6)? {
        let key = match u.ratio(3, 4)? {
            true => (*u.choose(KEYS)?).to_owned(),
            false => u.arbitrary()?,
        };
        map.insert(key, Value::String(text(u)?));
    }
    Ok(map)
}

/// A payload of the right shape with fuzzed text and counts, so most runs reach compose.
fn shaped_payload(u: &mut Unstructured) -> Result<Vec<u8>> {
    const TIMES: &[&str] = &[
        "2026-11-25T04:06:31Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-12:00",
        "2026-11-25T12:06:31.123456789+08:00",
    ];
    let mut alerts = Vec::new();
    for _ in 0..u.int_in_range(1..=12)? {
        alerts.push(json!({
            "status": *u.choose(&["firing", "resolved"])?,
            "labels": key_values(u)?,
            "annotations": key_values(u)?,
            "startsAt": *u.choose(TIMES)?,
            "endsAt": *u.choose(TIMES)?,
            "generatorURL": text(u)?,
        }));
    }
    let body = json!({
        "alerts": alerts,
        "groupLabels": key_values(u)?,
        "commonLabels": key_values(u)?,
        "externalURL": text(u)?,
        "truncatedAlerts": u.int_in_range(0..=3u64)?,
    });
    Ok(serde_json::to_vec(&body).unwrap_or_default())
}

fn payload_bytes(u: &mut Unstructured, sample: &[u8]) -> Result<Vec<u8>> {
    Ok(match u.int_in_range(0..=3)? {
        0 => u.arbitrary::<Vec<u8>>()?,
        1 => edited(u, sample)?,
        2 => format!("{{\"alerts\":[{}", soup(u, JSON_PIECES)?).into_bytes(),
        _ => shaped_payload(u)?,
    })
}

#[test]
fn fuzzed_payloads_are_refused_or_composed_under_the_cap_without_a_panic() {
    let sample = payload("firing_single.json").into_bytes();
    let renderer = &RENDERER;
    arbtest(|u| {
        let bytes = payload_bytes(u, &sample)?;
        let Ok(notification) = Notification::from_json(&bytes) else {
            return Ok(());
        };
        let composed = compose(renderer, "md", &notification, now(), MAX_BODY_BYTES)
            .expect("the built-in markdown template never fails");
        let body = composed.body();
        assert!(body.len() <= MAX_BODY_BYTES, "{} bytes", body.len());
        serde_json::from_slice::<Value>(&body).expect("the body is JSON");
        Ok(())
    })
    .budget_ms(BUDGET_MS)
    .run();
}

/// YAML syntax and the loader's keys and values.
const YAML_PIECES: &[&str] = &[
    "profiles:",
    "\n",
    "\n  ",
    "\n    ",
    "  ",
    " ",
    "ops:",
    "url:",
    "secret:",
    "message:",
    "template:",
    "title:",
    "mention:",
    "rate_limit:",
    "timeout:",
    "max_wait:",
    "timezone:",
    "templates:",
    "http://127.0.0.1:9/robot/send?access_token=t",
    "markdown",
    "text",
    "2s",
    "Asia/Shanghai",
    "---",
    "...",
    "- ",
    "? ",
    ": ",
    "&a ",
    "*a",
    "!!str ",
    "!!binary ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "|",
    ">",
    "\"",
    "'",
    "#",
    "\t",
    "\r",
    "\u{feff}",
    "${X}",
    "${X:-d}",
    "~",
    "null",
    "0",
    "-1",
    "1e9",
];

#[test]
fn fuzzed_yaml_is_a_config_or_errors_naming_a_line_of_the_file() {
    let sample = crate::helpers::ops_yaml("    message: text\n")
        .replace("{robot}", "127.0.0.1:9")
        .into_bytes();
    let file = std::path::Path::new("/nonexistent/profiles.yaml");
    arbtest(|u| {
        let text = match u.int_in_range(0..=2)? {
            0 => u.arbitrary::<String>()?,
            1 => String::from_utf8_lossy(&edited(u, &sample)?).into_owned(),
            _ => soup(u, YAML_PIECES)?,
        };
        match Config::from_yaml(&text, file) {
            Ok(_) => {}
            Err(ConfigError::Invalid(problems)) => {
                let lines = yaml_lines(&text);
                for problem in problems {
                    assert_eq!(problem.file, file.display().to_string());
                    assert!(!problem.message.is_empty());
                    let line = problem.line.unwrap_or(1);
                    assert!((1..=lines + 1).contains(&line), "{problem} of {lines}");
                }
            }
            Err(other) => panic!("{other}"),
        }
        Ok(())
    })
    .budget_ms(BUDGET_MS)
    .run();
}
