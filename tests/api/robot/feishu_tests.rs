//! Tests of the Feishu double itself, driven straight with reqwest: its token and signature
//! checks, the text and card shapes, the 20 KB cap, 5 a second and 100 a minute, and the
//! legacy answer form.

use std::time::Duration;

use serde_json::{Value, json};

use super::feishu::expected_sign;
use super::probe::{post, post_raw};
use super::{
    CardButton, FEISHU_BODY_CAP, FEISHU_PER_MINUTE, FEISHU_PER_SECOND, Protocol, Reply, RobotDouble,
};

fn text(content: &str) -> Value {
    json!({ "msg_type": "text", "content": { "text": content } })
}

fn card() -> Value {
    json!({ "msg_type": "interactive", "card": {
        "header": { "title": { "tag": "plain_text", "content": "【故障】磁盘告警" }, "template": "red" },
        "elements": [
            { "tag": "div", "text": { "tag": "lark_md", "content": "**主机** host-1 <at id=all></at>" } },
            { "tag": "hr" },
            { "tag": "markdown", "content": "使用率 93%" },
            { "tag": "action", "actions": [{
                "tag": "button", "text": { "tag": "plain_text", "content": "查看" },
                "url": "http://am:9093", "type": "primary",
            }]},
        ],
    }})
}

/// `body` signed at `timestamp` (seconds) with `secret`, as Feishu wants it: in the body.
fn signed(mut body: Value, secret: &str, timestamp: i64) -> Value {
    let timestamp = timestamp.to_string();
    body["sign"] = json!(expected_sign(secret, &timestamp));
    body["timestamp"] = json!(timestamp);
    body
}

#[tokio::test]
async fn the_feishu_double_accepts_a_text_message_with_code_0() {
    let robot = RobotDouble::start().await;
    let url = robot.feishu_url("t1");

    let answer = post(&url, &text("磁盘告警 <at user_id=\"ou_123\">Tom</at>")).await;

    assert_eq!(answer, json!({ "code": 0, "msg": "success", "data": {} }));
    let message = &robot.received()[0];
    assert_eq!(
        (message.protocol, message.token.as_str()),
        (Protocol::Feishu, "t1")
    );
    assert_eq!(message.msgtype(), "text");
    assert_eq!(message.text(), "磁盘告警 <at user_id=\"ou_123\">Tom</at>");
    assert_eq!(message.inline_mentions(), ["ou_123"]);
}

#[tokio::test]
async fn the_feishu_double_refuses_an_unknown_token_with_19001() {
    let robot = RobotDouble::start().await;
    robot.feishu_url("known");

    let url = format!("http://{}/open-apis/bot/v2/hook/other", robot.addr);
    let answer = post(&url, &text("hello")).await;

    assert_eq!(answer["code"], 19001, "{answer}");
    assert_eq!(
        answer["msg"],
        "param invalid: incoming webhook access token invalid"
    );
    assert_eq!(robot.refused(19001), 1);
    assert!(robot.received().is_empty());
}

#[tokio::test]
async fn the_feishu_double_checks_the_signature_in_the_body() {
    let robot = RobotDouble::start().await;
    robot.require_feishu_signature("t", "s3cret");
    let url = robot.feishu_url("t");
    let now = chrono::Utc::now().timestamp();

    let good = post(&url, &signed(text("ok"), "s3cret", now)).await;
    let within_the_hour = post(&url, &signed(text("ok"), "s3cret", now - 3500)).await;
    let mut in_query = text("x");
    in_query["timestamp"] = json!(now.to_string());
    let in_query_url = format!(
        "{url}?timestamp={now}&sign={}",
        expected_sign("s3cret", &now.to_string())
    );
    let refused = [
        post(&url, &text("unsigned")).await,
        post(&url, &signed(text("x"), "wrong", now)).await,
        post(&url, &signed(text("x"), "s3cret", now - 3700)).await,
        post(&url, &signed(text("x"), "s3cret", now + 3700)).await,
        post(&in_query_url, &in_query).await,
        // DingTalk's milliseconds are not Feishu's seconds.
        post(&url, &signed(text("x"), "s3cret", now * 1000)).await,
    ];
    let mut numeric = signed(text("x"), "s3cret", now);
    numeric["timestamp"] = json!(now);
    let numeric = post(&url, &numeric).await;

    assert_eq!(good["code"], 0, "{good}");
    assert_eq!(within_the_hour["code"], 0, "{within_the_hour}");
    for answer in refused.iter().chain([&numeric]) {
        assert_eq!(answer["code"], 19021, "{answer}");
        assert_eq!(
            answer["msg"],
            "sign match fail or timestamp is not within one hour from current time"
        );
    }
    assert_eq!(robot.received().len(), 2);
}

#[test]
fn the_feishu_signature_is_the_guides_hmac_keyed_by_timestamp_and_secret_over_nothing() {
    // Computed apart from this code, with Python's hmac and base64 following the guide:
    // hmac.new(b"1599360473\ns3cret", b"", sha256), base64-encoded. DingTalk's way (keyed by
    // the secret over "timestamp\nsecret") gives uj0sqf4K… instead.
    assert_eq!(
        expected_sign("s3cret", "1599360473"),
        "QQHOl6fWr0/7EF26jw8goDL6Cc0vHLHZYLDituMJB4s="
    );
}

#[tokio::test]
async fn the_feishu_double_reads_a_cards_header_buttons_and_markdown() {
    let robot = RobotDouble::start().await;
    let url = robot.feishu_url("t");

    assert_eq!(post(&url, &card()).await["code"], 0);

    let message = &robot.received()[0];
    assert_eq!(message.msgtype(), "interactive");
    assert_eq!(message.card_header_title(), Some("【故障】磁盘告警"));
    assert_eq!(message.card_header_template(), Some("red"));
    assert_eq!(
        message.text(),
        "**主机** host-1 <at id=all></at>\n使用率 93%"
    );
    assert_eq!(message.inline_mentions(), ["all"]);
    assert_eq!(
        message.card_buttons(),
        [CardButton {
            text: "查看".into(),
            url: "http://am:9093".into(),
            kind: Some("primary".into()),
        }]
    );
}

#[tokio::test]
async fn the_feishu_double_refuses_unknown_types_missing_content_and_bad_cards_with_9499() {
    let robot = RobotDouble::start().await;
    let url = robot.feishu_url("t");
    let mut bad_cards = Vec::new();
    for (pointer, value) in [
        ("/card/header/template", json!("pink")),
        ("/card/header/title/tag", json!("lark_md")),
        ("/card/elements", json!([])),
        ("/card/elements/0/tag", json!("table")),
        ("/card/elements/0/text/tag", json!("html")),
        ("/card/elements/3/actions/0/url", json!(null)),
        ("/card/elements/3/actions/0/type", json!("huge")),
        ("/card", json!(card()["card"].to_string())),
    ] {
        let mut body = card();
        *body.pointer_mut(pointer).unwrap() = value;
        bad_cards.push(body);
    }
    let others = [
        json!({ "msg_type": "post", "content": { "post": {} } }),
        json!({ "content": { "text": "no type" } }),
        json!({ "msg_type": "text", "content": {} }),
        json!({ "msg_type": "text", "content": "{\"text\":\"a string\"}" }),
        json!({ "msg_type": "text", "content": { "text": " " } }),
        json!({ "msg_type": "interactive" }),
    ];
    for body in bad_cards.iter().chain(&others) {
        let answer = post(&url, body).await;
        assert_eq!(answer["code"], 9499, "{body}: {answer}");
    }
    let (_, not_json) = post_raw(&url, "application/json", "{").await;
    let (_, form) = post_raw(&url, "application/x-www-form-urlencoded", "a=1").await;
    assert_eq!(
        (not_json["code"].as_i64(), form["code"].as_i64()),
        (Some(9499), Some(9499))
    );
    assert!(robot.received().is_empty());
}

#[tokio::test]
async fn the_feishu_double_takes_a_body_of_exactly_the_cap_and_refuses_one_byte_more() {
    let robot = RobotDouble::start().await;
    let url = robot.feishu_url("t");
    let padded = |bytes: usize| {
        let empty = text("").to_string().len();
        let body = text(&"x".repeat(bytes - empty)).to_string();
        assert_eq!(body.len(), bytes);
        body
    };

    let (_, at_cap) = post_raw(&url, "application/json", padded(FEISHU_BODY_CAP)).await;
    let (_, over) = post_raw(&url, "application/json", padded(FEISHU_BODY_CAP + 1)).await;

    assert_eq!(FEISHU_BODY_CAP, 20_000);
    assert_eq!(at_cap["code"], 0, "{at_cap}");
    assert_eq!(over["code"], 9499, "{over}");
    assert_eq!(robot.received().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_feishu_double_answers_11232_after_five_in_a_second() {
    let robot = RobotDouble::start().await;
    let (url, other) = (robot.feishu_url("t"), robot.feishu_url("other"));

    for i in 0..FEISHU_PER_SECOND {
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(post(&url, &text(&format!("m{i}"))).await["code"], 0);
    }
    let sixth = post(&url, &text("sixth")).await;
    let other_token = post(&other, &text("another bot")).await;
    // One second after the first, one more fits; the next does not.
    tokio::time::advance(Duration::from_millis(600)).await;
    let after_first = post(&url, &text("later")).await;
    let again = post(&url, &text("too soon")).await;

    assert_eq!(
        sixth,
        json!({ "code": 11232, "msg": "frequency limited", "data": {} })
    );
    assert_eq!(other_token["code"], 0, "the limit is per token");
    assert_eq!(after_first["code"], 0, "{after_first}");
    assert_eq!(again["code"], 11232);
    assert_eq!(robot.refused_by(Protocol::Feishu, 11232), 2);
}

#[tokio::test(start_paused = true)]
async fn the_feishu_double_answers_11232_after_a_hundred_in_a_minute_within_the_second_limit() {
    let robot = RobotDouble::start().await;
    let url = robot.feishu_url("t");

    // Four a second for 25 seconds: never five in a second, a hundred in the minute.
    for i in 0..FEISHU_PER_MINUTE {
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(post(&url, &text(&format!("m{i}"))).await["code"], 0, "m{i}");
    }
    tokio::time::advance(Duration::from_secs(2)).await;
    let over = post(&url, &text("101st")).await;
    // The first message (at 0.25 s) leaves the minute at 60.25 s, not before.
    tokio::time::advance(Duration::from_secs(33)).await;
    let at_sixty = post(&url, &text("at 60 s")).await;
    tokio::time::advance(Duration::from_millis(250)).await;
    let after_first = post(&url, &text("a minute after the first")).await;

    assert_eq!(over["code"], 11232, "{over}");
    assert_eq!(at_sixty["code"], 11232, "{at_sixty}");
    assert_eq!(after_first["code"], 0, "{after_first}");
    assert_eq!(robot.received().len(), FEISHU_PER_MINUTE + 1);
}

#[tokio::test]
async fn the_feishu_double_answers_in_the_legacy_form_when_asked() {
    let robot = RobotDouble::start().await;
    let url = robot.feishu_url("t");
    robot.feishu_legacy_answers();
    robot.script([Reply::Errcode(11232, "frequency limited")]);

    let scripted = post(&url, &text("x")).await;
    let accepted = post(&url, &text("x")).await;
    let refused = post(&url, &json!({ "msg_type": "nope" })).await;

    assert_eq!(
        scripted,
        json!({ "StatusCode": 11232, "StatusMessage": "frequency limited" })
    );
    assert_eq!(
        accepted,
        json!({ "StatusCode": 0, "StatusMessage": "success" })
    );
    assert_eq!(refused["StatusCode"], 9499, "{refused}");
    assert!(refused.get("code").is_none(), "{refused}");
}
