//! librdkafka options passed through from `[kafka.options]`, and the ones
//! refused because they would weaken "a 2xx means the event is in Kafka".

use std::collections::BTreeMap;

use crate::config::{ConfigIssue, KafkaConfig};

/// Options hookgate sets itself and that users may not override, with the reason.
const FIXED: &[(&str, &str)] = &[
    (
        "acks",
        "hookgate always uses acks=all: a 2xx means every in-sync replica has the event",
    ),
    (
        "request.required.acks",
        "hookgate always uses acks=all: a 2xx means every in-sync replica has the event",
    ),
    (
        "enable.idempotence",
        "hookgate always enables the idempotent producer, so retries never duplicate records",
    ),
    ("enable.gapless.guarantee", "set by hookgate"),
    ("bootstrap.servers", "use kafka.brokers"),
    ("metadata.broker.list", "use kafka.brokers"),
    (
        "message.timeout.ms",
        "derived from ingest.deadline, so the broker verdict arrives before the sender gives up",
    ),
    (
        "delivery.timeout.ms",
        "derived from ingest.deadline, so the broker verdict arrives before the sender gives up",
    ),
    ("transactional.id", "transactions are not used by hookgate"),
    ("group.id", "use query.consumer_group"),
    (
        "enable.auto.commit",
        "the indexer commits offsets itself after writing the store",
    ),
    (
        "auto.offset.reset",
        "the indexer starts from the earliest offset on first start",
    ),
    ("enable.partition.eof", "managed by the indexer"),
];

/// Options with a numeric floor below which delivery could be given up on silently.
const FLOORS: &[(&str, i64, &str)] = &[
    ("retries", 1, "retries must stay enabled (at least 1)"),
    ("message.send.max.retries", 1, "retries must stay enabled (at least 1)"),
    (
        "max.in.flight.requests.per.connection",
        1,
        "must be between 1 and 5 for the idempotent producer",
    ),
];

/// Every option of `options` that hookgate refuses, with the reason.
pub fn rejected_options(options: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut rejected = Vec::new();
    for (name, value) in options {
        if let Some((_, why)) = FIXED.iter().find(|(fixed, _)| fixed == name) {
            rejected.push((name.clone(), (*why).to_owned()));
        } else if let Some((_, floor, why)) = FLOORS.iter().find(|(n, _, _)| n == name) {
            match value.parse::<i64>() {
                Ok(v) if v >= *floor && !(name == "max.in.flight.requests.per.connection" && v > 5) => {}
                _ => rejected.push((name.clone(), (*why).to_owned())),
            }
        }
    }
    rejected
}

/// The start-up check of `[kafka.options]`: one error per refused option.
pub fn option_issues(kafka: &KafkaConfig) -> Vec<ConfigIssue> {
    rejected_options(&kafka.options)
        .into_iter()
        .map(|(name, why)| ConfigIssue::error(format!("kafka.options.\"{name}\""), why))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn tuning_options_pass_through() {
        assert!(rejected_options(&options(&[
            ("linger.ms", "5"),
            ("compression.type", "zstd"),
            ("retries", "10")
        ]))
        .is_empty());
    }

    #[test]
    fn refused_options_are_issues_keyed_by_the_option() {
        let kafka = KafkaConfig {
            options: options(&[("acks", "1"), ("linger.ms", "5")]),
            ..KafkaConfig::default()
        };
        let issues = option_issues(&kafka);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].key, "kafka.options.\"acks\"");
        assert!(issues[0].message.contains("acks=all"), "{issues:?}");
    }

    #[test]
    fn weakening_options_are_rejected_with_a_reason() {
        let found = rejected_options(&options(&[
            ("acks", "1"),
            ("enable.idempotence", "false"),
            ("retries", "0"),
            ("max.in.flight.requests.per.connection", "10"),
        ]));
        let names: Vec<_> = found.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "acks",
                "enable.idempotence",
                "max.in.flight.requests.per.connection",
                "retries"
            ]
        );
    }
}
