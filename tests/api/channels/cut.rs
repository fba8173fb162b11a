//! A 10,000-alert notification is one message under each message type's cap (WeCom's
//! content caps, Feishu's body cap), cut at an alert boundary and closed by the
//! "另有 N 条告警未显示" line whose N is every alert left out.

use super::{Chan, answer, many_alerts, post, spawn};

/// The number in the closing "另有 N 条告警未显示" line.
fn omitted_in(line: &str) -> usize {
    let after = line.split("另有").nth(1).unwrap_or_default();
    let digits: String = after
        .trim_start_matches([' ', '*'])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no count in {line:?}"))
}

async fn ten_thousand_alerts_are_cut_under_the_cap(
    chan: Chan,
    kind: &str,
    cap: usize,
    shown: &str,
) {
    let app = spawn(chan, &format!("    message: {kind}\n")).await;
    let body = many_alerts(10_000);
    assert!(body.len() > 5_000_000);

    let (status, answered) = answer(post(&app, &chan.path("ops"), body).await).await;

    assert_eq!(status, 200, "{kind}: {answered}");
    let received = app.robot.received();
    assert_eq!(received.len(), 1, "{kind}");
    let message = &received[0];
    let size = match chan {
        Chan::WeCom => message.text().len(),
        Chan::Feishu => message.body.to_string().len(),
    };
    assert!(size <= cap, "{kind}: {size} bytes over {cap}");
    assert!(
        size > cap * 3 / 4,
        "{kind}: only {size} of {cap} bytes used"
    );
    let last = message.text().lines().last().unwrap();
    assert!(
        last.contains("条告警未显示"),
        "{kind}: the last line is {last:?}"
    );
    let omitted = omitted_in(last);
    let listed = message.text().matches(shown).count();
    assert!(listed >= 1, "{kind}: no alert shown");
    assert_eq!(
        listed + omitted,
        10_000,
        "{kind}: {listed} shown, {omitted} said omitted"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("alertrelay_messages_truncated_total{profile=\"ops\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_10000_alert_notification_arrives_at_wecom_as_one_markdown_message_of_at_most_4096_bytes()
{
    ten_thousand_alerts_are_cut_under_the_cap(Chan::WeCom, "markdown", 4096, "**CPU使用率告警**")
        .await;
}

#[tokio::test]
async fn a_10000_alert_notification_arrives_at_wecom_as_one_text_message_of_at_most_2048_bytes() {
    ten_thousand_alerts_are_cut_under_the_cap(Chan::WeCom, "text", 2048, "故障 | CPU使用率告警")
        .await;
}

#[tokio::test]
async fn a_10000_alert_notification_arrives_at_feishu_as_one_card_of_at_most_20000_bytes() {
    ten_thousand_alerts_are_cut_under_the_cap(Chan::Feishu, "card", 20_000, "**CPU使用率告警**")
        .await;
}

#[tokio::test]
async fn a_10000_alert_notification_arrives_at_feishu_as_one_text_of_at_most_20000_bytes() {
    ten_thousand_alerts_are_cut_under_the_cap(Chan::Feishu, "text", 20_000, "故障 | CPU使用率告警")
        .await;
}

#[tokio::test]
async fn a_10000_alert_card_to_a_signed_feishu_bot_stays_under_20000_bytes_with_its_signature() {
    let robot = crate::robot::RobotDouble::start().await;
    robot.require_feishu_signature(super::TOKEN, "SECbig");
    let url = Chan::Feishu.url(&robot, super::TOKEN);
    let yaml = format!(
        "{}profiles:\n{}",
        super::QUICK,
        super::profile("ops", &url, "    secret: SECbig\n")
    );
    let app = crate::helpers::spawn_app_with_robot(robot, &yaml, &[]).await;

    let (status, body) = answer(post(&app, "/feishu/ops/send", many_alerts(10_000)).await).await;

    assert_eq!(status, 200, "{body}");
    let received = app.robot.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].body["sign"].is_string());
    let size = received[0].body.to_string().len();
    assert!(size <= 20_000, "{size} bytes signed");
    assert!(received[0].text().contains("条告警未显示"));
}
