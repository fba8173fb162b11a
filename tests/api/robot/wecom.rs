//! The WeCom (企业微信) group robot's checks. Facts from WeCom's 群机器人配置说明
//! (developer.work.weixin.qq.com/document/path/91770): `POST /cgi-bin/webhook/send?key=KEY`
//! with no signing (the key is the secret); `msgtype` `text` with `text.content` of at most
//! 2048 bytes of UTF-8 and optional `mentioned_list` (user ids, `"@all"`) and
//! `mentioned_mobile_list`; `markdown` with `markdown.content` of at most 4096 bytes, mentions
//! only as `<@userid>` inside the content; at most 20 messages a minute per robot (also in
//! Tencent Cloud Observability's WeCom alarm guide). Answers `{"errcode","errmsg"}`.
//!
//! Codes, as the real robot answers them (errmsgs seen in public clients' logs and tests):
//! 93000 `invalid webhook url` (unknown key), 45009 `api freq out of limit`, 40058
//! `markdown.content exceed max length 4096. invalid Request Parameter`, 40008 `invalid
//! message type`, 44004 `empty content`, 47001 `data format error` (WeCom's global code for a
//! body that is not JSON).
//!
//! Choices where the docs are silent: a missing key is 93000 like an unknown one; a
//! non-JSON content type is 47001; blank content (only whitespace) is 44004 like empty; a
//! field of the wrong type (content not a string, a mention list not an array of strings)
//! is 40058; `image`, `news`, `file`, `template_card` and `markdown_v2` exist but alertrelay
//! never sends them, so the double answers 40008 for them as for any other type. Fields the
//! robot does not read (say `mentioned_list` in a markdown message) are ignored, as WeCom
//! ignores them: `Received::mentioned_list` reads only a text message's list, so a test
//! cannot mistake an ignored list for a mention.

use serde_json::Value;

use super::{Accepted, Inner, Refusal, Request, json_content_type};

/// Messages a minute per WeCom key before errcode 45009.
pub const WECOM_RATE_LIMIT: usize = 20;

/// The most bytes (UTF-8) of `text.content`; over it → errcode 40058.
pub const WECOM_TEXT_CAP: usize = 2048;

/// The most bytes (UTF-8) of `markdown.content`; over it → errcode 40058.
pub const WECOM_MARKDOWN_CAP: usize = 4096;

/// WeCom's answer over the rate limit.
pub(super) const THROTTLED: Refusal = (45009, "api freq out of limit");

const INVALID_URL: Refusal = (93000, "invalid webhook url");
const NOT_JSON: Refusal = (47001, "data format error");
const INVALID_TYPE: Refusal = (40008, "invalid message type");
const EMPTY: Refusal = (44004, "empty content");
const INVALID_PARAMETER: Refusal = (40058, "invalid Request Parameter");
const TEXT_TOO_LONG: Refusal = (
    40058,
    "text.content exceed max length 2048. invalid Request Parameter",
);
const MARKDOWN_TOO_LONG: Refusal = (
    40058,
    "markdown.content exceed max length 4096. invalid Request Parameter",
);

pub(super) fn check(inner: &Inner, request: &Request) -> Result<Accepted, Refusal> {
    let token = request
        .query
        .get("key")
        .filter(|key| inner.wecom_keys.contains(*key))
        .ok_or(INVALID_URL)?
        .clone();
    if !json_content_type(request.headers) {
        return Err(NOT_JSON);
    }
    let body: Value = serde_json::from_slice(request.body).map_err(|_| NOT_JSON)?;
    validate_shape(&body)?;
    Ok(Accepted { token, body })
}

fn validate_shape(body: &Value) -> Result<(), Refusal> {
    let (section, cap, too_long) = match body["msgtype"].as_str() {
        Some("text") => (&body["text"], WECOM_TEXT_CAP, TEXT_TOO_LONG),
        Some("markdown") => (&body["markdown"], WECOM_MARKDOWN_CAP, MARKDOWN_TOO_LONG),
        _ => return Err(INVALID_TYPE),
    };
    let content = match &section["content"] {
        Value::Null => return Err(EMPTY),
        Value::String(content) => content,
        _ => return Err(INVALID_PARAMETER),
    };
    if content.trim().is_empty() {
        return Err(EMPTY);
    }
    if content.len() > cap {
        return Err(too_long);
    }
    if body["msgtype"] == "text" {
        let strings =
            |v: &Value| v.is_null() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
        if !strings(&section["mentioned_list"]) || !strings(&section["mentioned_mobile_list"]) {
            return Err(INVALID_PARAMETER);
        }
    }
    Ok(())
}
