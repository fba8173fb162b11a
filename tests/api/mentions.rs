//! Mention rules end to end: who the robot is told to mention for each rule kind, `when:
//! firing`, the union over merged notifications, a bad mobile in the config and in a label,
//! and the preview saying who and why.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{distinct, ops_yaml, payload, spawn_app};

/// `mention:` with rules of every kind, as the issue writes them.
const RULES: &str = "    mention:
      mobiles: [\"13800000000\"]
      when: firing
      rules:
        - match: { severity: critical }
          all: true
        - match_re: { project: \"wms|erp\" }
          mobiles: [\"13900000000\"]
      from_labels: [owner_mobile, owner_userid]
";

fn with_label(name: &str, alert: usize, label: &str, value: &str) -> String {
    let mut n: Value = serde_json::from_str(&payload(name)).unwrap();
    n["alerts"][alert]["labels"][label] = Value::from(value);
    n.to_string()
}

#[tokio::test]
async fn each_rule_kind_adds_its_people_to_the_message() {
    let app = spawn_app(&ops_yaml(RULES), &[]).await;
    let body = with_label("firing_group.json", 2, "owner_userid", "oms.owner");

    let response = app.post("ops", body).await;

    assert_eq!(response.status(), 200);
    let received = &app.robot.received()[0];
    let at = &received.body["at"];
    assert_eq!(at["isAtAll"], true, "the critical alert's rule");
    assert_eq!(at["atMobiles"], json!(["13800000000", "13900000000"]));
    assert_eq!(at["atUserIds"], json!(["oms.owner"]));
    for word in ["@13800000000", "@13900000000", "@oms.owner"] {
        assert!(received.text().contains(word), "{word}");
    }
}

#[tokio::test]
async fn when_firing_a_resolved_only_notification_mentions_no_one() {
    let app = spawn_app(&ops_yaml(RULES), &[]).await;
    let body = with_label("resolved.json", 0, "owner_mobile", "13700000000");

    let response = app.post("ops", body).await;

    assert_eq!(response.status(), 200);
    let received = &app.robot.received()[0];
    let at = &received.body["at"];
    assert_eq!(at["isAtAll"], false);
    assert_eq!(at["atMobiles"], json!([]));
    assert_eq!(at["atUserIds"], json!([]));
    assert!(!received.text().contains("@1"), "{}", received.text());
}

#[tokio::test(start_paused = true)]
async fn merged_notifications_mention_the_union_of_their_people() {
    // One message a minute: the first goes alone, the next three wait and are merged.
    let yaml = ops_yaml("    rate_limit: 1\n    mention: { from_labels: [owner_mobile] }\n")
        .replace("max_wait: 2s", "max_wait: 150s");
    let app = spawn_app(&yaml, &[]).await;
    let owners = ["13800000001", "13800000002", "13800000003", "13800000004"];
    let mut tasks = Vec::new();
    for (i, owner) in owners.iter().enumerate() {
        let body = distinct(
            &with_label("firing_single.json", 0, "owner_mobile", owner),
            i,
        );
        let (http, url) = (app.http.clone(), app.url("/dingtalk/ops/send"));
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }));
        // In order: the first takes the minute's one message.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }

    let received = app.robot.received();
    assert_eq!(received.len(), 2, "the three waiting ones are merged");
    assert_eq!(received[0].body["at"]["atMobiles"], json!([owners[0]]));
    assert_eq!(received[1].body["at"]["atMobiles"], json!(owners[1..]));
    for owner in &owners[1..] {
        assert!(received[1].text().contains(&format!("@{owner}")));
    }
}

#[tokio::test]
async fn a_bad_label_value_is_not_mentioned_and_is_counted() {
    let app = spawn_app(&ops_yaml(RULES), &[]).await;
    let body = with_label(
        "firing_single.json",
        0,
        "owner_mobile",
        "13700000000, 137-not-a-phone, <at user_id=\"all\">",
    );

    let response = app.post("ops", body).await;

    assert_eq!(response.status(), 200);
    let at = &app.robot.received()[0].body["at"];
    assert!(
        at["atMobiles"]
            .as_array()
            .unwrap()
            .contains(&json!("13700000000"))
    );
    assert!(!at.to_string().contains("137-not"), "{at}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("alertrelay_mention_label_values_skipped_total{profile=\"ops\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_preview_says_who_is_mentioned_and_why() {
    let app = spawn_app(&ops_yaml(RULES), &[]).await;
    let body = json!({ "payload": serde_json::from_str::<Value>(&with_label("firing_group.json", 0, "owner_mobile", "13700000000,x y")).unwrap() });

    let response = app
        .http
        .post(app.url("/preview/ops"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let mentions: Vec<(String, String)> = answer["mentions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["who"].as_str().unwrap().into(),
                m["why"].as_str().unwrap().into(),
            )
        })
        .collect();
    let why = |who: &str| {
        mentions
            .iter()
            .find(|(w, _)| w == who)
            .map(|(_, why)| why.as_str())
            .unwrap_or_else(|| panic!("{who} not in {mentions:?}"))
    };
    assert_eq!(why("@13800000000"), "mention.mobiles");
    assert!(why("@所有人").starts_with("mention.rules[0] (severity=\"critical\")"));
    assert!(why("@13900000000").starts_with("mention.rules[1] (project=~\"wms|erp\")"));
    assert_eq!(
        why("@13700000000"),
        "label owner_mobile of alert 磁盘使用率告警"
    );
    let warnings = answer["warnings"].to_string();
    assert!(
        warnings.contains("1 value(s) of the labels in mention.from_labels"),
        "{warnings}"
    );
    assert!(app.robot.received().is_empty());
}

#[tokio::test]
async fn a_bad_mobile_in_the_config_is_refused_at_load_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profiles.yaml");
    let yaml = ops_yaml(RULES).replace("[\"13900000000\"]", "[\"139 0000\"]");
    std::fs::write(&file, &yaml).unwrap();

    let error = alertrelay::config::Config::load(&alertrelay::config::Sources {
        file: file.clone(),
        file_required: true,
        flag_profiles: vec![],
    })
    .unwrap_err()
    .to_string();

    assert!(
        error.starts_with(&format!("{}:", file.display())),
        "{error}"
    );
    assert!(
        error.contains("\"139 0000\" is not a mobile number"),
        "{error}"
    );
    let line: usize = error.split(':').nth(1).unwrap().parse().unwrap();
    assert!((8..=13).contains(&line), "{error}");
}
