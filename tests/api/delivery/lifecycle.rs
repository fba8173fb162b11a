//! A robot's state over time: its throttle penalty whatever its budget, its worker retiring
//! once the robot is gone, and retries that stop when shutdown begins.

use std::time::Duration;

use super::{numbered, profile, yaml};
use crate::helpers::spawn_app;
use crate::robot::{RATE_LIMIT, Reply};

#[tokio::test(start_paused = true)]
async fn a_robot_without_a_budget_is_still_left_alone_after_dingtalk_throttled_it() {
    let profiles = format!("{}    rate_limit: 0\n", profile("ops", "tok"));
    let app = spawn_app(&yaml(&profiles), &[]).await;
    app.robot.script([Reply::Errcode(130_101, "send too fast")]);

    let first = app.post("ops", numbered(1)).await;
    let requests = app.robot.requests();
    let second = app.post("ops", numbered(2)).await;

    assert_eq!(first.status(), 503);
    assert_eq!(second.status(), 503);
    assert_eq!(
        app.robot.requests(),
        requests,
        "the throttled robot was sent to at once"
    );
    tokio::time::sleep(Duration::from_secs(601)).await;
    assert_eq!(app.post("ops", numbered(3)).await.status(), 200);
}

#[tokio::test(start_paused = true)]
async fn a_robot_gone_from_the_config_leaves_no_worker_or_queue_behind() {
    let both = [profile("stays", "kept"), profile("goes", "gone")].concat();
    let app = spawn_app(&yaml(&both), &[]).await;
    assert_eq!(app.post("stays", numbered(0)).await.status(), 200);
    for i in 1..=RATE_LIMIT {
        assert_eq!(app.post("goes", numbered(i)).await.status(), 200);
    }
    // One more for the removed robot waits for its budget across the reload.
    let waiting = {
        let (http, url) = (app.http.clone(), app.url("/dingtalk/goes/send"));
        tokio::spawn(async move {
            let response = http.post(url).body(numbered(99)).send().await.unwrap();
            response.status().as_u16()
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.state.dispatcher.workers(), 2);

    std::fs::write(
        app.path("profiles.yaml"),
        yaml(&profile("stays", "kept")).replace("{robot}", &app.robot.addr.to_string()),
    )
    .unwrap();
    app.state.reloader.reload("test").await.unwrap();

    assert_eq!(
        waiting.await.unwrap(),
        200,
        "a queued notification was lost"
    );
    // Once every message has left its robot's window, nothing is left.
    tokio::time::sleep(Duration::from_secs(125)).await;
    assert_eq!(app.state.dispatcher.workers(), 0);
    assert_eq!(app.post("stays", numbered(100)).await.status(), 200);
    assert_eq!(app.state.dispatcher.workers(), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_retrying_and_answers_the_waiting_request_503() {
    for rate_limit in ["20", "0"] {
        let profiles = format!("{}    rate_limit: {rate_limit}\n", profile("ops", "tok"));
        let mut app = spawn_app(&yaml(&profiles), &[]).await;
        app.robot.script(vec![Reply::Http(500); 100]);
        let retrying = {
            let (http, url) = (app.http.clone(), app.url("/dingtalk/ops/send"));
            tokio::spawn(async move {
                let response = http.post(url).body(numbered(1)).send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(app.robot.requests() >= 2, "no retry before shutdown");

        app.state.dispatcher.shut_down();
        app.shut_down();
        let (status, body) = retrying.await.unwrap();
        let requests = app.robot.requests();
        tokio::time::sleep(Duration::from_secs(30)).await;

        assert_eq!(status, 503, "rate_limit {rate_limit}: {body}");
        assert!(body.contains("shutting down"), "{body}");
        assert_eq!(app.robot.requests(), requests, "a retry after shutdown");
    }
}
