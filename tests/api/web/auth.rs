//! Basic auth from `basic_auth_users`: every failure is a 401 with `WWW-Authenticate` and a
//! counted reason (never the user name), a valid credential costs one bcrypt, and
//! `/-/healthy` is exempt only with `--web.healthy-without-auth`.

use base64::Engine;

use super::{WebApp, send};

const USER: &str = "alertmanager";
const PASSWORD: &str = "s3cret-pass";

/// web.yml with one user at bcrypt cost 10, and `extra` after it.
fn users_yml(extra: &str) -> String {
    let hash = bcrypt::hash(PASSWORD, 10).unwrap();
    format!("basic_auth_users:\n  {USER}: {hash}\n{extra}")
}

fn basic(credentials: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

async fn post_with(app: &WebApp, authorization: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(app.http("/dingtalk/ops/send"))
        .header("content-type", "application/json")
        .body(crate::helpers::payload("firing_single.json"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_right_password_is_let_in_and_every_wrong_one_is_answered_401_with_its_reason() {
    let app = WebApp::start(&users_yml(""), &[]).await;
    let cases = [
        (None, "missing"),
        (Some("Bearer abc".to_owned()), "malformed"),
        (Some(basic("no colon at all")), "malformed"),
        (Some(basic("root:s3cret-pass")), "unknown_user"),
        (Some(basic("alertmanager:wrong")), "wrong_password"),
    ];

    for (authorization, reason) in &cases {
        let response = post_with(&app, authorization.as_deref()).await;
        assert_eq!(response.status(), 401, "{reason}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"alertrelay\"",
            "{reason}"
        );
    }
    let right = post_with(&app, Some(&basic("alertmanager:s3cret-pass"))).await;

    assert_eq!(right.status(), 200);
    assert_eq!(
        app.robot.received().len(),
        1,
        "a refused request reached the robot"
    );
    let metrics = app.metrics();
    for (reason, count) in [
        ("missing", 1),
        ("malformed", 2),
        ("unknown_user", 1),
        ("wrong_password", 1),
    ] {
        let line = format!("alertrelay_http_auth_failures_total{{reason=\"{reason}\"}} {count}");
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
    assert!(
        !metrics.contains(USER),
        "a user name in the metrics:\n{metrics}"
    );
}

#[tokio::test]
async fn a_cost_10_hash_is_verified_once_for_100_sequential_requests() {
    let app = WebApp::start(&users_yml(""), &[]).await;
    let http = reqwest::Client::new();
    let authorization = basic(&format!("{USER}:{PASSWORD}"));

    for _ in 0..100 {
        let response = http
            .get(app.http("/-/ready"))
            .header("authorization", &authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    let metrics = app.metrics();
    assert!(
        metrics.contains("alertrelay_http_auth_bcrypt_verifications_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn healthy_needs_credentials_unless_exempted() {
    let guarded = WebApp::start(&users_yml(""), &[]).await;
    let exempt = WebApp::start_with(&users_yml(""), &[], true).await;
    let http = reqwest::Client::new();

    let status = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };

    assert_eq!(status(guarded.http("/-/healthy")).await, 401);
    assert_eq!(status(exempt.http("/-/healthy")).await, 200);
    // Only /-/healthy: the rest stays behind the password.
    assert_eq!(status(exempt.http("/-/ready")).await, 401);
    assert_eq!(status(exempt.http("/metrics")).await, 401);
    let response = send(&http, &exempt.http("/dingtalk/ops/send"))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn configured_headers_are_on_every_answer_refusals_included() {
    let yml = users_yml("http_server_config:\n  headers:\n    X-Frame-Options: deny\n");
    let app = WebApp::start(&yml, &[]).await;

    let refused = post_with(&app, None).await;
    let served = post_with(&app, Some(&basic(&format!("{USER}:{PASSWORD}")))).await;

    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["x-frame-options"], "deny");
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["x-frame-options"], "deny");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_passwords_is_bounded_and_a_cached_client_still_gets_in() {
    // Cost 12: each check takes long enough that the flood outlasts the slots' wait.
    let hash = bcrypt::hash(PASSWORD, 12).unwrap();
    let app = WebApp::start(&format!("basic_auth_users:\n  {USER}: {hash}\n"), &[]).await;
    let right = basic(&format!("{USER}:{PASSWORD}"));
    assert_eq!(get_ready(&app, &right).await, 200);

    let flood: Vec<_> = (0..60)
        .map(|i| {
            let (url, wrong) = (app.http("/-/ready"), basic(&format!("{USER}:guess-{i}")));
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let response = http.get(url).header("authorization", wrong).send().await;
                response.unwrap().status().as_u16()
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let during = get_ready(&app, &right).await;
    let mut statuses = Vec::new();
    for request in flood {
        statuses.push(request.await.unwrap());
    }

    assert_eq!(
        during, 200,
        "the cached credential was held up by the flood"
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 503),
        "{statuses:?}"
    );
    let overloaded = statuses.iter().filter(|s| **s == 503).count();
    assert!(overloaded > 0, "every guess got a bcrypt: {statuses:?}");
    let metrics = app.metrics();
    let line = format!("alertrelay_http_auth_failures_total{{reason=\"overloaded\"}} {overloaded}");
    assert!(metrics.contains(&line), "{line} not in\n{metrics}");
}

async fn get_ready(app: &WebApp, authorization: &str) -> u16 {
    let response = reqwest::Client::new()
        .get(app.http("/-/ready"))
        .header("authorization", authorization)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}
