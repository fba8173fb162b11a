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
    if message.kind == MessageKind::ActionCard && !message.buttons.is_empty() {
        return action_card(message);
    }
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
        // An action card without a button (nothing to link to) goes as markdown.
        MessageKind::Markdown | MessageKind::ActionCard => {
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

/// An action card: the title, the markdown text and the buttons, one as `singleTitle` and
/// `singleURL`, more as `btns` side by side (up to three) or stacked. It carries no `at`:
/// DingTalk notifies mentioned members of text and markdown messages only.
fn action_card(message: &Message) -> Vec<u8> {
    let buttons = message.buttons;
    let len = message.text.len() + message.title.len();
    let extra: usize = buttons
        .iter()
        .map(|b| b.title.len() + b.url.len() + 32)
        .sum();
    let mut out = Vec::with_capacity(len + len / 4 + extra + 128);
    out.extend_from_slice(b"{\"msgtype\":\"actionCard\",\"actionCard\":{\"title\":");
    json::string(&mut out, message.title);
    out.extend_from_slice(b",\"text\":");
    json::string(&mut out, message.text);
    if let [only] = buttons {
        out.extend_from_slice(b",\"singleTitle\":");
        json::string(&mut out, &only.title);
        out.extend_from_slice(b",\"singleURL\":");
        json::string(&mut out, &only.url);
    } else {
        let orientation: &[u8] = if buttons.len() <= 3 { b"1" } else { b"0" };
        out.extend_from_slice(b",\"btnOrientation\":\"");
        out.extend_from_slice(orientation);
        out.extend_from_slice(b"\",\"btns\":[");
        for (i, button) in buttons.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"title\":");
            json::string(&mut out, &button.title);
            out.extend_from_slice(b",\"actionURL\":");
            json::string(&mut out, &button.url);
            out.push(b'}');
        }
        out.push(b']');
    }
    out.extend_from_slice(b"}}");
    out
}

/// How a DingTalk client opens a button's link (`open_links`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpenLinks {
    /// In DingTalk's own browser window: the link as it is.
    #[default]
    Client,
    /// In the system's browser (PC): `dingtalk://dingtalkclient/page/link?url=…&pc_slide=false`.
    Browser,
    /// In the client's side panel (PC): the same with `pc_slide=true`.
    Sidebar,
}

/// `url` as a button posts it for `open`: wrapped in DingTalk's link scheme, the whole URL
/// percent-encoded as its `url` parameter, unless the client opens it itself.
pub fn open_link(url: &str, open: OpenLinks) -> String {
    let slide = match open {
        OpenLinks::Client => return url.to_owned(),
        OpenLinks::Browser => "false",
        OpenLinks::Sidebar => "true",
    };
    format!(
        "dingtalk://dingtalkclient/page/link?url={}&pc_slide={slide}",
        crate::render::filters::percent_encode(url)
    )
}

/// The text with the `@` words of the mentions it lacks.
pub(super) fn text<'a>(message: &Message<'a>) -> Cow<'a, str> {
    if message.kind == MessageKind::ActionCard {
        return Cow::Borrowed(message.text);
    }
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
            buttons: &[],
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
    fn action_cards_hold_what_dingtalk_documents() {
        let mention = Mention::default();
        let button = |title: &str, url: &str| crate::channel::Button {
            title: title.into(),
            url: url.into(),
        };
        let two = [
            button("查看", "http://am/#/a"),
            button("静默", "http://am/#/s"),
        ];
        let one = [button("查看", "http://am/#/a")];
        let card = |buttons| Message {
            buttons,
            ..message(MessageKind::ActionCard, "[故障:1] t", "### 故障", &mention)
        };

        let many: Value = serde_json::from_slice(&body(&card(&two))).unwrap();
        let single: Value = serde_json::from_slice(&body(&card(&one))).unwrap();
        let none: Value = serde_json::from_slice(&body(&card(&[]))).unwrap();

        assert_eq!(
            many,
            json!({"msgtype": "actionCard", "actionCard": {"title": "[故障:1] t", "text": "### 故障",
                "btnOrientation": "1", "btns": [{"title": "查看", "actionURL": "http://am/#/a"},
                {"title": "静默", "actionURL": "http://am/#/s"}]}})
        );
        assert_eq!(
            single,
            json!({"msgtype": "actionCard", "actionCard": {"title": "[故障:1] t", "text": "### 故障",
                "singleTitle": "查看", "singleURL": "http://am/#/a"}})
        );
        assert_eq!(none["msgtype"], "markdown", "no button: a markdown message");
    }

    #[test]
    fn open_links_wrap_the_whole_url_in_dingtalks_scheme() {
        let url = "http://am:9093/#/silences/new?filter=%7Ba%3D%22b%22%7D";
        assert_eq!(open_link(url, OpenLinks::Client), url);
        assert_eq!(
            open_link(url, OpenLinks::Browser),
            "dingtalk://dingtalkclient/page/link?url=http%3A%2F%2Fam%3A9093%2F%23%2Fsilences%2Fnew%3Ffilter%3D%257Ba%253D%2522b%2522%257D&pc_slide=false"
        );
        assert!(open_link(url, OpenLinks::Sidebar).ends_with("&pc_slide=true"));
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
