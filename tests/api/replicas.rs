//! Replicas that act as one (issue 16): alertrelay servers and processes sharing one Redis
//! (`state.redis`) suppress each other's duplicates (the same notification posted to two
//! replicas reaches the robot once, also after the one that delivered it was killed), keep to
//! one budget and one throttle per robot, and one that cannot reach Redis keeps delivering on
//! its share of the budget and memory, saying so in `alertrelay_state_backend_up`. Real
//! Redis (`redis-server` children), real processes, the robot double counting by its clock.

use std::time::Duration;

use serde_json::Value;

use crate::binary::{self, Running};
use crate::helpers::{TestApp, distinct, json, payload, spawn_app_with_robot};
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
    // As the issue has it: the same notification 10 s later (Alertmanager's retry after its
    // own timeout, or the other HA peer's copy).
    tokio::time::sleep(Duration::from_secs(10)).await;
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

/// A folder holding a `profiles.yaml` for replica processes sharing `redis_url`, whose
/// template shows just each notification's `groupKey` (as `<groupKey>`), so a test can tell
/// which notifications a message (merged or not) carries.
fn shared_config(robot: &RobotDouble, redis_url: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    std::fs::write(
        dir.path().join("templates/default.md.tera"),
        "<{{ groupKey }}>",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("profiles.yaml"),
        format!(
            "timeout: 2s\n{extra}state:\n  redis: {redis_url}\n  key_prefix: processes\n  replicas: 3\nprofiles:\n  ops:\n    url: {}\n",
            robot.url("shared-token")
        ),
    )
    .unwrap();
    dir
}

/// An alertrelay process on the config in `dir`.
fn process(dir: &tempfile::TempDir) -> Running {
    let file = dir.path().join("profiles.yaml");
    binary::start(&[&format!("--config.file={}", file.display())])
}

async fn post_to(addr: &str, body: String) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{addr}/dingtalk/ops/send"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Posts `count` distinct notifications round-robin over `replicas`, one every `every`, and
/// calls `midway` before the `at`th. Returns each one's status, in order.
async fn burst(
    replicas: &[Running],
    count: usize,
    every: Duration,
    (at, midway): (usize, impl FnOnce()),
) -> Vec<u16> {
    let body = payload("firing_single.json");
    let mut posts = Vec::new();
    let mut midway = Some(midway);
    for n in 0..count {
        if n == at {
            midway.take().unwrap()();
        }
        let (addr, body) = (
            replicas[n % replicas.len()].addr.clone(),
            distinct(&body, n),
        );
        posts.push(tokio::spawn(async move { post_to(&addr, body).await }));
        tokio::time::sleep(every).await;
    }
    let mut statuses = Vec::new();
    for post in posts {
        statuses.push(post.await.unwrap());
    }
    statuses
}

/// Every notification answered 200 is in some message the robot accepted, and every other
/// one was answered 5xx (Alertmanager retries it). Returns how many were delivered.
fn every_alert_delivered_or_answered_5xx(robot: &RobotDouble, statuses: &[u16]) -> usize {
    let texts: Vec<String> = robot
        .received()
        .iter()
        .map(|m| m.text().to_owned())
        .collect();
    for (n, status) in statuses.iter().enumerate() {
        let marker = format!("<{n}/");
        let carried = texts.iter().filter(|t| t.contains(&marker)).count();
        match status {
            200 => assert_eq!(
                carried, 1,
                "notification {n}: answered 200, in {carried} messages"
            ),
            500.. => assert_eq!(
                carried, 0,
                "notification {n}: answered {status}, yet delivered"
            ),
            other => panic!("notification {n} answered {other}"),
        }
    }
    statuses.iter().filter(|s| **s == 200).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replica_processes_sharing_redis_never_send_a_robot_more_than_its_minute() {
    let redis = Redis::start().await;
    let robot = RobotDouble::start().await;
    let dir = shared_config(&robot, &redis.url(), "max_wait: 4s\n");
    let replicas: Vec<Running> = (0..3).map(|_| process(&dir)).collect();

    let statuses = burst(&replicas, 60, Duration::from_millis(15), (0, || {})).await;

    assert_eq!(
        robot.refused(130_101),
        0,
        "the replicas together sent more than 20 in a minute"
    );
    let delivered = every_alert_delivered_or_answered_5xx(&robot, &statuses);
    let messages = robot.received().len();
    assert!(
        (15..=20).contains(&messages),
        "{messages} messages: the shared budget should let about 20 through"
    );
    assert!(delivered >= messages, "{delivered} delivered in {messages}");
    for replica in &replicas {
        let metrics = metrics_of(replica).await;
        assert!(
            metrics.contains("alertrelay_state_backend_up 1"),
            "{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_mid_burst_loses_nothing_and_each_replica_keeps_to_its_share() {
    let mut redis = Redis::start().await;
    let robot = RobotDouble::start().await;
    let dir = shared_config(&robot, &redis.url(), "max_wait: 4s\n");
    let replicas: Vec<Running> = (0..3).map(|_| process(&dir)).collect();

    // Nine out (three a replica, through Redis), then each is on its own with a third.
    let kill = (9, || redis.stop());
    let statuses = burst(&replicas, 60, Duration::from_millis(15), kill).await;

    assert_eq!(
        robot.refused(130_101),
        0,
        "replicas without Redis sent more than the robot's minute"
    );
    let delivered = every_alert_delivered_or_answered_5xx(&robot, &statuses);
    assert!(
        delivered >= 10,
        "only {delivered} delivered: Redis going away should not stop delivery"
    );

    redis.run().await;
    backend_up_everywhere(&replicas, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_notification_delivered_by_a_process_killed_after_is_not_posted_again_by_a_fresh_one() {
    let redis = Redis::start().await;
    let robot = RobotDouble::start().await;
    let dir = shared_config(&robot, &redis.url(), "");
    let body = payload("firing_single.json");
    let first = process(&dir);
    assert_eq!(post_to(&first.addr, body.clone()).await, 200);

    let pid = first.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    drop(first);
    let fresh = process(&dir);
    let answer = reqwest::Client::new()
        .post(format!("http://{}/dingtalk/ops/send", fresh.addr))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert!(duplicate(&answer), "{answer}");
    assert_eq!(robot.received().len(), 1, "posted twice");
}

/// A replica process's `/metrics` text.
async fn metrics_of(replica: &Running) -> String {
    let url = format!("http://{}/metrics", replica.addr);
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// Waits until every replica's `alertrelay_state_backend_up` reads `up`.
async fn backend_up_everywhere(replicas: &[Running], up: u8) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for replica in replicas {
        loop {
            let metrics = metrics_of(replica).await;
            if metrics.contains(&format!("alertrelay_state_backend_up {up}")) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "alertrelay_state_backend_up never read {up}:\n{}",
                replica.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_back_empty_does_not_hand_out_the_slots_replicas_used_alone() {
    let mut redis = Redis::start().await;
    let robot = RobotDouble::start().await;
    let dir = shared_config(&robot, &redis.url(), "max_wait: 3s\n");
    let replicas: Vec<Running> = (0..3).map(|_| process(&dir)).collect();
    redis.stop();
    let alone = burst(&replicas, 15, Duration::from_millis(10), (0, || {})).await;
    backend_up_everywhere(&replicas, 0).await;
    // It restarts with nothing in it: the 15 sent alone are not among its slots.
    redis.run().await;
    backend_up_everywhere(&replicas, 1).await;

    let mut statuses = alone;
    let body = payload("firing_single.json");
    for n in 15..45 {
        let addr = &replicas[n % 3].addr;
        statuses.push(post_to(addr, distinct(&body, n)).await);
    }

    assert_eq!(
        robot.refused(130_101),
        0,
        "Redis back empty let the replicas past the robot's minute"
    );
    assert_eq!(
        &statuses[..15],
        [200; 15],
        "five each, within a third of 20"
    );
    let delivered = every_alert_delivered_or_answered_5xx(&robot, &statuses);
    assert!(delivered > 15, "none delivered once Redis was back");
}

#[test]
fn check_warns_where_replicas_cannot_share_a_budget_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profiles.yaml");
    let robot = "http://127.0.0.1:1/robot/send?access_token=t";
    std::fs::write(
        &file,
        format!("state:\n  replicas: 3\nprofiles:\n  ops:\n    url: {robot}\n"),
    )
    .unwrap();
    let (code, stdout) = binary::check(&file);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("state.replicas: 3 has no effect without state.redis"),
        "{stdout}"
    );

    // Nothing listens on port 1: Redis merely unreachable is a warning too.
    std::fs::write(
        &file,
        format!(
            "state:\n  redis: redis://127.0.0.1:1/0\n  replicas: 3\nprofiles:\n  ops:\n    url: {robot}\n    rate_limit: 2\n  wide:\n    url: {robot}2\n"
        ),
    )
    .unwrap();
    let (code, stdout) = binary::check(&file);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("profile \"ops\": 2 a 60s among 3 replicas: while Redis is away each sends 1 (3 together)"),
        "{stdout}"
    );
    assert!(!stdout.contains("profile \"wide\""), "{stdout}");
}

/// Posts notifications `range` one after another, round-robin over `replicas`.
async fn one_by_one(replicas: &[Running], range: std::ops::Range<usize>) -> Vec<u16> {
    let body = payload("firing_single.json");
    let mut statuses = Vec::new();
    for n in range {
        let addr = &replicas[n % replicas.len()].addr;
        statuses.push(post_to(addr, distinct(&body, n)).await);
    }
    statuses
}

/// Fifteen messages through Redis, then `forget` makes Redis lose its keys, then thirty
/// more notifications: the robot's minute must still hold.
async fn redis_forgets_mid_minute(forget: impl AsyncFnOnce(&mut Redis)) {
    let mut redis = Redis::start().await;
    let robot = RobotDouble::start().await;
    let dir = shared_config(&robot, &redis.url(), "max_wait: 3s\n");
    let replicas: Vec<Running> = (0..3).map(|_| process(&dir)).collect();
    let mut statuses = one_by_one(&replicas, 0..15).await;
    assert_eq!(statuses, [200; 15]);

    forget(&mut redis).await;
    statuses.extend(one_by_one(&replicas, 15..45).await);

    assert_eq!(
        robot.refused(130_101),
        0,
        "a Redis that lost its keys let the replicas past the robot's minute"
    );
    let delivered = every_alert_delivered_or_answered_5xx(&robot, &statuses);
    assert!(delivered > 15, "none delivered after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_restarted_empty_mid_minute_does_not_hand_out_the_minute_again() {
    redis_forgets_mid_minute(async |redis: &mut Redis| {
        redis.stop();
        redis.run().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_flushed_mid_minute_does_not_hand_out_the_minute_again() {
    // No connection breaks: only the budget's epoch tells the replicas.
    redis_forgets_mid_minute(async |redis: &mut Redis| {
        let mut raw = redis.raw().await;
        redis::cmd("FLUSHALL")
            .query_async::<()>(&mut raw)
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_state_block_the_process_started_with() {
    let redis = Redis::start().await;
    let robot = RobotDouble::start().await;
    let app = replica(&robot, &redis.url()).await;
    let file = app.path("profiles.yaml");
    let text = std::fs::read_to_string(&file).unwrap();

    std::fs::write(
        &file,
        text.replace("replicas: 2", "replicas: 5")
            .replace("timeout: 2s", "timeout: 3s"),
    )
    .unwrap();
    app.state.reloader.reload("test").await.unwrap();

    let runtime = app.state.reloader.current();
    assert_eq!(
        runtime.config.timeout,
        Duration::from_secs(3),
        "the rest reloads"
    );
    assert_eq!(runtime.config.state.replicas, 2, "state: is read at start");
    assert_eq!(runtime.policies["ops"].alone.per_minute(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_cut_off_from_redis_is_held_a_share_by_the_others() {
    let redis = Redis::start().await;
    let robot = RobotDouble::start().await;
    let dir = shared_config(&robot, &redis.url(), "max_wait: 3s\n");
    // The third replica's Redis is a port nothing listens on: it is on its own share.
    let cut_off = shared_config(
        &robot,
        &format!("redis://127.0.0.1:{}/0", crate::helpers::free_port()),
        "max_wait: 3s\n",
    );
    let mut replicas: Vec<Running> = (0..2).map(|_| process(&dir)).collect();
    replicas.push(process(&cut_off));
    // Each on Redis has said it is alive; the third never will.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let statuses = burst(&replicas, 60, Duration::from_millis(10), (0, || {})).await;

    assert_eq!(
        robot.refused(130_101),
        0,
        "the cut-off replica's share came on top of the whole budget"
    );
    let delivered = every_alert_delivered_or_answered_5xx(&robot, &statuses);
    assert!(delivered >= 15, "only {delivered} delivered");
}
