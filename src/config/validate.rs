//! The checks a parsed configuration can answer on its own: ranges, names,
//! listeners, secrets present. Checks that need a verifier live in `verify`,
//! those that need the producer's option rules in `publish`; `app` runs all.

use std::collections::HashSet;

use super::{Config, ConfigIssue, Preset, SourceConfig};

/// Collects findings while walking the configuration.
#[derive(Default)]
struct Findings(Vec<ConfigIssue>);

impl Findings {
    fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigIssue::error(key, message));
    }
    fn warn(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigIssue::warning(key, message));
    }
}

impl Config {
    /// Every finding the configuration can tell on its own (see `app::config_issues` for all).
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut findings = Findings::default();
        self.check_ingest(&mut findings);
        self.check_kafka(&mut findings);
        self.check_dedup(&mut findings);
        self.check_query(&mut findings);
        self.check_listeners(&mut findings);
        if self.sources.is_empty() {
            findings.error("sources", "no [[sources]] configured: nothing could be received");
        }
        let mut names = HashSet::new();
        for (index, source) in self.sources.iter().enumerate() {
            if !names.insert(source.name.as_str()) {
                findings.error(
                    format!("sources[{index}].name"),
                    format!("source `{}` is defined twice", source.name),
                );
            }
            check_source(index, source, &mut findings);
        }
        findings.0
    }

    fn check_ingest(&self, findings: &mut Findings) {
        let ingest = &self.ingest;
        if ingest.max_body_bytes == 0 {
            findings.error("ingest.max_body_bytes", "must be greater than 0");
        }
        if ingest.deadline.is_zero() {
            findings.error("ingest.deadline", "must be greater than 0");
        } else if ingest.deadline.as_secs() >= 10 {
            findings.warn(
                "ingest.deadline",
                "10s or more: GitHub gives up after 10s, so senders may time out before hookgate answers 503",
            );
        }
        if ingest.header_timeout.is_zero() {
            findings.error("ingest.header_timeout", "must be greater than 0");
        }
        if ingest.body_timeout.is_zero() {
            findings.error("ingest.body_timeout", "must be greater than 0");
        }
        if ingest.max_in_flight == 0 {
            findings.error("ingest.max_in_flight", "must be greater than 0");
        }
        self.check_connections(findings);
        if let Some(header) = &ingest.client_ip_header {
            if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                findings.error(
                    "ingest.client_ip_header",
                    format!("`{header}` is not a valid header name"),
                );
            }
        }
    }

    fn check_connections(&self, findings: &mut Findings) {
        let ingest = &self.ingest;
        if ingest.max_connections == 0 {
            findings.error("ingest.max_connections", "must be greater than 0");
        }
        if ingest.max_connections_per_ip == 0 {
            findings.error("ingest.max_connections_per_ip", "must be greater than 0");
        } else if ingest.client_ip_header.is_some() && ingest.max_connections_per_ip < ingest.max_connections {
            findings.warn(
                "ingest.max_connections_per_ip",
                "counts socket peers, and with client_ip_header set every connection comes from the proxy: \
                 raise it to ingest.max_connections unless the proxy's connections should be capped",
            );
        }
    }

    fn check_kafka(&self, findings: &mut Findings) {
        if self.kafka.topic.is_empty() {
            findings.error("kafka.topic", "must not be empty");
        }
        if let Some(brokers) = &self.kafka.brokers {
            if brokers.trim().is_empty() {
                findings.error(
                    "kafka.brokers",
                    "must list at least one host:port (omit it for the embedded broker)",
                );
            }
        }
        if self.kafka.embedded_partitions < 1 {
            findings.error("kafka.embedded_partitions", "must be at least 1");
        }
        if let Err((name, error)) = self.kafka.resolved_options() {
            findings.error(format!("kafka.options.\"{name}\""), error.to_string());
        }
    }

    fn check_dedup(&self, findings: &mut Findings) {
        if self.dedup.window.is_zero() {
            findings.error("dedup.window", "must be greater than 0");
        }
        if self.dedup.max_keys == 0 {
            findings.error("dedup.max_keys", "must be greater than 0");
        }
        if let Some(url) = &self.dedup.redis {
            if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("redis+unix://")) {
                findings.error("dedup.redis", "must be a redis:// or rediss:// URL");
            }
        }
        if let Some(quota) = self.rate_limit.per_client_ip {
            check_quota("rate_limit.per_client_ip", quota, findings);
        }
        if self.rate_limit.max_tracked_clients == 0 {
            findings.error("rate_limit.max_tracked_clients", "must be greater than 0");
        }
    }

    fn check_query(&self, findings: &mut Findings) {
        let query = &self.query;
        let store = query.store.as_str();
        if !(store.starts_with("sqlite:") || store.starts_with("postgres://") || store.starts_with("postgresql://")) {
            findings.error("query.store", "must be sqlite://PATH or postgres://USER@HOST/DB");
        }
        if query.retention.is_zero() {
            findings.error("query.retention", "must be greater than 0");
        }
        self.check_query_listener(findings);
        if query.tokens.is_empty() && !query.listen.ip().is_loopback() {
            findings.error(
                "query.tokens",
                "the query API listens beyond loopback, so at least one token is required",
            );
        }
        let sources: HashSet<&str> = self.sources.iter().map(|s| s.name.as_str()).collect();
        for (index, token) in query.tokens.iter().enumerate() {
            let key = format!("query.tokens[{index}]");
            if token.scopes.is_empty() {
                findings.error(
                    format!("{key}.scopes"),
                    "must grant at least one of \"read\", \"replay\"",
                );
            }
            if token.token.is_literal() {
                findings.warn(
                    format!("{key}.token"),
                    "written literally; prefer env:NAME or file:PATH",
                );
            }
            for name in token.sources.iter().flatten() {
                if !sources.contains(name.as_str()) {
                    findings.error(format!("{key}.sources"), format!("`{name}` is not a configured source"));
                }
            }
        }
    }

    fn check_query_listener(&self, findings: &mut Findings) {
        let query = &self.query;
        if query.header_timeout.is_zero() {
            findings.error("query.header_timeout", "must be greater than 0");
        }
        for (key, value) in [
            ("query.max_connections", query.max_connections),
            ("query.max_connections_per_ip", query.max_connections_per_ip),
            ("query.max_streams", query.max_streams),
        ] {
            if value == 0 {
                findings.error(key, "must be greater than 0");
            }
        }
        if query.max_streams >= query.max_connections && query.max_connections > 0 {
            findings.warn(
                "query.max_streams",
                "live-tail streams keep their connections open: with max_streams at or above \
                 query.max_connections, streams can take every connection and leave none for other requests",
            );
        }
    }

    fn check_listeners(&self, findings: &mut Findings) {
        let listeners = [
            ("ingest.listen", self.ingest.listen),
            ("query.listen", self.query.listen),
            ("metrics.listen", self.metrics.listen),
        ];
        for (i, (key, addr)) in listeners.iter().enumerate() {
            for (other, other_addr) in &listeners[..i] {
                if addr == other_addr && addr.port() != 0 {
                    findings.error(*key, format!("{addr} is already used by {other}"));
                }
            }
        }
    }
}

fn check_quota(key: &str, quota: super::Quota, findings: &mut Findings) {
    if quota.per_second == 0 {
        findings.error(format!("{key}.per_second"), "must be greater than 0");
    }
    if quota.burst == 0 {
        findings.error(format!("{key}.burst"), "must be greater than 0");
    }
}

fn check_source(index: usize, source: &SourceConfig, findings: &mut Findings) {
    let key = format!("sources[{index}]");
    let valid_name = !source.name.is_empty()
        && source.name.len() <= 64
        && source
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid_name {
        findings.error(
            format!("{key}.name"),
            "must be 1-64 characters of a-z, A-Z, 0-9, '-', '_', '.'",
        );
    }
    match (source.verify, source.secrets.is_empty()) {
        (Preset::None, false) => findings.error(format!("{key}.secrets"), "verify = \"none\" takes no secrets"),
        (Preset::None, true) => findings.warn(format!("{key}.verify"), "\"none\": requests are not authenticated"),
        (_, true) => findings.error(
            format!("{key}.secrets"),
            "at least one secret is required to verify signatures",
        ),
        (_, false) => {}
    }
    for (i, secret) in source.secrets.iter().enumerate() {
        if secret.is_literal() {
            findings.warn(
                format!("{key}.secrets[{i}]"),
                "written literally; prefer env:NAME or file:PATH",
            );
        }
    }
    match (source.verify, &source.hmac) {
        (Preset::Hmac, None) => findings.error(format!("{key}.hmac"), "verify = \"hmac\" needs a [sources.hmac] table"),
        (Preset::Hmac, Some(_)) | (_, None) => {}
        (_, Some(_)) => findings.error(format!("{key}.hmac"), "only used with verify = \"hmac\""),
    }
    check_preset_keys(&key, source, findings);
    if let Some(quota) = source.rate_limit {
        check_quota(&format!("{key}.rate_limit"), quota, findings);
    }
    if source.max_body_bytes == Some(0) {
        findings.error(format!("{key}.max_body_bytes"), "must be greater than 0");
    }
    if source.topic.as_deref() == Some("") {
        findings.error(format!("{key}.topic"), "must not be empty");
    }
    if let Some(reconcile) = &source.reconcile {
        for (suffix, is_error, message) in super::reconcile::check(source.verify, reconcile) {
            let at = format!("{key}.reconcile{suffix}");
            if is_error {
                findings.error(at, message);
            } else {
                findings.warn(at, message);
            }
        }
    }
}

/// Keys that only one preset reads are errors elsewhere: set by mistake,
/// they would suggest a protection that is not there.
fn check_preset_keys(key: &str, source: &SourceConfig, findings: &mut Findings) {
    let only = |name: &str, set: bool, presets: &[Preset], findings: &mut Findings| {
        if set && !presets.contains(&source.verify) {
            let names: Vec<String> = presets.iter().map(|p| format!("verify = \"{}\"", p.as_str())).collect();
            findings.error(
                format!("{key}.{name}"),
                format!("only used with {}", names.join(" or ")),
            );
        }
    };
    only(
        "public_url",
        source.public_url.is_some(),
        &[Preset::Twilio, Preset::Hmac],
        findings,
    );
    only("verify_token", source.verify_token.is_some(), &[Preset::Meta], findings);
    only(
        "token_header",
        source.token_header.is_some(),
        &[Preset::Token],
        findings,
    );
    only(
        "token_prefix",
        source.token_prefix.is_some(),
        &[Preset::Token],
        findings,
    );
    if source
        .verify_token
        .as_ref()
        .is_some_and(crate::config::Secret::is_literal)
    {
        findings.warn(
            format!("{key}.verify_token"),
            "written literally; prefer env:NAME or file:PATH",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;

    fn issues(text: &str) -> Vec<ConfigIssue> {
        Config::from_toml(text).expect("parses").validate()
    }

    #[test]
    fn the_documented_example_validates() {
        std::env::set_var("HOOKGATE_VALIDATE_TEST_GH", "s3cret");
        let text = r#"
            [ingest]
            listen = "127.0.0.1:8080"
            deadline = "8s"
            [kafka]
            brokers = "127.0.0.1:9092"
            [kafka.options]
            "linger.ms" = "5"
            [[sources]]
            name = "github"
            verify = "github"
            secrets = ["env:HOOKGATE_VALIDATE_TEST_GH"]
        "#;
        let errors: Vec<_> = issues(text)
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = Config::from_toml("[ingest]\nlisten_port = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen_port"), "{err}");
    }

    #[test]
    fn missing_secret_and_duplicate_source_are_named() {
        let text = r#"
            [[sources]]
            name = "a"
            verify = "github"
            [[sources]]
            name = "a"
            verify = "none"
        "#;
        let found = issues(text);
        assert!(
            found
                .iter()
                .any(|i| i.key == "sources[0].secrets" && i.severity == Severity::Error),
            "{found:?}"
        );
        assert!(found.iter().any(|i| i.key == "sources[1].name"), "{found:?}");
    }

    #[test]
    fn preset_keys_are_errors_with_other_presets() {
        std::env::set_var("HOOKGATE_VALIDATE_TEST_VT", "vt");
        let text = r#"
            [[sources]]
            name = "gh"
            verify = "github"
            secrets = ["k"]
            public_url = "https://x.example/webhooks/gh"
            verify_token = "env:HOOKGATE_VALIDATE_TEST_VT"
            token_header = "x-token"
            token_prefix = "Bearer "
            [[sources]]
            name = "tw"
            verify = "twilio"
            secrets = ["k"]
            public_url = "https://x.example/webhooks/tw"
            [[sources]]
            name = "m"
            verify = "meta"
            secrets = ["k"]
            verify_token = "literal-token"
        "#;
        let errors: Vec<String> = issues(text)
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| i.key)
            .collect();
        assert_eq!(
            errors,
            [
                "sources[0].public_url",
                "sources[0].verify_token",
                "sources[0].token_header",
                "sources[0].token_prefix"
            ]
        );
        let literal = issues(text)
            .into_iter()
            .any(|i| i.key == "sources[2].verify_token" && i.severity == Severity::Warning);
        assert!(literal, "a literal verify token draws a warning");
    }

    #[test]
    fn public_query_listener_needs_a_token() {
        let text = "[query]\nlisten = \"0.0.0.0:8081\"\n[[sources]]\nname = \"a\"\nverify = \"none\"\n";
        assert!(issues(text).iter().any(|i| i.key == "query.tokens"));
    }

    #[test]
    fn query_listener_limits_are_checked() {
        let source = "[[sources]]\nname = \"a\"\nverify = \"none\"\n";
        let zero = issues(&format!(
            "[query]\nheader_timeout = \"0s\"\nmax_connections = 0\nmax_connections_per_ip = 0\nmax_streams = 0\n{source}"
        ));
        for key in [
            "query.header_timeout",
            "query.max_connections",
            "query.max_connections_per_ip",
            "query.max_streams",
        ] {
            assert!(
                zero.iter().any(|i| i.key == key && i.severity == Severity::Error),
                "{key}: {zero:?}"
            );
        }
        let crowded = issues(&format!("[query]\nmax_connections = 10\nmax_streams = 10\n{source}"));
        assert!(
            crowded
                .iter()
                .any(|i| i.key == "query.max_streams" && i.severity == Severity::Warning),
            "{crowded:?}"
        );
        assert!(!issues(source).iter().any(|i| i.key.starts_with("query.max")));
    }

    #[test]
    fn bad_key_spec_is_a_parse_error() {
        let text = "[[sources]]\nname = \"a\"\nverify = \"none\"\ndedup_key = \"body:/id\"\n";
        let err = Config::from_toml(text).unwrap_err().to_string();
        assert!(err.contains("dedup_key") || err.contains("body:/id"), "{err}");
    }

    #[test]
    fn per_ip_connection_limit_is_checked_and_warned_about_behind_a_proxy() {
        let source = "[[sources]]\nname = \"a\"\nverify = \"none\"\n";
        let zero = issues(&format!("[ingest]\nmax_connections_per_ip = 0\n{source}"));
        assert!(
            zero.iter()
                .any(|i| i.key == "ingest.max_connections_per_ip" && i.severity == Severity::Error),
            "{zero:?}"
        );
        let proxied = issues(&format!("[ingest]\nclient_ip_header = \"x-forwarded-for\"\n{source}"));
        assert!(
            proxied
                .iter()
                .any(|i| i.key == "ingest.max_connections_per_ip" && i.severity == Severity::Warning),
            "{proxied:?}"
        );
        assert!(!issues(source).iter().any(|i| i.key == "ingest.max_connections_per_ip"));
    }
}
