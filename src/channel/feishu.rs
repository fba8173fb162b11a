//! The Feishu (飞书) / Lark custom-bot protocol: `msg_type` text or an interactive card built
//! here around the rendered `lark_md` text (a red header while firing, green once resolved,
//! its buttons: those rendered for it, else one to Alertmanager), signing in the body, the `code` of its answer (or the older
//! `StatusCode`), and its limits: a body of at most 20 KB, 5 messages a second and 100 a
//! minute per bot.
//!
//! The card is built by code, not by a template: the size cut and merging work on the text,
//! which stays a text, and label values are escaped into the card's JSON by one encoder
//! rather than by every template author.

use std::borrow::Cow;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use url::Url;

use super::{
    Channel, MINUTE, Message, MessageKind, Retry, SendError, Window, defuse, json, with_missing,
};
use crate::alert::Status;
use crate::secret::Secret;

/// Feishu's and Lark's API hosts.
pub(super) const HOSTS: [&str; 2] = ["open.feishu.cn", "open.larksuite.com"];

/// Where a hook's path starts; its token follows.
pub(super) const PATH_PREFIX: &str = "/open-apis/bot/v2/hook/";

/// Feishu refuses request bodies over 20 KB (code 9499); read as the smaller 20,000 bytes.
pub const MAX_BODY_BYTES: usize = 20_000;

/// 5 messages a second and 100 a minute per bot, at once (code 11232 past either).
pub(super) const WINDOWS: [Window; 2] = [
    Window {
        limit: 5,
        length: Duration::from_secs(1),
    },
    Window {
        limit: 100,
        length: MINUTE,
    },
];

/// What signing adds to a body: `"timestamp":"<10 digits>","sign":"<44 base64>",`.
pub(super) const SIGNATURE_BYTES: usize = r#""timestamp":"","sign":"","#.len() + 10 + 44;

/// What opens a mention in a Feishu text (`<at user_id="…">`), defused in a label's text.
pub(super) const MENTION_TAG: &str = "at";

/// The button under a card.
const BUTTON: &str = "在 Alertmanager 中查看";

/// The hook's token: the path segment after `/hook/`.
pub(super) fn token(url: &Url) -> Result<String, String> {
    url.path()
        .split_once("/hook/")
        .map(|(_, token)| token.trim_end_matches('/'))
        .filter(|token| !token.is_empty() && !token.contains('/'))
        .map(str::to_owned)
        .ok_or_else(|| {
            "has no hook token in its path (Feishu hooks are /open-apis/bot/v2/hook/TOKEN)".into()
        })
}

/// Between merged notifications in a markdown message, and before a closing note: a blank line (`lark_md` draws neither rules nor quotes, so merged parts get a line of box-drawing characters).
pub(super) const RULE: &str = "\n\n━━━━━━━━━━━━\n\n";
/// See [`RULE`].
pub(super) const ASIDE: &str = "\n\n";

/// The exact bytes posted, before signing.
pub(super) fn body(message: &Message) -> Vec<u8> {
    let text = mentioned(message);
    let len = text.len() + message.title.len() + message.link.len();
    let mut out = Vec::with_capacity(len + len / 4 + 400);
    match message.kind {
        MessageKind::Text | MessageKind::Markdown => {
            out.extend_from_slice(b"{\"msg_type\":\"text\",\"content\":{\"text\":");
            json::string(&mut out, &text);
            out.extend_from_slice(b"}}");
        }
        MessageKind::Card | MessageKind::ActionCard => {
            let template = match message.status {
                Status::Firing => "red",
                Status::Resolved => "green",
            };
            out.extend_from_slice(b"{\"msg_type\":\"interactive\",\"card\":{\"config\":{\"wide_screen_mode\":true},\"header\":{\"template\":\"");
            out.extend_from_slice(template.as_bytes());
            out.extend_from_slice(b"\",\"title\":{\"tag\":\"plain_text\",\"content\":");
            json::string(&mut out, message.title);
            out.extend_from_slice(
                b"}},\"elements\":[{\"tag\":\"div\",\"text\":{\"tag\":\"lark_md\",\"content\":",
            );
            json::string(&mut out, &text);
            out.extend_from_slice(b"}}");
            if !message.buttons.is_empty() {
                out.extend_from_slice(b",{\"tag\":\"action\",\"actions\":[");
                for (i, button) in message.buttons.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(
                        b"{\"tag\":\"button\",\"text\":{\"tag\":\"plain_text\",\"content\":",
                    );
                    json::string(&mut out, &button.title);
                    out.extend_from_slice(if i == 0 {
                        b"},\"type\":\"primary\",\"url\":"
                    } else {
                        b"},\"type\":\"default\",\"url\":"
                    });
                    json::string(&mut out, &button.url);
                    out.push(b'}');
                }
                out.extend_from_slice(b"]}");
            } else if is_web_link(message.link) {
                out.extend_from_slice(b",{\"tag\":\"action\",\"actions\":[{\"tag\":\"button\",\"text\":{\"tag\":\"plain_text\",\"content\":");
                json::string(&mut out, BUTTON);
                out.extend_from_slice(b"},\"type\":\"primary\",\"url\":");
                json::string(&mut out, message.link);
                out.extend_from_slice(b"}]}");
            }
            out.extend_from_slice(b"]}}");
        }
    }
    out
}

/// The text with the mentions it lacks: `<at user_id="…"></at>` in a text message (whose
/// own `<at` tags, a label's, are defused first: the default text template does not escape),
/// `<at id=…></at>` in a card's `lark_md` (its template escapes labels with `lark_escape`).
/// Feishu cannot mention by mobile number.
pub(super) fn mentioned<'a>(message: &Message<'a>) -> Cow<'a, str> {
    let mention = message.mention;
    let all = mention.all.then(|| "all".to_owned());
    let ids = all.into_iter().chain(mention.user_ids.iter().cloned());
    match message.kind {
        MessageKind::Card | MessageKind::ActionCard => with_missing(
            message.text,
            ids.map(|id| format!("<at id={id}></at>")),
            " ",
        ),
        MessageKind::Text | MessageKind::Markdown => with_missing(
            defuse(message.text, MENTION_TAG),
            ids.map(|id| {
                let name = if id == "all" { "所有人" } else { "" };
                format!("<at user_id=\"{id}\">{name}</at>")
            }),
            " ",
        ),
    }
}

fn is_web_link(link: &str) -> bool {
    Url::parse(link).is_ok_and(|url| matches!(url.scheme(), "http" | "https"))
}

/// What a card shows around its text: the header's title and colour, the buttons (label,
/// URL). Read back from a posted body, for previews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardFrame {
    /// The header's text.
    pub title: String,
    /// The header's colour (a Feishu template name: `red`, `green`, ...).
    pub template: String,
    /// Each button's label and URL.
    pub buttons: Vec<(String, String)>,
}

/// The frame of the card in a body; `None` when the body holds no card.
pub fn card_frame(body: &serde_json::Value) -> Option<CardFrame> {
    let card = body.get("card")?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let buttons = card["elements"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|element| element["actions"].as_array())
        .flatten()
        .map(|button| (text(&button["text"]["content"]), text(&button["url"])))
        .collect();
    Some(CardFrame {
        title: text(&card["header"]["title"]["content"]),
        template: text(&card["header"]["template"]),
        buttons,
    })
}

/// The signature for a timestamp in seconds: base64(HMAC-SHA256(key = "{timestamp}\n{secret}",
/// message = nothing)).
pub fn sign(secret: &Secret, timestamp: i64) -> String {
    let key = format!("{timestamp}\n{}", secret.expose());
    let mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `body` with `timestamp` and `sign` as its first fields.
pub(super) fn signed_body(body: &[u8], secret: &Secret, timestamp: i64) -> Vec<u8> {
    let fields = format!(
        "{{\"timestamp\":\"{timestamp}\",\"sign\":\"{}\",",
        sign(secret, timestamp)
    );
    let mut out = Vec::with_capacity(fields.len() + body.len());
    out.extend_from_slice(fields.as_bytes());
    out.extend_from_slice(body.strip_prefix(b"{").unwrap_or(body));
    out
}

/// Feishu's answer: `code`/`msg`, or from older bots `StatusCode`/`StatusMessage`.
#[derive(Debug, Deserialize)]
struct Answer {
    code: Option<i64>,
    #[serde(default)]
    msg: Option<String>,
    #[serde(rename = "StatusCode")]
    status_code: Option<i64>,
    #[serde(rename = "StatusMessage", default)]
    status_message: Option<String>,
}

pub(super) fn read_answer(answer: &[u8]) -> Result<(), SendError> {
    let bad = |why: String| SendError::BadResponse(Channel::Feishu, why);
    let answer: Answer = serde_json::from_slice(answer).map_err(|e| bad(e.to_string()))?;
    let code = answer
        .code
        .or(answer.status_code)
        .ok_or_else(|| bad("neither code nor StatusCode in the answer".into()))?;
    match code {
        0 => Ok(()),
        code => Err(SendError::Api {
            channel: Channel::Feishu,
            code,
            message: answer.msg.or(answer.status_message).unwrap_or_default(),
        }),
    }
}

/// 11232 and the open platform's 99991400 are frequency limits; any other (19021
/// signature or timestamp, 19022 IP, 19024 keyword, 19001 bad hook, 9499 bad request) fails
/// the same way again.
pub(super) fn retry(code: i64) -> Retry {
    match code {
        11_232 | 99_991_400 => Retry::Throttled,
        _ => Retry::Permanent,
    }
}

/// Known codes as themselves, the rest bounded.
pub(super) fn code_label(code: i64) -> &'static str {
    match code {
        11_232 => "11232",
        99_991_400 => "99991400",
        19_001 => "19001",
        19_021 => "19021",
        19_022 => "19022",
        19_024 => "19024",
        9_499 => "9499",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::channel::Mention;

    fn message<'a>(
        kind: MessageKind,
        text: &'a str,
        mention: &'a Mention,
        status: Status,
    ) -> Message<'a> {
        Message {
            kind,
            title: "[故障:1] \"t\"",
            text,
            mention,
            status,
            link: "http://am:9093",
            buttons: &[],
        }
    }

    #[test]
    fn the_signature_matches_feishus_documented_algorithm() {
        // Cross-checked with Python: base64(hmac.new(b"1700000000\nSECtest", b"",
        // sha256).digest()).
        assert_eq!(
            sign(&Secret::new("SECtest"), 1_700_000_000),
            "G7XpBpG8NgG02fJOAhX6FRAObIljmFoxVReo8I62pEk="
        );
    }

    #[test]
    fn a_signed_body_carries_timestamp_and_sign_first_and_its_size_was_reserved() {
        let mention = Mention::default();
        let plain = body(&message(MessageKind::Text, "x", &mention, Status::Firing));
        let signed = signed_body(&plain, &Secret::new("SECtest"), 1_700_000_000);
        let value: Value = serde_json::from_slice(&signed).unwrap();
        assert_eq!(value["timestamp"], "1700000000");
        assert_eq!(
            value["sign"],
            "G7XpBpG8NgG02fJOAhX6FRAObIljmFoxVReo8I62pEk="
        );
        assert_eq!(value["content"]["text"], "x");
        assert_eq!(signed.len(), plain.len() + SIGNATURE_BYTES);
    }

    #[test]
    fn cards_are_red_while_firing_green_once_resolved_with_a_button() {
        let mention = Mention {
            all: true,
            mobiles: vec![],
            user_ids: vec!["ou_1".into()],
        };
        for (status, colour) in [(Status::Firing, "red"), (Status::Resolved, "green")] {
            let posted = body(&message(
                MessageKind::Card,
                "**a**\n\"b\"",
                &mention,
                status,
            ));
            let expected = json!({"msg_type": "interactive", "card": {
                "config": {"wide_screen_mode": true},
                "header": {"template": colour, "title": {"tag": "plain_text", "content": "[故障:1] \"t\""}},
                "elements": [
                    {"tag": "div", "text": {"tag": "lark_md", "content": "**a**\n\"b\"\n\n<at id=all></at> <at id=ou_1></at>"}},
                    {"tag": "action", "actions": [{"tag": "button",
                        "text": {"tag": "plain_text", "content": BUTTON}, "type": "primary", "url": "http://am:9093"}]},
                ],
            }});
            let posted: Value = serde_json::from_slice(&posted).unwrap();
            assert_eq!(posted, expected);
        }
    }

    #[test]
    fn a_cards_frame_reads_back_from_its_body() {
        let mention = Mention::default();
        let posted: Value = serde_json::from_slice(&body(&message(
            MessageKind::Card,
            "x",
            &mention,
            Status::Resolved,
        )))
        .unwrap();
        let frame = card_frame(&posted).unwrap();
        assert_eq!(frame.title, "[故障:1] \"t\"");
        assert_eq!(frame.template, "green");
        assert_eq!(
            frame.buttons,
            [(BUTTON.to_owned(), "http://am:9093".to_owned())]
        );
        assert_eq!(card_frame(&serde_json::json!({"msg_type": "text"})), None);
    }

    #[test]
    fn a_card_without_a_web_link_has_no_button() {
        let mention = Mention::default();
        let mut card = message(MessageKind::Card, "x", &mention, Status::Firing);
        card.link = "javascript:alert(1)";
        let posted: Value = serde_json::from_slice(&body(&card)).unwrap();
        assert_eq!(posted["card"]["elements"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn text_messages_mention_with_at_tags() {
        let mention = Mention {
            all: true,
            mobiles: vec![],
            user_ids: vec!["ou_1".into()],
        };
        let posted: Value = serde_json::from_slice(&body(&message(
            MessageKind::Text,
            "x",
            &mention,
            Status::Firing,
        )))
        .unwrap();
        assert_eq!(
            posted,
            json!({"msg_type": "text", "content": {"text": "x\n\n<at user_id=\"all\">所有人</at> <at user_id=\"ou_1\"></at>"}})
        );
    }

    #[test]
    fn answers_in_either_form_are_read() {
        assert_eq!(
            read_answer(br#"{"code":0,"msg":"success","data":{}}"#),
            Ok(())
        );
        assert_eq!(
            read_answer(br#"{"StatusCode":0,"StatusMessage":"success"}"#),
            Ok(())
        );
        let refused = read_answer(br#"{"code":19021,"msg":"sign match fail"}"#).unwrap_err();
        assert_eq!(refused.retry(), Retry::Permanent);
        assert_eq!(refused.label(), "19021");
        let limited = read_answer(br#"{"StatusCode":11232,"StatusMessage":"frequency limited"}"#)
            .unwrap_err();
        assert_eq!(limited.retry(), Retry::Throttled);
        assert!(matches!(
            read_answer(b"{}"),
            Err(SendError::BadResponse(..))
        ));
    }

    #[test]
    fn hook_tokens_come_from_the_path() {
        let token = |text: &str| super::token(&Url::parse(text).unwrap());
        assert_eq!(
            token("https://open.feishu.cn/open-apis/bot/v2/hook/abc-1").unwrap(),
            "abc-1"
        );
        assert!(token("https://open.feishu.cn/open-apis/bot/v2/hook/").is_err());
        assert!(token("https://open.feishu.cn/open-apis/bot/v2/").is_err());
    }
}
