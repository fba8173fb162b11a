//! Each robot's rate limits kept by alertrelay, not learned from its refusals: bursts over
//! WeCom's 20 a minute and Feishu's 5 a second and 100 a minute draw no frequency code and
//! lose no alert, merged cards keep their colour, and a budget belongs to one robot (channel
//! and token). Tokio's paused clock makes each minute cost no real time.

use std::time::Duration;

use tokio::time::Instant;

use serde_json::Value;

use super::{Chan, PATIENT, delivered_hosts, edited, numbered, post, profile, spawn_with};
use crate::helpers::{TestApp, distinct, spawn_app_with_robot};
use crate::robot::{Limits, Received, RobotDouble};

/// Posts notifications `range` to `path` all at once; (number, status) of each, in order.
async fn burst(app: &TestApp, path: &str, range: std::ops::Range<usize>) -> Vec<(usize, u16)> {
    let sends =
        range.map(|i| async move { (i, post(app, path, numbered(i)).await.status().as_u16()) });
    futures_util::future::join_all(sends).await
}

/// The most messages any window of `length` holds, by the double's clock.
fn most_in_any(received: &[Received], length: Duration) -> usize {
    let times: Vec<Instant> = received.iter().map(|r| r.at).collect();
    (0..times.len())
        .map(|i| {
            let within = |t: &&Instant| t.duration_since(times[i]) < length;
            times[i..].iter().take_while(within).count()
        })
        .max()
        .unwrap_or(0)
}

/// No frequency code caused by us; every notification delivered or answered 5xx, and none
/// answered 200 without its alert arriving. Returns how many were answered 200.
fn assert_nothing_lost(app: &TestApp, chan: Chan, answers: &[(usize, u16)]) -> usize {
    assert_eq!(
        app.robot.refused_by(chan.protocol(), chan.frequency_code()),
        0,
        "alertrelay made the robot throttle"
    );
    let arrived = delivered_hosts(&app.robot.received());
    let mut delivered = 0;
    for (i, status) in answers {
        match status {
            200 => {
                assert!(
                    arrived.binary_search(i).is_ok(),
                    "#{i} answered 200 but never arrived"
                );
                delivered += 1;
            }
            500..=599 => {}
            other => panic!("#{i} answered {other}"),
        }
    }
    delivered
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_60_to_one_wecom_robot_draws_no_45009_and_loses_no_alert() {
    for kind in Chan::WeCom.kinds() {
        let app = spawn_with(
            Chan::WeCom,
            PATIENT,
            &format!("    message: {kind}\n"),
            Limits::REAL,
        )
        .await;

        let answers = burst(&app, "/wecom/ops/send", 0..60).await;

        let delivered = assert_nothing_lost(&app, Chan::WeCom, &answers);
        assert_eq!(delivered, 60, "{kind}: {answers:?}");
        let received = app.robot.received();
        assert!(received.len() < 60, "{kind}: nothing was merged");
        assert!(
            most_in_any(&received, Duration::from_secs(60)) <= 20,
            "{kind}"
        );
        assert_eq!(
            delivered_hosts(&received),
            (0..60).collect::<Vec<_>>(),
            "{kind}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_120_to_one_feishu_bot_at_its_real_limits_draws_no_11232_and_loses_no_alert() {
    for kind in Chan::Feishu.kinds() {
        let app = spawn_with(
            Chan::Feishu,
            PATIENT,
            &format!("    message: {kind}\n"),
            Limits::REAL,
        )
        .await;

        let answers = burst(&app, "/feishu/ops/send", 0..120).await;

        let delivered = assert_nothing_lost(&app, Chan::Feishu, &answers);
        assert_eq!(delivered, 120, "{kind}: {answers:?}");
        let received = app.robot.received();
        assert!(received.len() < 120, "{kind}: nothing was merged");
        assert!(
            most_in_any(&received, Duration::from_secs(1)) <= 5,
            "{kind}"
        );
        assert!(
            most_in_any(&received, Duration::from_secs(60)) <= 100,
            "{kind}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_feishu_bot_sent_a_notification_every_50_ms_gets_at_most_5_a_second_by_its_clock() {
    // No burst at once but 20 a second for 20 s, counted by the bot up to 40 ms after they
    // were sent: the second's window binds first, then the minute's; merging keeps up.
    let app = spawn_with(Chan::Feishu, PATIENT, "    message: text\n", Limits::REAL).await;
    app.robot.lag_arrivals(Duration::from_millis(40));

    let sends = (0..400).map(|i| {
        let app = &app;
        async move {
            tokio::time::sleep(Duration::from_millis(50) * i as u32).await;
            (
                i,
                post(app, "/feishu/ops/send", numbered(i))
                    .await
                    .status()
                    .as_u16(),
            )
        }
    });
    let answers: Vec<(usize, u16)> = futures_util::future::join_all(sends).await;

    assert_nothing_lost(&app, Chan::Feishu, &answers);
    let received = app.robot.received();
    assert!(most_in_any(&received, Duration::from_secs(1)) <= 5);
    assert!(most_in_any(&received, Duration::from_secs(60)) <= 100);
    assert_eq!(delivered_hosts(&received), (0..400).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_120_to_a_feishu_bot_with_a_lowered_rate_limit_keeps_to_it() {
    let extra = "    message: text\n    rate_limit: 10\n";
    let app = spawn_with(Chan::Feishu, PATIENT, extra, Limits::REAL).await;

    let answers = burst(&app, "/feishu/ops/send", 0..120).await;

    let delivered = assert_nothing_lost(&app, Chan::Feishu, &answers);
    assert_eq!(delivered, 120, "{answers:?}");
    let received = app.robot.received();
    assert!(
        most_in_any(&received, Duration::from_secs(60)) <= 10,
        "over the profile's rate_limit"
    );
    assert!(most_in_any(&received, Duration::from_secs(1)) <= 5);
}

/// A one-alert resolved notification whose instance is `host-<i>`, a notification of its own.
fn numbered_resolved(i: usize) -> String {
    let body = edited("resolved.json", |n| {
        n["alerts"][0]["labels"]["instance"] = Value::from(format!("host-{i}:9100"));
        n["commonLabels"]["instance"] = Value::from(format!("host-{i}:9100"));
    });
    distinct(&body, i)
}

#[tokio::test(start_paused = true)]
async fn feishu_cards_merged_while_waiting_are_red_if_one_part_fires_and_say_how_many_they_hold() {
    let app = spawn_with(Chan::Feishu, PATIENT, "    rate_limit: 1\n", Limits::REAL).await;
    let app = &app;
    assert_eq!(
        post(app, "/feishu/ops/send", numbered_resolved(0))
            .await
            .status(),
        200
    );

    // Behind the spent budget: resolved ones with one firing among them, then resolved only.
    let mixed = (1..=10).map(|i| {
        let body = if i == 5 {
            numbered(i)
        } else {
            numbered_resolved(i)
        };
        async move { post(app, "/feishu/ops/send", body).await.status().as_u16() }
    });
    let mixed = futures_util::future::join_all(mixed).await;
    let resolved = (11..=15).map(|i| async move {
        post(app, "/feishu/ops/send", numbered_resolved(i))
            .await
            .status()
            .as_u16()
    });
    let resolved = futures_util::future::join_all(resolved).await;

    assert_eq!(mixed, [200; 10]);
    assert_eq!(resolved, [200; 5]);
    let received = app.robot.received();
    assert_eq!(received.len(), 3, "not merged into one card each");
    let (merged, all_resolved) = (&received[1], &received[2]);
    assert_eq!(
        merged.card_header_template(),
        Some("red"),
        "a firing alert in a green card"
    );
    let title = merged.card_header_title().unwrap();
    assert!(title.starts_with("[合并10条] "), "{title}");
    assert!(merged.text().contains("【故障】") && merged.text().contains("【恢复】"));
    assert_eq!(all_resolved.card_header_template(), Some("green"));
    assert!(
        all_resolved
            .card_header_title()
            .unwrap()
            .starts_with("[合并5条] ")
    );
    assert_eq!(delivered_hosts(&received), (0..=15).collect::<Vec<_>>());
    assert_eq!(
        merged.card_buttons().len(),
        3,
        "the first part's buttons: {:?}",
        merged.card_buttons()
    );
}

#[tokio::test(start_paused = true)]
async fn two_wecom_profiles_on_one_key_share_its_budget_and_a_feishu_bot_of_that_token_is_not_slowed()
 {
    let robot = RobotDouble::start().await;
    let (wecom, feishu) = (
        Chan::WeCom.url(&robot, "shared"),
        Chan::Feishu.url(&robot, "shared"),
    );
    let text = "    message: text\n";
    let profiles = [
        profile("a", &wecom, text),
        profile("b", &wecom, text),
        profile("c", &feishu, text),
    ];
    let yaml = format!("{PATIENT}profiles:\n{}", profiles.concat());
    let app = spawn_app_with_robot(robot, &yaml, &[]).await;
    let started = Instant::now();
    // Profile a spends the WeCom robot's whole minute, one message at a time.
    for i in 0..20 {
        assert_eq!(post(&app, "/wecom/a/send", numbered(i)).await.status(), 200);
    }

    let (b, c) = tokio::join!(
        async {
            let status = post(&app, "/wecom/b/send", numbered(100)).await.status();
            (status, started.elapsed())
        },
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let status = post(&app, "/feishu/c/send", numbered(200)).await.status();
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
        "the Feishu bot waited {:?}",
        c.1
    );
    assert_eq!(app.robot.refused_by(Chan::WeCom.protocol(), 45009), 0);
    let wecom: Vec<Received> = app
        .robot
        .received()
        .into_iter()
        .filter(|r| r.protocol == Chan::WeCom.protocol())
        .collect();
    assert_eq!(wecom.len(), 21);
    assert!(most_in_any(&wecom, Duration::from_secs(60)) <= 20);
}
