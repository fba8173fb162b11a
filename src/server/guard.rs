//! The web config in front of every handler: basic auth (401 with `WWW-Authenticate`, or
//! 503 while bcrypt is saturated) and the configured response headers on every answer.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::web::{Denied, Web};

/// The realm clients are asked to authenticate for.
const CHALLENGE: &str = "Basic realm=\"alertrelay\"";

/// Lets the request through when its credentials are good (or none are needed).
pub(super) async fn guard(State(web): State<Web>, request: Request, next: Next) -> Response {
    let mut response = match web.authorize(request.uri().path(), request.headers()).await {
        Ok(()) => next.run(request).await,
        Err(denied) => refused(denied),
    };
    for (name, value) in web.headers() {
        response.headers_mut().insert(name, value);
    }
    response
}

fn refused(denied: Denied) -> Response {
    match denied {
        Denied::Overloaded => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(RETRY_AFTER, "1")],
            "too many password checks at once; retry\n",
        )
            .into_response(),
        _ => (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, CHALLENGE)],
            "Unauthorized\n",
        )
            .into_response(),
    }
}
