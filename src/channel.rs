//! What every chat robot has in common, and the plug each robot protocol fills in.
//!
//! A [`Message`] is channel-neutral: a title, a rendered text, who to mention, and whether the
//! notification is firing. Each channel (`dingtalk`, `wecom`, `feishu`) turns it into the JSON
//! its robot takes, signs the request its way, reads the robot's answer into an outcome with a
//! [`Retry`] class, and states its limits: the size cap per message type and the messages a
//! robot may send per window. `compose`, `delivery`, `server`, `preview` and `metrics` use
//! only what is here, so none of them knows which robot it is talking to.
//!
//! | channel | URL | signing | answer |
//! |---|---|---|---|
//! | [`dingtalk`] | `oapi.dingtalk.com/robot/send?access_token=T` | `timestamp`+`sign` in the query | `errcode`/`errmsg` |
//! | [`wecom`] | `qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K` | none (the key is the secret) | `errcode`/`errmsg` |
//! | [`feishu`] | `open.feishu.cn/open-apis/bot/v2/hook/T` (Lark: `open.larksuite.com`) | `timestamp`+`sign` in the body | `code`/`msg` (older: `StatusCode`) |

pub mod dingtalk;
pub mod feishu;
pub mod wecom;

mod client;
mod error;
mod json;
mod robot;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::alert::Status;
pub use client::{Client, MAX_ANSWER_BYTES, Patience};
pub use error::{Retry, SendError};
pub use robot::{Robot, RobotUrl, RobotUrlError};
pub(crate) use robot::{parse_web_url, query_token};

/// The chat robots alertrelay posts to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// DingTalk (钉钉) custom robots.
    #[default]
    #[serde(rename = "dingtalk")]
    DingTalk,
    /// WeCom (企业微信) group robots.
    #[serde(rename = "wecom")]
    WeCom,
    /// Feishu (飞书) and Lark custom bots.
    #[serde(rename = "feishu")]
    Feishu,
}

/// The message types alertrelay sends; which of them a channel takes is
/// [`Channel::kinds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// Plain text: every client shows it the same way.
    Text,
    /// The robot's markdown subset (DingTalk, WeCom).
    Markdown,
    /// A Feishu message card: a coloured header, the text as `lark_md`, a button.
    Card,
    /// A DingTalk action card: the markdown text with buttons under it (the group in
    /// Alertmanager, a prefilled silence, the Prometheus graph).
    #[serde(rename = "action_card")]
    ActionCard,
}

impl MessageKind {
    /// The name used in `profiles.yaml` and in previews.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Markdown => "markdown",
            Self::Card => "card",
            Self::ActionCard => "action_card",
        }
    }
}

/// Who a message @-mentions. One shape for every channel; each maps what it can
/// ([`Channel::unsupported_mentions`] says what it cannot).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mention {
    /// @所有人.
    #[serde(default)]
    pub all: bool,
    /// Members by the mobile number of their account (DingTalk, WeCom text).
    #[serde(default)]
    pub mobiles: Vec<String>,
    /// Members by user id (DingTalk userId, WeCom userid, Feishu open_id/user_id).
    #[serde(default)]
    pub user_ids: Vec<String>,
}

impl Mention {
    /// True when nobody is mentioned.
    pub fn is_empty(&self) -> bool {
        !self.all && self.mobiles.is_empty() && self.user_ids.is_empty()
    }
}

/// What to send, whatever the robot: the rendered text and what the channel builds around it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Text, markdown or card.
    pub kind: MessageKind,
    /// The title: DingTalk's markdown title, a Feishu card's header; WeCom shows none.
    pub title: &'a str,
    /// The rendered body.
    pub text: &'a str,
    /// Who to @.
    pub mention: &'a Mention,
    /// Firing or resolved: a Feishu card's header is red or green by it.
    pub status: Status,
    /// Alertmanager's external URL, for a card's button (empty: no button).
    pub link: &'a str,
    /// An action card's buttons, URLs checked (http or https) and ready to post.
    pub buttons: &'a [Button],
}

/// A button under a card: its label and where it leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// The label.
    pub title: String,
    /// The URL, as posted.
    pub url: String,
}

/// A limit on how many messages a robot takes in a sliding window of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Messages in any window.
    pub limit: u32,
    /// The window's length.
    pub length: Duration,
}

/// A minute, the window every robot counts in (Feishu also counts per second).
pub const MINUTE: Duration = Duration::from_secs(60);

impl Window {
    /// The window's share of a per-minute `margin`: all of it for a minute, in proportion
    /// for a shorter window (a second's gets a sixtieth), so the margin keeps its meaning, a
    /// share of the window, whatever its length.
    pub(crate) fn margin(&self, margin: Duration) -> Duration {
        if self.length >= MINUTE {
            margin
        } else {
            margin.mul_f64(self.length.as_secs_f64() / MINUTE.as_secs_f64())
        }
    }
}

impl Channel {
    /// Every channel, in the order documentation lists them.
    pub const ALL: [Self; 3] = [Self::DingTalk, Self::WeCom, Self::Feishu];

    /// The name in `profiles.yaml`, URL paths and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DingTalk => "dingtalk",
            Self::WeCom => "wecom",
            Self::Feishu => "feishu",
        }
    }

    /// The product's name, for messages to people.
    pub fn product(self) -> &'static str {
        match self {
            Self::DingTalk => "DingTalk",
            Self::WeCom => "WeCom",
            Self::Feishu => "Feishu",
        }
    }

    /// The product's Chinese name, for text inside messages.
    pub fn chinese_name(self) -> &'static str {
        match self {
            Self::DingTalk => "钉钉",
            Self::WeCom => "企业微信",
            Self::Feishu => "飞书",
        }
    }

    /// The channel a URL's host (or, behind a proxy or mirror, its path) belongs to;
    /// DingTalk when neither says.
    pub fn infer(url: &Url) -> Self {
        let host = url.host_str().unwrap_or_default();
        if host == dingtalk::HOST {
            Self::DingTalk
        } else if host == wecom::HOST {
            Self::WeCom
        } else if feishu::HOSTS.contains(&host) {
            Self::Feishu
        } else if url.path().starts_with(wecom::PATH) {
            Self::WeCom
        } else if url.path().starts_with(feishu::PATH_PREFIX) {
            Self::Feishu
        } else {
            Self::DingTalk
        }
    }

    /// The message types the robot takes; the first is the default.
    pub fn kinds(self) -> &'static [MessageKind] {
        match self {
            Self::DingTalk => &[
                MessageKind::Markdown,
                MessageKind::Text,
                MessageKind::ActionCard,
            ],
            Self::WeCom => &[MessageKind::Markdown, MessageKind::Text],
            Self::Feishu => &[MessageKind::Card, MessageKind::Text],
        }
    }

    /// The message type a profile gets when it names none.
    pub fn default_kind(self) -> MessageKind {
        self.kinds()[0]
    }

    /// The most bytes a message of `kind` may take, as [`Channel::measure`] counts them.
    pub fn cap(self, kind: MessageKind) -> usize {
        match self {
            Self::DingTalk => dingtalk::MAX_BODY_BYTES,
            Self::WeCom => wecom::max_content_bytes(kind),
            Self::Feishu => feishu::MAX_BODY_BYTES,
        }
    }

    /// The robot's rate limits, with its documented figures.
    pub fn windows(self) -> &'static [Window] {
        match self {
            Self::DingTalk => &dingtalk::WINDOWS,
            Self::WeCom => &wecom::WINDOWS,
            Self::Feishu => &feishu::WINDOWS,
        }
    }

    /// Messages a minute a profile's `rate_limit` defaults to.
    pub fn default_rate_limit(self) -> u32 {
        self.windows()
            .iter()
            .find(|w| w.length == MINUTE)
            .map_or(0, |w| w.limit)
    }

    /// What counts against [`Channel::cap`]: the body's bytes as posted (DingTalk, Feishu,
    /// with room for a signature), or the content's bytes (WeCom).
    pub fn measure(self, message: &Message) -> usize {
        match self {
            Self::DingTalk => dingtalk::body(message).len(),
            Self::WeCom => wecom::content(message).len(),
            Self::Feishu => feishu::body(message).len() + feishu::SIGNATURE_BYTES,
        }
    }

    /// The message's text as posted: with the mentions the channel writes into the text.
    pub fn text_as_posted<'a>(self, message: &Message<'a>) -> std::borrow::Cow<'a, str> {
        match self {
            Self::DingTalk => dingtalk::text(message),
            Self::WeCom => wecom::content(message),
            Self::Feishu => feishu::mentioned(message),
        }
    }

    /// The bytes posted, before signing ([`Robot::request`] signs).
    pub fn body(self, message: &Message) -> Vec<u8> {
        match self {
            Self::DingTalk => dingtalk::body(message),
            Self::WeCom => wecom::body(message),
            Self::Feishu => feishu::body(message),
        }
    }

    /// Exactly what `text` adds to [`Channel::measure`] when it is appended to the text of a
    /// message of `kind`: its length inside a JSON string, or (WeCom, which counts the
    /// content) its bytes; in a text message, with the mention tags it would defuse (a part
    /// appended after a line break cannot open one across the join).
    pub fn text_len(self, kind: MessageKind, text: &str) -> usize {
        let text = match (self, kind) {
            (Self::WeCom, MessageKind::Text) => defuse(text, wecom::MENTION_TAG),
            (Self::Feishu, MessageKind::Text) => defuse(text, feishu::MENTION_TAG),
            _ => std::borrow::Cow::Borrowed(text),
        };
        match self {
            Self::WeCom => text.len(),
            Self::DingTalk | Self::Feishu => json::escaped_len(&text),
        }
    }

    /// What separates two notifications merged into one message of `kind`: a rule, so each
    /// keeps its own headings, in marks the client draws.
    pub fn rule(self, kind: MessageKind) -> &'static str {
        match (self, kind) {
            (_, MessageKind::Text) => "\n\n====================\n\n",
            (Self::DingTalk, _) => dingtalk::RULE,
            (Self::WeCom, _) => wecom::RULE,
            (Self::Feishu, _) => feishu::RULE,
        }
    }

    /// What sets a closing note (how many alerts a cut left out) apart from the alerts in a
    /// message of `kind`, in marks the client draws.
    pub fn aside(self, kind: MessageKind) -> &'static str {
        match (self, kind) {
            (_, MessageKind::Text) => "\n\n",
            (Self::DingTalk, _) => dingtalk::ASIDE,
            (Self::WeCom, _) => wecom::ASIDE,
            (Self::Feishu, _) => feishu::ASIDE,
        }
    }

    /// Whether the robot takes a signing secret (WeCom's key in the URL is its secret).
    pub fn signs(self) -> bool {
        self != Self::WeCom
    }

    /// Whether a message of `kind` carries its title (DingTalk's markdown title, a Feishu
    /// card's header), so a longer title makes a longer message.
    pub fn shows_title(self, kind: MessageKind) -> bool {
        matches!(
            (self, kind),
            (
                Self::DingTalk,
                MessageKind::Markdown | MessageKind::ActionCard
            ) | (Self::Feishu, MessageKind::Card)
        )
    }

    /// Reads the robot's answer to a request it answered HTTP 2xx.
    pub fn read_answer(self, answer: &[u8]) -> Result<(), SendError> {
        match self {
            Self::DingTalk | Self::WeCom => errcode_answer(self, answer),
            Self::Feishu => feishu::read_answer(answer),
        }
    }

    /// Whether and how to try again after the robot refused with `code`.
    pub fn retry(self, code: i64) -> Retry {
        match self {
            Self::DingTalk => dingtalk::retry(code),
            Self::WeCom => wecom::retry(code),
            Self::Feishu => feishu::retry(code),
        }
    }

    /// A bounded metric label for a refusal's `code`: known codes as themselves.
    pub fn code_label(self, code: i64) -> &'static str {
        match self {
            Self::DingTalk => dingtalk::code_label(code),
            Self::WeCom => wecom::code_label(code),
            Self::Feishu => feishu::code_label(code),
        }
    }

    /// How long the robot is left alone after it answered a frequency code: DingTalk
    /// throttles for minutes (`throttle_penalty`); WeCom and Feishu count per minute, so a
    /// minute (or less, when `throttle_penalty` is shorter) is enough.
    pub fn throttle_penalty(self, configured: Duration) -> Duration {
        match self {
            Self::DingTalk => configured,
            Self::WeCom | Self::Feishu => configured.min(MINUTE),
        }
    }

    /// Mentions a message of `kind` cannot carry on this channel, said for a person.
    pub fn unsupported_mentions(self, kind: MessageKind, mention: &Mention) -> Vec<String> {
        let mut problems = Vec::new();
        let mut refuse = |what: &str| {
            problems.push(format!(
                "{} {} messages cannot mention {what}; it is left out",
                self.product(),
                kind.as_str()
            ));
        };
        match (self, kind) {
            (Self::DingTalk, MessageKind::ActionCard) => {
                // DingTalk notifies mentioned members of text and markdown messages only.
                if mention.all {
                    refuse("everyone (mention.all)");
                }
                if !mention.mobiles.is_empty() || !mention.user_ids.is_empty() {
                    refuse("anyone (mention.mobiles, mention.user_ids)");
                }
            }
            (Self::WeCom, MessageKind::Markdown) => {
                if mention.all {
                    refuse("everyone (mention.all)");
                }
                if !mention.mobiles.is_empty() {
                    refuse("by mobile number (mention.mobiles; use user_ids)");
                }
            }
            (Self::Feishu, _) if !mention.mobiles.is_empty() => {
                refuse("by mobile number (mention.mobiles; use user_ids with open_ids)");
            }
            _ => {}
        }
        problems
    }

    /// The robot's own names for an answer's code and message fields, for the JSON answer
    /// to Alertmanager.
    pub fn answer_fields(self) -> (&'static str, &'static str) {
        match self {
            Self::DingTalk | Self::WeCom => ("errcode", "errmsg"),
            Self::Feishu => ("code", "msg"),
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// DingTalk's and WeCom's answer.
#[derive(Debug, Deserialize)]
struct Errcode {
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

fn errcode_answer(channel: Channel, answer: &[u8]) -> Result<(), SendError> {
    let reply: Errcode = serde_json::from_slice(answer)
        .map_err(|e| SendError::BadResponse(channel, e.to_string()))?;
    match reply.errcode {
        0 => Ok(()),
        code => Err(SendError::Api {
            channel,
            code,
            message: reply.errmsg,
        }),
    }
}

/// At least the length of `text` inside a JSON string: each byte that JSON escapes (`"`,
/// `\`, control characters) is counted as the longest escape, six bytes (`\u001f`). One
/// branch-free pass, so it is cheap next to serializing.
pub fn json_len_bound(text: &str) -> usize {
    text.len() + 5 * count_bytes(text, json::escaped)
}

/// How many bytes of `text` are `which`: counted a chunk at a time, so the comparisons run
/// sixteen or more abreast (a byte at a time, counting a message's `<` was a twentieth of a
/// 10-alert compose).
pub(crate) fn count_bytes(text: &str, which: impl Fn(u8) -> bool) -> usize {
    text.as_bytes()
        .chunks(128)
        .map(|chunk| {
            // At most 128 in a chunk: a u8 holds the count.
            let count: u8 = chunk.iter().map(|&b| u8::from(which(b))).sum();
            usize::from(count)
        })
        .sum()
}

/// `text` with each `<` that opens `tag` (compared without case) written as the full-width
/// `＜`: in a plain-text message a label holding `<@id>` (WeCom) or `<at user_id="all">`
/// (Feishu) would mention people; the profile's own mentions are added after this.
pub(crate) fn defuse<'a>(text: &'a str, tag: &str) -> std::borrow::Cow<'a, str> {
    let opens = |at: usize| {
        text.as_bytes()
            .get(at + 1..at + 1 + tag.len())
            .is_some_and(|next| next.eq_ignore_ascii_case(tag.as_bytes()))
    };
    let found: Vec<usize> = text
        .match_indices('<')
        .map(|(at, _)| at)
        .filter(|&at| opens(at))
        .collect();
    if found.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 2 * found.len());
    let mut start = 0;
    for at in found {
        out.push_str(&text[start..at]);
        out.push('＜');
        start = at + 1;
    }
    out.push_str(&text[start..]);
    std::borrow::Cow::Owned(out)
}

/// The `@` words `words` that `text` lacks, appended after a blank line (mentions a robot
/// notifies only when the text names them).
pub(crate) fn with_missing<'a>(
    text: impl Into<std::borrow::Cow<'a, str>>,
    words: impl IntoIterator<Item = String>,
    separator: &str,
) -> std::borrow::Cow<'a, str> {
    let text = text.into();
    let missing: Vec<String> = words
        .into_iter()
        .filter(|word| !text.contains(word.as_str()))
        .collect();
    if missing.is_empty() {
        text
    } else {
        std::borrow::Cow::Owned(format!("{text}\n\n{}", missing.join(separator)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_is_inferred_from_the_host_then_the_path_else_dingtalk() {
        let channel = |url: &str| Channel::infer(&Url::parse(url).unwrap());
        assert_eq!(
            channel("https://oapi.dingtalk.com/robot/send?access_token=a"),
            Channel::DingTalk
        );
        assert_eq!(
            channel("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"),
            Channel::WeCom
        );
        assert_eq!(
            channel("https://open.feishu.cn/open-apis/bot/v2/hook/t"),
            Channel::Feishu
        );
        assert_eq!(
            channel("https://open.larksuite.com/open-apis/bot/v2/hook/t"),
            Channel::Feishu
        );
        assert_eq!(
            channel("http://127.0.0.1:9/cgi-bin/webhook/send?key=k"),
            Channel::WeCom
        );
        assert_eq!(
            channel("http://proxy:8080/open-apis/bot/v2/hook/t"),
            Channel::Feishu
        );
        assert_eq!(
            channel("http://127.0.0.1:9/robot/send?access_token=a"),
            Channel::DingTalk
        );
        // The host decides before the path.
        assert_eq!(
            channel("https://oapi.dingtalk.com/open-apis/bot/v2/hook/t"),
            Channel::DingTalk
        );
        assert_eq!(
            channel("https://open.feishu.cn/cgi-bin/webhook/send?key=k"),
            Channel::Feishu
        );
    }

    #[test]
    fn each_channel_states_its_limits() {
        assert_eq!(Channel::DingTalk.cap(MessageKind::Markdown), 20_000);
        assert_eq!(Channel::WeCom.cap(MessageKind::Text), 2048);
        assert_eq!(Channel::WeCom.cap(MessageKind::Markdown), 4096);
        assert_eq!(Channel::DingTalk.default_rate_limit(), 20);
        assert_eq!(Channel::WeCom.default_rate_limit(), 20);
        assert_eq!(Channel::Feishu.default_rate_limit(), 100);
        assert_eq!(Channel::Feishu.windows().len(), 2);
        assert_eq!(Channel::Feishu.default_kind(), MessageKind::Card);
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
    fn a_label_in_a_text_message_cannot_open_a_mention_tag() {
        assert_eq!(defuse("a <@bob> <x", "@"), "a ＜@bob> <x");
        assert_eq!(
            defuse("<AT user_id=\"all\"></at> <a", "at"),
            "＜AT user_id=\"all\"></at> <a"
        );
        assert!(matches!(
            defuse("plain", "at"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn mentions_a_channel_cannot_carry_are_named() {
        let mention = Mention {
            all: true,
            mobiles: vec!["138".into()],
            user_ids: vec!["u".into()],
        };
        assert!(
            Channel::DingTalk
                .unsupported_mentions(MessageKind::Markdown, &mention)
                .is_empty()
        );
        assert!(
            Channel::WeCom
                .unsupported_mentions(MessageKind::Text, &mention)
                .is_empty()
        );
        assert_eq!(
            Channel::WeCom
                .unsupported_mentions(MessageKind::Markdown, &mention)
                .len(),
            2
        );
        assert_eq!(
            Channel::Feishu
                .unsupported_mentions(MessageKind::Card, &mention)
                .len(),
            1
        );
    }
}
