//! Tests of the one double across its protocols: the three paths side by side, scripted
//! replies in each protocol's shape, refusals counted across protocols, `unlimited`, delays
//! and hangs, and DingTalk's own checks still in place.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::probe::{bytes_of_text, post, post_raw};
use super::{
    DINGTALK_BODY_CAP, FEISHU_PER_SECOND, Limits, Protocol, RATE_LIMIT, Reply, RobotDouble,
    WECOM_RATE_LIMIT,
};

fn dingtalk(text: &str) -> Value {
    json!({ "msgtype": "markdown", "markdown": { "title": "t", "text": text } })
}

fn wecom(text: &str) -> Value {
    json!({ "msgtype": "markdown", "markdown": { "content": text } })
}

fn feishu(text: &str) -> Value {
    json!({ "msg_type": "text", "content": { "text": text } })
}

#[tokio::test]
async fn one_double_serves_all_three_protocols_at_their_paths() {
    let robot = RobotDouble::start().await;
    let (ding, wec, fei) = (robot.url("d"), robot.wecom_url("w"), robot.feishu_url("f"));
    assert!(wec.ends_with("/cgi-bin/webhook/send?key=w"), "{wec}");
    assert!(fei.ends_with("/open-apis/bot/v2/hook/f"), "{fei}");

    let answers = [
        post(&ding, &dingtalk("to dingtalk")).await,
        post(&wec, &wecom("to wecom")).await,
        post(&fei, &feishu("to feishu")).await,
    ];

    assert_eq!(answers[0], json!({ "errcode": 0, "errmsg": "ok" }));
    assert_eq!(answers[1], json!({ "errcode": 0, "errmsg": "ok" }));
    assert_eq!(
        answers[2],
        json!({ "code": 0, "msg": "success", "data": {} })
    );
    let seen: Vec<(Protocol, String, String)> = robot
        .received()
        .into_iter()
        .map(|r| (r.protocol, r.token.clone(), r.text().to_owned()))
        .collect();
    let expected = [
        (Protocol::DingTalk, "d", "to dingtalk"),
        (Protocol::WeCom, "w", "to wecom"),
        (Protocol::Feishu, "f", "to feishu"),
    ]
    .map(|(p, t, x)| (p, t.to_owned(), x.to_owned()));
    assert_eq!(seen, expected);
    assert_eq!(robot.requests(), 3);
}

#[tokio::test]
async fn scripted_replies_answer_in_the_shape_of_the_protocol_that_takes_them() {
    let robot = RobotDouble::start().await;
    let (ding, wec, fei) = (robot.url("d"), robot.wecom_url("w"), robot.feishu_url("f"));
    robot.script([
        Reply::Errcode(45009, "api freq out of limit"),
        Reply::Errcode(11232, "frequency limited"),
        Reply::Errcode(-1, "系统繁忙"),
        Reply::Http(503),
    ]);

    let to_wecom = post(&wec, &wecom("x")).await;
    let to_feishu = post(&fei, &feishu("x")).await;
    let to_dingtalk = post(&ding, &dingtalk("x")).await;
    let (status, _) = post_raw(&fei, "application/json", feishu("x").to_string()).await;

    assert_eq!(
        to_wecom,
        json!({ "errcode": 45009, "errmsg": "api freq out of limit" })
    );
    assert_eq!(
        to_feishu,
        json!({ "code": 11232, "msg": "frequency limited", "data": {} })
    );
    assert_eq!(to_dingtalk, json!({ "errcode": -1, "errmsg": "系统繁忙" }));
    assert_eq!(status, 503);
    assert!(robot.received().is_empty());
    assert_eq!(robot.refused(45009) + robot.refused(11232), 0, "scripted");
    assert_eq!(robot.requests(), 4);
}

#[tokio::test]
async fn refused_counts_the_refusals_of_every_protocol_by_code() {
    let robot = RobotDouble::start().await;
    let base = format!("http://{}", robot.addr);

    post(&format!("{base}/robot/send"), &dingtalk("x")).await;
    post(
        &format!("{base}/cgi-bin/webhook/send?key=nope"),
        &wecom("x"),
    )
    .await;
    post(
        &format!("{base}/cgi-bin/webhook/send?key=nope"),
        &wecom("x"),
    )
    .await;
    post(&format!("{base}/open-apis/bot/v2/hook/nope"), &feishu("x")).await;

    assert_eq!(robot.refused(300001), 1);
    assert_eq!(robot.refused(93000), 2);
    assert_eq!(robot.refused(19001), 1);
    assert_eq!(robot.refused_by(Protocol::WeCom, 93000), 2);
    assert_eq!(robot.refused_by(Protocol::Feishu, 93000), 0);
}

#[tokio::test(start_paused = true)]
async fn unlimited_lifts_every_protocols_rate_limit() {
    let robot = RobotDouble::start().await;
    let (ding, wec, fei) = (robot.url("d"), robot.wecom_url("w"), robot.feishu_url("f"));
    robot.unlimited();

    for i in 0..RATE_LIMIT.max(WECOM_RATE_LIMIT) + 5 {
        assert_eq!(post(&ding, &dingtalk(&format!("{i}"))).await["errcode"], 0);
        assert_eq!(post(&wec, &wecom(&format!("{i}"))).await["errcode"], 0);
        assert_eq!(post(&fei, &feishu(&format!("{i}"))).await["code"], 0);
    }
    assert_eq!(robot.received().len(), 75);
}

#[tokio::test(start_paused = true)]
async fn a_double_started_with_limits_keeps_them_and_the_default_is_each_robots_own() {
    assert_eq!(Limits::default(), Limits::REAL);
    assert_eq!(
        (
            Limits::REAL.feishu_per_second,
            Limits::REAL.feishu_per_minute
        ),
        (Some(5), Some(100))
    );
    let robot = RobotDouble::start_with(Limits {
        wecom_per_minute: Some(2),
        ..Limits::NONE
    })
    .await;
    let (wec, fei) = (robot.wecom_url("w"), robot.feishu_url("f"));

    let wecom_codes: Vec<Value> = [
        post(&wec, &wecom("1")).await,
        post(&wec, &wecom("2")).await,
        post(&wec, &wecom("3")).await,
    ]
    .map(|a| a["errcode"].clone())
    .into();
    for i in 0..=FEISHU_PER_SECOND {
        assert_eq!(post(&fei, &feishu(&format!("{i}"))).await["code"], 0);
    }

    assert_eq!(wecom_codes, [json!(0), json!(0), json!(45009)]);
}

#[tokio::test(start_paused = true)]
async fn delays_and_lagged_arrivals_hold_wecom_and_feishu_answers_too() {
    let robot = RobotDouble::start().await;
    let (wec, fei) = (robot.wecom_url("w"), robot.feishu_url("f"));
    robot.script([Reply::Delay(Duration::from_secs(5))]);

    let start = Instant::now();
    let delayed = post(&fei, &feishu("late")).await;
    let delayed_for = start.elapsed();
    robot.lag_arrivals(Duration::from_secs(3));
    let sent = Instant::now();
    let lagged = post(&wec, &wecom("lagged")).await;
    let lagged_for = sent.elapsed();

    assert_eq!(delayed["code"], 0);
    assert!(delayed_for >= Duration::from_secs(5), "{delayed_for:?}");
    assert_eq!(lagged["errcode"], 0);
    assert!(lagged_for < Duration::from_secs(3), "{lagged_for:?}");
    let received = robot.received();
    // Each was counted when it arrived: after the delay, after the lag.
    assert_eq!(received[0].at.duration_since(start), delayed_for);
    assert_eq!(received[1].at.duration_since(sent), lagged_for);
}

#[tokio::test]
async fn a_hang_holds_a_feishu_answer_past_the_clients_timeout() {
    let robot = RobotDouble::start().await;
    let url = robot.feishu_url("f");
    robot.script([Reply::Hang]);

    let answer = reqwest::Client::new()
        .post(&url)
        .json(&feishu("x"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;

    assert!(answer.unwrap_err().is_timeout());
    assert_eq!(robot.requests(), 1);
    assert!(robot.received().is_empty());
}

#[tokio::test]
async fn the_dingtalk_double_still_checks_its_cap_and_its_signature() {
    let robot = RobotDouble::start().await;
    let url = robot.url("d");
    let padded = |bytes: usize| {
        let empty = dingtalk("").to_string().len();
        dingtalk(&bytes_of_text(bytes - empty)).to_string()
    };

    let (_, at_cap) = post_raw(&url, "application/json", padded(DINGTALK_BODY_CAP)).await;
    let (_, over) = post_raw(&url, "application/json", padded(DINGTALK_BODY_CAP + 1)).await;
    robot.require_signature("d", "secret");
    let unsigned = post(&url, &dingtalk("x")).await;

    assert_eq!(at_cap["errcode"], 0, "{at_cap}");
    assert_eq!(over["errcode"], 460101, "{over}");
    assert_eq!(unsigned["errcode"], 310000, "{unsigned}");
    assert_eq!(robot.received()[0].msgtype(), "markdown");
}
