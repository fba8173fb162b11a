//! The real Alertmanager posting to alertrelay over TLS with basic auth, configured the way
//! the README tells operators to (`http_config: {basic_auth, tls_config: {ca_file}}`).

use serde_json::json;

use super::{Ca, WebApp, tls_yml, write};
use crate::stack::{Alertmanager, alert, wait_until};

const PASSWORD: &str = "am-pass";

/// alertrelay with TLS and one user, and an Alertmanager sending to it with `password`.
async fn pair(password: &str) -> (WebApp, Alertmanager, tempfile::TempDir) {
    let ca = Ca::new("test CA");
    let server = ca.server();
    let hash = bcrypt::hash(PASSWORD, 10).unwrap();
    let yml = format!("{}basic_auth_users:\n  alertmanager: {hash}\n", tls_yml(""));
    let app = WebApp::start(
        &yml,
        &[("server.crt", &server.cert), ("server.key", &server.key)],
    )
    .await;
    let am_dir = tempfile::tempdir().unwrap();
    let ca_file = am_dir.path().join("ca.crt");
    write(&ca_file, &ca.pem());
    let url = app.https("/dingtalk/ops/send");
    let config = format!(
        "route:
  receiver: ops
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: 1h
receivers:
  - name: ops
    webhook_configs:
      - url: {url}
        send_resolved: true
        http_config:
          basic_auth: {{username: alertmanager, password: {password}}}
          tls_config: {{ca_file: {}}}
",
        ca_file.display()
    );
    let am = Alertmanager::start_with(&config).await;
    (app, am, am_dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_delivers_over_tls_with_basic_auth() {
    let (app, am, _dir) = pair(PASSWORD).await;

    am.post(json!([alert("磁盘使用率告警", "wms")])).await;
    wait_until("the message", || !app.robot.received().is_empty()).await;

    let received = app.robot.received();
    assert!(
        received[0].text().contains("磁盘使用率告警"),
        "{}",
        received[0].text()
    );
    assert!(
        !app.metrics()
            .contains("alertrelay_http_auth_failures_total{")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_with_a_wrong_password_is_refused_and_the_robot_gets_nothing() {
    let (app, am, _dir) = pair("not-the-password").await;

    am.post(json!([alert("磁盘使用率告警", "wms")])).await;
    wait_until("Alertmanager to log the 401", || {
        am.log().contains("unexpected status code 401")
    })
    .await;

    assert!(app.robot.received().is_empty());
    assert!(
        app.metrics()
            .contains("alertrelay_http_auth_failures_total{reason=\"wrong_password\"}"),
        "{}",
        app.metrics()
    );
}
