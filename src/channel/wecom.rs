//! The WeCom (企业微信) group-robot protocol: `msgtype` text or markdown, no signing (the
//! `key` in the URL is the secret), the `errcode` of its answer, and its limits: the content
//! of a text message is at most 2048 bytes and of a markdown message 4096; 20 messages a
//! minute per robot, past which it answers 45009.

use std::borrow::Cow;

use url::Url;

use super::{MINUTE, Message, MessageKind, Retry, Window, defuse, json, query_token, with_missing};

/// The host of WeCom's webhook API.
pub(super) const HOST: &str = "qyapi.weixin.qq.com";

/// The path of WeCom's webhook API.
pub(super) const PATH: &str = "/cgi-bin/webhook/send";

/// The most bytes of `text.content`.
pub const MAX_TEXT_BYTES: usize = 2048;

/// The most bytes of `markdown.content`.
pub const MAX_MARKDOWN_BYTES: usize = 4096;

/// 20 messages a minute per robot (errcode 45009 past it).
pub(super) const WINDOWS: [Window; 1] = [Window {
    limit: 20,
    length: MINUTE,
}];

/// The content cap of a message type.
pub(super) fn max_content_bytes(kind: MessageKind) -> usize {
    match kind {
        MessageKind::Text => MAX_TEXT_BYTES,
        MessageKind::Markdown | MessageKind::Card | MessageKind::ActionCard => MAX_MARKDOWN_BYTES,
    }
}

/// The robot's `key`, which identifies it at WeCom.
pub(super) fn token(url: &Url) -> Result<String, String> {
    query_token(url, "key")
        .ok_or_else(|| "has no key query parameter (WeCom robots need one)".into())
}

/// What opens a mention in a WeCom text (`<@userid>`), defused in a label's text.
pub(super) const MENTION_TAG: &str = "@";

/// The content as posted. A markdown message mentions only as `<@userid>` in its text, so
/// those the template left out are appended; text messages mention through their lists, and
/// a `<@` in their text (a label's) is defused, since WeCom reads it there too.
pub(super) fn content<'a>(message: &Message<'a>) -> Cow<'a, str> {
    match message.kind {
        MessageKind::Text => defuse(message.text, MENTION_TAG),
        MessageKind::Markdown | MessageKind::Card | MessageKind::ActionCard => with_missing(
            message.text,
            message.mention.user_ids.iter().map(|id| format!("<@{id}>")),
            " ",
        ),
    }
}

/// Between merged notifications in a markdown message, and before a closing note: a quote (its markdown draws no rule, so merged parts get a line of box-drawing characters).
pub(super) const RULE: &str = "\n\n━━━━━━━━━━━━\n\n";
/// See [`RULE`].
pub(super) const ASIDE: &str = "\n\n> ";

/// The exact bytes posted.
pub(super) fn body(message: &Message) -> Vec<u8> {
    let content = content(message);
    let mut out = Vec::with_capacity(content.len() + content.len() / 4 + 128);
    match message.kind {
        MessageKind::Text => {
            let mention = message.mention;
            let mut users = mention.user_ids.clone();
            if mention.all {
                users.push("@all".into());
            }
            out.extend_from_slice(b"{\"msgtype\":\"text\",\"text\":{\"content\":");
            json::string(&mut out, &content);
            out.extend_from_slice(b",\"mentioned_list\":");
            json::strings(&mut out, &users);
            out.extend_from_slice(b",\"mentioned_mobile_list\":");
            json::strings(&mut out, &mention.mobiles);
        }
        MessageKind::Markdown | MessageKind::Card | MessageKind::ActionCard => {
            out.extend_from_slice(b"{\"msgtype\":\"markdown\",\"markdown\":{\"content\":");
            json::string(&mut out, &content);
        }
    }
    out.extend_from_slice(b"}}");
    out
}

/// -1 (system busy) may pass; 45009 is the frequency limit; any other (93000 invalid webhook
/// URL, 40058 content too long, 40008 bad message type, 44004 empty content, ...) fails the
/// same way again.
pub(super) fn retry(code: i64) -> Retry {
    match code {
        -1 => Retry::Retryable,
        45_009 => Retry::Throttled,
        _ => Retry::Permanent,
    }
}

/// Known errcodes as themselves, the rest bounded.
pub(super) fn code_label(code: i64) -> &'static str {
    match code {
        -1 => "-1",
        45_009 => "45009",
        93_000 => "93000",
        40_058 => "40058",
        40_008 => "40008",
        44_004 => "44004",
        40_035 => "40035",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::alert::Status;
    use crate::channel::{Channel, Mention};

    fn message<'a>(kind: MessageKind, text: &'a str, mention: &'a Mention) -> Message<'a> {
        Message {
            kind,
            title: "title",
            text,
            mention,
            status: Status::Firing,
            link: "",
            buttons: &[],
        }
    }

    #[test]
    fn text_messages_mention_through_their_lists() {
        let mention = Mention {
            all: true,
            mobiles: vec!["13800001111".into()],
            user_ids: vec!["zhangsan".into()],
        };
        let posted = body(&message(MessageKind::Text, "故障 \"x\"\n", &mention));
        let expected = json!({"msgtype": "text", "text": {
            "content": "故障 \"x\"\n",
            "mentioned_list": ["zhangsan", "@all"],
            "mentioned_mobile_list": ["13800001111"],
        }});
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&posted).unwrap(),
            expected
        );
    }

    #[test]
    fn markdown_messages_mention_user_ids_in_the_content() {
        let mention = Mention {
            all: false,
            mobiles: vec![],
            user_ids: vec!["zhangsan".into(), "lisi".into()],
        };
        let posted = body(&message(
            MessageKind::Markdown,
            "**故障** <@lisi>",
            &mention,
        ));
        let expected = json!({"msgtype": "markdown", "markdown": {
            "content": "**故障** <@lisi>\n\n<@zhangsan>",
        }});
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&posted).unwrap(),
            expected
        );
    }

    #[test]
    fn the_cap_counts_the_content_bytes_with_its_mentions() {
        let mention = Mention {
            user_ids: vec!["u1".into()],
            ..Mention::default()
        };
        let text = "故\n".repeat(10);
        let measured = Channel::WeCom.measure(&message(MessageKind::Markdown, &text, &mention));
        assert_eq!(measured, text.len() + "\n\n<@u1>".len());
        assert_eq!(
            Channel::WeCom.text_len(MessageKind::Markdown, &text),
            text.len()
        );
        assert_eq!(
            Channel::WeCom.text_len(MessageKind::Text, "<@a>"),
            "＜@a>".len()
        );
    }

    #[test]
    fn errcodes_are_classified_for_retrying() {
        let channel = Channel::WeCom;
        assert_eq!(channel.retry(45_009), Retry::Throttled);
        assert_eq!(channel.retry(-1), Retry::Retryable);
        assert_eq!(channel.retry(93_000), Retry::Permanent);
        assert_eq!(channel.retry(40_058), Retry::Permanent);
        assert_eq!(channel.code_label(93_000), "93000");
        assert_eq!(channel.code_label(12_345), "other");
    }
}
