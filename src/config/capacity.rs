//! Whether each source's largest body fits in a Kafka record: the producer
//! refuses records over `message.max.bytes`, so a body limit above it would
//! let senders through to a failure that no retry can fix. Sources with
//! `large_bodies` keep bodies above their threshold out of the record.

use super::{Config, ConfigIssue, SourceConfig};
use crate::publish::{message_max_bytes, MESSAGE_MAX_BYTES, MESSAGE_MAX_BYTES_RANGE};

/// Room kept in every record for the envelope around the body (request
/// headers, path, ids, record headers and key). Providers send 1-4 KiB of
/// headers; a request whose envelope is larger still gets an exact 413.
pub const ENVELOPE_ALLOWANCE: u64 = 16 * 1024;

/// The key to raise, as check-config names it.
const RAISE: &str = "kafka.options.\"message.max.bytes\"";

impl Config {
    /// Findings about body limits and the record size limit.
    pub(super) fn capacity_issues(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let options = self
            .kafka
            .resolved_options()
            .unwrap_or_else(|_| self.kafka.options.clone());
        if let Some(value) = options.get(MESSAGE_MAX_BYTES) {
            let parsed = value.trim().parse::<u64>().ok();
            if !parsed.is_some_and(|n| MESSAGE_MAX_BYTES_RANGE.contains(&n)) {
                issues.push(ConfigIssue::error(
                    RAISE,
                    format!(
                        "`{value}` is not a number of bytes from {} to {}",
                        MESSAGE_MAX_BYTES_RANGE.start(),
                        MESSAGE_MAX_BYTES_RANGE.end()
                    ),
                ));
                return issues;
            }
        }
        let limit = message_max_bytes(&options);
        let inherited = self.sources.is_empty()
            || self
                .sources
                .iter()
                .any(|s| s.large_bodies.is_none() && s.max_body_bytes.is_none());
        if inherited {
            issues.extend(body_limit_issue(
                "ingest.max_body_bytes",
                self.ingest.max_body_bytes,
                limit,
                None,
            ));
        }
        for (index, source) in self.sources.iter().enumerate() {
            match source.large_bodies {
                Some(large) => issues.extend(threshold_issues(index, source, large.above_bytes, self, limit)),
                None if source.max_body_bytes.is_some() => {
                    let key = format!("sources[{index}].max_body_bytes");
                    issues.extend(body_limit_issue(&key, self.max_body_for(source), limit, Some(index)));
                }
                None => {}
            }
        }
        issues
    }
}

/// The largest body that fits in a record of `limit` bytes with its envelope.
pub fn largest_record_body(limit: u64) -> u64 {
    limit.saturating_sub(ENVELOPE_ALLOWANCE)
}

/// An error when bodies of `max_body` bytes cannot fit in a record.
fn body_limit_issue(key: &str, max_body: u64, limit: u64, source: Option<usize>) -> Option<ConfigIssue> {
    if max_body <= largest_record_body(limit) {
        return None;
    }
    let large_bodies = match source {
        Some(index) => format!("sources[{index}].large_bodies"),
        None => "sources[].large_bodies".to_owned(),
    };
    Some(ConfigIssue::error(
        key,
        format!(
            "{max_body} bytes cannot fit in a Kafka record: the producer takes records up to {limit} bytes \
             ({RAISE}), and {ENVELOPE_ALLOWANCE} are kept for the envelope, so bodies up to {} bytes fit. \
             Lower it, raise {RAISE} to at least {} (and the brokers' and topics' limits), or set \
             {large_bodies} = {{ above_bytes = N }} to keep larger bodies in the history store",
            largest_record_body(limit),
            max_body + ENVELOPE_ALLOWANCE,
        ),
    ))
}

/// Findings about one source's `large_bodies.above_bytes`.
fn threshold_issues(index: usize, source: &SourceConfig, above: u64, config: &Config, limit: u64) -> Vec<ConfigIssue> {
    let key = format!("sources[{index}].large_bodies.above_bytes");
    let mut issues = Vec::new();
    if above > largest_record_body(limit) {
        issues.push(ConfigIssue::error(
            &key,
            format!(
                "bodies up to {above} bytes would stay in the Kafka record, but with the envelope only {} fit \
                 ({RAISE} = {limit}): lower it or raise {RAISE}",
                largest_record_body(limit)
            ),
        ));
    }
    let max_body = config.max_body_for(source);
    if above >= max_body {
        issues.push(ConfigIssue::warning(
            &key,
            format!("no body is ever kept out of the record: the source accepts bodies up to {max_body} bytes"),
        ));
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;

    fn errors(text: &str) -> Vec<String> {
        let config = Config::from_toml(text).unwrap();
        let issues = config.capacity_issues();
        issues
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| i.key)
            .collect()
    }

    #[test]
    fn the_defaults_fit() {
        assert!(errors("[[sources]]\nname = \"a\"\nverify = \"none\"\n").is_empty());
    }

    #[test]
    fn a_body_limit_over_the_record_limit_names_the_key() {
        let text = "[ingest]\nmax_body_bytes = 1048576\n[[sources]]\nname = \"a\"\nverify = \"none\"\n\
                    [[sources]]\nname = \"b\"\nverify = \"none\"\nmax_body_bytes = 2000000\n";
        assert_eq!(errors(text), ["ingest.max_body_bytes", "sources[1].max_body_bytes"]);
        let raised = format!("[kafka.options]\n\"message.max.bytes\" = \"3000000\"\n{text}");
        assert!(errors(&raised).is_empty());
    }

    #[test]
    fn large_bodies_lift_the_body_limit_but_not_the_threshold() {
        let ok = "[[sources]]\nname = \"g\"\nverify = \"none\"\nmax_body_bytes = 26214400\n\
                  large_bodies = { above_bytes = 524288 }\n";
        assert!(errors(ok).is_empty());
        let high = ok.replace("524288", "999000");
        assert_eq!(errors(&high), ["sources[0].large_bodies.above_bytes"]);
    }

    #[test]
    fn a_bad_record_limit_is_an_error() {
        let text = "[kafka.options]\n\"message.max.bytes\" = \"lots\"\n[[sources]]\nname = \"a\"\nverify = \"none\"\n";
        assert_eq!(errors(text), [RAISE]);
    }
}
