//! A frequency code the robot answers anyway (WeCom 45009, Feishu 11232, also in Feishu's
//! older answer form) is answered 503 and the robot is left alone for its penalty, a minute
//! or a shorter `throttle_penalty`, budget or not; waiting webhooks are answered at once.

use std::time::Duration;

use tokio::time::Instant;

use super::{Chan, PATIENT, answer, delivered_hosts, numbered, post, spawn_with};
use crate::robot::{Limits, Reply};

async fn a_frequency_code_leaves_the_robot_alone_for_a_minute(chan: Chan) {
    let app = spawn_with(chan, PATIENT, "", Limits::REAL).await;
    let path = chan.path("ops");
    app.robot
        .script([Reply::Errcode(chan.frequency_code(), "frequency limited")]);

    let (first, body) = answer(post(&app, &path, numbered(1)).await).await;
    let requests = app.robot.requests();
    let started = Instant::now();
    let second = post(&app, &path, numbered(2)).await;
    let quickly = started.elapsed();
    tokio::time::sleep(Duration::from_secs(50)).await;
    let still = post(&app, &path, numbered(3)).await;
    let untouched = app.robot.requests();
    tokio::time::sleep(Duration::from_secs(11)).await;
    let later = post(&app, &path, numbered(4)).await;

    assert_eq!(first, 503, "{body}");
    assert_eq!(body[chan.fields().0], chan.frequency_code(), "{body}");
    assert_eq!(body["channel"], chan.name());
    assert_eq!(requests, 1, "the frequency code was retried");
    assert_eq!(second.status(), 503);
    assert!(quickly < Duration::from_secs(1), "{quickly:?}");
    assert_eq!(still.status(), 503, "the penalty ended before a minute");
    assert_eq!(untouched, requests, "the throttled robot was sent to");
    assert_eq!(later.status(), 200, "still held back after a minute");
    assert_eq!(delivered_hosts(&app.robot.received()), [4]);
    let metrics = app.metrics().await;
    assert!(metrics.contains("reason=\"throttled\"} 3"), "{metrics}");
}

#[tokio::test(start_paused = true)]
async fn a_wecom_45009_is_answered_503_and_the_robot_left_alone_for_a_minute() {
    a_frequency_code_leaves_the_robot_alone_for_a_minute(Chan::WeCom).await;
}

#[tokio::test(start_paused = true)]
async fn a_feishu_11232_is_answered_503_and_the_bot_left_alone_for_a_minute() {
    a_frequency_code_leaves_the_robot_alone_for_a_minute(Chan::Feishu).await;
}

#[tokio::test(start_paused = true)]
async fn a_shorter_throttle_penalty_holds_for_wecom_and_feishu_and_also_without_a_budget() {
    for (chan, extra) in [
        (Chan::WeCom, ""),
        (Chan::Feishu, ""),
        (Chan::WeCom, "    rate_limit: 0\n"),
        (Chan::Feishu, "    rate_limit: 0\n"),
    ] {
        let globals = format!("{PATIENT}throttle_penalty: 10s\n");
        let app = spawn_with(chan, &globals, extra, Limits::REAL).await;
        app.robot
            .script([Reply::Errcode(chan.frequency_code(), "frequency limited")]);

        let first = post(&app, &chan.path("ops"), numbered(1))
            .await
            .status()
            .as_u16();
        let held = post(&app, &chan.path("ops"), numbered(2))
            .await
            .status()
            .as_u16();
        let requests = app.robot.requests();
        tokio::time::sleep(Duration::from_secs(11)).await;
        let later = post(&app, &chan.path("ops"), numbered(3))
            .await
            .status()
            .as_u16();

        assert_eq!((first, held), (503, 503), "{chan:?} {extra}");
        assert_eq!(
            requests, 1,
            "{chan:?} {extra}: the throttled robot was sent to"
        );
        assert_eq!(later, 200, "{chan:?} {extra}: held past throttle_penalty");
    }
}
