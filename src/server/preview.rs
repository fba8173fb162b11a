//! `/preview`: the page, and the JSON API it (and any tool) uses. Nothing here sends.

mod headers;

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::map_response;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppError, AppState};
use crate::preview::{self, Preview, PreviewError, Request};

/// The page, embedded so running the gateway needs no web build.
const PAGE: &str = include_str!("../preview/page.html");

/// The page's script and style, files of their own so its CSP can forbid inline ones.
const SCRIPT: &str = include_str!("../preview/page.js");
const STYLE: &str = include_str!("../preview/page.css");

/// A preview render may take this long before it is answered with an error.
const RENDER_TIMEOUT: Duration = Duration::from_secs(2);

/// Previews take pasted payloads as large as webhooks.
const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// The page's files sit two segments deep, apart from `/preview/{profile}`: a profile may
/// be named `page.js`.
pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/preview", get(page))
        .route("/preview/assets/page.js", get(script))
        .route("/preview/assets/page.css", get(style))
        .route("/preview/profiles", get(profiles))
        .route("/preview/samples", get(samples))
        .route(
            "/preview/{profile}",
            post(render).layer(DefaultBodyLimit::max(BODY_LIMIT)),
        )
        .layer(map_response(headers::secure))
}

async fn page() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/html; charset=utf-8")], PAGE)
}

async fn script() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT)
}

async fn style() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

/// Each profile's message type, template (name, file to edit, text) and mentions; never
/// its URL or secret.
async fn profiles(State(state): State<AppState>) -> Json<Value> {
    let runtime = state.runtime.load_full();
    let profiles: Vec<Value> = runtime
        .config
        .profiles
        .iter()
        .map(|(name, profile)| {
            json!({
                "name": name,
                "message": profile.message,
                "template": runtime.renderer.template_info(name),
                "mention": profile.mention,
                "rate_limit": runtime.policies.get(name).map(|p| p.rate_limit),
            })
        })
        .collect();
    Json(json!({ "profiles": profiles }))
}

async fn samples() -> Json<Value> {
    let samples: serde_json::Map<String, Value> = crate::samples::SAMPLES
        .iter()
        .map(|(name, text)| {
            (
                (*name).to_owned(),
                serde_json::from_str(text).unwrap_or(Value::Null),
            )
        })
        .collect();
    Json(Value::Object(samples))
}

#[derive(Deserialize)]
struct PreviewQuery {
    template: Option<String>,
    sample: Option<String>,
}

/// Renders with the current snapshot, on a blocking thread, one render at a time, bounded
/// in time (and, for unsaved text, in output and `range()` size).
async fn render(
    State(state): State<AppState>,
    Path(profile): Path<String>,
    Query(query): Query<PreviewQuery>,
    body: Bytes,
) -> Result<Json<Preview>, AppError> {
    let mut request = Request::from_body(&body)?;
    request.template = request.template.or(query.template);
    request.sample = request.sample.or(query.sample);
    let runtime = state.runtime.load_full();
    let permit = tokio::time::timeout(RENDER_TIMEOUT, state.preview_slots.clone().acquire_owned())
        .await
        .map_err(|_| AppError::PreviewBusy)?
        .map_err(|_| AppError::PreviewBusy)?;
    let work = tokio::task::spawn_blocking(move || {
        let _permit = permit; // held until the render really ends, even after a timeout
        preview::preview(&runtime, &profile, request, chrono::Utc::now())
    });
    match tokio::time::timeout(RENDER_TIMEOUT, work).await {
        Ok(Ok(result)) => Ok(Json(result?)),
        Ok(Err(panic)) => std::panic::resume_unwind(panic.into_panic()),
        Err(_) => Err(AppError::Preview(PreviewError::BadRequest(format!(
            "rendering took longer than {RENDER_TIMEOUT:?}"
        )))),
    }
}
