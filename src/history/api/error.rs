//! The query API's one error type and its one mapping to a response with
//! hookgate's error body (`crate::error_body`). 4xx messages
//! say what to fix; 5xx messages reveal nothing internal (details are logged).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error_body::error_body;
use crate::history::store::StoreError;
use crate::publish::PublishError;

/// Seconds a client is asked to wait after a 503.
const RETRY_AFTER_SECS: &str = "2";

/// Every way a query API request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No bearer token, or one that matches no configured token (401).
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The token lacks the scope or the source (403).
    #[error("{0}")]
    Forbidden(String),
    /// A query parameter has a bad value; the message names it (400).
    #[error("{0}")]
    InvalidFilter(String),
    /// A query parameter this route does not take (400).
    #[error("unknown query parameter `{0}`")]
    UnknownParameter(String),
    /// The cursor is garbled, forged, or was issued for other filters (400).
    #[error("{0}")]
    InvalidCursor(String),
    /// An open API (no tokens) was asked under a host name that is not loopback: DNS rebinding (403).
    #[error("without [[query.tokens]] the API answers only requests to a loopback host (localhost, 127.0.0.1, [::1])")]
    HostNotAllowed,
    /// A token was passed in the URL, where logs and proxies keep it (400).
    #[error("tokens are not accepted in the URL; send `Authorization: Bearer <token>`")]
    TokenInUrl,
    /// No event with that id (404).
    #[error("no event with this id")]
    EventNotFound,
    /// The event's body was kept out of its record, and the store does not have it (404).
    #[error("the body of this event was kept out of its Kafka record and is not in the history store")]
    BodyNotFound,
    /// No such route (404).
    #[error("no such route")]
    RouteNotFound,
    /// The route exists but not with this method (405).
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// `query.max_streams` live tails are open already (503).
    #[error("too many live-tail streams are open; retry later")]
    TooManyStreams,
    /// The replay was not acknowledged by the broker (503).
    #[error("the broker did not acknowledge the replay; retry later")]
    Publish(PublishError),
    /// The history store failed (503 when unreachable, else 500).
    #[error("history store failure")]
    Store(#[from] StoreError),
    /// A stored event could not be turned back into an envelope (500).
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// HTTP status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::HostNotAllowed => (StatusCode::FORBIDDEN, "host_not_allowed"),
            ApiError::InvalidFilter(_) => (StatusCode::BAD_REQUEST, "invalid_filter"),
            ApiError::UnknownParameter(_) => (StatusCode::BAD_REQUEST, "unknown_parameter"),
            ApiError::InvalidCursor(_) => (StatusCode::BAD_REQUEST, "invalid_cursor"),
            ApiError::TokenInUrl => (StatusCode::BAD_REQUEST, "token_in_url"),
            ApiError::EventNotFound => (StatusCode::NOT_FOUND, "event_not_found"),
            ApiError::BodyNotFound => (StatusCode::NOT_FOUND, "body_not_found"),
            ApiError::RouteNotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::TooManyStreams => (StatusCode::SERVICE_UNAVAILABLE, "too_many_streams"),
            ApiError::Publish(error) if !error.is_retryable() => (StatusCode::PAYLOAD_TOO_LARGE, error.code()),
            ApiError::Publish(error) => (StatusCode::SERVICE_UNAVAILABLE, error.code()),
            ApiError::Store(error) if error.is_unavailable() => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            ApiError::Store(_) | ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::Store(error) if error.is_unavailable() => "the history store is unavailable; retry later".into(),
            ApiError::Publish(PublishError::TooLarge(detail)) => format!("the replay was not published: {detail}"),
            _ => self.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            ApiError::Store(error) => tracing::error!(%error, "query API store failure"),
            ApiError::Internal(detail) => tracing::error!(%detail, "query API internal error"),
            ApiError::Publish(error) => tracing::warn!(%error, "replay not acknowledged"),
            _ => {}
        }
        let content_type = [(header::CONTENT_TYPE, "application/json")];
        let mut response = (status, content_type, error_body(code, &self.message())).into_response();
        let headers = response.headers_mut();
        match status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"hookgate\""),
                );
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_reveal_nothing() {
        let error = ApiError::Internal("secret detail".into());
        assert_eq!(
            error.status_and_code(),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
        );
        assert!(!error.message().contains("secret"));
        let error = ApiError::Publish(PublishError::Broker("broker 10.0.0.1 said no".into()));
        assert_eq!(
            error.status_and_code(),
            (StatusCode::SERVICE_UNAVAILABLE, "broker_error")
        );
        assert!(!error.message().contains("10.0.0.1"));
    }
}
