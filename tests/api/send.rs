//! `POST /dingtalk/{profile}/send`: one test per answer Alertmanager can get.

use std::time::Duration;

use crate::helpers::{json, ops_yaml, payload, spawn_app};
use crate::robot::Reply;

#[tokio::test]
async fn a_delivered_notification_is_answered_200() {
    let app = spawn_app(&ops_yaml(""), &[]).await;

    let response = app.post("ops", payload("firing_group.json")).await;

    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["status"], "ok");
    let received = app.robot.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].token, "ops-token");
    assert_eq!(received[0].msgtype(), "markdown");
    assert!(
        received[0].body["markdown"]["title"]
            .as_str()
            .unwrap()
            .contains("[故障:3]")
    );
    assert!(received[0].text().contains("【故障】3 条告警"));
}

#[tokio::test]
async fn malformed_json_is_answered_400_saying_where() {
    let app = spawn_app(&ops_yaml(""), &[]).await;

    let response = app
        .post("ops", r#"{"alerts": [{"status": "firing",}]}"#)
        .await;

    assert_eq!(response.status(), 400);
    let error = json(response).await["error"].as_str().unwrap().to_owned();
    assert!(error.contains("line 1 column"), "{error}");
    assert_eq!(app.robot.requests(), 0);
}

#[tokio::test]
async fn a_payload_with_a_wrong_field_type_names_the_field() {
    let app = spawn_app(&ops_yaml(""), &[]).await;

    let response = app
        .post("ops", r#"{"alerts": [{"startsAt": "yesterday"}]}"#)
        .await;

    assert_eq!(response.status(), 400);
    let error = json(response).await["error"].as_str().unwrap().to_owned();
    assert!(error.contains("alerts[0].startsAt"), "{error}");
}

#[tokio::test]
async fn a_payload_without_alerts_is_answered_400() {
    let app = spawn_app(&ops_yaml(""), &[]).await;
    let response = app.post("ops", r#"{"alerts": []}"#).await;
    assert_eq!(response.status(), 400);
    assert_eq!(app.robot.requests(), 0);
}

#[tokio::test]
async fn an_empty_array_body_is_answered_400_expecting_a_payload_object() {
    let app = spawn_app(&ops_yaml(""), &[]).await;

    let response = app.post("ops", "[]").await;

    assert_eq!(response.status(), 400);
    let error = json(response).await["error"].as_str().unwrap().to_owned();
    assert!(
        error.ends_with(": expected an Alertmanager payload object"),
        "{error}"
    );
    assert_eq!(app.robot.requests(), 0);
}

/// `firing_single.json` with `edit` applied.
fn edited_payload(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut value: serde_json::Value =
        serde_json::from_str(&payload("firing_single.json")).unwrap();
    edit(&mut value);
    value.to_string()
}

#[tokio::test]
async fn a_19815_byte_group_alertname_is_delivered_with_its_title_cut() {
    let app = spawn_app(&ops_yaml(""), &[]).await;
    let body = edited_payload(|v| v["groupLabels"]["alertname"] = "磁".repeat(6_605).into());

    let response = app.post("ops", body).await;

    assert_eq!(response.status(), 200);
    let received = app.robot.received();
    assert_eq!(
        received.len(),
        1,
        "the double takes bodies up to 20000 bytes"
    );
    let title = received[0].body["markdown"]["title"].as_str().unwrap();
    assert!(title.starts_with("[故障:1] 磁磁"), "{title}");
    assert!(title.ends_with('…'), "{title}");
    assert!(received[0].text().contains("【故障】1 条告警"));
}

#[tokio::test]
async fn a_custom_title_over_a_35_kb_summary_is_delivered_within_the_cap() {
    let app = spawn_app(
        &ops_yaml("    title: \"{{ commonAnnotations.summary | default(value='') }}\"\n"),
        &[],
    )
    .await;
    let summary = "摘要 \"quoted\" text ".repeat(2_000);
    assert!(summary.len() > 35_000);
    let body = edited_payload(|v| {
        v["commonAnnotations"]["summary"] = summary.clone().into();
        v["alerts"][0]["annotations"]["summary"] = summary.into();
    });

    let response = app.post("ops", body).await;

    assert_eq!(response.status(), 200);
    let received = app.robot.received();
    assert_eq!(received.len(), 1);
    let title = received[0].body["markdown"]["title"].as_str().unwrap();
    assert!(title.starts_with("摘要 \"quoted\""), "{title}");
    assert!(title.ends_with('…'), "{title}");
    assert!(received[0].text().ends_with("…（内容过长，已截断）"));
}

#[tokio::test]
async fn an_unknown_profile_is_answered_404() {
    let app = spawn_app(&ops_yaml(""), &[]).await;

    let response = app.post("nope", payload("firing_single.json")).await;

    assert_eq!(response.status(), 404);
    assert!(
        json(response).await["error"]
            .as_str()
            .unwrap()
            .contains("\"nope\"")
    );
    assert_eq!(app.robot.requests(), 0);
}

#[tokio::test]
async fn a_body_over_the_cap_is_answered_413() {
    let app = spawn_app(&format!("max_body_bytes: 1000\n{}", ops_yaml("")), &[]).await;

    let response = app.post("ops", payload("firing_group.json")).await;

    assert_eq!(response.status(), 413);
    assert_eq!(app.robot.requests(), 0);
}

#[tokio::test]
async fn a_chunked_body_over_the_cap_is_answered_413() {
    let app = spawn_app(&format!("max_body_bytes: 1000\n{}", ops_yaml("")), &[]).await;
    let chunks: Vec<Result<String, std::io::Error>> = vec![Ok(payload("firing_group.json"))];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));

    let response = app.post("ops", body).await;

    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn other_methods_are_answered_405() {
    let app = spawn_app(&ops_yaml(""), &[]).await;

    let response = app
        .http
        .get(app.url("/dingtalk/ops/send"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn an_errcode_is_answered_5xx_with_errcode_and_errmsg() {
    let app = spawn_app(&ops_yaml(""), &[]).await;
    app.robot
        .script([Reply::Errcode(310000, "keywords not in content")]);

    let response = app.post("ops", payload("firing_single.json")).await;

    assert_eq!(response.status(), 502);
    let body = json(response).await;
    assert_eq!(body["errcode"], 310000);
    assert_eq!(body["errmsg"], "keywords not in content");
    assert!(app.robot.received().is_empty());
}

#[tokio::test]
async fn a_robot_answering_500_twice_then_ok_is_delivered_after_retries() {
    let app = spawn_app(&ops_yaml(""), &[]).await;
    app.robot.script([Reply::Http(500), Reply::Http(500)]);

    let response = app.post("ops", payload("firing_single.json")).await;

    assert_eq!(response.status(), 200);
    assert_eq!(app.robot.requests(), 3);
    assert_eq!(app.robot.received().len(), 1);
}

#[tokio::test]
async fn a_robot_answering_500_until_max_wait_is_answered_502() {
    let app = spawn_app(&ops_yaml("").replace("max_wait: 2s", "max_wait: 1s"), &[]).await;
    app.robot.script(std::iter::repeat_n(Reply::Http(500), 100));

    let response = app.post("ops", payload("firing_single.json")).await;

    assert_eq!(response.status(), 502);
    assert!(app.robot.requests() >= 2, "no retry");
    assert!(app.robot.received().is_empty());
}

#[tokio::test]
async fn a_busy_robot_errcode_minus_1_is_retried() {
    let app = spawn_app(&ops_yaml(""), &[]).await;
    app.robot.script([Reply::Errcode(-1, "系统繁忙")]);

    let response = app.post("ops", payload("firing_single.json")).await;

    assert_eq!(response.status(), 200);
    assert_eq!(app.robot.requests(), 2);
}

#[tokio::test]
async fn permanent_errcodes_are_answered_502_at_once_without_retry() {
    for (errcode, errmsg) in [(310_000, "sign not match"), (300_001, "token is not exist")] {
        let app = spawn_app(&ops_yaml(""), &[]).await;
        app.robot.script([Reply::Errcode(errcode, errmsg)]);

        let response = app.post("ops", payload("firing_single.json")).await;

        assert_eq!(response.status(), 502);
        assert_eq!(json(response).await["errcode"], errcode);
        assert_eq!(app.robot.requests(), 1, "{errcode} was retried");
    }
}

#[tokio::test]
async fn a_robot_that_hangs_is_answered_504_after_the_timeout() {
    let yaml = ops_yaml("").replace("timeout: 2s\nmax_wait: 2s", "timeout: 300ms\nmax_wait: 1s");
    let app = spawn_app(&yaml, &[]).await;
    app.robot
        .script([Reply::Hang, Reply::Hang, Reply::Hang, Reply::Hang]);

    let started = std::time::Instant::now();
    let response = app.post("ops", payload("firing_single.json")).await;

    assert_eq!(response.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        json(response).await["error"]
            .as_str()
            .unwrap()
            .contains("did not answer")
    );
}

#[tokio::test]
async fn an_unreachable_robot_is_answered_5xx() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let yaml = format!(
        "max_wait: 1s\nprofiles:\n  ops:\n    url: http://127.0.0.1:{port}/robot/send?access_token=t\n"
    );
    let app = spawn_app(&yaml, &[]).await;

    let response = app.post("ops", payload("firing_single.json")).await;

    assert_eq!(response.status(), 502);
    let error = json(response).await["error"].as_str().unwrap().to_owned();
    assert!(error.contains("cannot connect"), "{error}");
    assert!(!error.contains("access_token"), "{error}");
}

#[tokio::test]
async fn a_broken_template_falls_back_to_the_builtin_and_still_delivers() {
    let yaml = ops_yaml("    template: broken.md.tera\n");
    let app = spawn_app(
        &yaml,
        // Passes the reload self-test on the built-in samples; fails on a `level` label.
        &[(
            "broken.md.tera",
            "{% if alerts[0].labels.level %}{{ alerts[0].labels.missing.deeper }}{% endif %}ok",
        )],
    )
    .await;

    let response = app.post("ops", payload("firing_single.json")).await;

    assert_eq!(response.status(), 200);
    let received = app.robot.received();
    assert_eq!(received.len(), 1);
    assert!(
        received[0].text().contains("【故障】1 条告警"),
        "{}",
        received[0].text()
    );
}

#[tokio::test]
async fn a_signed_robot_gets_a_valid_signature() {
    let app = spawn_app(&ops_yaml("    secret: SECtestsecret\n"), &[]).await;
    app.robot.require_signature("ops-token", "SECtestsecret");

    let first = app.post("ops", payload("firing_single.json")).await;
    let second = app.post("ops", payload("resolved.json")).await;

    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 200);
    assert_eq!(app.robot.received().len(), 2);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_robot_and_answered_5xx() {
    let app = spawn_app(&ops_yaml("    secret: SECwrong\n"), &[]).await;
    app.robot.require_signature("ops-token", "SECright");

    let response = app.post("ops", payload("firing_single.json")).await;

    assert_eq!(response.status(), 502);
    assert_eq!(json(response).await["errcode"], 310000);
}

#[tokio::test]
async fn markdown_mentions_set_at_and_the_at_text() {
    let mention = "    mention: { mobiles: [\"13800000000\"], user_ids: [\"manager01\"] }\n";
    let app = spawn_app(&ops_yaml(mention), &[]).await;

    app.post("ops", payload("firing_single.json")).await;

    let received = &app.robot.received()[0];
    assert_eq!(received.body["at"]["atMobiles"][0], "13800000000");
    assert_eq!(received.body["at"]["atUserIds"][0], "manager01");
    assert_eq!(received.body["at"]["isAtAll"], false);
    assert!(received.text().contains("@13800000000"));
    assert!(received.text().contains("@manager01"));
}

#[tokio::test]
async fn text_mentions_set_at_and_the_at_text() {
    let extra = "    message: text\n    mention: { all: true, mobiles: [\"13900000000\"] }\n";
    let app = spawn_app(&ops_yaml(extra), &[]).await;

    app.post("ops", payload("firing_single.json")).await;

    let received = &app.robot.received()[0];
    assert_eq!(received.msgtype(), "text");
    assert_eq!(received.body["at"]["isAtAll"], true);
    assert_eq!(received.body["at"]["atMobiles"][0], "13900000000");
    assert!(received.text().contains("@13900000000"));
}

#[tokio::test]
async fn health_and_readiness_answer_200() {
    let app = spawn_app(&ops_yaml(""), &[]).await;
    for path in ["/-/healthy", "/-/ready"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn shutdown_lets_a_delivery_in_flight_finish() {
    let mut app = spawn_app(&ops_yaml(""), &[]).await;
    app.robot.script([Reply::Delay(Duration::from_millis(500))]);
    let http = app.http.clone();
    let url = app.url("/dingtalk/ops/send");
    let in_flight = tokio::spawn(async move {
        http.post(url)
            .header("content-type", "application/json")
            .body(payload("firing_single.json"))
            .send()
            .await
            .unwrap()
    });
    // Wait until the robot saw the request, then shut down while it is being answered.
    while app.robot.requests() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    app.shut_down();

    assert_eq!(in_flight.await.unwrap().status(), 200);
    assert_eq!(app.robot.received().len(), 1);
    tokio::time::timeout(Duration::from_secs(5), &mut app.server)
        .await
        .expect("server stops after the delivery")
        .unwrap()
        .unwrap();
    assert!(app.http.get(app.url("/-/healthy")).send().await.is_err());
}

#[tokio::test]
async fn a_timeout_cut_short_by_max_wait_says_so_and_names_the_configured_timeout() {
    let yaml = ops_yaml("").replace("timeout: 2s\nmax_wait: 2s", "timeout: 2s\nmax_wait: 400ms");
    let app = spawn_app(&yaml, &[]).await;
    app.robot.script([Reply::Hang]);

    let response = app.post("ops", payload("firing_single.json")).await;

    assert_eq!(response.status(), 504);
    let error = json(response).await["error"].as_str().unwrap().to_owned();
    assert!(error.contains("max_wait ran out (timeout 2s)"), "{error}");
}
