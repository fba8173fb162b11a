//! A DingTalk robot double that speaks the real protocol: it checks the access token, the
//! signature exactly as DingTalk computes it, the message shape, the 20000-byte cap and the
//! 20-messages-a-minute limit, answers with DingTalk's errcodes, and records what it accepted.
//! Tests can script the next answers: any errcode, an HTTP status, or a hang; and make every
//! request arrive late by a random lag, as a loaded DingTalk counts messages later than they
//! were sent.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// A scripted answer for the next request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// HTTP 200 with this errcode and errmsg.
    Errcode(i64, &'static str),
    /// This HTTP status, empty body.
    Http(u16),
    /// Never answer.
    Hang,
    /// Answer after a delay, then process normally.
    Delay(Duration),
}

/// A message the double accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub token: String,
    pub body: Value,
    /// When it was accepted (tokio's clock, so paused-clock tests see virtual time).
    pub at: Instant,
}

impl Received {
    /// The markdown or text content.
    pub fn text(&self) -> &str {
        self.body["markdown"]["text"]
            .as_str()
            .or_else(|| self.body["text"]["content"].as_str())
            .unwrap_or_default()
    }

    pub fn msgtype(&self) -> &str {
        self.body["msgtype"].as_str().unwrap_or_default()
    }
}

struct Inner {
    /// Messages a minute per token before errcode 130101; `None` for no limit.
    rate_limit: Option<usize>,
    /// Signing secrets by token; a token absent here takes unsigned requests.
    secrets: HashMap<String, String>,
    script: VecDeque<Reply>,
    received: Vec<Received>,
    /// The errcode of every refused request.
    refusals: Vec<i64>,
    requests: usize,
    sent: HashMap<String, VecDeque<Instant>>,
    /// Each request is counted (and answered) after a random lag below this.
    arrival_lag: Option<Duration>,
}

#[derive(Clone)]
pub struct RobotDouble {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

pub const RATE_LIMIT: usize = 20;

impl Default for Inner {
    fn default() -> Self {
        Self {
            rate_limit: Some(RATE_LIMIT),
            secrets: HashMap::new(),
            script: VecDeque::new(),
            received: Vec::new(),
            refusals: Vec::new(),
            requests: 0,
            sent: HashMap::new(),
            arrival_lag: None,
        }
    }
}

impl RobotDouble {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .route("/robot/send", post(handle))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, inner }
    }

    /// The webhook URL of the robot with this token.
    pub fn url(&self, token: &str) -> String {
        format!("http://{}/robot/send?access_token={token}", self.addr)
    }

    /// Requires signed requests for `token`.
    pub fn require_signature(&self, token: &str, secret: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner.secrets.insert(token.into(), secret.into());
    }

    /// Lifts DingTalk's 20-a-minute limit, for tests that send many messages.
    pub fn unlimited(&self) {
        self.inner.lock().unwrap().rate_limit = None;
    }

    /// Counts every request by its arrival after a random lag below `max` (then answers it),
    /// as DingTalk under load counts a message later than it was sent.
    pub fn lag_arrivals(&self, max: Duration) {
        self.inner.lock().unwrap().arrival_lag = Some(max);
    }

    /// Queues answers for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// How many requests were refused with this errcode.
    pub fn refused(&self, errcode: i64) -> usize {
        self.inner
            .lock()
            .unwrap()
            .refusals
            .iter()
            .filter(|c| **c == errcode)
            .count()
    }

    /// Every request, accepted or not.
    pub fn requests(&self) -> usize {
        self.inner.lock().unwrap().requests
    }
}

/// DingTalk's signature, computed here independently of alertrelay's code.
fn expected_sign(secret: &str, timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn errcode(code: i64, msg: &str) -> Response {
    Json(json!({ "errcode": code, "errmsg": msg })).into_response()
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (scripted, lag) = {
        let mut guard = inner.lock().unwrap();
        guard.requests += 1;
        let lag = guard.arrival_lag.map(|max| max.mul_f64(fastrand::f64()));
        (guard.script.pop_front(), lag)
    };
    if let Some(lag) = lag {
        tokio::time::sleep(lag).await;
    }
    match scripted {
        Some(Reply::Errcode(code, msg)) => return errcode(code, msg),
        Some(Reply::Http(status)) => return StatusCode::from_u16(status).unwrap().into_response(),
        Some(Reply::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return StatusCode::OK.into_response();
        }
        Some(Reply::Delay(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    let mut guard = inner.lock().unwrap();
    match check(&mut guard, &query, &headers, &body) {
        Ok(()) => errcode(0, "ok"),
        Err((code, message)) => {
            guard.refusals.push(code);
            errcode(code, message)
        }
    }
}

/// DingTalk's errcode and errmsg for a refused request.
type Refusal = (i64, &'static str);

fn check(
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
