//! Shared test harness: a real Kafka-protocol broker (Tansu), the real
//! `hookgate` binary on loopback ports, a consumer that reads topics back,
//! signed webhooks, the dedup and history stores, and the fault tests' ledger.
//!
//! Tests use the broker named by `HOOKGATE_TEST_KAFKA` (started by
//! tests/run.sh), or start a private Tansu when it is unset; fault tests
//! always start a private one so they can stop, freeze and restart it.
#![allow(dead_code, unused_imports, unreachable_pub)]

pub mod broker;
pub mod dedup;
pub mod gateway;
pub mod history;
pub mod ledger;
pub mod providers;
pub mod setup;
pub mod webhook;

use std::future::Future;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use hookgate::envelope::WebhookEnvelope;

pub use broker::{Broker, Tansu};
pub use gateway::Gateway;
pub use setup::Setup;

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// Creates a topic and waits until its metadata is visible. Blocking; safe
/// to call from async tests (it runs on its own thread).
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    std::thread::spawn(move || create_topic_blocking(&bootstrap, &topic, partitions))
        .join()
        .expect("topic creation");
}

fn create_topic_blocking(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = runtime
        .block_on(admin.create_topics([&new_topic], &options))
        .expect("create_topics request");
    for result in results {
        if let Err((name, code)) = result {
            assert_eq!(
                code,
                rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
                "creating {name}"
            );
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let metadata = admin.inner().fetch_metadata(Some(topic), Duration::from_secs(2));
        if metadata.is_ok_and(|m| {
            m.topics()
                .iter()
                .any(|t| t.name() == topic && t.partitions().len() == partitions as usize)
        }) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("topic {topic} did not appear");
}

/// One record read back from Kafka.
#[derive(Debug, Clone)]
pub struct Record {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record headers as text.
    pub headers: Vec<(String, String)>,
    /// The decoded value.
    pub envelope: WebhookEnvelope,
}

impl Record {
    /// The value of a record header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Reads every record of `topic` from the beginning until `expected` were
/// seen and the topic stayed quiet for a moment, or `timeout` passed.
pub fn consume_all(bootstrap: &str, topic: &str, expected: usize, timeout: Duration) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("hookgate-test-reader"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        assignment
            .add_partition_offset(topic, partition.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut records = Vec::new();
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                records.push(to_record(&message));
                quiet_since = Instant::now();
            }
            Some(Err(error)) => eprintln!("consumer: {error}"),
            None if records.len() >= expected && quiet_since.elapsed() > Duration::from_millis(700) => break,
            None => {}
        }
    }
    records
}

fn to_record(message: &rdkafka::message::BorrowedMessage<'_>) -> Record {
    let headers = message
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    (
                        h.key.to_owned(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Record {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        headers,
        envelope: WebhookEnvelope::from_bytes(message.payload().unwrap_or_default()).expect("record value decodes"),
    }
}

/// A loopback port nothing listens on.
pub fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Polls `check` every 20 ms until it returns true; panics after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `error.code` of an error body, or "" when there is none.
pub fn error_code(body: &serde_json::Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}
