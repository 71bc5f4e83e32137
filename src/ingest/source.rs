//! A configured source as the request path uses it: its verifier, limits,
//! topic and where its dedup key and event type come from, prepared once.

use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderName;

use crate::config::{route, Config, KeySpec, RecordFormat, RecordKey, RouteConfig, SourceConfig, SIGNATURE_HEADERS};
use crate::verify::{ConfigProblem, Verifier};

/// Everything the handler needs to know about one source.
#[derive(Debug)]
pub struct Source {
    /// The source's name (also its metric label).
    pub name: String,
    /// Checks signatures.
    pub verifier: Verifier,
    /// Kafka topic of its events that no route takes.
    pub topic: String,
    /// Topics by event type, first match wins.
    pub routes: Vec<RouteConfig>,
    /// What the Kafka records look like.
    pub record_format: RecordFormat,
    /// What the Kafka record key is.
    pub record_key: RecordKey,
    /// Largest accepted body.
    pub max_body: u64,
    /// Where the dedup key comes from.
    pub dedup_key: KeySpec,
    /// Where the event type comes from.
    pub event_type: KeySpec,
    /// Headers whose values never reach an envelope: `ingest.redact_headers`,
    /// the static credential header, and the signature headers (every
    /// preset's and this source's, e.g. a declarative `hmac.header`) unless
    /// `ingest.redact_signatures = false`.
    pub hidden_headers: Vec<HeaderName>,
    /// The dedup namespace of its replayable signatures: `<name>#signature`
    /// (`#` is not allowed in a source name, so it meets no source's keys).
    pub signature_scope: String,
    /// `large_bodies.above_bytes`: longer bodies go to the history store, not into the record.
    pub large_bodies_above: Option<u64>,
}

impl Source {
    /// Prepares a source; fails on a problem config validation would also report.
    pub fn new(config: &Config, source: &SourceConfig) -> Result<Self, ConfigProblem> {
        let verifier = Verifier::from_source(source)?;
        let hidden_headers = hidden_headers(config, &verifier);
        Ok(Self {
            name: source.name.clone(),
            verifier,
            hidden_headers,
            topic: config.topic_for(source).to_owned(),
            routes: source.routes.clone(),
            record_format: source.record_format,
            record_key: source.key.clone(),
            max_body: config.max_body_for(source),
            dedup_key: source.dedup_key(),
            event_type: source.event_type(),
            signature_scope: format!("{}#signature", source.name),
            large_bodies_above: source.large_bodies.map(|large| large.above_bytes),
        })
    }
}

/// The headers of a source whose values never reach an envelope, sorted, each once.
fn hidden_headers(config: &Config, verifier: &Verifier) -> Vec<HeaderName> {
    let redact_signatures = config.ingest.redact_signatures;
    let configured = config.ingest.redact_headers.iter().map(String::as_str);
    let signatures = SIGNATURE_HEADERS.iter().copied().filter(|_| redact_signatures);
    let own_signature = verifier.signature_header().filter(|_| redact_signatures);
    let mut hidden: Vec<HeaderName> = configured
        .chain(signatures)
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .chain(own_signature.into_iter().chain(verifier.credential_header()).cloned())
        .collect();
    hidden.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    hidden.dedup();
    hidden
}

impl Source {
    /// The topic of an event of `event_type`: the first matching route's, else the source's.
    pub fn topic_for(&self, event_type: &str) -> &str {
        route(&self.routes, event_type, &self.topic)
    }
}

/// All sources by name.
pub type Sources = HashMap<String, Arc<Source>>;

/// Prepares every configured source.
pub fn prepare(config: &Config) -> Result<Sources, (String, ConfigProblem)> {
    config
        .sources
        .iter()
        .map(|source| {
            Source::new(config, source)
                .map(|prepared| (source.name.clone(), Arc::new(prepared)))
                .map_err(|problem| (source.name.clone(), problem))
        })
        .collect()
}
