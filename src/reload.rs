//! Reloading: build a new snapshot from the config sources, check it, swap it in — or keep
//! the last good one and say why. File changes ([`watch`]), `POST /-/reload` and SIGHUP all
//! end up in [`Reloader::reload`], so they behave the same.

pub mod watch;

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::Sources;
use crate::metrics::Metrics;
use crate::runtime::{BuildError, Runtime};

/// Builds and swaps snapshots.
pub struct Reloader {
    sources: Sources,
    runtime: Arc<ArcSwap<Runtime>>,
    metrics: Arc<Metrics>,
    /// One reload at a time: two overlapping reloads could swap in the older result last.
    lock: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// A reloader for `runtime`, reading from `sources`.
    pub fn new(sources: Sources, runtime: Arc<ArcSwap<Runtime>>, metrics: Arc<Metrics>) -> Self {
        Self {
            sources,
            runtime,
            metrics,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The snapshot being served.
    pub fn current(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Where the configuration is read from.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Reads, validates, compiles and self-tests the configuration; swaps it in when all of
    /// that succeeds. On failure the last good snapshot keeps serving, and the error (with
    /// file and line) is logged, recorded in the metrics and returned. `trigger` names the
    /// cause in the log.
    pub async fn reload(&self, trigger: &str) -> Result<(), Arc<BuildError>> {
        let _one_at_a_time = self.lock.lock().await;
        match Runtime::load(&self.sources).await {
            Ok(mut runtime) => {
                let started_with = &self.current().config.state;
                if runtime.config.state != *started_with {
                    tracing::warn!(
                        trigger,
                        "state: changed; it takes effect at the next restart (the rest is reloaded)"
                    );
                    runtime.keep_state(started_with.clone());
                }
                let profiles = runtime.config.profiles.len();
                self.runtime.store(Arc::new(runtime));
                self.metrics.record_reload(true);
                tracing::info!(trigger, profiles, "configuration reloaded");
                Ok(())
            }
            Err(error) => {
                self.metrics.record_reload(false);
                tracing::error!(trigger, %error, "reload failed; the last good configuration keeps serving");
                Err(Arc::new(error))
            }
        }
    }
}
