//! Metric names and the registry behind `/metrics`. Names follow Prometheus' conventions
//! (`alertrelay_` prefix, `_total` counters, `_seconds` units) and label values are bounded.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Metric, Registry, Unit};

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `profile` only. Unknown profiles (names taken from the URL) are counted as
/// [`UNKNOWN_PROFILE`] so the label set stays bounded.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProfileLabel {
    /// The profile.
    pub profile: String,
}

/// `profile` and why a notification was not delivered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The profile.
    pub profile: String,
    /// One of a fixed set: `bad_request`, `too_large`, `unknown_profile`, `wrong_channel`, `render`,
    /// `refused` (permanent errcode), `throttled`, `wait_timeout`, `unavailable`
    /// (retries exhausted), `shutdown`, `overloaded` (body budget spent), `in_flight` (its
    /// copy still being delivered when `max_wait` ran out).
    pub reason: &'static str,
}

/// `profile`, its `channel` and the robot's answer (`code`, or error kind, see
/// `SendError::label`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RobotLabels {
    /// The profile whose message (or the first of a merged message) was sent.
    pub profile: String,
    /// `dingtalk`, `wecom` or `feishu`.
    pub channel: &'static str,
    /// `0` for success, else a known code of that channel or an error kind.
    pub code: &'static str,
}

/// `reason` only, from a fixed set (see where it is recorded).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why.
    pub reason: &'static str,
}

/// The profile label value for webhooks to unknown profiles.
pub const UNKNOWN_PROFILE: &str = "";

type Histograms = Family<ProfileLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 5 ms .. ~160 s: from a fast robot to a wait for the next minute's budget.
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}

/// Registers `metric` under `name` and hands it back for recording.
fn add<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// As [`add`], for a metric in seconds (`_seconds` suffix).
fn add_seconds<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register_with_unit(name, help, Unit::Seconds, metric.clone());
    metric
}

/// Every metric alertrelay exports.
pub struct Metrics {
    registry: Registry,
    /// Webhooks received, by profile.
    pub received: Family<ProfileLabel, Counter>,
    /// Notifications the robot accepted, by profile.
    pub delivered: Family<ProfileLabel, Counter>,
    /// Notifications not delivered, by profile and reason.
    pub failed: Family<FailureLabels, Counter>,
    /// Webhook received to answered, for delivered notifications.
    pub delivery_duration: Histograms,
    /// Requests to robots by answer.
    pub robot_requests: Family<RobotLabels, Counter>,
    /// Notifications sent inside a message together with others.
    pub merged: Family<ProfileLabel, Counter>,
    /// Notifications cut to fit their channel's size cap.
    pub truncated: Family<ProfileLabel, Counter>,
    /// Time notifications waited for their robot's rate budget.
    pub rate_limit_wait: Histograms,
    /// Robot requests repeated after a retryable failure.
    pub retries: Family<ProfileLabel, Counter>,
    /// Notifications answered delivered without posting again: delivered within
    /// `dedup_window` already.
    pub duplicates: Family<ProfileLabel, Counter>,
    /// Values of `mention.from_labels` labels not mentioned: not a mobile number or user id,
    /// or past the bound on mentions from labels in one message.
    pub mention_label_values_skipped: Family<ProfileLabel, Counter>,
    /// 1 while the shared state (Redis) answers, 0 while duplicates are suppressed in memory
    /// only; 1 without Redis (memory is the backend, and it is up).
    pub state_backend_up: Gauge,
    /// 1 when the last reload succeeded, 0 when it failed (the name Prometheus uses).
    pub reload_successful: Gauge,
    /// Unix time of the last successful reload.
    pub reload_success_timestamp: Gauge<f64, AtomicU64>,
    /// Requests refused by basic auth, by `reason`: `missing`, `malformed`, `unknown_user`,
    /// `wrong_password`, `overloaded`. Never the user name.
    pub auth_failures: Family<ReasonLabel, Counter>,
    /// bcrypt verifications run (a valid credential costs one; the cache answers the rest).
    pub bcrypt_verifications: Counter,
    /// TLS connections that did not complete a handshake, by `reason`: `plain_http`,
    /// `handshake`, `timeout`, `closed`.
    pub tls_handshake_failures: Family<ReasonLabel, Counter>,
    /// 1 when the last `--web.config.file` reload succeeded, 0 when it failed.
    pub web_reload_successful: Gauge,
    /// Unix time of the last successful web config (re)load.
    pub web_reload_success_timestamp: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("alertrelay");
        let histograms = || Histograms::new_with_constructor(latency_histogram);
        let received = add(
            &mut r,
            "notifications_received",
            "Webhooks received, by profile",
            Family::default(),
        );
        let delivered = add(
            &mut r,
            "notifications_delivered",
            "Notifications the robot accepted",
            Family::default(),
        );
        let failed = add(
            &mut r,
            "notifications_failed",
            "Notifications not delivered, by reason",
            Family::default(),
        );
        let delivery_duration = add_seconds(
            &mut r,
            "delivery_duration",
            "Time from webhook received to delivered",
            histograms(),
        );
        let robot_requests = add(
            &mut r,
            "robot_requests",
            "Requests to robots by channel and the robot's code (0 is success) or error kind",
            Family::default(),
        );
        let merged = add(
            &mut r,
            "messages_merged",
            "Notifications sent merged with others into one message while the rate budget was spent",
            Family::default(),
        );
        let truncated = add(
            &mut r,
            "messages_truncated",
            "Notifications cut at an alert boundary to fit the channel's size cap",
            Family::default(),
        );
        let rate_limit_wait = add_seconds(
            &mut r,
            "rate_limit_wait",
            "Time notifications waited for their robot's rate budget",
            histograms(),
        );
        let retries = add(
            &mut r,
            "delivery_retries",
            "Robot requests repeated after a retryable failure",
            Family::default(),
        );
        let duplicates = add(
            &mut r,
            "notifications_duplicate",
            "Notifications already delivered within dedup_window, answered 200 without posting again",
            Family::default(),
        );
        let mention_label_values_skipped = add(
            &mut r,
            "mention_label_values_skipped",
            "Values of mention.from_labels labels not mentioned: not a mobile number or user id, or past the bound per message",
            Family::default(),
        );
        let state_backend_up = add(
            &mut r,
            "state_backend_up",
            "Whether the shared state backend (Redis, with state.redis) answers; 1 without Redis",
            Gauge::default(),
        );
        state_backend_up.set(1);
        let reload_successful = add(
            &mut r,
            "config_last_reload_successful",
            "Whether the last configuration reload attempt was successful",
            Gauge::default(),
        );
        let reload_success_timestamp = add(
            &mut r,
            "config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload",
            Gauge::<f64, AtomicU64>::default(),
        );
        let auth_failures = add(
            &mut r,
            "http_auth_failures",
            "Requests refused by basic authentication, by reason",
            Family::default(),
        );
        let bcrypt_verifications = add(
            &mut r,
            "http_auth_bcrypt_verifications",
            "bcrypt password verifications run (cached results are not counted)",
            Counter::default(),
        );
        let tls_handshake_failures = add(
            &mut r,
            "tls_handshake_failures",
            "TLS connections closed before a completed handshake, by reason",
            Family::default(),
        );
        let web_reload_successful = add(
            &mut r,
            "web_config_last_reload_successful",
            "Whether the last web configuration (--web.config.file) reload attempt was successful",
            Gauge::default(),
        );
        let web_reload_success_timestamp = add(
            &mut r,
            "web_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful web configuration reload",
            Gauge::<f64, AtomicU64>::default(),
        );
        r.register(
            "build",
            "alertrelay's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Self {
            registry: r,
            received,
            delivered,
            failed,
            delivery_duration,
            robot_requests,
            merged,
            truncated,
            rate_limit_wait,
            retries,
            duplicates,
            mention_label_values_skipped,
            state_backend_up,
            reload_successful,
            reload_success_timestamp,
            auth_failures,
            bcrypt_verifications,
            tls_handshake_failures,
            web_reload_successful,
            web_reload_success_timestamp,
        }
    }

    /// The label set for a profile.
    pub fn profile(profile: &str) -> ProfileLabel {
        ProfileLabel {
            profile: profile.to_owned(),
        }
    }

    /// Counts a notification that was not delivered.
    pub fn fail(&self, profile: &str, reason: &'static str) {
        self.failed
            .get_or_create(&FailureLabels {
                profile: profile.to_owned(),
                reason,
            })
            .inc();
    }

    /// Records the outcome of a (re)load.
    pub fn record_reload(&self, success: bool) {
        self.reload_successful.set(i64::from(success));
        if success {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.reload_success_timestamp.set(now);
        }
    }

    /// Records the outcome of a web config (re)load.
    pub fn record_web_reload(&self, success: bool) {
        self.web_reload_successful.set(i64::from(success));
        if success {
            self.web_reload_success_timestamp.set(unix_now());
        }
    }

    /// Counts a request refused by basic auth.
    pub fn record_auth_failure(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Counts a TLS connection that did not complete its handshake.
    pub fn record_tls_failure(&self, reason: &'static str) {
        self.tls_handshake_failures
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_metrics_use_prometheus_names() {
        let metrics = Metrics::new();
        metrics.record_reload(true);
        let text = metrics.encode();
        assert!(
            text.contains("alertrelay_config_last_reload_successful 1"),
            "{text}"
        );
        assert!(
            text.contains("alertrelay_config_last_reload_success_timestamp_seconds "),
            "{text}"
        );
        assert!(text.contains("alertrelay_build_info{version=\""), "{text}");
        metrics.record_reload(false);
        assert!(
            metrics
                .encode()
                .contains("alertrelay_config_last_reload_successful 0")
        );
    }

    #[test]
    fn delivery_metrics_are_named_the_prometheus_way() {
        let metrics = Metrics::new();
        let ops = Metrics::profile("ops");
        metrics.received.get_or_create(&ops).inc();
        metrics.fail("ops", "throttled");
        metrics.delivery_duration.get_or_create(&ops).observe(0.01);
        metrics
            .robot_requests
            .get_or_create(&RobotLabels {
                profile: "ops".into(),
                channel: "dingtalk",
                code: "0",
            })
            .inc();
        let text = metrics.encode();
        for expected in [
            "alertrelay_notifications_received_total{profile=\"ops\"} 1",
            "alertrelay_notifications_failed_total{profile=\"ops\",reason=\"throttled\"} 1",
            "alertrelay_delivery_duration_seconds_count{profile=\"ops\"} 1",
            "alertrelay_robot_requests_total{profile=\"ops\",channel=\"dingtalk\",code=\"0\"} 1",
        ] {
            assert!(text.contains(expected), "{expected} not in\n{text}");
        }
    }
}
