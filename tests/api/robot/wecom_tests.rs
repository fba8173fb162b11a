//! Tests of the WeCom double itself, driven straight with reqwest: its key check, its shape
//! and byte checks per msgtype, its codes and its 20-a-minute limit.

use std::time::Duration;

use serde_json::{Value, json};

use super::probe::{bytes_of_text, post, post_raw};
use super::{Protocol, RobotDouble, WECOM_MARKDOWN_CAP, WECOM_RATE_LIMIT, WECOM_TEXT_CAP};

fn text(content: &str) -> Value {
    json!({ "msgtype": "text", "text": { "content": content } })
}

fn markdown(content: &str) -> Value {
    json!({ "msgtype": "markdown", "markdown": { "content": content } })
}

#[tokio::test]
async fn the_wecom_double_accepts_a_text_message_and_records_its_mentions() {
    let robot = RobotDouble::start().await;
    let url = robot.wecom_url("k1");

    let body = json!({ "msgtype": "text", "text": {
        "content": "磁盘告警",
        "mentioned_list": ["zhangsan", "@all"],
        "mentioned_mobile_list": ["13800001111"],
    }});
    let answer = post(&url, &body).await;

    assert_eq!(answer, json!({ "errcode": 0, "errmsg": "ok" }));
    let received = robot.received();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.protocol, Protocol::WeCom);
    assert_eq!(message.token, "k1");
    assert_eq!(message.msgtype(), "text");
    assert_eq!(message.text(), "磁盘告警");
    assert_eq!(message.mentioned_list(), ["zhangsan", "@all"]);
    assert_eq!(message.mentioned_mobile_list(), ["13800001111"]);
}

#[tokio::test]
async fn the_wecom_double_refuses_an_unknown_key_with_93000() {
    let robot = RobotDouble::start().await;
    robot.wecom_url("known");
    let base = format!("http://{}/cgi-bin/webhook/send", robot.addr);

    for url in [
        format!("{base}?key=other"),
        base.clone(),
        format!("{base}?key="),
    ] {
        let answer = post(&url, &text("hello")).await;
        assert_eq!(answer["errcode"], 93000, "{url}: {answer}");
        assert_eq!(answer["errmsg"], "invalid webhook url");
    }
    assert_eq!(robot.refused(93000), 3);
    assert!(robot.received().is_empty());
    let answer = post(&format!("{base}?key=known"), &text("hello")).await;
    assert_eq!(answer["errcode"], 0);
}

#[tokio::test]
async fn the_wecom_double_takes_2048_bytes_of_text_and_refuses_2049_with_40058() {
    let robot = RobotDouble::start().await;
    let url = robot.wecom_url("k");

    let at_cap = post(&url, &text(&bytes_of_text(WECOM_TEXT_CAP))).await;
    let over = post(&url, &text(&bytes_of_text(WECOM_TEXT_CAP + 1))).await;

    assert_eq!(at_cap["errcode"], 0, "{at_cap}");
    assert_eq!(over["errcode"], 40058, "{over}");
    assert!(over["errmsg"].as_str().unwrap().contains("2048"));
    assert_eq!(robot.received().len(), 1);
    assert_eq!(robot.received()[0].text().len(), 2048);
}

#[tokio::test]
async fn the_wecom_double_takes_4096_bytes_of_markdown_and_refuses_4097_with_40058() {
    let robot = RobotDouble::start().await;
    let url = robot.wecom_url("k");

    let at_cap = post(&url, &markdown(&bytes_of_text(WECOM_MARKDOWN_CAP))).await;
    let over = post(&url, &markdown(&bytes_of_text(WECOM_MARKDOWN_CAP + 1))).await;
    // Text's cap is not markdown's: 4096 bytes is too long for a text message.
    let long_text = post(&url, &text(&bytes_of_text(WECOM_MARKDOWN_CAP))).await;

    assert_eq!(at_cap["errcode"], 0, "{at_cap}");
    assert_eq!(over["errcode"], 40058, "{over}");
    assert!(over["errmsg"].as_str().unwrap().contains("4096"));
    assert_eq!(long_text["errcode"], 40058);
    assert_eq!(robot.refused(40058), 2);
    assert_eq!(robot.received()[0].msgtype(), "markdown");
}

#[tokio::test]
async fn the_wecom_double_refuses_bad_bodies_with_wecoms_codes() {
    let robot = RobotDouble::start().await;
    let url = robot.wecom_url("k");
    let cases = [
        (json!({ "msgtype": "image", "image": {} }), 40008),
        (json!({ "text": { "content": "no type" } }), 40008),
        (json!({ "msgtype": "text", "text": {} }), 44004),
        (
            json!({ "msgtype": "markdown", "markdown": { "content": "" } }),
            44004,
        ),
        (text("  \n "), 44004),
        (
            json!({ "msgtype": "text", "text": { "content": 7 } }),
            40058,
        ),
        (
            json!({ "msgtype": "text", "text": { "content": "x", "mentioned_list": "@all" } }),
            40058,
        ),
        (
            json!({ "msgtype": "text", "text": { "content": "x", "mentioned_mobile_list": [1] } }),
            40058,
        ),
    ];
    for (body, code) in cases {
        let answer = post(&url, &body).await;
        assert_eq!(answer["errcode"], code, "{body}: {answer}");
    }
    let (_, not_json) = post_raw(&url, "application/json", "{not json").await;
    let (_, wrong_type) = post_raw(&url, "text/plain", text("x").to_string()).await;
    assert_eq!(not_json["errcode"], 47001);
    assert_eq!(wrong_type["errcode"], 47001);
    assert!(robot.received().is_empty());
}

#[tokio::test]
async fn the_wecom_double_reads_mentions_inside_markdown_and_ignores_lists_there() {
    let robot = RobotDouble::start().await;
    let url = robot.wecom_url("k");
    let body = json!({ "msgtype": "markdown", "markdown": {
        "content": "<font color=\"warning\">故障</font> <@zhangsan> <@lisi>",
        "mentioned_list": ["ignored"],
    }});

    assert_eq!(post(&url, &body).await["errcode"], 0);

    let message = &robot.received()[0];
    assert_eq!(message.inline_mentions(), ["zhangsan", "lisi"]);
    assert!(message.mentioned_list().is_empty(), "markdown has no list");
}

#[tokio::test(start_paused = true)]
async fn the_wecom_double_answers_45009_after_twenty_in_a_minute() {
    let robot = RobotDouble::start().await;
    let (url, other) = (robot.wecom_url("k"), robot.wecom_url("other"));

    for i in 0..WECOM_RATE_LIMIT {
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(post(&url, &text(&format!("m{i}"))).await["errcode"], 0);
    }
    let over = post(&url, &text("21st")).await;
    let other_key = post(&other, &text("another robot")).await;
    // The window slides: 60 s after the first message, one more fits.
    tokio::time::advance(Duration::from_secs(22)).await;
    let after_first = post(&url, &text("later")).await;
    let again = post(&url, &text("too soon")).await;

    assert_eq!(
        over,
        json!({ "errcode": 45009, "errmsg": "api freq out of limit" })
    );
    assert_eq!(other_key["errcode"], 0, "the limit is per key");
    assert_eq!(after_first["errcode"], 0, "{after_first}");
    assert_eq!(again["errcode"], 45009);
    assert_eq!(robot.refused_by(Protocol::WeCom, 45009), 2);
}
