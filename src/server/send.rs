//! The Alertmanager webhook: `POST /send/{profile}` for any profile, and
//! `/dingtalk|wecom|feishu/{profile}/send` for a profile of that channel (the DingTalk path as
//! prometheus-webhook-dingtalk serves it, so existing receivers need no edit).

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use serde::Serialize;

use super::{AppError, AppState, body};
use crate::channel::Channel;
use crate::delivery::Record;
use crate::metrics::{Metrics, UNKNOWN_PROFILE};
use crate::render::{Part, RenderError};
use crate::runtime::Runtime;
use crate::sandbox::{ComposeError, Message, SandboxError};
use crate::state::{Claim, Identity, Lease};
use std::sync::Arc;
use std::time::Duration;

/// The answer to a delivered notification.
#[derive(Debug, Serialize)]
pub(super) struct Accepted {
    status: &'static str,
    profile: String,
    alerts: usize,
    /// How many notifications shared the message; 0 for a duplicate (nothing was sent).
    merged: usize,
    /// Delivered within `dedup_window` already: answered without posting again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
}

/// `POST /send/{profile}`.
pub(super) async fn any(
    state: State<AppState>,
    profile: Path<String>,
    request: Request,
) -> Result<Json<Accepted>, AppError> {
    send(state, profile, None, request).await
}

/// `POST /dingtalk/{profile}/send`.
pub(super) async fn dingtalk(
    state: State<AppState>,
    profile: Path<String>,
    request: Request,
) -> Result<Json<Accepted>, AppError> {
    send(state, profile, Some(Channel::DingTalk), request).await
}

/// `POST /wecom/{profile}/send`.
pub(super) async fn wecom(
    state: State<AppState>,
    profile: Path<String>,
    request: Request,
) -> Result<Json<Accepted>, AppError> {
    send(state, profile, Some(Channel::WeCom), request).await
}

/// `POST /feishu/{profile}/send`.
pub(super) async fn feishu(
    state: State<AppState>,
    profile: Path<String>,
    request: Request,
) -> Result<Json<Accepted>, AppError> {
    send(state, profile, Some(Channel::Feishu), request).await
}

/// Renders the notification with the profile's template and delivers it. Answers 200 only
/// once the robot accepted the message. `path_channel` is the channel the path names, if any.
async fn send(
    State(state): State<AppState>,
    Path(profile): Path<String>,
    path_channel: Option<Channel>,
    request: Request,
) -> Result<Json<Accepted>, AppError> {
    let started = Instant::now();
    let label = Metrics::profile(&profile);
    let (parts, body) = request.into_parts();
    let result = deliver(&state, &profile, path_channel, &parts.headers, body).await;
    match &result {
        // A duplicate was counted when it was delivered.
        Ok(accepted) if accepted.duplicate => {}
        Ok(_) => {
            state.metrics.delivered.get_or_create(&label).inc();
            let seconds = started.elapsed().as_secs_f64();
            state
                .metrics
                .delivery_duration
                .get_or_create(&label)
                .observe(seconds);
        }
        Err(error @ (AppError::UnknownProfile(_) | AppError::WrongChannel { .. })) => {
            state.metrics.fail(UNKNOWN_PROFILE, error.reason());
        }
        Err(error) => state.metrics.fail(&profile, error.reason()),
    }
    result
}

async fn deliver(
    state: &AppState,
    profile: &str,
    path_channel: Option<Channel>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, AppError> {
    let runtime = state.runtime.load_full();
    let (Some(config), Some(robot), Some(&(mut policy))) = (
        runtime.config.profiles.get(profile),
        runtime.robots.get(profile),
        runtime.policies.get(profile),
    ) else {
        tracing::warn!(profile, "webhook for an unknown profile");
        return Err(AppError::UnknownProfile(profile.to_owned()));
    };
    if path_channel.is_some_and(|channel| channel != config.channel) {
        tracing::warn!(profile, channel = %config.channel, "webhook on another channel's path");
        return Err(AppError::WrongChannel {
            profile: profile.to_owned(),
            channel: config.channel,
        });
    }
    let cap = config.channel.cap(config.message);
    let label = Metrics::profile(profile);
    state.metrics.received.get_or_create(&label).inc();
    let body = body::read(headers, body, &runtime.config, &state.body_budget).await?;
    let (bytes, share) = body.into_parts();
    // Rendered: the body's share of the budget is given back before waiting on the robot
    // (or when the render ends, if Alertmanager went away first).
    let message = compose_message(&runtime, profile, bytes, cap, Arc::new(share)).await?;
    let composed = message.composed;
    if let Some(error) = &composed.fallback {
        tracing::error!(profile, %error, "template failed; sent with the built-in template instead");
    }
    if composed.mentions_skipped > 0 {
        state
            .metrics
            .mention_label_values_skipped
            .get_or_create(&label)
            .inc_by(composed.mentions_skipped as u64);
        tracing::warn!(
            profile,
            skipped = composed.mentions_skipped,
            "label values in mention.from_labels that are no mobile number or user id were not mentioned"
        );
    }
    if composed.omitted > 0 {
        state.metrics.truncated.get_or_create(&label).inc();
        tracing::warn!(
            profile,
            omitted = composed.omitted,
            "message over the robot's size cap; alerts left out"
        );
    }
    let (alerts, status) = (message.alerts, message.status);
    let window = runtime.config.dedup_window;
    // Composed: the snapshot (and with it, after a reload, its render workers) need not live
    // while the robot is waited on.
    let robot = robot.clone();
    drop(runtime);
    // max_wait bounds the notification's wait in all: what the claim spent waiting for a copy
    // in flight (which, failed, handed the delivery on) is not given again to the robot.
    let deadline = tokio::time::Instant::now() + policy.max_wait;
    let claimed = claim(state, profile, message.identity, window, policy.max_wait).await?;
    policy.max_wait = deadline.saturating_duration_since(tokio::time::Instant::now());
    let lease = match claimed {
        // Handed on just as the wait ran out: nothing left to deliver it with.
        Some(Some(_)) if policy.max_wait.is_zero() => return Err(AppError::StillInFlight),
        Some(lease) => lease,
        None => {
            return Ok(Json(Accepted {
                status: "ok",
                profile: profile.to_owned(),
                alerts,
                merged: 0,
                duplicate: true,
            }));
        }
    };
    // Recorded as soon as the robot accepted, before Alertmanager is answered (and even if
    // Alertmanager gave up meanwhile): the moment in which a crash could still make its retry
    // a duplicate is as short as it can be.
    let record = lease.map(|lease| Record { lease, window });
    let outcome = state
        .dispatcher
        .deliver(profile, &robot, composed, policy, record)
        .await;
    match outcome {
        Ok(delivered) => {
            // Each delivery at debug, as Alertmanager logs its notifications: at info it cost
            // a sixth of the throughput (BENCHMARKS.md). Failures are logged at error.
            tracing::debug!(
                profile,
                alerts,
                ?status,
                merged = delivered.merged,
                "delivered"
            );
            Ok(Json(Accepted {
                status: "ok",
                profile: profile.to_owned(),
                alerts,
                merged: delivered.merged,
                duplicate: false,
            }))
        }
        Err(error) => {
            tracing::error!(profile, alerts, %error, "not delivered");
            Err(error.into())
        }
    }
}

/// Claims the notification for delivery: `Ok(Some(Some(lease)))` to send it (settle the
/// lease with the outcome), `Ok(Some(None))` to send it without duplicate suppression
/// (`dedup_window: 0`), `Ok(None)` for a duplicate, answered delivered; another delivery of it
/// still running when `max_wait` ran out is 503.
async fn claim(
    state: &AppState,
    profile: &str,
    identity: Identity,
    window: Duration,
    max_wait: Duration,
) -> Result<Option<Option<Lease>>, AppError> {
    if window.is_zero() {
        return Ok(Some(None));
    }
    match state.dedup.claim(identity, max_wait).await {
        Claim::Mine(lease) => Ok(Some(Some(lease))),
        Claim::Duplicate => {
            state
                .metrics
                .duplicates
                .get_or_create(&Metrics::profile(profile))
                .inc();
            tracing::info!(
                profile,
                ?identity,
                "delivered within dedup_window already; not posted again"
            );
            Ok(None)
        }
        Claim::StillInFlight => Err(AppError::StillInFlight),
    }
}

/// Composes the message in a render worker. When the worker gives no answer (the profile's
/// template ran out of time or memory, or the worker died), it is composed again, in a worker
/// too, with the built-in templates, so the alert still goes out and the failure is reported.
/// The gateway never renders or parses the body itself: its memory stays its own. `share` (the
/// body's part of the body budget) is held by each job until it ends.
async fn compose_message(
    runtime: &Runtime,
    profile: &str,
    bytes: axum::body::Bytes,
    cap: usize,
    share: Arc<body::Share>,
) -> Result<Message, AppError> {
    let now = chrono::Utc::now();
    let sandbox = &runtime.sandbox;
    let failure = match sandbox
        .compose(profile, bytes.clone(), now, cap, false, Arc::clone(&share))
        .await
    {
        Ok(message) => return Ok(message),
        Err(ComposeError::BadPayload(error)) => return Err(error.into()),
        Err(ComposeError::Render(error)) => return Err(error.into()),
        Err(ComposeError::Sandbox(error)) => error,
    };
    if runtime.renderer.uses_builtins(profile) {
        // The same render again would fail the same way.
        return Err(match failure {
            SandboxError::OutOfMemory(_) | SandboxError::TooDeep => AppError::Unrenderable(failure),
            _ => AppError::WorkersUnavailable(failure),
        });
    }
    let builtin = sandbox.compose(profile, bytes, now, cap, true, share).await;
    match builtin {
        Ok(mut message) => {
            message.composed.fallback = Some(RenderError {
                template: runtime
                    .renderer
                    .template_of(profile, Part::Body)
                    .unwrap_or_default()
                    .to_owned(),
                line: None,
                message: failure.to_string(),
            });
            Ok(message)
        }
        Err(ComposeError::BadPayload(error)) => Err(error.into()),
        Err(ComposeError::Render(error)) => Err(error.into()),
        Err(ComposeError::Sandbox(
            error @ (SandboxError::OutOfMemory(_) | SandboxError::TooDeep),
        )) => Err(AppError::Unrenderable(error)),
        // Out of time (a busy machine can make even the built-in render slow) or no worker:
        // worth a retry.
        Err(ComposeError::Sandbox(error)) => {
            tracing::error!(profile, %error, "no render worker could compose the message");
            Err(AppError::WorkersUnavailable(error))
        }
    }
}
