//! Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:{ts}:{body}")>`
//! with the timestamp in `X-Slack-Request-Timestamp`, checked against the
//! tolerance; plus recognition of the `url_verification` handshake.

use serde::Deserialize;

use super::declarative::{HeaderScheme, Layout};
use super::request::Reply;
use super::ConfigProblem;
use crate::config::{HmacAlgorithm, SignatureEncoding, SourceConfig};

/// The Slack scheme for a source's signing secrets.
pub(super) fn scheme(source: &SourceConfig) -> Result<HeaderScheme, ConfigProblem> {
    let layout = Layout {
        header: "x-slack-signature",
        algorithm: HmacAlgorithm::Sha256,
        encoding: SignatureEncoding::Hex,
        prefix: "v0=",
        signed: "v0:{header:x-slack-request-timestamp}:{body}",
        timestamp_header: Some("x-slack-request-timestamp"),
        id_header: None,
        public_url: None,
    };
    HeaderScheme::build(&layout, source)
}

/// The answer to a verified `url_verification` request: `{"challenge": ...}`.
pub(super) fn url_verification(body: &[u8]) -> Option<Reply> {
    // Every Slack event is checked; only bodies naming the handshake are parsed.
    memchr::memmem::find(body, b"url_verification")?;
    let challenge = slack_url_verification_challenge(body)?;
    Some(Reply::json(&serde_json::json!({ "challenge": challenge })))
}

/// Slack's `url_verification` handshake: `Some(challenge)` when the (already
/// verified) body is `{"type":"url_verification","challenge":"..."}`, to be
/// echoed back so Slack accepts the endpoint.
pub fn slack_url_verification_challenge(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Handshake {
        #[serde(rename = "type")]
        kind: String,
        challenge: String,
    }
    let handshake: Handshake = serde_json::from_slice(body).ok()?;
    (handshake.kind == "url_verification").then_some(handshake.challenge)
}

#[cfg(test)]
mod tests {
    use super::slack_url_verification_challenge;
    use crate::config::Preset;
    use crate::verify::testing::{assert_garbage_rejected, at, headers, signed, verifier, NOW};
    use crate::verify::{Verified, VerifyError};

    // The worked example of Slack's "Verifying requests from Slack" page.
    const DOC_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const DOC_TIMESTAMP: u64 = 1_531_420_618;
    const DOC_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOC_SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn doc_headers() -> http::HeaderMap {
        headers(&[
            ("X-Slack-Signature", DOC_SIGNATURE),
            ("X-Slack-Request-Timestamp", "1531420618"),
        ])
    }

    #[test]
    fn slacks_documented_example_verifies() {
        let slack = verifier(Preset::Slack, &[DOC_SECRET]);
        let verified = slack.verify(&doc_headers(), DOC_BODY.as_bytes(), at(DOC_TIMESTAMP + 60));
        assert_eq!(
            verified,
            Ok(Verified {
                verified: true,
                secret_index: 0
            })
        );
        assert_eq!(slack.scheme(), "slack");
    }

    #[test]
    fn signing_reproduces_the_documented_signature() {
        let slack = verifier(Preset::Slack, &[DOC_SECRET]);
        let sent = signed(&slack, DOC_BODY.as_bytes(), at(DOC_TIMESTAMP));
        assert_eq!(sent["x-slack-signature"], DOC_SIGNATURE);
        assert_eq!(sent["x-slack-request-timestamp"], "1531420618");
        assert_eq!(sent.len(), 2);
    }

    #[test]
    fn stale_and_future_requests_are_rejected() {
        let slack = verifier(Preset::Slack, &[DOC_SECRET]);
        let body = DOC_BODY.as_bytes();
        assert!(slack.verify(&doc_headers(), body, at(DOC_TIMESTAMP - 300)).is_ok());
        assert_eq!(
            slack.verify(&doc_headers(), body, at(DOC_TIMESTAMP + 301)),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            slack.verify(&doc_headers(), body, at(DOC_TIMESTAMP - 301)),
            Err(VerifyError::FutureTimestamp)
        );
    }

    #[test]
    fn timestamp_is_signed_tampering_fails() {
        let slack = verifier(Preset::Slack, &[DOC_SECRET]);
        let mut sent = doc_headers();
        sent.insert("x-slack-request-timestamp", "1531420619".parse().unwrap());
        assert_eq!(
            slack.verify(&sent, DOC_BODY.as_bytes(), at(DOC_TIMESTAMP)),
            Err(VerifyError::InvalidSignature)
        );
        let tampered = DOC_BODY.replace("roadrunner", "coyote");
        assert_eq!(
            slack.verify(&doc_headers(), tampered.as_bytes(), at(DOC_TIMESTAMP)),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn wrong_secret_and_rotation() {
        let stranger = verifier(Preset::Slack, &["0000"]);
        assert_eq!(
            stranger.verify(&doc_headers(), DOC_BODY.as_bytes(), at(DOC_TIMESTAMP)),
            Err(VerifyError::InvalidSignature)
        );
        let rotating = verifier(Preset::Slack, &["0000", "1111", DOC_SECRET]);
        assert_eq!(
            rotating
                .verify(&doc_headers(), DOC_BODY.as_bytes(), at(DOC_TIMESTAMP))
                .unwrap()
                .secret_index,
            2
        );
    }

    #[test]
    fn missing_and_malformed_headers() {
        let slack = verifier(Preset::Slack, &[DOC_SECRET]);
        let only_ts = headers(&[("x-slack-request-timestamp", "1531420618")]);
        assert_eq!(
            slack.verify(&only_ts, b"", at(DOC_TIMESTAMP)),
            Err(VerifyError::MissingSignature)
        );
        let only_sig = headers(&[("x-slack-signature", DOC_SIGNATURE)]);
        assert_eq!(
            slack.verify(&only_sig, b"", at(DOC_TIMESTAMP)),
            Err(VerifyError::MissingTimestamp)
        );
        let v1 = headers(&[
            ("x-slack-signature", &DOC_SIGNATURE.replace("v0=", "v1=")),
            ("x-slack-request-timestamp", "1"),
        ]);
        assert_eq!(
            slack.verify(&v1, b"", at(DOC_TIMESTAMP)),
            Err(VerifyError::MalformedSignature)
        );
        let ms = headers(&[
            ("x-slack-signature", DOC_SIGNATURE),
            ("x-slack-request-timestamp", "1531420618.123"),
        ]);
        assert_eq!(
            slack.verify(&ms, b"", at(DOC_TIMESTAMP)),
            Err(VerifyError::MalformedTimestamp)
        );
        assert_garbage_rejected(&slack, "x-slack-signature", b"{}");
        assert_garbage_rejected(&slack, "x-slack-request-timestamp", b"{}");
        let sent = signed(&slack, b"{}", at(NOW));
        assert!(slack.verify(&sent, b"{}", at(NOW)).is_ok());
    }

    #[test]
    fn url_verification_challenge_is_recognised() {
        let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        assert_eq!(
            slack_url_verification_challenge(body).as_deref(),
            Some("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
        );
    }

    #[test]
    fn the_handshake_is_answered_with_json() {
        let reply = super::url_verification(br#"{"type":"url_verification","challenge":"c\"1"}"#).unwrap();
        assert_eq!(reply.content_type, "application/json");
        assert_eq!(reply.body, br#"{"challenge":"c\"1"}"#);
        assert_eq!(super::url_verification(br#"{"type":"event_callback"}"#), None);
    }

    #[test]
    fn other_bodies_are_not_a_handshake() {
        for body in [
            &br#"{"type":"event_callback","challenge":"x","event_id":"Ev1"}"#[..],
            br#"{"type":"url_verification"}"#,
            br#"{"type":"url_verification","challenge":42}"#,
            br#"["url_verification"]"#,
            b"token=x&challenge=y&type=url_verification",
            b"",
            b"\xff\xfe",
        ] {
            assert_eq!(slack_url_verification_challenge(body), None, "{body:?}");
        }
    }
}
