//! `/preview`: every field and error of the JSON API, its bounds, and that nothing is sent.

use serde_json::{Value, json};

use crate::helpers::{TestApp, payload, spawn_app};

const TOKEN: &str = "tok-SECRET-4711";
const SECRET: &str = "SECsigning-0815";

fn yaml() -> String {
    format!(
        "profiles:
  ops:
    url: http://{{robot}}/robot/send?access_token={TOKEN}
    secret: {SECRET}
    mention: {{ mobiles: [\"13800000000\"] }}
  txt:
    url: http://{{robot}}/robot/send?access_token=other
    message: text
  custom:
    url: http://{{robot}}/robot/send?access_token=third
    template: custom.md.tera
"
    )
}

const CUSTOM: &str = "{% for a in alerts %}{% if a.labels.level %}{{ a.labels.nope.deeper }}{% endif %}{{ a.labels.alertname }} @13800000000\n{% endfor %}";

async fn app() -> TestApp {
    spawn_app(&yaml(), &[("custom.md.tera", CUSTOM)]).await
}

async fn preview(app: &TestApp, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = app
        .http
        .post(app.url(path))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn assert_no_secrets(text: &str) {
    assert!(!text.contains(TOKEN), "token leaked: {text}");
    assert!(!text.contains(SECRET), "secret leaked: {text}");
}

#[tokio::test]
async fn an_empty_body_previews_the_builtin_sample_with_every_field() {
    let app = app().await;

    let (status, answer) = preview(&app, "/preview/ops", "").await;

    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["profile"], "ops");
    assert_eq!(answer["msgtype"], "markdown");
    assert!(
        answer["title"]
            .as_str()
            .unwrap()
            .starts_with("[故障:2 恢复:1]"),
        "{answer}"
    );
    let text = answer["text"].as_str().unwrap();
    assert!(text.contains("【故障】2 条告警"), "{text}");
    assert_eq!(answer["body"]["msgtype"], "markdown");
    assert_eq!(answer["body"]["markdown"]["text"], answer["text"]);
    assert_eq!(answer["body"]["at"]["atMobiles"][0], "13800000000");
    assert_eq!(
        answer["bytes"],
        serde_json::to_vec(&answer["body"]).unwrap().len()
    );
    assert_eq!(answer["limit"], 20_000);
    assert_eq!(answer["omitted"], 0);
    assert_eq!(answer["template"]["name"], "default.md.tera");
    assert_eq!(answer["template"]["builtin"], true);
    assert!(
        answer["html"]
            .as_str()
            .unwrap()
            .contains("<font color=\"#FF0000\">"),
        "{answer}"
    );
    assert_eq!(app.robot.requests(), 0);
}

#[tokio::test]
async fn a_posted_payload_is_previewed_and_nothing_reaches_the_robot() {
    let app = app().await;

    let (status, answer) =
        preview(&app, "/preview/ops", payload("mixed_firing_resolved.json")).await;

    assert_eq!(status, 200);
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .contains("192.168.20.31:9100 (oms-db-01)")
    );
    assert_eq!(app.robot.requests(), 0, "a preview reached the robot");
}

#[tokio::test]
async fn a_mention_missing_from_the_template_text_is_warned_about() {
    let app = app().await;

    let (_, answer) = preview(&app, "/preview/ops", "").await;

    let warnings = answer["warnings"].to_string();
    assert!(
        warnings.contains("@13800000000 is mentioned in the profile but not in the template"),
        "{warnings}"
    );
    assert!(answer["text"].as_str().unwrap().ends_with("@13800000000"));
}

#[tokio::test]
async fn unsaved_template_text_renders_from_the_query_or_a_json_wrapper() {
    let app = app().await;
    let template = "告警 {{ alerts | length }} 条 @13800000000";

    let url = format!(
        "/preview/ops?sample=firing&template={}",
        urlencode(template)
    );
    let (status, answer) = preview(&app, &url, "").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["text"], "告警 1 条 @13800000000");
    assert_eq!(answer["warnings"], json!([]));

    let wrapper = json!({ "sample": "group", "template": template }).to_string();
    let (status, answer) = preview(&app, "/preview/ops", wrapper).await;
    assert_eq!(status, 200);
    assert_eq!(answer["text"], "告警 3 条 @13800000000");
    assert_eq!(answer["template"]["source"], template);
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn a_message_over_the_cap_is_cut_and_warned_about() {
    let app = app().await;
    let mut big: Value = serde_json::from_str(&payload("firing_single.json")).unwrap();
    big["alerts"] = Value::Array(vec![big["alerts"][0].clone(); 2_000]);

    let (status, answer) = preview(&app, "/preview/txt", big.to_string()).await;

    assert_eq!(status, 200);
    assert!(answer["bytes"].as_u64().unwrap() <= 20_000);
    assert!(answer["omitted"].as_u64().unwrap() > 1_000);
    let warning = answer["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("over DingTalk's 20000-byte cap"),
        "{warning}"
    );
}

#[tokio::test]
async fn a_saved_template_that_fails_shows_the_fallback_with_a_warning() {
    let app = app().await;

    let (status, answer) = preview(&app, "/preview/custom", payload("firing_single.json")).await;

    assert_eq!(status, 200);
    assert!(
        answer["warnings"][0]
            .as_str()
            .unwrap()
            .contains("the template failed"),
        "{answer}"
    );
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .contains("【故障】1 条告警")
    );
    assert_eq!(answer["template"]["name"], "custom.md.tera");
    assert!(
        answer["template"]["file"]
            .as_str()
            .unwrap()
            .ends_with("templates/custom.md.tera")
    );
}

#[tokio::test]
async fn template_errors_are_answered_422_with_name_line_and_message() {
    let app = app().await;
    for (template, line) in [
        ("ok\n{% if %}", 2),
        ("ok\nok\n{{ alerts[0].labels.nope }}", 3),
    ] {
        let wrapper = json!({ "template": template }).to_string();

        let (status, answer) = preview(&app, "/preview/ops", wrapper).await;

        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["template"], "unsaved template");
        assert_eq!(answer["line"], line, "{answer}");
        assert!(!answer["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn unknown_profiles_and_samples_are_answered_404_and_bad_bodies_400() {
    let app = app().await;
    assert_eq!(preview(&app, "/preview/nope", "").await.0, 404);
    assert_eq!(preview(&app, "/preview/ops?sample=nope", "").await.0, 404);
    assert_eq!(preview(&app, "/preview/ops", "{not json").await.0, 400);
    assert_eq!(
        preview(&app, "/preview/ops", r#"{"colour": 1}"#).await.0,
        400
    );
}

#[tokio::test]
async fn text_profiles_preview_as_plain_text() {
    let app = app().await;

    let (_, answer) = preview(&app, "/preview/txt", "").await;

    assert_eq!(answer["msgtype"], "text");
    assert_eq!(answer["body"]["text"]["content"], answer["text"]);
    assert!(
        answer["html"]
            .as_str()
            .unwrap()
            .starts_with("<pre class=\"text-message\">")
    );
}

#[tokio::test]
async fn no_preview_answer_holds_a_token_or_secret() {
    let app = app().await;
    let mut seen = String::new();
    for path in ["/preview/profiles", "/preview/samples", "/preview"] {
        seen.push_str(
            &app.http
                .get(app.url(path))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    for body in [
        "",
        r#"{"template": "{{ profile }}"}"#,
        r#"{"template": "{% if %}"}"#,
    ] {
        seen.push_str(&preview(&app, "/preview/ops", body).await.1.to_string());
    }
    assert!(seen.contains("\"ops\""));
    assert_no_secrets(&seen);
}

#[tokio::test]
async fn the_page_is_served_from_the_binary() {
    let app = app().await;

    let response = app.http.get(app.url("/preview")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("不会保存到磁盘"));
    assert!(page.contains("<script src=\"/preview/assets/page.js\" defer></script>"));
    assert!(
        !page.contains("<script>") && !page.contains("<style"),
        "inline script or style"
    );
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page loads something from elsewhere"
    );
    for (path, kind) in [
        ("/preview/assets/page.js", "text/javascript"),
        ("/preview/assets/page.css", "text/css"),
    ] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
    }
}

#[tokio::test]
async fn every_preview_answer_forbids_inline_script_framing_and_sniffing() {
    let app = app().await;
    let requests = [
        app.http.get(app.url("/preview")),
        app.http.get(app.url("/preview/assets/page.js")),
        app.http.get(app.url("/preview/assets/page.css")),
        app.http.get(app.url("/preview/profiles")),
        app.http.get(app.url("/preview/samples")),
        app.http.post(app.url("/preview/ops")),
        app.http.post(app.url("/preview/nope")),
        app.http.post(app.url("/preview/ops")).body("{not json"),
    ];

    for request in requests {
        let response = request.send().await.unwrap();
        let what = format!("{} {}", response.url().path(), response.status());
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(headers["x-frame-options"], "DENY", "{what}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(directives.contains(&directive), "{what}: {policy}");
        }
        assert!(!policy.contains("unsafe"), "{what}: {policy}");
    }
}

#[tokio::test]
async fn a_javascript_generator_url_is_no_link_in_the_preview_html() {
    let app = app().await;
    let payload = payload("firing_single.json").replace(
        "\"generatorURL\":\"",
        "\"generatorURL\":\"javascript:alert(document.domain)//",
    );

    let (status, answer) = preview(&app, "/preview/ops", payload).await;

    assert_eq!(status, 200, "{answer}");
    assert!(answer["text"].as_str().unwrap().contains("(javascript:"));
    let html = answer["html"].as_str().unwrap();
    assert!(html.contains("Prometheus 图表"), "{html}");
    assert!(!html.to_lowercase().contains("javascript:"), "{html}");
}

#[tokio::test]
async fn the_preview_can_be_switched_off() {
    let app = app().await;
    let addr = crate::helpers::serve(app.state.clone().with_preview(false)).await;

    for path in ["/preview", "/preview/profiles"] {
        let response = app
            .http
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let response = app
        .http
        .post(format!("http://{addr}/preview/ops"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
