//! Rendering is bounded for real: template text that grows a string without end or never
//! finishes is stopped in its render worker and reported like any template failure, while
//! the gateway keeps its memory, its CPU and its answers.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::binary::{check, start};
use crate::helpers::{TestApp, distinct, payload, spawn_app};

/// 200 bytes that would build a 256 MiB string: 16 bytes doubled 24 times.
fn doubling() -> String {
    let mut text = String::from("{% set s = \"xxxxxxxxxxxxxxxx\" %}");
    for _ in 0..24 {
        text.push_str("{% set s = s ~ s %}");
    }
    text.push_str("{{ s | length }}");
    text
}

/// Four nested loops of 1,000: 10^12 iterations that write nothing.
const SPINNING: &str = "{% for a in range(end=1000) %}{% for b in range(end=1000) %}{% for c in range(end=1000) %}{% for d in range(end=1000) %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}";

const YAML: &str = "profiles:
  ops:
    url: http://{robot}/robot/send?access_token=ops-token
";

async fn preview(app: &TestApp, template: &str) -> (u16, Value) {
    preview_at(&app.http, &app.url("/preview/ops"), template).await
}

/// A preview posted to `url`: its status and its JSON answer.
async fn preview_at(http: &reqwest::Client, url: &str, template: &str) -> (u16, Value) {
    let response = http
        .post(url)
        .body(json!({ "template": template }).to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn message(answer: &Value) -> &str {
    answer["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_preview_that_doubles_a_string_24_times_is_refused_over_its_memory_bound() {
    let app = spawn_app(YAML, &[]).await;

    let (status, answer) = preview(&app, &doubling()).await;

    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["template"], "unsaved template");
    assert!(message(&answer).contains("MiB of memory"), "{answer}");
    let (status, answer) = preview(&app, "still {{ status }}").await;
    assert_eq!(status, 200, "the next preview is served: {answer}");
    assert_eq!(answer["text"], "still firing");
}

#[tokio::test]
async fn padding_a_preview_body_buys_its_template_no_memory() {
    let app = spawn_app(YAML, &[]).await;
    // 21 doublings: a 32 MiB string, past the 16 MiB a template gets; 30 MiB of whitespace
    // would have bought it room when the bound grew with the body's size.
    let mut template = String::from("{% set s = \"xxxxxxxxxxxxxxxx\" %}");
    for _ in 0..21 {
        template.push_str("{% set s = s ~ s %}");
    }
    template.push_str("{{ s | length }}");
    let mut body = json!({ "template": template }).to_string();
    body.insert_str(1, &" ".repeat(30 * 1024 * 1024));

    let response = app
        .http
        .post(app.url("/preview/ops"))
        .body(body)
        .send()
        .await
        .unwrap();

    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 422, "{answer}");
    assert!(message(&answer).contains("MiB of memory"), "{answer}");
}

#[tokio::test]
async fn a_preview_that_never_finishes_is_stopped_and_the_next_preview_is_served() {
    let app = spawn_app(YAML, &[]).await;

    let (status, answer) = preview(&app, SPINNING).await;

    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["template"], "unsaved template");
    assert!(
        message(&answer).contains("did not finish within"),
        "{answer}"
    );
    // The worker was killed, not left spinning: the one preview slot is free again.
    let (status, answer) = preview(&app, "fine").await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn a_preview_that_writes_more_than_its_output_cap_is_stopped() {
    let app = spawn_app(YAML, &[]).await;
    let writes = "{% for a in range(end=1000) %}{% for b in range(end=1000) %}xxxxxxxxxx{% endfor %}{% endfor %}";

    let (status, answer) = preview(&app, writes).await;

    assert_eq!(status, 422, "{answer}");
    assert!(message(&answer).contains("output passed"), "{answer}");
}

#[tokio::test]
async fn a_saved_template_that_never_finishes_fails_the_reload_with_its_name() {
    let app = spawn_app(YAML, &[("spin.md.tera", SPINNING)]).await;
    let good = std::fs::read_to_string(app.path("profiles.yaml")).unwrap();
    std::fs::write(
        app.path("profiles.yaml"),
        format!("{good}    template: spin.md.tera\n"),
    )
    .unwrap();

    let response = app.http.post(app.url("/-/reload")).send().await.unwrap();

    assert_eq!(response.status(), 500);
    let error = response.text().await.unwrap();
    assert!(
        error.contains("spin.md.tera: did not finish within"),
        "{error}"
    );
    assert!(
        app.metrics()
            .await
            .contains("alertrelay_config_last_reload_successful 0"),
    );
    // The last good configuration keeps serving, and a fix is picked up.
    assert_eq!(
        app.post("ops", payload("firing_single.json"))
            .await
            .status(),
        200
    );
    std::fs::write(app.path("templates/spin.md.tera"), "fixed").unwrap();
    let response = app.http.post(app.url("/-/reload")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // Another notification: the first one again would be a duplicate, never rendered anew.
    assert_eq!(
        app.post("ops", distinct(&payload("firing_single.json"), 1))
            .await
            .status(),
        200
    );
    assert_eq!(app.robot.received().last().unwrap().text(), "fixed");
}

#[test]
fn check_reports_a_saved_template_that_never_finishes_and_ends() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    std::fs::write(dir.path().join("templates/spin.md.tera"), SPINNING).unwrap();
    let file = dir.path().join("profiles.yaml");
    std::fs::write(
        &file,
        "profiles:\n  ops:\n    url: http://127.0.0.1:1/robot/send?access_token=t\n    template: spin.md.tera\n",
    )
    .unwrap();

    let (code, stdout) = check(&file);

    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("spin.md.tera: did not finish within"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_webhook_whose_template_runs_out_of_time_is_sent_with_the_builtin_template() {
    // Passes the self-test (the samples' receiver is another), spins on this payload.
    let template = format!("{{% if receiver == \"spin\" %}}{SPINNING}{{% endif %}}custom");
    let yaml = format!("{YAML}    template: spin.md.tera\n");
    let app = spawn_app(&yaml, &[("spin.md.tera", &template)]).await;
    let mut body: Value = serde_json::from_str(&payload("firing_single.json")).unwrap();

    assert_eq!(app.post("ops", body.to_string()).await.status(), 200);
    assert_eq!(app.robot.received().last().unwrap().text(), "custom");
    body["receiver"] = json!("spin");
    // Another notification (the receiver is no part of a notification's identity): the
    // first one again would be a duplicate, never rendered anew.
    let response = app.post("ops", distinct(&body.to_string(), 1)).await;

    assert_eq!(response.status(), 200);
    let received = app.robot.received();
    let text = received.last().unwrap().text();
    assert!(text.contains("【故障】"), "built-in template: {text}");
}

#[tokio::test]
async fn previews_do_not_take_the_capacity_webhooks_render_with() {
    let app = spawn_app(YAML, &[]).await;
    let mut big: Value = serde_json::from_str(&payload("firing_single.json")).unwrap();
    let alert = big["alerts"][0].clone();
    big["alerts"] = Value::Array(vec![alert; 10_000]);
    let big = big.to_string();

    let previews: Vec<_> = (0..20)
        .map(|_| {
            let (http, url, body) = (app.http.clone(), app.url("/preview/ops"), big.clone());
            tokio::spawn(async move {
                let response = http.post(url).body(body).send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            })
        })
        .collect();
    let mut webhooks = Vec::new();
    // Ten notifications, each rendered and sent (the same one ten times would be sent once).
    for n in 0..10 {
        webhooks.push(
            app.post("ops", distinct(&payload("firing_single.json"), n))
                .await
                .status(),
        );
    }

    assert!(webhooks.iter().all(|s| *s == 200), "{webhooks:?}");
    for preview in previews {
        let (status, answer) = preview.await.unwrap();
        // A debug build on a busy machine may pass a preview's own time bound: that is the
        // bound working, not webhooks starving.
        let bounded = status == 422 && answer.contains("did not finish within");
        assert!(
            status == 200 || status == 503 || bounded,
            "preview answered {status}: {answer}"
        );
    }
}

/// Peak resident memory of a process, in bytes.
fn peak_rss(pid: u32) -> usize {
    status_kib(pid, "VmHWM:") * 1024
}

/// The process ids of a process's children.
fn children(pid: u32) -> Vec<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[tokio::test]
async fn the_gateway_keeps_its_memory_and_ends_on_sigterm_while_a_render_spins() {
    let app = start(&["--ding.profile=ops=http://127.0.0.1:1/robot/send?access_token=t"]);
    let pid = app.child.id();
    let http = reqwest::Client::new();
    let url = format!("http://{}/preview/ops", app.addr);

    let answer = http
        .post(&url)
        .body(json!({ "template": doubling() }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 422);
    assert!(
        peak_rss(pid) < 64 * 1024 * 1024,
        "gateway peak RSS {} bytes",
        peak_rss(pid)
    );

    let spinning = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move {
            let body = json!({ "template": SPINNING }).to_string();
            http.post(url).body(body).send().await.map(|r| r.status())
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let workers = children(pid);
    assert!(!workers.is_empty(), "a render worker runs the preview");
    for worker in &workers {
        let score = std::fs::read_to_string(format!("/proc/{worker}/oom_score_adj")).unwrap();
        assert_eq!(score.trim(), "1000", "the OOM killer takes a worker first");
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    let started = Instant::now();
    while alive(pid) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "SIGTERM did not end the gateway:\n{}",
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = spinning.await;
    let started = Instant::now();
    while workers.iter().any(|&w| alive(w)) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a render worker outlived the gateway"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_worker_idle_longer_than_tokios_blocking_threads_lives_on_and_renders() {
    // tokio ends a blocking thread idle for 10 s; a worker must not die with the thread that
    // started it (the kernel's parent-death signal follows the thread).
    let app = start(&["--ding.profile=ops=http://127.0.0.1:1/robot/send?access_token=t"]);
    let http = reqwest::Client::new();
    let url = format!("http://{}/preview/ops", app.addr);
    assert_eq!(preview_at(&http, &url, "{{ status }}").await.0, 200);
    let before = children(app.child.id());

    tokio::time::sleep(Duration::from_secs(12)).await;

    assert_eq!(preview_at(&http, &url, "{{ status }}").await.0, 200);
    let after = children(app.child.id());
    assert!(!before.is_empty());
    assert!(
        before.iter().all(|pid| after.contains(pid) && alive(*pid)),
        "workers {before:?} did not live through the idle time: {after:?}"
    );
}

#[tokio::test]
async fn a_worker_killed_between_jobs_is_replaced_and_the_next_job_runs_on_a_fresh_one() {
    let app = start(&["--ding.profile=ops=http://127.0.0.1:1/robot/send?access_token=t"]);
    let http = reqwest::Client::new();
    let url = format!("http://{}/preview/ops", app.addr);
    assert_eq!(preview_at(&http, &url, "{{ status }}").await.0, 200);
    let before = children(app.child.id());
    assert!(!before.is_empty());
    for worker in &before {
        let status = std::process::Command::new("kill")
            .args(["-KILL", &worker.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (status, answer) = preview_at(&http, &url, "{{ status }}").await;
    assert_eq!(status, 200, "{}", app.log());
    assert!(answer.to_string().contains("firing"), "{answer}");
    let after = children(app.child.id());
    assert!(
        after.iter().any(|pid| !before.contains(pid)),
        "a fresh worker beside the killed ones {before:?}: {after:?}"
    );
}

#[tokio::test]
async fn previews_abandoned_by_their_clients_do_not_hold_up_the_next_one() {
    let app = spawn_app(YAML, &[]).await;
    let body = json!({ "template": SPINNING }).to_string();
    for _ in 0..5 {
        let hasty = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let _ = hasty
            .post(app.url("/preview/ops"))
            .body(body.clone())
            .send()
            .await;
    }

    // The one spinning when the clients left ends within its 2 s; the others never run.
    let started = Instant::now();
    let (status, answer) = preview(&app, "fine").await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?} behind abandoned previews",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_payload_too_large_to_render_is_refused_without_the_gateway_parsing_it() {
    // 2.5 million empty alerts in 7.5 MB: the worker's bound stops it, and the gateway must
    // not parse it itself to render a fallback.
    let mut body = String::from("{\"receiver\":\"x\",\"status\":\"firing\",\"alerts\":[{}");
    body.push_str(&",{}".repeat(2_500_000));
    body.push_str("]}");
    let yaml = format!("max_body_bytes_in_flight: 67108864\n{YAML}");
    let app = spawn_app(&yaml, &[]).await;
    let before = current_rss();

    let response = app.post("ops", body).await;

    // 413 when its worker ran out of memory, 503 when out of time: never delivered, never
    // parsed by the gateway.
    let status = response.status().as_u16();
    assert!(
        status == 413 || status == 503,
        "{status}: {}",
        response.text().await.unwrap()
    );
    let grown = current_rss().saturating_sub(before);
    assert!(
        grown < 200 * 1024 * 1024,
        "the gateway grew by {grown} bytes"
    );
    assert_eq!(app.robot.requests(), 0);
    assert_eq!(
        app.post("ops", payload("firing_single.json"))
            .await
            .status(),
        200
    );
}

/// Resident memory of this test process now, in bytes.
fn current_rss() -> usize {
    status_kib(std::process::id(), "VmRSS:") * 1024
}

fn status_kib(pid: u32, field: &str) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn render_workers_get_none_of_the_gateways_environment() {
    let mut command = crate::binary::command(&[
        "--web.listen-address=127.0.0.1:0",
        "--ding.profile=ops=http://127.0.0.1:1/robot/send?access_token=t",
    ]);
    command.env("DINGTALK_OPS_TOKEN", "tok-SECRET-env");
    let app = crate::binary::start_command(command);
    let http = reqwest::Client::new();
    let answer = http
        .post(format!("http://{}/preview/ops", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    let workers = children(app.child.id());
    assert!(!workers.is_empty());
    for worker in workers {
        let environ = std::fs::read(format!("/proc/{worker}/environ")).unwrap();
        assert!(
            !String::from_utf8_lossy(&environ).contains("tok-SECRET-env"),
            "a worker sees the token"
        );
    }
}
