//! DingTalk action cards against the robot double (which checks actionCard's fields as
//! DingTalk does): the default buttons, the silence link read back as Alertmanager's UI reads
//! it, a profile's own Tera URL templates, `open_links`, the size cut, merging and the
//! preview.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::helpers::{distinct, ops_yaml, payload, spawn_app};

fn card_yaml(extra: &str) -> String {
    ops_yaml(&format!("    message: action_card\n{extra}"))
}

/// Percent-decoding, as a browser hands the fragment's query to the UI.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The matchers of a `filter=` value, parsed by the grammar of Alertmanager's UI
/// (`Utils.Filter.filter`): `{` items separated by `,` `}`, an item being a label name, an
/// operator and a JSON string; spaces between. Only `=` is expected here.
pub(crate) fn ui_matchers(filter: &str) -> BTreeMap<String, String> {
    let inner = filter
        .trim()
        .strip_prefix('{')
        .and_then(|f| f.strip_suffix('}'))
        .expect("a filter in braces");
    let mut out = BTreeMap::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=').expect("an operator");
        let name = rest[..eq].to_owned();
        assert!(
            !name.contains([' ', '{', '}', '!', '~', ',', '"', '\\']),
            "a name the UI cannot read: {name:?}"
        );
        let mut stream = serde_json::Deserializer::from_str(&rest[eq + 1..]).into_iter::<String>();
        let value = stream
            .next()
            .expect("a JSON string")
            .expect("a valid JSON string");
        let used = stream.byte_offset();
        out.insert(name, value);
        rest = rest[eq + 1 + used..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    out
}

fn group_labels(name: &str) -> BTreeMap<String, String> {
    let n: Value = serde_json::from_str(&payload(name)).unwrap();
    n["groupLabels"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn an_action_card_has_the_default_buttons_and_the_double_accepts_it() {
    let app = spawn_app(&card_yaml(""), &[]).await;

    let response = app.post("ops", payload("firing_group.json")).await;

    assert_eq!(response.status(), 200);
    let received = &app.robot.received()[0];
    assert_eq!(received.msgtype(), "actionCard");
    let card = &received.body["actionCard"];
    assert!(card["title"].as_str().unwrap().contains("磁盘使用率告警"));
    assert!(received.text().contains("磁盘使用率告警"));
    assert_eq!(card["btnOrientation"], "1");
    let buttons = received.action_buttons();
    let titles: Vec<&str> = buttons.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(titles, ["查看告警", "静默 2 小时", "Prometheus 图表"]);
    assert!(
        buttons[0]
            .1
            .starts_with("http://127.0.0.1:19093/#/alerts?filter=%7B")
    );
    assert!(
        buttons[2]
            .1
            .starts_with("http://prometheus-0:9090/graph?g0.expr=")
    );
}

#[tokio::test]
async fn the_silence_button_opens_the_new_silence_form_with_the_groups_matchers() {
    let app = spawn_app(&card_yaml(""), &[]).await;
    let mut n: Value = serde_json::from_str(&payload("firing_group.json")).unwrap();
    // A value with quotes, a backslash, a comma and a brace: the UI must still read it.
    n["groupLabels"]["job"] = Value::from("node \"a\\b\", {x}");

    app.post("ops", n.to_string()).await;

    let buttons = app.robot.received()[0].action_buttons();
    let (title, url) = &buttons[1];
    assert_eq!(title, "静默 2 小时");
    let filter = url
        .strip_prefix("http://127.0.0.1:19093/#/silences/new?filter=")
        .unwrap_or_else(|| panic!("{url}"));
    assert!(
        !filter.contains(['{', '"', ' ', '&', '#']),
        "not encoded: {filter}"
    );
    let matchers = ui_matchers(&percent_decode(filter));
    let mut expected = group_labels("firing_group.json");
    expected.insert("job".into(), "node \"a\\b\", {x}".into());
    assert_eq!(matchers, expected);
}

#[tokio::test]
async fn a_profiles_own_buttons_render_their_url_templates_and_a_bad_scheme_is_left_out() {
    let buttons = "    buttons:\n      - { title: 运行手册, url: \"https://wiki.example.com/runbooks/{{ commonLabels.alertname }}?host={{ alerts[0].labels.instance | percent_encode }}\" }\n      - { title: 坏链接, url: \"javascript:alert(1)\" }\n      - { title: 空, url: \"{{ commonAnnotations.nothing | default(value='') }}\" }\n";
    let app = spawn_app(&card_yaml(buttons), &[]).await;

    app.post("ops", payload("firing_single.json")).await;

    let received = &app.robot.received()[0];
    let buttons = received.action_buttons();
    assert_eq!(buttons.len(), 1, "{buttons:?}");
    assert_eq!(buttons[0].0, "运行手册");
    // The path's Chinese is percent-encoded by the URL parser; the query value by the filter.
    assert_eq!(
        buttons[0].1,
        "https://wiki.example.com/runbooks/CPU%E4%BD%BF%E7%94%A8%E7%8E%87%E5%91%8A%E8%AD%A6?host=192.168.10.21%3A9100"
    );
    assert!(
        received.body["actionCard"]["singleURL"].is_string(),
        "one button: singleURL"
    );
}

#[tokio::test]
async fn open_links_sidebar_wraps_each_button_in_dingtalks_link_scheme() {
    let app = spawn_app(&card_yaml("    open_links: sidebar\n"), &[]).await;

    app.post("ops", payload("firing_single.json")).await;

    let buttons = app.robot.received()[0].action_buttons();
    let url = &buttons[0].1;
    let inner = url
        .strip_prefix("dingtalk://dingtalkclient/page/link?url=")
        .and_then(|u| u.strip_suffix("&pc_slide=true"))
        .unwrap_or_else(|| panic!("{url}"));
    assert!(percent_decode(inner).starts_with("http://127.0.0.1:19093/#/alerts?filter=%7B"));
}

#[tokio::test]
async fn a_large_action_card_is_cut_under_the_cap_with_its_buttons() {
    let app = spawn_app(&card_yaml(""), &[]).await;
    let mut n: Value = serde_json::from_str(&payload("firing_single.json")).unwrap();
    let alert = n["alerts"][0].clone();
    n["alerts"] = Value::from(
        (0..400)
            .map(|i| {
                let mut a = alert.clone();
                a["labels"]["instance"] = Value::from(format!("host-{i}:9100"));
                a
            })
            .collect::<Vec<_>>(),
    );

    let response = app.post("ops", n.to_string()).await;

    assert_eq!(response.status(), 200);
    let received = &app.robot.received()[0];
    assert!(received.body.to_string().len() <= 20_000);
    assert!(received.text().contains("条告警未显示"));
    assert_eq!(received.action_buttons().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn merged_action_cards_keep_the_first_ones_buttons() {
    let yaml = card_yaml("    rate_limit: 1\n").replace("max_wait: 2s", "max_wait: 150s");
    let app = spawn_app(&yaml, &[]).await;
    let mut tasks = Vec::new();
    for i in 0..3 {
        let body = distinct(&payload("firing_single.json"), i);
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
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }

    let received = app.robot.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].msgtype(), "actionCard");
    assert!(
        received[1].body["actionCard"]["title"]
            .as_str()
            .unwrap()
            .starts_with("[合并2条]")
    );
    assert_eq!(received[1].action_buttons().len(), 3);
}

#[tokio::test]
async fn the_preview_shows_the_buttons_and_says_what_was_left_out() {
    let buttons = "    buttons:\n      - { title: 看板, url: \"https://grafana.example.com/d/x\" }\n      - { title: 坏, url: \"ftp://x\" }\n    mention: { mobiles: [\"13800000000\"] }\n";
    let app = spawn_app(&card_yaml(buttons), &[]).await;

    let response = app
        .http
        .post(app.url("/preview/ops"))
        .body("")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["msgtype"], "action_card");
    assert_eq!(answer["buttons"][0]["title"], "看板");
    assert_eq!(
        answer["buttons"][0]["url"],
        "https://grafana.example.com/d/x"
    );
    assert_eq!(answer["body"]["msgtype"], "actionCard");
    let warnings = answer["warnings"].to_string();
    assert!(
        warnings.contains("button \\\"坏\\\" is left out"),
        "{warnings}"
    );
    assert!(
        warnings.contains("action_card messages cannot mention anyone"),
        "{warnings}"
    );
    assert!(app.robot.received().is_empty());
}

#[test]
fn buttons_on_a_markdown_profile_are_refused_with_the_line() {
    let yaml = ops_yaml("    buttons:\n      - { title: x, url: \"https://x\" }\n");
    let error = alertrelay::config::Config::from_yaml(&yaml, std::path::Path::new("p.yaml"))
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("p.yaml:6: "), "{error}");
    assert!(
        error.contains(
            "only DingTalk action cards (message: action_card) and Feishu cards have buttons"
        ),
        "{error}"
    );
}
