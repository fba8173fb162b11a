//! `AppError`: every way a request can fail, and the HTTP answer each gets.
//!
//! Alertmanager retries on 5xx and connection errors and gives up on 4xx, so the status says
//! whether trying again can help: 4xx for a request that will never work, 5xx whenever the
//! message was not delivered but could be later.
//!
//! Client errors, and the robot's answers, keep their text: it tells the caller what to fix or
//! what the robot said. alertrelay's own failures (500) are logged once, here, with their cause,
//! and answered with [`INTERNAL_MESSAGE`]: their text is about alertrelay's insides.

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use std::sync::Arc;

use crate::alert::PayloadError;
use crate::channel::{Retry, SendError};
use crate::delivery::DeliveryError;
use crate::preview::PreviewError;
use crate::render::RenderError;
use crate::runtime::BuildError;
use crate::sandbox::SandboxError;

/// What the client is told when the failure is alertrelay's own.
pub const INTERNAL_MESSAGE: &str = "internal error; the cause is in alertrelay's log";

/// `Retry-After` when the body budget is spent: bodies are read in well under a second.
const RETRY_AFTER_SECONDS: &str = "1";

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No such profile in the current config.
    #[error("unknown profile {0:?}")]
    UnknownProfile(String),
    /// The profile exists, but for another channel than the path's.
    #[error(
        "profile {profile:?} is a {channel} profile: it is served at /{channel}/{profile}/send and /send/{profile}"
    )]
    WrongChannel {
        /// The profile.
        profile: String,
        /// Its channel.
        channel: crate::channel::Channel,
    },
    /// The body is over the configured cap.
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The cap.
        limit: usize,
    },
    /// Webhook bodies being read or held already take `max_body_bytes_in_flight`; answered
    /// 503 with `Retry-After`, so Alertmanager tries again once some are done.
    #[error(
        "webhook bodies being read already hold the max_body_bytes_in_flight budget of {limit} bytes; try again shortly"
    )]
    BodyBudgetSpent {
        /// The budget.
        limit: usize,
    },
    /// The body is not an Alertmanager payload.
    #[error("invalid Alertmanager payload: {0}")]
    BadPayload(#[from] PayloadError),
    /// The body could not be read (client went away).
    #[error("cannot read request body: {0}")]
    ReadBody(String),
    /// Neither the profile's template nor the built-in one rendered.
    #[error("cannot render the message: {0}")]
    Render(#[from] RenderError),
    /// Even the built-in template could not render the notification within a render
    /// worker's bounds (a payload no Alertmanager sends: millions of alerts): retrying the
    /// same body cannot help.
    #[error("the notification cannot be rendered within alertrelay's bounds: {0}")]
    Unrenderable(SandboxError),
    /// No render worker could compose the message (none could start, one crashed, or even
    /// the built-in templates ran out of time on a busy machine): worth a retry.
    #[error("no render worker could compose the message; try again")]
    WorkersUnavailable(SandboxError),
    /// `/-/reload` without `--web.enable-lifecycle`.
    #[error("Lifecycle API is not enabled (start with --web.enable-lifecycle)")]
    LifecycleDisabled,
    /// A reload was refused; the last good configuration keeps serving.
    #[error("reload failed, the last good configuration keeps serving:\n{0}")]
    Reload(#[from] Arc<BuildError>),
    /// The profiles reloaded, the web config (`--web.config.file`) was refused; its last
    /// good version keeps serving.
    #[error("reload of the web config failed, the last good one keeps serving:\n{0}")]
    WebReload(#[from] crate::web::WebError),
    /// A preview could not be made.
    #[error("{0}")]
    Preview(#[from] PreviewError),
    /// Another preview render is still running.
    #[error("another preview is rendering; try again")]
    PreviewBusy,
    /// The request was still open when `--web.shutdown-timeout` ended. For a webhook, a
    /// message already with the robot may still arrive; the retry may duplicate it, but nothing
    /// is lost.
    #[error(
        "alertrelay is shutting down: the request did not finish within --web.shutdown-timeout"
    )]
    ShuttingDown,
    /// The message was not delivered.
    #[error("message not delivered: {0}")]
    Delivery(#[from] DeliveryError),
    /// The same notification was still being delivered by another request when `max_wait`
    /// ran out; Alertmanager retries, and then finds it delivered or delivers it.
    #[error("the same notification is still being delivered by another request; try again")]
    StillInFlight,
}

impl AppError {
    /// The `reason` label of `alertrelay_notifications_failed_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownProfile(_) => "unknown_profile",
            Self::WrongChannel { .. } => "wrong_channel",
            Self::BodyTooLarge { .. } => "too_large",
            Self::BodyBudgetSpent { .. } => "overloaded",
            Self::BadPayload(_) | Self::ReadBody(_) => "bad_request",
            Self::Render(_) | Self::Unrenderable(_) | Self::WorkersUnavailable(_) => "render",
            Self::LifecycleDisabled
            | Self::Reload(_)
            | Self::WebReload(_)
            | Self::Preview(_)
            | Self::PreviewBusy => "",
            Self::ShuttingDown => "shutdown",
            Self::StillInFlight => "in_flight",
            Self::Delivery(error) => error.reason(),
        }
    }

    /// The status Alertmanager should see.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownProfile(_) | Self::WrongChannel { .. } => StatusCode::NOT_FOUND,
            Self::BodyTooLarge { .. } | Self::Unrenderable(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadPayload(_) | Self::ReadBody(_) => StatusCode::BAD_REQUEST,
            Self::LifecycleDisabled => StatusCode::FORBIDDEN,
            Self::Preview(PreviewError::UnknownProfile(_) | PreviewError::UnknownSample(_)) => {
                StatusCode::NOT_FOUND
            }
            Self::Preview(PreviewError::Render(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Preview(_) => StatusCode::BAD_REQUEST,
            Self::PreviewBusy
            | Self::StillInFlight
            | Self::BodyBudgetSpent { .. }
            | Self::ShuttingDown
            | Self::WorkersUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Render(_) | Self::Reload(_) | Self::WebReload(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::Delivery(DeliveryError::Send(SendError::Timeout { .. })) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            Self::Delivery(DeliveryError::Send(error)) if error.retry() == Retry::Throttled => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Delivery(DeliveryError::Send(_)) => StatusCode::BAD_GATEWAY,
            Self::Delivery(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl AppError {
    /// Whether this is alertrelay's own failure, whose text stays in the log. Every 500 is,
    /// but a refused reload: its problems (file and line) are the operator's configuration,
    /// answered to the operator who asked, as Prometheus does, and logged by the reloader.
    fn is_internal(&self) -> bool {
        self.status() == StatusCode::INTERNAL_SERVER_ERROR
            && !matches!(self, Self::Reload(_) | Self::WebReload(_))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let error = if self.is_internal() {
            tracing::error!(error = %self, "internal error");
            INTERNAL_MESSAGE.to_owned()
        } else {
            self.to_string()
        };
        let mut body = json!({ "status": "error", "error": error });
        if let Self::Preview(PreviewError::Render(error)) = &self {
            body["template"] = json!(error.template);
            body["line"] = json!(error.line);
            body["message"] = json!(error.message);
        }
        if let Self::Delivery(DeliveryError::Send(SendError::Api {
            channel,
            code,
            message,
        })) = &self
        {
            // The robot's answer in its own words: `errcode`/`errmsg` for DingTalk and WeCom,
            // `code`/`msg` for Feishu.
            let (code_field, message_field) = channel.answer_fields();
            body["channel"] = json!(channel);
            body[code_field] = json!(code);
            body[message_field] = json!(message);
        }
        let mut response = (status, Json(body)).into_response();
        if let Self::BodyBudgetSpent { .. } = self {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn answer(error: AppError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn an_internal_error_answers_a_generic_message_not_its_cause() {
        let cause = RenderError {
            template: "default.md.tera".into(),
            line: Some(3),
            message: "Variable `secret_internals` not found".into(),
        };

        let (status, body) = answer(AppError::Render(cause)).await;

        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"], INTERNAL_MESSAGE);
        assert!(!body.to_string().contains("secret_internals"), "{body}");
    }

    #[tokio::test]
    async fn client_errors_keep_their_message() {
        let (status, body) = answer(AppError::UnknownProfile("nope".into())).await;

        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "unknown profile \"nope\"");
    }
}
