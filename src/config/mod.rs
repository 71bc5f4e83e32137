//! Configuration: the TOML shape documented in the README, layered as
//! built-in defaults < file < `HOOKGATE_SECTION__KEY` environment variables,
//! then validated once with messages that name the offending key.

mod secret;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

pub use secret::{Secret, SecretError};
pub use validate::{ConfigIssue, Severity};

/// Name of the source that exists when hookgate runs without a config file.
pub const DEMO_SOURCE: &str = "demo";

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The webhook listener.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// The Kafka cluster; absent (or without `brokers`) means the embedded in-memory broker.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Deduplication window and store.
    #[serde(default)]
    pub dedup: DedupConfig,
    /// Limits shared by all sources.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// The history store and query API.
    #[serde(default)]
    pub query: QueryConfig,
    /// The metrics and health listener.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The webhook senders hookgate accepts, one per `/webhooks/{name}`.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
}

/// `[ingest]`: how webhooks are received.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Address of the webhook listener.
    pub listen: SocketAddr,
    /// Largest accepted body, unless a source sets its own.
    pub max_body_bytes: u64,
    /// Time from receiving the request headers to answering; a 503 goes back when it runs out.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    /// Time a client has to send the complete request headers.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Time a client has to send the complete body once the headers arrived.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Header holding the client address, set by a trusted reverse proxy (its last entry, the one the proxy appended, is used).
    pub client_ip_header: Option<String>,
    /// Most open connections; further connections wait in the kernel backlog.
    pub max_connections: usize,
    /// Most open connections from one client address (socket peer; IPv6 per /64); beyond it a 429 and the connection closed.
    pub max_connections_per_ip: usize,
    /// Most requests being published at once; beyond it requests get 503 at once.
    pub max_in_flight: usize,
    /// Header names whose values are replaced by "[redacted]" in the envelope.
    pub redact_headers: Vec<String>,
}

/// `[kafka]`: where envelopes are published.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers; absent means the embedded in-memory broker (nothing survives exit).
    pub brokers: Option<String>,
    /// Default topic for every source.
    pub topic: String,
    /// Extra librdkafka properties; those that would weaken the delivery guarantee are rejected.
    /// Values written `env:NAME` or `file:PATH` are resolved like secrets (e.g. `sasl.password`).
    pub options: BTreeMap<String, String>,
    /// Partitions per topic created by the embedded broker.
    pub embedded_partitions: i32,
}

/// `[dedup]`: how repeated deliveries are recognised.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// How long a delivered key is remembered.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Most keys held in memory; the oldest are forgotten first beyond it.
    pub max_keys: usize,
    /// Redis URL shared by a fleet of ingest replicas; absent means in-process.
    pub redis: Option<String>,
}

/// A token-bucket quota.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Sustained requests per second (the bucket refill rate).
    pub per_second: u32,
    /// Bucket capacity: requests that may arrive at once after a quiet period.
    pub burst: u32,
}

/// `[rate_limit]`: limits that apply across sources.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Quota per client IP address; absent means unlimited.
    pub per_client_ip: Option<Quota>,
    /// Most client addresses tracked; idle ones are dropped first.
    pub max_tracked_clients: usize,
}

/// A permission a query token carries.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// List, fetch and stream events.
    Read,
    /// Publish an event again.
    Replay,
}

/// `[[query.tokens]]`: one bearer token of the query API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The bearer token (`env:`, `file:` or literal).
    pub token: Secret,
    /// What the token may do.
    pub scopes: Vec<Scope>,
    /// Sources the token may see; absent means all.
    pub sources: Option<Vec<String>>,
}

/// `[query]`: the history store and query API.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Address of the query API.
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://...`.
    pub store: String,
    /// Events older than this are deleted.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Bearer tokens; with none, the API is open (allowed on loopback only).
    pub tokens: Vec<TokenConfig>,
    /// Kafka consumer group of the indexer.
    pub consumer_group: String,
}

/// `[metrics]`: Prometheus exposition and health checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address serving /metrics, /healthz and /readyz.
    pub listen: SocketAddr,
}

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
            Preset::Hmac => "hmac",
            Preset::None => "none",
        }
    }

    /// The deduplication key a preset's provider sends.
    pub fn default_dedup_key(self) -> KeySpec {
        match self {
            Preset::Github => KeySpec::Header("x-github-delivery".into()),
            Preset::Stripe => KeySpec::Json("/id".into()),
            Preset::Shopify => KeySpec::Header("x-shopify-webhook-id".into()),
            Preset::Slack => KeySpec::Json("/event_id".into()),
            Preset::StandardWebhooks => KeySpec::Header("webhook-id".into()),
            Preset::Hmac | Preset::None => KeySpec::None,
        }
    }

    /// Where a preset's provider puts the event type.
    pub fn default_event_type(self) -> KeySpec {
        match self {
            Preset::Github => KeySpec::Header("x-github-event".into()),
            Preset::Stripe | Preset::StandardWebhooks => KeySpec::Json("/type".into()),
            Preset::Shopify => KeySpec::Header("x-shopify-topic".into()),
            Preset::Slack => KeySpec::Json("/event/type".into()),
            Preset::Hmac | Preset::None => KeySpec::None,
        }
    }
}

/// Where a value is read from a request: `header:NAME`, `json:/pointer` or `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySpec {
    /// A request header, by lower-case name.
    Header(String),
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
        } else if let Some(name) = spec.strip_prefix("header:") {
            http::HeaderName::from_bytes(name.as_bytes())
                .map(|n| KeySpec::Header(n.as_str().to_owned()))
                .map_err(|_| format!("`{name}` is not a valid header name"))
        } else if let Some(pointer) = spec.strip_prefix("json:") {
            if pointer.is_empty() || pointer.starts_with('/') {
                Ok(KeySpec::Json(pointer.to_owned()))
            } else {
                Err(format!("JSON pointer `{pointer}` must start with '/'"))
            }
        } else {
            Err(format!("`{spec}` is not `header:NAME`, `json:/pointer` or `none`"))
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
    #[serde(default = "defaults::hmac_algorithm")]
    pub algorithm: HmacAlgorithm,
    /// `hex` or `base64`.
    #[serde(default = "defaults::hmac_encoding")]
    pub encoding: SignatureEncoding,
    /// Text before the signature in the header, e.g. "sha256="; stripped before decoding.
    #[serde(default)]
    pub prefix: String,
    /// What is signed: a template of `{body}` and `{header:NAME}` parts, e.g. "{header:x-timestamp}.{body}".
    #[serde(default = "defaults::hmac_signed")]
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
    #[serde(default = "defaults::record_key")]
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
}

impl SourceConfig {
    /// The deduplication key spec in force.
    pub fn dedup_key(&self) -> KeySpec {
        self.dedup_key.clone().unwrap_or_else(|| self.verify.default_dedup_key())
    }

    /// The event type spec in force.
    pub fn event_type(&self) -> KeySpec {
        self.event_type.clone().unwrap_or_else(|| self.verify.default_event_type())
    }

    /// The timestamp tolerance in force.
    pub fn tolerance(&self) -> Duration {
        self.tolerance.unwrap_or(defaults::TOLERANCE)
    }
}

impl KafkaConfig {
    /// The librdkafka options with `env:`/`file:` values resolved; an error names the option.
    pub fn resolved_options(&self) -> Result<BTreeMap<String, String>, (String, SecretError)> {
        self.options
            .iter()
            .map(|(name, value)| {
                if value.starts_with("env:") || value.starts_with("file:") {
                    let secret = Secret::resolve(value).map_err(|e| (name.clone(), e))?;
                    Ok((name.clone(), String::from_utf8_lossy(secret.expose()).into_owned()))
                } else {
                    Ok((name.clone(), value.clone()))
                }
            })
            .collect()
    }
}

impl Config {
    /// The topic a source's events go to.
    pub fn topic_for<'a>(&'a self, source: &'a SourceConfig) -> &'a str {
        source.topic.as_deref().unwrap_or(&self.kafka.topic)
    }

    /// Every topic events may be published to, without repeats.
    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = std::iter::once(self.kafka.topic.clone())
            .chain(self.sources.iter().filter_map(|s| s.topic.clone()))
            .collect();
        topics.sort();
        topics.dedup();
        topics
    }

    /// The largest body a source accepts.
    pub fn max_body_for(&self, source: &SourceConfig) -> u64 {
        source.max_body_bytes.unwrap_or(self.ingest.max_body_bytes)
    }

    /// Reads a file (or none: the built-in demo setup) and applies environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Self, LoadError> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            let text = std::fs::read_to_string(path)
                .map_err(|e| LoadError::Read(path.display().to_string(), e))?;
            figment = figment.merge(Toml::string(&text));
        }
        figment = figment.merge(Env::prefixed("HOOKGATE_").filter(|k| k.as_str().contains("__")).split("__"));
        let mut config: Config = figment.extract().map_err(|e| LoadError::Parse(Box::new(e)))?;
        if path.is_none() && config.sources.is_empty() {
            config.sources.push(SourceConfig::demo());
        }
        Ok(config)
    }

    /// Parses TOML text without environment overrides (tests, `check-config` on stdin).
    pub fn from_toml(text: &str) -> Result<Self, LoadError> {
        Figment::from(Toml::string(text)).extract().map_err(|e| LoadError::Parse(Box::new(e)))
    }
}

impl SourceConfig {
    /// The unverified source present when hookgate runs without a config file.
    pub fn demo() -> Self {
        Self {
            name: DEMO_SOURCE.into(),
            verify: Preset::None,
            secrets: Vec::new(),
            hmac: None,
            topic: None,
            key: RecordKey::Id,
            rate_limit: None,
            max_body_bytes: None,
            dedup_key: Some(KeySpec::Header("idempotency-key".into())),
            event_type: Some(KeySpec::Header("x-event-type".into())),
            tolerance: None,
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    /// The TOML (or an override) does not fit the expected shape.
    #[error("{0}")]
    Parse(Box<figment::Error>),
}

/// `user:password@` in a URL with the password replaced, for Debug output.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:[redacted]@{host}")
        }
        None => url.to_owned(),
    }
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Option values may be passwords (sasl.password, ssl.key.password): names only.
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .field("embedded_partitions", &self.embedded_partitions)
            .finish()
    }
}

impl std::fmt::Debug for DedupConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedupConfig")
            .field("window", &self.window)
            .field("max_keys", &self.max_keys)
            .field("redis", &self.redis.as_deref().map(redact_url))
            .finish()
    }
}

impl std::fmt::Debug for QueryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryConfig")
            .field("listen", &self.listen)
            .field("store", &redact_url(&self.store))
            .field("retention", &self.retention)
            .field("tokens", &self.tokens)
            .field("consumer_group", &self.consumer_group)
            .finish()
    }
}

/// Default values, in one place.
pub mod defaults {
    use super::*;

    /// Timestamp tolerance of signed requests, both ways.
    pub const TOLERANCE: Duration = Duration::from_secs(300);

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

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8080).into(),
            max_body_bytes: 1024 * 1024,
            deadline: Duration::from_secs(8),
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            client_ip_header: None,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            max_in_flight: 5_000,
            redact_headers: vec!["authorization".into(), "cookie".into(), "proxy-authorization".into()],
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self { brokers: None, topic: "webhooks".into(), options: BTreeMap::new(), embedded_partitions: 3 }
    }
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self { window: Duration::from_secs(72 * 3600), max_keys: 5_000_000, redis: None }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { per_client_ip: None, max_tracked_clients: 100_000 }
    }
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8081).into(),
            store: "sqlite://hookgate.db".into(),
            retention: Duration::from_secs(30 * 24 * 3600),
            tokens: Vec::new(),
            consumer_group: "hookgate-indexer".into(),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { listen: ([127, 0, 0, 1], 9464).into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_passwords_in_urls_and_kafka_options() {
        let config = Config::from_toml(
            "[kafka]\nbrokers = \"b:9092\"\n[kafka.options]\n\"sasl.password\" = \"kafka-pw\"\n\
             [dedup]\nredis = \"redis://u:redis-pw@h:6379\"\n[query]\nstore = \"postgres://u:pg-pw@h/db\"\n",
        )
        .unwrap();
        let shown = format!("{config:?}");
        for secret in ["kafka-pw", "redis-pw", "pg-pw"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("sasl.password") && shown.contains("redis://u:[redacted]@h:6379"));
    }

    #[test]
    fn kafka_option_values_resolve_like_secrets() {
        std::env::set_var("HOOKGATE_TEST_SASL_PW", "pw");
        let config = Config::from_toml("[kafka.options]\n\"sasl.password\" = \"env:HOOKGATE_TEST_SASL_PW\"\n\"linger.ms\" = \"5\"\n").unwrap();
        let options = config.kafka.resolved_options().unwrap();
        assert_eq!(options["sasl.password"], "pw");
        assert_eq!(options["linger.ms"], "5");
        let broken = Config::from_toml("[kafka.options]\n\"sasl.password\" = \"env:HOOKGATE_TEST_UNSET_PW\"\n").unwrap();
        assert_eq!(broken.kafka.resolved_options().unwrap_err().0, "sasl.password");
    }
}
