//! Request verification: one [`Verifier`] per source, built once at start-up
//! from its preset and secrets, then shared by every request. A check ends
//! in an event to deliver or in a provider's handshake the gateway answers.
//!
//! Files, one per scheme family: `declarative` (header-carried HMAC, the
//! `hmac` preset and the engine of `github`, `shopify`, `slack`, `zoom` and
//! `meta`), `stripe`, `standard` (Standard Webhooks, HMAC and Ed25519),
//! `twilio` (URL and form parameters), `credential` (static credentials:
//! `token`, `gitlab`, `basic`); the handshakes in `handshake` with the
//! providers' own parts in `slack`, `zoom` and `meta`; shared pieces in
//! `mac` (keys, tags, constant-time search), `request`, `template` and
//! `timestamp`.
//!
//! Every configured secret is tried (rotation), comparisons are constant
//! time, timestamps must lie within the source's tolerance both ways, and no
//! error or `Debug` output ever shows a secret or an expected signature.

mod credential;
mod declarative;
mod github;
mod handshake;
mod mac;
mod meta;
mod request;
mod shopify;
mod slack;
mod standard;
mod stripe;
mod template;
#[cfg(test)]
mod testing;
mod timestamp;
mod twilio;
mod zoom;

use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::config::{ConfigIssue, HmacAlgorithm, KeySpec, Preset, SourceConfig};
use credential::{BasicScheme, TokenScheme};
use declarative::HeaderScheme;
use mac::MacKey;
use meta::Meta;
use standard::StandardWebhooks;
use stripe::Stripe;
use twilio::Twilio;
use zoom::Zoom;

pub use handshake::HandshakeSample;
pub use request::{Checked, Reply, RequestHead};
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
    /// One header carrying an HMAC: github, shopify, hmac.
    Header(HeaderScheme),
    /// Slack's header HMAC, and its url_verification handshake.
    Slack(HeaderScheme),
    /// Zoom's header HMAC, and its endpoint.url_validation handshake.
    Zoom(Zoom),
    /// Meta's header HMAC, and its GET subscription handshake.
    Meta(Meta),
    /// `Stripe-Signature`.
    Stripe(Stripe),
    /// `webhook-id` / `webhook-timestamp` / `webhook-signature`.
    Standard(StandardWebhooks),
    /// `X-Twilio-Signature` over the public URL and the form parameters.
    Twilio(Twilio),
    /// A static token in a header: token, gitlab.
    Token(TokenScheme),
    /// HTTP Basic authentication.
    Basic(BasicScheme),
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
    /// The static credential (token, Basic authentication, verify token) is absent.
    #[error("the request carries no credential for this source")]
    MissingCredential,
    /// The credential header is not in the expected form (scheme, prefix, base64).
    #[error("the credential is malformed")]
    MalformedCredential,
    /// Well-formed, but not one of the configured credentials.
    #[error("the credential does not match any configured secret")]
    InvalidCredential,
    /// A request in a handshake's shape that is not the provider's handshake
    /// (e.g. a GET without `hub.mode=subscribe` or without `hub.challenge`).
    #[error("the request is not a valid handshake for this source")]
    MalformedHandshake,
}

impl VerifyError {
    /// Every reason, e.g. to pre-register metric labels.
    pub const ALL: [VerifyError; 11] = [
        VerifyError::MissingSignature,
        VerifyError::MalformedSignature,
        VerifyError::InvalidSignature,
        VerifyError::MissingTimestamp,
        VerifyError::MalformedTimestamp,
        VerifyError::StaleTimestamp,
        VerifyError::FutureTimestamp,
        VerifyError::MissingCredential,
        VerifyError::MalformedCredential,
        VerifyError::InvalidCredential,
        VerifyError::MalformedHandshake,
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
            VerifyError::MissingCredential => "missing_credential",
            VerifyError::MalformedCredential => "malformed_credential",
            VerifyError::InvalidCredential => "invalid_credential",
            VerifyError::MalformedHandshake => "malformed_handshake",
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
            Preset::Slack => Scheme::Slack(slack::scheme(source)?),
            Preset::Zoom => Scheme::Zoom(Zoom::new(source)?),
            Preset::Meta => Scheme::Meta(Meta::new(source)?),
            Preset::Hmac => Scheme::Header(HeaderScheme::declarative(source)?),
            Preset::Stripe => Scheme::Stripe(Stripe::new(source)?),
            Preset::StandardWebhooks => Scheme::Standard(StandardWebhooks::new(source)?),
            Preset::Twilio => Scheme::Twilio(Twilio::new(source)?),
            Preset::Gitlab => Scheme::Token(TokenScheme::fixed("x-gitlab-token", "idempotency-key", source)?),
            Preset::Token => Scheme::Token(TokenScheme::configured(source)?),
            Preset::Basic => Scheme::Basic(BasicScheme::new(source)?),
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

    /// True for `verify = "none"`: nothing is checked.
    pub fn is_unverified(&self) -> bool {
        matches!(self.scheme, Scheme::Unverified)
    }

    /// True when the sender only presents a static credential (`gitlab`,
    /// `basic`, `token`): weaker than a signature, see [`Preset::is_static_credential`].
    pub fn is_static_credential(&self) -> bool {
        self.preset.is_static_credential()
    }

    /// The header carrying a static credential, which must never be copied
    /// into an envelope: anyone reading the topic could reuse it.
    pub fn credential_header(&self) -> Option<&HeaderName> {
        match &self.scheme {
            Scheme::Token(scheme) => Some(scheme.header()),
            Scheme::Basic(_) => Some(&http::header::AUTHORIZATION),
            _ => None,
        }
    }

    /// The header carrying the request's signature, for schemes with one
    /// header-borne HMAC (github, shopify, slack, zoom, meta, hmac): its
    /// value is never copied into an envelope.
    pub fn signature_header(&self) -> Option<&HeaderName> {
        match &self.scheme {
            Scheme::Header(scheme) | Scheme::Slack(scheme) => Some(scheme.header()),
            Scheme::Zoom(zoom) => Some(zoom.signature().header()),
            Scheme::Meta(meta) => Some(meta.signature().header()),
            _ => None,
        }
    }

    /// For a request that passed [`Verifier::check`] under a scheme whose
    /// signature covers no timestamp (github, shopify, meta, twilio, and
    /// `hmac` without `timestamp_header`): the SHA-256 of its decoded
    /// signature. Such a signature stays valid forever, so whoever saw it can
    /// send the request again; ingest deduplicates on this fingerprint.
    /// `None` for every other scheme (their timestamps bound a replay).
    pub fn replayable_signature(&self, headers: &HeaderMap) -> Option<[u8; 32]> {
        match &self.scheme {
            Scheme::Header(scheme) => scheme.replayable(headers),
            Scheme::Meta(meta) => meta.signature().replayable(headers),
            Scheme::Twilio(twilio) => twilio.replayable(headers),
            _ => None,
        }
    }

    /// The `WWW-Authenticate` challenge the source's 401 answers carry, if its scheme has one.
    pub fn challenge(&self) -> Option<&'static str> {
        matches!(self.scheme, Scheme::Basic(_)).then_some(credential::BASIC_CHALLENGE)
    }

    /// True when the source answers a GET handshake (Meta's subscription);
    /// every other source accepts POST only.
    pub fn answers_get(&self) -> bool {
        matches!(self.scheme, Scheme::Meta(_))
    }

    /// Checks a request at time `now`: what it is (an event, or a handshake
    /// to answer) once its signature or credential checked out. A GET is
    /// only ever a handshake.
    pub fn check(&self, head: RequestHead<'_>, body: &[u8], now: SystemTime) -> Result<Checked, VerifyError> {
        if head.method == Method::GET {
            return match &self.scheme {
                Scheme::Meta(meta) => meta.subscribe(head).map(Checked::Answer),
                _ => Err(VerifyError::MalformedHandshake),
            };
        }
        let verified = self.verify_head(head, body, now)?;
        Ok(match self.answer(body, verified) {
            Some(reply) => Checked::Answer(reply),
            None => Checked::Deliver(verified),
        })
    }

    /// Checks the signature (or credential) of a POST without query string,
    /// as most senders make: [`Verifier::check`] without the handshakes.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        self.verify_head(RequestHead::post(headers), body, now)
    }

    fn verify_head(&self, head: RequestHead<'_>, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        match &self.scheme {
            Scheme::Unverified => Ok(Verified {
                verified: false,
                secret_index: 0,
            }),
            Scheme::Header(scheme) | Scheme::Slack(scheme) => scheme.verify(head, body, now),
            Scheme::Zoom(scheme) => scheme.verify(head, body, now),
            Scheme::Meta(scheme) => scheme.verify(head, body, now),
            Scheme::Stripe(scheme) => scheme.verify(head.headers, body, now),
            Scheme::Standard(scheme) => scheme.verify(head.headers, body, now),
            Scheme::Twilio(scheme) => scheme.verify(head, body),
            Scheme::Token(scheme) => scheme.verify(head.headers),
            Scheme::Basic(scheme) => scheme.verify(head.headers),
        }
    }

    /// Headers a genuine sender would add, signed with the FIRST secret
    /// (used by `hookgate send`, tests, benches), for a POST to the public
    /// URL without query string. Where the provider also sends a delivery id
    /// header (`X-GitHub-Delivery`, `X-Shopify-Webhook-Id`, `webhook-id`,
    /// `Idempotency-Key`, `I-Twilio-Idempotency-Token`), it carries
    /// `delivery_id`; so do headers a declarative `hmac.signed` template
    /// reads, except its timestamp. Twilio's include its form content type.
    pub fn sign(
        &self,
        body: &[u8],
        delivery_id: &str,
        now: SystemTime,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        let id = HeaderValue::from_str(delivery_id).map_err(|_| SignError::InvalidDeliveryId)?;
        match &self.scheme {
            Scheme::Unverified => Err(SignError::Unverified),
            Scheme::Header(scheme) | Scheme::Slack(scheme) => scheme.sign(body, &id, now),
            Scheme::Zoom(scheme) => scheme.sign(body, &id, now),
            Scheme::Meta(scheme) => scheme.sign(body, &id, now),
            Scheme::Stripe(scheme) => scheme.sign(body, now),
            Scheme::Standard(scheme) => scheme.sign(body, &id, now),
            Scheme::Twilio(scheme) => scheme.sign(body, &id),
            Scheme::Token(scheme) => Ok(scheme.sign(&id)),
            Scheme::Basic(scheme) => Ok(scheme.sign()),
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

/// The warnings about `sources[index]` that need its verifier: a declarative
/// `hmac` source whose dedup key is read from a header the signature does
/// not cover (anyone holding one delivery can send it again under a new key).
pub fn source_warnings(index: usize, source: &SourceConfig) -> Vec<ConfigIssue> {
    if source.verify != Preset::Hmac {
        return Vec::new();
    }
    let Ok(scheme) = HeaderScheme::declarative(source) else {
        return Vec::new();
    };
    let key = source.dedup_key();
    if scheme.covers(&key) {
        return Vec::new();
    }
    let names: Vec<&str> = match &key {
        KeySpec::Header(name) => vec![name.as_str()],
        KeySpec::Headers(names) => names.iter().map(HeaderName::as_str).collect(),
        KeySpec::None | KeySpec::Json(_) => Vec::new(),
    };
    let replays = if source.hmac.as_ref().is_some_and(|hmac| hmac.timestamp_header.is_some()) {
        "within the timestamp tolerance"
    } else {
        "unless it repeats the signature, which ingest also deduplicates"
    };
    vec![ConfigIssue::warning(
        format!("sources[{index}].dedup_key"),
        format!(
            "header:{} is not covered by hmac.signed: whoever saw one delivery can post it again with a new \
             key, accepted as a new event {replays}; add {{header:NAME}} for it to hmac.signed",
            names.join("|")
        ),
    )]
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

/// The source's `public_url`, checked: an absolute http(s) URL without
/// credentials, query or fragment (the query string is taken from each request).
fn public_url(source: &SourceConfig) -> Result<Option<&str>, ConfigProblem> {
    let Some(url) = source.public_url.as_deref() else {
        return Ok(None);
    };
    let parsed = url.parse::<http::Uri>().ok();
    let absolute = parsed
        .as_ref()
        .is_some_and(|uri| matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some());
    if !absolute || url.contains(['?', '#', '@']) {
        return Err(problem(
            "public_url",
            format!(
                "`{url}` must be an absolute http:// or https:// URL without user:password@, query or fragment, \
                 e.g. https://hooks.example.com/webhooks/NAME"
            ),
        ));
    }
    Ok(Some(url))
}

/// Timestamps are compared in whole seconds, so a tolerance under one second rejects everything.
fn check_tolerance(source: &SourceConfig) -> Result<(), ConfigProblem> {
    if source.tolerance().as_secs() == 0 {
        return Err(problem("tolerance", "must be at least 1s"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
