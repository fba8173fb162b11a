//! Hostile sizes: a robot that answers far too much, webhook bodies that together would take
//! the process's memory. Each bound is driven past its limit and the process must stay well.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::routing::post;

use crate::helpers::{ops_yaml, payload, spawn_app};

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
        "timeout: 20s\nmax_wait: 2s\nprofiles:\n  ops:\n    url: http://{robot}/robot/send?access_token=t\n    rate_limit: 0\n"
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
    assert!(app.metrics().await.contains("errcode=\"bad_response\""));
}
