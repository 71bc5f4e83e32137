//! A configured source as the request path uses it: its verifier, limits,
//! topic and where its dedup key and event type come from, prepared once.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{route, Config, KeySpec, RecordFormat, RecordKey, RouteConfig, SourceConfig};
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
    /// Headers whose values never reach an envelope: the static credential
    /// header, and the signature header (e.g. a declarative `hmac.header`)
    /// unless `ingest.redact_signatures = false`.
    pub secret_headers: Vec<http::HeaderName>,
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
        let signature = verifier.signature_header().filter(|_| config.ingest.redact_signatures);
        let secret_headers = signature
            .into_iter()
            .chain(verifier.credential_header())
            .cloned()
            .collect();
        Ok(Self {
            name: source.name.clone(),
            verifier,
            secret_headers,
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
