//! The DingTalk robot's checks: the access token, the signature exactly as DingTalk computes
//! it (query `timestamp` in milliseconds within an hour, `sign` = base64 HMAC-SHA256 keyed by
//! the secret over `timestamp + "\n" + secret`), the JSON content type, the 20000-byte body
//! cap, the `text`/`markdown` shape with its `at` block, the `actionCard` shape (title, text,
//! and `singleTitle`+`singleURL` or `btns` of `title`+`actionURL`, `btnOrientation` "0" or
//! "1", URLs of a scheme a client opens), and 20 messages a minute per token.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{Accepted, Inner, Refusal, Request, json_content_type};

/// Messages a minute per DingTalk token before errcode 130101.
pub const RATE_LIMIT: usize = 20;

/// The largest DingTalk request body, in bytes; over it → errcode 460101.
pub const DINGTALK_BODY_CAP: usize = 20_000;

/// DingTalk's answer over the rate limit.
pub(super) const THROTTLED: Refusal = (130101, "send too fast, exceed 20 times per minute");

/// DingTalk's signature, computed here independently of alertrelay's code.
fn expected_sign(secret: &str, timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub(super) fn check(inner: &Inner, request: &Request) -> Result<Accepted, Refusal> {
    let query = request.query;
    let token = query
        .get("access_token")
        .filter(|t| !t.is_empty())
        .ok_or((300001, "token is not exist"))?
        .clone();
    if let Some(secret) = inner.secrets.get(&token) {
        let (Some(timestamp), Some(sign)) = (query.get("timestamp"), query.get("sign")) else {
            return Err((310000, "sign not match, more: [sign missing]"));
        };
        let millis: i64 = timestamp
            .parse()
            .map_err(|_| (310000, "invalid timestamp"))?;
        let now = chrono::Utc::now().timestamp_millis();
        if (now - millis).abs() > 3_600_000 {
            return Err((310000, "invalid timestamp"));
        }
        if *sign != expected_sign(secret, timestamp) {
            return Err((310000, "sign not match"));
        }
    }
    if !json_content_type(request.headers) {
        return Err((300005, "content-type must be application/json"));
    }
    if request.body.len() > DINGTALK_BODY_CAP {
        return Err((460101, "message too long, exceed 20000 bytes"));
    }
    let body: Value =
        serde_json::from_slice(request.body).map_err(|_| (300005, "param error: invalid json"))?;
    validate_shape(&body).map_err(|m| (300005, m))?;
    Ok(Accepted { token, body })
}

/// DingTalk's action card: a title and a markdown text, and either one button
/// (`singleTitle`, `singleURL`) or `btns`, each with a `title` and an `actionURL`.
fn validate_action_card(card: &Value) -> Result<(), &'static str> {
    let non_empty = |v: &Value| v.as_str().is_some_and(|s| !s.trim().is_empty());
    let link = |v: &Value| {
        v.as_str().is_some_and(|url| {
            [
                "http://",
                "https://",
                "dingtalk://dingtalkclient/page/link?url=",
            ]
            .iter()
            .any(|scheme| url.starts_with(scheme))
                && !url.contains(char::is_whitespace)
        })
    };
    if !non_empty(&card["title"]) || !non_empty(&card["text"]) {
        return Err("param error: actionCard needs title and text");
    }
    match (&card["btns"], &card["singleTitle"]) {
        (Value::Null, title) if non_empty(title) && link(&card["singleURL"]) => Ok(()),
        (Value::Array(buttons), Value::Null) if !buttons.is_empty() => {
            let orientation = &card["btnOrientation"];
            if !(orientation.is_null() || orientation == "0" || orientation == "1") {
                return Err("param error: btnOrientation must be \"0\" or \"1\"");
            }
            if buttons
                .iter()
                .all(|b| non_empty(&b["title"]) && link(&b["actionURL"]))
            {
                Ok(())
            } else {
                Err("param error: each btn needs title and actionURL")
            }
        }
        _ => Err("param error: actionCard needs singleTitle and singleURL, or btns"),
    }
}

fn validate_shape(value: &Value) -> Result<(), &'static str> {
    let non_empty = |v: &Value| v.as_str().is_some_and(|s| !s.trim().is_empty());
    match value["msgtype"].as_str() {
        Some("text") if non_empty(&value["text"]["content"]) => {}
        Some("markdown")
            if non_empty(&value["markdown"]["title"]) && non_empty(&value["markdown"]["text"]) => {}
        Some("text" | "markdown") => return Err("param error: missing content"),
        Some("actionCard") => return validate_action_card(&value["actionCard"]),
        _ => return Err("param error: unknown msgtype"),
    }
    let at = &value["at"];
    if !at.is_null() {
        let strings =
            |v: &Value| v.is_null() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
        if !strings(&at["atMobiles"])
            || !strings(&at["atUserIds"])
            || !(at["isAtAll"].is_null() || at["isAtAll"].is_boolean())
        {
            return Err("param error: bad at");
        }
    }
    Ok(())
}
