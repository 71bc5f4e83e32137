//! Handshakes: requests a provider sends to prove that the endpoint is
//! really the subscriber's, which the gateway answers itself instead of
//! publishing: Slack's `url_verification`, Zoom's `endpoint.url_validation`
//! (both POSTed and signed like events, so answered only once verified) and
//! Meta's GET subscription (checked against the verify token). Here, too,
//! the provider's side of each, for `hookgate send --handshake`.

use std::time::SystemTime;

use http::{HeaderName, HeaderValue, Method};

use super::request::Reply;
use super::{Scheme, SignError, Verified, Verifier};

/// A provider's handshake request and the answer the provider expects.
#[derive(Debug, Clone)]
pub struct HandshakeSample {
    /// `POST` (Slack, Zoom) or `GET` (Meta).
    pub method: Method,
    /// The query string, without `?` (Meta's `hub.*` parameters).
    pub query: Option<String>,
    /// Headers, signed as the provider signs them.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body.
    pub body: Vec<u8>,
    /// What a correct endpoint answers.
    pub expected: Reply,
}

impl HandshakeSample {
    /// True when `body` is the expected answer: the same JSON value for a
    /// JSON answer, the same bytes otherwise.
    pub fn accepts(&self, body: &[u8]) -> bool {
        if self.expected.content_type == "application/json" {
            let expected = serde_json::from_slice::<serde_json::Value>(&self.expected.body).ok();
            let got = serde_json::from_slice::<serde_json::Value>(body).ok();
            return expected.is_some() && expected == got;
        }
        self.expected.body == body
    }
}

impl Verifier {
    /// The answer to a verified POST that is the source's handshake, if it is one.
    pub(super) fn answer(&self, body: &[u8], verified: Verified) -> Option<Reply> {
        match &self.scheme {
            Scheme::Slack(_) => super::slack::url_verification(body),
            Scheme::Zoom(zoom) => zoom.url_validation(body, verified),
            _ => None,
        }
    }

    /// The handshake the source's provider sends, carrying `challenge` and
    /// signed with the first secret at `now`; `None` when the provider has none.
    pub fn handshake_sample(&self, challenge: &str, now: SystemTime) -> Option<Result<HandshakeSample, SignError>> {
        let (body, expected) = match &self.scheme {
            Scheme::Slack(_) => {
                let body =
                    serde_json::json!({"token": "hookgate-send", "challenge": challenge, "type": "url_verification"});
                let expected = serde_json::json!({ "challenge": challenge });
                (body.to_string().into_bytes(), Reply::json(&expected))
            }
            Scheme::Zoom(zoom) => {
                let (body, expected) = zoom.sample(challenge, now)?;
                (body, Reply::json(&expected))
            }
            Scheme::Meta(meta) => {
                return Some(Ok(HandshakeSample {
                    method: Method::GET,
                    query: Some(meta.sample_query(challenge)),
                    headers: Vec::new(),
                    body: Vec::new(),
                    expected: Reply::text(challenge),
                }))
            }
            _ => return None,
        };
        Some(
            self.sign(&body, "hookgate-handshake", now)
                .map(|headers| HandshakeSample {
                    method: Method::POST,
                    query: None,
                    headers,
                    body,
                    expected,
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Preset;
    use crate::verify::testing::{at, source, verifier, NOW};
    use crate::verify::{Checked, RequestHead, Verifier};

    fn meta() -> Verifier {
        let mut meta = source(Preset::Meta, &["app-secret"]);
        meta.verify_token = Some(crate::config::Secret::from_bytes("verify-me"));
        Verifier::from_source(&meta).unwrap()
    }

    /// Sends a sample to the verifier itself, as the gateway receives it.
    fn answered(verifier: &Verifier, sample: &super::HandshakeSample) -> Checked {
        let uri = match &sample.query {
            Some(query) => format!("/webhooks/x?{query}"),
            None => "/webhooks/x".to_owned(),
        };
        let mut request = http::Request::builder().method(sample.method.clone()).uri(uri);
        for (name, value) in &sample.headers {
            request = request.header(name, value);
        }
        let parts = request.body(()).unwrap().into_parts().0;
        verifier.check(RequestHead::of(&parts), &sample.body, at(NOW)).unwrap()
    }

    #[test]
    fn every_handshake_sample_is_answered_as_its_provider_expects() {
        let zoom = verifier(Preset::Zoom, &["zoom-secret"]);
        let slack = verifier(Preset::Slack, &["slack-secret"]);
        for verifier in [zoom, slack, meta()] {
            let sample = verifier.handshake_sample("ch4llenge", at(NOW)).unwrap().unwrap();
            let Checked::Answer(reply) = answered(&verifier, &sample) else {
                panic!("{}: not answered", verifier.scheme());
            };
            assert_eq!(
                reply.content_type,
                sample.expected.content_type,
                "{}",
                verifier.scheme()
            );
            assert!(sample.accepts(&reply.body), "{}", verifier.scheme());
            assert!(!sample.accepts(b"{}"), "{}", verifier.scheme());
        }
    }

    #[test]
    fn presets_without_a_handshake_have_no_sample() {
        for preset in [Preset::Github, Preset::Stripe, Preset::Gitlab, Preset::Basic] {
            let verifier = verifier(preset, &["u:p"]);
            assert!(verifier.handshake_sample("c", at(NOW)).is_none(), "{preset:?}");
        }
        let none = verifier(Preset::None, &[]);
        assert!(none.handshake_sample("c", at(NOW)).is_none());
    }

    #[test]
    fn challenges_of_any_text_survive_the_round_trip() {
        for challenge in ["a b&c=d", "\"quoted\"\n", "é"] {
            for verifier in [verifier(Preset::Slack, &["s"]), meta()] {
                let sample = verifier.handshake_sample(challenge, at(NOW)).unwrap().unwrap();
                let Checked::Answer(reply) = answered(&verifier, &sample) else {
                    panic!("not answered");
                };
                assert!(sample.accepts(&reply.body), "{challenge:?}");
            }
        }
    }
}
