//! What `check-config` prints for a configuration hookgate would start with:
//! the listeners, the broker, each source's topic, the dedup and history
//! stores, and which keys the environment set. Secrets are shown only by
//! where they come from (`env:NAME`, `file:PATH`, `literal`); URLs lose their
//! passwords.

use std::io::{self, Write};
use std::net::SocketAddr;

use anstyle::Style;
use serde::Serialize;

use super::render::plural;
use crate::config::{redact_url, Config, Override, Report, Severity};

const BOLD: Style = Style::new().bold();

/// The effective configuration, in short.
#[derive(Debug, Serialize)]
pub(super) struct Summary {
    /// Each listener and its address.
    listeners: Vec<Listener>,
    /// The Kafka brokers, or the embedded broker.
    kafka: String,
    /// Names of the librdkafka options passed through (values may be passwords).
    kafka_options: Vec<String>,
    /// One line per source.
    sources: Vec<SourceSummary>,
    /// Where delivery keys are remembered, and for how long.
    dedup: String,
    /// Where the history is stored, and for how long.
    history: String,
    /// Keys set by environment variables.
    from_environment: Vec<Override>,
}

/// A listener of `serve`.
#[derive(Debug, Serialize)]
struct Listener {
    /// "ingest", "query" or "metrics".
    role: &'static str,
    /// Its address.
    address: SocketAddr,
}

/// One `[[sources]]` entry, in short.
#[derive(Debug, Serialize)]
struct SourceSummary {
    /// The `{source}` of `/webhooks/{source}`.
    name: String,
    /// The verification preset.
    verify: &'static str,
    /// Where its events are published.
    topic: String,
    /// Where each secret comes from, never its value.
    secrets: Vec<String>,
    /// Its largest body, and from which size bodies go to the history store.
    bodies: String,
}

impl Summary {
    /// The summary of `config`, with the overrides the report lists.
    pub(super) fn of(config: &Config, report: &Report) -> Self {
        let listeners = vec![
            Listener {
                role: "ingest",
                address: config.ingest.listen,
            },
            Listener {
                role: "query",
                address: config.query.listen,
            },
            Listener {
                role: "metrics",
                address: config.metrics.listen,
            },
        ];
        let kafka = match &config.kafka.brokers {
            Some(brokers) => brokers.clone(),
            None => format!(
                "embedded in-memory broker, {} partitions per topic (events are lost at exit)",
                config.kafka.embedded_partitions
            ),
        };
        Self {
            listeners,
            kafka,
            kafka_options: config.kafka.options.keys().cloned().collect(),
            sources: config.sources.iter().map(|s| source_summary(config, s)).collect(),
            dedup: dedup_summary(config),
            history: format!(
                "{}, retention {}, {}",
                redact_url(&config.query.store),
                humantime::format_duration(config.query.retention),
                plural(config.query.tokens.len(), "query token")
            ),
            from_environment: report.overrides.clone(),
        }
    }

    /// The summary as aligned lines under an "OK" headline.
    pub(super) fn write(&self, report: &Report, out: &mut impl Write) -> io::Result<()> {
        writeln!(
            out,
            "{BOLD}{}: OK{BOLD:#} ({}, {})",
            report.file,
            plural(self.sources.len(), "source"),
            plural(report.count(Severity::Warning), "warning")
        )?;
        let listeners: Vec<String> = self
            .listeners
            .iter()
            .map(|l| format!("{} {}", l.role, l.address))
            .collect();
        row(out, "listeners", &listeners.join(", "))?;
        let options = match self.kafka_options.as_slice() {
            [] => String::new(),
            names => format!(" (options: {})", names.join(", ")),
        };
        row(out, "kafka", &format!("{}{options}", self.kafka))?;
        for (n, source) in self.sources.iter().enumerate() {
            let secrets = match source.secrets.as_slice() {
                [] => String::new(),
                origins => format!(", secrets {}", origins.join(", ")),
            };
            let line = format!(
                "{} (verify {}) -> topic {}{secrets}, {}",
                source.name, source.verify, source.topic, source.bodies
            );
            row(out, if n == 0 { "sources" } else { "" }, &line)?;
        }
        row(out, "dedup", &self.dedup)?;
        row(out, "history", &self.history)?;
        for (n, set) in self.from_environment.iter().enumerate() {
            let line = format!("{} from {}", set.key, set.variable);
            row(out, if n == 0 { "environment" } else { "" }, &line)?;
        }
        Ok(())
    }
}

fn row(out: &mut impl Write, label: &str, text: &str) -> io::Result<()> {
    writeln!(out, "  {label:<12} {text}")
}

fn source_summary(config: &Config, source: &crate::config::SourceConfig) -> SourceSummary {
    SourceSummary {
        name: source.name.clone(),
        verify: source.verify.as_str(),
        topic: config.topic_for(source).to_owned(),
        secrets: source.secrets.iter().map(|s| s.origin().to_owned()).collect(),
        bodies: bodies_summary(config, source),
    }
}

/// "bodies up to N bytes", and where the larger ones go with `large_bodies`.
fn bodies_summary(config: &Config, source: &crate::config::SourceConfig) -> String {
    let max = config.max_body_for(source);
    match source.large_bodies {
        Some(large) => format!(
            "bodies up to {max} bytes, those over {} to the history store",
            large.above_bytes
        ),
        None => format!("bodies up to {max} bytes"),
    }
}

fn dedup_summary(config: &Config) -> String {
    let dedup = &config.dedup;
    let store = match &dedup.redis {
        Some(url) => format!("redis {} (shared by ingest replicas)", redact_url(url)),
        None => format!("in process, at most {} keys", dedup.max_keys),
    };
    format!("{store}, window {}", humantime::format_duration(dedup.window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_every_part_and_no_secret() {
        std::env::set_var("HOOKGATE_SUMMARY_TEST_SECRET", "very-secret-value");
        let config = Config::from_toml(
            "[kafka]\nbrokers = \"b1:9092\"\n[kafka.options]\n\"sasl.password\" = \"kafka-pw\"\n\
             [dedup]\nredis = \"redis://u:redis-pw@h:6379\"\n[query]\nstore = \"postgres://u:pg-pw@h/db\"\n\
             [[sources]]\nname = \"gh\"\nverify = \"github\"\nsecrets = [\"env:HOOKGATE_SUMMARY_TEST_SECRET\"]\n\
             topic = \"webhooks.github\"\n",
        )
        .unwrap();
        let report = Report {
            file: "h.toml".into(),
            overrides: vec![Override {
                key: "ingest.listen".into(),
                variable: "HOOKGATE_INGEST__LISTEN".into(),
            }],
            ..Report::default()
        };
        let mut out = Vec::new();
        Summary::of(&config, &report).write(&report, &mut out).unwrap();
        let shown = anstream::adapter::strip_str(&String::from_utf8(out).unwrap()).to_string();
        for secret in ["very-secret-value", "kafka-pw", "redis-pw", "pg-pw"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        for part in [
            "h.toml: OK (1 source, 0 warnings)",
            "ingest 127.0.0.1:8080",
            "b1:9092 (options: sasl.password)",
            "gh (verify github) -> topic webhooks.github, secrets env:HOOKGATE_SUMMARY_TEST_SECRET, bodies up to 983040 bytes",
            "redis redis://u:[redacted]@h:6379",
            "postgres://u:[redacted]@h/db, retention 30days, 0 query tokens",
            "ingest.listen from HOOKGATE_INGEST__LISTEN",
        ] {
            assert!(shown.contains(part), "{part} missing from:\n{shown}");
        }
    }

    #[test]
    fn without_brokers_the_summary_says_embedded() {
        let config = Config::from_toml(
            "[[sources]]\nname = \"a\"\nverify = \"none\"\nmax_body_bytes = 26214400\n\
             large_bodies = { above_bytes = 524288 }\n",
        )
        .unwrap();
        let summary = Summary::of(&config, &Report::default());
        assert_eq!(
            summary.sources[0].bodies,
            "bodies up to 26214400 bytes, those over 524288 to the history store"
        );
        assert!(summary.kafka.starts_with("embedded"), "{}", summary.kafka);
        assert!(summary.dedup.starts_with("in process"), "{}", summary.dedup);
    }
}
