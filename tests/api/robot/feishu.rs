//! The Feishu/Lark custom bot's checks. Facts from Feishu's 自定义机器人使用指南 (Custom bot
//! usage guide, open.feishu.cn/document/client-docs/bot-v3/add-custom-bot, also served as
//! open.larkoffice.com/document/ukTMukTMukTM/ucTM5YjL3ETO24yNxkjN):
//! - `POST /open-apis/bot/v2/hook/TOKEN`; body `{"msg_type":"text","content":{"text":…}}` or
//!   `{"msg_type":"interactive","card":{…}}` (the card an object at the top level, not a string).
//! - Signing (optional per bot): `timestamp` (seconds, a string in the guide's examples) and
//!   `sign` in the JSON body; sign = base64(HMAC-SHA256 keyed by `timestamp + "\n" + secret`
//!   over empty bytes); the timestamp within one hour (3600 s) of now; else 19021 `sign match
//!   fail or timestamp is not within one hour from current time`.
//! - "单租户单机器人 100 次/分钟，5 次/秒", over it 11232; the frequency-control page (频控策略)
//!   says that with two windows reaching either limit throttles.
//! - "请求体的数据大小不能超过 20 KB"; a malformed body is `{"code":9499,"msg":"Bad Request",
//!   "data":{}}`.
//! - Answers `code`/`msg`; `StatusCode`/`StatusMessage` are the older fields, kept in today's
//!   success answer for old clients (older bots answered only them:
//!   `{"Extra":null,"StatusCode":0,"StatusMessage":"success"}`). The double answers one form
//!   at a time, `code`/`msg` unless `feishu_legacy_answers`, so a client must read either.
//! - An unknown token is 19001 `param invalid: incoming webhook access token invalid` (the
//!   answer quoted in public issues, e.g. sansan0/TrendRadar#278).
//! - Cards (卡片 JSON 1.0): `header.title` is `{tag: "plain_text", content}`, `header.template`
//!   one of 13 colours; elements `div` (`text`/`fields` of `plain_text`/`lark_md`),
//!   `markdown`, `hr`, `note`, `img`, `action` with `button`s (`text`, `url`, `type`).
//!
//! Choices where the docs are silent: "20 KB" is read as 20000 bytes, the smaller reading, so
//! a client that keeps under `FEISHU_BODY_CAP` is under Feishu's cap whichever it means; a
//! body over it, a non-JSON content type, an unknown `msg_type` and any card shape outside the
//! list above are 9499; a numeric `timestamp` is 19021 (the guide sends a string); buttons
//! must carry a `url` (a custom bot's card cannot call back, only open links); the other real
//! `msg_type`s (`post`, `image`, `share_chat`) are refused, as alertrelay never sends them.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{Accepted, Inner, Refusal, Request, json_content_type};

/// Messages a second per Feishu token before code 11232.
pub const FEISHU_PER_SECOND: usize = 5;

/// Messages a minute per Feishu token before code 11232 (both windows hold at once).
pub const FEISHU_PER_MINUTE: usize = 100;

/// The largest Feishu request body in bytes, `timestamp` and `sign` included: "20 KB" read as
/// 20000 (see the module doc).
pub const FEISHU_BODY_CAP: usize = 20_000;

/// Feishu's answer over either rate limit.
pub(super) const THROTTLED: Refusal = (11232, "frequency limited");

const INVALID_TOKEN: Refusal = (
    19001,
    "param invalid: incoming webhook access token invalid",
);
const SIGN_FAIL: Refusal = (
    19021,
    "sign match fail or timestamp is not within one hour from current time",
);
const BAD_REQUEST: i64 = 9499;

/// Header colours a card may take.
const TEMPLATES: [&str; 13] = [
    "blue",
    "wathet",
    "turquoise",
    "green",
    "yellow",
    "orange",
    "red",
    "carmine",
    "violet",
    "purple",
    "indigo",
    "grey",
    "default",
];

/// Button styles of card JSON 1.0 and the newer ones Feishu also takes.
const BUTTON_TYPES: [&str; 9] = [
    "default",
    "primary",
    "danger",
    "text",
    "primary_text",
    "danger_text",
    "primary_filled",
    "danger_filled",
    "laser",
];

pub(super) fn check(inner: &Inner, request: &Request) -> Result<Accepted, Refusal> {
    let token = request.path_token.unwrap_or_default();
    let secret = inner.feishu_tokens.get(token).ok_or(INVALID_TOKEN)?;
    if !json_content_type(request.headers) {
        return Err((
            BAD_REQUEST,
            "Bad Request: content-type must be application/json",
        ));
    }
    if request.body.len() > FEISHU_BODY_CAP {
        return Err((BAD_REQUEST, "Bad Request: request body exceeds 20 KB"));
    }
    let body: Value = serde_json::from_slice(request.body)
        .map_err(|_| (BAD_REQUEST, "Bad Request: invalid json"))?;
    if let Some(secret) = secret {
        check_sign(&body, secret)?;
    }
    validate_shape(&body).map_err(|m| (BAD_REQUEST, m))?;
    Ok(Accepted {
        token: token.to_owned(),
        body,
    })
}

/// Feishu's signature, computed here independently of alertrelay's code.
pub(super) fn expected_sign(secret: &str, timestamp: &str) -> String {
    let key = format!("{timestamp}\n{secret}");
    let mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn check_sign(body: &Value, secret: &str) -> Result<(), Refusal> {
    let (Some(timestamp), Some(sign)) = (body["timestamp"].as_str(), body["sign"].as_str()) else {
        return Err(SIGN_FAIL);
    };
    let seconds: i64 = timestamp.parse().map_err(|_| SIGN_FAIL)?;
    if (chrono::Utc::now().timestamp() - seconds).abs() > 3600 {
        return Err(SIGN_FAIL);
    }
    if sign != expected_sign(secret, timestamp) {
        return Err(SIGN_FAIL);
    }
    Ok(())
}

fn non_empty(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.trim().is_empty())
}

fn validate_shape(body: &Value) -> Result<(), &'static str> {
    match body["msg_type"].as_str() {
        Some("text") if non_empty(&body["content"]["text"]) => Ok(()),
        Some("text") => Err("Bad Request: content.text missing"),
        Some("interactive") => validate_card(&body["card"]),
        _ => Err("Bad Request: unknown msg_type"),
    }
}

/// A `plain_text` or `lark_md` text object.
fn text_object(v: &Value) -> bool {
    matches!(v["tag"].as_str(), Some("plain_text" | "lark_md")) && v["content"].is_string()
}

fn validate_card(card: &Value) -> Result<(), &'static str> {
    let card = card
        .as_object()
        .ok_or("Bad Request: card must be an object")?;
    if let Some(header) = card.get("header") {
        let title = &header["title"];
        if title["tag"] != "plain_text" || !non_empty(&title["content"]) {
            return Err("Bad Request: header.title must be plain_text with content");
        }
        match header.get("template") {
            None => {}
            Some(Value::String(colour)) if TEMPLATES.contains(&colour.as_str()) => {}
            Some(_) => return Err("Bad Request: unknown header.template"),
        }
    }
    let elements = card
        .get("elements")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
        .ok_or("Bad Request: card.elements missing")?;
    if elements.iter().all(valid_element) {
        Ok(())
    } else {
        Err("Bad Request: invalid card element")
    }
}

fn valid_element(element: &Value) -> bool {
    let non_empty_array = |v: &Value| v.as_array().filter(|a| !a.is_empty()).cloned();
    match element["tag"].as_str() {
        Some("div") => {
            let text = element.get("text").map(text_object);
            let fields = element.get("fields").map(|fields| {
                non_empty_array(fields).is_some_and(|f| f.iter().all(|f| text_object(&f["text"])))
            });
            (text.is_some() || fields.is_some()) && text != Some(false) && fields != Some(false)
        }
        Some("markdown") => element["content"].is_string(),
        Some("hr") => true,
        Some("img") => non_empty(&element["img_key"]),
        Some("note") => non_empty_array(&element["elements"])
            .is_some_and(|e| e.iter().all(|e| text_object(e) || e["tag"] == "img")),
        Some("action") => {
            non_empty_array(&element["actions"]).is_some_and(|a| a.iter().all(valid_button))
        }
        _ => false,
    }
}

fn valid_button(button: &Value) -> bool {
    let kind_ok = match button.get("type") {
        None => true,
        Some(kind) => kind.as_str().is_some_and(|k| BUTTON_TYPES.contains(&k)),
    };
    button["tag"] == "button"
        && text_object(&button["text"])
        && non_empty(&button["url"])
        && kind_ok
}
