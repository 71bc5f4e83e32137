//! The answer to a webhook: how it was accepted (or why not) as a status and
//! a JSON body, counted once in `hookgate_requests_total`.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use uuid::Uuid;

use super::error::IngestError;
use crate::telemetry::SourceMetrics;
use crate::verify::Reply;

/// The response body type of the webhook listener.
pub type IngestBody = Full<Bytes>;

/// How a request was accepted.
#[derive(Debug)]
pub(super) enum Accepted {
    /// Published and acknowledged by the broker.
    Published {
        /// The new event's id.
        id: Uuid,
        /// Where the broker put it.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset (-1 when the broker acknowledged a retried duplicate without one).
        offset: i64,
    },
    /// Already published earlier under `id`.
    Duplicate {
        /// The original event's id.
        id: String,
    },
    /// A provider's handshake (Slack, Zoom, Meta), answered without publishing.
    Handshake(Reply),
}

/// `202 {"id","offset","partition","topic"}`.
#[derive(Serialize)]
struct PublishedAnswer<'a> {
    id: &'a str,
    offset: i64,
    partition: i32,
    topic: &'a str,
}

/// `200 {"duplicate": true, "id"}`.
#[derive(Serialize)]
struct DuplicateAnswer<'a> {
    duplicate: bool,
    id: &'a str,
}

/// Counts the request's outcome in `metrics` and turns the result into the answer.
pub(super) fn answer(metrics: &SourceMetrics, result: Result<Accepted, IngestError>) -> Response<IngestBody> {
    let (outcome, response) = match result {
        Ok(accepted) => accepted_response(accepted),
        Err(error) => (error.outcome(), error.into_response()),
    };
    metrics.request(outcome);
    response
}

fn accepted_response(accepted: Accepted) -> (&'static str, Response<IngestBody>) {
    match accepted {
        Accepted::Published {
            id,
            topic,
            partition,
            offset,
        } => {
            let mut text = Uuid::encode_buffer();
            let body = PublishedAnswer {
                id: id.hyphenated().encode_lower(&mut text),
                offset,
                partition,
                topic: &topic,
            };
            ("accepted", json_response(StatusCode::ACCEPTED, &body))
        }
        Accepted::Duplicate { id } => {
            let body = DuplicateAnswer {
                duplicate: true,
                id: &id,
            };
            ("duplicate", json_response(StatusCode::OK, &body))
        }
        Accepted::Handshake(reply) => {
            let mut response = Response::new(Full::new(Bytes::from(reply.body)));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
            ("challenge", response)
        }
    }
}

/// A JSON response with the given status.
pub(super) fn json_response(status: StatusCode, body: &impl Serialize) -> Response<IngestBody> {
    // Serialising plain structs cannot fail.
    json_text_response(status, serde_json::to_vec(body).unwrap_or_default())
}

/// A response whose JSON text is already written.
pub(super) fn json_text_response(status: StatusCode, text: Vec<u8>) -> Response<IngestBody> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn json(response: Response<IngestBody>) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn published_and_duplicate_answers_have_the_documented_fields() {
        let id = Uuid::now_v7();
        let published = Accepted::Published {
            id,
            topic: "t\"x".into(),
            partition: 2,
            offset: -1,
        };
        let (outcome, response) = accepted_response(published);
        assert_eq!((outcome, response.status()), ("accepted", StatusCode::ACCEPTED));
        assert_eq!(
            json(response).await,
            serde_json::json!({"id": id.to_string(), "topic": "t\"x", "partition": 2, "offset": -1})
        );
        let (outcome, response) = accepted_response(Accepted::Duplicate { id: "i".into() });
        assert_eq!((outcome, response.status()), ("duplicate", StatusCode::OK));
        assert_eq!(json(response).await, serde_json::json!({"id": "i", "duplicate": true}));
    }

    #[tokio::test]
    async fn handshakes_are_answered_200_in_their_own_content_type() {
        let reply = Reply {
            content_type: "text/plain; charset=utf-8",
            body: b"1158201444".to_vec(),
        };
        let (outcome, response) = accepted_response(Accepted::Handshake(reply));
        assert_eq!((outcome, response.status()), ("challenge", StatusCode::OK));
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain; charset=utf-8");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"1158201444");
    }
}
