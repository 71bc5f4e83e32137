//! `[kafka.schema_registry]`: the Confluent Schema Registry hookgate
//! registers its envelope schema with, and how record subjects are named.

use std::time::Duration;

use serde::Deserialize;

use super::Secret;

/// How the subject of a record value is named (Confluent's strategies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectStrategy {
    /// `<topic>-value`: one subject per topic (Confluent's default).
    #[default]
    TopicName,
    /// `hookgate.v1.WebhookEnvelope`: one subject for every topic.
    RecordName,
}

/// `[kafka.schema_registry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// Base URL of the registry, e.g. `http://registry:8081`.
    pub url: String,
    /// User for HTTP Basic authentication (with `password`).
    pub username: Option<Secret>,
    /// Password for HTTP Basic authentication (with `username`).
    pub password: Option<Secret>,
    /// Bearer token (instead of Basic authentication).
    pub token: Option<Secret>,
    /// How subjects are named.
    #[serde(default)]
    pub subject_strategy: SubjectStrategy,
    /// Time allowed for each registry request at start-up.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

impl SchemaRegistryConfig {
    /// Problems with these settings, as (key under `kafka.schema_registry`, message).
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut problems = Vec::new();
        let url = self.url.as_str();
        let has_host = url
            .split_once("://")
            .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && !rest.is_empty());
        if !has_host {
            problems.push(("url", "must be an http:// or https:// URL"));
        } else if url.contains('@') {
            problems.push(("url", "must not hold credentials: use username/password or token"));
        }
        match (&self.username, &self.password) {
            (Some(_), None) => problems.push(("password", "required with username")),
            (None, Some(_)) => problems.push(("username", "required with password")),
            _ => {}
        }
        if self.token.is_some() && self.username.is_some() {
            problems.push(("token", "use either token or username/password, not both"));
        }
        if self.timeout.is_zero() {
            problems.push(("timeout", "must be greater than 0"));
        }
        problems
    }
}
