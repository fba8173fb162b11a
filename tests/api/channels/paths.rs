//! Where each channel's profiles are served: their own path and `/send/<p>`; another
//! channel's path or an unknown profile is a 404 that says where to go; and the profile
//! checks the config makes per channel, with their line.

use std::path::Path;

use alertrelay::config::Config;

use super::{Chan, answer, post, spawn};
use crate::helpers::{distinct, payload, spawn_app};

async fn delivered_at_its_own_path_and_at_send(chan: Chan) {
    let app = spawn(chan, "").await;

    // A notification of its own at each path: both paths serve one profile, so the same one
    // at the second would be a duplicate of the first.
    for (n, path) in [chan.path("ops"), "/send/ops".to_owned()]
        .into_iter()
        .enumerate()
    {
        let body = distinct(&payload("firing_single.json"), n);
        let (status, body) = answer(post(&app, &path, body).await).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["status"], "ok", "{path}: {body}");
    }

    let received = app.robot.received();
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|r| r.protocol == chan.protocol()));
}

#[tokio::test]
async fn a_wecom_profile_is_delivered_at_wecom_path_and_at_send() {
    delivered_at_its_own_path_and_at_send(Chan::WeCom).await;
}

#[tokio::test]
async fn a_feishu_profile_is_delivered_at_feishu_path_and_at_send() {
    delivered_at_its_own_path_and_at_send(Chan::Feishu).await;
}

async fn another_channels_path_is_404_naming_its_own(chan: Chan) {
    let app = spawn(chan, "").await;
    let others = ["dingtalk", "wecom", "feishu"]
        .into_iter()
        .filter(|other| *other != chan.name());

    for other in others {
        let path = format!("/{other}/ops/send");
        let (status, body) = answer(post(&app, &path, payload("firing_single.json")).await).await;
        assert_eq!(status, 404, "{path}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(&chan.path("ops")), "{path}: {error}");
        assert!(error.contains("/send/ops"), "{path}: {error}");
    }

    assert_eq!(app.robot.requests(), 0);
    let metrics = app.metrics().await;
    assert!(metrics.contains("reason=\"wrong_channel\"} 2"), "{metrics}");
}

#[tokio::test]
async fn a_wecom_profile_under_another_channels_path_is_404_naming_wecom_path() {
    another_channels_path_is_404_naming_its_own(Chan::WeCom).await;
}

#[tokio::test]
async fn a_feishu_profile_under_another_channels_path_is_404_naming_feishu_path() {
    another_channels_path_is_404_naming_its_own(Chan::Feishu).await;
}

#[tokio::test]
async fn a_dingtalk_profile_under_the_wecom_path_is_404_naming_the_dingtalk_path() {
    let app = spawn_app(&crate::helpers::ops_yaml(""), &[]).await;

    let (status, body) =
        answer(post(&app, "/wecom/ops/send", payload("resolved.json")).await).await;

    assert_eq!(status, 404, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("/dingtalk/ops/send"), "{error}");
    assert_eq!(app.robot.requests(), 0);
}

#[tokio::test]
async fn an_unknown_profile_is_404_on_every_path() {
    for chan in [Chan::WeCom, Chan::Feishu] {
        let app = spawn(chan, "").await;
        for path in [chan.path("nope"), "/send/nope".to_owned()] {
            let (status, body) =
                answer(post(&app, &path, payload("firing_single.json")).await).await;
            assert_eq!(status, 404, "{path}: {body}");
            assert!(
                body["error"].as_str().unwrap().contains("\"nope\""),
                "{path}: {body}"
            );
        }
        assert_eq!(app.robot.requests(), 0, "{chan:?}");
    }
}

/// The config's one problem for `yaml`, as printed (`file:line: message`).
fn refusal(yaml: &str) -> String {
    match Config::from_yaml(yaml, Path::new("profiles.yaml")) {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_wecom_profile_with_a_secret_is_refused_naming_its_line() {
    let url = "http://127.0.0.1:1/cgi-bin/webhook/send?key=k";
    let secret = format!("timeout: 2s\nprofiles:\n  ops:\n    url: {url}\n    secret: SECx\n");
    let file = format!(
        "profiles:\n  ok:\n    url: {url}\n  ops:\n    url: {url}\n    secret_file: s.txt\n"
    );
    let explicit = "profiles:\n  ops:\n    url: http://127.0.0.1:1/hook?key=k\n    channel: wecom\n    secret: SECx\n";

    let secret = refusal(&secret);
    let file = refusal(&file);
    let explicit = refusal(explicit);

    assert!(secret.starts_with("profiles.yaml:5: "), "{secret}");
    assert!(secret.contains("secret: "), "{secret}");
    assert!(secret.contains("WeCom robots are not signed"), "{secret}");
    assert!(file.starts_with("profiles.yaml:6: "), "{file}");
    assert!(file.contains("secret_file: "), "{file}");
    assert!(explicit.starts_with("profiles.yaml:5: "), "{explicit}");
    assert!(explicit.contains("secret: "), "{explicit}");
}

#[test]
fn a_channel_url_without_its_token_is_refused_naming_its_line() {
    let wecom = refusal("profiles:\n  ops:\n    url: http://127.0.0.1:1/cgi-bin/webhook/send\n");
    let feishu = refusal("profiles:\n  ops:\n    url: http://127.0.0.1:1/open-apis/bot/v2/hook/\n");
    let card_on_wecom = refusal(
        "profiles:\n  ops:\n    url: http://127.0.0.1:1/cgi-bin/webhook/send?key=k\n    message: card\n",
    );

    assert!(wecom.starts_with("profiles.yaml:3: "), "{wecom}");
    assert!(wecom.contains("key"), "{wecom}");
    assert!(feishu.starts_with("profiles.yaml:3: "), "{feishu}");
    assert!(feishu.contains("hook token"), "{feishu}");
    assert!(
        card_on_wecom.starts_with("profiles.yaml:4: ") && card_on_wecom.contains("message"),
        "{card_on_wecom}"
    );
    assert!(!wecom.contains("127.0.0.1"), "the url is echoed: {wecom}");
}

#[test]
fn flag_profiles_and_real_hosts_take_their_channel_from_the_url() {
    use alertrelay::channel::{Channel, MessageKind};
    let sources = alertrelay::config::Sources {
        file: Path::new("/nonexistent/profiles.yaml").to_path_buf(),
        file_required: false,
        flag_profiles: vec![
            (
                "wx".into(),
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k".into(),
            ),
            (
                "lark".into(),
                "https://open.larksuite.com/open-apis/bot/v2/hook/t".into(),
            ),
            (
                "fs".into(),
                "https://open.feishu.cn/open-apis/bot/v2/hook/t".into(),
            ),
        ],
    };

    let config = Config::load(&sources).unwrap();

    let of = |name: &str| {
        let profile = &config.profiles[name];
        (profile.channel, profile.message, profile.rate_limit)
    };
    assert_eq!(of("wx"), (Channel::WeCom, MessageKind::Markdown, 20));
    assert_eq!(of("lark"), (Channel::Feishu, MessageKind::Card, 100));
    assert_eq!(of("fs"), (Channel::Feishu, MessageKind::Card, 100));
}
