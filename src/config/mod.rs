//! Configuration: the TOML shape documented in the README, layered as
//! built-in defaults < file < `HOOKGATE_SECTION__KEY` environment variables,
//! then validated once with messages that name the offending key.
//!
//! Files: the shapes here and in `sources` and `secret`; reading in `load`
//! (`layers` merges file and environment with spans, `tolerant` keeps
//! deserializing past failures, `explain` words them); the checks a
//! configuration answers on its own in `validate`; findings in `diagnostics`
//! and the keys that name them in `keypath`.

mod capacity;
mod diagnostics;
mod explain;
mod keypath;
mod layers;
mod load;
mod reconcile;
mod registry;
mod routes;
mod secret;
mod sources;
mod tolerant;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

pub use capacity::{largest_record_body, ENVELOPE_ALLOWANCE};
pub use diagnostics::{ConfigIssue, Diagnostic, Location, Override, Report, Severity};
pub use keypath::{KeyPath, Segment};
pub use load::{LoadError, Loaded};
pub use reconcile::{default_api, ReconcileConfig, GITHUB_RETENTION};
pub use registry::{SchemaRegistryConfig, SubjectStrategy};
pub use routes::{covers, matches, route, RouteConfig};
pub use secret::{Secret, SecretError};
pub use sources::{
    HmacAlgorithm, HmacSpec, KeySpec, LargeBodies, Preset, RecordFormat, RecordKey, SignatureEncoding, SourceConfig,
};
pub use validate::MAX_REPLAY_RATE;

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
    /// Most requests in flight (body being read, verified, published) from one client address; beyond it 429.
    pub max_in_flight_per_client: usize,
    /// Header names whose values are replaced by "[redacted]" in the envelope.
    pub redact_headers: Vec<String>,
    /// Also replace the values of signature headers (every preset's, and each `hmac.header`); see `SIGNATURE_HEADERS`.
    pub redact_signatures: bool,
}

/// The signature and token headers of the presets, redacted in envelopes by
/// default (`ingest.redact_signatures`): whoever reads a body-only signature
/// could post the same body again as a new, verified delivery.
pub const SIGNATURE_HEADERS: [&str; 9] = [
    "x-hub-signature",
    "x-hub-signature-256",
    "x-shopify-hmac-sha256",
    "stripe-signature",
    "x-slack-signature",
    "webhook-signature",
    "x-zm-signature",
    "x-twilio-signature",
    "x-gitlab-token",
];

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
    /// Confluent Schema Registry: when set, envelope values are registered and framed.
    pub schema_registry: Option<SchemaRegistryConfig>,
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
    /// Quota per client IP address, charged to requests that passed verification; absent means unlimited.
    pub per_client_ip: Option<Quota>,
    /// Quota per client IP address for requests that failed verification (answered 429 beyond it).
    pub unverified_per_client_ip: Quota,
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
    /// Bearer tokens; with none, the API is open (allowed on loopback only) except for replays.
    pub tokens: Vec<TokenConfig>,
    /// Kafka consumer group of the indexer.
    pub consumer_group: String,
    /// Time a client has to send the complete request headers.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Most open connections; further connections wait in the kernel backlog.
    pub max_connections: usize,
    /// Most open connections from one client address (socket peer; IPv6 per /64); beyond it a 429 and the connection closed.
    pub max_connections_per_ip: usize,
    /// Most live-tail streams open at once; beyond it 503 `too_many_streams`.
    pub max_streams: usize,
    /// Topics a bulk replay may publish to instead of each source's own (`topic` of `POST /v1/replays`).
    pub replay_topics: Vec<String>,
    /// Events per second of a bulk replay that names no `rate`.
    pub replay_rate: u32,
    /// PostgreSQL: keep a word index for `q=` (costs the indexer's write
    /// about 60-80 µs per event; without it `q=` reads each candidate body).
    /// SQLite always keeps its own.
    pub text_index: bool,
}

/// `[metrics]`: Prometheus exposition and health checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address serving /metrics, /healthz and /readyz.
    pub listen: SocketAddr,
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

    /// The topic an event of `event_type` from `source` goes to: its first
    /// matching route's, else the source's topic.
    pub fn route_for<'a>(&'a self, source: &'a SourceConfig, event_type: &str) -> &'a str {
        route(&source.routes, event_type, self.topic_for(source))
    }

    /// Every topic events may be published to (routes included), without repeats.
    pub fn topics(&self) -> Vec<String> {
        let routed = self
            .sources
            .iter()
            .flat_map(|s| s.routes.iter().map(|r| r.topic.clone()));
        let mut topics: Vec<String> = std::iter::once(self.kafka.topic.clone())
            .chain(self.sources.iter().filter_map(|s| s.topic.clone()))
            .chain(routed)
            .collect();
        topics.sort();
        topics.dedup();
        topics
    }

    /// The topics `source`'s events may go to: its own and its routes'.
    pub fn topics_of<'a>(&'a self, source: &'a SourceConfig) -> impl Iterator<Item = &'a str> {
        std::iter::once(self.topic_for(source)).chain(source.routes.iter().map(|r| r.topic.as_str()))
    }

    /// The largest body a source accepts.
    pub fn max_body_for(&self, source: &SourceConfig) -> u64 {
        source.max_body_bytes.unwrap_or(self.ingest.max_body_bytes)
    }
}

/// `user:password@` in a URL with the password replaced, for Debug output and summaries.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
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
            .field("schema_registry", &self.schema_registry)
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
            .field("header_timeout", &self.header_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("max_streams", &self.max_streams)
            .field("replay_topics", &self.replay_topics)
            .field("replay_rate", &self.replay_rate)
            .field("text_index", &self.text_index)
            .finish()
    }
}

/// Default values, in one place.
pub mod defaults {
    use std::time::Duration;

    /// Timestamp tolerance of signed requests, both ways.
    pub const TOLERANCE: Duration = Duration::from_secs(300);
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8080).into(),
            max_body_bytes: 960 * 1024,
            deadline: Duration::from_secs(8),
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            client_ip_header: None,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            max_in_flight: 5_000,
            max_in_flight_per_client: 128,
            redact_headers: vec!["authorization".into(), "cookie".into(), "proxy-authorization".into()],
            redact_signatures: true,
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: None,
            topic: "webhooks".into(),
            options: BTreeMap::new(),
            embedded_partitions: 3,
            schema_registry: None,
        }
    }
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(72 * 3600),
            max_keys: 5_000_000,
            redis: None,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_client_ip: None,
            unverified_per_client_ip: Quota {
                per_second: 1,
                burst: 20,
            },
            max_tracked_clients: 100_000,
        }
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
            header_timeout: Duration::from_secs(5),
            max_connections: 1024,
            max_connections_per_ip: 64,
            max_streams: 256,
            replay_topics: Vec::new(),
            replay_rate: 100,
            text_index: false,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 9464).into(),
        }
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
        let config = Config::from_toml(
            "[kafka.options]\n\"sasl.password\" = \"env:HOOKGATE_TEST_SASL_PW\"\n\"linger.ms\" = \"5\"\n",
        )
        .unwrap();
        let options = config.kafka.resolved_options().unwrap();
        assert_eq!(options["sasl.password"], "pw");
        assert_eq!(options["linger.ms"], "5");
        let broken =
            Config::from_toml("[kafka.options]\n\"sasl.password\" = \"env:HOOKGATE_TEST_UNSET_PW\"\n").unwrap();
        assert_eq!(broken.kafka.resolved_options().unwrap_err().0, "sasl.password");
    }
}
