//! Replicas that act as one (issue 16): alertrelay processes sharing one Redis (`state.redis`)
//! suppress each other's duplicates — the same notification posted to two replicas reaches the
//! robot once — and one that cannot reach Redis keeps delivering, on memory alone, saying so
//! in `alertrelay_state_backend_up`. Real Redis (`redis-server` children), real servers.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{TestApp, json, payload, spawn_app_with_robot};
use crate::redis::{PASSWORD, Redis};
use crate::robot::{Reply, RobotDouble};

/// A replica with one profile `ops` on `robot`, sharing `redis_url`.
async fn replica(robot: &RobotDouble, redis_url: &str) -> TestApp {
    let yaml = format!(
        "timeout: 2s\nmax_wait: 3s\nstate:\n  redis: {redis_url}\n  key_prefix: replicas-test\n  replicas: 2\nprofiles:\n  ops:\n    url: http://{{robot}}/robot/send?access_token=ops-token\n"
    );
    spawn_app_with_robot(robot.clone(), &yaml, &[]).await
}

async fn post(app: &TestApp, body: &str) -> (u16, Value) {
    let response = app.post("ops", body.to_owned()).await;
    (response.status().as_u16(), json(response).await)
}

fn duplicate(body: &Value) -> bool {
    body.get("duplicate") == Some(&Value::Bool(true))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_notification_posted_to_two_replicas_at_once_reaches_the_robot_once() {
    let redis = Redis::start().await;
    let robot = RobotDouble::start().await;
    let (a, b) = (
        replica(&robot, &redis.url()).await,
        replica(&robot, &redis.url()).await,
    );
    robot.script([Reply::Delay(Duration::from_millis(500))]);
    let body = payload("firing_single.json");

    let (first, second) = tokio::join!(post(&a, &body), post(&b, &body));

    assert_eq!((first.0, second.0), (200, 200), "{first:?} {second:?}");
    assert_eq!(
        [duplicate(&first.1), duplicate(&second.1)]
            .iter()
            .filter(|d| **d)
            .count(),
        1,
        "one delivery and one duplicate: {first:?} {second:?}"
    );
    assert_eq!(robot.received().len(), 1);
    assert_eq!(robot.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_one_replica_delivered_is_a_duplicate_for_another_later() {
    let redis = Redis::start().await;
    let robot = RobotDouble::start().await;
    let (a, b) = (
        replica(&robot, &redis.url()).await,
        replica(&robot, &redis.url()).await,
    );
    let body = payload("firing_single.json");

    let (status, delivered) = post(&a, &body).await;
    assert_eq!(status, 200, "{delivered}");
    assert!(!duplicate(&delivered));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, again) = post(&b, &body).await;

    assert_eq!(status, 200, "{again}");
    assert!(
        duplicate(&again),
        "posted again by the other replica: {again}"
    );
    assert_eq!(robot.received().len(), 1);
    assert!(
        b.metrics()
            .await
            .contains("alertrelay_notifications_duplicate_total{profile=\"ops\"} 1")
    );
    assert!(b.metrics().await.contains("alertrelay_state_backend_up 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_failed_on_one_replica_is_delivered_by_the_retry_on_another() {
    let redis = Redis::start().await;
    let robot = RobotDouble::start().await;
    let (a, b) = (
        replica(&robot, &redis.url()).await,
        replica(&robot, &redis.url()).await,
    );
    robot.script([Reply::Errcode(310_000, "sign not match")]);
    let body = payload("firing_single.json");

    let (failed, _) = post(&a, &body).await;
    let (status, retried) = post(&b, &body).await;

    assert_eq!(failed, 502);
    assert_eq!(status, 200, "{retried}");
    assert!(
        !duplicate(&retried),
        "a failure suppressed the retry: {retried}"
    );
    assert_eq!(robot.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_cannot_reach_redis_keeps_delivering_and_says_so() {
    let mut redis = Redis::start().await;
    let url = redis.url();
    redis.stop();
    let robot = RobotDouble::start().await;
    let app = replica(&robot, &url).await;
    let body = payload("firing_single.json");

    let (status, delivered) = post(&app, &body).await;
    let (again, copy) = post(&app, &body).await;

    assert_eq!(status, 200, "{delivered}");
    assert_eq!(again, 200, "{copy}");
    assert!(
        duplicate(&copy),
        "memory still suppresses the retry: {copy}"
    );
    assert_eq!(robot.received().len(), 1);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("alertrelay_state_backend_up 0"),
        "{metrics}"
    );

    // Redis back on the same port: the replica uses it again by itself.
    redis.run().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let next = crate::helpers::distinct(&body, 1);
    loop {
        let (status, body) = post(&app, &next).await;
        assert_eq!(status, 200, "{body}");
        if app
            .metrics()
            .await
            .contains("alertrelay_state_backend_up 1")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never used Redis again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn check_refuses_a_wrong_redis_password_without_showing_it() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let redis = runtime.block_on(Redis::with_password());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profiles.yaml");
    let wrong = redis.url_with("not-the-password");
    std::fs::write(
        &file,
        format!(
            "state:\n  redis: {wrong}\nprofiles:\n  ops:\n    url: http://127.0.0.1:1/robot/send?access_token=t\n"
        ),
    )
    .unwrap();

    let (code, stdout) = crate::binary::check(&file);

    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("FAILED: state.redis:"), "{stdout}");
    assert!(!stdout.contains("not-the-password"), "{stdout}");
    assert!(!stdout.contains(PASSWORD), "{stdout}");
    std::fs::write(
        &file,
        format!(
            "state:\n  redis: {}\nprofiles:\n  ops:\n    url: http://127.0.0.1:1/robot/send?access_token=t\n",
            redis.url()
        ),
    )
    .unwrap();
    let (code, stdout) = crate::binary::check(&file);
    assert_eq!(code, Some(0), "{stdout}");
    drop(redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttle_one_replica_was_told_holds_the_robot_back_on_every_replica() {
    let redis = Redis::start().await;
    let robot = RobotDouble::start().await;
    let (a, b) = (
        replica(&robot, &redis.url()).await,
        replica(&robot, &redis.url()).await,
    );
    robot.script([Reply::Errcode(130_101, "send too fast")]);
    let body = payload("firing_single.json");

    let (throttled, answer) = post(&a, &body).await;
    let started = std::time::Instant::now();
    let (held, other) = post(&b, &crate::helpers::distinct(&body, 1)).await;

    assert_eq!(throttled, 503, "{answer}");
    assert_eq!(
        held, 503,
        "the other replica sent to a throttled robot: {other}"
    );
    assert!(
        other["error"].as_str().unwrap().contains("throttled"),
        "{other}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "not answered at once"
    );
    assert_eq!(
        robot.requests(),
        1,
        "the other replica sent to a throttled robot"
    );
}
