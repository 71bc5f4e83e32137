//! Registering the envelope schema with a Confluent Schema Registry at
//! start-up (REST API v1: `POST /subjects/{subject}/versions` with
//! `schemaType: PROTOBUF`), one subject per topic under TopicNameStrategy or
//! one for all under RecordNameStrategy. Registering a schema the subject
//! already holds returns its id, so every replica may do it at every start.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::json;

use crate::config::{Config, RecordFormat, SchemaRegistryConfig, SubjectStrategy};
use crate::envelope::{PROTO_SCHEMA, SCHEMA};

/// Schema ids by topic.
pub type SchemaIds = HashMap<String, u32>;

/// Media type of the registry's requests and answers.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Why the envelope schema could not be registered; each ends the start-up.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No answer: the registry is down, unreachable or too slow.
    #[error("schema registry {url} is unreachable: {reason}")]
    Unreachable {
        /// The configured URL.
        url: String,
        /// What the HTTP client said.
        reason: String,
    },
    /// 409: the subject's compatibility check refuses the schema.
    #[error("schema registry refuses the schema for subject `{subject}`: incompatible with its earlier versions ({message})")]
    Incompatible {
        /// The subject registered under.
        subject: String,
        /// The registry's message.
        message: String,
    },
    /// 401 or 403: the credentials are missing or wrong.
    #[error("schema registry refuses hookgate's credentials for subject `{subject}` ({status}): {message}")]
    Unauthorized {
        /// The subject registered under.
        subject: String,
        /// The HTTP status.
        status: u16,
        /// The registry's message.
        message: String,
    },
    /// Any other refusal, e.g. 422 invalid schema.
    #[error("schema registry answered {status} for subject `{subject}`: {message}")]
    Refused {
        /// The subject registered under.
        subject: String,
        /// The HTTP status.
        status: u16,
        /// The registry's message.
        message: String,
    },
}

/// The subject of envelope values written to `topic`.
pub fn subject(strategy: SubjectStrategy, topic: &str) -> String {
    match strategy {
        SubjectStrategy::TopicName => format!("{topic}-value"),
        SubjectStrategy::RecordName => SCHEMA.to_owned(),
    }
}

/// Registers the envelope schema for every topic an envelope-format source
/// (or one of its routes) writes to; returns the ids by topic.
pub async fn register_schemas(config: &Config, registry: &SchemaRegistryConfig) -> Result<SchemaIds, RegistryError> {
    let client = reqwest::Client::builder()
        .timeout(registry.timeout)
        .build()
        .map_err(|e| unreachable(registry, &e))?;
    let mut ids_by_subject: HashMap<String, u32> = HashMap::new();
    let mut ids = SchemaIds::new();
    for source in config
        .sources
        .iter()
        .filter(|s| s.record_format == RecordFormat::Envelope)
    {
        for topic in config.topics_of(source) {
            let subject = subject(registry.subject_strategy, topic);
            let id = match ids_by_subject.get(&subject) {
                Some(id) => *id,
                None => register(&client, registry, &subject).await?,
            };
            ids_by_subject.insert(subject, id);
            ids.insert(topic.to_owned(), id);
        }
    }
    Ok(ids)
}

/// `POST /subjects/{subject}/versions`.
async fn register(
    client: &reqwest::Client,
    registry: &SchemaRegistryConfig,
    subject: &str,
) -> Result<u32, RegistryError> {
    let url = format!("{}/subjects/{subject}/versions", registry.url.trim_end_matches('/'));
    let body = json!({ "schemaType": "PROTOBUF", "schema": PROTO_SCHEMA });
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .header(reqwest::header::ACCEPT, CONTENT_TYPE)
        .body(body.to_string());
    if let Some(token) = &registry.token {
        request = request.bearer_auth(String::from_utf8_lossy(token.expose()));
    } else if let (Some(user), Some(password)) = (&registry.username, &registry.password) {
        let password = String::from_utf8_lossy(password.expose()).into_owned();
        request = request.basic_auth(String::from_utf8_lossy(user.expose()), Some(password));
    }
    let response = request.send().await.map_err(|e| unreachable(registry, &e))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| unreachable(registry, &e))?;
    if status.is_success() {
        let registered: Registered = serde_json::from_str(&text).map_err(|e| RegistryError::Refused {
            subject: subject.to_owned(),
            status: status.as_u16(),
            message: format!("answer without a schema id: {e}"),
        })?;
        tracing::info!(subject, id = registered.id, "envelope schema registered");
        return Ok(registered.id);
    }
    Err(refusal(subject, status.as_u16(), &text))
}

/// `{"id": N}`, the answer to a registration.
#[derive(Deserialize)]
struct Registered {
    /// The schema's id.
    id: u32,
}

/// `{"error_code": N, "message": "..."}`, the registry's error body.
#[derive(Deserialize)]
struct ErrorBody {
    /// The registry's explanation.
    message: String,
}

fn refusal(subject: &str, status: u16, text: &str) -> RegistryError {
    let message = serde_json::from_str::<ErrorBody>(text)
        .map(|e| e.message)
        .unwrap_or_else(|_| text.chars().take(200).collect());
    let subject = subject.to_owned();
    match status {
        409 => RegistryError::Incompatible { subject, message },
        401 | 403 => RegistryError::Unauthorized {
            subject,
            status,
            message,
        },
        _ => RegistryError::Refused {
            subject,
            status,
            message,
        },
    }
}

fn unreachable(registry: &SchemaRegistryConfig, error: &reqwest::Error) -> RegistryError {
    RegistryError::Unreachable {
        url: crate::config::redact_url(&registry.url),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_strategy() {
        assert_eq!(subject(SubjectStrategy::TopicName, "github.push"), "github.push-value");
        assert_eq!(
            subject(SubjectStrategy::RecordName, "github.push"),
            "hookgate.v1.WebhookEnvelope"
        );
    }

    #[test]
    fn refusals_are_told_apart_and_name_the_subject() {
        let body = r#"{"error_code":409,"message":"Schema being registered is incompatible"}"#;
        let error = refusal("t-value", 409, body);
        assert!(matches!(&error, RegistryError::Incompatible { subject, .. } if subject == "t-value"));
        assert!(error.to_string().contains("`t-value`"), "{error}");
        assert!(matches!(
            refusal("s", 401, "{}"),
            RegistryError::Unauthorized { status: 401, .. }
        ));
        let other = refusal("s", 422, "not json");
        assert!(other.to_string().contains("not json"), "{other}");
    }
}
