//! The preview page in a real browser: headless Chromium driven over WebDriver
//! (chromedriver), as a person would use it. Saves screenshots to target/preview.png (DingTalk),
//! target/preview-wecom.png and target/preview-feishu.png.
//! `scripts/test.sh` installs Debian's chromium and chromium-driver.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::spawn_app;

struct Driver {
    _child: crate::helpers::Process,
    url: String,
    _profile: tempfile::TempDir,
}

async fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    #[allow(clippy::zombie_processes)] // `Process` kills and waits on drop.
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("chromedriver: {e}; run scripts/test.sh, which installs chromium-driver")
        });
    let driver = Driver {
        _child: crate::helpers::Process(child),
        url: format!("http://127.0.0.1:{port}"),
        _profile: tempfile::tempdir().unwrap(),
    };
    let started = Instant::now();
    while reqwest::get(format!("{}/status", driver.url))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver
}

async fn browser(driver: &Driver) -> Client {
    let user_data = format!("--user-data-dir={}", driver._profile.path().display());
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-quic", "--window-size=1600,1000", user_data,
            ],
        },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("chromium did not start under chromedriver")
}

/// Chooses an option of a `<select>`, as a person would.
async fn select(client: &Client, id: &str, value: &str) {
    let element = client.find(Locator::Id(id)).await.unwrap();
    element.select_by_value(value).await.unwrap();
}

/// Waits until the element's text (or inner HTML) contains `needle`.
async fn wait_for(client: &Client, id: &str, html: bool, needle: &str) {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(20) {
        if let Ok(element) = client.find(Locator::Id(id)).await {
            last = if html {
                element.html(true).await.unwrap_or_default()
            } else {
                element.text().await.unwrap_or_default()
            };
            if last.contains(needle) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("#{id} never showed {needle:?}; it showed {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_edits_a_template_and_sees_the_dingtalk_render_change() {
    let app = spawn_app(
        "profiles:
  ops:
    url: http://{robot}/robot/send?access_token=t1
    mention: { mobiles: [\"13800000000\"] }
  dba:
    url: http://{robot}/robot/send?access_token=t2
    message: text
",
        &[],
    )
    .await;
    let driver = start_driver().await;
    let client = browser(&driver).await;

    client.goto(&app.url("/preview")).await.unwrap();
    wait_for(&client, "profile", false, "ops (markdown)").await;
    select(&client, "profile", "ops").await;
    wait_for(&client, "raw", false, "【故障】2 条告警").await;
    wait_for(&client, "rendered", true, "<font color=\"#FF0000\">").await;
    wait_for(&client, "warnings", false, "@13800000000").await;
    wait_for(&client, "file-hint", false, "default.md.tera").await;

    select(&client, "sample", "firing").await;
    wait_for(&client, "raw", false, "【故障】1 条告警").await;

    let editor = client.find(Locator::Id("template")).await.unwrap();
    editor.clear().await.unwrap();
    editor.send_keys("### 已编辑 {{ alerts | length }} 条\n\n- **{{ alerts[0].labels.alertname }}** @13800000000").await.unwrap();
    wait_for(&client, "rendered", true, "<h3>已编辑 1 条</h3>").await;
    wait_for(&client, "rendered", true, "<strong>CPU使用率告警</strong>").await;
    wait_for(&client, "raw", false, "### 已编辑 1 条").await;

    editor.send_keys("\n{% if %}").await.unwrap();
    wait_for(&client, "error", false, "unsaved template:4:").await;

    let screenshot_at = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/preview.png");
    editor.send_keys("{% endif %}").await.unwrap();
    select(&client, "profile", "dba").await;
    wait_for(&client, "msgtype", false, "(text)").await;
    wait_for(&client, "rendered", true, "text-message").await;
    select(&client, "profile", "ops").await;
    select(&client, "sample", "group").await;
    wait_for(&client, "raw", false, "【恢复】1 条告警").await;
    let png = client.screenshot().await.unwrap();
    // `target/` is missing when cargo builds elsewhere (CARGO_TARGET_DIR).
    std::fs::create_dir_all(screenshot_at.parent().unwrap()).unwrap();
    std::fs::write(&screenshot_at, &png).unwrap();
    assert!(png.starts_with(b"\x89PNG"));

    client.close().await.unwrap();
    assert_eq!(app.robot.requests(), 0, "the preview page sent something");
}

/// What `#rendered` links to or loads: every `href` and `src` in it.
async fn rendered_urls(client: &Client) -> Vec<String> {
    let urls = client
        .execute(
            "return [...document.querySelectorAll('#rendered [href], #rendered [src]')]
               .map((e) => e.getAttribute('href') || e.getAttribute('src'));",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(urls).unwrap()
}

/// Asserts that the message shown links and loads only web URLs.
async fn assert_only_web_urls(client: &Client) {
    let urls = rendered_urls(client).await;
    assert!(
        urls.iter()
            .all(|u| u.starts_with("http://") || u.starts_with("https://")),
        "{urls:?}"
    );
    let html = client
        .find(Locator::Id("rendered"))
        .await
        .unwrap()
        .html(true)
        .await
        .unwrap()
        .to_lowercase();
    assert!(
        !html.contains("javascript:") && !html.contains("data:"),
        "{html}"
    );
}

/// Puts an inline script, an inline event handler and a `javascript:` link into the page
/// from outside (as a sanitiser bug would), clicks the link, and waits until the browser
/// has reported all three as policy violations or one of them has run. Returns what ran.
async fn inject_script_past_the_sanitiser(client: &Client) -> serde_json::Value {
    client
        .execute(
            r#"window.violations = [];
            document.addEventListener("securitypolicyviolation",
              (e) => window.violations.push(e.effectiveDirective));
            const script = document.createElement("script");
            script.textContent = "document.body.dataset.pwned = 'inline script'";
            document.body.append(script);
            const img = document.createElement("img");
            img.setAttribute("onerror", "document.body.dataset.pwned = 'event handler'");
            img.src = "/no-such-image.png";
            document.body.append(img);
            const link = document.createElement("a");
            link.id = "injected";
            link.href = "javascript:void(document.body.dataset.pwned = 'javascript link')";
            link.textContent = "injected";
            document.body.append(link);"#,
            vec![],
        )
        .await
        .unwrap();
    let link = client.find(Locator::Id("injected")).await.unwrap();
    link.click().await.unwrap();
    let started = Instant::now();
    loop {
        let seen = client
            .execute(
                "return [window.violations, document.body.dataset.pwned ?? null];",
                vec![],
            )
            .await
            .unwrap();
        let blocked = seen[0].as_array().map_or(0, Vec::len);
        if blocked >= 3 || !seen[1].is_null() {
            return seen[1].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the browser reported only {} as violations",
            seen[0]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_payload_and_template_run_no_script_in_the_page() {
    let app = spawn_app(
        "profiles:\n  ops:\n    url: http://{robot}/robot/send?access_token=t1\n",
        &[],
    )
    .await;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    client.goto(&app.url("/preview")).await.unwrap();
    // The page's own script runs under its policy: it fills in the profiles.
    wait_for(&client, "profile", false, "ops (markdown)").await;

    select(&client, "sample", "custom").await;
    let hostile = crate::helpers::payload("firing_single.json").replace(
        "\"generatorURL\":\"",
        "\"generatorURL\":\"javascript:document.body.dataset.pwned='generatorURL'//",
    );
    client
        .execute(
            "const p = document.getElementById('payload');
             p.value = arguments[0];
             p.dispatchEvent(new Event('input'));",
            vec![json!(hostile)],
        )
        .await
        .unwrap();
    wait_for(&client, "raw", false, "(javascript:document.body").await;
    wait_for(&client, "rendered", false, "Prometheus 图表").await;
    assert_only_web_urls(&client).await;

    let editor = client.find(Locator::Id("template")).await.unwrap();
    editor.clear().await.unwrap();
    editor
        .send_keys(
            "[a](javascript:alert(1)) [b](JaVaScRiPt:alert(1)) [c](&#106;avascript:alert(1)) \
             ![i](data:image/svg+xml;base64,PHN2Zy8+) [ok](https://example.com/) \
             <img src=x onerror=alert(1)> 完",
        )
        .await
        .unwrap();
    wait_for(&client, "rendered", false, "完").await;
    assert_only_web_urls(&client).await;
    assert_eq!(rendered_urls(&client).await, ["https://example.com/"]);

    let ran = inject_script_past_the_sanitiser(&client).await;
    assert_eq!(ran, serde_json::Value::Null, "script ran in the page");

    // The page still works.
    editor.send_keys(" 仍然可用").await.unwrap();
    wait_for(&client, "rendered", false, "完 仍然可用").await;
    client.close().await.unwrap();
    assert_eq!(app.robot.requests(), 0, "the preview page sent something");
}

/// The class of an element.
async fn class_of(client: &Client, id: &str) -> String {
    let element = client.find(Locator::Id(id)).await.unwrap();
    element.attr("class").await.unwrap().unwrap_or_default()
}

/// Waits until the element's class holds `class`.
async fn wait_for_class(client: &Client, id: &str, class: &str) {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(20) {
        last = class_of(client, id).await;
        if last.split_whitespace().any(|c| c == class) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("#{id} never had class {class:?}; it had {last:?}");
}

async fn screenshot(client: &Client, name: &str) {
    let at = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(name);
    let png = client.screenshot().await.unwrap();
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::fs::write(&at, &png).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_previews_wecom_and_feishu_profiles_as_their_clients_show_them() {
    let app = spawn_app(
        "profiles:
  wx:
    url: http://{robot}/cgi-bin/webhook/send?key=k1
    mention: { user_ids: [\"zhangsan\"] }
  fs:
    url: http://{robot}/open-apis/bot/v2/hook/t1
    title: \"<img src=x onerror=alert(1)> {{ status }}\"
",
        &[],
    )
    .await;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    client.goto(&app.url("/preview")).await.unwrap();
    wait_for(&client, "profile", false, "wx (markdown)").await;

    select(&client, "profile", "wx").await;
    wait_for(&client, "channel", false, "企业微信").await;
    wait_for(&client, "raw", false, "<@zhangsan>").await;
    wait_for(&client, "rendered", true, "wecom-warning").await;
    wait_for(&client, "rendered", true, "class=\"mention\"").await;
    let html = client.find(Locator::Id("rendered")).await.unwrap();
    assert!(
        !html.html(true).await.unwrap().contains("<li"),
        "WeCom shows no lists"
    );
    screenshot(&client, "preview-wecom.png").await;

    select(&client, "profile", "fs").await;
    wait_for(&client, "channel", false, "飞书").await;
    wait_for_class(&client, "bubble", "card").await;
    wait_for_class(&client, "card-header", "card-red").await;
    wait_for(
        &client,
        "card-title",
        false,
        "<img src=x onerror=alert(1)> firing",
    )
    .await;
    wait_for(&client, "card-buttons", true, "静默 2 小时").await;
    let buttons = client
        .execute(
            "return [...document.querySelectorAll('#card-buttons a.card-button')].map((a) => a.getAttribute('href'));",
            vec![],
        )
        .await
        .unwrap();
    let buttons: Vec<String> = serde_json::from_value(buttons).unwrap();
    assert!(
        !buttons.is_empty() && buttons.iter().all(|u| u.starts_with("http")),
        "{buttons:?}"
    );
    screenshot(&client, "preview-feishu.png").await;
    select(&client, "sample", "resolved").await;
    wait_for_class(&client, "card-header", "card-green").await;
    let pwned = client
        .execute("return document.body.dataset.pwned ?? null;", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, serde_json::Value::Null);

    client.close().await.unwrap();
    assert_eq!(app.robot.requests(), 0, "the preview page sent something");
}
