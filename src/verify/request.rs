//! What a verifier sees of a request besides its body (method, query
//! string, headers), and what a check may end in: an event to deliver, or a
//! provider's handshake that the gateway answers itself.

use std::borrow::Cow;

use http::request::Parts;
use http::{HeaderMap, Method};

use super::Verified;

/// `POST`, for heads built without a request.
static POST: Method = Method::POST;

/// The parts of a request head the schemes read.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The query string as received (without `?`), if any.
    pub query: Option<&'a str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
}

impl<'a> RequestHead<'a> {
    /// A POST without query string carrying `headers`: what a provider sends
    /// to a URL configured without one.
    pub fn post(headers: &'a HeaderMap) -> Self {
        Self {
            method: &POST,
            query: None,
            headers,
        }
    }

    /// The head of a received request.
    pub fn of(parts: &'a Parts) -> Self {
        Self {
            method: &parts.method,
            query: parts.uri.query(),
            headers: &parts.headers,
        }
    }

    /// The decoded value of the query parameter `name` (its first occurrence).
    pub(super) fn query_param(&self, name: &str) -> Option<Cow<'a, str>> {
        let query = self.query?;
        form_urlencoded::parse(query.as_bytes()).find_map(|(key, value)| (key == name).then_some(value))
    }
}

/// What a request that passed verification is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// An event to deliver.
    Deliver(Verified),
    /// A handshake (Slack's url_verification, Zoom's endpoint.url_validation,
    /// Meta's subscription) that the gateway answers itself; nothing is published.
    Answer(Reply),
}

/// The body of a `200` answer to a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Its content type.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON answer.
    pub(super) fn json(value: &serde_json::Value) -> Self {
        Self {
            content_type: "application/json",
            body: value.to_string().into_bytes(),
        }
    }

    /// A plain-text answer.
    pub(super) fn text(text: &str) -> Self {
        Self {
            content_type: "text/plain; charset=utf-8",
            body: text.as_bytes().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded_and_the_first_wins() {
        let parts = http::Request::get("/webhooks/m?hub.mode=subscribe&hub.challenge=a+b%21&hub.mode=x")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let head = RequestHead::of(&parts);
        assert_eq!(head.method, Method::GET);
        assert_eq!(head.query_param("hub.mode").as_deref(), Some("subscribe"));
        assert_eq!(head.query_param("hub.challenge").as_deref(), Some("a b!"));
        assert_eq!(head.query_param("hub.verify_token"), None);
        let headers = HeaderMap::new();
        assert_eq!(RequestHead::post(&headers).query_param("hub.mode"), None);
        assert_eq!(RequestHead::post(&headers).method, Method::POST);
    }

    #[test]
    fn replies_carry_their_content_type() {
        let json = Reply::json(&serde_json::json!({"challenge": "c"}));
        assert_eq!(json.content_type, "application/json");
        assert_eq!(json.body, br#"{"challenge":"c"}"#);
        assert_eq!(Reply::text("123").body, b"123");
        assert!(Reply::text("123").content_type.starts_with("text/plain"));
    }
}
