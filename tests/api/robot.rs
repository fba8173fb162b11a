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
use serde_json::{Value, json};

mod dingtalk;

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
    match dingtalk::check(&mut guard, &query, &headers, &body) {
        Ok(()) => errcode(0, "ok"),
        Err((code, message)) => {
            guard.refusals.push(code);
            errcode(code, message)
        }
    }
}
