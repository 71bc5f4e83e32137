//! A configured source as the request path uses it: its verifier, limits,
//! topic and where its dedup key and event type come from, prepared once.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Config, KeySpec, RecordKey, SourceConfig};
use crate::verify::{ConfigProblem, Verifier};

/// Everything the handler needs to know about one source.
#[derive(Debug)]
pub struct Source {
    /// The source's name (also its metric label).
    pub name: String,
    /// Checks signatures.
    pub verifier: Verifier,
    /// Kafka topic of its events.
    pub topic: String,
    /// What the Kafka record key is.
    pub record_key: RecordKey,
    /// Largest accepted body.
    pub max_body: u64,
    /// Where the dedup key comes from.
    pub dedup_key: KeySpec,
    /// Where the event type comes from.
    pub event_type: KeySpec,
    /// `large_bodies.above_bytes`: longer bodies go to the history store, not into the record.
    pub large_bodies_above: Option<u64>,
}

impl Source {
    /// Prepares a source; fails on a problem config validation would also report.
    pub fn new(config: &Config, source: &SourceConfig) -> Result<Self, ConfigProblem> {
        Ok(Self {
            name: source.name.clone(),
            verifier: Verifier::from_source(source)?,
            topic: config.topic_for(source).to_owned(),
            record_key: source.key.clone(),
            max_body: config.max_body_for(source),
            dedup_key: source.dedup_key(),
            event_type: source.event_type(),
            large_bodies_above: source.large_bodies.map(|large| large.above_bytes),
        })
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
