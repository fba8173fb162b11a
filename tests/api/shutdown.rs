//! Shutdown when `--web.shutdown-timeout` ends before the requests do: every request still
//! open is answered, none is left with a closed connection.

use std::time::Duration;

use alertrelay::config::{Config, Sources};
use alertrelay::runtime::Runtime;
use alertrelay::server::{self, AppState};

use crate::helpers::{json, ops_yaml, payload};
use crate::robot::{Reply, RobotDouble};

#[tokio::test]
async fn a_request_still_open_when_the_shutdown_timeout_ends_is_answered_503() {
    let robot = RobotDouble::start().await;
    robot.script([Reply::Hang]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profiles.yaml");
    let yaml = ops_yaml("").replace("timeout: 2s\nmax_wait: 2s", "timeout: 30s\nmax_wait: 30s");
    std::fs::write(&file, yaml.replace("{robot}", &robot.addr.to_string())).unwrap();
    let sources = Sources {
        file,
        file_required: true,
        flag_profiles: vec![],
    };
    let config = Config::load(&sources).unwrap();
    alertrelay::sandbox::use_program(env!("CARGO_BIN_EXE_alertrelay"));
    let state = AppState::new(Runtime::build(config).await.unwrap(), sources);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/dingtalk/ops/send",
        listener.local_addr().unwrap()
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::run(
        listener,
        server::router(state),
        async move {
            let _ = stopped.await;
        },
        Duration::from_millis(300),
    ));
    let request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(payload("firing_single.json"))
        .send();
    let in_flight = tokio::spawn(request);
    while robot.requests() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    stop.send(()).unwrap();

    let response = in_flight
        .await
        .unwrap()
        .expect("an answer, not a closed connection");
    assert_eq!(response.status(), 503);
    let error = json(response).await["error"].as_str().unwrap().to_owned();
    assert!(error.contains("shutting down"), "{error}");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops once the answer is written")
        .unwrap()
        .unwrap();
}
