//! Every way a webhook request can be refused, mapped in one place to a
//! status, a stable snake_case code, an outcome label and the error body.

use std::time::Duration;

use http::{header, HeaderValue, Response, StatusCode};

use super::answer::{json_text_response, IngestBody};
use crate::dedup::DedupError;
use crate::error_body::error_body;
use crate::publish::PublishError;
use crate::ratelimit::{LimitScope, Limited};
use crate::verify::VerifyError;

/// Why a webhook was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The path is not `/webhooks/{source}`.
    #[error("no such route; webhooks are POSTed to /webhooks/{{source}}")]
    NotFound,
    /// The method is not POST.
    #[error("webhooks must be POSTed")]
    MethodNotAllowed,
    /// The source is not configured.
    #[error("unknown source")]
    UnknownSource,
    /// The signature or its timestamp did not check out.
    #[error("{0}")]
    Unauthorized(VerifyError),
    /// The request headers are larger than the listener accepts.
    #[error("request headers are larger than {limit} bytes")]
    HeadersTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is larger than the source accepts.
    #[error("request body is larger than {limit} bytes")]
    TooLarge {
        /// The source's limit in bytes.
        limit: u64,
    },
    /// The event's Kafka record would be larger than the producer or the
    /// cluster takes (`message.max.bytes`): refused for good, not retried.
    #[error("{0}; the body is too large for a Kafka record (see the source's large_bodies)")]
    RecordTooLarge(String),
    /// The body could not be written to the history store (claim check); nothing was published.
    #[error("the body could not be stored; it was not accepted")]
    BodyStoreUnavailable,
    /// The client did not send the body in time.
    #[error("request body was not received in time")]
    BodyTimeout,
    /// The connection failed while the body was being read.
    #[error("request body could not be read")]
    BodyRead,
    /// A quota ran out.
    #[error("rate limit exceeded ({})", .0.scope.as_str())]
    RateLimited(Limited),
    /// The same delivery is being published by another request right now.
    #[error("a request with the same delivery key is still being processed; retry shortly")]
    InFlight,
    /// The dedup store could not be reached.
    #[error("the deduplication store is unavailable")]
    DedupUnavailable(#[source] DedupError),
    /// Too many requests are being published at once.
    #[error("too many webhooks in flight")]
    Overloaded,
    /// The broker did not acknowledge the event.
    #[error("the event could not be written to Kafka; it was not accepted")]
    Publish(PublishError),
    /// The deadline ran out before the broker answered.
    #[error("the event could not be acknowledged in time; it was not accepted")]
    DeadlineExceeded,
}

impl IngestError {
    /// HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::NotFound | IngestError::UnknownSource => StatusCode::NOT_FOUND,
            IngestError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            IngestError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            IngestError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            IngestError::TooLarge { .. } | IngestError::RecordTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            IngestError::BodyRead => StatusCode::BAD_REQUEST,
            IngestError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            IngestError::InFlight => StatusCode::CONFLICT,
            IngestError::DedupUnavailable(_)
            | IngestError::Overloaded
            | IngestError::Publish(_)
            | IngestError::BodyStoreUnavailable
            | IngestError::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::NotFound => "not_found",
            IngestError::MethodNotAllowed => "method_not_allowed",
            IngestError::UnknownSource => "unknown_source",
            IngestError::Unauthorized(reason) => reason.code(),
            IngestError::HeadersTooLarge { .. } => "headers_too_large",
            IngestError::TooLarge { .. } | IngestError::RecordTooLarge(_) => "body_too_large",
            IngestError::BodyTimeout => "body_timeout",
            IngestError::BodyRead => "body_unreadable",
            IngestError::RateLimited(limited) => match limited.scope {
                LimitScope::Source => "rate_limited_source",
                LimitScope::ClientIp => "rate_limited_client",
            },
            IngestError::InFlight => "duplicate_in_flight",
            IngestError::DedupUnavailable(_) => "dedup_unavailable",
            IngestError::Overloaded => "overloaded",
            IngestError::Publish(error) => error.code(),
            IngestError::BodyStoreUnavailable => "store_unavailable",
            IngestError::DeadlineExceeded => "deadline_exceeded",
        }
    }

    /// The `outcome` label of `hookgate_requests_total` (a small fixed set).
    pub fn outcome(&self) -> &'static str {
        match self {
            IngestError::NotFound | IngestError::UnknownSource | IngestError::MethodNotAllowed => "unknown_source",
            IngestError::Unauthorized(_) => "unauthorized",
            IngestError::TooLarge { .. } | IngestError::HeadersTooLarge { .. } | IngestError::RecordTooLarge(_) => {
                "too_large"
            }
            IngestError::BodyTimeout => "timeout",
            IngestError::BodyRead => "bad_request",
            IngestError::RateLimited(_) => "rate_limited",
            IngestError::InFlight => "in_flight",
            _ => "unavailable",
        }
    }

    /// Seconds the sender should wait before retrying, when retrying makes sense.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            IngestError::RateLimited(limited) => Some(limited.retry_after),
            IngestError::InFlight => Some(Duration::from_secs(1)),
            IngestError::DedupUnavailable(_)
            | IngestError::Overloaded
            | IngestError::Publish(_)
            | IngestError::BodyStoreUnavailable
            | IngestError::DeadlineExceeded => Some(Duration::from_secs(5)),
            _ => None,
        }
    }

    /// The complete HTTP answer.
    pub fn into_response(self) -> Response<IngestBody> {
        let body = error_body(self.code(), &self.to_string());
        let mut response = json_text_response(self.status(), body);
        if let Some(wait) = self.retry_after() {
            let seconds = wait.as_secs().max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if matches!(self, IngestError::MethodNotAllowed) {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_errors_carry_retry_after_and_others_do_not() {
        let response = IngestError::Publish(PublishError::QueueFull).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        let response = IngestError::Unauthorized(VerifyError::InvalidSignature).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
    }

    #[test]
    fn a_record_too_large_is_a_413_without_retry_after() {
        let error = IngestError::RecordTooLarge("the record would be 1000037 bytes".into());
        assert_eq!(error.outcome(), "too_large");
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
        let response = IngestError::BodyStoreUnavailable.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    }

    #[test]
    fn rate_limit_retry_after_is_whole_seconds_at_least_one() {
        let limited = Limited {
            scope: LimitScope::ClientIp,
            retry_after: Duration::from_millis(10),
        };
        let response = IngestError::RateLimited(limited).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
