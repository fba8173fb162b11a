//! The web config and its certificate files change on disk while alertrelay serves: new
//! connections get what was written, and a broken replacement keeps the last good config.

use std::time::{Duration, Instant};

use super::{Ca, WebApp, client, peer_certificate, tls_yml, write};

const FAILED: &str = "alertrelay_web_config_last_reload_successful 0";
const GOOD: &str = "alertrelay_web_config_last_reload_successful 1";

/// The certificate a new connection is answered with.
async fn certificate_of_a_new_connection(app: &WebApp, ca: &Ca) -> Vec<u8> {
    let fresh = client(ca, None).build().unwrap();
    let response = fresh.get(app.https("/-/healthy")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    peer_certificate(&response)
}

/// Writes `text` beside `path` and renames it over, as cert-manager's atomic writes do.
fn replace(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("new");
    write(&tmp, text);
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn a_rotated_certificate_serves_new_connections_and_a_broken_one_keeps_the_last_good() {
    let ca = Ca::new("test CA");
    let (first, second, third) = (ca.server(), ca.server(), ca.server());
    let app = WebApp::start(
        &tls_yml(""),
        &[("server.crt", &first.cert), ("server.key", &first.key)],
    )
    .await;
    assert_eq!(certificate_of_a_new_connection(&app, &ca).await, first.der);

    replace(&app.path("server.key"), &second.key);
    replace(&app.path("server.crt"), &second.cert);
    let deadline = Instant::now() + Duration::from_secs(10);
    while certificate_of_a_new_connection(&app, &ca).await != second.der {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(app.metrics().contains(GOOD));

    // A certificate whose key was not replaced with it: refused, the second keeps serving.
    replace(&app.path("server.crt"), &third.cert);
    app.wait_for("the failed reload", |m| m.contains(FAILED))
        .await;
    assert_eq!(certificate_of_a_new_connection(&app, &ca).await, second.der);

    // Not PEM at all: refused too.
    replace(&app.path("server.crt"), "not a certificate\n");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.metrics().contains(FAILED));
    assert_eq!(certificate_of_a_new_connection(&app, &ca).await, second.der);

    // Its key arrives: the third is served.
    replace(&app.path("server.key"), &third.key);
    replace(&app.path("server.crt"), &third.cert);
    app.wait_for("the good reload", |m| m.contains(GOOD)).await;
    assert_eq!(certificate_of_a_new_connection(&app, &ca).await, third.der);
}

#[tokio::test]
async fn a_broken_web_config_keeps_the_last_good_users_until_it_is_fixed() {
    let hash = bcrypt::hash("pw", 4).unwrap();
    let good = format!("basic_auth_users:\n  am: {hash}\n");
    let app = WebApp::start(&good, &[]).await;
    let http = reqwest::Client::new();
    let ready = |user: &'static str| {
        let (http, url) = (http.clone(), app.http("/-/ready"));
        async move {
            let response = http
                .get(url)
                .basic_auth(user, Some("pw"))
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        }
    };
    assert_eq!(ready("am").await, 200);

    write(
        &app.path("web.yml"),
        &format!("{good}basic_auth_user:\n  other: {hash}\n"),
    );
    app.wait_for("the failed reload", |m| m.contains(FAILED))
        .await;
    assert_eq!(ready("am").await, 200);
    assert_eq!(ready("other").await, 401);

    write(
        &app.path("web.yml"),
        &format!("basic_auth_users:\n  other: {hash}\n"),
    );
    app.wait_for("the good reload", |m| m.contains(GOOD)).await;
    assert_eq!(ready("other").await, 200);
    assert_eq!(ready("am").await, 401);
}

#[tokio::test]
async fn switching_tls_off_in_a_reload_is_refused_and_https_goes_on() {
    let ca = Ca::new("test CA");
    let server = ca.server();
    let app = WebApp::start(
        &tls_yml(""),
        &[("server.crt", &server.cert), ("server.key", &server.key)],
    )
    .await;

    write(&app.path("web.yml"), "basic_auth_users: {}\n");
    app.wait_for("the failed reload", |m| m.contains(FAILED))
        .await;

    assert_eq!(certificate_of_a_new_connection(&app, &ca).await, server.der);
    assert!(app.web.tls());
}

#[tokio::test]
async fn post_reload_reloads_the_web_config_too_and_says_when_it_is_refused() {
    let ca = Ca::new("test CA");
    let server = ca.server();
    let app = WebApp::start(
        &tls_yml(""),
        &[("server.crt", &server.cert), ("server.key", &server.key)],
    )
    .await;
    let https = client(&ca, None).build().unwrap();
    let reload = || https.post(app.https("/-/reload")).send();

    let answer = reload().await.unwrap();
    assert_eq!(answer.status(), 200);

    // Plain HTTP now: refused by the reload (as by the watcher), HTTPS goes on.
    write(&app.path("web.yml"), "basic_auth_users: {}\n");
    let answer = reload().await.unwrap();
    assert_eq!(answer.status(), 500);
    let text = answer.text().await.unwrap();
    assert!(
        text.contains("reload of the web config failed, the last good one keeps serving"),
        "{text}"
    );
    assert!(app.metrics().contains(FAILED));
    assert_eq!(certificate_of_a_new_connection(&app, &ca).await, server.der);
}
