//! Every answer class each new channel can meet, answered to Alertmanager as DingTalk's are:
//! HTTP 5xx and 429 retried until delivered, other 4xx 502 at once, a robot that hangs 504
//! naming the configured timeout, a closed port 502 without the token; and the metrics of a
//! success and a refusal, labelled with the channel and its code.

use std::time::Duration;

use super::{Chan, QUICK, TOKEN, answer, post, robot_requests, spawn, spawn_with};
use crate::helpers::{TestApp, distinct, payload, spawn_app};
use crate::robot::{Limits, Reply};

async fn http_5xx_is_retried_then_delivered(chan: Chan) {
    let app = spawn(chan, "").await;
    app.robot
        .script([Reply::Http(502), Reply::Http(500), Reply::Http(429)]);

    let (status, body) =
        answer(post(&app, &chan.path("ops"), payload("firing_single.json")).await).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(app.robot.requests(), 4);
    assert_eq!(app.robot.received().len(), 1);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(&format!("{} 2", robot_requests("ops", chan, "http_5xx"))),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("{} 1", robot_requests("ops", chan, "0"))),
        "{metrics}"
    );
    assert!(
        metrics.contains("alertrelay_delivery_retries_total{profile=\"ops\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_wecom_robot_answering_http_5xx_is_retried_then_delivered() {
    http_5xx_is_retried_then_delivered(Chan::WeCom).await;
}

#[tokio::test]
async fn a_feishu_bot_answering_http_5xx_is_retried_then_delivered() {
    http_5xx_is_retried_then_delivered(Chan::Feishu).await;
}

async fn http_5xx_until_max_wait_is_502(chan: Chan) {
    let app = spawn_with(chan, "timeout: 2s\nmax_wait: 1s\n", "", Limits::REAL).await;
    app.robot.script(vec![Reply::Http(503); 100]);

    let (status, body) =
        answer(post(&app, &chan.path("ops"), payload("firing_single.json")).await).await;

    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("HTTP 503"),
        "{body}"
    );
    assert!(app.robot.requests() >= 2, "no retry");
    assert!(app.robot.received().is_empty());
}

#[tokio::test]
async fn a_wecom_robot_answering_5xx_until_max_wait_is_answered_502() {
    http_5xx_until_max_wait_is_502(Chan::WeCom).await;
}

#[tokio::test]
async fn a_feishu_bot_answering_5xx_until_max_wait_is_answered_502() {
    http_5xx_until_max_wait_is_502(Chan::Feishu).await;
}

async fn http_4xx_is_502_at_once(chan: Chan) {
    for status in [400, 403, 404] {
        let app = spawn(chan, "").await;
        app.robot.script([Reply::Http(status)]);

        let (answered, body) =
            answer(post(&app, &chan.path("ops"), payload("firing_single.json")).await).await;

        assert_eq!(answered, 502, "HTTP {status}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains(&format!("HTTP {status}")),
            "{body}"
        );
        assert_eq!(app.robot.requests(), 1, "HTTP {status} was retried");
        let metrics = app.metrics().await;
        assert!(
            metrics.contains(&format!("{} 1", robot_requests("ops", chan, "http_4xx"))),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn a_wecom_robot_answering_http_4xx_is_answered_502_without_retry() {
    http_4xx_is_502_at_once(Chan::WeCom).await;
}

#[tokio::test]
async fn a_feishu_bot_answering_http_4xx_is_answered_502_without_retry() {
    http_4xx_is_502_at_once(Chan::Feishu).await;
}

async fn a_hang_is_504_naming_the_timeout(chan: Chan) {
    // One attempt of 300 ms; a retry could not start before max_wait ends.
    let app = spawn_with(chan, "timeout: 300ms\nmax_wait: 350ms\n", "", Limits::REAL).await;
    app.robot.script(vec![Reply::Hang; 4]);

    let started = std::time::Instant::now();
    let (status, body) =
        answer(post(&app, &chan.path("ops"), payload("firing_single.json")).await).await;

    assert_eq!(status, 504, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("did not answer"), "{error}");
    assert!(
        error.contains("timeout") && error.contains("300ms"),
        "{error}"
    );
    assert!(app.robot.received().is_empty());
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(&robot_requests("ops", chan, "timeout")),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_wecom_robot_that_hangs_is_answered_504_naming_the_configured_timeout() {
    a_hang_is_504_naming_the_timeout(Chan::WeCom).await;
}

#[tokio::test]
async fn a_feishu_bot_that_hangs_is_answered_504_naming_the_configured_timeout() {
    a_hang_is_504_naming_the_timeout(Chan::Feishu).await;
}

async fn a_closed_port_is_5xx_without_the_token(chan: Chan) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = match chan {
        Chan::WeCom => format!("http://127.0.0.1:{port}/cgi-bin/webhook/send?key={TOKEN}"),
        Chan::Feishu => format!("http://127.0.0.1:{port}/open-apis/bot/v2/hook/{TOKEN}"),
    };
    let yaml = format!(
        "max_wait: 1s\nprofiles:\n{}",
        super::profile("ops", &url, "")
    );
    let app = spawn_app(&yaml, &[]).await;

    // Served at the channel's path: the channel was inferred from the URL's path.
    let (status, body) =
        answer(post(&app, &chan.path("ops"), payload("firing_single.json")).await).await;

    assert!((500..600).contains(&status), "{status}: {body}");
    assert_eq!(status, 502, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("cannot connect"), "{error}");
    assert!(
        !body.to_string().contains(TOKEN),
        "the token leaked: {body}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(&robot_requests("ops", chan, "connect")),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_unreachable_wecom_robot_is_answered_5xx() {
    a_closed_port_is_5xx_without_the_token(Chan::WeCom).await;
}

#[tokio::test]
async fn an_unreachable_feishu_bot_is_answered_5xx() {
    a_closed_port_is_5xx_without_the_token(Chan::Feishu).await;
}

async fn metrics_show_channel_and_code(chan: Chan, refusal: (i64, &'static str)) {
    let app = spawn(chan, "").await;

    let delivered = post(&app, &chan.path("ops"), payload("firing_single.json")).await;
    app.robot.script([Reply::Errcode(refusal.0, refusal.1)]);
    // Another notification: the first one again would be a duplicate, never sent.
    let refused = post(
        &app,
        &chan.path("ops"),
        distinct(&payload("firing_single.json"), 1),
    )
    .await;

    assert_eq!(delivered.status(), 200);
    assert_eq!(refused.status(), 502);
    let metrics = app.metrics().await;
    for code in ["0".to_owned(), refusal.0.to_string()] {
        let line = format!("{} 1", robot_requests("ops", chan, &code));
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
    assert!(!metrics.contains("channel=\"dingtalk\""), "{metrics}");
    assert!(!metrics.contains("errcode="), "the old label: {metrics}");
    assert!(
        metrics.contains("alertrelay_notifications_delivered_total{profile=\"ops\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn wecom_metrics_after_a_success_and_a_refusal_show_the_channel_and_code() {
    metrics_show_channel_and_code(Chan::WeCom, (40058, "invalid Request Parameter")).await;
}

#[tokio::test]
async fn feishu_metrics_after_a_success_and_a_refusal_show_the_channel_and_code() {
    metrics_show_channel_and_code(Chan::Feishu, (19024, "Key Words Not Found")).await;
}

#[tokio::test]
async fn labels_with_quotes_backslashes_and_control_characters_arrive_intact_in_every_message_type()
{
    let nasty = "q\"uote\\back\u{1}ctl\u{1f}\u{7f}\u{2028}sep\ttab 告警 😀";
    let body = super::edited("firing_single.json", |n| {
        n["alerts"][0]["labels"]["severity"] = nasty.into();
    });
    for chan in [Chan::WeCom, Chan::Feishu] {
        for kind in chan.kinds() {
            let app = spawn(chan, &format!("    message: {kind}\n")).await;

            let (status, answered) =
                answer(post(&app, &chan.path("ops"), body.clone()).await).await;

            assert_eq!(status, 200, "{chan:?} {kind}: {answered}");
            let text = app.robot.received()[0].text().to_owned();
            for piece in ["uote", "back", "ctl", "sep", "告警 😀"] {
                assert!(
                    text.contains(piece),
                    "{chan:?} {kind}: {piece} lost: {text:?}"
                );
            }
        }
    }
}

/// A Feishu bot behind a tiny server that answers every request HTTP 400 with `answer`.
async fn feishu_answering_400(answer: &'static str) -> TestApp {
    let router = axum::Router::new().fallback(move || async move {
        (
            axum::http::StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            answer,
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let url = format!("http://{addr}/open-apis/bot/v2/hook/{TOKEN}");
    let yaml = format!("{QUICK}profiles:\n{}", super::profile("ops", &url, ""));
    spawn_app(&yaml, &[]).await
}

#[tokio::test]
async fn a_feishu_code_in_an_http_400_answer_is_read_as_feishus_code() {
    let refused = feishu_answering_400(r#"{"code":9499,"msg":"Bad Request","data":{}}"#).await;
    let (status, body) =
        answer(post(&refused, "/feishu/ops/send", payload("firing_single.json")).await).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], 9499, "{body}");

    let limited = feishu_answering_400(r#"{"code":11232,"msg":"frequency limited"}"#).await;
    let (status, body) =
        answer(post(&limited, "/feishu/ops/send", payload("firing_single.json")).await).await;
    assert_eq!(
        status, 503,
        "a frequency limit is a throttle, not a refusal: {body}"
    );
    assert!(
        limited
            .metrics()
            .await
            .contains(&robot_requests("ops", Chan::Feishu, "11232")),
        "{}",
        limited.metrics().await
    );

    let plain = feishu_answering_400("<html>bad gateway config</html>").await;
    let (status, body) =
        answer(post(&plain, "/feishu/ops/send", payload("firing_single.json")).await).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        plain
            .metrics()
            .await
            .contains(&robot_requests("ops", Chan::Feishu, "http_4xx")),
        "{}",
        plain.metrics().await
    );
}
