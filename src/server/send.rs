//! `POST /dingtalk/{profile}/send`: the Alertmanager webhook.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::{AppError, AppState};
use crate::alert::Notification;
use crate::dingtalk::{self, Message};

/// Renders the notification with the profile's template and delivers it. Answers 200 only
/// once DingTalk accepted the message.
pub(super) async fn send(
    State(state): State<AppState>,
    Path(profile): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, AppError> {
    let runtime = state.runtime.load_full();
    let (Some(config), Some(robot)) = (
        runtime.config.profiles.get(&profile),
        runtime.robots.get(&profile),
    ) else {
        tracing::warn!(profile, "webhook for an unknown profile");
        return Err(AppError::UnknownProfile(profile));
    };
    let limit = runtime.config.max_body_bytes;
    let bytes = read_body(&headers, body, limit).await?;
    let notification = parse(&bytes)?;
    let rendered = runtime
        .renderer
        .render(&profile, config, &notification, chrono::Utc::now())?;
    if let Some(error) = &rendered.fallback {
        tracing::error!(profile, %error, "template failed; sent with the built-in template instead");
    }
    let message = Message {
        kind: config.message,
        title: &rendered.title,
        text: &rendered.text,
        mention: &config.mention,
    };
    let body = dingtalk::Body::new(&message).to_bytes();
    let alerts = notification.alerts.len();
    match state.client.send(robot, body, runtime.config.timeout).await {
        Ok(()) => {
            tracing::info!(profile, alerts, status = ?notification.status, "delivered");
            Ok(Json(
                json!({ "status": "ok", "profile": profile, "alerts": alerts }),
            ))
        }
        Err(error) => {
            tracing::error!(profile, alerts, %error, "not delivered");
            Err(error.into())
        }
    }
}

async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, AppError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(AppError::BodyTooLarge { limit });
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            AppError::BodyTooLarge { limit }
        } else {
            AppError::ReadBody(e.to_string())
        }
    })
}

/// Parses the payload; errors say what is wrong and where (JSON path, line and column).
fn parse(bytes: &[u8]) -> Result<Notification, AppError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let notification: Notification =
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                AppError::BadPayload(inner.to_string())
            } else {
                AppError::BadPayload(format!("{path}: {inner}"))
            }
        })?;
    if notification.alerts.is_empty() {
        return Err(AppError::BadPayload("the payload has no alerts".into()));
    }
    Ok(notification)
}
