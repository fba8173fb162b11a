//! Property tests for the cut to DingTalk's cap: any alert count (none to thousands), any
//! sizes (a few bytes to over the cap for one alert), firing and resolved mixed.

use std::collections::BTreeSet;

use alertrelay::alert::{Alert, KeyValues, Notification, Status, zero_time};
use alertrelay::channel::dingtalk::MAX_BODY_BYTES;
use alertrelay::compose::compose;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use super::config;
use super::render::{RENDERER, now};

/// Per alert: firing or not, and the size of its summary in bytes (mostly small, sometimes
/// past the cap on its own).
fn alerts() -> impl Strategy<Value = Vec<(bool, usize)>> {
    let one = (
        any::<bool>(),
        prop_oneof![6 => 0usize..64, 3 => 64usize..2_000, 1 => 15_000usize..30_000],
    );
    prop_oneof![
        vec(one.clone(), 0..4),
        vec(one.clone(), 0..100),
        vec(one, 0..3000),
    ]
}

/// Alert `i` is told apart by its instance, `host-<i>`; its summary repeats `filler`.
fn notification(alerts: &[(bool, usize)], filler: &str) -> Notification<'static> {
    let alerts = alerts
        .iter()
        .enumerate()
        .map(|(i, &(firing, size))| {
            let mut labels = KeyValues::new();
            labels.insert("alertname", "cut");
            labels.insert("instance", format!("host-{i:04}"));
            let mut annotations = KeyValues::new();
            let summary = filler.repeat(size / filler.len() + 1);
            annotations.insert("summary", format!("{}.", &summary[..summary.floor(size)]));
            let starts = now() - chrono::Duration::minutes(5);
            Alert {
                status: if firing {
                    Status::Firing
                } else {
                    Status::Resolved
                },
                labels,
                annotations,
                starts_at: starts.fixed_offset(),
                ends_at: if firing {
                    zero_time()
                } else {
                    now().fixed_offset()
                },
                generator_url: "http://prometheus-0:9090/graph?g0.expr=up".into(),
                fingerprint: format!("{i:016x}").into(),
            }
        })
        .collect();
    let mut group_labels = KeyValues::new();
    group_labels.insert("alertname", "cut");
    Notification {
        alerts,
        group_labels,
        external_url: "http://alertmanager:9093".into(),
        ..Notification::default()
    }
}

/// `str::floor_char_boundary`, which is not stable yet.
trait Floor {
    fn floor(&self, at: usize) -> usize;
}

impl Floor for str {
    fn floor(&self, at: usize) -> usize {
        (0..=at.min(self.len()))
            .rev()
            .find(|&i| self.is_char_boundary(i))
            .unwrap_or(0)
    }
}

/// The alerts a message shows, by the instance each one's `主机:` line names.
fn shown(text: &str) -> BTreeSet<usize> {
    text.match_indices("主机: host-")
        .filter_map(|(at, marker)| text[at + marker.len()..].get(..4)?.parse().ok())
        .collect()
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn any_notification_is_cut_under_the_cap_and_counts_every_alert(
        alerts in alerts(),
        filler in select(&["x", "磁盘*满\n", "\"\\<"][..]),
        profile in select(&["md", "txt"][..]),
    ) {
        let n = notification(&alerts, filler);
        let total = alerts.len();
        let firing = alerts.iter().filter(|(f, _)| *f).count();
        let resolved = total - firing;

        let composed = compose(&RENDERER, profile, &n, now(), MAX_BODY_BYTES)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;

        let size = composed.size();
        prop_assert!(size <= MAX_BODY_BYTES, "{} bytes", size);
        let text = &composed.text;
        let kept = shown(text);
        prop_assert_eq!(kept.len() + composed.omitted, total);
        // Firing alerts are kept first: a resolved one is shown only when all firing are.
        let firing_shown = kept.iter().filter(|&&i| alerts[i].0).count();
        prop_assert!(firing_shown == firing || firing_shown == kept.len());

        let omitted_line = match profile {
            "md" => format!("另有 **{}** 条告警未显示（消息超过钉钉 {MAX_BODY_BYTES} 字节上限）", composed.omitted),
            _ => format!("另有 {} 条告警未显示（消息超过钉钉 {MAX_BODY_BYTES} 字节上限）", composed.omitted),
        };
        if composed.omitted > 0 {
            prop_assert!(text.contains(&omitted_line), "no {:?} in {:?}", omitted_line, text);
        } else {
            prop_assert!(!text.contains("条告警未显示"));
        }

        let title = match (firing, resolved) {
            (0, r) => format!("[恢复:{r}] cut"),
            (f, 0) => format!("[故障:{f}] cut"),
            (f, r) => format!("[故障:{f} 恢复:{r}] cut"),
        };
        prop_assert_eq!(&composed.title, &title);
        if firing_shown > 0 {
            let heading = format!("【故障】{firing} 条告警");
            prop_assert!(text.contains(&heading), "no {:?}", heading);
        }
        if kept.len() > firing_shown {
            let heading = format!("【恢复】{resolved} 条告警");
            prop_assert!(text.contains(&heading), "no {:?}", heading);
        }
    }
}
