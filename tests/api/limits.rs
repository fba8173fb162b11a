//! Hostile sizes: a robot that answers far too much, webhook bodies that together would take
//! the process's memory. Each bound is driven past its limit and the process must stay well.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::routing::post;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{distinct, ops_yaml, payload, spawn_app};
use crate::robot::Reply;

/// This process's resident memory in bytes (the server under test runs in-process).
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: usize = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// Samples [`rss`] until dropped; `peak` is the highest value seen.
struct RssWatch {
    peak: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl RssWatch {
    fn start() -> Self {
        let peak = Arc::new(AtomicUsize::new(rss()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Self { peak, stop }
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

const MIB: usize = 1024 * 1024;

/// A robot whose answer is HTTP 200 and, read whole, DingTalk's "ok":
/// `{"errcode":0,"errmsg":"xxx…"}`, `size` bytes long, chunked. It is streamed from one static
/// chunk, so the double itself holds almost nothing.
async fn start_oversized_robot(size: usize) -> SocketAddr {
    static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
    let handler = move || async move {
        let chunks = size / CHUNK.len();
        let parts = std::iter::once(Bytes::from_static(br#"{"errcode":0,"errmsg":""#))
            .chain(std::iter::repeat_n(Bytes::from_static(&CHUNK), chunks))
            .chain(std::iter::once(Bytes::from_static(br#""}"#)))
            .map(Ok::<_, std::io::Error>);
        Body::from_stream(futures_util::stream::iter(parts))
    };
    let app = axum::Router::new().route("/robot/send", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn a_robot_answering_200_mb_is_not_counted_delivered_and_memory_stays_small() {
    let robot = start_oversized_robot(200 * MIB).await;
    let yaml = format!(
        "timeout: 20s\nmax_wait: 10s\nprofiles:\n  ops:\n    url: http://{robot}/robot/send?access_token=t\n    rate_limit: 0\n"
    );
    let app = spawn_app(&yaml, &[]).await;
    let before = rss();
    let watch = RssWatch::start();

    let response = app.post("ops", payload("firing_single.json")).await;

    let grown = watch.peak().saturating_sub(before);
    assert_eq!(response.status(), 502);
    let error = response.text().await.unwrap();
    assert!(error.contains("longer than 65536 bytes"), "{error}");
    assert!(
        grown < 64 * MIB,
        "RSS grew by {} MiB reading the answer",
        grown / MIB
    );
    assert!(app.metrics().await.contains("code=\"bad_response\""));
}

/// A valid webhook body of exactly `len` bytes: a one-alert payload padded with whitespace.
fn padded(len: usize) -> String {
    padded_as(len, 0)
}

/// [`padded`], as the `n`th of many distinct notifications (each delivered, none a duplicate).
fn padded_as(len: usize, n: usize) -> String {
    let mut body = distinct(&payload("firing_single.json"), n);
    let pad = len - body.len();
    body.extend(std::iter::repeat_n(' ', pad));
    body
}

/// `ops` with a per-body cap and a budget for all bodies in flight.
fn budget_yaml(max_body_bytes: usize, in_flight: usize) -> String {
    format!(
        "max_body_bytes: {max_body_bytes}\nmax_body_bytes_in_flight: {in_flight}\n{}",
        ops_yaml("")
    )
}

/// A webhook whose headers and first `sent` bytes of `body` are written, the rest held back.
async fn start_slow_webhook(addr: SocketAddr, body: &str, sent: usize) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /dingtalk/ops/send HTTP/1.1\r\nhost: alertrelay\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..sent]).await.unwrap();
    stream
}

#[tokio::test]
async fn webhooks_past_the_in_flight_budget_are_answered_503_with_retry_after() {
    let app = spawn_app(&budget_yaml(1_000_000, 1_500_000), &[]).await;
    let body = padded(900_000);
    let sent = body.len() - 1000;
    let mut slow = start_slow_webhook(app.addr, &body, sent).await;

    // The slow webhook holds the 900 kB it sent (its share grows as bytes arrive, up to what
    // it declared); once its handler has read them, a second one does not fit.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    let refused = loop {
        // A notification of its own each time: a copy of one delivered would only be answered.
        n += 1;
        let response = app.post("ops", padded_as(body.len(), n)).await;
        if response.status() == 503 {
            break response;
        }
        assert_eq!(response.status(), 200);
        assert!(std::time::Instant::now() < deadline, "never refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    assert_eq!(refused.headers()["retry-after"], "1");
    let error = refused.text().await.unwrap();
    assert!(error.contains("max_body_bytes_in_flight"), "{error}");
    slow.write_all(&body.as_bytes()[sent..]).await.unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let another = padded_as(body.len(), n + 1);
    assert_eq!(app.post("ops", another).await.status(), 200);
}

#[tokio::test]
async fn connections_that_declare_large_bodies_and_send_one_byte_do_not_spend_the_budget() {
    let app = spawn_app(&budget_yaml(1_000_000, 1_500_000), &[]).await;
    let body = padded(900_000);
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(start_slow_webhook(app.addr, &body, 1).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let response = app.post("ops", body).await;

    assert_eq!(response.status(), 200, "two idle uploads held the budget");
    drop(idle);
}

#[tokio::test]
async fn stalled_uploads_give_their_share_back_when_their_read_limit_passes() {
    let app = spawn_app(&budget_yaml(1_000_000, 1_500_000), &[]).await;
    let body = padded(900_000);
    // Two uploads that send most of their body, then stall: together past the budget.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        stalled.push(start_slow_webhook(app.addr, &body, 800_000).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.post("ops", body.clone()).await.status(), 503);

    // The read limit (15 s) ends them; the budget is free again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = app.post("ops", body.clone()).await.status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            std::time::Instant::now() < deadline,
            "the stalled uploads kept the budget"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(stalled);
}

#[tokio::test]
async fn a_preview_upload_that_stalls_does_not_keep_the_preview_turn() {
    let app = spawn_app(&ops_yaml(""), &[]).await;
    let mut stalled = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = "POST /preview/ops HTTP/1.1\r\nhost: alertrelay\r\ncontent-length: 100\r\n\r\n{";
    stalled.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let response = app.http.post(app.url("/preview/ops")).send().await.unwrap();
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(
            std::time::Instant::now() < deadline,
            "the stalled upload kept the turn"
        );
    }
    drop(stalled);
}

#[tokio::test]
async fn a_body_larger_than_the_whole_budget_is_refused_413() {
    let app = spawn_app(&budget_yaml(2_000_000, 1_000_000), &[]).await;

    let response = app.post("ops", padded(1_500_000)).await;

    assert_eq!(response.status(), 413);
    assert!(response.text().await.unwrap().contains("1000000 bytes"));
    assert_eq!(app.robot.requests(), 0);
}

#[tokio::test]
async fn a_body_is_given_back_to_the_budget_once_rendered_not_when_the_robot_answers() {
    let app = spawn_app(&budget_yaml(1_000_000, 1_500_000), &[]).await;
    app.robot.script([Reply::Delay(Duration::from_secs(1))]);
    let (http, url, body) = (
        app.http.clone(),
        app.url("/dingtalk/ops/send"),
        padded(900_000),
    );
    let first = tokio::spawn(async move {
        let request = http.post(url).header("content-type", "application/json");
        request.body(body).send().await.unwrap().status()
    });
    while app.robot.requests() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Another notification: the same one would wait for the first's outcome, not its budget.
    let second = app.post("ops", padded_as(900_000, 1)).await;

    assert_eq!(second.status(), 200);
    assert_eq!(first.await.unwrap(), 200);
}

#[tokio::test]
async fn a_burst_of_large_webhooks_holds_memory_to_the_budget() {
    let app = spawn_app(&budget_yaml(4 * MIB, 8 * MIB), &[]).await;
    app.robot.unlimited();
    // 24 notifications of their own (copies of one would be sent once), made before the
    // baseline so that only the server's memory counts.
    let bodies: Vec<Bytes> = (0..=24)
        .map(|n| Bytes::from(padded_as(4 * MIB - 100, n)))
        .collect();
    let before = rss();
    let watch = RssWatch::start();

    let answers = futures_util::future::join_all(bodies[..24].iter().map(|body| {
        let request = app.http.post(app.url("/dingtalk/ops/send"));
        request
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    }))
    .await;

    let grown = watch.peak().saturating_sub(before);
    let statuses: Vec<u16> = answers
        .into_iter()
        .map(|a| a.map_or(0, |r| r.status().as_u16()))
        .collect();
    assert!(
        statuses.iter().all(|s| [200, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(
        grown < 40 * MIB,
        "RSS grew by {} MiB {statuses:?}",
        grown / MIB
    );
    assert_eq!(app.post("ops", bodies[24].clone()).await.status(), 200);
}
