//! Shared state in Redis, so that replicas act as one (issue 16): duplicate suppression
//! ([`RedisState::claim`]), each robot's rate budget ([`RedisState::take_slot`]) and its
//! throttle penalty ([`RedisState::throttle`]).
//!
//! Redis trouble must never stall or lose a delivery, so every call is bounded by
//! [`CALL_TIMEOUT`] and a failure is an error the caller falls back on (a local budget,
//! duplicate suppression in memory). [`RedisState::is_up`] says how the last call went, and
//! [`RedisState::health`] announces each change, for one log line and the
//! `alertrelay_state_backend_up` gauge. The connection manager reconnects by itself: once
//! Redis is back, the next call succeeds.
//!
//! Time is Redis's own: the scripts read `TIME`, so every replica counts a robot's windows by
//! the same clock, whatever their hosts' clocks say.
//!
//! Keys, all under the configured prefix (robot keys hold tokens, so Redis only ever sees a
//! [`RobotHash`] of them):
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `{prefix}:dedup:{identity hex}` | string | `d` delivered, `f:{ticket}` being delivered | `dedup_window`, or `in_flight_for` |
//! | `{prefix}:budget:{{robot}}:{window ms}` | sorted set | a slot per message → when it leaves the window (ms) | with its last slot |
//! | `{prefix}:budget:{{robot}}:flight` | sorted set | a slot per request in flight → when its hold ends (ms) | with its last slot |
//! | `{prefix}:throttle:{robot}` | string | `1` | with the penalty |
//! | `{prefix}:epoch:budget` | string | a random token set once: another one means Redis lost its keys | never |
//! | `{prefix}:replicas:live` | sorted set | a replica's token → when it was last heard from (ms) | a while after the last |
//!
//! One Redis (or Valkey) server, with or without replicas of its own; Redis Cluster is not
//! supported (the budget script touches the epoch beside the robot's keys).

mod budget;
mod dedup;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, ErrorKind, RedisError};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

pub use budget::{SlotId, Take};
pub use dedup::{RedisClaim, Ticket, Waited};

/// The longest any call to Redis may take; past it the call fails and the caller falls back,
/// so a slow or vanished Redis costs a delivery at most this much per call.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(250);

/// The longest [`RedisState::connect`] waits for Redis to answer (connecting, TLS, AUTH and
/// a PING), once at startup or in `check`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How often each replica tells Redis it is alive ([`RedisState::heartbeat`]).
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// A replica not heard from for this long may be away from Redis, sending on its own share.
pub const LIVE_FOR: Duration = Duration::from_secs(3);

static HEARTBEAT_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("redis/scripts/heartbeat.lua")));

/// How often [`RedisState::wait_for`] looks whether a delivery in flight ended.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Why Redis could not be used. Messages name Redis's address, never its password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// `state.redis` or `state.key_prefix` is not usable.
    #[error("state.redis: {0}")]
    Invalid(String),
    /// Nothing answered at the address, or the connection broke.
    #[error("Redis at {addr} is unreachable: {reason}")]
    Unreachable {
        /// Host and port (or socket path).
        addr: String,
        /// What the system said.
        reason: String,
    },
    /// Redis refused the credentials, or wants some and got none.
    #[error(
        "Redis at {addr} refused to authenticate us ({reason}); check the user and password in state.redis"
    )]
    Auth {
        /// Host and port (or socket path).
        addr: String,
        /// What Redis said.
        reason: String,
    },
    /// The TLS handshake of `rediss://` failed, most often over the server's certificate.
    #[error(
        "Redis at {addr}: TLS failed: {reason} (a private CA must be among the system's roots, or in the file SSL_CERT_FILE names)"
    )]
    Tls {
        /// Host and port.
        addr: String,
        /// What rustls said.
        reason: String,
    },
    /// Redis did not answer in time.
    #[error("Redis at {addr} did not answer within {after:?}")]
    Timeout {
        /// Host and port (or socket path).
        addr: String,
        /// How long we waited.
        after: Duration,
    },
    /// Redis answered with an error, or something no script returns.
    #[error("Redis at {addr} failed: {reason}")]
    Failed {
        /// Host and port (or socket path).
        addr: String,
        /// What Redis said.
        reason: String,
    },
}

impl StateError {
    /// Whether the configuration is wrong (the URL, the prefix, the credentials, the TLS
    /// roots) rather than Redis down or slow: startup and `check` stop on it, as waiting
    /// would not mend it.
    pub fn is_misconfigured(&self) -> bool {
        matches!(
            self,
            Self::Invalid(_) | Self::Auth { .. } | Self::Tls { .. }
        )
    }
}

/// A robot key (`"{channel}:{token}"`) hashed for Redis keys: the first 32 hex digits of its
/// SHA-256, so a robot's token never reaches Redis. Every call about a robot takes one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RobotHash(String);

impl RobotHash {
    /// The hash of `robot_key`.
    pub fn of(robot_key: &str) -> Self {
        let digest = Sha256::digest(robot_key.as_bytes());
        Self(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The 32 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A connection to Redis shared by every delivery of this process. Cheap to clone.
#[derive(Clone)]
pub struct RedisState {
    manager: ConnectionManager,
    prefix: Arc<str>,
    /// Host and port, for messages.
    addr: Arc<str>,
    /// The password from the URL, scrubbed from any message (which should never hold it).
    password: Option<Arc<str>>,
    /// Whether the connection is `rediss://`.
    tls: bool,
    /// Whether the last call succeeded.
    up: Arc<watch::Sender<bool>>,
    /// Whether any call has ended yet (before one has, Redis is not known to be away).
    known: Arc<std::sync::atomic::AtomicBool>,
    /// This process among the replicas (a random token), for their heartbeats.
    id: Arc<str>,
    /// How many replicas share the robots (`state.replicas`): those not heard from lately
    /// may be sending on their own shares, which the budget script holds back for them.
    replicas: u32,
    /// The budget's epoch last read from Redis, and how often it changed: a new one means
    /// Redis lost what it held (see [`RedisState::forgotten`]).
    epoch: Arc<std::sync::Mutex<Option<String>>>,
    forgotten: Arc<AtomicU64>,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("addr", &self.addr)
            .field("prefix", &self.prefix)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

impl RedisState {
    /// Connects to the Redis at `url` (`redis://[user:password@]host[:port][/db]`,
    /// `rediss://` for TLS, `unix:///path?pass=…`), authenticates and PINGs it, within
    /// [`CONNECT_TIMEOUT`]. Keys are named under `key_prefix`. For startup and `check`: an
    /// error that [is a misconfiguration](StateError::is_misconfigured) should stop them;
    /// any other (Redis down) can start on [`RedisState::open`] and fall back meanwhile.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Self, StateError> {
        let state = Self::open(url, key_prefix)?;
        // Connecting, TLS and AUTH happen on the first call; a Redis that wants a password
        // and got none answers NOAUTH only to a command.
        let first = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut con = state.manager.clone();
            redis::cmd("PING").query_async::<String>(&mut con).await
        })
        .await;
        let result = match first {
            Ok(Ok(answer)) if answer == "PONG" => Ok(()),
            Ok(Ok(answer)) => Err(state.unexpected("PING", answer)),
            Ok(Err(error)) => Err(state.scrub().error(&error)),
            Err(_) => Err(StateError::Timeout {
                addr: state.addr.to_string(),
                after: CONNECT_TIMEOUT,
            }),
        };
        state.note(result.is_ok());
        result.map(|()| state)
    }

    /// A handle on the Redis at `url` that connects on its first call (and again whenever
    /// it must), for a replica that starts while Redis is down: only `url` and `key_prefix`
    /// are checked. [`RedisState::is_up`] is false until a call succeeds.
    pub fn open(url: &str, key_prefix: &str) -> Result<Self, StateError> {
        if key_prefix.is_empty() || key_prefix.chars().any(|c| c.is_whitespace()) {
            return Err(StateError::Invalid(format!(
                "key_prefix {key_prefix:?} must be a word without spaces"
            )));
        }
        let client = redis::Client::open(url).map_err(|e| {
            StateError::Invalid(format!(
                "not a Redis URL (redis://host:port/db, rediss:// for TLS, unix:///path): {e}"
            ))
        })?;
        let info = client.get_connection_info();
        let addr: Arc<str> = info.addr().to_string().into();
        let password: Option<Arc<str>> = info
            .redis_settings()
            .password()
            .filter(|p| !p.is_empty())
            .map(Arc::from);
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        if tls {
            // The provider reqwest's rustls is built with; set already if anything else did.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT / 2))
            .set_response_timeout(Some(CALL_TIMEOUT))
            // Few, quick retries: a call waits for a reconnection at most CALL_TIMEOUT
            // anyway, and the next call after a failed one starts another.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let scrub = Scrub {
            addr: &addr,
            password: password.as_deref(),
            tls,
        };
        let manager =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|e| scrub.error(&e))?;
        Ok(Self {
            manager,
            prefix: key_prefix.into(),
            addr: addr.clone(),
            password,
            tls,
            up: Arc::new(watch::channel(false).0),
            known: Arc::default(),
            id: token().into(),
            replicas: 1,
            epoch: Arc::default(),
            forgotten: Arc::default(),
        })
    }

    /// The same connection, for `replicas` replicas sharing the robots (at least 1).
    pub fn with_replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas.max(1);
        self
    }

    /// Asks Redis whether it is there (for `check`, startup, and a probe while it is down).
    pub async fn ping(&self) -> Result<(), StateError> {
        let mut con = self.manager.clone();
        let answer: String = self
            .run(async move { redis::cmd("PING").query_async(&mut con).await })
            .await?;
        match answer.as_str() {
            "PONG" => Ok(()),
            other => Err(StateError::Failed {
                addr: self.addr.to_string(),
                reason: format!("PING answered {other:?}"),
            }),
        }
    }

    /// Tells Redis this replica is alive (every [`HEARTBEAT`]): the budget script holds
    /// back the share of each replica it has not heard from within [`LIVE_FOR`], as that one
    /// may be sending on its own. A write, so it also finds out whether Redis takes writes
    /// (a Redis out of memory under `noeviction`, or a read-only copy after a failover,
    /// still answers PING): the probe that finds Redis back while it is away.
    pub async fn heartbeat(&self) -> Result<(), StateError> {
        let mut call = HEARTBEAT_SCRIPT.prepare_invoke();
        call.key(self.key("replicas", "live"))
            .arg(&*self.id)
            .arg(millis(LIVE_FOR));
        let mut con = self.manager.clone();
        self.run(async move { call.invoke_async::<()>(&mut con).await })
            .await
    }

    /// Whether the last call to Redis succeeded (true after [`RedisState::connect`], false
    /// after [`RedisState::open`] until a call succeeds).
    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// How many times this process found that Redis had lost what it held (restarted
    /// without persistence, flushed, failed over to a copy that lagged): the budgets'
    /// epoch, a key that never expires, was gone or another. Slots taken before are no
    /// longer counted there, so a replica must also keep to its own count for a window.
    pub fn forgotten(&self) -> u64 {
        self.forgotten.load(Ordering::Relaxed)
    }

    /// Notes the epoch a budget script read.
    fn note_epoch(&self, epoch: String) {
        let mut known = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
        if known.as_ref().is_some_and(|known| *known != epoch) {
            self.forgotten.fetch_add(1, Ordering::Relaxed);
        }
        *known = Some(epoch);
    }

    /// Whether the last call to Redis failed: known to be away, so callers that would
    /// rather not wait on it fall back at once (before any call, it is not known away).
    pub fn is_away(&self) -> bool {
        self.known.load(Ordering::Relaxed) && !self.is_up()
    }

    /// Changes of [`RedisState::is_up`], each announced once: for a log line and the
    /// `alertrelay_state_backend_up` gauge.
    pub fn health(&self) -> watch::Receiver<bool> {
        self.up.subscribe()
    }

    /// Redis's host and port (or socket path), for messages.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Marks the robot throttled for `penalty`, for every replica (shorter or longer than a
    /// penalty already running: the latest answer wins, as in one process).
    pub async fn throttle(&self, robot: &RobotHash, penalty: Duration) -> Result<(), StateError> {
        let key = self.key("throttle", robot.as_str());
        let mut con = self.manager.clone();
        let ms = millis(penalty);
        if ms == 0 {
            return Ok(());
        }
        self.run(async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("PX")
                .arg(ms)
                .query_async::<()>(&mut con)
                .await
        })
        .await
    }

    /// How long the robot is still throttled, by any replica's penalty.
    pub async fn throttled_for(&self, robot: &RobotHash) -> Result<Option<Duration>, StateError> {
        let key = self.key("throttle", robot.as_str());
        let mut con = self.manager.clone();
        let left: i64 = self
            .run(async move { redis::cmd("PTTL").arg(&key).query_async(&mut con).await })
            .await?;
        // -2: no penalty; -1 (no expiry) is never written.
        Ok((left > 0).then(|| Duration::from_millis(left as u64)))
    }

    /// `{prefix}:{kind}:{name}`.
    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}:{kind}:{name}", self.prefix)
    }

    /// Runs one call within [`CALL_TIMEOUT`], noting whether Redis is up.
    async fn run<T>(
        &self,
        call: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StateError> {
        let result = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.scrub().error(&error)),
            Err(_) => Err(StateError::Timeout {
                addr: self.addr.to_string(),
                after: CALL_TIMEOUT,
            }),
        };
        self.note(result.is_ok());
        result
    }

    /// Notes how a call went, announcing a change.
    fn note(&self, up: bool) {
        self.known.store(true, Ordering::Relaxed);
        self.up
            .send_if_modified(|was| std::mem::replace(was, up) != up);
    }

    fn scrub(&self) -> Scrub<'_> {
        Scrub {
            addr: &self.addr,
            password: self.password.as_deref(),
            tls: self.tls,
        }
    }

    /// What a script answered that it never answers: a bug, reported as a failure.
    fn unexpected(&self, what: &str, answer: impl std::fmt::Debug) -> StateError {
        StateError::Failed {
            addr: self.addr.to_string(),
            reason: format!("{what} answered {answer:?}"),
        }
    }
}

/// Turns the client's errors into [`StateError`]s without the password.
struct Scrub<'a> {
    addr: &'a str,
    password: Option<&'a str>,
    tls: bool,
}

impl Scrub<'_> {
    fn error(&self, error: &RedisError) -> StateError {
        let mut reason = error.to_string();
        // The client never puts the password in a message; should one ever, it is cut.
        if let Some(password) = self.password {
            reason = reason.replace(password, "***");
        }
        let addr = self.addr.to_string();
        if error.code() == Some("NOAUTH") {
            StateError::Auth {
                addr,
                reason: "it wants a password, and state.redis has none".into(),
            }
        } else if error.kind() == ErrorKind::AuthenticationFailed
            || error.code() == Some("WRONGPASS")
        {
            StateError::Auth {
                addr,
                reason: "wrong user or password".into(),
            }
        } else if error.kind() == ErrorKind::InvalidClientConfig {
            StateError::Invalid(reason)
        } else if error.is_timeout() {
            StateError::Timeout {
                addr,
                after: CALL_TIMEOUT,
            }
        } else if error.is_connection_refusal() || error.is_connection_dropped() {
            StateError::Unreachable { addr, reason }
        } else if error.is_io_error() && self.tls && !reason.contains("lookup") {
            // Neither refused, dropped, late nor a name not found: the handshake (the client
            // gets rustls's errors as I/O errors, and cannot tell them apart otherwise).
            StateError::Tls { addr, reason }
        } else if error.is_io_error() {
            StateError::Unreachable { addr, reason }
        } else {
            StateError::Failed { addr, reason }
        }
    }
}

/// Whole milliseconds, at least 1 for any duration above zero (Redis takes no zero TTL).
fn millis(duration: Duration) -> u64 {
    let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 && !duration.is_zero() {
        1
    } else {
        ms
    }
}

/// A random token: a delivery's or a slot's, unique across replicas in practice.
fn token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_robot_hash_is_32_hex_digits_that_do_not_hold_the_token() {
        let hash = RobotHash::of("dingtalk:secret-token-123");
        assert_eq!(hash.as_str().len(), 32);
        assert!(hash.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!hash.as_str().contains("secret"));
        assert_ne!(hash, RobotHash::of("dingtalk:secret-token-124"));
        assert_eq!(hash, RobotHash::of("dingtalk:secret-token-123"));
    }

    #[test]
    fn a_short_duration_is_at_least_a_millisecond() {
        assert_eq!(millis(Duration::ZERO), 0);
        assert_eq!(millis(Duration::from_micros(10)), 1);
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
    }

    #[tokio::test]
    async fn a_bad_url_or_prefix_is_invalid_and_never_echoes_the_password() {
        for url in [
            "http://:hunter2secret@redis:6379",
            "redis://:hunter2secret@redis:6379/notanumber",
            "not a url hunter2secret",
        ] {
            let error = RedisState::connect(url, "alertrelay").await.unwrap_err();
            assert!(matches!(error, StateError::Invalid(_)), "{url}: {error:?}");
            assert!(!error.to_string().contains("hunter2secret"), "{error}");
        }
        let error = RedisState::connect("redis://127.0.0.1:1", "")
            .await
            .unwrap_err();
        assert!(matches!(error, StateError::Invalid(_)), "{error:?}");
    }
}
