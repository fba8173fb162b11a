//! The DingTalk custom-robot protocol: the message body, request signing in the query, the
//! `errcode` of its answer (DingTalk answers HTTP 200 even when it refuses), and its limits.

use std::borrow::Cow;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use url::Url;

use super::{MINUTE, Message, MessageKind, Retry, Window, json, query_token, with_missing};
use crate::secret::Secret;

/// DingTalk's API host.
pub(super) const HOST: &str = "oapi.dingtalk.com";

/// DingTalk refuses message bodies larger than this (errcode 460101).
pub const MAX_BODY_BYTES: usize = 20_000;

/// 20 messages a minute per robot; past it DingTalk answers 130101 and throttles for minutes.
pub(super) const WINDOWS: [Window; 1] = [Window {
    limit: 20,
    length: MINUTE,
}];

/// The robot's `access_token`, which identifies it (and its budget) at DingTalk.
pub(super) fn token(url: &Url) -> Result<String, String> {
    query_token(url, "access_token")
        .ok_or_else(|| "has no access_token query parameter (DingTalk robots need one)".into())
}

/// Between merged notifications in a markdown message, and before a closing note: a rule and a quote.
pub(super) const RULE: &str = "\n\n---\n\n";
/// See [`RULE`].
pub(super) const ASIDE: &str = "\n\n---\n\n> ";

/// The exact bytes posted, as `serde_json` would write them, a message being mostly one
/// long string escaped a chunk at a time. DingTalk notifies a mentioned member only when the
/// text also holds `@<mobile>` or `@<userId>`, so any the template left out are appended.
pub(super) fn body(message: &Message) -> Vec<u8> {
    let mention = message.mention;
    let text = text(message);
    // Room for escapes (a newline every few dozen bytes is the common case), so the buffer
    // is allocated once.
    let len = text.len() + message.title.len();
    let mut out = Vec::with_capacity(len + len / 4 + 160);
    match message.kind {
        MessageKind::Text | MessageKind::Card => {
            out.extend_from_slice(b"{\"msgtype\":\"text\",\"text\":{\"content\":");
            json::string(&mut out, &text);
        }
        MessageKind::Markdown => {
            out.extend_from_slice(b"{\"msgtype\":\"markdown\",\"markdown\":{\"title\":");
            json::string(&mut out, message.title);
            out.extend_from_slice(b",\"text\":");
            json::string(&mut out, &text);
        }
    }
    out.extend_from_slice(b"},\"at\":{\"atMobiles\":");
    json::strings(&mut out, &mention.mobiles);
    out.extend_from_slice(b",\"atUserIds\":");
    json::strings(&mut out, &mention.user_ids);
    out.extend_from_slice(if mention.all {
        b",\"isAtAll\":true}}"
    } else {
        b",\"isAtAll\":false}}"
    });
    out
}

/// The text with the `@` words of the mentions it lacks.
pub(super) fn text<'a>(message: &Message<'a>) -> Cow<'a, str> {
    let mention = message.mention;
    with_missing(
        message.text,
        mention
            .mobiles
            .iter()
            .chain(&mention.user_ids)
            .map(|who| format!("@{who}")),
        " ",
    )
}

/// The signature for a millisecond timestamp: base64(HMAC-SHA256(key = secret,
/// message = "{timestamp}\n{secret}")), before URL encoding.
pub fn sign(secret: &Secret, timestamp_ms: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(format!("{timestamp_ms}\n{}", secret.expose()).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The URL for one request: the base URL plus `timestamp` and `sign`. Computed afresh for
/// every request (DingTalk refuses signatures older than an hour).
pub(super) fn signed_url(url: &Url, secret: &Secret, timestamp_ms: i64) -> Url {
    let mut url = url.clone();
    url.query_pairs_mut()
        .append_pair("timestamp", &timestamp_ms.to_string())
        .append_pair("sign", &sign(secret, timestamp_ms));
    url
}

/// errcode -1 (busy) may pass; 130101 and 410100 throttle the robot for minutes; any other
/// (310000 signature/keyword/IP, 300001/300005/400101 token, 400013/400102/400106 group or
/// robot gone, 430xxx content refused, 460101 too large) fails the same way again.
pub(super) fn retry(code: i64) -> Retry {
    match code {
        -1 => Retry::Retryable,
        130_101 | 410_100 => Retry::Throttled,
        _ => Retry::Permanent,
    }
}

/// Known errcodes as themselves, the rest bounded.
pub(super) fn code_label(code: i64) -> &'static str {
    match code {
        -1 => "-1",
        130_101 => "130101",
        410_100 => "410100",
        310_000 => "310000",
        300_001 => "300001",
        300_005 => "300005",
        400_101 => "400101",
        400_013 => "400013",
        400_102 => "400102",
        400_106 => "400106",
        460_101 => "460101",
        101_002 => "101002",
        430_000..=430_999 => "430xxx",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::alert::Status;
    use crate::channel::{Channel, Mention, Robot, RobotUrl};

    fn message<'a>(
        kind: MessageKind,
        title: &'a str,
        text: &'a str,
        mention: &'a Mention,
    ) -> Message<'a> {
        Message {
            kind,
            title,
            text,
            mention,
            status: Status::Firing,
            link: "",
        }
    }

    #[test]
    fn the_signature_matches_dingtalks_documented_algorithm() {
        // Cross-checked with Python: base64(hmac.new(b"SECtest", b"1700000000000\nSECtest",
        // sha256).digest()).
        let sig = sign(&Secret::new("SECtest"), 1_700_000_000_000);
        assert_eq!(sig, "aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g=");
    }

    #[test]
    fn signed_urls_keep_the_token_and_encode_the_signature() {
        let robot = Robot {
            url: RobotUrl::parse(
                "https://oapi.dingtalk.com/robot/send?access_token=abc",
                None,
            )
            .unwrap(),
            secret: Some(Secret::new("SECtest")),
        };
        let (url, _) = robot.request(&bytes::Bytes::new(), 1_700_000_000_000);
        assert_eq!(
            url.as_str(),
            "https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1700000000000&sign=aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g%3D"
        );
    }

    #[test]
    fn unsigned_robots_get_the_bare_url() {
        let robot = Robot {
            url: RobotUrl::parse(
                "https://oapi.dingtalk.com/robot/send?access_token=abc",
                None,
            )
            .unwrap(),
            secret: None,
        };
        assert_eq!(
            robot.request(&bytes::Bytes::new(), 1).0.as_str(),
            "https://oapi.dingtalk.com/robot/send?access_token=abc"
        );
    }

    #[test]
    fn errcodes_are_classified_for_retrying() {
        let channel = Channel::DingTalk;
        assert_eq!(channel.retry(-1), Retry::Retryable);
        assert_eq!(channel.retry(130_101), Retry::Throttled);
        assert_eq!(channel.retry(410_100), Retry::Throttled);
        for permanent in [
            310_000, 300_001, 300_005, 400_101, 400_013, 400_102, 400_106, 430_101, 460_101,
        ] {
            assert_eq!(channel.retry(permanent), Retry::Permanent, "{permanent}");
        }
        assert_eq!(channel.code_label(430_101), "430xxx");
        assert_eq!(channel.code_label(123), "other");
    }

    #[test]
    fn bodies_hold_what_dingtalk_documents() {
        let mention = Mention {
            all: true,
            mobiles: vec!["138\"00".into()],
            user_ids: vec![],
        };
        let (title, text) = ("[故障:1] \"t\"", "### 故障\n\n- a\\b\t\u{1}");
        let at = json!({"atMobiles": ["138\"00"], "atUserIds": [], "isAtAll": true});
        let with_at = format!("{text}\n\n@138\"00");
        for (kind, expected) in [
            (
                MessageKind::Text,
                json!({"msgtype": "text", "text": {"content": with_at}, "at": at}),
            ),
            (
                MessageKind::Markdown,
                json!({"msgtype": "markdown", "markdown": {"title": title, "text": with_at}, "at": at}),
            ),
        ] {
            let ours: Value =
                serde_json::from_slice(&body(&message(kind, title, text, &mention))).unwrap();
            assert_eq!(ours, expected);
        }
    }

    #[test]
    fn markdown_mentions_get_their_at_text() {
        let mention = Mention {
            all: false,
            mobiles: vec!["13800000000".into()],
            user_ids: vec!["manager01".into()],
        };
        let posted = body(&message(
            MessageKind::Markdown,
            "t",
            "body @13800000000",
            &mention,
        ));
        let posted: Value = serde_json::from_slice(&posted).unwrap();
        assert_eq!(
            posted["markdown"]["text"],
            "body @13800000000\n\n@manager01"
        );
        assert_eq!(posted["at"]["atMobiles"], json!(["13800000000"]));
        assert_eq!(posted["at"]["atUserIds"], json!(["manager01"]));
    }
}
