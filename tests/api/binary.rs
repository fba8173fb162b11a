//! The `alertrelay` binary itself: flags, startup errors, and what it logs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{distinct, payload};
use crate::robot::{Reply, RobotDouble};

pub(crate) struct Running {
    pub(crate) child: crate::helpers::Process,
    log: Arc<Mutex<Vec<String>>>,
    pub(crate) addr: String,
}

impl Running {
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

pub(crate) fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alertrelay"));
    command
        .args(args)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null());
    command
}

/// Starts the binary on a free port and waits for its "listening" line.
#[allow(clippy::zombie_processes)] // `Process` kills and waits on drop.
pub(crate) fn start(args: &[&str]) -> Running {
    let mut all = vec!["--web.listen-address=127.0.0.1:0"];
    all.extend_from_slice(args);
    start_command(command(&all))
}

/// Starts a prepared command of the binary and waits for its "listening" line.
#[allow(clippy::zombie_processes)] // `Process` kills and waits on drop.
pub(crate) fn start_command(mut command: Command) -> Running {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let started = Instant::now();
    loop {
        let found = log
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| listening_address(l));
        if let Some(addr) = found {
            return Running {
                child: crate::helpers::Process(child),
                log,
                addr,
            };
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no listening line: {:?}",
            log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The address of a "listening" log line, in logfmt or JSON.
fn listening_address(line: &str) -> Option<String> {
    let rest = line
        .split_once("address=")
        .or_else(|| line.split_once("\"address\":\""))?
        .1;
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

async fn status(addr: &str, profile: &str, body: String) -> u16 {
    post(addr, profile, body).await.status().as_u16()
}

async fn post(addr: &str, profile: &str, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://{addr}/dingtalk/{profile}/send"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn ding_profile_flags_serve_without_a_config_file() {
    let robot = RobotDouble::start().await;
    let ops = format!("--ding.profile=ops={}", robot.url("tok-ops"));
    let info = format!("--ding.profile=info={}", robot.url("tok-info"));
    let app = start(&[&ops, &info]);

    assert_eq!(
        status(&app.addr, "ops", payload("firing_single.json")).await,
        200
    );
    assert_eq!(
        status(&app.addr, "info", payload("resolved.json")).await,
        200
    );

    let tokens: Vec<String> = robot.received().into_iter().map(|r| r.token).collect();
    assert_eq!(tokens, ["tok-ops", "tok-info"]);
}

#[test]
fn starting_without_config_or_flags_is_a_clear_error() {
    let output = command(&["--config.file=/nonexistent/profiles.yaml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let output = command(&[]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no profiles"), "{stderr}");
    assert!(stderr.contains("--ding.profile"), "{stderr}");
}

#[test]
fn a_profile_both_in_the_file_and_a_flag_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profiles.yaml");
    std::fs::write(
        &file,
        "profiles:\n  ops:\n    url: http://127.0.0.1:1/robot/send?access_token=a\n",
    )
    .unwrap();
    let output = command(&[
        &format!("--config.file={}", file.display()),
        "--ding.profile=ops=http://127.0.0.1:1/robot/send?access_token=b",
    ])
    .output()
    .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("defined both"));
}

#[test]
fn version_is_printed() {
    let output = command(&["--version"]).output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_config_error_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profiles.yaml");
    std::fs::write(&file, "timezone: Asia/Shanghai\nprofiles:\n  ops:\n    url: http://127.0.0.1:1/robot/send?access_token=a\n    colour: red\n").unwrap();
    let output = command(&[&format!("--config.file={}", file.display())])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("profiles.yaml:5:"), "{stderr}");
    assert!(stderr.contains("unknown field `colour`"), "{stderr}");
}

#[tokio::test]
async fn tokens_and_secrets_never_reach_the_logs() {
    const TOKEN: &str = "tok3n5ecretvalue";
    const SECRET: &str = "SECsigningsecretvalue";
    let robot = RobotDouble::start().await;
    robot.require_signature(TOKEN, SECRET);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profiles.yaml");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    std::fs::write(
        &file,
        format!(
            "max_wait: 1s\nprofiles:\n  ops:\n    url: {}\n    secret: {SECRET}\n  dead:\n    url: http://{dead}/robot/send?access_token={TOKEN}\n",
            robot.url(TOKEN)
        ),
    )
    .unwrap();
    for format in ["logfmt", "json"] {
        let app = start(&[
            &format!("--config.file={}", file.display()),
            "--log.level=debug",
            &format!("--log.format={format}"),
        ]);

        assert_eq!(
            status(&app.addr, "ops", payload("firing_single.json")).await,
            200
        );
        robot.script([Reply::Errcode(310000, "sign not match")]);
        // Another notification: the first one again would be a duplicate, never sent.
        assert_eq!(
            status(
                &app.addr,
                "ops",
                distinct(&payload("firing_single.json"), 1)
            )
            .await,
            502
        );
        assert_eq!(
            status(&app.addr, "dead", payload("firing_single.json")).await,
            502
        );
        assert_eq!(
            status(&app.addr, "nope", payload("firing_single.json")).await,
            404
        );

        std::thread::sleep(Duration::from_millis(200));
        let log = app.log();
        assert!(log.contains("delivered"), "{log}");
        assert!(log.contains("not delivered"), "{log}");
        assert!(!log.contains(TOKEN), "token in {format} log:\n{log}");
        assert!(!log.contains(SECRET), "secret in {format} log:\n{log}");
    }
}

#[test]
fn check_accepts_the_shipped_profiles_yaml() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles.yaml");
    let (code, stdout) = check(&shipped);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("SUCCESS: 1 profiles (ops)"), "{stdout}");
}

/// Runs `alertrelay check` on a file: its exit code and what it printed.
pub(crate) fn check(file: &std::path::Path) -> (Option<i32>, String) {
    let output = command(&["check", &format!("--config.file={}", file.display())])
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn check_reports_every_problem_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    let file = dir.path().join("profiles.yaml");
    let url = "http://127.0.0.1:1/robot/send?access_token=a";
    std::fs::write(
        &file,
        format!("profiles:\n  a:\n    url: {url}\n    template: gone.tera\n  b:\n    url: {url}\n    template: lost.tera\n"),
    )
    .unwrap();

    let (code, stdout) = check(&file);

    assert_eq!(code, Some(1));
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(
        stdout.contains("profiles.yaml:4: profile \"a\": template \"gone.tera\" not found"),
        "{stdout}"
    );
    assert!(
        stdout.contains("profiles.yaml:7: profile \"b\": template \"lost.tera\" not found"),
        "{stdout}"
    );

    std::fs::write(&file, format!("profiles:\n  a:\n    url: {url}\n")).unwrap();
    std::fs::write(dir.path().join("templates/one.tera"), "{% if %}").unwrap();
    std::fs::write(
        dir.path().join("templates/two.tera"),
        "ok\n{{ x | nosuchfilter }}",
    )
    .unwrap();
    let (code, stdout) = check(&file);
    assert_eq!(code, Some(1));
    assert!(stdout.contains("one.tera:1:"), "{stdout}");
    assert!(stdout.contains("two.tera:2:"), "{stdout}");
}

#[test]
fn check_warns_about_mentions_a_channel_cannot_carry() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profiles.yaml");
    std::fs::write(
        &file,
        "profiles:
  wx:
    url: http://127.0.0.1:1/cgi-bin/webhook/send?key=k
    mention: { all: true, mobiles: [\"13800000000\"], user_ids: [\"zhangsan\"] }
  fs:
    url: http://127.0.0.1:1/open-apis/bot/v2/hook/t
    mention: { mobiles: [\"13800000000\"] }
  ding:
    url: http://127.0.0.1:1/robot/send?access_token=a
    mention: { all: true, mobiles: [\"13800000000\"] }
",
    )
    .unwrap();

    let (code, stdout) = check(&file);

    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("SUCCESS"), "{stdout}");
    assert!(
        stdout.contains("WARNING: profile \"wx\": WeCom markdown messages cannot mention everyone"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "WARNING: profile \"wx\": WeCom markdown messages cannot mention by mobile number"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "WARNING: profile \"fs\": Feishu card messages cannot mention by mobile number"
        ),
        "{stdout}"
    );
    assert!(
        !stdout.contains("\"ding\""),
        "DingTalk carries them all: {stdout}"
    );
}

fn wait_for_log(app: &Running, needle: &str) {
    let started = Instant::now();
    while !app.log().contains(needle) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{needle:?} never logged:\n{}",
            app.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn sighup_reloads_and_a_broken_edit_is_logged_with_file_and_line() {
    let robot = RobotDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    let file = dir.path().join("profiles.yaml");
    std::fs::write(
        &file,
        format!("profiles:\n  ops:\n    url: {}\n", robot.url("t")),
    )
    .unwrap();
    let template = dir.path().join("templates/default.md.tera");
    std::fs::write(&template, "first").unwrap();
    let app = start(&[&format!("--config.file={}", file.display())]);
    let hangup = || {
        let status = Command::new("kill")
            .args(["-HUP", &app.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };

    std::fs::write(&template, "line one\n{% for %}").unwrap();
    hangup();
    wait_for_log(&app, "reload failed");
    assert!(app.log().contains("default.md.tera:2:"), "{}", app.log());
    assert_eq!(
        status(&app.addr, "ops", payload("firing_single.json")).await,
        200
    );
    assert_eq!(robot.received().last().unwrap().text(), "first");

    std::fs::write(&template, "second").unwrap();
    hangup();
    wait_for_log(&app, "message=\"configuration reloaded\" trigger=SIGHUP");
    // Another notification: the first one again would be a duplicate, never rendered anew.
    assert_eq!(
        status(
            &app.addr,
            "ops",
            distinct(&payload("firing_single.json"), 1)
        )
        .await,
        200
    );
    assert_eq!(robot.received().last().unwrap().text(), "second");
}

#[tokio::test]
async fn sigterm_answers_503_to_webhooks_still_open_when_the_shutdown_timeout_ends() {
    let robot = RobotDouble::start().await;
    robot.script([Reply::Hang]);
    let ops = format!("--ding.profile=ops={}", robot.url("t"));
    let mut app = start(&[&ops, "--web.shutdown-timeout=300ms"]);
    let request = reqwest::Client::new()
        .post(format!("http://{}/dingtalk/ops/send", app.addr))
        .header("content-type", "application/json")
        .body(payload("firing_single.json"))
        .send();
    let open = tokio::spawn(request);
    while robot.requests() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let pid = app.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );

    let response = open
        .await
        .unwrap()
        .expect("an answer, not a closed connection");
    assert_eq!(response.status(), 503);
    let error = response.text().await.unwrap();
    assert!(error.contains("shutting down"), "{error}");
    let started = Instant::now();
    while app.child.0.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(10), "still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
