//! Feishu/Lark custom bots: a card red while firing and green once resolved, with the title
//! template's title and a button to Alertmanager, or plain text; signing in the body; mentions
//! in each message type; Feishu's own codes and its older `StatusCode` answers.

use serde_json::Value;

use super::{Chan, TOKEN, answer, edited, post, robot_requests, spawn};
use crate::helpers::{distinct, payload, spawn_app_with_robot};
use crate::robot::{Reply, RobotDouble};

const FEISHU: Chan = Chan::Feishu;

/// Alertmanager's external URL in the captured payloads.
const EXTERNAL_URL: &str = "http://127.0.0.1:19093";

#[tokio::test]
async fn a_feishu_card_is_red_while_firing_green_once_resolved_with_the_built_in_buttons() {
    let app = spawn(FEISHU, "").await;

    for (name, colour, title, heading) in [
        (
            "firing_single.json",
            "red",
            "[故障:1] CPU使用率告警",
            "【故障】1 条告警",
        ),
        (
            "resolved.json",
            "green",
            "[恢复:1] CPU使用率告警",
            "【恢复】1 条告警",
        ),
    ] {
        let (status, body) = answer(post(&app, "/feishu/ops/send", payload(name)).await).await;

        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body["status"], "ok");
        let card = app
            .robot
            .received()
            .pop()
            .expect("answered 200, not received");
        assert_eq!(card.token, TOKEN);
        assert_eq!(card.msgtype(), "interactive", "{name}");
        assert_eq!(card.card_header_template(), Some(colour), "{name}");
        assert_eq!(card.card_header_title(), Some(title), "{name}");
        assert!(card.text().contains(heading), "{name}: {}", card.text());
        // The built-in buttons, as under a DingTalk action card: the group in
        // Alertmanager, a silence for it, the first alert's graph.
        let buttons = card.card_buttons();
        let texts: Vec<&str> = buttons.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(
            texts,
            ["查看告警", "静默 2 小时", "Prometheus 图表"],
            "{name}"
        );
        assert!(
            buttons[0]
                .url
                .starts_with(&format!("{EXTERNAL_URL}/#/alerts?filter=")),
            "{name}: {buttons:?}"
        );
        assert!(
            buttons[1]
                .url
                .starts_with(&format!("{EXTERNAL_URL}/#/silences/new?filter=")),
            "{name}: {buttons:?}"
        );
        assert!(buttons[2].url.starts_with("http"), "{name}: {buttons:?}");
        assert_eq!(buttons[0].kind.as_deref(), Some("primary"));
    }
    assert_eq!(app.robot.received().len(), 2);
}

#[tokio::test]
async fn a_feishu_card_title_is_the_profiles_title_template() {
    let app = spawn(
        FEISHU,
        "    title: \"{{ status }} / {{ commonLabels.hostname | default(value='-') }}\"\n",
    )
    .await;

    let response = post(&app, "/feishu/ops/send", payload("firing_single.json")).await;

    assert_eq!(response.status(), 200);
    let card = &app.robot.received()[0];
    assert_eq!(card.card_header_title(), Some("firing / wms-app-01"));
}

#[tokio::test]
async fn a_feishu_text_notification_firing_and_resolved_is_delivered_as_text() {
    let app = spawn(FEISHU, "    message: text\n").await;

    for (name, heading) in [
        ("firing_single.json", "【故障】1 条告警"),
        ("resolved.json", "【恢复】1 条告警"),
    ] {
        let (status, body) = answer(post(&app, "/feishu/ops/send", payload(name)).await).await;
        assert_eq!(status, 200, "{name}: {body}");
        let last = app.robot.received().pop().unwrap();
        assert_eq!(last.msgtype(), "text", "{name}");
        assert!(last.text().contains(heading), "{name}: {}", last.text());
        assert!(last.body.get("card").is_none());
    }
}

/// A profile whose secret is `secret`, on a bot that wants `wanted`.
async fn signed_app(secret: &str, wanted: &str, extra: &str) -> crate::helpers::TestApp {
    let robot = RobotDouble::start().await;
    robot.require_feishu_signature(TOKEN, wanted);
    let url = FEISHU.url(&robot, TOKEN);
    let extra = format!("    secret: {secret}\n{extra}");
    let yaml = format!(
        "{}profiles:\n{}",
        super::QUICK,
        super::profile("ops", &url, &extra)
    );
    spawn_app_with_robot(robot, &yaml, &[]).await
}

#[tokio::test]
async fn a_signed_feishu_bot_takes_every_message_type_signed_in_the_body() {
    for kind in FEISHU.kinds() {
        let app = signed_app("SECfeishu", "SECfeishu", &format!("    message: {kind}\n")).await;

        let first = post(&app, "/feishu/ops/send", payload("firing_single.json")).await;
        let second = post(&app, "/send/ops", payload("resolved.json")).await;

        assert_eq!(first.status(), 200, "{kind}");
        assert_eq!(second.status(), 200, "{kind}");
        let received = app.robot.received();
        assert_eq!(received.len(), 2, "{kind}");
        assert!(
            received[0].body["sign"].is_string(),
            "{kind}: {}",
            received[0].body
        );
        assert!(received[0].body["timestamp"].is_string(), "{kind}");
    }
}

#[tokio::test]
async fn a_wrong_feishu_secret_is_answered_502_with_19021_and_not_retried() {
    let app = signed_app("SECwrong", "SECright", "").await;

    let (status, body) =
        answer(post(&app, "/feishu/ops/send", payload("firing_single.json")).await).await;

    assert_eq!(status, 502, "{body}");
    assert_eq!(body["channel"], "feishu");
    assert_eq!(body["code"], 19021);
    assert!(
        body["msg"].as_str().unwrap().contains("sign match fail"),
        "{body}"
    );
    assert!(
        body.get("errcode").is_none(),
        "DingTalk's field on Feishu: {body}"
    );
    assert!(
        !body.to_string().contains("SECwrong"),
        "the secret leaked: {body}"
    );
    assert_eq!(app.robot.requests(), 1, "19021 was retried");
    assert_eq!(app.robot.refused(19021), 1);
}

#[tokio::test]
async fn feishu_text_mentions_are_at_user_id_tags() {
    let mention = "    message: text\n    mention: { all: true, user_ids: [\"ou_123\"] }\n";
    let app = spawn(FEISHU, mention).await;

    assert_eq!(
        post(&app, "/feishu/ops/send", payload("firing_single.json"))
            .await
            .status(),
        200
    );

    let received = &app.robot.received()[0];
    assert_eq!(
        received.inline_mentions(),
        ["all", "ou_123"],
        "{}",
        received.text()
    );
    assert!(
        received.text().contains("<at user_id=\"all\">所有人</at>"),
        "{}",
        received.text()
    );
    assert!(
        received.text().contains("<at user_id=\"ou_123\">"),
        "{}",
        received.text()
    );
}

#[tokio::test]
async fn feishu_card_mentions_are_at_id_tags_in_the_card_text() {
    let mention = "    mention: { all: true, user_ids: [\"ou_123\", \"ou_456\"] }\n";
    let app = spawn(FEISHU, mention).await;

    assert_eq!(
        post(&app, "/feishu/ops/send", payload("firing_single.json"))
            .await
            .status(),
        200
    );

    let received = &app.robot.received()[0];
    assert_eq!(received.msgtype(), "interactive");
    assert_eq!(
        received.inline_mentions(),
        ["all", "ou_123", "ou_456"],
        "{}",
        received.text()
    );
    assert!(
        received.text().contains("<at id=ou_123></at>"),
        "{}",
        received.text()
    );
}

#[tokio::test]
async fn a_label_holding_an_at_tag_mentions_nobody_in_a_feishu_message() {
    for kind in FEISHU.kinds() {
        let extra = format!("    message: {kind}\n    mention: {{ user_ids: [\"ou_oncall\"] }}\n");
        let app = spawn(FEISHU, &extra).await;
        let body = edited("firing_single.json", |n| {
            let alert = &mut n["alerts"][0];
            alert["labels"]["instance"] = Value::from("<at user_id=\"all\">所有人</at>");
            alert["annotations"]["summary"] =
                Value::from("CPU <at id=all></at> <at user_id=\"ou_boss\"></at>");
        });

        assert_eq!(
            post(&app, "/feishu/ops/send", body).await.status(),
            200,
            "{kind}"
        );

        let received = &app.robot.received()[0];
        assert_eq!(
            received.inline_mentions(),
            ["ou_oncall"],
            "{kind}: {}",
            received.text()
        );
        assert!(
            received.text().contains("所有人"),
            "{kind}: the label is gone"
        );
    }
}

#[tokio::test]
async fn feishu_permanent_codes_19024_and_9499_are_answered_502_at_once() {
    for (code, msg) in [
        (19024, "Key Words Not Found"),
        (9499, "Bad Request"),
        (19022, "Ip Not Allowed"),
    ] {
        let app = spawn(FEISHU, "").await;
        app.robot.script([Reply::Errcode(code, msg)]);

        let (status, body) =
            answer(post(&app, "/feishu/ops/send", payload("firing_single.json")).await).await;

        assert_eq!(status, 502, "{code}: {body}");
        assert_eq!(body["code"], code);
        assert_eq!(body["msg"], msg);
        assert_eq!(body["channel"], "feishu");
        assert_eq!(app.robot.requests(), 1, "{code} was retried");
        let metrics = app.metrics().await;
        let line = format!("{} 1", robot_requests("ops", FEISHU, &code.to_string()));
        assert!(metrics.contains(&line), "{code}: {metrics}");
    }
}

#[tokio::test]
async fn a_feishu_token_the_bot_does_not_know_is_answered_502_with_19001() {
    let robot = RobotDouble::start().await;
    let url = FEISHU.unknown_url(&robot, "tok-not-registered");
    let yaml = format!(
        "{}profiles:\n{}",
        super::QUICK,
        super::profile("ops", &url, "")
    );
    let app = spawn_app_with_robot(robot, &yaml, &[]).await;

    let (status, body) =
        answer(post(&app, "/feishu/ops/send", payload("firing_single.json")).await).await;

    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], 19001);
    assert_eq!(app.robot.requests(), 1);
    assert!(
        !body.to_string().contains("tok-not-registered"),
        "the token leaked: {body}"
    );
}

#[tokio::test]
async fn a_feishu_bot_answering_the_legacy_status_code_form_is_read_right() {
    let app = spawn(FEISHU, "").await;
    app.robot.feishu_legacy_answers();

    let delivered = post(&app, "/feishu/ops/send", payload("firing_single.json")).await;
    app.robot
        .script([Reply::Errcode(19024, "Key Words Not Found")]);
    // Another notification: the first one again would be a duplicate, never sent.
    let other = distinct(&payload("firing_single.json"), 1);
    let (refused, refusal) = answer(post(&app, "/feishu/ops/send", other).await).await;

    assert_eq!(delivered.status(), 200);
    assert_eq!(app.robot.received().len(), 1);
    assert_eq!(refused, 502, "{refusal}");
    assert_eq!(refusal["code"], 19024, "{refusal}");
    assert_eq!(refusal["msg"], "Key Words Not Found");
}

#[tokio::test(start_paused = true)]
async fn a_feishu_legacy_11232_is_read_as_throttled_and_answered_503() {
    let app = spawn(FEISHU, "").await;
    app.robot.feishu_legacy_answers();
    app.robot
        .script([Reply::Errcode(11232, "frequency limited")]);

    let (status, body) =
        answer(post(&app, "/feishu/ops/send", payload("firing_single.json")).await).await;

    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], 11232);
    assert_eq!(app.robot.requests(), 1);
}

#[tokio::test]
async fn a_title_template_that_renders_empty_still_delivers_a_feishu_card_with_a_title() {
    let title = "    title: \"{{ commonLabels.nope | default(value='') }}\"\n";
    let app = spawn(FEISHU, title).await;

    let (status, body) =
        answer(post(&app, "/feishu/ops/send", payload("firing_single.json")).await).await;

    assert_eq!(status, 200, "{body}");
    let card = &app.robot.received()[0];
    assert!(
        !card
            .card_header_title()
            .unwrap_or_default()
            .trim()
            .is_empty()
    );
}

#[tokio::test]
async fn a_feishu_cards_own_buttons_replace_its_one_button_and_the_bot_takes_them() {
    let buttons = "    buttons:\n      - { title: 静默 2 小时, url: \"{{ externalURL }}/#/silences/new?filter={{ groupLabels | am_filter }}\" }\n      - { title: 图表, url: \"{{ alerts[0].generatorURL }}\" }\n      - { title: 坏, url: \"javascript:x\" }\n";
    let app = spawn(FEISHU, buttons).await;

    let (status, body) = answer(post(&app, "/send/ops", payload("firing_single.json")).await).await;

    assert_eq!(status, 200, "{body}");
    let card = app.robot.received().pop().unwrap();
    let buttons = card.card_buttons();
    let texts: Vec<&str> = buttons.iter().map(|b| b.text.as_str()).collect();
    assert_eq!(texts, ["静默 2 小时", "图表"]);
    assert_eq!(
        buttons[0].url,
        format!(
            "{EXTERNAL_URL}/#/silences/new?filter=%7Balertname%3D%22CPU%E4%BD%BF%E7%94%A8%E7%8E%87%E5%91%8A%E8%AD%A6%22%7D"
        )
    );
    assert_eq!(buttons[0].kind.as_deref(), Some("primary"));
    assert!(buttons[1].url.starts_with("http://prometheus-0:9090/graph"));
}
