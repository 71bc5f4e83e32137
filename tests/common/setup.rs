//! What most end-to-end tests start from: a broker, a fresh topic on it, and
//! the `hookgate` binary publishing there.

use std::time::Duration;

use super::{consume_all, create_topic, unique, Broker, Gateway, Record};

/// A broker, a topic of this test's own, and a gateway configured for both.
#[derive(Debug)]
pub struct Setup {
    /// The broker (kept alive as long as the setup).
    pub broker: Broker,
    /// The topic the gateway publishes to.
    pub topic: String,
    /// The gateway's config text.
    pub config: String,
    /// The running gateway.
    pub gateway: Gateway,
}

impl Setup {
    /// Creates a topic of `partitions` on `broker` and starts a gateway of
    /// `role` with extra environment `env` and the config text
    /// `config(bootstrap, topic)`.
    pub fn start(
        broker: Broker,
        partitions: i32,
        role: &str,
        env: &[(&str, &str)],
        config: impl FnOnce(&str, &str) -> String,
    ) -> Setup {
        let topic = unique("topic");
        create_topic(&broker.bootstrap(), &topic, partitions);
        let config = config(&broker.bootstrap(), &topic);
        let gateway = Gateway::start_with_env(&config, role, env);
        Setup {
            broker,
            topic,
            config,
            gateway,
        }
    }

    /// Every record of the topic, read until `expected` arrived and the topic
    /// stayed quiet, or `timeout` passed.
    pub fn records(&self, expected: usize, timeout: Duration) -> Vec<Record> {
        consume_all(&self.broker.bootstrap(), &self.topic, expected, timeout)
    }
}
