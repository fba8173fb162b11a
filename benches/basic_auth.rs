//! What basic auth costs with exporter-toolkit's bcrypt cache: 100 sequential requests with
//! the right password (one bcrypt, then the cache), against 100 with wrong passwords (a bcrypt
//! each, as every request would cost without the cache). Cost 10, as the docs advise.
//! Run: `cargo bench --bench basic_auth`.

use std::time::{Duration, Instant};

use alertrelay::config::Sources;
use alertrelay::runtime::Runtime;
use alertrelay::server::{self, AppState};
use alertrelay::web::Web;

const REQUESTS: usize = 100;
const COST: u32 = 10;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("profiles.yaml");
    std::fs::write(
        &file,
        "profiles:\n  ops:\n    url: http://127.0.0.1:1/robot/send?access_token=t\n",
    )
    .expect("write");
    let hash = bcrypt::hash("right", COST).expect("hash");
    let web_yml = dir.path().join("web.yml");
    std::fs::write(&web_yml, format!("basic_auth_users:\n  am: {hash}\n")).expect("write");
    let sources = Sources {
        file,
        file_required: true,
        flag_profiles: vec![],
    };
    alertrelay::sandbox::use_program(env!("CARGO_BIN_EXE_alertrelay"));
    let runtime = Runtime::load(&sources).await.expect("config");
    let state = AppState::new(runtime, sources);
    let web = Web::load(Some(&web_yml), false, state.metrics.clone()).expect("web config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/-/ready", listener.local_addr().expect("addr"));
    let (served, router) = (web.clone(), server::router(state.clone()));
    tokio::spawn(async move {
        let forever = std::future::pending();
        server::run_web(listener, &served, router, forever, Duration::from_secs(1)).await
    });
    let http = reqwest::Client::new();

    let cached = batch(&http, &url, |_| "right".to_owned(), 200).await;
    let after_cached = state.metrics.bcrypt_verifications.get();
    let uncached = batch(&http, &url, |i| format!("wrong-{i}"), 401).await;
    let uncached_runs = state.metrics.bcrypt_verifications.get() - after_cached;

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("basic auth, bcrypt cost {COST}, {REQUESTS} sequential requests each:");
    println!(
        "  right password (cached):     {:8.1} ms in all, {after_cached} bcrypt run(s)",
        ms(cached)
    );
    println!(
        "  wrong passwords (uncached):  {:8.1} ms in all, {uncached_runs} bcrypt runs, {:.1} ms each",
        ms(uncached),
        ms(uncached) / REQUESTS as f64
    );
}

/// Sends `REQUESTS` requests one after another; returns the time they took.
async fn batch(
    http: &reqwest::Client,
    url: &str,
    password: impl Fn(usize) -> String,
    expected: u16,
) -> Duration {
    let started = Instant::now();
    for i in 0..REQUESTS {
        let response = http
            .get(url)
            .basic_auth("am", Some(password(i)))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), expected);
    }
    started.elapsed()
}
