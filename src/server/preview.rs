//! `/preview`: the page, and the JSON API it (and any tool) uses. Nothing here sends.

mod headers;

use std::time::Duration;

use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::map_response;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppError, AppState};
use crate::preview::{Preview, PreviewError};
use crate::render::{Part, RenderError, UNSAVED_NAME};
use crate::sandbox::SandboxError;

/// The page, embedded so running the gateway needs no web build.
const PAGE: &str = include_str!("../preview/page.html");

/// The page's script and style, files of their own so its CSP can forbid inline ones.
const SCRIPT: &str = include_str!("../preview/page.js");
const STYLE: &str = include_str!("../preview/page.css");

/// How long a preview waits for the one before it to finish.
const SLOT_WAIT: Duration = Duration::from_secs(2);

/// How long a preview's body may take to arrive once its turn came.
const BODY_READ_LIMIT: Duration = Duration::from_secs(5);

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
                "channel": profile.channel,
                "message": profile.message,
                "template": runtime.renderer.template_info(name),
                "mention": profile.mention,
                "rate_limit": runtime.policies.get(name).map(|p| p.windows.per_minute()),
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

/// Renders with the current snapshot in the preview worker (see [`crate::sandbox`]), one
/// preview at a time: a request waits up to [`SLOT_WAIT`] for its turn, else 503. The body is
/// read only once the turn came, so waiting previews hold no payloads. A render that passes
/// the worker's time or memory bound answers 422 like any other template failure.
async fn render(
    State(state): State<AppState>,
    Path(profile): Path<String>,
    Query(query): Query<PreviewQuery>,
    request: axum::extract::Request,
) -> Result<Json<Preview>, AppError> {
    let turn = tokio::time::timeout(SLOT_WAIT, state.preview_slots.clone().acquire_owned())
        .await
        .map_err(|_| AppError::PreviewBusy)?
        .map_err(|_| AppError::PreviewBusy)?;
    // The turn is held while the body arrives: a stalled upload must not keep it.
    let body = tokio::time::timeout(
        BODY_READ_LIMIT,
        axum::body::to_bytes(request.into_body(), BODY_LIMIT),
    )
    .await
    .map_err(|_| {
        AppError::Preview(PreviewError::BadRequest(format!(
            "the body did not arrive within {BODY_READ_LIMIT:?}"
        )))
    })?
    .map_err(|e| AppError::Preview(PreviewError::BadRequest(e.to_string())))?;
    let runtime = state.runtime.load_full();
    let unsaved_in_query = query.template.is_some();
    let answer = runtime
        .sandbox
        .preview(
            &profile,
            body.clone(),
            (query.template, query.sample),
            chrono::Utc::now(),
            turn, // the next preview's turn comes when this render ends, not its request
        )
        .await;
    match answer {
        Ok(preview) => Ok(Json(preview?)),
        Err(error @ SandboxError::Failed(_)) => {
            tracing::error!(profile, %error, "no render worker could take the preview");
            Err(AppError::WorkersUnavailable(error))
        }
        Err(error) => {
            // Only a render that passed its bound pays for finding which template it was.
            let template = match unsaved_in_query || names_a_template(&body) {
                true => UNSAVED_NAME,
                false => runtime
                    .renderer
                    .template_of(&profile, Part::Body)
                    .ok_or_else(|| PreviewError::UnknownProfile(profile.clone()))?,
            };
            Err(PreviewError::Render(RenderError {
                template: template.to_owned(),
                line: None,
                message: error.to_string(),
            })
            .into())
        }
    }
}

/// Whether a preview request body carries template text (read without keeping anything of it).
fn names_a_template(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(default)]
        template: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Peek>(body).is_ok_and(|peek| peek.template.is_some())
}
