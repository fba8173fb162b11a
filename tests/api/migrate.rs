//! `alertrelay migrate` on prometheus-webhook-dingtalk configs written from the peer's
//! documented examples (`tests/data/migrate/`): each result passes `alertrelay check` and
//! renders the captured Alertmanager payloads with its translated templates; what cannot be
//! translated is reported with file and line; and a `targets:` file given to the gateway is
//! refused with the migrate hint.

use std::path::{Path, PathBuf};

use alertrelay::compose::compose;
use alertrelay::config::{Config, Sources};
use alertrelay::migrate::{Migration, Options, plan, write};
use alertrelay::render::Renderer;

use crate::binary::command;
use crate::helpers::data_dir;

const CAPTURED: [&str; 4] = [
    "firing_single.json",
    "firing_group.json",
    "mixed_firing_resolved.json",
    "resolved.json",
];

/// Copies `tests/data/migrate` into a fresh directory and migrates `config` there.
fn migrated(config: &str, secrets_to_env: bool) -> (tempfile::TempDir, Options, Migration) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("pwd");
    std::fs::create_dir_all(source.join("templates")).unwrap();
    let data = data_dir().join("migrate");
    for entry in walk(&data) {
        let to = source.join(entry.strip_prefix(&data).unwrap());
        std::fs::copy(&entry, to).unwrap();
    }
    let options = Options {
        from: source.join(config),
        out: dir.path().join("out/profiles.yaml"),
        secrets_to_env,
        force: false,
    };
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let migration = plan(&options).unwrap();
    write(&migration, &options).unwrap();
    (dir, options, migration)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// `alertrelay check` passes, and every profile renders every captured payload with its own
/// templates (no fallback to the built-in ones).
async fn assert_checks_and_renders(options: &Options) -> Config {
    alertrelay::sandbox::use_program(env!("CARGO_BIN_EXE_alertrelay"));
    let sources = Sources {
        file: options.out.clone(),
        file_required: true,
        flag_profiles: vec![],
    };
    let mut report = Vec::new();
    let valid = alertrelay::check::check(&sources, &mut report)
        .await
        .unwrap();
    let report = String::from_utf8(report).unwrap();
    assert!(
        valid,
        "{report}\n{}",
        std::fs::read_to_string(&options.out).unwrap()
    );
    let config = Config::load(&sources).unwrap();
    let renderer = Renderer::new(&config).unwrap();
    for profile in config.profiles.keys() {
        for name in CAPTURED {
            let body = std::fs::read(data_dir().join(name)).unwrap();
            let notification = alertrelay::alert::Notification::from_json(&body).unwrap();
            let composed = compose(
                &renderer,
                profile,
                &notification,
                chrono::Utc::now(),
                20_000,
            )
            .unwrap();
            assert!(
                composed.fallback.is_none(),
                "{profile} {name}: {:?}",
                composed.fallback
            );
            assert!(!composed.text.is_empty(), "{profile} {name}");
        }
    }
    config
}

#[tokio::test]
async fn plain_targets_become_profiles_with_their_timeout_and_the_builtin_templates() {
    let (_dir, options, migration) = migrated("plain.yml", false);

    let config = assert_checks_and_renders(&options).await;

    assert_eq!(config.timeout, std::time::Duration::from_secs(5));
    let names: Vec<&String> = config.profiles.keys().collect();
    assert_eq!(names, ["webhook1", "webhook2", "webhook_legacy"]);
    assert_eq!(
        config.profiles["webhook1"]
            .secret
            .as_ref()
            .unwrap()
            .expose(),
        "SEC000000000000000000000"
    );
    assert!(config.profiles["webhook_legacy"].template.is_none());
    let yaml = &migration.profiles_yaml;
    assert!(yaml.contains("# targets.webhook1.url"), "{yaml}");
    assert!(
        yaml.contains("prometheus-webhook-dingtalk's \"legacy.content\""),
        "{yaml}"
    );
    assert!(
        migration
            .notes
            .iter()
            .any(|n| n.contains("targets.webhook1.secret is copied into profiles.yaml in clear")),
        "{:?}",
        migration.notes
    );
}

#[tokio::test]
async fn secrets_and_mentions_carry_over_and_a_bad_mobile_is_left_out_with_a_note() {
    let (_dir, options, migration) = migrated("secret_mention.yml", false);

    let config = assert_checks_and_renders(&options).await;

    assert!(config.profiles["webhook_mention_all"].mention.all);
    assert_eq!(
        config.profiles["webhook_mention_users"].mention.mobiles,
        ["15600008827", "18900008325"]
    );
    assert!(
        migration
            .notes
            .iter()
            .any(|n| n.contains("\"156xxxx8827\" is not a mobile number")),
        "{:?}",
        migration.notes
    );
}

#[tokio::test]
async fn with_secrets_to_env_tokens_and_secrets_become_env_references_in_a_private_file() {
    let (_dir, options, migration) = migrated("secret_mention.yml", true);

    let yaml = std::fs::read_to_string(&options.out).unwrap();
    assert!(
        !yaml.contains("SECaaaa") && !yaml.contains("aaaaaaaaaaaa"),
        "{yaml}"
    );
    assert!(
        yaml.contains("access_token=${DINGTALK_WEBHOOK_MENTION_ALL_TOKEN}"),
        "{yaml}"
    );
    assert!(
        yaml.contains("secret: \"${DINGTALK_WEBHOOK_MENTION_ALL_SECRET}\""),
        "{yaml}"
    );
    let env = std::fs::read_to_string(options.env_file()).unwrap();
    assert!(
        env.contains("DINGTALK_WEBHOOK_MENTION_ALL_SECRET=SECaaaaaaaaaaaaaaaaaaaaaaaa\n"),
        "{env}"
    );
    assert!(
        env.contains("DINGTALK_WEBHOOK_MENTION_USERS_TOKEN=bbbbbbbbbbbb\n"),
        "{env}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(options.env_file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    assert!(!migration.notes.iter().any(|n| n.contains("in clear")));
}

#[tokio::test]
async fn custom_go_templates_are_translated_and_an_untranslatable_line_is_reported() {
    let (_dir, options, migration) = migrated("custom_templates.yml", false);

    let config = assert_checks_and_renders(&options).await;

    let ops = &config.profiles["ops"];
    assert_eq!(ops.template.as_deref(), Some("ops.md.tera"));
    let title = ops.title.as_deref().unwrap();
    assert!(title.contains("status | upper"), "{title}");
    assert!(
        !title.contains("{#"),
        "no inlining marks in a title: {title}"
    );
    // dba's text calls a define that ranges with variables: left out, built-in used.
    let dba = &config.profiles["dba"];
    assert!(dba.template.is_none());
    assert!(dba.title.is_some(), "dba's own title translates");
    let notes = migration.notes.join("\n");
    assert!(
        notes.contains(
            "templates/custom.tmpl:26: `{{ range $i, $alert := .Alerts }}`: `range` with variables"
        ),
        "{notes}"
    );
    assert!(
        notes.contains("the function `reReplaceAll` has no Tera translation"),
        "{notes}"
    );
    let draft = options.templates_dir().join("dba.md.tera.draft");
    assert!(draft.is_file());
    let tera = std::fs::read_to_string(options.templates_dir().join("ops.md.tera")).unwrap();
    assert!(tera.contains("{% for alert in firing %}"), "{tera}");
    assert!(
        tera.contains("localtime(format=\"%Y-%m-%d %H:%M:%S\")"),
        "{tera}"
    );
}

#[tokio::test]
async fn a_default_message_serves_every_target_without_its_own() {
    let (_dir, options, migration) = migrated("default_message.yml", false);

    let config = assert_checks_and_renders(&options).await;

    assert_eq!(config.timeout, std::time::Duration::from_secs(3));
    let a = &config.profiles["team_a"];
    assert_eq!(a.template.as_deref(), Some("default_message.md.tera"));
    assert!(
        a.title
            .as_deref()
            .unwrap()
            .contains("commonLabels.alertname")
    );
    let b = &config.profiles["team_b"];
    assert_eq!(b.template.as_deref(), Some("team_b.md.tera"));
    assert_eq!(b.title, a.title, "team_b's title is the default message's");
    assert_eq!(migration.templates.len(), 2);
}

#[test]
fn the_gateway_refuses_a_targets_file_with_the_migrate_hint() {
    let file = data_dir().join("migrate/plain.yml");

    let output = command(&["--config.file", file.to_str().unwrap()])
        .output()
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "this is a prometheus-webhook-dingtalk config; run `alertrelay migrate --from {}`",
            file.display()
        )),
        "{stderr}"
    );
}

#[test]
fn the_migrate_command_writes_the_files_and_prints_its_notes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("profiles.yaml");
    let from = data_dir().join("migrate/custom_templates.yml");

    let output = command(&[
        "migrate",
        "--from",
        from.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .output()
    .unwrap();

    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stdout.contains(&format!("wrote {}", out.display())),
        "{stdout}"
    );
    assert!(
        stderr.contains("NOTE: ") && stderr.contains(":26: "),
        "{stderr}"
    );
    assert!(dir.path().join("templates/ops.md.tera").is_file());
    // Again, without --force: nothing is replaced.
    let again = command(&[
        "migrate",
        "--from",
        from.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists; pass --force"));
}
