//! Tests of the Standard Webhooks scheme: the specification's example, v1a
//! with a fixed Ed25519 key pair, mixed key kinds, rotation and bad input.

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};

use crate::config::Preset;
use crate::verify::mac::BASE64;
use crate::verify::testing::{assert_garbage_rejected, at, headers, signed, verifier, NOW};
use crate::verify::{SignError, Verified, Verifier, VerifyError};

// The example published with the Standard Webhooks specification.
const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SPEC_TIMESTAMP: u64 = 1_614_265_330;
const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn spec_headers(signature: &str) -> http::HeaderMap {
    headers(&[
        ("webhook-id", SPEC_ID),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", signature),
    ])
}

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn whpk(key: &SigningKey) -> String {
    format!("whpk_{}", BASE64.encode(key.verifying_key().as_bytes()))
}

/// A `v1a,...` entry over the specification example's id, timestamp and body.
fn v1a(key: &SigningKey, body: &[u8]) -> String {
    let message = [SPEC_ID.as_bytes(), b".1614265330.", body].concat();
    format!("v1a,{}", BASE64.encode(key.sign(&message).to_bytes()))
}

#[test]
fn the_specification_example_verifies() {
    let standard = verifier(Preset::StandardWebhooks, &[SPEC_SECRET]);
    let outcome = standard.verify(&spec_headers(SPEC_SIGNATURE), SPEC_BODY, at(SPEC_TIMESTAMP));
    assert_eq!(
        outcome,
        Ok(Verified {
            verified: true,
            secret_index: 0
        })
    );
    assert_eq!(standard.scheme(), "standard-webhooks");
}

#[test]
fn signing_reproduces_the_specification_example() {
    let standard = verifier(Preset::StandardWebhooks, &[SPEC_SECRET]);
    let sent: http::HeaderMap = standard
        .sign(SPEC_BODY, SPEC_ID, at(SPEC_TIMESTAMP))
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(sent, spec_headers(SPEC_SIGNATURE));
}

#[test]
fn tampered_body_id_or_timestamp_fail() {
    let standard = verifier(Preset::StandardWebhooks, &[SPEC_SECRET]);
    let now = at(SPEC_TIMESTAMP);
    assert_eq!(
        standard.verify(&spec_headers(SPEC_SIGNATURE), br#"{"test": 2432232315}"#, now),
        Err(VerifyError::InvalidSignature)
    );
    let mut sent = spec_headers(SPEC_SIGNATURE);
    sent.insert("webhook-id", "msg_other".parse().unwrap());
    assert_eq!(
        standard.verify(&sent, SPEC_BODY, now),
        Err(VerifyError::InvalidSignature)
    );
    let mut sent = spec_headers(SPEC_SIGNATURE);
    sent.insert("webhook-timestamp", "1614265331".parse().unwrap());
    assert_eq!(
        standard.verify(&sent, SPEC_BODY, now),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn wrong_secret_fails_and_rotation_reports_the_index() {
    let stranger = verifier(Preset::StandardWebhooks, &["whsec_c2VjcmV0LXRoYXQtaXMtbm90LWl0"]);
    let now = at(SPEC_TIMESTAMP);
    assert_eq!(
        stranger.verify(&spec_headers(SPEC_SIGNATURE), SPEC_BODY, now),
        Err(VerifyError::InvalidSignature)
    );
    let rotating = verifier(
        Preset::StandardWebhooks,
        &["whsec_c2VjcmV0LXRoYXQtaXMtbm90LWl0", SPEC_SECRET],
    );
    assert_eq!(
        rotating
            .verify(&spec_headers(SPEC_SIGNATURE), SPEC_BODY, now)
            .unwrap()
            .secret_index,
        1
    );
    // Senders list one signature per active secret during their own rotation.
    let both = format!("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {SPEC_SIGNATURE}");
    assert!(stranger.verify(&spec_headers(&both), SPEC_BODY, now).is_err());
    assert!(rotating.verify(&spec_headers(&both), SPEC_BODY, now).is_ok());
}

#[test]
fn v1a_verifies_with_a_public_key() {
    let key = signing_key();
    let standard = verifier(Preset::StandardWebhooks, &[&whpk(&key)]);
    let sent = spec_headers(&v1a(&key, SPEC_BODY));
    assert_eq!(
        standard.verify(&sent, SPEC_BODY, at(SPEC_TIMESTAMP)),
        Ok(Verified {
            verified: true,
            secret_index: 0
        })
    );
    assert_eq!(
        standard.verify(&sent, b"{}", at(SPEC_TIMESTAMP)),
        Err(VerifyError::InvalidSignature)
    );
    let other = SigningKey::from_bytes(&[8u8; 32]);
    let forged = spec_headers(&v1a(&other, SPEC_BODY));
    assert_eq!(
        standard.verify(&forged, SPEC_BODY, at(SPEC_TIMESTAMP)),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn one_source_may_hold_both_kinds() {
    let key = signing_key();
    let standard = verifier(Preset::StandardWebhooks, &[&whpk(&key), SPEC_SECRET]);
    let now = at(SPEC_TIMESTAMP);
    assert_eq!(
        standard
            .verify(&spec_headers(SPEC_SIGNATURE), SPEC_BODY, now)
            .unwrap()
            .secret_index,
        1
    );
    assert_eq!(
        standard
            .verify(&spec_headers(&v1a(&key, SPEC_BODY)), SPEC_BODY, now)
            .unwrap()
            .secret_index,
        0
    );
    let both = format!("{SPEC_SIGNATURE} {}", v1a(&key, SPEC_BODY));
    assert_eq!(
        standard
            .verify(&spec_headers(&both), SPEC_BODY, now)
            .unwrap()
            .secret_index,
        0
    );
    // An HMAC-only source cannot be satisfied by an Ed25519 signature, and vice versa.
    let hmac_only = verifier(Preset::StandardWebhooks, &[SPEC_SECRET]);
    assert_eq!(
        hmac_only.verify(&spec_headers(&v1a(&key, SPEC_BODY)), SPEC_BODY, now),
        Err(VerifyError::InvalidSignature)
    );
    let ed_only = verifier(Preset::StandardWebhooks, &[&whpk(&key)]);
    assert_eq!(
        ed_only.verify(&spec_headers(SPEC_SIGNATURE), SPEC_BODY, now),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn signing_uses_the_first_secret_and_cannot_with_a_public_key() {
    let key = signing_key();
    let public_first = verifier(Preset::StandardWebhooks, &[&whpk(&key), SPEC_SECRET]);
    assert_eq!(
        public_first.sign(b"{}", "msg_1", at(NOW)).unwrap_err(),
        SignError::PublicKeyOnly
    );
    let hmac_first = verifier(Preset::StandardWebhooks, &[SPEC_SECRET, &whpk(&key)]);
    let sent = signed(&hmac_first, b"{}", at(NOW));
    assert_eq!(sent["webhook-id"], "evt_1");
    assert_eq!(sent["webhook-timestamp"], NOW.to_string().as_str());
    assert_eq!(
        hmac_first.verify(&sent, b"{}", at(NOW)),
        Ok(Verified {
            verified: true,
            secret_index: 0
        })
    );
}

#[test]
fn stale_and_future_timestamps() {
    let standard = verifier(Preset::StandardWebhooks, &[SPEC_SECRET]);
    let sent = spec_headers(SPEC_SIGNATURE);
    assert!(standard.verify(&sent, SPEC_BODY, at(SPEC_TIMESTAMP + 300)).is_ok());
    assert_eq!(
        standard.verify(&sent, SPEC_BODY, at(SPEC_TIMESTAMP + 301)),
        Err(VerifyError::StaleTimestamp)
    );
    assert_eq!(
        standard.verify(&sent, SPEC_BODY, at(SPEC_TIMESTAMP - 301)),
        Err(VerifyError::FutureTimestamp)
    );
}

#[test]
fn missing_headers_are_reported() {
    let standard = verifier(Preset::StandardWebhooks, &[SPEC_SECRET]);
    let now = at(SPEC_TIMESTAMP);
    for (name, expected) in [
        ("webhook-signature", VerifyError::MissingSignature),
        ("webhook-id", VerifyError::MissingSignature),
        ("webhook-timestamp", VerifyError::MissingTimestamp),
    ] {
        let mut sent = spec_headers(SPEC_SIGNATURE);
        sent.remove(name);
        assert_eq!(standard.verify(&sent, SPEC_BODY, now), Err(expected), "{name}");
    }
}

#[test]
fn malformed_signature_lists() {
    let standard = verifier(Preset::StandardWebhooks, &[SPEC_SECRET]);
    let now = at(SPEC_TIMESTAMP);
    let sig = &SPEC_SIGNATURE[3..];
    for (value, expected) in [
        (format!("v2,{sig}"), VerifyError::MissingSignature),
        (format!("v1={sig}"), VerifyError::MalformedSignature),
        (format!("v1,{}", &sig[4..]), VerifyError::MalformedSignature),
        (format!("v1a,{sig}"), VerifyError::MalformedSignature),
        (format!("v1,{sig}!"), VerifyError::MalformedSignature),
        ("   ".to_string(), VerifyError::MalformedSignature),
        (format!("{SPEC_SIGNATURE} ").repeat(9), VerifyError::MalformedSignature),
    ] {
        assert_eq!(
            standard.verify(&spec_headers(&value), SPEC_BODY, now),
            Err(expected),
            "{value}"
        );
    }
    assert!(standard
        .verify(&spec_headers(&format!("  {SPEC_SIGNATURE}  v2,x ")), SPEC_BODY, now)
        .is_ok());
    assert_garbage_rejected(&standard, "webhook-signature", b"{}");
    assert_garbage_rejected(&standard, "webhook-timestamp", b"{}");
}

#[test]
fn any_webhook_id_bytes_are_handled() {
    let standard = verifier(Preset::StandardWebhooks, &[SPEC_SECRET]);
    for value in [&b""[..], b"\xff\xfe", b"a.b.c"] {
        let mut sent = spec_headers(SPEC_SIGNATURE);
        sent.insert("webhook-id", http::HeaderValue::from_bytes(value).unwrap());
        assert_eq!(
            standard.verify(&sent, SPEC_BODY, at(SPEC_TIMESTAMP)),
            Err(VerifyError::InvalidSignature)
        );
    }
}

#[test]
fn bad_secrets_name_their_index_without_echoing_them() {
    let identity = format!(
        "whpk_{}",
        BASE64.encode([1u8].iter().chain([0u8; 31].iter()).copied().collect::<Vec<_>>())
    );
    // Each bad secret, and a part of it that must not appear in the message.
    for (bad, hidden) in [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8G"),
        ("whsec_!!not-base64!!", "not-base64"),
        ("whsec_", "whsec_\""),
        ("whpk_c2hvcnQ=", "c2hvcnQ"),
        (identity.as_str(), &identity[5..20]),
        ("whsk_AAAA", "AAAA"),
    ] {
        let source = crate::verify::testing::source(Preset::StandardWebhooks, &[SPEC_SECRET, bad]);
        let problem = Verifier::from_source(&source).unwrap_err();
        assert_eq!(problem.key, "secrets[1]", "{bad}");
        let shown = format!("{problem} {problem:?}");
        assert!(
            !shown.contains(hidden) && !shown.contains("MfKQ9r8GKYqrTwjUPD8"),
            "{shown}"
        );
    }
}
