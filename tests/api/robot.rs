//! Robot doubles for DingTalk, WeCom and Feishu behind one server, each speaking its robot's
//! protocol at its real path: the token or key, the signature where the robot has one, the
//! message shape, the byte caps and the rate limits (by the double's own tokio clock, counted
//! when a request arrives), answered with that robot's codes. The double records what it
//! accepted; tests can script the next answers (a code, an HTTP status, a hang, a delay) and
//! make every request arrive late by a random lag, as a loaded robot counts messages later
//! than they were sent.
//!
//! Paths: DingTalk `POST /robot/send?access_token=T`, WeCom `POST /cgi-bin/webhook/send?key=K`,
//! Feishu `POST /open-apis/bot/v2/hook/T`. Each protocol's facts and their sources are in its
//! module's doc: `dingtalk`, `wecom`, `feishu`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use tokio::time::Instant;

mod dingtalk;
mod double_tests;
mod feishu;
mod feishu_tests;
mod limits;
mod probe;
mod received;
mod wecom;
mod wecom_tests;

pub use dingtalk::{DINGTALK_BODY_CAP, RATE_LIMIT};
pub use feishu::{FEISHU_BODY_CAP, FEISHU_PER_MINUTE, FEISHU_PER_SECOND};
pub use limits::Limits;
pub use received::{CardButton, Received};
pub use wecom::{WECOM_MARKDOWN_CAP, WECOM_RATE_LIMIT, WECOM_TEXT_CAP};

/// Which robot a request spoke to (by its path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    DingTalk,
    WeCom,
    Feishu,
}

/// A scripted answer for the next request, whichever protocol receives it.
#[derive(Debug, Clone)]
pub enum Reply {
    /// HTTP 200 with this code and message in the shape of the protocol that receives the
    /// request: DingTalk and WeCom `{"errcode","errmsg"}`, Feishu `{"code","msg","data"}` (or
    /// `{"StatusCode","StatusMessage"}` after `feishu_legacy_answers`). Named after DingTalk's
    /// field; it is every protocol's answer code.
    Errcode(i64, &'static str),
    /// This HTTP status, empty body.
    Http(u16),
    /// Never answer.
    Hang,
    /// Answer after a delay, then process normally.
    Delay(Duration),
}

/// A refused request: the protocol's code and message.
type Refusal = (i64, &'static str);

struct Inner {
    limits: Limits,
    /// DingTalk signing secrets by token; a token absent here takes unsigned requests.
    secrets: HashMap<String, String>,
    /// WeCom keys `wecom_url` registered; any other key is an invalid webhook.
    wecom_keys: HashSet<String>,
    /// Feishu tokens `feishu_url` registered, each with its signing secret if it has one.
    feishu_tokens: HashMap<String, Option<String>>,
    /// Feishu answers `StatusCode`/`StatusMessage` instead of `code`/`msg`.
    feishu_legacy: bool,
    script: VecDeque<Reply>,
    received: Vec<Received>,
    /// The protocol and code of every refused request.
    refusals: Vec<(Protocol, i64)>,
    requests: usize,
    /// Arrival times of accepted messages, by protocol and token.
    sent: HashMap<(Protocol, String), VecDeque<Instant>>,
    /// Each request is counted (and answered) after a random lag below this.
    arrival_lag: Option<Duration>,
}

/// What a protocol's checks hand back for an acceptable request, before the rate limits.
struct Accepted {
    token: String,
    body: Value,
}

/// One request as every protocol's check sees it.
struct Request<'a> {
    /// The path's token (Feishu); `None` for the protocols that carry it in the query.
    path_token: Option<&'a str>,
    query: &'a HashMap<String, String>,
    headers: &'a HeaderMap,
    body: &'a Bytes,
}

#[derive(Clone)]
pub struct RobotDouble {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl RobotDouble {
    /// A double with every robot's own rate limits.
    pub async fn start() -> Self {
        Self::start_with(Limits::REAL).await
    }

    /// A double with these rate limits.
    pub async fn start_with(limits: Limits) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            limits,
            secrets: HashMap::new(),
            wecom_keys: HashSet::new(),
            feishu_tokens: HashMap::new(),
            feishu_legacy: false,
            script: VecDeque::new(),
            received: Vec::new(),
            refusals: Vec::new(),
            requests: 0,
            sent: HashMap::new(),
            arrival_lag: None,
        }));
        let app = axum::Router::new()
            .route("/robot/send", post(dingtalk_route))
            .route("/cgi-bin/webhook/send", post(wecom_route))
            .route("/open-apis/bot/v2/hook/{token}", post(feishu_route))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, inner }
    }

    /// The webhook URL of the DingTalk robot with this token (any token is known).
    pub fn url(&self, token: &str) -> String {
        format!("http://{}/robot/send?access_token={token}", self.addr)
    }

    /// The webhook URL of the WeCom robot with this key, which from now on is a known key.
    pub fn wecom_url(&self, key: &str) -> String {
        self.inner.lock().unwrap().wecom_keys.insert(key.into());
        format!("http://{}/cgi-bin/webhook/send?key={key}", self.addr)
    }

    /// The webhook URL of the Feishu bot with this token, which from now on is a known token.
    pub fn feishu_url(&self, token: &str) -> String {
        let mut inner = self.inner.lock().unwrap();
        inner.feishu_tokens.entry(token.into()).or_insert(None);
        format!("http://{}/open-apis/bot/v2/hook/{token}", self.addr)
    }

    /// Requires signed requests for the DingTalk robot `token`.
    pub fn require_signature(&self, token: &str, secret: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner.secrets.insert(token.into(), secret.into());
    }

    /// Requires `timestamp` and `sign` in the body for the Feishu bot `token` (and knows it).
    pub fn require_feishu_signature(&self, token: &str, secret: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner
            .feishu_tokens
            .insert(token.into(), Some(secret.into()));
    }

    /// From now on Feishu answers in its older form: `{"StatusCode":0,"StatusMessage":"success"}`
    /// and `{"StatusCode":N,"StatusMessage":"…"}` for a refusal.
    pub fn feishu_legacy_answers(&self) {
        self.inner.lock().unwrap().feishu_legacy = true;
    }

    /// Lifts every protocol's rate limits, for tests that send many messages.
    pub fn unlimited(&self) {
        self.inner.lock().unwrap().limits = Limits::NONE;
    }

    /// Counts every request by its arrival after a random lag below `max` (then answers it),
    /// as a robot under load counts a message later than it was sent.
    pub fn lag_arrivals(&self, max: Duration) {
        self.inner.lock().unwrap().arrival_lag = Some(max);
    }

    /// Queues answers for the next requests, in order, whichever protocol they reach.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    /// Every message accepted, of every protocol, in order.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// How many requests were refused with this code, of any protocol (not scripted answers).
    pub fn refused(&self, code: i64) -> usize {
        let inner = self.inner.lock().unwrap();
        inner.refusals.iter().filter(|(_, c)| *c == code).count()
    }

    /// How many requests to `protocol` were refused with this code.
    pub fn refused_by(&self, protocol: Protocol, code: i64) -> usize {
        let inner = self.inner.lock().unwrap();
        let this = |(p, c): &&(Protocol, i64)| *p == protocol && *c == code;
        inner.refusals.iter().filter(this).count()
    }

    /// Every request, of every protocol, accepted or not.
    pub fn requests(&self) -> usize {
        self.inner.lock().unwrap().requests
    }
}

async fn dingtalk_route(
    State(inner): State<Arc<Mutex<Inner>>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(inner, Protocol::DingTalk, None, query, headers, body).await
}

async fn wecom_route(
    State(inner): State<Arc<Mutex<Inner>>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(inner, Protocol::WeCom, None, query, headers, body).await
}

async fn feishu_route(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(token): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(inner, Protocol::Feishu, Some(token), query, headers, body).await
}

async fn serve(
    inner: Arc<Mutex<Inner>>,
    protocol: Protocol,
    path_token: Option<String>,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (scripted, lag, legacy) = {
        let mut guard = inner.lock().unwrap();
        guard.requests += 1;
        let lag = guard.arrival_lag.map(|max| max.mul_f64(fastrand::f64()));
        (guard.script.pop_front(), lag, guard.feishu_legacy)
    };
    if let Some(lag) = lag {
        tokio::time::sleep(lag).await;
    }
    match scripted {
        Some(Reply::Errcode(code, msg)) => return answer(protocol, legacy, code, msg),
        Some(Reply::Http(status)) => return StatusCode::from_u16(status).unwrap().into_response(),
        Some(Reply::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return StatusCode::OK.into_response();
        }
        Some(Reply::Delay(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    let mut guard = inner.lock().unwrap();
    let legacy = guard.feishu_legacy;
    let request = Request {
        path_token: path_token.as_deref(),
        query: &query,
        headers: &headers,
        body: &body,
    };
    let checked = match protocol {
        Protocol::DingTalk => dingtalk::check(&guard, &request),
        Protocol::WeCom => wecom::check(&guard, &request),
        Protocol::Feishu => feishu::check(&guard, &request),
    };
    match checked.and_then(|accepted| limits::admit(&mut guard, protocol, accepted)) {
        Ok(()) => match protocol {
            Protocol::Feishu => answer(protocol, legacy, 0, "success"),
            Protocol::DingTalk | Protocol::WeCom => answer(protocol, legacy, 0, "ok"),
        },
        Err((code, message)) => {
            guard.refusals.push((protocol, code));
            answer(protocol, legacy, code, message)
        }
    }
}

/// The protocol's answer body for a code, with HTTP 200 (every robot answers its own
/// refusals with 200 and the code in the body; the docs show only bodies).
fn answer(protocol: Protocol, feishu_legacy: bool, code: i64, msg: &str) -> Response {
    let body = match protocol {
        Protocol::DingTalk | Protocol::WeCom => {
            serde_json::json!({ "errcode": code, "errmsg": msg })
        }
        Protocol::Feishu if feishu_legacy => {
            serde_json::json!({ "StatusCode": code, "StatusMessage": msg })
        }
        Protocol::Feishu => serde_json::json!({ "code": code, "msg": msg, "data": {} }),
    };
    axum::Json(body).into_response()
}

/// Whether the request says its body is JSON.
fn json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}
