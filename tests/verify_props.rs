//! Property tests of `hookgate::verify` through its public interface: for every
//! signing preset, what `sign` produces verifies for any body, no single-byte
//! change of the body survives (where the scheme authenticates the body's
//! bytes), any configured secret is accepted with its index, and arbitrary
//! header bytes never panic or pass.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use hookgate::config::{HmacAlgorithm, HmacSpec, Preset, Secret, SignatureEncoding, SourceConfig};
use hookgate::verify::{slack_url_verification_challenge, Checked, RequestHead, Verifier, VerifyError};

/// Every preset that signs, with the declarative one in three shapes.
#[derive(Debug, Clone, Copy)]
enum Flavor {
    Preset(Preset),
    HmacSha1HexPrefixed,
    HmacSha256Base64,
    HmacSha512Timestamped,
}

const FLAVORS: [Flavor; 14] = [
    Flavor::Preset(Preset::Github),
    Flavor::Preset(Preset::Stripe),
    Flavor::Preset(Preset::Shopify),
    Flavor::Preset(Preset::Slack),
    Flavor::Preset(Preset::StandardWebhooks),
    Flavor::Preset(Preset::Zoom),
    Flavor::Preset(Preset::Meta),
    Flavor::Preset(Preset::Twilio),
    Flavor::Preset(Preset::Gitlab),
    Flavor::Preset(Preset::Basic),
    Flavor::Preset(Preset::Token),
    Flavor::HmacSha1HexPrefixed,
    Flavor::HmacSha256Base64,
    Flavor::HmacSha512Timestamped,
];

impl Flavor {
    /// False where the body's bytes are not what is authenticated: static
    /// credentials sign nothing, and Twilio signs the decoded form parameters
    /// (`a+b` and `a b` decode alike, so do two invalid UTF-8 bytes).
    fn authenticates_body_bytes(self) -> bool {
        match self {
            Flavor::Preset(preset) => preset != Preset::Twilio && !preset.is_static_credential(),
            _ => true,
        }
    }
}

fn flavor() -> impl Strategy<Value = Flavor> {
    proptest::sample::select(FLAVORS.to_vec())
}

/// Raw secret bytes without NUL: HMAC pads short keys with zeros, so `k` and
/// `k\0` are the same key, which would blur which secret matched.
fn raw_secrets(max: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::btree_set(proptest::collection::vec(1u8..=255, 1..48), 1..=max)
        .prop_map(|set| set.into_iter().collect())
}

fn now() -> impl Strategy<Value = SystemTime> {
    (1_000_000_000u64..4_000_000_000).prop_map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
}

fn spec(flavor: Flavor) -> Option<HmacSpec> {
    let (algorithm, encoding, prefix, signed, timestamp_header) = match flavor {
        Flavor::Preset(_) => return None,
        Flavor::HmacSha1HexPrefixed => (HmacAlgorithm::Sha1, SignatureEncoding::Hex, "sha1=", "{body}", None),
        Flavor::HmacSha256Base64 => (
            HmacAlgorithm::Sha256,
            SignatureEncoding::Base64,
            "",
            "{header:x-id}:{body}",
            None,
        ),
        Flavor::HmacSha512Timestamped => (
            HmacAlgorithm::Sha512,
            SignatureEncoding::Hex,
            "",
            "{header:x-ts}.{body}",
            Some("x-ts".to_owned()),
        ),
    };
    Some(HmacSpec {
        header: "x-signature".into(),
        algorithm,
        encoding,
        prefix: prefix.into(),
        signed: signed.into(),
        timestamp_header,
    })
}

/// A source of `flavor` holding `secrets` (encoded as `whsec_` for Standard Webhooks).
fn source(flavor: Flavor, secrets: &[Vec<u8>]) -> SourceConfig {
    let verify = match flavor {
        Flavor::Preset(preset) => preset,
        _ => Preset::Hmac,
    };
    let secret = |raw: &Vec<u8>| match verify {
        Preset::StandardWebhooks => Secret::from_bytes(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )),
        // Tokens travel in a header: printable, so the raw bytes are written in hex.
        Preset::Gitlab | Preset::Token => Secret::from_bytes(const_hex::encode(raw)),
        Preset::Basic => Secret::from_bytes([&b"user:"[..], raw].concat()),
        _ => Secret::from_bytes(raw.clone()),
    };
    SourceConfig {
        hmac: spec(flavor),
        public_url: (verify == Preset::Twilio).then(|| "https://hooks.example.com/webhooks/prop".to_owned()),
        verify_token: (verify == Preset::Meta).then(|| Secret::from_bytes("prop-verify-token")),
        token_header: (verify == Preset::Token).then(|| "x-webhook-token".to_owned()),
        ..SourceConfig::new("prop", verify, secrets.iter().map(secret).collect())
    }
}

fn verifier(flavor: Flavor, secrets: &[Vec<u8>]) -> Verifier {
    Verifier::from_source(&source(flavor, secrets)).expect("valid source")
}

fn signed(verifier: &Verifier, body: &[u8], now: SystemTime) -> HeaderMap {
    verifier
        .sign(body, "evt_prop", now)
        .expect("signs")
        .into_iter()
        .collect()
}

/// The header carrying the signature itself, per flavor.
fn signature_header(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Preset(Preset::Github) => "x-hub-signature-256",
        Flavor::Preset(Preset::Stripe) => "stripe-signature",
        Flavor::Preset(Preset::Shopify) => "x-shopify-hmac-sha256",
        Flavor::Preset(Preset::Slack) => "x-slack-signature",
        Flavor::Preset(Preset::Zoom) => "x-zm-signature",
        Flavor::Preset(Preset::Meta) => "x-hub-signature-256",
        Flavor::Preset(Preset::Twilio) => "x-twilio-signature",
        Flavor::Preset(Preset::Gitlab) => "x-gitlab-token",
        Flavor::Preset(Preset::Basic) => "authorization",
        Flavor::Preset(Preset::Token) => "x-webhook-token",
        Flavor::Preset(_) => "webhook-signature",
        _ => "x-signature",
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sign_then_verify_succeeds_for_any_body(
        flavor in flavor(),
        secrets in raw_secrets(3),
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        now in now(),
    ) {
        let verifier = verifier(flavor, &secrets);
        let verified = verifier.verify(&signed(&verifier, &body, now), &body, now).expect("genuine request verifies");
        prop_assert!(verified.verified);
        prop_assert_eq!(verified.secret_index, 0);
    }

    #[test]
    fn any_single_byte_change_of_the_body_fails(
        flavor in flavor(),
        secrets in raw_secrets(2),
        body in proptest::collection::vec(any::<u8>(), 1..1024),
        at in any::<proptest::sample::Index>(),
        delta in 1u8..=255,
        now in now(),
    ) {
        prop_assume!(flavor.authenticates_body_bytes());
        let verifier = verifier(flavor, &secrets);
        let headers = signed(&verifier, &body, now);
        let mut tampered = body.clone();
        let index = at.index(tampered.len());
        tampered[index] ^= delta;
        prop_assert_eq!(verifier.verify(&headers, &tampered, now), Err(VerifyError::InvalidSignature));
    }

    #[test]
    fn any_configured_secret_is_accepted_with_its_index(
        flavor in flavor(),
        secrets in raw_secrets(5),
        which in any::<proptest::sample::Index>(),
        body in proptest::collection::vec(any::<u8>(), 0..512),
        now in now(),
    ) {
        let index = which.index(secrets.len());
        // A sender that only knows one of the secrets.
        let sender = verifier(flavor, &secrets[index..=index]);
        let receiver = verifier(flavor, &secrets);
        let verified = receiver.verify(&signed(&sender, &body, now), &body, now).expect("rotated secret verifies");
        prop_assert_eq!(verified.secret_index as usize, index);
    }

    #[test]
    fn arbitrary_signature_header_bytes_never_panic_or_pass(
        flavor in flavor(),
        value in proptest::collection::vec(any::<u8>(), 0..200),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        now in now(),
    ) {
        let verifier = verifier(flavor, &[b"secret".to_vec()]);
        let mut headers = signed(&verifier, &body, now);
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            headers.insert(HeaderName::from_static(signature_header(flavor)), value);
            prop_assert!(verifier.verify(&headers, &body, now).is_err());
        }
    }

    #[test]
    fn handshake_detection_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = slack_url_verification_challenge(&body);
    }

    #[test]
    fn a_meta_handshake_is_answered_only_with_the_verify_token(query in "[a-z.=&%0-9_+-]{0,80}", now in now()) {
        let meta = verifier(Flavor::Preset(Preset::Meta), &[b"app".to_vec()]);
        let headers = HeaderMap::new();
        let head = RequestHead { method: &http::Method::GET, query: Some(&query), headers: &headers };
        let outcome = meta.check(head, b"", now);
        prop_assert!(!matches!(outcome, Ok(Checked::Deliver(_))), "a GET is never an event");
        if query.contains("prop-verify-token") {
            return Ok(());
        }
        prop_assert!(outcome.is_err(), "{query} was answered");
    }

    #[test]
    fn signed_bodies_of_handshaking_presets_are_answered_or_delivered(
        flavor in proptest::sample::select(vec![Preset::Slack, Preset::Zoom]),
        body in proptest::collection::vec(any::<u8>(), 0..256),
        now in now(),
    ) {
        let verifier = verifier(Flavor::Preset(flavor), &[b"secret".to_vec()]);
        let headers = signed(&verifier, &body, now);
        prop_assert!(verifier.check(RequestHead::post(&headers), &body, now).is_ok());
    }
}
