//! How long from saving a template to the new config serving, through the real file watcher.
//! Run: `cargo bench --bench reload_latency`. Prints the distribution over 50 saves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alertrelay::config::Sources;
use alertrelay::reload::watch;
use alertrelay::runtime::Runtime;
use alertrelay::server::AppState;

const SAVES: usize = 50;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("templates")).expect("templates dir");
    let template = dir.path().join("templates/default.md.tera");
    std::fs::write(&template, "v0").expect("write");
    let file = dir.path().join("profiles.yaml");
    std::fs::write(
        &file,
        "profiles:\n  ops:\n    url: http://127.0.0.1:1/robot/send?access_token=t\n",
    )
    .expect("write");
    let sources = Sources {
        file,
        file_required: true,
        flag_profiles: vec![],
    };
    alertrelay::sandbox::use_program(env!("CARGO_BIN_EXE_alertrelay"));
    let runtime = Runtime::load(&sources).await.expect("config");
    let state = AppState::new(runtime, sources);
    watch::spawn(state.reloader.clone(), std::future::pending());

    let mut samples = Vec::with_capacity(SAVES);
    for i in 1..=SAVES {
        let before = state.runtime.load_full();
        let started = Instant::now();
        std::fs::write(&template, format!("v{i}")).expect("write");
        while Arc::ptr_eq(&state.runtime.load_full(), &before) {
            assert!(started.elapsed() < Duration::from_secs(5), "no reload");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        samples.push(started.elapsed());
        // Let the watcher settle so saves do not merge into one debounce window.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "reload latency, save → new config serving, {SAVES} saves (debounce {} ms):",
        watch::DEBOUNCE.as_millis()
    );
    println!(
        "  min {:.1} ms  p50 {:.1} ms  p95 {:.1} ms  max {:.1} ms",
        ms(samples[0]),
        ms(pick(0.5)),
        ms(pick(0.95)),
        ms(samples[samples.len() - 1])
    );
}
