//! The captured Alertmanager payloads rendered through both built-in templates, compared with
//! golden files in `tests/golden/`. Run with `UPDATE_GOLDEN=1` to rewrite them after an
//! intended template change, then read the diff.

use std::path::Path;

use alertrelay::alert::Notification;
use alertrelay::config::Config;
use alertrelay::dingtalk::{Body, Message};
use alertrelay::render::Renderer;

use crate::helpers::payload;

const FIXTURES: [&str; 4] = [
    "firing_single",
    "firing_group",
    "resolved",
    "mixed_firing_resolved",
];

const YAML: &str = "\
profiles:
  md:
    url: http://127.0.0.1:1/robot/send?access_token=t
  txt:
    url: http://127.0.0.1:1/robot/send?access_token=t
    message: text
";

fn check_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert_eq!(actual, expected, "{name} differs from its golden file");
}

#[test]
fn captured_payloads_render_as_their_golden_files() {
    let config = Config::from_yaml(YAML, Path::new("profiles.yaml")).unwrap();
    let renderer = Renderer::new(&config).unwrap();
    // Ten minutes after the fixtures' alerts started, so "已持续" is stable.
    let now = "2026-11-25T04:06:31Z".parse().unwrap();
    for fixture in FIXTURES {
        let text = payload(&format!("{fixture}.json"));
        let notification: Notification = serde_json::from_str(&text).unwrap();
        for (profile, ext) in [("md", "md"), ("txt", "txt")] {
            let rendered = renderer.render(profile, &notification, now).unwrap();
            assert!(
                rendered.fallback.is_none(),
                "{fixture}/{profile}: {:?}",
                rendered.fallback
            );
            let body = Body::new(&Message {
                kind: config.profiles[profile].message,
                title: &rendered.title,
                text: &rendered.text,
                mention: &config.profiles[profile].mention,
            });
            assert!(body.to_bytes().len() < 20_000);
            let golden = format!("# title: {}\n{}\n", rendered.title, rendered.text);
            check_golden(&format!("{fixture}.{ext}"), &golden);
        }
    }
}

#[test]
fn the_shipped_templates_are_the_embedded_ones() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    for (file, embedded) in [
        ("default.md.tera", alertrelay::render::BUILTIN_MARKDOWN),
        ("default.txt.tera", alertrelay::render::BUILTIN_TEXT),
        ("title.tera", alertrelay::render::BUILTIN_TITLE),
    ] {
        assert_eq!(
            std::fs::read_to_string(dir.join(file)).unwrap(),
            embedded,
            "{file}"
        );
    }
}
