//! The verifier as a whole: every preset builds, signs what it verifies,
//! refuses what it must, and never shows a secret.

use super::testing::{at, headers, signed, source, verifier, NOW};
use super::*;

const EVERY_PRESET: [Preset; 13] = Preset::ALL;

/// A valid source of each preset, with two secrets where secrets apply.
fn any_source(preset: Preset) -> SourceConfig {
    let secrets: &[&str] = match preset {
        Preset::None => &[],
        Preset::StandardWebhooks => &["whsec_c3VwZXItc2VjcmV0LWtleS1tYXRlcmlhbA==", "whsec_b2xkLXNlY3JldA=="],
        Preset::Basic => &["super:secret-key-material", "old:secret"],
        _ => &["super-secret-key-material", "old-secret"],
    };
    let mut source = source(preset, secrets);
    match preset {
        Preset::Hmac => {
            let text =
                "[[sources]]\nname = \"x\"\nverify = \"hmac\"\nsecrets = [\"k\"]\n[sources.hmac]\nheader = \"x-sig\"\n";
            source.hmac = crate::config::Config::from_toml(text).unwrap().sources[0].hmac.clone();
        }
        Preset::Twilio => source.public_url = Some("https://hooks.example.com/webhooks/x".into()),
        Preset::Meta => source.verify_token = Some(crate::config::Secret::from_bytes("verify-token-material")),
        Preset::Token => source.token_header = Some("x-webhook-token".into()),
        _ => {}
    }
    source
}

#[test]
fn every_preset_is_named_once() {
    for preset in Preset::ALL {
        assert_eq!(Preset::from_name(preset.as_str()), Some(preset));
    }
    assert_eq!(Preset::from_name("gitlab "), None);
}

#[test]
fn every_preset_builds_and_names_itself() {
    for preset in EVERY_PRESET {
        let verifier = Verifier::from_source(&any_source(preset)).unwrap();
        assert_eq!(verifier.scheme(), preset.as_str());
    }
}

#[test]
fn sign_then_verify_for_every_signing_preset() {
    for preset in EVERY_PRESET.into_iter().filter(|p| *p != Preset::None) {
        let verifier = Verifier::from_source(&any_source(preset)).unwrap();
        let sent = signed(&verifier, b"{\"id\":1}", at(NOW));
        let outcome = verifier.verify(&sent, b"{\"id\":1}", at(NOW));
        assert_eq!(
            outcome,
            Ok(Verified {
                verified: true,
                secret_index: 0
            }),
            "{preset:?}"
        );
        if preset.is_static_credential() {
            // Nothing binds a static credential to the body.
            assert!(verifier.verify(&sent, b"{\"id\":2}", at(NOW)).is_ok(), "{preset:?}");
            assert_eq!(
                verifier.verify(&headers(&[]), b"{}", at(NOW)),
                Err(VerifyError::MissingCredential),
                "{preset:?}"
            );
            continue;
        }
        assert_eq!(
            verifier.verify(&sent, b"{\"id\":2}", at(NOW)),
            Err(VerifyError::InvalidSignature),
            "{preset:?}"
        );
        assert_eq!(
            verifier.verify(&headers(&[]), b"{}", at(NOW)),
            Err(VerifyError::MissingSignature),
            "{preset:?}"
        );
    }
}

#[test]
fn none_accepts_everything_unverified_and_cannot_sign() {
    let none = verifier(Preset::None, &[]);
    let sent = headers(&[("x-hub-signature-256", "sha256=nonsense")]);
    assert_eq!(
        none.verify(&sent, b"anything", at(0)),
        Ok(Verified {
            verified: false,
            secret_index: 0
        })
    );
    assert_eq!(none.sign(b"x", "id", at(NOW)).unwrap_err(), SignError::Unverified);
}

#[test]
fn debug_output_contains_no_secret() {
    for preset in EVERY_PRESET {
        let source = any_source(preset);
        let shown = format!("{:?}", Verifier::from_source(&source).unwrap());
        for secret in &source.secrets {
            let text = String::from_utf8_lossy(secret.expose()).into_owned();
            assert!(!shown.contains(&text), "{preset:?}: {shown}");
            assert!(!shown.contains(&text[2..8]), "{preset:?}: {shown}");
            assert!(
                !shown.contains(&const_hex::encode(secret.expose())[..16]),
                "{preset:?}: {shown}"
            );
        }
    }
}

#[test]
fn verifier_is_send_and_sync() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Verifier>();
}

#[test]
fn signing_presets_need_secrets() {
    for preset in EVERY_PRESET
        .into_iter()
        .filter(|p| !matches!(p, Preset::None | Preset::Hmac))
    {
        let problem = Verifier::from_source(&SourceConfig {
            secrets: Vec::new(),
            ..any_source(preset)
        })
        .unwrap_err();
        assert_eq!(problem.key, "secrets", "{preset:?}");
    }
}

#[test]
fn timestamped_presets_need_a_tolerance_of_a_second() {
    for preset in [Preset::Stripe, Preset::Slack, Preset::StandardWebhooks, Preset::Zoom] {
        let mut source = any_source(preset);
        source.tolerance = Some(std::time::Duration::from_millis(500));
        assert_eq!(
            Verifier::from_source(&source).unwrap_err().key,
            "tolerance",
            "{preset:?}"
        );
    }
    let mut github = any_source(Preset::Github);
    github.tolerance = Some(std::time::Duration::ZERO);
    assert!(Verifier::from_source(&github).is_ok(), "github signs no timestamp");
}

#[test]
fn delivery_id_must_be_a_header_value() {
    let github = verifier(Preset::Github, &["k"]);
    assert_eq!(
        github.sign(b"x", "bad\nid", at(NOW)).unwrap_err(),
        SignError::InvalidDeliveryId
    );
}

#[test]
fn codes_are_stable_and_distinct() {
    let codes: Vec<_> = VerifyError::ALL.iter().map(VerifyError::code).collect();
    assert_eq!(
        codes,
        [
            "missing_signature",
            "malformed_signature",
            "invalid_signature",
            "missing_timestamp",
            "malformed_timestamp",
            "stale_timestamp",
            "future_timestamp",
            "missing_credential",
            "malformed_credential",
            "invalid_credential",
            "malformed_handshake"
        ]
    );
    for error in VerifyError::ALL {
        assert!(error.to_string().starts_with("the "), "{error}");
    }
}

#[test]
fn invalid_signature_message_never_shows_the_expected_value() {
    let github = verifier(Preset::Github, &["k"]);
    let genuine = signed(&github, b"body", at(NOW));
    let expected = genuine["x-hub-signature-256"].to_str().unwrap().to_owned();
    let error = github.verify(&genuine, b"tampered", at(NOW)).unwrap_err();
    let shown = format!("{error} {error:?} {}", error.code());
    assert!(!shown.contains(&expected[7..]), "{shown}");
}

#[test]
fn source_issue_is_keyed_from_the_root() {
    let mut stripe = any_source(Preset::Stripe);
    assert_eq!(source_issue(3, &stripe), None);
    stripe.tolerance = Some(std::time::Duration::ZERO);
    let issue = source_issue(3, &stripe).unwrap();
    assert_eq!(issue.key, "sources[3].tolerance");
    assert_eq!(issue.severity, crate::config::Severity::Error);
}

#[test]
fn config_problem_displays_key_and_message() {
    let problem = problem("hmac.signed", "must contain {body}");
    assert_eq!(problem.to_string(), "hmac.signed: must contain {body}");
}
