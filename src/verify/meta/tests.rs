use http::{HeaderMap, Method};

use crate::config::{Preset, Secret, SourceConfig};
use crate::verify::testing::{assert_garbage_rejected, at, headers, signed, source, NOW};
use crate::verify::{Checked, Reply, RequestHead, Verified, Verifier, VerifyError};

// Meta documents the algorithm (sha256= + hex HMAC-SHA256 of the payload with
// the app secret) and the hub.* handshake, but publishes no signed example:
// this one was computed with Python's hmac.
const APP_SECRET: &str = "meta-app-secret";
const BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp"},"field":"messages"}]}]}"#;
const SIGNATURE: &str = "sha256=2bcf4223eda56390e4129a3068ed3296a89fa42524988978a6cd1a30f51d25a4";
const VERIFY_TOKEN: &str = "meatyhamhock";

fn meta_source(secrets: &[&str]) -> SourceConfig {
    SourceConfig {
        verify_token: Some(Secret::from_bytes(VERIFY_TOKEN)),
        ..source(Preset::Meta, secrets)
    }
}

fn meta() -> Verifier {
    Verifier::from_source(&meta_source(&[APP_SECRET])).unwrap()
}

/// Meta's GET handshake with `query`.
fn subscribe(verifier: &Verifier, query: &str) -> Result<Checked, VerifyError> {
    let headers = HeaderMap::new();
    let head = RequestHead {
        method: &Method::GET,
        query: Some(query),
        headers: &headers,
    };
    verifier.check(head, b"", at(NOW))
}

#[test]
fn an_independently_computed_signature_verifies() {
    let sent = headers(&[("X-Hub-Signature-256", SIGNATURE)]);
    let outcome = meta().check(RequestHead::post(&sent), BODY.as_bytes(), at(NOW));
    assert_eq!(
        outcome,
        Ok(Checked::Deliver(Verified {
            verified: true,
            secret_index: 0
        }))
    );
    assert_eq!(
        signed(&meta(), BODY.as_bytes(), at(NOW))["x-hub-signature-256"],
        SIGNATURE
    );
    assert_eq!(meta().scheme(), "meta");
}

#[test]
fn the_subscription_handshake_echoes_the_challenge_as_text() {
    // The example of Meta's "Getting started with webhooks" page.
    let query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock";
    assert_eq!(
        subscribe(&meta(), query),
        Ok(Checked::Answer(Reply::text("1158201444")))
    );
    assert!(meta().answers_get());
}

#[test]
fn forged_or_incomplete_handshakes_are_refused() {
    let cases = [
        (
            "hub.mode=subscribe&hub.challenge=1&hub.verify_token=guess",
            VerifyError::InvalidCredential,
        ),
        (
            "hub.mode=subscribe&hub.challenge=1&hub.verify_token=",
            VerifyError::InvalidCredential,
        ),
        ("hub.mode=subscribe&hub.challenge=1", VerifyError::MissingCredential),
        (
            "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=meatyhamhock",
            VerifyError::MalformedHandshake,
        ),
        (
            "hub.challenge=1&hub.verify_token=meatyhamhock",
            VerifyError::MalformedHandshake,
        ),
        (
            "hub.mode=subscribe&hub.verify_token=meatyhamhock",
            VerifyError::MalformedHandshake,
        ),
        (
            "hub.mode=subscribe&hub.challenge=&hub.verify_token=meatyhamhock",
            VerifyError::MalformedHandshake,
        ),
        ("", VerifyError::MalformedHandshake),
    ];
    for (query, expected) in cases {
        assert_eq!(subscribe(&meta(), query), Err(expected), "{query}");
    }
}

#[test]
fn a_get_is_never_an_event_even_with_a_valid_signature() {
    let sent = headers(&[("X-Hub-Signature-256", SIGNATURE)]);
    let head = RequestHead {
        method: &Method::GET,
        query: None,
        headers: &sent,
    };
    assert_eq!(
        meta().check(head, BODY.as_bytes(), at(NOW)),
        Err(VerifyError::MalformedHandshake)
    );
    let github = Verifier::from_source(&source(Preset::Github, &["k"])).unwrap();
    assert!(!github.answers_get());
    assert_eq!(github.check(head, b"", at(NOW)), Err(VerifyError::MalformedHandshake));
}

#[test]
fn tampering_wrong_secret_and_garbage_fail() {
    let sent = headers(&[("x-hub-signature-256", SIGNATURE)]);
    let tampered = BODY.replace("whatsapp\"}", "whatsapp!\"}");
    assert_eq!(
        meta().verify(&sent, tampered.as_bytes(), at(NOW)),
        Err(VerifyError::InvalidSignature)
    );
    let stranger = Verifier::from_source(&meta_source(&["other-secret"])).unwrap();
    assert_eq!(
        stranger.verify(&sent, BODY.as_bytes(), at(NOW)),
        Err(VerifyError::InvalidSignature)
    );
    let rotating = Verifier::from_source(&meta_source(&["new-secret", APP_SECRET])).unwrap();
    assert_eq!(
        rotating.verify(&sent, BODY.as_bytes(), at(NOW)).unwrap().secret_index,
        1
    );
    assert_eq!(
        meta().verify(&HeaderMap::new(), BODY.as_bytes(), at(NOW)),
        Err(VerifyError::MissingSignature)
    );
    assert_garbage_rejected(&meta(), "x-hub-signature-256", BODY.as_bytes());
}

#[test]
fn the_verify_token_is_required() {
    let problem = Verifier::from_source(&source(Preset::Meta, &[APP_SECRET])).unwrap_err();
    assert_eq!(problem.key, "verify_token");
    let shown = format!("{:?}", meta());
    assert!(!shown.contains(VERIFY_TOKEN) && !shown.contains(APP_SECRET), "{shown}");
}
