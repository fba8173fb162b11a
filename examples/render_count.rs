//! Renders one payload through one template, a given number of times, for counting the
//! instructions a render costs: `bench/instructions.sh` runs it under callgrind with 0 and
//! with N renders, and the difference divided by N is the cost of one (setup subtracted
//! exactly, unlike timings on a shared host).
//!
//! `render_count PAYLOAD.json TEMPLATES_DIR TEMPLATE COUNT [URL]` — TEMPLATE is a file in
//! TEMPLATES_DIR, or `-` for the channel's default template; URL is the robot's (its channel
//! and cap follow from it), a DingTalk one when left out.

use std::path::Path;

use alertrelay::alert::Notification;
use alertrelay::compose::compose;
use alertrelay::config::Config;
use alertrelay::render::Renderer;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (payload, dir, template, count, url) = match args.as_slice() {
        [payload, dir, template, count] => (
            payload,
            dir,
            template,
            count,
            "http://127.0.0.1:1/robot/send?access_token=t",
        ),
        [payload, dir, template, count, url] => (payload, dir, template, count, url.as_str()),
        _ => {
            eprintln!("usage: render_count PAYLOAD.json TEMPLATES_DIR TEMPLATE COUNT [URL]");
            std::process::exit(2);
        }
    };
    let template = match template.as_str() {
        "-" => String::new(),
        file => format!("    template: {file}\n"),
    };
    let yaml = format!("templates: {dir}\nprofiles:\n  p:\n    url: {url}\n{template}");
    let config = Config::from_yaml(&yaml, Path::new("profiles.yaml")).expect("config");
    let profile = &config.profiles["p"];
    let cap = profile.channel.cap(profile.message);
    let renderer = Renderer::new(&config).expect("templates");
    let bytes = std::fs::read(payload).expect("payload");
    let notification = Notification::from_json(&bytes).expect("an Alertmanager payload");
    let now = "2026-11-25T04:06:31Z".parse().expect("a time");
    let count: usize = count.parse().expect("a count");
    let mut bytes_out = 0;
    for _ in 0..count {
        // What a render worker does for a webhook: render and fit to the cap.
        let composed = compose(&renderer, "p", &notification, now, cap).expect("renders");
        bytes_out += std::hint::black_box(composed).text.len();
    }
    println!("{bytes_out}");
}
