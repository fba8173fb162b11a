//! The binary with `--web.config.file`: `alertrelay check` on web configs, and a broken one
//! at startup.

use std::process::Output;

use super::{Ca, tls_yml, write};
use crate::binary::command;

/// Runs `alertrelay check --web.config.file web.yml` in a directory holding `web_yml` and
/// `files` (and no profiles.yaml: only the web config is checked).
fn check(web_yml: &str, files: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        write(&dir.path().join(name), content);
    }
    write(&dir.path().join("web.yml"), web_yml);
    let output: Output = command(&["check", "--web.config.file", "web.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn check_accepts_a_web_config_with_tls_and_users() {
    let server = Ca::new("test CA").server();
    let hash = bcrypt::hash("pw", 4).unwrap();
    let yml = format!("{}basic_auth_users:\n  alertmanager: {hash}\n", tls_yml(""));

    let (ok, text) = check(
        &yml,
        &[("server.crt", &server.cert), ("server.key", &server.key)],
    );

    assert!(ok, "{text}");
    assert!(
        text.contains("SUCCESS: web config: HTTPS, basic auth for 1 user"),
        "{text}"
    );
    assert!(!text.contains("profiles.yaml"), "{text}");
}

#[test]
fn check_refuses_a_key_that_does_not_match_the_certificate_with_file_and_line() {
    let ca = Ca::new("test CA");
    let (server, other) = (ca.server(), ca.server());

    let (ok, text) = check(
        &tls_yml(""),
        &[("server.crt", &server.cert), ("server.key", &other.key)],
    );

    assert!(!ok, "{text}");
    assert!(
        text.contains(
            "web.yml:3: tls_server_config.key_file: the key does not match the certificate"
        ),
        "{text}"
    );
    assert!(!text.contains("PRIVATE KEY"), "{text}");
}

#[test]
fn check_refuses_a_password_that_is_not_a_bcrypt_hash_without_printing_it() {
    let (ok, text) = check("basic_auth_users:\n  alertmanager: hunter2\n", &[]);

    assert!(!ok, "{text}");
    assert!(text.contains("web.yml:2: basic_auth_users"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn check_refuses_unknown_keys_and_unreadable_files_with_file_and_line() {
    let (ok, text) = check(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth: x\n",
        &[],
    );
    assert!(!ok);
    assert!(text.contains("web.yml:4: "), "{text}");
    assert!(text.contains("client_auth"), "{text}");

    let (ok, text) = check(&tls_yml(""), &[]);
    assert!(!ok);
    assert!(
        text.contains("web.yml:2: tls_server_config.cert_file: "),
        "{text}"
    );
    assert!(text.contains("server.crt"), "{text}");
}

#[test]
fn check_refuses_what_rustls_cannot_honour() {
    let server = Ca::new("test CA").server();
    let files = [
        ("server.crt", server.cert.as_str()),
        ("server.key", server.key.as_str()),
    ];
    for (extra, line, expected) in [
        (
            "  min_version: TLS10\n",
            4,
            "rustls supports TLS12 and TLS13 only",
        ),
        (
            "  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n",
            4,
            "not offered by rustls",
        ),
        (
            "  curve_preferences: [CurveP521]\n",
            4,
            "not offered by rustls",
        ),
        (
            "  client_ca_file: server.crt\n",
            4,
            "without a client_auth_type",
        ),
    ] {
        let (ok, text) = check(&tls_yml(extra), &files);
        assert!(!ok, "{extra}: {text}");
        assert!(
            text.contains(&format!("web.yml:{line}: ")),
            "{extra}: {text}"
        );
        assert!(text.contains(expected), "{extra}: {text}");
    }
    let (ok, text) = check(
        &tls_yml(
            "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n  curve_preferences: [X25519, CurveP256]\n  prefer_server_cipher_suites: false\n",
        ),
        &files,
    );
    assert!(ok, "{text}");
}

#[test]
fn a_broken_web_config_at_startup_stops_the_process_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    write(&web, "basic_auth_users:\n  alertmanager: plain\n");
    let web_flag = format!("--web.config.file={}", web.display());

    let output = command(&[
        "--web.listen-address=127.0.0.1:0",
        "--ding.profile=ops=http://127.0.0.1:9/robot/send?access_token=t",
        &web_flag,
    ])
    .output()
    .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("web.yml:2: basic_auth_users"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[tokio::test]
async fn the_binary_serves_https_with_mutual_tls_and_logs_the_client_subject_but_no_secret() {
    let (ca, clients) = (Ca::new("server CA"), Ca::new("client CA"));
    let (server, alertmanager) = (ca.server(), clients.client("alertmanager"));
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("server.crt"), &server.cert);
    write(&dir.path().join("server.key"), &server.key);
    write(&dir.path().join("client-ca.crt"), &clients.pem());
    let hash = bcrypt::hash("am-pass", 4).unwrap();
    let yml = tls_yml(&format!(
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.crt\nbasic_auth_users:\n  am: {hash}\n"
    ));
    write(&dir.path().join("web.yml"), &yml);
    let web_flag = format!("--web.config.file={}", dir.path().join("web.yml").display());
    let robot = crate::robot::RobotDouble::start().await;
    let profile = format!("--ding.profile=ops={}", robot.url("t"));
    let app = crate::binary::start(&[&profile, &web_flag, "--log.level=debug"]);
    let port = app.addr.rsplit(':').next().unwrap();
    let url = format!("https://localhost:{port}/dingtalk/ops/send");
    let https = super::client(&ca, Some(&alertmanager)).build().unwrap();

    let response = https
        .post(&url)
        .basic_auth("am", Some("am-pass"))
        .header("content-type", "application/json")
        .body(crate::helpers::payload("firing_single.json"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(robot.received().len(), 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !app.log().contains("client certificate verified") {
        assert!(std::time::Instant::now() < deadline, "{}", app.log());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let log = app.log();
    assert!(log.contains("CN=alertmanager"), "{log}");
    assert!(log.contains("tls=true"), "{log}");
    for secret in ["am-pass", "PRIVATE KEY", &hash] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}
