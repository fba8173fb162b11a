//! `POST /preview/<p>` for WeCom and Feishu profiles: the channel, the message type, and the
//! exact body the robot would get (compared with a body the double really received for the
//! same payload), its size within the channel's cap, a Feishu card's header and buttons, and
//! the warnings about what a channel cannot mention. Nothing reaches the robot.

use serde_json::Value;

use super::{Chan, TOKEN, answer, many_alerts, spawn};
use crate::helpers::{TestApp, payload};

/// The preview of `body` for profile `ops`.
async fn preview(app: &TestApp, body: impl Into<reqwest::Body>) -> Value {
    let response = app
        .http
        .post(app.url("/preview/ops"))
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, answer) = answer(response).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// Previews `name`, then delivers it; the preview and the body the double received.
async fn previewed_then_delivered(app: &TestApp, chan: Chan, name: &str) -> (Value, Value) {
    let previewed = preview(app, payload(name)).await;
    assert_eq!(app.robot.requests(), 0, "a preview reached the robot");
    let response = super::post(app, &chan.path("ops"), payload(name)).await;
    assert_eq!(response.status(), 200);
    let mut received = app.robot.received();
    assert_eq!(received.len(), 1);
    (previewed, received.remove(0).body)
}

#[tokio::test]
async fn a_wecom_preview_answers_the_body_the_robot_receives_for_each_message_type() {
    for (kind, limit) in [("markdown", 4096), ("text", 2048)] {
        let mention =
            "    mention: { all: true, mobiles: [\"13800001111\"], user_ids: [\"zhangsan\"] }\n";
        let app = spawn(Chan::WeCom, &format!("    message: {kind}\n{mention}")).await;

        let (previewed, delivered) =
            previewed_then_delivered(&app, Chan::WeCom, "resolved.json").await;

        assert_eq!(previewed["channel"], "wecom", "{previewed}");
        assert_eq!(previewed["msgtype"], kind);
        assert_eq!(
            previewed["body"], delivered,
            "{kind}: the preview is not what was sent"
        );
        let content = delivered[kind]["content"].as_str().unwrap();
        assert_eq!(
            previewed["bytes"],
            content.len(),
            "{kind}: WeCom counts the content"
        );
        assert_eq!(previewed["limit"], limit, "{kind}");
        assert!(
            previewed.get("card").is_none_or(Value::is_null),
            "{kind}: {previewed}"
        );
        assert!(
            !previewed.to_string().contains(TOKEN),
            "{kind}: the key leaked"
        );
    }
}

#[tokio::test]
async fn a_feishu_card_preview_answers_the_body_and_the_cards_header_colour_and_button() {
    let app = spawn(Chan::Feishu, "    mention: { user_ids: [\"ou_123\"] }\n").await;

    let (previewed, delivered) =
        previewed_then_delivered(&app, Chan::Feishu, "resolved.json").await;
    let firing = preview(&app, payload("firing_single.json")).await;

    assert_eq!(previewed["channel"], "feishu", "{previewed}");
    assert_eq!(previewed["msgtype"], "card");
    assert_eq!(
        previewed["body"], delivered,
        "the preview is not what was sent"
    );
    let posted = serde_json::to_vec(&delivered).unwrap().len();
    let bytes = previewed["bytes"].as_u64().unwrap() as usize;
    assert!(
        posted <= bytes && bytes <= posted + 100,
        "{bytes} bytes for a {posted}-byte body"
    );
    assert_eq!(previewed["limit"], 20_000);
    let card = &previewed["card"];
    assert_eq!(card["template"], "green", "{card}");
    assert_eq!(
        card["title"],
        delivered["card"]["header"]["title"]["content"]
    );
    assert_eq!(card["title"], "[恢复:1] CPU使用率告警");
    assert!(
        card["buttons"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:19093/#/alerts?filter="),
        "{card}"
    );
    assert_eq!(card["buttons"][1]["text"], "静默 2 小时", "{card}");
    assert!(!card["buttons"][0]["text"].as_str().unwrap().is_empty());
    assert_eq!(firing["card"]["template"], "red", "{firing}");
    assert_eq!(firing["card"]["title"], "[故障:1] CPU使用率告警");
}

#[tokio::test]
async fn a_feishu_text_preview_answers_the_body_the_bot_receives() {
    let app = spawn(
        Chan::Feishu,
        "    message: text\n    mention: { all: true }\n",
    )
    .await;

    let (previewed, delivered) =
        previewed_then_delivered(&app, Chan::Feishu, "resolved.json").await;

    assert_eq!(previewed["msgtype"], "text");
    assert_eq!(previewed["body"], delivered);
    assert_eq!(delivered["msg_type"], "text");
    assert!(
        previewed.get("card").is_none_or(Value::is_null),
        "{previewed}"
    );
    assert!(previewed["bytes"].as_u64().unwrap() <= previewed["limit"].as_u64().unwrap());
}

#[tokio::test]
async fn a_signed_feishu_preview_is_the_sent_body_without_timestamp_sign_or_secret() {
    let robot = crate::robot::RobotDouble::start().await;
    robot.require_feishu_signature(TOKEN, "SECpreview");
    let url = Chan::Feishu.url(&robot, TOKEN);
    let yaml = format!(
        "profiles:\n{}",
        super::profile("ops", &url, "    secret: SECpreview\n")
    );
    let app = crate::helpers::spawn_app_with_robot(robot, &yaml, &[]).await;

    let (previewed, mut delivered) =
        previewed_then_delivered(&app, Chan::Feishu, "resolved.json").await;

    let signed = delivered.as_object_mut().unwrap();
    assert!(signed.remove("sign").is_some() && signed.remove("timestamp").is_some());
    assert_eq!(previewed["body"], delivered);
    assert!(
        !previewed.to_string().contains("SECpreview"),
        "the secret leaked"
    );
    let bytes = previewed["bytes"].as_u64().unwrap() as usize;
    let posted = app.robot.received()[0].body.to_string().len();
    assert!(
        bytes >= posted,
        "the signature's bytes are not counted: {bytes} < {posted}"
    );
}

#[tokio::test]
async fn previews_warn_about_mentions_the_channel_cannot_make() {
    let mention = "    mention: { all: true, mobiles: [\"13800001111\"], user_ids: [\"u1\"] }\n";
    let wecom = spawn(Chan::WeCom, mention).await;
    let feishu = spawn(Chan::Feishu, mention).await;

    let wecom = preview(&wecom, "").await["warnings"].to_string();
    let feishu = preview(&feishu, "").await["warnings"].to_string();

    assert!(
        wecom.contains("WeCom markdown messages cannot mention everyone"),
        "{wecom}"
    );
    assert!(wecom.contains("by mobile number"), "{wecom}");
    assert!(
        feishu.contains("Feishu card messages cannot mention by mobile number"),
        "{feishu}"
    );
}

#[tokio::test]
async fn a_500_alert_preview_is_cut_under_each_channels_cap_and_warned_about() {
    for (chan, kind, words) in [
        (Chan::Feishu, "text", "Feishu's 20000-byte cap"),
        (
            Chan::WeCom,
            "markdown",
            "WeCom's 4096-byte cap on a markdown message's content",
        ),
        (
            Chan::WeCom,
            "text",
            "WeCom's 2048-byte cap on a text message's content",
        ),
        (Chan::Feishu, "card", "Feishu's 20000-byte cap"),
    ] {
        let app = spawn(chan, &format!("    message: {kind}\n")).await;

        // 500 alerts, far over every cap: a preview renders the whole notification a second
        // time to say how large it would be, within the render worker's 2 s even on a busy
        // machine.
        let previewed = preview(&app, many_alerts(500)).await;

        let (bytes, limit) = (
            previewed["bytes"].as_u64().unwrap(),
            previewed["limit"].as_u64().unwrap(),
        );
        assert!(bytes <= limit, "{kind}: {bytes} > {limit}");
        assert!(previewed["omitted"].as_u64().unwrap() > 400, "{kind}");
        let warning = previewed["warnings"][0].as_str().unwrap();
        assert!(warning.contains(words), "{kind}: {warning}");
        assert_eq!(app.robot.requests(), 0);
    }
}

#[tokio::test]
async fn a_preview_shows_wecom_and_feishu_colours_not_their_font_tags_as_text() {
    for chan in [Chan::WeCom, Chan::Feishu] {
        let app = spawn(chan, "").await;

        let html = preview(&app, payload("firing_single.json")).await["html"]
            .as_str()
            .unwrap()
            .to_owned();

        assert!(
            !html.contains("&lt;font"),
            "{chan:?}: a font tag shown as text: {html}"
        );
        let colour = match chan {
            Chan::WeCom => "class=\"wecom-warning\"",
            _ => "class=\"lark-red\"",
        };
        assert!(html.contains(colour), "{chan:?}: no colour: {html}");
    }
}
