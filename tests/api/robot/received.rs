//! `Received`: a message the double accepted, of any protocol, with readers for what tests
//! look at (the text, the card's header and buttons, the mentions).

use serde_json::Value;
use tokio::time::Instant;

use super::Protocol;

/// A message the double accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The robot it reached.
    pub protocol: Protocol,
    /// DingTalk's access token, WeCom's key or Feishu's hook token.
    pub token: String,
    pub body: Value,
    /// When it was accepted (tokio's clock, so paused-clock tests see virtual time).
    pub at: Instant,
    /// `text()`, gathered once when accepted.
    text: String,
}

/// A button of a Feishu card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardButton {
    pub text: String,
    pub url: String,
    /// The button's `type` (`default`, `primary`, `danger`…), `None` when unset.
    pub kind: Option<String>,
}

impl Received {
    pub(super) fn new(protocol: Protocol, token: String, body: Value, at: Instant) -> Self {
        let text = gather_text(protocol, &body);
        Self {
            protocol,
            token,
            body,
            at,
            text,
        }
    }

    /// The message's content: DingTalk `markdown.text` or `text.content`; WeCom
    /// `markdown.content` or `text.content`; Feishu `content.text`, or for a card every text
    /// its body shows, in order, one per line: a `div`'s `text` and each of its `fields`, a
    /// `markdown` element's `content`, a `note`'s texts (the header and the buttons are not
    /// in it: `card_header_title`, `card_buttons`).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// DingTalk's and WeCom's `msgtype`, Feishu's `msg_type`.
    pub fn msgtype(&self) -> &str {
        let field = match self.protocol {
            Protocol::Feishu => "msg_type",
            Protocol::DingTalk | Protocol::WeCom => "msgtype",
        };
        self.body[field].as_str().unwrap_or_default()
    }

    /// A DingTalk action card's buttons as (title, URL): `btns`, or the single button.
    pub fn action_buttons(&self) -> Vec<(String, String)> {
        let card = &self.body["actionCard"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        match card["btns"].as_array() {
            Some(buttons) => buttons
                .iter()
                .map(|b| (text(&b["title"]), text(&b["actionURL"])))
                .collect(),
            None if card["singleURL"].is_string() => {
                vec![(text(&card["singleTitle"]), text(&card["singleURL"]))]
            }
            None => Vec::new(),
        }
    }

    /// A Feishu card's header title.
    pub fn card_header_title(&self) -> Option<&str> {
        self.card()?["header"]["title"]["content"].as_str()
    }

    /// A Feishu card's header colour (`template`: red, green…).
    pub fn card_header_template(&self) -> Option<&str> {
        self.card()?["header"]["template"].as_str()
    }

    /// Every button of a Feishu card's `action` elements, in order.
    pub fn card_buttons(&self) -> Vec<CardButton> {
        let Some(elements) = self.card().and_then(|c| c["elements"].as_array()) else {
            return Vec::new();
        };
        elements
            .iter()
            .filter(|e| e["tag"] == "action")
            .flat_map(|e| e["actions"].as_array().into_iter().flatten())
            .map(|b| CardButton {
                text: b["text"]["content"].as_str().unwrap_or_default().into(),
                url: b["url"].as_str().unwrap_or_default().into(),
                kind: b["type"].as_str().map(Into::into),
            })
            .collect()
    }

    /// A WeCom text message's `mentioned_list` (empty for markdown, which has none).
    pub fn mentioned_list(&self) -> Vec<&str> {
        self.wecom_text_list("mentioned_list")
    }

    /// A WeCom text message's `mentioned_mobile_list` (empty for markdown).
    pub fn mentioned_mobile_list(&self) -> Vec<&str> {
        self.wecom_text_list("mentioned_mobile_list")
    }

    /// The mentions written inside the content: WeCom's `<@userid>`; Feishu's
    /// `<at user_id="…">` (text) and `<at id=…>` or `<at email=…>` (card markdown), in order.
    /// Empty for DingTalk, whose mentions are the `at` block's lists.
    pub fn inline_mentions(&self) -> Vec<&str> {
        match self.protocol {
            Protocol::DingTalk => Vec::new(),
            Protocol::WeCom => self
                .text
                .split("<@")
                .skip(1)
                .filter_map(|rest| rest.split_once('>').map(|(id, _)| id))
                .collect(),
            Protocol::Feishu => self
                .text
                .split("<at ")
                .skip(1)
                .filter_map(|rest| rest.split_once('>').map(|(attributes, _)| attributes))
                .filter_map(at_target)
                .collect(),
        }
    }

    fn card(&self) -> Option<&Value> {
        let card = &self.body["card"];
        (self.protocol == Protocol::Feishu && card.is_object()).then_some(card)
    }

    fn wecom_text_list(&self, field: &str) -> Vec<&str> {
        if self.protocol != Protocol::WeCom || self.msgtype() != "text" {
            return Vec::new();
        }
        let list = self.body["text"][field].as_array();
        list.into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    }
}

/// The id (or email) an `<at …>` tag's attributes name.
fn at_target(attributes: &str) -> Option<&str> {
    ["user_id=", "id=", "email="].iter().find_map(|name| {
        let at = attributes.find(name)?;
        let value = &attributes[at + name.len()..];
        match value.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next(),
            None => value.split([' ', '/']).next(),
        }
    })
}

fn gather_text(protocol: Protocol, body: &Value) -> String {
    let first = |a: &Value, b: &Value| a.as_str().or(b.as_str()).unwrap_or_default().to_owned();
    match protocol {
        Protocol::DingTalk if body["msgtype"] == "actionCard" => {
            first(&body["actionCard"]["text"], &Value::Null)
        }
        Protocol::DingTalk => first(&body["markdown"]["text"], &body["text"]["content"]),
        Protocol::WeCom => first(&body["markdown"]["content"], &body["text"]["content"]),
        Protocol::Feishu if body["msg_type"] == "interactive" => card_text(&body["card"]),
        Protocol::Feishu => first(&body["content"]["text"], &Value::Null),
    }
}

fn card_text(card: &Value) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for element in card["elements"].as_array().into_iter().flatten() {
        match element["tag"].as_str() {
            Some("div") => {
                lines.extend(element["text"]["content"].as_str());
                let fields = element["fields"].as_array().into_iter().flatten();
                lines.extend(fields.filter_map(|f| f["text"]["content"].as_str()));
            }
            Some("markdown") => lines.extend(element["content"].as_str()),
            Some("note") => {
                let texts = element["elements"].as_array().into_iter().flatten();
                lines.extend(texts.filter_map(|t| t["content"].as_str()));
            }
            _ => {}
        }
    }
    lines.join("\n")
}
