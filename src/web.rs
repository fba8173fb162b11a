//! The listener's side of `--web.config.file` (exporter-toolkit's web configuration): TLS
//! through rustls, client certificates, basic auth with bcrypt, extra response headers.
//!
//! [`Web`] holds the current web config in an `ArcSwap`: each new connection takes
//! the TLS config it finds there, and each request the users and headers, so a reload
//! ([`Web::reload`], run by [`watch`] when web.yml or a certificate, key or CA file changes,
//! and on SIGHUP) applies to what comes next without a restart. A broken file keeps the last
//! good configuration, is logged, and sets `alertrelay_web_config_last_reload_successful` to 0.
//!
//! | module | its one job |
//! |---|---|
//! | `config` | web.yml → a validated `WebConfig`, problems with file and line |
//! | `tls` | `tls_server_config` → a rustls `ServerConfig` |
//! | `clients` | `client_auth_type`, `client_allowed_sans` → a rustls client verifier |
//! | `auth` | `basic_auth_users`: bcrypt, cached per credential, bounded |
//! | `names` | a client certificate's subject and SANs |
//! | `listener` | accepts TCP, runs TLS handshakes (bounded, timed), hands streams to axum |
//! | [`watch`] | reloads on changes to the files the config was read from |

pub(crate) mod auth;
pub(crate) mod clients;
pub(crate) mod config;
pub(crate) mod listener;
pub(crate) mod names;
pub(crate) mod tls;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::http::{HeaderMap, HeaderName, HeaderValue};

pub(crate) use auth::Denied;
use config::WebConfig;

use crate::config::Problem;
use crate::metrics::Metrics;

/// A web config that cannot be used. Never holds a password, hash or key.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read but something in it is wrong.
    #[error("{0}")]
    Invalid(Problem),
    /// A reload would switch TLS on or off, which the open listener cannot do.
    #[error("{file}: switching TLS on or off takes a restart; the listener keeps serving {}", if *.serving_tls { "HTTPS" } else { "plain HTTP" })]
    TlsSwitch {
        /// The web config file.
        file: String,
        /// What the listener serves.
        serving_tls: bool,
    },
}

/// The web configuration being served, shared by the listener, the auth middleware and the
/// watcher. Cheap to clone.
#[derive(Clone)]
pub struct Web {
    inner: Arc<Inner>,
}

struct Inner {
    /// `--web.config.file`; `None`: plain HTTP, no auth, nothing to reload.
    file: Option<PathBuf>,
    /// `--web.healthy-without-auth`: `/-/healthy` answers without credentials.
    healthy_without_auth: bool,
    current: ArcSwap<WebConfig>,
    /// Whether the listener was started with TLS (fixed for the process's life).
    tls: bool,
    metrics: Arc<Metrics>,
    /// One reload at a time, so an older read never lands last.
    lock: std::sync::Mutex<()>,
}

impl Web {
    /// Reads `file` (`None`: serve plain HTTP with no authentication). A broken file is an
    /// error with file and line: at startup the process should not serve without it.
    pub fn load(
        file: Option<&Path>,
        healthy_without_auth: bool,
        metrics: Arc<Metrics>,
    ) -> Result<Self, WebError> {
        let config = match file {
            Some(file) => WebConfig::load(file)?,
            None => WebConfig::plain(),
        };
        metrics.record_web_reload(true);
        Ok(Self {
            inner: Arc::new(Inner {
                file: file.map(Path::to_path_buf),
                healthy_without_auth,
                tls: config.tls.is_some(),
                current: ArcSwap::from_pointee(config),
                metrics,
                lock: std::sync::Mutex::new(()),
            }),
        })
    }

    /// Checks `file` as a reload would, without serving it (`alertrelay check`); on success,
    /// one line on what it configures.
    pub fn check(file: &Path) -> Result<String, WebError> {
        WebConfig::load(file).map(|config| config.summary())
    }

    /// Whether the listener serves HTTPS.
    pub fn tls(&self) -> bool {
        self.inner.tls
    }

    /// The web config file, if any.
    pub fn file(&self) -> Option<&Path> {
        self.inner.file.as_deref()
    }

    /// The metrics auth failures and reloads are counted in.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn current(&self) -> Arc<WebConfig> {
        self.inner.current.load_full()
    }

    /// Every file the current config was read from.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        self.inner.current.load().files.clone()
    }

    /// Reads the file again and swaps it in, or keeps the last good config, logs why and
    /// records the failure. `trigger` names the cause in the log.
    pub fn reload(&self, trigger: &str) -> Result<(), WebError> {
        let Some(file) = &self.inner.file else {
            return Ok(());
        };
        let _one_at_a_time = self.inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        let loaded = WebConfig::load(file).and_then(|config| {
            if config.tls.is_some() == self.inner.tls {
                Ok(config)
            } else {
                Err(WebError::TlsSwitch {
                    file: file.display().to_string(),
                    serving_tls: self.inner.tls,
                })
            }
        });
        match loaded {
            Ok(config) => {
                self.inner.current.store(Arc::new(config));
                self.inner.metrics.record_web_reload(true);
                tracing::info!(trigger, file = %file.display(), "web configuration reloaded");
                Ok(())
            }
            Err(error) => {
                self.inner.metrics.record_web_reload(false);
                tracing::error!(trigger, %error, "web configuration reload failed; the last good one keeps serving");
                Err(error)
            }
        }
    }

    /// Whether a request for `path` with these headers may be served.
    pub(crate) async fn authorize(&self, path: &str, headers: &HeaderMap) -> Result<(), Denied> {
        if self.inner.healthy_without_auth && path == "/-/healthy" {
            return Ok(());
        }
        let config = self.current();
        if config.users.is_empty() {
            return Ok(());
        }
        let metrics = &self.inner.metrics;
        let result = config
            .users
            .check(headers.get(axum::http::header::AUTHORIZATION), || {
                metrics.bcrypt_verifications.inc();
            })
            .await;
        if let Err(denied) = result {
            metrics.record_auth_failure(denied.label());
        }
        result
    }

    /// `http_server_config.headers`, for every answer.
    pub(crate) fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        self.inner.current.load().headers.clone()
    }
}
