use std::path::Path;

use super::*;
use crate::channel::RobotUrl;
use crate::config::Profile;

const FIXTURE: &str = include_str!("../../tests/data/mixed_firing_resolved.json");

fn config(profiles: &[(&str, Profile)], templates_dir: Option<&Path>) -> Config {
    let mut config = Config::from_yaml("{}", Path::new("profiles.yaml")).unwrap();
    config.templates_dir = templates_dir.map(Path::to_path_buf);
    for (name, profile) in profiles {
        config.profiles.insert((*name).to_owned(), profile.clone());
    }
    config
}

fn profile(message: MessageKind) -> Profile {
    let url = RobotUrl::parse("http://127.0.0.1:1/robot/send?access_token=t", None).unwrap();
    Profile {
        message,
        ..Profile::with_url(url)
    }
}

fn now() -> DateTime<Utc> {
    "2026-11-25T04:06:31Z".parse().unwrap()
}

fn render(config: &Config, name: &str) -> Rendered {
    let notification: Notification = serde_json::from_str(FIXTURE).unwrap();
    let renderer = Renderer::new(config).unwrap();
    renderer.render(name, &notification, now()).unwrap()
}

#[test]
fn the_builtin_templates_show_firing_and_resolved_apart() {
    let config = config(&[("md", profile(MessageKind::Markdown))], None);
    let out = render(&config, "md");
    assert_eq!(out.title, "[故障:2 恢复:1] 磁盘使用率告警");
    let firing = out.text.find("【故障】2 条告警").expect(&out.text);
    let resolved = out.text.find("【恢复】1 条告警").expect(&out.text);
    assert!(firing < resolved);
    assert!(out.text.contains("<font color=#FF0000>"), "{}", out.text);
    assert!(out.text.contains("<font color=#008000>"), "{}", out.text);
    assert!(out.fallback.is_none());
}

#[test]
fn times_are_shown_in_the_configured_zone() {
    let config = config(&[("md", profile(MessageKind::Markdown))], None);
    // 03:56:31Z is 11:56:31 in Asia/Shanghai.
    assert!(
        render(&config, "md")
            .text
            .contains("开始时间: 2026-11-25 11:56:31")
    );
}

#[test]
fn a_template_that_fails_at_render_time_falls_back_to_the_builtin() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.tera"),
        "line one\n{{ alerts[0].labels.nope.deeper }}",
    )
    .unwrap();
    let mut broken = profile(MessageKind::Text);
    broken.template = Some("broken.tera".into());
    let config = config(&[("text", broken)], Some(dir.path()));
    let out = render(&config, "text");
    let error = out.fallback.expect("fallback recorded");
    assert_eq!(error.template, "broken.tera");
    assert_eq!(error.line, Some(2));
    assert!(out.text.contains("【故障】2 条告警"), "{}", out.text);
}

#[test]
fn a_syntax_error_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.tera"), "ok\nok\n{% if %}\n").unwrap();
    let config = config(&[], Some(dir.path()));
    let errors = Renderer::new(&config).err().expect("compile error");
    assert_eq!(errors[0].template, "bad.tera");
    assert_eq!(errors[0].line, Some(3));
}

#[test]
fn a_templates_directory_file_replaces_the_builtin_default() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(MARKDOWN_FILE),
        "edited {{ alerts | length }}",
    )
    .unwrap();
    let config = config(&[("md", profile(MessageKind::Markdown))], Some(dir.path()));
    assert_eq!(render(&config, "md").text, "edited 3");
}

#[test]
fn a_custom_title_template_is_used() {
    let mut custom = profile(MessageKind::Markdown);
    custom.title = Some("{{ profile }}: {{ status }}".into());
    let config = config(&[("ops", custom)], None);
    assert_eq!(render(&config, "ops").title, "ops: firing");
}

#[test]
fn a_title_template_that_fails_is_reported_like_a_body_failure() {
    let mut custom = profile(MessageKind::Markdown);
    custom.title = Some("{{ commonLabels.nope.deeper }}".into());
    let config = config(&[("ops", custom)], None);

    let out = render(&config, "ops");

    assert_eq!(
        out.title, "[故障:2 恢复:1] 磁盘使用率告警",
        "the built-in title"
    );
    let error = out.fallback.expect("the failure is reported");
    assert_eq!(error.template, "title of profile ops");
    assert_eq!(error.line, Some(1));
    let renderer = Renderer::new(&config).unwrap();
    let error = renderer.self_test("ops", Part::Title, now()).unwrap_err();
    assert_eq!(error.template, "title of profile ops");
    renderer.self_test("ops", Part::Body, now()).unwrap();
}

#[test]
fn the_self_test_catches_a_template_that_fails_only_at_render_time() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("env.tera"),
        "{% for a in alerts %}{{ a.labels.env }}{% endfor %}",
    )
    .unwrap();
    let mut unguarded = profile(MessageKind::Text);
    unguarded.template = Some("env.tera".into());
    let config = config(&[("ops", unguarded)], Some(dir.path()));
    let renderer = Renderer::new(&config).unwrap();
    let error = renderer.self_test("ops", Part::Body, now()).unwrap_err();
    assert_eq!(error.template, "env.tera");
    assert!(
        error.message.contains("profile \"ops\""),
        "{}",
        error.message
    );
}

#[test]
fn the_builtin_templates_pass_the_self_test() {
    let config = config(
        &[
            ("md", profile(MessageKind::Markdown)),
            ("txt", profile(MessageKind::Text)),
        ],
        None,
    );
    let renderer = Renderer::new(&config).unwrap();
    for profile in ["md", "txt"] {
        for part in [Part::Title, Part::Body] {
            renderer.self_test(profile, part, now()).unwrap();
        }
    }
}

#[test]
fn missing_or_empty_labels_show_the_shipped_templates_defaults() {
    let config = config(
        &[
            ("md", profile(MessageKind::Markdown)),
            ("txt", profile(MessageKind::Text)),
        ],
        None,
    );
    let renderer = Renderer::new(&config).unwrap();
    let mut n: Notification = serde_json::from_str(FIXTURE).unwrap();
    n.group_labels = crate::alert::KeyValues::new();
    n.common_labels = crate::alert::KeyValues::new();
    for (i, alert) in n.alerts.iter_mut().enumerate() {
        // Missing on the first alert, empty on the others.
        alert.labels = crate::alert::KeyValues::new();
        if i > 0 {
            for key in ["alertname", "severity", "instance"] {
                alert.labels.insert(key, "");
            }
        }
    }
    for profile in ["md", "txt"] {
        let out = renderer.render(profile, &n, now()).unwrap();
        assert!(out.fallback.is_none(), "{:?}", out.fallback);
        assert_eq!(out.title, "[故障:2 恢复:1] 告警通知");
        assert_eq!(out.text.matches("未命名告警").count(), 3, "{}", out.text);
        assert_eq!(out.text.matches("级别: 未设置").count(), 3, "{}", out.text);
        // Markdown escapes a lone "-" (it would start a list item).
        let host = if profile == "md" {
            "主机: \\-"
        } else {
            "主机: -"
        };
        assert_eq!(out.text.matches(host).count(), 3, "{}", out.text);
    }
}
