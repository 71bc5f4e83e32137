//! The protobuf envelope of a 1 KiB GitHub delivery with the dozen headers
//! GitHub sends: encoding it as the record value, its record headers, its
//! event id, decoding.

use criterion::{Criterion, Throughput};
use hookgate::envelope::{new_event_id, Header, Verification, WebhookEnvelope};

use crate::fixtures::json_body;

/// Headers of a typical GitHub delivery, in the order GitHub sends them.
const HEADERS: [(&str, &str); 12] = [
    ("host", "hooks.example.com"),
    ("user-agent", "GitHub-Hookshot/6f1c2a4"),
    ("content-length", "1024"),
    ("accept", "*/*"),
    ("content-type", "application/json"),
    ("x-github-delivery", "6f1c2a40-8be5-11ee-8c90-0242ac120002"),
    ("x-github-event", "push"),
    ("x-github-hook-id", "441234567"),
    ("x-github-hook-installation-target-id", "79929171"),
    ("x-github-hook-installation-target-type", "repository"),
    ("x-hub-signature", "sha1=0b7ee4ba6d1b8e1d5a9cf3c59c4a4c1c9a7b8e11"),
    (
        "x-hub-signature-256",
        "sha256=6c4b1b5d4e1a0f3e2d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e",
    ),
];

pub(crate) fn bench(c: &mut Criterion) {
    let envelope = envelope();
    let mut group = c.benchmark_group("envelope");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode_1k", |b| b.iter(|| envelope.to_bytes()));
    group.bench_function("record_headers", |b| b.iter(|| envelope.record_headers()));
    group.bench_function("event_id", |b| b.iter(new_event_id));
    group.bench_function("decode_1k", |b| {
        let bytes = envelope.to_bytes();
        b.iter(|| WebhookEnvelope::from_bytes(&bytes).expect("decodes"))
    });
    group.finish();
}

fn envelope() -> WebhookEnvelope {
    WebhookEnvelope {
        id: new_event_id().to_string(),
        source: "github".into(),
        event_type: "push".into(),
        received_at_unix_micros: 1_700_000_000_000_000,
        method: "POST".into(),
        path: "/webhooks/github".into(),
        query: String::new(),
        headers: HEADERS
            .iter()
            .map(|(name, value)| Header {
                name: (*name).into(),
                value: bytes::Bytes::from_static(value.as_bytes()),
            })
            .collect(),
        content_type: "application/json".into(),
        body: json_body(1024, "6f1c2a40-8be5-11ee-8c90-0242ac120002").into(),
        dedup_key: "6f1c2a40-8be5-11ee-8c90-0242ac120002".into(),
        verification: Some(Verification {
            scheme: "github".into(),
            verified: true,
            secret_index: 0,
            static_credential: false,
        }),
        client_addr: "192.0.2.1".into(),
        replay: false,
        recovered: false,
    }
}
