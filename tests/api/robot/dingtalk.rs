//! The DingTalk robot's checks: the access token, the signature exactly as DingTalk computes
//! it, the JSON content type, the 20000-byte cap, the message shape and 20 messages a minute
//! per token.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::time::Instant;

use super::{Inner, Received};

/// DingTalk's signature, computed here independently of alertrelay's code.
fn expected_sign(secret: &str, timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// DingTalk's errcode and errmsg for a refused request.
pub(super) type Refusal = (i64, &'static str);

pub(super) fn check(
    inner: &mut Inner,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(), Refusal> {
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
    let json_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_type {
        return Err((300005, "content-type must be application/json"));
    }
    if body.len() > 20_000 {
        return Err((460101, "message too long, exceed 20000 bytes"));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|_| (300005, "param error: invalid json"))?;
    validate_shape(&value).map_err(|m| (300005, m))?;
    let rate_limit = inner.rate_limit;
    let window = inner.sent.entry(token.clone()).or_default();
    let now = Instant::now();
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
    {
        window.pop_front();
    }
    if rate_limit.is_some_and(|limit| window.len() >= limit) {
        return Err((130101, "send too fast, exceed 20 times per minute"));
    }
    window.push_back(now);
    inner.received.push(Received {
        token,
        body: value,
        at: now,
    });
    Ok(())
}

fn validate_shape(value: &Value) -> Result<(), &'static str> {
    let non_empty = |v: &Value| v.as_str().is_some_and(|s| !s.trim().is_empty());
    match value["msgtype"].as_str() {
        Some("text") if non_empty(&value["text"]["content"]) => {}
        Some("markdown")
            if non_empty(&value["markdown"]["title"]) && non_empty(&value["markdown"]["text"]) => {}
        Some("text" | "markdown") => return Err("param error: missing content"),
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
