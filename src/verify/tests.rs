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

#[test]
fn only_signatures_without_a_timestamp_are_replayable() {
    let replayable = [
        Preset::Github,
        Preset::Shopify,
        Preset::Meta,
        Preset::Twilio,
        Preset::Hmac,
    ];
    for preset in EVERY_PRESET {
        let verifier = Verifier::from_source(&any_source(preset)).unwrap();
        let sent = match verifier.sign(b"{\"a\":1}", "evt_1", at(NOW)) {
            Ok(pairs) => pairs.into_iter().collect::<HeaderMap>(),
            Err(_) => HeaderMap::new(),
        };
        let fingerprint = verifier.replayable_signature(&sent);
        assert_eq!(fingerprint.is_some(), replayable.contains(&preset), "{preset:?}");
    }
}

#[test]
fn a_replayed_signature_has_one_fingerprint_whatever_its_hex_case() {
    let github = verifier(Preset::Github, &["It's a Secret to Everybody"]);
    let lower = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let upper = format!("sha256={}", lower["sha256=".len()..].to_uppercase());
    let of = |value: &str| github.replayable_signature(&headers(&[("x-hub-signature-256", value)]));
    assert!(of(lower).is_some());
    assert_eq!(of(lower), of(&upper));
    let other = "sha256=857107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_ne!(of(lower), of(other));
    assert_eq!(of("sha256=zz"), None, "malformed: never verified, no fingerprint");
}

#[test]
fn only_the_single_header_schemes_name_their_signature_header() {
    let named = |preset| {
        Verifier::from_source(&any_source(preset))
            .unwrap()
            .signature_header()
            .cloned()
    };
    assert_eq!(named(Preset::Github).unwrap(), "x-hub-signature-256");
    assert_eq!(named(Preset::Hmac).unwrap(), "x-sig");
    assert_eq!(named(Preset::Zoom).unwrap(), "x-zm-signature");
    assert_eq!(named(Preset::Stripe), None, "covered by ingest's fixed list");
    assert_eq!(named(Preset::None), None);
}

#[test]
fn an_hmac_dedup_key_outside_the_signed_template_is_warned_about() {
    let text = |signed: &str, key: &str, stamp: &str| {
        format!(
            "[[sources]]\nname = \"x\"\nverify = \"hmac\"\nsecrets = [\"k\"]\ndedup_key = \"{key}\"\n\
             [sources.hmac]\nheader = \"x-sig\"\nsigned = \"{signed}\"\n{stamp}"
        )
    };
    let warnings = |toml: String| source_warnings(0, &crate::config::Config::from_toml(&toml).unwrap().sources[0]);
    let found = warnings(text("{body}", "header:x-id", ""));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].key, "sources[0].dedup_key");
    assert!(
        found[0].message.contains("header:x-id is not covered by hmac.signed"),
        "{}",
        found[0].message
    );
    assert!(warnings(text("{header:x-id}.{body}", "header:x-id", "")).is_empty());
    assert!(
        warnings(text("{body}", "json:/id", "")).is_empty(),
        "the body is always signed"
    );
    assert!(warnings(text("{header:x-a}.{body}", "header:x-a|x-b", "")).len() == 1);
    let stamped = warnings(text(
        "{header:x-ts}.{body}",
        "header:x-id",
        "timestamp_header = \"x-ts\"\n",
    ));
    assert!(stamped[0].message.contains("within the timestamp tolerance"));
    let github = "[[sources]]\nname = \"g\"\nverify = \"github\"\nsecrets = [\"k\"]\n";
    assert!(warnings(github.to_owned()).is_empty(), "presets are not declarative");
}
