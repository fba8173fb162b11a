//! WeCom (企业微信) group robots: markdown and text delivered and answered 200 only once the
//! robot took them, mentions in each message type, labels that cannot mention, and WeCom's
//! own codes: 93000 for a key it does not know, 40058, -1 busy.

use std::time::Duration;

use serde_json::Value;

use super::{Chan, answer, edited, post, robot_requests, spawn};
use crate::helpers::{payload, spawn_app_with_robot};
use crate::robot::{Reply, RobotDouble};

const WECOM: Chan = Chan::WeCom;

#[tokio::test]
async fn a_wecom_markdown_notification_is_answered_200_only_once_the_robot_took_it() {
    let app = spawn(WECOM, "").await;
    // The robot takes its time: the answer must wait for it.
    app.robot.script([Reply::Delay(Duration::from_millis(300))]);

    let started = std::time::Instant::now();
    let (status, body) =
        answer(post(&app, "/wecom/ops/send", payload("firing_single.json")).await).await;

    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "answered before the robot"
    );
    assert_eq!(body["status"], "ok");
    assert_eq!(body["profile"], "ops");
    assert_eq!(body["alerts"], 1);
    let received = app.robot.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].token, super::TOKEN);
    assert_eq!(received[0].msgtype(), "markdown");
    let text = received[0].text();
    assert!(text.contains("【故障】1 条告警"), "{text}");
    assert!(text.contains("<font color=\"warning\">"), "{text}");
    assert!(text.contains("CPU使用率告警"), "{text}");

    let (status, _) = answer(post(&app, "/wecom/ops/send", payload("resolved.json")).await).await;
    assert_eq!(status, 200);
    let resolved = &app.robot.received()[1];
    assert_eq!(resolved.msgtype(), "markdown");
    assert!(
        resolved.text().contains("【恢复】1 条告警"),
        "{}",
        resolved.text()
    );
    assert!(
        resolved.text().contains("<font color=\"info\">"),
        "{}",
        resolved.text()
    );
}

#[tokio::test]
async fn a_wecom_text_notification_firing_and_resolved_is_delivered_as_text() {
    let app = spawn(WECOM, "    message: text\n").await;

    for (name, heading) in [
        ("firing_single.json", "【故障】1 条告警"),
        ("resolved.json", "【恢复】1 条告警"),
    ] {
        let (status, body) = answer(post(&app, "/wecom/ops/send", payload(name)).await).await;
        assert_eq!(status, 200, "{name}: {body}");
        let last = app.robot.received().pop().unwrap();
        assert_eq!(last.msgtype(), "text", "{name}");
        assert!(last.text().contains(heading), "{name}: {}", last.text());
        assert!(
            !last.text().contains("<font"),
            "markdown in a text message: {}",
            last.text()
        );
    }
    assert_eq!(app.robot.received().len(), 2);
}

#[tokio::test]
async fn wecom_text_mentions_fill_mentioned_list_and_mentioned_mobile_list() {
    let mention = "    message: text\n    mention: { all: true, mobiles: [\"13800001111\"], user_ids: [\"zhangsan\", \"lisi\"] }\n";
    let app = spawn(WECOM, mention).await;

    let (status, _) =
        answer(post(&app, "/wecom/ops/send", payload("firing_single.json")).await).await;

    assert_eq!(status, 200);
    let received = &app.robot.received()[0];
    assert_eq!(received.mentioned_list(), ["zhangsan", "lisi", "@all"]);
    assert_eq!(received.mentioned_mobile_list(), ["13800001111"]);
    assert!(received.inline_mentions().is_empty(), "{}", received.text());
}

#[tokio::test]
async fn wecom_markdown_mentions_are_user_ids_in_the_content() {
    let mention = "    mention: { user_ids: [\"zhangsan\", \"lisi\"] }\n";
    let app = spawn(WECOM, mention).await;

    let (status, _) =
        answer(post(&app, "/wecom/ops/send", payload("firing_single.json")).await).await;

    assert_eq!(status, 200);
    let received = &app.robot.received()[0];
    assert_eq!(received.msgtype(), "markdown");
    assert_eq!(received.inline_mentions(), ["zhangsan", "lisi"]);
    assert!(received.mentioned_list().is_empty());
}

/// `firing_single.json` whose labels and annotations try to mention someone.
fn with_mention_in_labels(tag: &str) -> String {
    edited("firing_single.json", |n| {
        let alert = &mut n["alerts"][0];
        alert["labels"]["instance"] = Value::from(format!("{tag}:9100"));
        alert["annotations"]["summary"] = Value::from(format!("CPU {tag} 高"));
        n["commonLabels"]["instance"] = alert["labels"]["instance"].clone();
    })
}

#[tokio::test]
async fn a_label_holding_an_at_tag_mentions_nobody_in_a_wecom_message() {
    for kind in WECOM.kinds() {
        let extra = format!("    message: {kind}\n    mention: {{ user_ids: [\"oncall\"] }}\n");
        let app = spawn(WECOM, &extra).await;

        let response = post(&app, "/wecom/ops/send", with_mention_in_labels("<@boss>")).await;

        assert_eq!(response.status(), 200, "{kind}");
        let received = &app.robot.received()[0];
        let text = received.text();
        assert!(text.contains("boss"), "{kind}: the label is gone: {text}");
        let mentioned = received.inline_mentions();
        assert!(
            !mentioned.contains(&"boss"),
            "{kind}: a label mentions: {text}"
        );
        if kind == "text" {
            assert!(mentioned.is_empty(), "{kind}: {text}");
            assert_eq!(received.mentioned_list(), ["oncall"]);
        } else {
            assert_eq!(mentioned, ["oncall"], "{kind}: {text}");
        }
    }
}

#[tokio::test]
async fn a_wecom_key_the_robot_does_not_know_is_answered_502_with_93000_at_once() {
    let robot = RobotDouble::start().await;
    let url = WECOM.unknown_url(&robot, "not-registered");
    let yaml = format!(
        "{}profiles:\n{}",
        super::QUICK,
        super::profile("ops", &url, "")
    );
    let app = spawn_app_with_robot(robot, &yaml, &[]).await;

    let (status, body) =
        answer(post(&app, "/wecom/ops/send", payload("firing_single.json")).await).await;

    assert_eq!(status, 502, "{body}");
    assert_eq!(body["channel"], "wecom");
    assert_eq!(body["errcode"], 93000);
    assert_eq!(body["errmsg"], "invalid webhook url");
    assert!(
        body.get("code").is_none(),
        "Feishu's field on WeCom: {body}"
    );
    assert_eq!(app.robot.requests(), 1, "93000 was retried");
    assert_eq!(app.robot.refused(93000), 1);
    assert!(
        !body.to_string().contains("not-registered"),
        "the key leaked: {body}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(&format!("{} 1", robot_requests("ops", WECOM, "93000"))),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "alertrelay_notifications_failed_total{profile=\"ops\",reason=\"refused\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_wecom_40058_is_answered_502_at_once_without_retry() {
    let app = spawn(WECOM, "").await;
    app.robot.script([Reply::Errcode(
        40058,
        "markdown.content exceed max length 4096. invalid Request Parameter",
    )]);

    let (status, body) =
        answer(post(&app, "/wecom/ops/send", payload("firing_single.json")).await).await;

    assert_eq!(status, 502, "{body}");
    assert_eq!(body["errcode"], 40058);
    assert_eq!(body["channel"], "wecom");
    assert!(body["errmsg"].as_str().unwrap().contains("4096"), "{body}");
    assert_eq!(app.robot.requests(), 1, "40058 was retried");
    assert!(app.robot.received().is_empty());
}

#[tokio::test]
async fn a_busy_wecom_robot_minus_1_is_retried_and_delivered() {
    let app = spawn(WECOM, "").await;
    app.robot.script([
        Reply::Errcode(-1, "system busy"),
        Reply::Errcode(-1, "system busy"),
    ]);

    let (status, body) =
        answer(post(&app, "/wecom/ops/send", payload("firing_single.json")).await).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(app.robot.requests(), 3);
    assert_eq!(app.robot.received().len(), 1);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(&format!("{} 2", robot_requests("ops", WECOM, "-1"))),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("{} 1", robot_requests("ops", WECOM, "0"))),
        "{metrics}"
    );
}
