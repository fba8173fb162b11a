//! Metric names and the registry behind `/metrics`. Names follow Prometheus' conventions
//! (`alertrelay_` prefix, `_total` counters, `_seconds` units) and label values are bounded.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric alertrelay exports.
pub struct Metrics {
    registry: Registry,
    /// 1 when the last reload succeeded, 0 when it failed (the name Prometheus uses).
    pub reload_successful: Gauge,
    /// Unix time of the last successful reload.
    pub reload_success_timestamp: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("alertrelay");
        let reload_successful = Gauge::default();
        registry.register(
            "config_last_reload_successful",
            "Whether the last configuration reload attempt was successful",
            reload_successful.clone(),
        );
        let reload_success_timestamp = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload",
            reload_success_timestamp.clone(),
        );
        registry.register(
            "build",
            "alertrelay's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Self {
            registry,
            reload_successful,
            reload_success_timestamp,
        }
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

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
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
}
