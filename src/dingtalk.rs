//! The DingTalk custom-robot protocol: the message body, request signing, and the answer's
//! `errcode` turned into a typed error (DingTalk answers HTTP 200 even when it refuses).

use std::borrow::Cow;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use url::Url;

mod client;
mod error;
mod json;

use crate::config::{Mention, MessageKind, Profile};
use crate::secret::{RobotUrl, Secret};
pub use client::{Client, MAX_ANSWER_BYTES, Patience};
pub use error::{Retry, SendError};

/// DingTalk refuses message bodies larger than this (errcode 460101).
pub const MAX_BODY_BYTES: usize = 20_000;

/// One robot: where to post and how to sign.
#[derive(Debug, Clone)]
pub struct Robot {
    /// The webhook URL without signature parameters.
    pub url: RobotUrl,
    /// The "加签" secret; when set every request is signed.
    pub secret: Option<Secret>,
}

impl From<&Profile> for Robot {
    fn from(profile: &Profile) -> Self {
        Self {
            url: profile.url.clone(),
            secret: profile.secret.clone(),
        }
    }
}

/// What to send: the rendered text and who to mention.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// Text or markdown.
    pub kind: MessageKind,
    /// The markdown title (ignored for text).
    pub title: &'a str,
    /// The rendered body.
    pub text: &'a str,
    /// Who to @.
    pub mention: &'a Mention,
}

/// The JSON DingTalk expects, exactly as posted. Built from a [`Message`] it borrows the
/// rendered text (copied only when mentions must be appended); read back from JSON (the
/// tests' robot double) it owns its strings.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Body<'a> {
    /// `text` or `markdown`.
    pub msgtype: Cow<'a, str>,
    /// Present for text messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextContent<'a>>,
    /// Present for markdown messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub markdown: Option<MarkdownContent<'a>>,
    /// Who is mentioned.
    pub at: At,
}

/// `text.content`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TextContent<'a> {
    /// The message.
    pub content: Cow<'a, str>,
}

/// `markdown.title` and `markdown.text`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MarkdownContent<'a> {
    /// Shown in the notification banner and chat list.
    pub title: Cow<'a, str>,
    /// The markdown.
    pub text: Cow<'a, str>,
}

/// The `at` object.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct At {
    /// Mobiles to mention.
    pub at_mobiles: Vec<String>,
    /// User ids to mention.
    pub at_user_ids: Vec<String>,
    /// @所有人.
    pub is_at_all: bool,
}

impl<'a> Body<'a> {
    /// Builds the body. DingTalk notifies a mentioned member only when the text also holds
    /// `@<mobile>` or `@<userId>`, so any that the template left out are appended.
    pub fn new(message: &Message<'a>) -> Self {
        let text = with_mention_text(message.text, message.mention);
        let at = At {
            at_mobiles: message.mention.mobiles.clone(),
            at_user_ids: message.mention.user_ids.clone(),
            is_at_all: message.mention.all,
        };
        match message.kind {
            MessageKind::Text => Self {
                msgtype: Cow::Borrowed("text"),
                text: Some(TextContent { content: text }),
                markdown: None,
                at,
            },
            MessageKind::Markdown => Self {
                msgtype: Cow::Borrowed("markdown"),
                text: None,
                markdown: Some(MarkdownContent {
                    title: Cow::Borrowed(message.title),
                    text,
                }),
                at,
            },
        }
    }

    /// The exact bytes posted: what `serde_json` makes of the body, written directly (a
    /// message is mostly one long string, and this escapes it a chunk at a time).
    pub fn to_bytes(&self) -> Vec<u8> {
        let content = self.text.as_ref().map_or(0, |t| t.content.len());
        let markdown = self
            .markdown
            .as_ref()
            .map_or(0, |m| m.title.len() + m.text.len());
        // Room for escapes (a newline every few dozen bytes is the common case), so the
        // buffer is allocated once.
        let text = content + markdown;
        let mut out = Vec::with_capacity(text + text / 4 + 160);
        out.extend_from_slice(b"{\"msgtype\":");
        json::string(&mut out, &self.msgtype);
        if let Some(text) = &self.text {
            out.extend_from_slice(b",\"text\":{\"content\":");
            json::string(&mut out, &text.content);
            out.push(b'}');
        }
        if let Some(markdown) = &self.markdown {
            out.extend_from_slice(b",\"markdown\":{\"title\":");
            json::string(&mut out, &markdown.title);
            out.extend_from_slice(b",\"text\":");
            json::string(&mut out, &markdown.text);
            out.push(b'}');
        }
        out.extend_from_slice(b",\"at\":{\"atMobiles\":");
        json::strings(&mut out, &self.at.at_mobiles);
        out.extend_from_slice(b",\"atUserIds\":");
        json::strings(&mut out, &self.at.at_user_ids);
        out.extend_from_slice(if self.at.is_at_all {
            b",\"isAtAll\":true}}"
        } else {
            b",\"isAtAll\":false}}"
        });
        out
    }
}

/// At least the length of `text` inside a JSON string: each byte that JSON escapes (`"`,
/// `\`, control characters) is counted as the longest escape, six bytes (`\u001f`). One
/// branch-free pass, so it is cheap next to serializing.
pub fn json_len_bound(text: &str) -> usize {
    // Counted in bytes a chunk at a time, so the comparisons run sixteen or more abreast.
    let escaped: usize = text
        .as_bytes()
        .chunks(128)
        .map(|chunk| {
            let count: u8 = chunk.iter().map(|&b| u8::from(json::escaped(b))).sum();
            usize::from(count)
        })
        .sum();
    text.len() + 5 * escaped
}

/// The `@` words a mention needs in the text, for those missing from `text`.
fn with_mention_text<'a>(text: &'a str, mention: &Mention) -> Cow<'a, str> {
    let missing: Vec<String> = mention
        .mobiles
        .iter()
        .chain(&mention.user_ids)
        .map(|who| format!("@{who}"))
        .filter(|word| !text.contains(word.as_str()))
        .collect();
    if missing.is_empty() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!("{text}\n\n{}", missing.join(" ")))
    }
}

/// The signature for a millisecond timestamp: base64(HMAC-SHA256(key = secret,
/// message = "{timestamp}\n{secret}")), before URL encoding.
pub fn sign(secret: &Secret, timestamp_ms: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(format!("{timestamp_ms}\n{}", secret.expose()).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The URL for one request: the base URL plus `timestamp` and `sign` when the robot has a
/// secret. Computed afresh for every request (DingTalk refuses signatures older than an hour).
pub fn request_url(robot: &Robot, timestamp_ms: i64) -> Url {
    let mut url = robot.url.expose().clone();
    if let Some(secret) = &robot.secret {
        url.query_pairs_mut()
            .append_pair("timestamp", &timestamp_ms.to_string())
            .append_pair("sign", &sign(secret, timestamp_ms));
    }
    url
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
            url: RobotUrl::parse("https://oapi.dingtalk.com/robot/send?access_token=abc").unwrap(),
            secret: Some(Secret::new("SECtest")),
        };
        let url = request_url(&robot, 1_700_000_000_000).to_string();
        assert_eq!(
            url,
            "https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1700000000000&sign=aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g%3D"
        );
    }

    #[test]
    fn unsigned_robots_get_the_bare_url() {
        let robot = Robot {
            url: RobotUrl::parse("https://oapi.dingtalk.com/robot/send?access_token=abc").unwrap(),
            secret: None,
        };
        assert_eq!(
            request_url(&robot, 1).as_str(),
            "https://oapi.dingtalk.com/robot/send?access_token=abc"
        );
    }

    #[test]
    fn errcodes_are_classified_for_retrying() {
        let api = |errcode| SendError::Api {
            errcode,
            errmsg: String::new(),
        };
        assert_eq!(api(-1).retry(), Retry::Retryable);
        assert_eq!(api(130_101).retry(), Retry::Throttled);
        assert_eq!(api(410_100).retry(), Retry::Throttled);
        for permanent in [
            310_000, 300_001, 300_005, 400_101, 400_013, 400_102, 400_106, 430_101, 460_101,
        ] {
            assert_eq!(api(permanent).retry(), Retry::Permanent, "{permanent}");
        }
        assert_eq!(SendError::Http { status: 502 }.retry(), Retry::Retryable);
        assert_eq!(SendError::Http { status: 404 }.retry(), Retry::Permanent);
        let timeout = SendError::Timeout {
            timeout: Duration::from_secs(1),
            wait_ran_out: false,
        };
        assert_eq!(timeout.retry(), Retry::Retryable);
        assert_eq!(api(430_101).label(), "430xxx");
        assert_eq!(api(123).label(), "other");
    }

    #[test]
    fn json_len_bound_is_never_short() {
        for text in [
            "",
            "plain",
            "故障 \"q\" \\ back",
            "\n\r\t\u{8}\u{c}",
            "\u{1}\u{1f}\u{7f}",
            "<&>'",
        ] {
            let quoted = serde_json::to_string(text).unwrap();
            assert!(json_len_bound(text) >= quoted.len() - 2, "{text:?}");
        }
        assert_eq!(json_len_bound("\u{1}\u{1f}"), 12);
        assert_eq!(json_len_bound("plain 故障"), "plain 故障".len());
    }

    #[test]
    fn bodies_are_the_bytes_serde_json_would_write() {
        let mention = Mention {
            all: true,
            mobiles: vec!["138\"00".into()],
            user_ids: vec![],
        };
        for kind in [MessageKind::Text, MessageKind::Markdown] {
            let body = Body::new(&Message {
                kind,
                title: "[故障:1] \"t\"",
                text: "### 故障\n\n- a\\b\t\u{1}",
                mention: &mention,
            });
            assert_eq!(body.to_bytes(), serde_json::to_vec(&body).unwrap());
        }
    }

    #[test]
    fn markdown_mentions_get_their_at_text() {
        let mention = Mention {
            all: false,
            mobiles: vec!["13800000000".into()],
            user_ids: vec!["manager01".into()],
        };
        let message = Message {
            kind: MessageKind::Markdown,
            title: "t",
            text: "body @13800000000",
            mention: &mention,
        };
        let body = Body::new(&message);
        assert_eq!(
            body.markdown.unwrap().text,
            "body @13800000000\n\n@manager01"
        );
        assert_eq!(body.at.at_mobiles, ["13800000000"]);
        assert_eq!(body.at.at_user_ids, ["manager01"]);
    }
}
