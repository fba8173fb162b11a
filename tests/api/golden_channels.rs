//! The captured Alertmanager payloads composed through the WeCom and Feishu default templates
//! of `templates/` (`wecom.md.tera`, `feishu.md.tera`), compared with golden files in
//! `tests/golden/wecom/` and `tests/golden/feishu/`: each file is the body text exactly as
//! rendered, and a closing newline. Until the channels exist the templates are rendered as
//! what a profile names with `template:`, in the zone Asia/Shanghai (the default). Run with
//! `UPDATE_GOLDEN=1` to rewrite them after an intended template change, then read the diff.

use std::path::Path;

use alertrelay::alert::Notification;
use alertrelay::compose::compose;
use alertrelay::config::Config;
use alertrelay::dingtalk::MAX_BODY_BYTES;
use alertrelay::render::Renderer;

use crate::helpers::payload;

const FIXTURES: [&str; 4] = [
    "firing_single",
    "firing_group",
    "resolved",
    "mixed_firing_resolved",
];

const YAML: &str = "\
templates: templates
profiles:
  wecom:
    url: http://127.0.0.1:1/robot/send?access_token=t
    template: wecom.md.tera
  feishu:
    url: http://127.0.0.1:1/robot/send?access_token=t
    template: feishu.md.tera
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
fn captured_payloads_render_through_the_wecom_and_feishu_templates_as_their_golden_files() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles.yaml");
    let config = Config::from_yaml(YAML, &file).unwrap();
    assert_eq!(config.timezone, chrono_tz::Asia::Shanghai);
    let renderer = Renderer::new(&config).unwrap();
    // Ten minutes after the fixtures' alerts started, so "已持续" is stable.
    let now = "2026-11-25T04:06:31Z".parse().unwrap();
    for fixture in FIXTURES {
        let text = payload(&format!("{fixture}.json"));
        let notification = Notification::from_json(text.as_bytes()).unwrap();
        for profile in ["wecom", "feishu"] {
            let composed = compose(&renderer, profile, &notification, now, MAX_BODY_BYTES).unwrap();
            assert!(
                composed.fallback.is_none() && composed.omitted == 0,
                "{fixture}/{profile}: {composed:?}"
            );
            check_golden(
                &format!("{profile}/{fixture}.md"),
                &format!("{}\n", composed.text),
            );
        }
    }
}
