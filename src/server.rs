//! The HTTP side: `router(state)` with every endpoint, and `run` to serve it until shutdown.
//! Only this module knows HTTP status codes.

mod body;
mod error;
mod guard;
mod preview;
mod send;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::channel;
use crate::config::Sources;
use crate::config::StateConfig;
use crate::delivery::Dispatcher;
use crate::metrics::{self, Metrics};
use crate::reload::Reloader;
use crate::runtime::Runtime;
use crate::state::Dedup;
use crate::state::redis::{HEARTBEAT, RedisState};
use crate::web::Web;
use crate::web::listener::TlsListener;
pub use error::AppError;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The current snapshot; each request loads it once.
    pub runtime: Arc<ArcSwap<Runtime>>,
    /// Per-robot budgets, queues and retries, shared across snapshots.
    pub dispatcher: Arc<Dispatcher>,
    /// Notifications delivered lately and being delivered now, shared across snapshots.
    pub dedup: Dedup,
    /// Everything `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// Builds and swaps snapshots for `/-/reload`, SIGHUP and the file watcher.
    pub reloader: Arc<Reloader>,
    /// `--web.enable-lifecycle`: whether `/-/reload` may be used.
    pub lifecycle: bool,
    /// `--web.enable-preview`: whether `/preview` is served.
    pub preview: bool,
    /// Preview renders run one at a time: the text they render comes from a browser.
    pub preview_slots: Arc<tokio::sync::Semaphore>,
    /// The bytes of webhook bodies being read or held, bounded by `max_body_bytes_in_flight`.
    pub(crate) body_budget: Arc<body::BodyBudget>,
    /// `--web.config.file`, which `/-/reload` reloads too.
    pub web: Option<Web>,
}

impl AppState {
    /// State serving `runtime`, which was loaded from `sources` (reloads read them again).
    pub fn new(runtime: Runtime, sources: Sources) -> Self {
        let runtime = Arc::new(ArcSwap::from_pointee(runtime));
        let metrics = Arc::new(Metrics::new());
        metrics.record_reload(true);
        let reloader = Arc::new(Reloader::new(sources, runtime.clone(), metrics.clone()));
        let shared = shared_state(&runtime.load().config.state, &metrics);
        let dispatcher = Arc::new(
            Dispatcher::new(channel::Client::new(), metrics.clone()).with_shared(shared.clone()),
        );
        let dedup = Dedup::with_redis(shared);
        Self {
            runtime,
            dispatcher,
            dedup,
            metrics,
            reloader,
            lifecycle: false,
            preview: true,
            preview_slots: Arc::new(tokio::sync::Semaphore::new(1)),
            body_budget: Arc::default(),
            web: None,
        }
    }

    /// Reloads `web` (`--web.config.file`) on `/-/reload` as well.
    pub fn with_web(mut self, web: Web) -> Self {
        self.web = Some(web);
        self
    }

    /// Serves `/preview` or not (`--web.enable-preview`).
    pub fn with_preview(mut self, enabled: bool) -> Self {
        self.preview = enabled;
        self
    }

    /// Allows `POST /-/reload` (`--web.enable-lifecycle`).
    pub fn with_lifecycle(mut self, enabled: bool) -> Self {
        self.lifecycle = enabled;
        self
    }
}

/// The Redis the config names, if any, with its health reported (logged once per change,
/// and as `alertrelay_state_backend_up`). A URL that cannot even be opened is logged and left
/// out: memory keeps suppressing duplicates. Startup checks the connection first (see
/// `main`), so this is only reached with a config that passed.
fn shared_state(config: &StateConfig, metrics: &Arc<Metrics>) -> Option<RedisState> {
    let url = config.redis.as_ref()?;
    let redis = match RedisState::open(url.expose(), &config.key_prefix) {
        Ok(redis) => redis.with_replicas(config.replicas),
        Err(error) => {
            tracing::error!(%error, "cannot use state.redis; duplicates are suppressed in memory only");
            metrics.state_backend_up.set(0);
            return None;
        }
    };
    let mut health = redis.health();
    // Down until a call succeeds (startup connected already, or the probe below).
    metrics.state_backend_up.set(i64::from(redis.is_up()));
    let (metrics, addr, probe) = (metrics.clone(), redis.addr().to_owned(), redis.clone());
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            // Health is known after a first call; until then it reads "down".
            let _ = probe.heartbeat().await;
            loop {
                let up = *health.borrow_and_update();
                metrics.state_backend_up.set(i64::from(up));
                if up {
                    tracing::info!(redis = %addr, "shared state: Redis answers");
                } else {
                    tracing::warn!(redis = %addr, "shared state: Redis does not answer; until it does, duplicates are suppressed in memory and each robot's budget is rate_limit / replicas");
                }
                // A heartbeat every second: while Redis answers, the other replicas know
                // this one is on it; while it is away, it is how Redis is found back
                // without waiting for a webhook.
                loop {
                    tokio::select! {
                        changed = health.changed() => match changed {
                            Ok(()) => break,
                            Err(_) => return,
                        },
                        () = tokio::time::sleep(HEARTBEAT) => {
                            let _ = probe.heartbeat().await;
                        }
                    }
                }
            }
        });
    }
    Some(redis)
}

/// Every route. Builds the router without binding, so tests can drive it directly.
pub fn router(state: AppState) -> Router {
    let preview = if state.preview {
        preview::routes()
    } else {
        Router::new()
    };
    Router::new()
        .merge(preview)
        .route("/send/{profile}", post(send::any))
        .route("/dingtalk/{profile}/send", post(send::dingtalk))
        .route("/wecom/{profile}/send", post(send::wecom))
        .route("/feishu/{profile}/send", post(send::feishu))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload).put(reload))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthy() -> &'static str {
    "alertrelay is Healthy.\n"
}

async fn ready() -> &'static str {
    "alertrelay is Ready.\n"
}

/// Reloads the configuration, as SIGHUP and file changes do. 403 unless
/// `--web.enable-lifecycle`, as in Prometheus; 500 with the problems when the new
/// configuration is refused (the old one keeps serving).
async fn reload(State(state): State<AppState>) -> Result<&'static str, AppError> {
    if !state.lifecycle {
        return Err(AppError::LifecycleDisabled);
    }
    state.reloader.reload("/-/reload").await?;
    if let Some(web) = &state.web {
        web.reload("/-/reload")?;
    }
    Ok("configuration reloaded\n")
}

async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.encode(),
    )
}

/// How long answers to requests cut off at the end of the grace period may take to be
/// written before the server stops regardless (a client that does not read is not waited on).
const FLUSH: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and lets
/// requests in flight finish for at most `grace`. Any request still open then is answered 503
/// "shutting down" rather than having its connection closed without an answer, so
/// Alertmanager knows to retry it elsewhere or later.
pub async fn run(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    run_on(listener, router, shutdown, grace).await
}

/// As [`run`], behind `web`'s configuration: every request passes its basic auth and every
/// answer gets its headers, and connections are served over TLS when it has
/// `tls_server_config`.
pub async fn run_web(
    listener: TcpListener,
    web: &Web,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let router = router.layer(axum::middleware::from_fn_with_state(
        web.clone(),
        guard::guard,
    ));
    if web.tls() {
        let listener = TlsListener::new(listener, web.clone())?;
        run_on(listener, router, shutdown, grace).await
    } else {
        run_on(listener, router, shutdown, grace).await
    }
}

async fn run_on<L>(
    listener: L,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let (expired_tx, expired_rx) = tokio::sync::watch::channel(false);
    let router = router.layer(axum::middleware::from_fn_with_state(
        expired_rx,
        answer_when_grace_ends,
    ));
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, waiting for deliveries in flight");
        let _ = signalled_tx.send(());
    });
    let deadline = async move {
        if signalled_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let mut serve = std::pin::pin!(serve.into_future());
    tokio::select! {
        result = &mut serve => return result,
        () = deadline => {}
    }
    tracing::warn!(grace = ?grace, "requests still open after the shutdown timeout; answering them 503");
    expired_tx.send_replace(true);
    tokio::time::timeout(FLUSH, serve).await.unwrap_or(Ok(()))
}

/// Runs the request, unless the shutdown grace period ends first: then the request is
/// dropped and answered [`AppError::ShuttingDown`].
async fn answer_when_grace_ends(
    State(mut expired): State<tokio::sync::watch::Receiver<bool>>,
    request: Request,
    next: Next,
) -> Response {
    let grace_ended = async move {
        if expired.wait_for(|ended| *ended).await.is_err() {
            // The server is gone, and this request with it.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        response = next.run(request) => response,
        () = grace_ended => AppError::ShuttingDown.into_response(),
    }
}
