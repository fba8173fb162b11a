//! Delivery that loses nothing: the rate budget, merging, the throttle penalty, bounded
//! waits, the size cap and shutdown, against a robot double that enforces DingTalk's
//! 20-a-minute limit. Tokio's paused clock makes each "minute" cost no real time.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

mod lifecycle;
mod storm;

use crate::helpers::{TestApp, distinct, payload, spawn_app};
use crate::robot::{RATE_LIMIT, Received, Reply};

/// A one-alert firing notification whose instance is `host-<i>`, to follow each one through;
/// a notification of its own (its own `groupKey`), not a duplicate of another number.
fn numbered(i: usize) -> String {
    let mut n: Value = serde_json::from_str(&payload("firing_single.json")).unwrap();
    n["alerts"][0]["labels"]["instance"] = Value::from(format!("host-{i}:9100"));
    n["commonLabels"]["instance"] = Value::from(format!("host-{i}:9100"));
    distinct(&n.to_string(), i)
}

fn yaml(profiles: &str) -> String {
    format!("timeout: 2s\nmax_wait: 90s\nprofiles:\n{profiles}")
}

fn profile(name: &str, token: &str) -> String {
    format!(
        "  {name}:\n    url: http://{{robot}}/robot/send?access_token={token}\n    message: text\n"
    )
}

/// Posts `count` numbered notifications at once; returns (number, status) in order.
async fn burst(app: &TestApp, profile: &str, range: std::ops::Range<usize>) -> Vec<(usize, u16)> {
    let tasks: Vec<_> = range
        .map(|i| {
            let (http, url) = (
                app.http.clone(),
                app.url(&format!("/dingtalk/{profile}/send")),
            );
            tokio::spawn(async move {
                let response = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(numbered(i))
                    .send()
                    .await
                    .unwrap();
                (i, response.status().as_u16())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// No 60-second window holds more than the limit.
fn assert_within_budget(received: &[Received], token: &str) {
    let times: Vec<Instant> = received
        .iter()
        .filter(|r| r.token == token)
        .map(|r| r.at)
        .collect();
    for (i, start) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .filter(|t| t.duration_since(*start) < Duration::from_secs(60))
            .count();
        assert!(
            in_window <= RATE_LIMIT,
            "{in_window} messages within a minute"
        );
    }
}

fn delivered_hosts(received: &[Received]) -> Vec<usize> {
    let mut hosts: Vec<usize> = received
        .iter()
        .flat_map(|r| {
            r.text()
                .match_indices("host-")
                .map(|(at, _)| {
                    let digits: String = r.text()[at + 5..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    digits.parse().unwrap()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    hosts
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_60_stays_within_budget_and_every_alert_arrives() {
    let app = spawn_app(&yaml(&profile("ops", "tok")), &[]).await;

    let answers = burst(&app, "ops", 0..60).await;

    assert!(
        answers.iter().all(|(_, status)| *status == 200),
        "{answers:?}"
    );
    let received = app.robot.received();
    assert_eq!(
        app.robot.refused(130_101),
        0,
        "the robot double had to refuse"
    );
    assert_within_budget(&received, "tok");
    assert_eq!(
        delivered_hosts(&received),
        (0..60).collect::<Vec<_>>(),
        "an alert was lost"
    );
    assert!(received.len() < 60, "nothing was merged");
    let text = app.metrics().await;
    assert!(
        text.contains("alertrelay_notifications_delivered_total{profile=\"ops\"} 60"),
        "{text}"
    );
    assert!(
        text.contains("alertrelay_messages_merged_total{profile=\"ops\"}"),
        "{text}"
    );
    assert!(
        text.contains("alertrelay_rate_limit_wait_seconds_count{profile=\"ops\"} 60"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn two_profiles_on_one_token_share_a_budget_and_another_robot_is_not_slowed() {
    let profiles = [
        profile("a", "shared"),
        profile("b", "shared"),
        profile("c", "other"),
    ]
    .concat();
    let app = spawn_app(&yaml(&profiles), &[]).await;
    let started = Instant::now();
    // Profile a spends the shared robot's whole budget, one message at a time.
    for i in 0..RATE_LIMIT {
        assert_eq!(app.post("a", numbered(i)).await.status(), 200);
    }

    let (b, c) = tokio::join!(
        async {
            let status = app.post("b", numbered(100)).await.status();
            (status, started.elapsed())
        },
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let status = app.post("c", numbered(200)).await.status();
            (status, started.elapsed())
        }
    );

    assert_eq!(b.0, 200);
    assert!(
        b.1 >= Duration::from_secs(60),
        "b did not wait for a's budget: {:?}",
        b.1
    );
    assert_eq!(c.0, 200);
    assert!(
        c.1 < Duration::from_secs(5),
        "the other robot waited {:?}",
        c.1
    );
    let received = app.robot.received();
    assert_within_budget(&received, "shared");
    assert_eq!(app.robot.refused(130_101), 0);
}

#[tokio::test(start_paused = true)]
async fn a_throttled_robot_is_left_alone_and_answered_503_quickly() {
    let app = spawn_app(&yaml(&profile("ops", "tok")), &[]).await;
    app.robot.script([Reply::Errcode(130_101, "send too fast")]);

    let first = app.post("ops", numbered(1)).await;
    let requests = app.robot.requests();
    let started = Instant::now();
    let second = app.post("ops", numbered(2)).await;

    assert_eq!(first.status(), 503);
    assert_eq!(second.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        app.robot.requests(),
        requests,
        "the throttled robot was hammered"
    );
    let text = app.metrics().await;
    assert!(
        text.contains("alertrelay_robot_requests_total{profile=\"ops\",channel=\"dingtalk\",code=\"130101\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "alertrelay_notifications_failed_total{profile=\"ops\",reason=\"throttled\"} 2"
        ),
        "{text}"
    );

    tokio::time::sleep(Duration::from_secs(601)).await;
    assert_eq!(app.post("ops", numbered(3)).await.status(), 200);
}

#[tokio::test(start_paused = true)]
async fn a_wait_longer_than_max_wait_is_answered_503_for_alertmanager_to_retry() {
    let yaml = yaml(&profile("ops", "tok")).replace("max_wait: 90s", "max_wait: 10s");
    let app = spawn_app(&yaml, &[]).await;
    let first = burst(&app, "ops", 0..20).await;
    assert!(first.iter().all(|(_, s)| *s == 200));
    let started = Instant::now();

    let late = burst(&app, "ops", 20..25).await;

    assert!(late.iter().all(|(_, s)| *s == 503), "{late:?}");
    assert!(
        started.elapsed() <= Duration::from_secs(11),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.robot.received().len(), 20);
    let text = app.metrics().await;
    assert!(text.contains("reason=\"wait_timeout\"} 5"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn shutdown_answers_every_waiting_delivery_truthfully() {
    let mut app = spawn_app(&yaml(&profile("ops", "tok")), &[]).await;
    burst(&app, "ops", 0..20).await;
    let waiting = {
        let (http, url) = (app.http.clone(), app.url("/dingtalk/ops/send"));
        tokio::spawn(async move {
            let futures = (20..25).map(|i| {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    http.post(url)
                        .header("content-type", "application/json")
                        .body(numbered(i))
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                }
            });
            futures_util::future::join_all(futures).await
        })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;

    app.state.dispatcher.shut_down();
    app.shut_down();

    assert_eq!(waiting.await.unwrap(), [503; 5]);
    assert_eq!(app.robot.received().len(), 20);
}

#[tokio::test]
async fn a_10000_alert_payload_arrives_as_one_message_under_20000_bytes() {
    let app = spawn_app(&yaml(&profile("ops", "tok")), &[]).await;
    let mut big: Value = serde_json::from_str(&payload("firing_single.json")).unwrap();
    let alert = big["alerts"][0].clone();
    big["alerts"] = Value::Array(vec![alert; 10_000]);
    let body = serde_json::to_vec(&big).unwrap();
    // Over 5 MB: also proves the default body cap takes a 10,000-alert notification.
    assert!(body.len() > 5_000_000);

    let response = app.post("ops", body).await;

    assert_ne!(response.status(), 413);
    assert_ne!(response.status(), 400);
    assert_eq!(response.status(), 200);
    let received = app.robot.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].body.to_string().len() <= 20_000);
    assert!(
        received[0].text().contains("条告警未显示"),
        "no N-more line"
    );
    assert!(
        app.metrics()
            .await
            .contains("alertrelay_messages_truncated_total{profile=\"ops\"} 1")
    );
}

#[tokio::test]
async fn retries_show_in_the_metrics() {
    let app = spawn_app(&yaml(&profile("ops", "tok")), &[]).await;
    app.robot
        .script([Reply::Http(500), Reply::Errcode(-1, "busy")]);

    assert_eq!(app.post("ops", numbered(1)).await.status(), 200);

    let text = app.metrics().await;
    assert!(
        text.contains("alertrelay_delivery_retries_total{profile=\"ops\"} 2"),
        "{text}"
    );
    assert!(text.contains("code=\"http_5xx\"} 1"), "{text}");
    assert!(text.contains("code=\"-1\"} 1"), "{text}");
    assert!(text.contains("code=\"0\"} 1"), "{text}");
}
