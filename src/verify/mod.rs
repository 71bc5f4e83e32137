//! Signature verification: one [`Verifier`] per source, built once at start-up
//! from its preset and secrets, then shared by every request.
//!
//! Files, one per scheme family: `declarative` (header-carried HMAC, the
//! `hmac` preset and the engine of `github`, `shopify` and `slack`), `stripe`,
//! `standard` (Standard Webhooks, HMAC and Ed25519); shared pieces in `mac`
//! (keys, tags, constant-time search), `template` and `timestamp`.
//!
//! Every configured secret is tried (rotation), comparisons are constant
//! time, timestamps must lie within the source's tolerance both ways, and no
//! error or `Debug` output ever shows a secret or an expected signature.

mod declarative;
mod github;
mod mac;
mod shopify;
mod slack;
mod standard;
mod stripe;
mod template;
#[cfg(test)]
mod testing;
mod timestamp;

use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::{ConfigIssue, HmacAlgorithm, Preset, SourceConfig};
use declarative::HeaderScheme;
use mac::MacKey;
use standard::StandardWebhooks;
use stripe::Stripe;

pub use slack::slack_url_verification_challenge;

/// A source whose verification settings cannot work, found at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigProblem {
    /// The key it is about, relative to the source table, e.g. `secrets[1]` or `hmac.signed`.
    pub key: String,
    /// What is wrong and how to fix it; never contains a secret.
    pub message: String,
}

/// Builds a [`ConfigProblem`].
fn problem(key: &str, message: impl Into<String>) -> ConfigProblem {
    ConfigProblem {
        key: key.to_owned(),
        message: message.into(),
    }
}

/// The verification scheme of one source, ready for requests. Cheap to share
/// (`Send + Sync`); its `Debug` output shows no key material.
#[derive(Debug)]
pub struct Verifier {
    preset: Preset,
    scheme: Scheme,
}

#[derive(Debug)]
enum Scheme {
    /// `verify = "none"`.
    Unverified,
    /// One header carrying an HMAC: github, shopify, slack, hmac.
    Header(HeaderScheme),
    /// `Stripe-Signature`.
    Stripe(Stripe),
    /// `webhook-id` / `webhook-timestamp` / `webhook-signature`.
    Standard(StandardWebhooks),
}

/// The outcome of a successful check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// False only for `verify = "none"`, where nothing was checked.
    pub verified: bool,
    /// Index in the source's `secrets` of the secret that matched (0 when unverified).
    pub secret_index: u32,
}

/// Why a request was refused. Its messages never contain a signature or a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The signature (or a header it covers) is absent.
    #[error("the request carries no signature for this source's scheme")]
    MissingSignature,
    /// The signature header cannot be parsed (prefix, encoding, length, list syntax).
    #[error("the signature header is malformed")]
    MalformedSignature,
    /// Well-formed, but no configured secret produced it for this body.
    #[error("the signature does not match the request with any configured secret")]
    InvalidSignature,
    /// The scheme signs a timestamp and none was sent.
    #[error("the request carries no signed timestamp")]
    MissingTimestamp,
    /// The timestamp is not Unix seconds written as plain digits.
    #[error("the timestamp is not a Unix time in seconds")]
    MalformedTimestamp,
    /// The timestamp is older than the tolerance allows (a late or replayed request).
    #[error("the timestamp is older than the accepted tolerance")]
    StaleTimestamp,
    /// The timestamp is further ahead than the tolerance allows (a skewed sender clock).
    #[error("the timestamp is further in the future than the accepted tolerance")]
    FutureTimestamp,
}

impl VerifyError {
    /// Every reason, e.g. to pre-register metric labels.
    pub const ALL: [VerifyError; 7] = [
        VerifyError::MissingSignature,
        VerifyError::MalformedSignature,
        VerifyError::InvalidSignature,
        VerifyError::MissingTimestamp,
        VerifyError::MalformedTimestamp,
        VerifyError::StaleTimestamp,
        VerifyError::FutureTimestamp,
    ];

    /// Stable snake_case code for error bodies and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::MissingSignature => "missing_signature",
            VerifyError::MalformedSignature => "malformed_signature",
            VerifyError::InvalidSignature => "invalid_signature",
            VerifyError::MissingTimestamp => "missing_timestamp",
            VerifyError::MalformedTimestamp => "malformed_timestamp",
            VerifyError::StaleTimestamp => "stale_timestamp",
            VerifyError::FutureTimestamp => "future_timestamp",
        }
    }
}

/// Why [`Verifier::sign`] cannot produce headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// `verify = "none"`: there is nothing to sign with.
    #[error("the source is unverified (verify = \"none\"), so requests are not signed")]
    Unverified,
    /// The first secret is an Ed25519 public key (`whpk_`), which can verify but not sign.
    #[error("the first secret is an Ed25519 public key (whpk_), which cannot sign")]
    PublicKeyOnly,
    /// The source has no secret at all.
    #[error("the source has no secret to sign with")]
    NoSecret,
    /// The delivery id cannot be sent as a header value.
    #[error("the delivery id is not a valid header value")]
    InvalidDeliveryId,
}

impl Verifier {
    /// Builds the verifier of a source: decodes secrets, precomputes HMAC keys
    /// and checks the scheme's settings, naming the key of the first problem.
    pub fn from_source(source: &SourceConfig) -> Result<Verifier, ConfigProblem> {
        let scheme = match source.verify {
            Preset::Github => Scheme::Header(github::scheme(source)?),
            Preset::Shopify => Scheme::Header(shopify::scheme(source)?),
            Preset::Slack => Scheme::Header(slack::scheme(source)?),
            Preset::Hmac => Scheme::Header(HeaderScheme::declarative(source)?),
            Preset::Stripe => Scheme::Stripe(Stripe::new(source)?),
            Preset::StandardWebhooks => Scheme::Standard(StandardWebhooks::new(source)?),
            Preset::None => Scheme::Unverified,
        };
        Ok(Verifier {
            preset: source.verify,
            scheme,
        })
    }

    /// The preset name, as in configuration: "github", "stripe", ..., "none".
    pub fn scheme(&self) -> &'static str {
        self.preset.as_str()
    }

    /// Checks a request's signature headers against its raw body at time `now`.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        match &self.scheme {
            Scheme::Unverified => Ok(Verified {
                verified: false,
                secret_index: 0,
            }),
            Scheme::Header(scheme) => scheme.verify(headers, body, now),
            Scheme::Stripe(scheme) => scheme.verify(headers, body, now),
            Scheme::Standard(scheme) => scheme.verify(headers, body, now),
        }
    }

    /// Signature headers a genuine sender would add, signed with the FIRST
    /// secret (used by `hookgate send`, tests, benches). Where the provider
    /// also sends a delivery id header (`X-GitHub-Delivery`,
    /// `X-Shopify-Webhook-Id`, `webhook-id`), it carries `delivery_id`; so do
    /// headers a declarative `hmac.signed` template reads, except its timestamp.
    pub fn sign(
        &self,
        body: &[u8],
        delivery_id: &str,
        now: SystemTime,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        let id = HeaderValue::from_str(delivery_id).map_err(|_| SignError::InvalidDeliveryId)?;
        match &self.scheme {
            Scheme::Unverified => Err(SignError::Unverified),
            Scheme::Header(scheme) => scheme.sign(body, &id, now),
            Scheme::Stripe(scheme) => scheme.sign(body, now),
            Scheme::Standard(scheme) => scheme.sign(body, &id, now),
        }
    }
}

/// The start-up check of `sources[index]`: the first problem its verifier
/// finds, keyed from the configuration's root (e.g. `sources[2].hmac.signed`).
pub fn source_issue(index: usize, source: &SourceConfig) -> Option<ConfigIssue> {
    Verifier::from_source(source)
        .err()
        .map(|problem| ConfigIssue::error(format!("sources[{index}].{}", problem.key), problem.message))
}

/// A scheme that verifies needs at least one secret.
fn require_secrets(source: &SourceConfig) -> Result<(), ConfigProblem> {
    if source.secrets.is_empty() {
        return Err(problem(
            "secrets",
            "at least one secret is required to verify signatures",
        ));
    }
    Ok(())
}

/// One HMAC key per secret, in configuration order.
fn mac_keys(source: &SourceConfig, algorithm: HmacAlgorithm) -> Result<Vec<MacKey>, ConfigProblem> {
    require_secrets(source)?;
    Ok(source
        .secrets
        .iter()
        .map(|secret| MacKey::new(algorithm, secret.expose()))
        .collect())
}

/// Timestamps are compared in whole seconds, so a tolerance under one second rejects everything.
fn check_tolerance(source: &SourceConfig) -> Result<(), ConfigProblem> {
    if source.tolerance().as_secs() == 0 {
        return Err(problem("tolerance", "must be at least 1s"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::testing::{at, headers, signed, source, verifier, NOW};
    use super::*;

    const EVERY_PRESET: [Preset; 7] = [
        Preset::Github,
        Preset::Stripe,
        Preset::Shopify,
        Preset::Slack,
        Preset::StandardWebhooks,
        Preset::Hmac,
        Preset::None,
    ];

    /// A valid source of each preset, with two secrets where secrets apply.
    fn any_source(preset: Preset) -> SourceConfig {
        let secrets: &[&str] = match preset {
            Preset::None => &[],
            Preset::StandardWebhooks => &["whsec_c3VwZXItc2VjcmV0LWtleS1tYXRlcmlhbA==", "whsec_b2xkLXNlY3JldA=="],
            _ => &["super-secret-key-material", "old-secret"],
        };
        let mut source = source(preset, secrets);
        if preset == Preset::Hmac {
            let text =
                "[[sources]]\nname = \"x\"\nverify = \"hmac\"\nsecrets = [\"k\"]\n[sources.hmac]\nheader = \"x-sig\"\n";
            source.hmac = crate::config::Config::from_toml(text).unwrap().sources[0].hmac.clone();
        }
        source
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
            let problem = Verifier::from_source(&source(preset, &[])).unwrap_err();
            assert_eq!(problem.key, "secrets", "{preset:?}");
        }
    }

    #[test]
    fn timestamped_presets_need_a_tolerance_of_a_second() {
        for preset in [Preset::Stripe, Preset::Slack, Preset::StandardWebhooks] {
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
                "future_timestamp"
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
}
