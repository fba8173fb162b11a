//! The captured Alertmanager payloads composed through every channel's default templates, by
//! Tera as every template is, compared with golden files in `tests/golden/` (DingTalk, and
//! plain text, which every channel shares) and `tests/golden/wecom/`, `tests/golden/feishu/`:
//! once with the embedded copies (no templates directory) and once with the files of
//! `templates/` (as the shipped profiles.yaml loads them). Run with `UPDATE_GOLDEN=1` to
//! rewrite them after an intended template change, then read the diff.

use std::path::Path;

use alertrelay::alert::Notification;
use alertrelay::compose::compose;
use alertrelay::config::Config;
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
  wecom:
    url: http://127.0.0.1:1/cgi-bin/webhook/send?key=k
  wecom-txt:
    url: http://127.0.0.1:1/cgi-bin/webhook/send?key=k
    message: text
  feishu:
    url: http://127.0.0.1:1/open-apis/bot/v2/hook/t
  feishu-txt:
    url: http://127.0.0.1:1/open-apis/bot/v2/hook/t
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
    let mut config = Config::from_yaml(YAML, Path::new("profiles.yaml")).unwrap();
    config.templates_dir = None;
    let embedded = Renderer::new(&config).unwrap();
    config.templates_dir = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"));
    let shipped = Renderer::new(&config).unwrap();
    assert!(embedded.uses_builtins("md") && !shipped.uses_builtins("md"));
    // Ten minutes after the fixtures' alerts started, so "已持续" is stable.
    let now = "2026-11-25T04:06:31Z".parse().unwrap();
    for fixture in FIXTURES {
        let text = payload(&format!("{fixture}.json"));
        let notification = Notification::from_json(text.as_bytes()).unwrap();
        for profile in ["md", "txt", "wecom", "wecom-txt", "feishu", "feishu-txt"] {
            let look = &config.profiles[profile];
            let cap = look.channel.cap(look.message);
            for renderer in [&embedded, &shipped] {
                let composed = compose(renderer, profile, &notification, now, cap).unwrap();
                assert!(
                    composed.fallback.is_none() && composed.omitted == 0,
                    "{fixture}/{profile}: {composed:?}"
                );
                // DingTalk's title is part of its golden file; WeCom shows none, and Feishu's
                // is the card's header, built by code around the same title template.
                let (name, golden) = match profile {
                    "md" => (
                        format!("{fixture}.md"),
                        format!("# title: {}\n{}\n", composed.title, composed.text),
                    ),
                    "txt" | "wecom-txt" | "feishu-txt" => (
                        format!("{fixture}.txt"),
                        format!("# title: {}\n{}\n", composed.title, composed.text),
                    ),
                    channel => (
                        format!("{channel}/{fixture}.md"),
                        format!("{}\n", composed.text),
                    ),
                };
                check_golden(&name, &golden);
            }
        }
    }
}
