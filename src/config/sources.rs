//! The `[[sources]]` tables: a sender's verification preset, secrets,
//! limits, and where its dedup key, event type and record key come from.

use std::time::Duration;

use http::HeaderName;
use serde::Deserialize;

use super::{defaults, Quota, ReconcileConfig, Secret, DEMO_SOURCE};

/// How a source's requests are authenticated.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// X-Hub-Signature-256, HMAC-SHA256 hex.
    Github,
    /// Stripe-Signature with t= and v1=.
    Stripe,
    /// X-Shopify-Hmac-Sha256, HMAC-SHA256 base64.
    Shopify,
    /// X-Slack-Signature v0 with X-Slack-Request-Timestamp.
    Slack,
    /// webhook-id/-timestamp/-signature, v1 (HMAC) and v1a (Ed25519).
    StandardWebhooks,
    /// GitLab: X-Gitlab-Token, a static token compared to the secrets.
    Gitlab,
    /// Zoom: x-zm-signature v0 with x-zm-request-timestamp; endpoint.url_validation answered.
    Zoom,
    /// Meta (WhatsApp, Instagram, Messenger): X-Hub-Signature-256; GET subscription handshake answered.
    Meta,
    /// Twilio: X-Twilio-Signature, HMAC-SHA1 over `public_url` and the sorted form parameters.
    Twilio,
    /// HTTP Basic authentication: a static `user:password` credential.
    Basic,
    /// A static token in the header `token_header`.
    Token,
    /// Declarative HMAC, described by the source's `[sources.hmac]` table.
    Hmac,
    /// Explicitly unverified.
    None,
}

impl Preset {
    /// The name used in configuration and in the envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Github => "github",
            Preset::Stripe => "stripe",
            Preset::Shopify => "shopify",
            Preset::Slack => "slack",
            Preset::StandardWebhooks => "standard-webhooks",
            Preset::Gitlab => "gitlab",
            Preset::Zoom => "zoom",
            Preset::Meta => "meta",
            Preset::Twilio => "twilio",
            Preset::Basic => "basic",
            Preset::Token => "token",
            Preset::Hmac => "hmac",
            Preset::None => "none",
        }
    }

    /// The deduplication key a preset's provider sends.
    pub fn default_dedup_key(self) -> KeySpec {
        match self {
            Preset::Github => KeySpec::Header(HeaderName::from_static("x-github-delivery")),
            Preset::Stripe => KeySpec::Json("/id".into()),
            Preset::Shopify => KeySpec::Header(HeaderName::from_static("x-shopify-webhook-id")),
            Preset::Slack => KeySpec::Json("/event_id".into()),
            Preset::StandardWebhooks => KeySpec::Header(HeaderName::from_static("webhook-id")),
            // Idempotency-Key stays the same when a delivery is retried (GitLab 17.4 and
            // later); older GitLab sends only X-Gitlab-Event-UUID.
            Preset::Gitlab => KeySpec::Headers(
                [
                    HeaderName::from_static("idempotency-key"),
                    HeaderName::from_static("x-gitlab-event-uuid"),
                ]
                .into(),
            ),
            Preset::Twilio => KeySpec::Header(HeaderName::from_static("i-twilio-idempotency-token")),
            // Zoom and Meta document no delivery id that survives a retry.
            Preset::Zoom | Preset::Meta | Preset::Basic | Preset::Token | Preset::Hmac | Preset::None => KeySpec::None,
        }
    }

    /// Where a preset's provider puts the event type.
    pub fn default_event_type(self) -> KeySpec {
        match self {
            Preset::Github => KeySpec::Header(HeaderName::from_static("x-github-event")),
            Preset::Stripe | Preset::StandardWebhooks => KeySpec::Json("/type".into()),
            Preset::Shopify => KeySpec::Header(HeaderName::from_static("x-shopify-topic")),
            Preset::Slack => KeySpec::Json("/event/type".into()),
            Preset::Gitlab => KeySpec::Header(HeaderName::from_static("x-gitlab-event")),
            Preset::Zoom => KeySpec::Json("/event".into()),
            Preset::Meta => KeySpec::Json("/object".into()),
            Preset::Twilio | Preset::Basic | Preset::Token | Preset::Hmac | Preset::None => KeySpec::None,
        }
    }

    /// True for the modes in which the sender only presents a static
    /// credential (`gitlab`, `basic`, `token`): it proves the sender knows a
    /// shared secret, but signs nothing, so unlike a signature it neither
    /// protects the body nor stops a captured request from being replayed.
    pub fn is_static_credential(self) -> bool {
        matches!(self, Preset::Gitlab | Preset::Basic | Preset::Token)
    }

    /// The preset named `name` in configuration, if any.
    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|preset| preset.as_str() == name)
    }

    /// Every preset, in the order of the documentation.
    pub const ALL: [Preset; 13] = [
        Preset::Github,
        Preset::Stripe,
        Preset::Shopify,
        Preset::Slack,
        Preset::StandardWebhooks,
        Preset::Gitlab,
        Preset::Zoom,
        Preset::Meta,
        Preset::Twilio,
        Preset::Basic,
        Preset::Token,
        Preset::Hmac,
        Preset::None,
    ];
}

/// Where a value is read from a request: `header:NAME`, `header:A|B` (the
/// first of these headers the request carries), `json:/pointer` or `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySpec {
    /// A request header (its name parsed once, at configuration time).
    Header(HeaderName),
    /// The first of several headers that is present, e.g. a newer delivery id before an older one.
    Headers(Box<[HeaderName]>),
    /// A JSON pointer (RFC 6901) into the body.
    Json(String),
    /// Not taken.
    None,
}

impl std::str::FromStr for KeySpec {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        if spec == "none" {
            Ok(KeySpec::None)
        } else if let Some(names) = spec.strip_prefix("header:") {
            let mut parsed = names
                .split('|')
                .map(|name| {
                    HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("`{name}` is not a valid header name"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            match parsed.len() {
                1 => Ok(KeySpec::Header(parsed.remove(0))),
                _ => Ok(KeySpec::Headers(parsed.into())),
            }
        } else if let Some(pointer) = spec.strip_prefix("json:") {
            if pointer.is_empty() || pointer.starts_with('/') {
                Ok(KeySpec::Json(pointer.to_owned()))
            } else {
                Err(format!("JSON pointer `{pointer}` must start with '/'"))
            }
        } else {
            Err(format!(
                "`{spec}` is not `header:NAME`, `header:NAME|NAME`, `json:/pointer` or `none`"
            ))
        }
    }
}

impl<'de> Deserialize<'de> for KeySpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = String::deserialize(deserializer)?;
        spec.parse().map_err(serde::de::Error::custom)
    }
}

/// What the Kafka record key of a source's events is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKey {
    /// The gateway-assigned event id (spreads evenly over partitions).
    Id,
    /// The deduplication key, or the id when there is none.
    DedupKey,
    /// No key: the producer's partitioner decides.
    None,
}

/// `[sources.hmac]`: a declarative HMAC scheme for senders without a preset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacSpec {
    /// Header carrying the signature.
    pub header: String,
    /// `sha1`, `sha256` or `sha512`.
    #[serde(default = "source_defaults::hmac_algorithm")]
    pub algorithm: HmacAlgorithm,
    /// `hex` or `base64`.
    #[serde(default = "source_defaults::hmac_encoding")]
    pub encoding: SignatureEncoding,
    /// Text before the signature in the header, e.g. "sha256="; stripped before decoding.
    #[serde(default)]
    pub prefix: String,
    /// What is signed: a template of `{body}` and `{header:NAME}` parts, e.g. "{header:x-timestamp}.{body}".
    #[serde(default = "source_defaults::hmac_signed")]
    pub signed: String,
    /// Header with a Unix timestamp in seconds, checked against the source's tolerance.
    pub timestamp_header: Option<String>,
}

/// Digest used by the declarative HMAC scheme.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HmacAlgorithm {
    /// HMAC-SHA1 (legacy senders only).
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

/// Text encoding of a signature.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SignatureEncoding {
    /// Lower- or upper-case hexadecimal.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

/// `[[sources]]`: one webhook sender.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The `{source}` in `/webhooks/{source}`.
    pub name: String,
    /// Verification preset, `hmac` or `none`.
    pub verify: Preset,
    /// Signing secrets; several while rotating. Standard Webhooks takes `whsec_` (HMAC) or `whpk_` (Ed25519 public key).
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// The declarative scheme, required when `verify = "hmac"`.
    pub hmac: Option<HmacSpec>,
    /// Topic for this source; defaults to `kafka.topic`.
    pub topic: Option<String>,
    /// Kafka record key.
    #[serde(default = "source_defaults::record_key")]
    pub key: RecordKey,
    /// Quota for this source as a whole; absent means unlimited.
    pub rate_limit: Option<Quota>,
    /// Largest accepted body; defaults to `ingest.max_body_bytes`.
    pub max_body_bytes: Option<u64>,
    /// Deduplication key; defaults to the preset's.
    pub dedup_key: Option<KeySpec>,
    /// Event type; defaults to the preset's.
    pub event_type: Option<KeySpec>,
    /// Accepted clock difference for signed timestamps, both ways.
    #[serde(default, with = "humantime_serde")]
    pub tolerance: Option<Duration>,
    /// The URL the sender posts to, as configured at the sender (scheme, host, path; no query):
    /// what `twilio` and `{url}` in `hmac.signed` sign, since the gateway may sit behind a proxy.
    pub public_url: Option<String>,
    /// Meta's verify token, compared to `hub.verify_token` in the GET subscription handshake.
    pub verify_token: Option<Secret>,
    /// `verify = "token"`: the header carrying the token, e.g. "x-webhook-token".
    pub token_header: Option<String>,
    /// `verify = "token"`: text before the token in that header, e.g. "Bearer " (case-insensitive).
    pub token_prefix: Option<String>,
    /// `[sources.reconcile]`: compare the provider's record of sent webhooks with the history (github, stripe).
    pub reconcile: Option<ReconcileConfig>,
}

impl SourceConfig {
    /// A source as a `[[sources]]` table holding only `name`, `verify` and
    /// `secrets` reads: every other key at its default. For code that builds
    /// a source rather than parsing one (tests, tools); set further keys with
    /// struct update syntax, `SourceConfig { tolerance, ..SourceConfig::new(..) }`.
    pub fn new(name: impl Into<String>, verify: Preset, secrets: Vec<Secret>) -> Self {
        Self {
            name: name.into(),
            verify,
            secrets,
            hmac: None,
            topic: None,
            key: source_defaults::record_key(),
            rate_limit: None,
            max_body_bytes: None,
            dedup_key: None,
            event_type: None,
            tolerance: None,
            public_url: None,
            verify_token: None,
            token_header: None,
            token_prefix: None,
            reconcile: None,
        }
    }

    /// The deduplication key spec in force.
    pub fn dedup_key(&self) -> KeySpec {
        self.dedup_key
            .clone()
            .unwrap_or_else(|| self.verify.default_dedup_key())
    }

    /// The event type spec in force.
    pub fn event_type(&self) -> KeySpec {
        self.event_type
            .clone()
            .unwrap_or_else(|| self.verify.default_event_type())
    }

    /// The timestamp tolerance in force.
    pub fn tolerance(&self) -> Duration {
        self.tolerance.unwrap_or(defaults::TOLERANCE)
    }
}

impl SourceConfig {
    /// The unverified source present when hookgate runs without a config file.
    pub fn demo() -> Self {
        Self {
            dedup_key: Some(KeySpec::Header(HeaderName::from_static("idempotency-key"))),
            event_type: Some(KeySpec::Header(HeaderName::from_static("x-event-type"))),
            ..Self::new(DEMO_SOURCE, Preset::None, Vec::new())
        }
    }
}

/// Serde defaults of the source tables.
mod source_defaults {
    use super::*;

    pub(super) fn hmac_algorithm() -> HmacAlgorithm {
        HmacAlgorithm::Sha256
    }
    pub(super) fn hmac_encoding() -> SignatureEncoding {
        SignatureEncoding::Hex
    }
    pub(super) fn hmac_signed() -> String {
        "{body}".into()
    }
    pub(super) fn record_key() -> RecordKey {
        RecordKey::Id
    }
}
