//! The web console, `GET /ui`: one HTML page, a stylesheet and a script,
//! compiled into the binary (no CDN, no build step). The page holds no
//! data: it asks the API with the bearer token the user types once, kept
//! in the tab's `sessionStorage` and sent only in the `Authorization`
//! header (the API refuses tokens in URLs). The live tail is read with
//! `fetch` for the same reason (`EventSource` cannot send headers). A strict
//! Content-Security-Policy allows only the console's own files.

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Only the console's own script and style; API calls to the same origin; no framing.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
    img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The console's files: name, content type, content.
const FILES: [(&str, &str, &str); 3] = [
    ("index.html", "text/html; charset=utf-8", include_str!("ui/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("ui/app.js")),
    ("app.css", "text/css; charset=utf-8", include_str!("ui/app.css")),
];

/// `GET /ui`.
pub(crate) async fn index() -> Response {
    serve("index.html").unwrap_or_else(IntoResponse::into_response)
}

/// `GET /ui/{file}`.
pub(crate) async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    serve(&file)
}

fn serve(name: &str) -> Result<Response, ApiError> {
    let (_, content_type, content) = FILES
        .iter()
        .find(|(file, _, _)| *file == name)
        .ok_or(ApiError::RouteNotFound)?;
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    Ok((headers, *content).into_response())
}
