use std::path::Path;

use super::*;
use crate::alert::{Alert, Status};
use crate::config::Config;

const CAP: usize = crate::channel::dingtalk::MAX_BODY_BYTES;

fn setup(kind: &str) -> Renderer {
    let yaml = format!(
        "profiles:\n  p:\n    url: http://127.0.0.1:1/robot/send?access_token=t\n    message: {kind}\n"
    );
    let config = Config::from_yaml(&yaml, Path::new("profiles.yaml")).unwrap();
    Renderer::new(&config).unwrap()
}

fn now() -> DateTime<Utc> {
    "2026-11-25T04:06:31Z".parse().unwrap()
}

fn many(count: usize, resolved_every: usize) -> Notification<'static> {
    let mut n = crate::samples::sample("firing").unwrap();
    let template = n.alerts[0].clone();
    n.alerts = (0..count)
        .map(|i| {
            let mut a: Alert = template.clone();
            a.labels
                .insert("instance", format!("10.0.{}.{}:9100", i / 256, i % 256));
            if resolved_every > 0 && i % resolved_every == 0 {
                a.status = Status::Resolved;
                a.ends_at = "2026-11-25T04:00:00Z".parse().unwrap();
            }
            a
        })
        .collect();
    n
}

fn compose_p(renderer: &Renderer, n: &Notification) -> Composed {
    compose(renderer, "p", n, now(), CAP).unwrap()
}

#[test]
fn a_small_notification_is_sent_whole() {
    let renderer = setup("markdown");
    let n = crate::samples::sample("group").unwrap();
    let composed = compose_p(&renderer, &n);
    let plain = renderer.render("p", &n, now()).unwrap();
    assert_eq!(composed.omitted, 0);
    assert_eq!(composed.text, plain.text);
}

#[test]
fn ten_thousand_alerts_are_cut_under_the_cap_with_an_n_more_line() {
    for kind in ["markdown", "text"] {
        let renderer = setup(kind);
        let n = many(10_000, 0);
        let composed = compose_p(&renderer, &n);
        let size = composed.size();
        assert!(size <= CAP, "{kind}: {size}");
        assert!(size > CAP - 1500, "{kind}: cut far too much ({size})");
        assert!(composed.omitted > 9_000, "{kind}");
        let line = format!("另有 {} 条告警未显示", composed.omitted);
        let line_md = format!("另有 **{}** 条告警未显示", composed.omitted);
        assert!(
            composed.text.contains(&line) || composed.text.contains(&line_md),
            "{kind}"
        );
        assert!(composed.text.contains("http://alertmanager:9093"), "{kind}");
        let shown = composed.text.matches("10.0.").count();
        assert_eq!(
            shown + composed.omitted,
            10_000,
            "{kind}: every alert shown or counted"
        );
    }
}

/// A renderer with one profile `p` at `url` (its channel inferred) of message type `kind`.
fn setup_channel(url: &str, kind: &str) -> (Renderer, usize) {
    let yaml = format!("profiles:\n  p:\n    url: {url}\n    message: {kind}\n");
    let config = Config::from_yaml(&yaml, Path::new("profiles.yaml")).unwrap();
    let profile = &config.profiles["p"];
    let cap = profile.channel.cap(profile.message);
    (Renderer::new(&config).unwrap(), cap)
}

#[test]
fn ten_thousand_alerts_are_cut_under_each_channels_cap_with_an_n_more_line() {
    let wecom = "http://127.0.0.1:1/cgi-bin/webhook/send?key=k";
    let feishu = "http://127.0.0.1:1/open-apis/bot/v2/hook/t";
    for (url, kind, name) in [
        (wecom, "markdown", "企业微信"),
        (wecom, "text", "企业微信"),
        (feishu, "card", "飞书"),
        (feishu, "text", "飞书"),
    ] {
        let (renderer, cap) = setup_channel(url, kind);
        let n = many(10_000, 0);
        let composed = compose(&renderer, "p", &n, now(), cap).unwrap();
        let size = composed.size();
        assert!(size <= cap, "{url} {kind}: {size} over {cap}");
        assert!(
            size > cap * 3 / 4,
            "{url} {kind}: cut far too much ({size})"
        );
        assert!(
            composed
                .text
                .contains(&format!("消息超过{name} {cap} 字节上限")),
            "{kind}: {}",
            composed.text
        );
        let shown = composed.text.matches("10.0.").count();
        assert!(shown > 0, "{url} {kind}");
        assert_eq!(shown + composed.omitted, 10_000, "{url} {kind}");
    }
}

#[test]
fn the_quick_size_check_never_lets_an_oversized_message_through_on_any_channel() {
    let mut rng = fastrand::Rng::with_seed(5);
    // Long runs of `<@`/`<at`, which a text message writes as `＜@`/`＜at` (two bytes more).
    let tags = "<@<at".repeat(200);
    let pieces = ["a", "故障", "\n", "\"", "\u{1}", "<@x>", "\\", &tags];
    for round in 0..2_000 {
        let channel = Channel::ALL[rng.usize(..3)];
        let kind = channel.kinds()[rng.usize(..channel.kinds().len())];
        let text: String = (0..rng.usize(0..60))
            .map(|_| pieces[rng.usize(..pieces.len())])
            .collect();
        let who = |rng: &mut fastrand::Rng| -> Vec<String> {
            (0..rng.usize(..3))
                .map(|i| "\"q".repeat(i + rng.usize(..3)))
                .collect()
        };
        let composed = Composed {
            channel,
            kind,
            title: pieces[rng.usize(..pieces.len())].repeat(rng.usize(..40)),
            text,
            mention: Mention {
                all: rng.bool(),
                mobiles: who(&mut rng),
                user_ids: who(&mut rng),
            },
            mentions_skipped: 0,
            buttons: vec![],
            buttons_left_out: vec![],
            status: Status::Firing,
            link: "http://am:9093/\"".repeat(rng.usize(..3)),
            omitted: 0,
            cut: Cut::default(),
            fallback: None,
        };
        let size = composed.size();
        for cap in [size.saturating_sub(1), size, size + 1] {
            assert_eq!(
                composed.fits(cap),
                size <= cap,
                "round {round}: {composed:?}"
            );
        }
    }
}

#[test]
fn a_cut_keeps_firing_alerts_before_resolved_ones() {
    let renderer = setup("text");
    let n = many(2_000, 2);
    let composed = compose_p(&renderer, &n);
    assert!(composed.omitted > 0);
    assert!(
        !composed.text.contains("【恢复】"),
        "resolved shown while firing ones were cut"
    );
}

#[test]
fn one_alert_too_large_alone_is_cut_inside_its_text() {
    let renderer = setup("markdown");
    let mut n = crate::samples::sample("firing").unwrap();
    let huge = "磁盘[详情](http://x/y) <b>很满</b> ".repeat(2_000);
    n.alerts[0].annotations.insert("description", huge);
    let composed = compose_p(&renderer, &n);
    assert!(composed.size() <= CAP);
    assert!(composed.size() > CAP - 500, "{}", composed.size());
    assert!(composed.text.ends_with("…（内容过长，已截断）"));
}

/// Found by the cut property (tests/api/properties/cut.rs): the cut inside the text took
/// the "另有 N 条" line with it.
#[test]
fn an_alert_too_large_alone_beside_others_keeps_the_line_counting_them() {
    for kind in ["markdown", "text"] {
        let renderer = setup(kind);
        let mut n = many(3, 0);
        n.alerts[0]
            .annotations
            .insert("summary", "磁盘*满\n".repeat(2_000));
        let composed = compose_p(&renderer, &n);
        assert!(composed.size() <= CAP, "{kind}: {}", composed.size());
        assert_eq!(composed.omitted, 2, "{kind}");
        assert!(composed.cut.text.is_some(), "{kind}");
        assert!(
            composed.text.contains("…（内容过长，已截断）"),
            "{kind}: {}",
            composed.text
        );
        let count = if kind == "markdown" { "**2**" } else { "2" };
        let line = format!("另有 {count} 条告警未显示（消息超过钉钉 {CAP} 字节上限）");
        assert!(composed.text.contains(&line), "{kind}: {}", composed.text);
    }
}

/// Found by the rendering property: the closing line linked to Alertmanager whatever the
/// length of its URL, so a huge `externalURL` put every cut message over the cap.
#[test]
fn a_huge_alertmanager_url_is_left_out_of_the_closing_line() {
    for kind in ["markdown", "text"] {
        let renderer = setup(kind);
        let mut n = many(1_000, 0);
        n.external_url = format!("http://alertmanager/{}", "(a)".repeat(10_000)).into();
        let composed = compose_p(&renderer, &n);
        assert!(composed.size() <= CAP, "{kind}: {}", composed.size());
        assert!(composed.omitted > 0, "{kind}");
        assert!(composed.text.contains("另有"), "{kind}: {}", composed.text);
    }
}

#[test]
fn safe_prefixes_end_outside_characters_links_and_tags() {
    assert_eq!(safe_prefix("故障告警", 4), "故");
    assert_eq!(
        safe_prefix("ab [link](http://x) cd", 100),
        "ab [link](http://x) cd"
    );
    assert_eq!(safe_prefix("ab [link](http://x) cd", 12), "ab ");
    assert_eq!(safe_prefix("ok <font color=#FF0000>x", 10), "ok ");
    assert_eq!(safe_prefix("ok <b>x</b> y", 13), "ok <b>x</b> y");
}

#[test]
fn a_notification_without_alerts_composes_without_panicking() {
    for kind in ["markdown", "text"] {
        let renderer = setup(kind);
        let mut n = crate::samples::sample("firing").unwrap();
        n.alerts.clear();
        for cap in [CAP, 10] {
            let composed = compose(&renderer, "p", &n, now(), cap).unwrap();
            assert_eq!(composed.omitted, 0, "{kind} {cap}");
        }
    }
}

#[test]
fn the_omitted_line_names_the_cap_it_was_given() {
    let renderer = setup("markdown");
    let n = many(1_000, 0);
    let composed = compose(&renderer, "p", &n, now(), 5_000).unwrap();
    assert!(composed.omitted > 0);
    assert!(composed.size() <= 5_000, "{}", composed.size());
    assert!(
        composed.text.contains("钉钉 5000 字节上限"),
        "{}",
        composed.text
    );
    assert!(!composed.text.contains("20000"), "{}", composed.text);
}

#[test]
fn a_cut_message_counts_every_alert_in_its_title_and_headings() {
    for kind in ["markdown", "text"] {
        let renderer = setup(kind);
        let composed = compose_p(&renderer, &many(100_000, 0));
        assert!(composed.omitted > 99_000, "{kind}");
        assert!(
            composed.title.starts_with("[故障:100000] "),
            "{kind}: {}",
            composed.title
        );
        assert!(composed.text.contains("【故障】100000 条告警"), "{kind}");
        let omitted = composed.omitted;
        assert!(
            composed.text.contains(&format!("另有 {omitted} 条"))
                || composed.text.contains(&format!("另有 **{omitted}** 条")),
            "{kind}"
        );

        let mixed = compose_p(&renderer, &many(4_000, 2));
        assert!(mixed.omitted > 2_000, "{kind}: resolved ones are all cut");
        assert_eq!(mixed.title, "[故障:2000 恢复:2000] CPU使用率告警", "{kind}");
        assert!(mixed.text.contains("【故障】2000 条告警"), "{kind}");
    }
}

/// A profile `p` with a title template of its own, rendered by Tera.
fn setup_titled(title: &str) -> Renderer {
    let yaml = format!(
        "profiles:\n  p:\n    url: http://127.0.0.1:1/robot/send?access_token=t\n    title: {title:?}\n"
    );
    let config = Config::from_yaml(&yaml, Path::new("profiles.yaml")).unwrap();
    Renderer::new(&config).unwrap()
}

#[test]
fn a_title_over_the_cap_is_cut_with_an_ellipsis() {
    let renderer = setup("markdown");
    let mut n = crate::samples::sample("firing").unwrap();
    // 19,815 bytes, three to a character: a cut anywhere else would split one.
    n.group_labels.insert("alertname", "磁".repeat(6_605));
    let composed = compose_p(&renderer, &n);
    assert!(composed.size() <= CAP, "{}", composed.size());
    assert!(
        composed.title.len() <= MAX_TITLE_BYTES,
        "{}",
        composed.title.len()
    );
    assert!(
        composed.title.starts_with("[故障:1] 磁磁"),
        "{}",
        composed.title
    );
    assert!(composed.title.ends_with("磁…"), "{}", composed.title);
    assert_eq!(composed.cut.title, Some("[故障:1] ".len() + 19_815));
    assert_eq!(composed.omitted, 0);
    assert!(
        composed.text.contains("CPU 使用率过高"),
        "the alert is still shown"
    );
}

#[test]
fn a_custom_title_over_a_huge_summary_is_cut_and_the_body_fits() {
    let renderer = setup_titled("{{ commonAnnotations.summary }}");
    let mut n = crate::samples::sample("firing").unwrap();
    let summary = "summary \"quoted\" 故障 ".repeat(1_500);
    assert!(summary.len() > 35_000);
    n.common_annotations.insert("summary", summary.clone());
    n.alerts[0].annotations.insert("summary", summary);
    let composed = compose_p(&renderer, &n);
    assert!(composed.size() <= CAP, "{}", composed.size());
    assert!(composed.title.ends_with('…'), "{}", composed.title);
    assert!(composed.cut.title.is_some());
    assert!(
        composed.cut.text.is_some(),
        "the alert alone is over the cap"
    );
}

#[test]
fn a_title_is_one_line_whatever_template_made_it() {
    let mut n = crate::samples::sample("firing").unwrap();
    n.group_labels
        .insert("alertname", "disk\nfull\r\n\tnow\u{7}\u{2028}end\u{1}");
    let renderer = setup("markdown");
    let builtin = compose_p(&renderer, &n);
    assert_eq!(builtin.title, "[故障:1] disk full   now  end");
    let renderer = setup_titled("{{ groupLabels.alertname }}\nsecond line");
    let custom = compose_p(&renderer, &n);
    assert_eq!(custom.title, "disk full   now  end  second line");
    assert_eq!(custom.cut.title, None, "made one line, not cut");
}

#[test]
fn a_cut_takes_few_renders_on_every_channel() {
    for (url, kind) in [
        ("http://127.0.0.1:1/cgi-bin/webhook/send?key=k", "markdown"),
        ("http://127.0.0.1:1/cgi-bin/webhook/send?key=k", "text"),
        ("http://127.0.0.1:1/open-apis/bot/v2/hook/t", "card"),
        ("http://127.0.0.1:1/robot/send?access_token=t", "markdown"),
    ] {
        renders_to_cut(url, kind);
    }
}

fn renders_to_cut(url: &str, kind: &str) {
    let (renderer, cap) = setup_channel(url, kind);
    let look = renderer.look("p").unwrap().clone();
    for count in [10, 12, 30, 64, 200, 10_000] {
        let n = many(count, 0);
        let renders = std::cell::Cell::new(0);
        let composed = compose_with(&look, &n, cap, |subset| {
            renders.set(renders.get() + 1);
            renderer.render("p", subset, now())
        })
        .unwrap();
        assert!(composed.size() <= cap);
        let kept = count - composed.omitted;
        // One render when everything fits; else the first try, an estimate and its check.
        let most = if kept == count { 1 } else { 4 };
        assert!(
            renders.get() <= most,
            "{url} {kind}: {count} alerts took {} renders (kept {kept})",
            renders.get()
        );
    }
}

#[test]
fn a_title_that_renders_empty_gets_a_plain_one() {
    let look = Look {
        channel: Channel::Feishu,
        message: MessageKind::Card,
        template: None,
        title: None,
        mention: crate::mention::MentionRules::default(),
        buttons: None,
        open_links: Default::default(),
    };
    let mut n = crate::samples::sample("firing").unwrap();
    for (status, expected) in [
        (Status::Firing, "[故障] 告警通知"),
        (Status::Resolved, "[恢复] 告警通知"),
    ] {
        n.status = status;
        let composed = compose_with(&look, &n, 20_000, |_| {
            Ok(Rendered {
                title: " \n ".into(),
                text: "x".into(),
                fallback: None,
                buttons: Default::default(),
            })
        })
        .unwrap();
        assert_eq!(composed.title, expected);
    }
}

#[test]
fn count_bytes_counts_every_lt_across_chunks() {
    for text in [
        String::new(),
        "<".repeat(1000),
        "a<b".repeat(300),
        format!("{}<", "告".repeat(200)),
    ] {
        assert_eq!(
            count_bytes(&text, |b| b == b'<'),
            text.bytes().filter(|&b| b == b'<').count()
        );
    }
}
