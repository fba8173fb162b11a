//! HTTPS: the configured certificate, plain HTTP refused, TLS versions, mutual TLS.

use super::{Ca, WebApp, client, peer_certificate, send, tls_yml};

async fn serving(extra: &str, ca: &Ca, files: &[(&str, &str)]) -> WebApp {
    let server = ca.server();
    let mut all = vec![
        ("server.crt", server.cert.as_str()),
        ("server.key", server.key.as_str()),
    ];
    all.extend_from_slice(files);
    WebApp::start(&tls_yml(extra), &all).await
}

#[tokio::test]
async fn https_answers_with_the_configured_certificate_and_delivers() {
    let ca = Ca::new("test CA");
    let server = ca.server();
    let app = WebApp::start(
        &tls_yml(""),
        &[("server.crt", &server.cert), ("server.key", &server.key)],
    )
    .await;
    let https = client(&ca, None).build().unwrap();

    let response = https.get(app.https("/-/healthy")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(peer_certificate(&response), server.der);
    let response = send(&https, &app.https("/dingtalk/ops/send"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.robot.received().len(), 1);
}

#[tokio::test]
async fn plain_http_to_the_tls_port_is_answered_400_and_served_nothing() {
    let ca = Ca::new("test CA");
    let app = serving("", &ca, &[]).await;

    let response = send(&reqwest::Client::new(), &app.http("/dingtalk/ops/send"))
        .await
        .unwrap();

    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("HTTPS server"));
    assert!(app.robot.received().is_empty());
    assert!(
        app.metrics()
            .contains("alertrelay_tls_handshake_failures_total{reason=\"plain_http\"} 1"),
        "{}",
        app.metrics()
    );
}

#[tokio::test]
async fn tls_1_2_is_refused_when_min_version_is_tls13() {
    let ca = Ca::new("test CA");
    let app = serving("  min_version: TLS13\n", &ca, &[]).await;
    let tls12 = client(&ca, None)
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    let tls13 = client(&ca, None).build().unwrap();

    let refused = tls12.get(app.https("/-/healthy")).send().await;
    let served = tls13.get(app.https("/-/healthy")).send().await.unwrap();

    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(served.status(), 200);
}

#[tokio::test]
async fn tls_1_2_is_served_by_default() {
    let ca = Ca::new("test CA");
    let app = serving("", &ca, &[]).await;
    let tls12 = client(&ca, None)
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();

    let response = tls12.get(app.https("/-/healthy")).send().await.unwrap();

    assert_eq!(response.status(), 200);
}

const MTLS: &str =
    "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.crt\n";

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    let (ca, clients) = (Ca::new("server CA"), Ca::new("client CA"));
    let app = serving(MTLS, &ca, &[("client-ca.crt", &clients.pem())]).await;

    let result = send(
        &client(&ca, None).build().unwrap(),
        &app.https("/dingtalk/ops/send"),
    )
    .await;

    assert!(result.is_err(), "{result:?}");
    assert!(app.robot.received().is_empty());
}

#[tokio::test]
async fn mutual_tls_refuses_a_certificate_from_another_ca() {
    let (ca, clients, other) = (
        Ca::new("server CA"),
        Ca::new("client CA"),
        Ca::new("other CA"),
    );
    let app = serving(MTLS, &ca, &[("client-ca.crt", &clients.pem())]).await;
    let stranger = other.client("alertmanager");

    let result = send(
        &client(&ca, Some(&stranger)).build().unwrap(),
        &app.https("/dingtalk/ops/send"),
    )
    .await;

    assert!(result.is_err(), "{result:?}");
    assert!(app.robot.received().is_empty());
}

#[tokio::test]
async fn mutual_tls_serves_a_certificate_from_the_client_ca() {
    let (ca, clients) = (Ca::new("server CA"), Ca::new("client CA"));
    let app = serving(MTLS, &ca, &[("client-ca.crt", &clients.pem())]).await;
    let alertmanager = clients.client("alertmanager");

    let response = send(
        &client(&ca, Some(&alertmanager)).build().unwrap(),
        &app.https("/dingtalk/ops/send"),
    )
    .await
    .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(app.robot.received().len(), 1);
}

#[tokio::test]
async fn client_allowed_sans_refuses_a_verified_certificate_with_another_name() {
    let (ca, clients) = (Ca::new("server CA"), Ca::new("client CA"));
    let sans = format!("{MTLS}  client_allowed_sans: [alertmanager]\n");
    let app = serving(&sans, &ca, &[("client-ca.crt", &clients.pem())]).await;
    let url = app.https("/-/healthy");

    let allowed = client(&ca, Some(&clients.client("alertmanager")))
        .build()
        .unwrap();
    let other = client(&ca, Some(&clients.client("grafana")))
        .build()
        .unwrap();

    assert_eq!(allowed.get(&url).send().await.unwrap().status(), 200);
    assert!(other.get(&url).send().await.is_err());
}

#[tokio::test]
async fn a_client_that_connects_and_says_nothing_is_closed_after_the_handshake_timeout() {
    use tokio::io::AsyncReadExt;
    let ca = Ca::new("test CA");
    let app = serving("", &ca, &[]).await;
    let mut idle = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let started = std::time::Instant::now();

    // Meanwhile others are served.
    let https = client(&ca, None).build().unwrap();
    let response = https.get(app.https("/-/healthy")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), idle.read(&mut buffer))
        .await
        .expect("the idle connection was never closed");

    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(9));
    assert!(
        app.metrics()
            .contains("alertrelay_tls_handshake_failures_total{reason=\"timeout\"} 1"),
        "{}",
        app.metrics()
    );
}
