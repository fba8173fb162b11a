//! The headers every `/preview` answer carries: the page shows text from alerts and from
//! whoever opens it, so the browser is told to run nothing but the page's own script.

use axum::http::HeaderValue;
use axum::http::header::{CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use axum::response::Response;

/// Nothing is allowed unless named: script and style only from the page's own files (no
/// inline script, no `javascript:` URLs, no event attributes), requests only to its own
/// API, images from any web host (a DingTalk message may show them), and no framing, base
/// URL or form that could send the page's text elsewhere.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src http: https:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Adds the headers to an answer, whatever its status: an error page is a page too.
pub(super) async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    // A JSON answer holding alert text must never be sniffed into HTML or script.
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // For browsers older than `frame-ancestors`: no clickjacking of the page.
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
