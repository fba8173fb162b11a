//! A client for the doubles' own tests: posts straight to a double (no alertrelay) and reads
//! its answer.

use serde_json::Value;

/// Posts `body` as JSON; the answer's JSON.
pub async fn post(url: &str, body: &Value) -> Value {
    post_raw(url, "application/json", body.to_string()).await.1
}

/// Posts `body` with this content type; the HTTP status and the answer's JSON (`Null` when
/// the body is not JSON).
pub async fn post_raw(
    url: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A string of exactly `bytes` UTF-8 bytes, mostly three-byte characters, so a cap counted
/// in characters instead of bytes shows.
pub fn bytes_of_text(bytes: usize) -> String {
    let mut text = "告".repeat(bytes / 3);
    text.push_str(&"x".repeat(bytes % 3));
    assert_eq!(text.len(), bytes);
    text
}
