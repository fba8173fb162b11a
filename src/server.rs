//! The HTTP side: `router(state)` with every endpoint, and `run` to serve it until shutdown.
//! Only this module knows HTTP status codes.

mod error;
mod send;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::dingtalk;
use crate::runtime::Runtime;
pub use error::AppError;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The current snapshot; each request loads it once.
    pub runtime: Arc<ArcSwap<Runtime>>,
    /// The pooled robot client, shared across snapshots.
    pub client: dingtalk::Client,
}

impl AppState {
    /// State serving one snapshot.
    pub fn new(runtime: Runtime) -> Self {
        Self {
            runtime: Arc::new(ArcSwap::from_pointee(runtime)),
            client: dingtalk::Client::new(),
        }
    }
}

/// Every route. Builds the router without binding, so tests can drive it directly.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/dingtalk/{profile}/send", post(send::send))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .with_state(state)
}

async fn healthy() -> &'static str {
    "alertrelay is Healthy.\n"
}

async fn ready() -> &'static str {
    "alertrelay is Ready.\n"
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and lets
/// requests in flight finish for at most `grace`.
pub async fn run(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
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
    tokio::select! {
        result = serve => result,
        () = deadline => {
            tracing::warn!(grace = ?grace, "deliveries still in flight after the grace period; stopping anyway");
            Ok(())
        }
    }
}
