use http::HeaderMap;

use super::plain_token;
use crate::config::Preset;
use crate::verify::testing::{assert_garbage_rejected, at, headers, signed, verifier, NOW};
use crate::verify::{Checked, Reply, RequestHead, Verified, VerifyError};

// Zoom documents the algorithm ("v0:" + timestamp + ":" + body, HMAC-SHA256
// with the secret token, hex) and the shape of endpoint.url_validation, but
// publishes no signed example: these were computed with Python's hmac.
const SECRET: &str = "zoom-secret-token";
const TS: u64 = 1_700_000_000;
const BODY: &str = r#"{"event":"meeting.started","payload":{"account_id":"AAAAAA","object":{"id":"85746065432"}},"event_ts":1700000000123}"#;
const SIGNATURE: &str = "v0=a80c5f2c4b180884f1c6c82fce31048e83ab9851e73d44279610098ba1daf823";
// The plainToken of Zoom's documentation example, and its HMAC under SECRET.
const VALIDATION: &str =
    r#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1700000000123,"event":"endpoint.url_validation"}"#;
const VALIDATION_SIGNATURE: &str = "v0=ba768393d94fd822a51891431be8f657ffd96defca0b2f5f74509553e4c30ff3";
const ENCRYPTED: &str = "d9e0d764a78494688ba3f2d5c0ed4ca311394b4834d959759213424d2df961e3";

fn sent(signature: &str) -> HeaderMap {
    headers(&[("x-zm-signature", signature), ("x-zm-request-timestamp", "1700000000")])
}

fn check(secrets: &[&str], headers: &HeaderMap, body: &str, now: u64) -> Result<Checked, VerifyError> {
    verifier(Preset::Zoom, secrets).check(RequestHead::post(headers), body.as_bytes(), at(now))
}

#[test]
fn an_independently_computed_event_signature_verifies() {
    let outcome = check(&[SECRET], &sent(SIGNATURE), BODY, TS + 10);
    assert_eq!(
        outcome,
        Ok(Checked::Deliver(Verified {
            verified: true,
            secret_index: 0
        }))
    );
    let zoom = verifier(Preset::Zoom, &[SECRET]);
    assert_eq!(zoom.scheme(), "zoom");
    assert_eq!(signed(&zoom, BODY.as_bytes(), at(TS))["x-zm-signature"], SIGNATURE);
}

#[test]
fn url_validation_is_answered_after_its_signature_checked_out() {
    let outcome = check(&[SECRET], &sent(VALIDATION_SIGNATURE), VALIDATION, TS);
    let expected = serde_json::json!({"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": ENCRYPTED});
    assert_eq!(outcome, Ok(Checked::Answer(Reply::json(&expected))));
}

#[test]
fn url_validation_is_answered_with_the_secret_that_signed_it() {
    let rotating = &["old-secret", SECRET];
    let Ok(Checked::Answer(reply)) = check(rotating, &sent(VALIDATION_SIGNATURE), VALIDATION, TS) else {
        panic!("not answered");
    };
    let answer: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(answer["encryptedToken"], ENCRYPTED);
}

#[test]
fn a_forged_url_validation_is_refused() {
    // Signed with another secret: no answer, so the forger learns no encryptedToken.
    let forger = verifier(Preset::Zoom, &["not-the-secret"]);
    let forged = signed(&forger, VALIDATION.as_bytes(), at(TS));
    assert_eq!(
        check(&[SECRET], &forged, VALIDATION, TS),
        Err(VerifyError::InvalidSignature)
    );
    let unsigned = headers(&[("x-zm-request-timestamp", "1700000000")]);
    assert_eq!(
        check(&[SECRET], &unsigned, VALIDATION, TS),
        Err(VerifyError::MissingSignature)
    );
}

#[test]
fn stale_and_future_timestamps_are_refused() {
    assert!(check(&[SECRET], &sent(SIGNATURE), BODY, TS + 300).is_ok());
    assert_eq!(
        check(&[SECRET], &sent(SIGNATURE), BODY, TS + 301),
        Err(VerifyError::StaleTimestamp)
    );
    assert_eq!(
        check(&[SECRET], &sent(SIGNATURE), BODY, TS - 301),
        Err(VerifyError::FutureTimestamp)
    );
    // Zoom's timestamp is in seconds; milliseconds are far in the future.
    let millis = headers(&[
        ("x-zm-signature", SIGNATURE),
        ("x-zm-request-timestamp", "1700000000000"),
    ]);
    assert_eq!(check(&[SECRET], &millis, BODY, TS), Err(VerifyError::FutureTimestamp));
}

#[test]
fn tampering_and_malformed_headers_fail() {
    let tampered = BODY.replace("85746065432", "85746065433");
    assert_eq!(
        check(&[SECRET], &sent(SIGNATURE), &tampered, TS),
        Err(VerifyError::InvalidSignature)
    );
    let moved = headers(&[("x-zm-signature", SIGNATURE), ("x-zm-request-timestamp", "1700000001")]);
    assert_eq!(check(&[SECRET], &moved, BODY, TS), Err(VerifyError::InvalidSignature));
    let zoom = verifier(Preset::Zoom, &[SECRET]);
    assert_garbage_rejected(&zoom, "x-zm-signature", BODY.as_bytes());
    assert_garbage_rejected(&zoom, "x-zm-request-timestamp", BODY.as_bytes());
    assert!(zoom.verify(&signed(&zoom, b"{}", at(NOW)), b"{}", at(NOW)).is_ok());
}

#[test]
fn only_url_validation_bodies_are_handshakes() {
    assert_eq!(
        plain_token(VALIDATION.as_bytes()).as_deref(),
        Some("qgg8vlvZRS6UYooatFL8Aw")
    );
    for body in [
        BODY,
        r#"{"event":"meeting.started","payload":{"plainToken":"x"},"note":"endpoint.url_validation"}"#,
        r#"{"event":"endpoint.url_validation","payload":{}}"#,
        r#"{"event":"endpoint.url_validation","payload":{"plainToken":7}}"#,
        "endpoint.url_validation",
        "",
    ] {
        assert_eq!(plain_token(body.as_bytes()), None, "{body}");
    }
}
