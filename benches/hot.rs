//! The hot functions, with criterion: parse payloads of 1 to 10,000 alerts, render the
//! shipped templates and copies of them edited by one comment line (the same Tera path, so
//! the same speed), write the DingTalk
//! body, sign a request, cut an oversized notification to DingTalk's cap, and the whole
//! parse → render → cut path for 10,000 alerts (target ≤ 50 ms), and the merge of 5,000
//! notifications queued for one robot.
//! Run: `cargo bench --bench hot`.

use std::hint::black_box;
use std::path::Path;

use alertrelay::alert::Notification;
use alertrelay::channel::dingtalk::{MAX_BODY_BYTES, sign};
use alertrelay::compose::compose;
use alertrelay::config::Config;
use alertrelay::delivery::MergeQueue;
use alertrelay::render::{BUILTIN_MARKDOWN, BUILTIN_TEXT, Renderer};
use alertrelay::secret::Secret;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// The allocator the binary ships with, so allocation-heavy figures (parsing 10,000 alerts)
/// are the binary's, not glibc's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A notification of `count` firing alerts, as JSON bytes, each with its own instance.
fn payload(count: usize) -> Vec<u8> {
    let mut n = alertrelay::samples::sample("firing").expect("sample");
    let alert = n.alerts[0].clone();
    n.alerts = (0..count)
        .map(|i| {
            let mut a = alert.clone();
            a.labels
                .insert("instance", format!("10.0.{}.{}:9100", i / 256, i % 256));
            a
        })
        .collect();
    serde_json::to_vec(&n).expect("serializes")
}

/// Profiles `md` and `txt` use the shipped templates; `md-edited` and `txt-edited` use copies
/// edited by one comment line, as an operator's own template starts; `wecom` and `feishu` the
/// shipped WeCom markdown and Feishu card templates.
fn setup() -> (Config, Renderer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (file, text) in [
        ("edited.md.tera", BUILTIN_MARKDOWN),
        ("edited.txt.tera", BUILTIN_TEXT),
    ] {
        std::fs::write(dir.path().join(file), format!("{{# edited #}}\n{text}")).expect("writes");
    }
    let url = "http://127.0.0.1:1/robot/send?access_token=t";
    let yaml = format!(
        "templates: {}
profiles:
  md:
    url: {url}
  txt:
    url: {url}
    message: text
  md-edited:
    url: {url}
    template: edited.md.tera
  txt-edited:
    url: {url}
    message: text
    template: edited.txt.tera
  wecom:
    url: http://127.0.0.1:1/cgi-bin/webhook/send?key=k
  feishu:
    url: http://127.0.0.1:1/open-apis/bot/v2/hook/t
",
        dir.path().display()
    );
    let config = Config::from_yaml(&yaml, Path::new("profiles.yaml")).expect("config");
    let renderer = Renderer::new(&config).expect("templates");
    (config, renderer, dir)
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for count in [1, 10, 1_000, 10_000] {
        let bytes = payload(count);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(count), &bytes, |b, bytes| {
            b.iter(|| Notification::from_json(black_box(bytes)).expect("parses"))
        });
    }
    group.finish();
}

fn render(c: &mut Criterion) {
    let (_, renderer, _dir) = setup();
    let now = chrono::Utc::now();
    let mut group = c.benchmark_group("render");
    for count in [1, 10] {
        let bytes = payload(count);
        let n = Notification::from_json(&bytes).expect("parses");
        for profile in ["md", "txt", "md-edited", "txt-edited", "wecom", "feishu"] {
            let id = BenchmarkId::new(profile, count);
            group.bench_function(id, |b| {
                b.iter(|| {
                    renderer
                        .render(profile, black_box(&n), now)
                        .expect("renders")
                })
            });
        }
    }
    group.finish();
}

/// The DingTalk body posted for a rendered 10-alert notification.
fn body(c: &mut Criterion) {
    let (_, renderer, _dir) = setup();
    let bytes = payload(10);
    let n = Notification::from_json(&bytes).expect("parses");
    let composed =
        compose(&renderer, "md", &n, chrono::Utc::now(), MAX_BODY_BYTES).expect("composes");
    c.bench_function("body/10", |b| b.iter(|| black_box(&composed).body()));
}

fn signing(c: &mut Criterion) {
    let secret = Secret::new("SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd");
    c.bench_function("sign", |b| {
        b.iter(|| sign(black_box(&secret), black_box(1_764_042_991_000)))
    });
}

fn cut(c: &mut Criterion) {
    let (_, renderer, _dir) = setup();
    let now = chrono::Utc::now();
    let bytes = payload(10_000);
    let n: Notification = serde_json::from_slice(&bytes).expect("parses");
    let mut group = c.benchmark_group("10000 alerts");
    group.sample_size(20);
    group.bench_function("cut to cap", |b| {
        b.iter(|| compose(&renderer, "md", black_box(&n), now, MAX_BODY_BYTES).expect("composes"))
    });
    group.bench_function("parse, render and cut", |b| {
        b.iter(|| {
            let n: Notification = Notification::from_json(black_box(&bytes)).expect("parses");
            compose(&renderer, "md", &n, now, MAX_BODY_BYTES).expect("composes")
        })
    });
    group.finish();
}

/// 5,000 one-alert notifications queued for one robot whose budget is spent, merged into the
/// messages its worker would send (issue 13: merging was quadratic in the queue).
fn merge_queue(c: &mut Criterion) {
    let (_, renderer, _dir) = setup();
    let now = chrono::Utc::now();
    let bytes = payload(5_000);
    let all = Notification::from_json(&bytes).expect("parses");
    let messages: Vec<_> = all
        .alerts
        .iter()
        .map(|alert| {
            let mut one = all.clone();
            one.alerts = vec![alert.clone()];
            compose(&renderer, "md", &one, now, MAX_BODY_BYTES).expect("composes")
        })
        .collect();
    let mut group = c.benchmark_group("merge");
    group.sample_size(20);
    group.bench_function("5000 queued", |b| {
        b.iter_batched(
            || MergeQueue::new(messages.clone()),
            MergeQueue::drain,
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, parse, render, body, signing, cut, merge_queue);
criterion_main!(benches);
