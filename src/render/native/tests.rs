//! The native renders must be byte for byte what Tera makes of the shipped templates. Tera
//! renders copies that differ only by a trailing comment (so they are not recognised as
//! shipped); both render thousands of generated notifications full of awkward values.

use std::path::Path;

use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};

use crate::alert::{Alert, KeyValues, LeftOut, Notification, Status, zero_time};
use crate::config::Config;
use crate::render::{
    BUILTIN_MARKDOWN, BUILTIN_TEXT, BUILTIN_TITLE, MARKDOWN_FILE, Renderer, TEXT_FILE, TITLE_FILE,
};

/// Values that exercise escaping, trimming, emptiness and multi-line text.
const VALUES: &[&str] = &[
    "",
    "wms",
    "  padded  ",
    "node_exporter",
    "_lead",
    "# heading",
    "- item",
    "1. first",
    "===",
    "<b>html</b> & \"quotes\"",
    "a&amp;b",
    "[x](http://evil)",
    "**bold** ~~gone~~",
    "C:\\data \\*",
    "line one\nline two\n\n  - three",
    "使用超过 85% (当前值: 91)",
    "192.168.10.21:9100",
    "tab\tand\r\nCRLF",
];

const URLS: &[&str] = &[
    "",
    "http://prometheus-0:9090/graph?g0.expr=up&g0.tab=1",
    " http://x/a b(c)<d>\n ",
    "http://127.0.0.1:19093",
];

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

struct Gen {
    rng: fastrand::Rng,
    now: DateTime<Utc>,
}

impl Gen {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.rng.usize(..from.len())]
    }

    fn map(&mut self, keys: &[&'static str]) -> KeyValues<'static> {
        let mut map = KeyValues::new();
        for key in keys {
            if self.rng.u8(..3) > 0 {
                map.insert(*key, self.pick(VALUES));
            }
        }
        map
    }

    fn time(&mut self) -> DateTime<FixedOffset> {
        if self.rng.u8(..8) == 0 {
            return zero_time();
        }
        let offset =
            FixedOffset::east_opt(self.rng.i32(-12..=14) * 3600 + self.rng.i32(0..2) * 1800)
                .unwrap();
        let seconds = self.rng.i64(-400_000..200);
        let nanos = self.rng.u32(..1_000_000_000);
        let time = self.now + Duration::seconds(seconds) + Duration::nanoseconds(nanos.into());
        offset.from_utc_datetime(&time.naive_utc())
    }

    fn alert(&mut self) -> Alert<'static> {
        let status = if self.rng.bool() {
            Status::Firing
        } else {
            Status::Resolved
        };
        Alert {
            status,
            labels: self.map(LABELS),
            annotations: self.map(ANNOTATIONS),
            starts_at: self.time(),
            ends_at: self.time(),
            generator_url: self.pick(URLS).into(),
            fingerprint: "".into(),
        }
    }

    fn notification(&mut self) -> Notification<'static> {
        let count = self.rng.usize(1..6);
        Notification {
            alerts: (0..count).map(|_| self.alert()).collect(),
            group_labels: self.map(&["alertname"]),
            common_labels: self.map(&["alertname", "project"]),
            external_url: self.pick(URLS).into(),
            truncated_alerts: if self.rng.u8(..4) == 0 { 3 } else { 0 },
            // As a cut copy has them: some alerts of either status left out.
            left_out: if self.rng.u8(..4) == 0 {
                LeftOut {
                    firing: self.rng.usize(..3),
                    resolved: self.rng.usize(..3),
                }
            } else {
                LeftOut::default()
            },
            ..Notification::default()
        }
    }
}

fn config(dir: Option<&Path>, timezone: &str) -> Config {
    let yaml = format!(
        "timezone: {timezone}\nprofiles:\n  md:\n    url: http://127.0.0.1:1/robot/send?access_token=t\n  txt:\n    url: http://127.0.0.1:1/robot/send?access_token=t\n    message: text\n"
    );
    let mut config = Config::from_yaml(&yaml, Path::new("profiles.yaml")).unwrap();
    config.templates_dir = dir.map(Path::to_path_buf);
    config
}

/// A templates directory with copies of the shipped templates that Tera must render (each
/// differs from the shipped text by a trailing comment).
fn edited_copies() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (file, text) in [
        (MARKDOWN_FILE, BUILTIN_MARKDOWN),
        (TEXT_FILE, BUILTIN_TEXT),
        (TITLE_FILE, BUILTIN_TITLE),
    ] {
        std::fs::write(dir.path().join(file), format!("{text}{{# edited #}}")).unwrap();
    }
    dir
}

#[test]
fn native_renders_match_tera_on_generated_notifications() {
    let dir = edited_copies();
    let mut cases = 0;
    for timezone in ["Asia/Shanghai", "UTC", "America/New_York"] {
        let native_config = config(None, timezone);
        let tera_config = config(Some(dir.path()), timezone);
        let native = Renderer::new(&native_config).unwrap();
        let tera = Renderer::new(&tera_config).unwrap();
        for profile in ["md", "txt"] {
            assert!(native.templates(profile).unwrap().native_body.is_some());
            assert!(tera.templates(profile).unwrap().native_body.is_none());
            assert!(!tera.templates(profile).unwrap().native_title);
        }
        let now =
            Utc.with_ymd_and_hms(2026, 11, 25, 4, 6, 31).unwrap() + Duration::milliseconds(731);
        let mut generator = Gen {
            rng: fastrand::Rng::with_seed(20261125),
            now,
        };
        for _ in 0..700 {
            let n = generator.notification();
            for profile in ["md", "txt"] {
                let by_tera = tera.render(profile, &n, now).unwrap();
                let by_rust = native.render(profile, &n, now).unwrap();
                assert!(by_tera.fallback.is_none(), "{:?}", by_tera.fallback);
                assert_eq!(by_rust.title, by_tera.title, "{profile} {timezone}: {n:#?}");
                assert_eq!(by_rust.text, by_tera.text, "{profile} {timezone}: {n:#?}");
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 4200);
}

#[test]
fn only_the_exact_shipped_text_renders_natively() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(MARKDOWN_FILE), BUILTIN_MARKDOWN).unwrap();
    std::fs::write(dir.path().join(TEXT_FILE), "edited {{ alerts | length }}").unwrap();
    let config = config(Some(dir.path()), "UTC");
    let renderer = Renderer::new(&config).unwrap();
    let templates = |p: &str| renderer.templates(p).unwrap();
    assert_eq!(templates("md").native_body, Some(super::Body::Markdown));
    assert!(templates("md").native_title);
    assert_eq!(templates("txt").native_body, None);
    let n: Notification =
        serde_json::from_str(include_str!("../../../tests/data/firing_single.json")).unwrap();
    let out = renderer.render("txt", &n, Utc::now()).unwrap();
    assert_eq!(out.text, "edited 1");
}

#[test]
fn a_time_late_in_year_9999_shows_9999_both_natively_and_by_tera() {
    let dir = edited_copies();
    let native_config = config(None, "Asia/Tokyo");
    let tera_config = config(Some(dir.path()), "Asia/Tokyo");
    let native = Renderer::new(&native_config).unwrap();
    let tera = Renderer::new(&tera_config).unwrap();
    let mut n: Notification =
        serde_json::from_str(include_str!("../../../tests/data/firing_single.json")).unwrap();
    n.alerts[0].starts_at = DateTime::parse_from_rfc3339("9999-12-31T23:00:00Z").unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 4, 6, 31).unwrap();
    for profile in ["md", "txt"] {
        let by_rust = native.render(profile, &n, now).unwrap();
        let by_tera = tera.render(profile, &n, now).unwrap();
        assert_eq!(by_rust.text, by_tera.text, "{profile}");
        assert!(by_rust.text.contains("9999-12-31 23:59:59"), "{profile}");
        assert!(!by_rust.text.contains("10000"), "{profile}");
    }
}
