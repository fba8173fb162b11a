//! Hot reload: file edits of every save style, `/-/reload`, broken edits that keep the last
//! good config, and requests that each see exactly one config.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alertrelay::reload::watch;

use crate::helpers::{TestApp, distinct, json, ops_yaml, payload, spawn_app};

const TEMPLATE: &str = "default.md.tera";

/// Waits until the server swapped in a new snapshot (or fails after a deadline).
async fn wait_for_swap(app: &TestApp, before: &Arc<alertrelay::runtime::Runtime>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Arc::ptr_eq(&app.state.runtime.load_full(), before) {
        assert!(Instant::now() < deadline, "no reload happened");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The text of the message a new notification (numbered by how many the robot has, so never
/// a duplicate of an earlier one) arrived as.
async fn send_and_read(app: &TestApp) -> String {
    let before = app.robot.received().len();
    let response = app
        .post("ops", distinct(&payload("firing_single.json"), before))
        .await;
    assert_eq!(response.status(), 200);
    let received = app.robot.received();
    assert_eq!(received.len(), before + 1, "no new message arrived");
    received.last().unwrap().text().to_owned()
}

fn watching(app: &TestApp) {
    watch::spawn(app.state.reloader.clone(), std::future::pending());
}

/// One way an editor saves a file.
type SaveStyle = fn(&Path, &str);

fn write_in_place(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn rename_over(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn delete_and_recreate(path: &Path, text: &str) {
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn every_save_style_is_picked_up_and_watching_goes_on() {
    let app = spawn_app(&ops_yaml(""), &[(TEMPLATE, "version zero")]).await;
    app.robot.unlimited();
    watching(&app);
    let template = app.path("templates").join(TEMPLATE);
    let styles: [(&str, SaveStyle); 3] = [
        ("in place", write_in_place),
        ("rename over", rename_over),
        ("delete and recreate", delete_and_recreate),
    ];

    for round in 0..2 {
        for (style, save) in styles {
            let before = app.state.runtime.load_full();
            let text = format!("saved {style} round {round}");

            save(&template, &text);
            wait_for_swap(&app, &before).await;

            assert_eq!(send_and_read(&app).await, text, "{style}");
        }
    }
}

#[tokio::test]
async fn editing_profiles_yaml_takes_effect() {
    let app = spawn_app(&ops_yaml(""), &[]).await;
    watching(&app);
    let before = app.state.runtime.load_full();

    rename_over(
        &app.path("profiles.yaml"),
        &format!("{}    message: text\n", ops_yaml(""))
            .replace("{robot}", &app.robot.addr.to_string()),
    );
    wait_for_swap(&app, &before).await;

    app.post("ops", payload("firing_single.json")).await;
    assert_eq!(app.robot.received()[0].msgtype(), "text");
}

/// Lays out a directory the way the kubelet mounts a ConfigMap: the keys are symlinks into
/// `..data`, itself a symlink to a timestamped directory that an update replaces atomically.
fn configmap_write(dir: &Path, version: u32, files: &[(&str, String)]) {
    let data = dir.join(format!("..2026_11_25_v{version}"));
    std::fs::create_dir(&data).unwrap();
    for (name, text) in files {
        std::fs::write(data.join(name), text).unwrap();
    }
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(data.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for (name, _) in files {
        let link = dir.join(name);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link).unwrap();
        }
    }
    if version > 0 {
        std::fs::remove_dir_all(dir.join(format!("..2026_11_25_v{}", version - 1))).unwrap();
    }
}

#[tokio::test]
async fn a_kubernetes_configmap_update_is_picked_up_every_time() {
    let robot = crate::robot::RobotDouble::start().await;
    let yaml =
        format!("templates: .\n{}", ops_yaml("")).replace("{robot}", &robot.addr.to_string());
    let configmap = tempfile::tempdir().unwrap();
    configmap_write(
        configmap.path(),
        0,
        &[
            ("profiles.yaml", yaml.clone()),
            (TEMPLATE, "configmap v0".into()),
        ],
    );
    let app = crate::helpers::spawn_app_from(robot, &configmap.path().join("profiles.yaml")).await;
    watching(&app);

    for version in 1..=3 {
        let before = app.state.runtime.load_full();
        let text = format!("configmap v{version}");

        configmap_write(
            configmap.path(),
            version,
            &[("profiles.yaml", yaml.clone()), (TEMPLATE, text.clone())],
        );
        wait_for_swap(&app, &before).await;

        assert_eq!(send_and_read(&app).await, text);
    }
}

#[tokio::test]
async fn reload_over_http_needs_the_lifecycle_flag() {
    let app = spawn_app(&ops_yaml(""), &[]).await;
    let addr = crate::helpers::serve(app.state.clone().with_lifecycle(false)).await;

    let response = app
        .http
        .post(format!("http://{addr}/-/reload"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 403);
    let response = app.http.post(app.url("/-/reload")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let response = app.http.put(app.url("/-/reload")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} not in {text}"))
}

/// Each broken edit: what to write where, and what the error must say.
const BROKEN: [(&str, &str, &str); 4] = [
    (
        "profiles.yaml",
        "profiles:\n  ops: [unclosed\n",
        "profiles.yaml:",
    ),
    (
        "profiles.yaml",
        "profiles:\n  ops:\n    url: http://127.0.0.1:1/robot/send?access_token=t\n    colour: red\n",
        "profiles.yaml:4: profiles.ops: unknown field `colour`",
    ),
    (
        "templates/default.md.tera",
        "fine\n{% if %}\n",
        "default.md.tera:2:",
    ),
    (
        "templates/default.md.tera",
        "{{ alerts[0].labels.env }}",
        "default.md.tera:1: Tried to render a variable that is undefined",
    ),
];

#[tokio::test]
async fn a_broken_edit_keeps_the_last_good_config_and_says_why_everywhere() {
    let app = spawn_app(&ops_yaml(""), &[(TEMPLATE, "good template")]).await;
    let good_yaml = std::fs::read_to_string(app.path("profiles.yaml")).unwrap();
    assert_eq!(
        metric(&app, "alertrelay_config_last_reload_successful").await,
        1.0
    );

    for (file, text, expected) in BROKEN {
        let before = app.state.runtime.load_full();
        std::fs::write(app.path(file), text).unwrap();

        let response = app.http.post(app.url("/-/reload")).send().await.unwrap();

        assert_eq!(response.status(), 500, "{file}: {text}");
        let error = json(response).await["error"].as_str().unwrap().to_owned();
        assert!(error.contains(expected), "{expected:?} not in {error:?}");
        assert!(
            Arc::ptr_eq(&app.state.runtime.load_full(), &before),
            "swapped a broken config"
        );
        assert_eq!(
            metric(&app, "alertrelay_config_last_reload_successful").await,
            0.0
        );
        assert_eq!(
            send_and_read(&app).await,
            "good template",
            "old config stopped serving"
        );
        // Repair before the next case.
        std::fs::write(app.path("profiles.yaml"), &good_yaml).unwrap();
        std::fs::write(app.path("templates").join(TEMPLATE), "good template").unwrap();
    }
    let response = app.http.post(app.url("/-/reload")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        metric(&app, "alertrelay_config_last_reload_successful").await,
        1.0
    );
    assert!(
        metric(
            &app,
            "alertrelay_config_last_reload_success_timestamp_seconds"
        )
        .await
            > 1.7e9
    );
}

#[tokio::test]
async fn concurrent_webhooks_during_100_reloads_each_see_one_config() {
    let title = |v: &str| format!("title-{v}");
    let body = |v: &str| format!("body-{v} {{{{ alerts | length }}}} body-{v}");
    let app = spawn_app(
        &ops_yaml("    rate_limit: 0\n"),
        &[(TEMPLATE, &body("A")), ("title.tera", &title("A"))],
    )
    .await;
    app.robot.unlimited();
    let templates = app.path("templates");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for sender in 0..4 {
        let (http, url, stop) = (
            app.http.clone(),
            app.url("/dingtalk/ops/send"),
            stop.clone(),
        );
        senders.push(tokio::spawn(async move {
            let mut sent = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Each webhook a notification of its own, every one sent.
                let body = distinct(&payload("firing_group.json"), sender * 1_000_000 + sent);
                let response = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                sent += 1;
            }
            sent
        }));
    }

    for i in 0..100 {
        let version = if i % 2 == 0 { "B" } else { "A" };
        std::fs::write(templates.join(TEMPLATE), body(version)).unwrap();
        std::fs::write(templates.join("title.tera"), title(version)).unwrap();
        app.state.reloader.reload("test").await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut sent = 0;
    for sender in senders {
        sent += sender.await.unwrap();
    }

    let received = app.robot.received();
    assert_eq!(received.len(), sent);
    assert!(sent >= 20, "only {sent} webhooks overlapped the reloads");
    for message in received {
        let title = message.body["markdown"]["title"].as_str().unwrap();
        let version = title.strip_prefix("title-").unwrap();
        assert_eq!(
            message.text(),
            format!("body-{version} 3 body-{version}"),
            "mixed configs"
        );
    }
}

/// Appends a line to a file every 20 ms until dropped.
struct Trickle {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Trickle {
    fn start(path: std::path::PathBuf) -> Self {
        use std::io::Write;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path);
                if let Ok(mut file) = file {
                    let _ = writeln!(file, "level=info msg=\"still here\"");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self { stop }
    }
}

impl Drop for Trickle {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[tokio::test]
async fn a_steady_trickle_of_writes_to_a_log_beside_profiles_yaml_does_not_hold_a_reload_off() {
    let app = spawn_app(&ops_yaml(""), &[]).await;
    watching(&app);
    let _log = Trickle::start(app.path("alertrelay.log"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = app.state.runtime.load_full();

    rename_over(
        &app.path("profiles.yaml"),
        &format!("{}    message: text\n", ops_yaml(""))
            .replace("{robot}", &app.robot.addr.to_string()),
    );

    // The writer goes on all along; the deadline is generous, the trickle endless.
    wait_for_swap(&app, &before).await;
    app.post("ops", payload("firing_single.json")).await;
    assert_eq!(app.robot.received()[0].msgtype(), "text");
}

#[tokio::test]
async fn editing_a_secret_file_reloads_the_secret() {
    let robot = crate::robot::RobotDouble::start().await;
    robot.require_signature("ops-token", "SECnew");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    let secret = dir.path().join("secrets/ops");
    std::fs::write(&secret, "SECold\n").unwrap();
    let yaml =
        ops_yaml("    secret_file: secrets/ops\n").replace("{robot}", &robot.addr.to_string());
    std::fs::write(dir.path().join("profiles.yaml"), yaml).unwrap();
    let app = crate::helpers::spawn_app_from(robot, &dir.path().join("profiles.yaml")).await;
    watching(&app);
    let refused = app.post("ops", payload("firing_single.json")).await;
    assert_eq!(refused.status(), 502);
    let before = app.state.runtime.load_full();

    write_in_place(&secret, "SECnew\n");
    wait_for_swap(&app, &before).await;

    assert_eq!(
        app.post("ops", payload("firing_single.json"))
            .await
            .status(),
        200
    );
}
