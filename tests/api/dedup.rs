//! Duplicate suppression (issue 16): a notification already delivered within `dedup_window`
//! (the same profile, `groupKey`, status and alerts) is answered 200 `"duplicate":true`
//! without posting again; one being delivered right now waits for that outcome (bounded by
//! `max_wait`); a failure never suppresses a retry. Real time: the window and the waits are a
//! second or two.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{TestApp, json, ops_yaml, payload, spawn_app};
use crate::robot::Reply;

/// The status and JSON body of an answer.
async fn answer(response: reqwest::Response) -> (u16, Value) {
    (response.status().as_u16(), json(response).await)
}

/// Whether an answer body says it was a duplicate (absent on a delivery: only `true` shows).
fn duplicate(body: &Value) -> bool {
    match body.get("duplicate") {
        None => false,
        Some(Value::Bool(true)) => true,
        Some(other) => panic!("duplicate is only ever true, not {other}: {body}"),
    }
}

/// Posts `body` for `ops` from a task of its own, to overlap with the next post.
fn post_later(app: &TestApp, body: String) -> tokio::task::JoinHandle<(u16, Value)> {
    let (http, url) = (app.http.clone(), app.url("/dingtalk/ops/send"));
    tokio::spawn(async move {
        let response = http
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        answer(response).await
    })
}

/// Waits (at most 10 s) until the robot has been sent `count` requests.
async fn until_requests(app: &TestApp, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.robot.requests() < count {
        assert!(
            Instant::now() < deadline,
            "the robot never got request {count}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn duplicates_line(profile: &str, count: usize) -> String {
    format!("alertrelay_notifications_duplicate_total{{profile=\"{profile}\"}} {count}")
}

#[tokio::test]
async fn a_retry_of_a_delivered_notification_is_answered_delivered_without_posting_again() {
    let app = spawn_app(&ops_yaml(""), &[]).await;

    let (first, delivered) = answer(app.post("ops", payload("firing_single.json")).await).await;
    let (again, repeated) = answer(app.post("ops", payload("firing_single.json")).await).await;

    assert_eq!(first, 200, "{delivered}");
    assert!(!duplicate(&delivered), "{delivered}");
    assert_eq!(delivered["merged"], 1, "{delivered}");
    assert_eq!(again, 200, "{repeated}");
    assert_eq!(repeated["status"], "ok", "{repeated}");
    assert_eq!(repeated["profile"], "ops", "{repeated}");
    assert_eq!(repeated["alerts"], 1, "{repeated}");
    assert!(duplicate(&repeated), "{repeated}");
    assert_eq!(app.robot.received().len(), 1, "posted twice");
    assert_eq!(app.robot.requests(), 1);
    let metrics = app.metrics().await;
    assert!(metrics.contains(&duplicates_line("ops", 1)), "{metrics}");
    assert!(
        metrics.contains("alertrelay_notifications_delivered_total{profile=\"ops\"} 1\n"),
        "a duplicate counted as a delivery: {metrics}"
    );
}

#[tokio::test]
async fn the_same_notification_posted_twice_at_once_reaches_the_robot_once() {
    let app = spawn_app(&ops_yaml(""), &[]).await;
    app.robot.script([Reply::Delay(Duration::from_millis(500))]);

    let (a, b) = tokio::join!(
        post_later(&app, payload("firing_group.json")),
        post_later(&app, payload("firing_group.json")),
    );

    let ((a, a_body), (b, b_body)) = (a.unwrap(), b.unwrap());
    assert_eq!((a, b), (200, 200), "{a_body} {b_body}");
    assert!(
        duplicate(&a_body) != duplicate(&b_body),
        "one delivered, one its duplicate: {a_body} {b_body}"
    );
    assert_eq!(app.robot.requests(), 1, "the robot was sent it twice");
    assert_eq!(app.robot.received().len(), 1);
    let metrics = app.metrics().await;
    assert!(metrics.contains(&duplicates_line("ops", 1)), "{metrics}");
}

#[tokio::test]
async fn a_copy_posted_while_the_first_is_at_the_robot_waits_for_its_outcome() {
    let app = spawn_app(&ops_yaml(""), &[]).await;
    app.robot.script([Reply::Delay(Duration::from_secs(1))]);
    let first = post_later(&app, payload("firing_single.json"));
    until_requests(&app, 1).await;
    let started = Instant::now();

    let (status, body) = answer(app.post("ops", payload("firing_single.json")).await).await;

    let waited = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(duplicate(&body), "{body}");
    // Answered only once the robot accepted the first: not on the guess that it would.
    assert!(
        waited >= Duration::from_millis(500),
        "answered after {waited:?}, before the robot answered the first"
    );
    let (status, body) = first.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(!duplicate(&body), "{body}");
    assert_eq!(app.robot.requests(), 1);
}

#[tokio::test]
async fn a_notification_whose_first_delivery_failed_is_delivered_on_the_retry() {
    let app = spawn_app(&ops_yaml(""), &[]).await;
    app.robot
        .script([Reply::Errcode(310_000, "keywords not in content")]);

    let (failed, refusal) = answer(app.post("ops", payload("firing_single.json")).await).await;
    let (retried, body) = answer(app.post("ops", payload("firing_single.json")).await).await;

    assert_eq!(failed, 502, "{refusal}");
    assert_eq!(retried, 200, "{body}");
    assert!(!duplicate(&body), "a failure suppressed the retry: {body}");
    assert_eq!(app.robot.received().len(), 1, "the retry never arrived");
    assert_eq!(app.robot.requests(), 2);
    let metrics = app.metrics().await;
    assert!(
        !metrics.contains("alertrelay_notifications_duplicate_total{"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_copy_waiting_on_a_delivery_that_fails_takes_the_delivery_over() {
    // The first attempt hangs past the 1 s timeout, its retry is refused for good: the first
    // is answered 502 after about 1.2 s, and the copy that waited for it delivers it.
    let app = spawn_app(
        "timeout: 1s\nmax_wait: 3s\nprofiles:\n  ops:\n    url: http://{robot}/robot/send?access_token=ops-token\n",
        &[],
    )
    .await;
    app.robot.script([
        Reply::Hang,
        Reply::Errcode(310_000, "keywords not in content"),
    ]);
    let first = post_later(&app, payload("firing_single.json"));
    until_requests(&app, 1).await;

    let (status, body) = answer(app.post("ops", payload("firing_single.json")).await).await;

    let (first, refusal) = first.await.unwrap();
    assert_eq!(first, 502, "{refusal}");
    assert_eq!(status, 200, "{body}");
    assert!(!duplicate(&body), "{body}");
    assert_eq!(app.robot.received().len(), 1);
    assert_eq!(app.robot.requests(), 3);
}

#[tokio::test]
async fn a_copy_waiting_on_a_delivery_in_flight_is_answered_within_max_wait() {
    // max_wait bounds a notification's wait in all: waiting for its copy in flight, then, if
    // that failed, delivering it with what is left (Alertmanager's timeout is set above it).
    let app = spawn_app(&ops_yaml(""), &[]).await;
    app.robot.script([Reply::Hang, Reply::Hang]);
    let first = post_later(&app, payload("firing_single.json"));
    until_requests(&app, 1).await;
    let started = Instant::now();

    let (status, body) = answer(app.post("ops", payload("firing_single.json")).await).await;

    let took = started.elapsed();
    assert!(status >= 500, "{status} {body}");
    assert!(
        took < Duration::from_secs(3),
        "answered after {took:?}, past max_wait (2 s)"
    );
    let (first, body) = first.await.unwrap();
    assert_eq!(first, 504, "{body}");
    assert!(app.robot.received().is_empty());
}

#[tokio::test]
async fn after_dedup_window_the_same_notification_is_posted_again() {
    let app = spawn_app(&format!("dedup_window: 1s\n{}", ops_yaml("")), &[]).await;

    let (first, _) = answer(app.post("ops", payload("firing_single.json")).await).await;
    let (within, suppressed) = answer(app.post("ops", payload("firing_single.json")).await).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (after, body) = answer(app.post("ops", payload("firing_single.json")).await).await;

    assert_eq!((first, within, after), (200, 200, 200));
    assert!(duplicate(&suppressed), "within the window: {suppressed}");
    assert!(!duplicate(&body), "after the window: {body}");
    assert_eq!(app.robot.received().len(), 2);
    let metrics = app.metrics().await;
    assert!(metrics.contains(&duplicates_line("ops", 1)), "{metrics}");
    assert!(
        metrics.contains("alertrelay_notifications_delivered_total{profile=\"ops\"} 2\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_dedup_window_of_0s_posts_every_time() {
    let app = spawn_app(&format!("dedup_window: 0s\n{}", ops_yaml("")), &[]).await;

    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(answer(app.post("ops", payload("firing_single.json")).await).await);
    }

    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert!(!duplicate(body), "{body}");
    }
    assert_eq!(app.robot.received().len(), 3);
    let metrics = app.metrics().await;
    assert!(
        !metrics.contains("alertrelay_notifications_duplicate_total{"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_resolved_notification_of_the_group_is_not_a_duplicate_of_its_firing_one() {
    let app = spawn_app(&ops_yaml(""), &[]).await;
    // The same group and alert: resolved differs in status and endsAt; the mixed one only in
    // one alert's status and endsAt (the notification still fires).
    let posts = [
        ("firing_single.json", false),
        ("resolved.json", false),
        ("resolved.json", true),
        ("firing_group.json", false),
        ("mixed_firing_resolved.json", false),
        ("mixed_firing_resolved.json", true),
    ];

    for (name, expected) in posts {
        let (status, body) = answer(app.post("ops", payload(name)).await).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(duplicate(&body), expected, "{name}: {body}");
    }

    let received = app.robot.received();
    assert_eq!(received.len(), 4);
    assert!(
        received[0].text().contains("【故障】"),
        "{}",
        received[0].text()
    );
    assert!(
        received[1].text().contains("【恢复】"),
        "{}",
        received[1].text()
    );
}

#[tokio::test]
async fn the_same_alerts_through_another_profile_are_not_a_duplicate() {
    let yaml = ops_yaml("  db:\n    url: http://{robot}/robot/send?access_token=db-token\n");
    let app = spawn_app(&yaml, &[]).await;

    let (ops, ops_body) = answer(app.post("ops", payload("firing_single.json")).await).await;
    let (db, db_body) = answer(app.post("db", payload("firing_single.json")).await).await;
    let (again, again_body) = answer(app.post("db", payload("firing_single.json")).await).await;

    assert_eq!((ops, db, again), (200, 200, 200));
    assert!(!duplicate(&ops_body), "{ops_body}");
    assert!(!duplicate(&db_body), "another profile's copy: {db_body}");
    assert!(duplicate(&again_body), "{again_body}");
    let tokens: Vec<String> = app.robot.received().into_iter().map(|r| r.token).collect();
    assert_eq!(tokens, ["ops-token", "db-token"]);
    let metrics = app.metrics().await;
    assert!(metrics.contains(&duplicates_line("db", 1)), "{metrics}");
    assert!(!metrics.contains(&duplicates_line("ops", 1)), "{metrics}");
}

#[tokio::test]
async fn a_copy_still_in_flight_past_max_wait_is_answered_503_in_flight() {
    // A delivery in flight ends within its own max_wait, so a copy outwaits it only when it
    // is allowed less: here a reload shortened max_wait while the first hangs at the robot.
    let long = "timeout: 30s\nmax_wait: 30s\nprofiles:\n  ops:\n    url: http://{robot}/robot/send?access_token=ops-token\n";
    let app = spawn_app(long, &[]).await;
    app.robot.script([Reply::Hang]);
    let _first = post_later(&app, payload("firing_single.json"));
    until_requests(&app, 1).await;
    let short = long
        .replace("max_wait: 30s", "max_wait: 1s")
        .replace("{robot}", &app.robot.addr.to_string());
    std::fs::write(app.path("profiles.yaml"), short).unwrap();
    app.state.reloader.reload("test").await.unwrap();
    let started = Instant::now();

    let (status, body) = answer(app.post("ops", payload("firing_single.json")).await).await;

    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("still being delivered")),
        "{body}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "answered after {took:?}, not after max_wait (1 s)"
    );
    assert_eq!(app.robot.requests(), 1, "the copy was sent too");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            "alertrelay_notifications_failed_total{profile=\"ops\",reason=\"in_flight\"} 1"
        ),
        "{metrics}"
    );
}

/// Alertmanager gives up on a webhook (its own timeout) while the message is at the robot,
/// which accepts it a moment later: the retry must not post it again.
async fn a_caller_gone_while_the_robot_has_it(extra: &str) {
    let app = spawn_app(&ops_yaml(extra), &[]).await;
    app.robot.script([Reply::Delay(Duration::from_millis(800))]);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let gave_up = impatient
        .post(app.url("/dingtalk/ops/send"))
        .header("content-type", "application/json")
        .body(payload("firing_single.json"))
        .send()
        .await;
    assert!(gave_up.is_err(), "the caller should have timed out");

    // The robot accepts after 800 ms; Alertmanager's retry comes later.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let (status, body) = answer(app.post("ops", payload("firing_single.json")).await).await;

    assert_eq!(status, 200, "{body}");
    assert!(duplicate(&body), "posted again: {body}");
    assert_eq!(app.robot.received().len(), 1);
    assert_eq!(app.robot.requests(), 1);
}

#[tokio::test]
async fn a_notification_accepted_after_its_caller_gave_up_is_not_posted_again_on_the_retry() {
    a_caller_gone_while_the_robot_has_it("").await;
}

#[tokio::test]
async fn the_same_holds_for_a_robot_without_a_budget() {
    a_caller_gone_while_the_robot_has_it("    rate_limit: 0\n").await;
}
