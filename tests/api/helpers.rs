//! `spawn_app`: a real alertrelay server on a free port, configured from YAML text, with a
//! robot double behind it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alertrelay::config::{Config, Sources};
use alertrelay::runtime::Runtime;
use alertrelay::server::{self, AppState};
use tokio::sync::oneshot;

use crate::robot::RobotDouble;

pub struct TestApp {
    pub addr: SocketAddr,
    /// The server's state: its snapshot, reloader and metrics.
    pub state: AppState,
    pub robot: RobotDouble,
    pub http: reqwest::Client,
    /// Holds the config and templates; removed when the test ends.
    pub dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// A port nothing listens on now (for a child process to bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Reads a test-data payload by file name.
pub fn payload(name: &str) -> String {
    std::fs::read_to_string(data_dir().join(name)).unwrap()
}

/// `payload` (a notification's JSON text) as the `n`th of many distinct notifications: its
/// `groupKey` gets the prefix `<n>/`, so duplicate suppression, which knows a notification by
/// its profile, `groupKey`, status and alerts, takes each for a notification of its own.
/// Everything else stays byte for byte, the rendered message included (no built-in template
/// shows the `groupKey`), so texts built or matched by replacement still match.
pub fn distinct(payload: &str, n: usize) -> String {
    const KEY: &str = "\"groupKey\"";
    let key = payload.find(KEY).expect("a notification with a groupKey") + KEY.len();
    let open = key + payload[key..].find('"').expect("a groupKey with a value") + 1;
    format!("{}{n}/{}", &payload[..open], &payload[open..])
}

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// A server whose profiles.yaml is `yaml` with `{robot}` replaced by the double's address.
/// `templates` are (file name, text) pairs written to the templates directory.
pub async fn spawn_app(yaml: &str, templates: &[(&str, &str)]) -> TestApp {
    let robot = RobotDouble::start().await;
    spawn_app_with_robot(robot, yaml, templates).await
}

pub async fn spawn_app_with_robot(
    robot: RobotDouble,
    yaml: &str,
    templates: &[(&str, &str)],
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    for (name, text) in templates {
        std::fs::write(dir.path().join("templates").join(name), text).unwrap();
    }
    let file = dir.path().join("profiles.yaml");
    std::fs::write(&file, yaml.replace("{robot}", &robot.addr.to_string())).unwrap();
    let mut app = spawn_app_from(robot, &file).await;
    app.dir = dir;
    app
}

/// A server for a profiles.yaml that is already written.
/// The server state for the profiles in `file` (lifecycle on, render workers from the binary
/// under test), not yet serving.
pub async fn state_from(file: &Path) -> AppState {
    let sources = Sources {
        file: file.to_path_buf(),
        file_required: true,
        flag_profiles: vec![],
    };
    alertrelay::sandbox::use_program(env!("CARGO_BIN_EXE_alertrelay"));
    let runtime = Runtime::build(Config::load(&sources).unwrap())
        .await
        .unwrap();
    AppState::new(runtime, sources).with_lifecycle(true)
}

pub async fn spawn_app_from(robot: RobotDouble, file: &Path) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let state = state_from(file).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let router = server::router(state.clone());
    let server = tokio::spawn(server::run(
        listener,
        router,
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(5),
    ));
    TestApp {
        addr,
        state,
        robot,
        http: reqwest::Client::new(),
        dir,
        shutdown: Some(tx),
        server,
    }
}

/// One profile `ops` on the double, with extra profile keys. Failures give up after 2 s.
pub fn ops_yaml(extra: &str) -> String {
    format!(
        "timeout: 2s\nmax_wait: 2s\nprofiles:\n  ops:\n    url: http://{{robot}}/robot/send?access_token=ops-token\n{extra}"
    )
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn post(&self, profile: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/dingtalk/{profile}/send")))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = self.http.get(self.url("/metrics")).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// A file in the app's config directory.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Starts graceful shutdown.
    pub fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A child process (alertrelay, chromedriver, Alertmanager) killed and reaped when the test
/// ends, pass or fail.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

/// Serves another router for `state` (e.g. with a flag changed) on a free port.
pub async fn serve(state: AppState) -> SocketAddr {
    let router = server::router(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// The JSON body of an answer.
pub async fn json(response: reqwest::Response) -> serde_json::Value {
    response.json().await.unwrap()
}

#[test]
fn distinct_payloads_differ_in_their_group_key_alone() {
    let original: serde_json::Value = serde_json::from_str(&payload("firing_single.json")).unwrap();
    let spaced = "{\"status\": \"firing\", \"groupKey\" : \"{}:{a=\\\"b\\\"}\", \"alerts\": []}";

    let seven: serde_json::Value =
        serde_json::from_str(&distinct(&payload("firing_single.json"), 7)).unwrap();
    let spaced: serde_json::Value = serde_json::from_str(&distinct(spaced, 3)).unwrap();

    let mut expected = original.clone();
    expected["groupKey"] = format!("7/{}", original["groupKey"].as_str().unwrap()).into();
    assert_eq!(seven, expected);
    assert_eq!(spaced["groupKey"], "3/{}:{a=\"b\"}");
    assert_ne!(
        distinct(&payload("firing_single.json"), 1),
        distinct(&payload("firing_single.json"), 2)
    );
}
