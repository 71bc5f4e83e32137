//! The protobuf envelope of a 1 KiB GitHub delivery with the dozen headers
//! GitHub sends: encoding it as the record value from the request, as
//! ingest does (`encode_received_1k`), against building the owned envelope
//! from the request, encoding and dropping it (`encode_owned_from_request_1k`);
//! encoding an owned one (plain, and framed for the schema registry, against
//! `encode_1k` as baseline), its record headers (hookgate's, and the `ce_*`
//! headers of a CloudEvents record), its event id, decoding.

use criterion::{Criterion, Throughput};
use hookgate::envelope::{cloudevents, framing, new_event_id, EnvelopeRef, VerificationRef, WebhookEnvelope};
use http::{HeaderMap, HeaderName, HeaderValue};

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
    let id = new_event_id().to_string();
    let headers = header_map();
    let body = json_body(1024, DELIVERY);
    let received = received(&id, &headers, &body);
    let envelope = received.to_envelope();
    let mut group = c.benchmark_group("envelope");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode_received_1k", |b| b.iter(|| received.encode(None)));
    group.bench_function("encode_owned_from_request_1k", |b| {
        b.iter(|| received.to_envelope().to_bytes())
    });
    group.bench_function("encode_1k", |b| b.iter(|| envelope.to_bytes()));
    group.bench_function("encode_1k_framed", |b| b.iter(|| framing::frame(&envelope, 1)));
    group.bench_function("record_headers", |b| b.iter(|| envelope.record_headers()));
    group.bench_function("cloudevents_headers", |b| b.iter(|| cloudevents::headers(&envelope)));
    group.bench_function("event_id", |b| b.iter(new_event_id));
    group.bench_function("decode_1k", |b| {
        let bytes = envelope.to_bytes();
        b.iter(|| WebhookEnvelope::from_bytes(&bytes).expect("decodes"))
    });
    group.finish();
}

/// The provider's delivery id, the dedup key.
const DELIVERY: &str = "6f1c2a40-8be5-11ee-8c90-0242ac120002";

fn header_map() -> HeaderMap {
    HEADERS
        .iter()
        .map(|(name, value)| (HeaderName::from_static(name), HeaderValue::from_static(value)))
        .collect()
}

fn received<'a>(id: &'a str, headers: &'a HeaderMap, body: &'a [u8]) -> EnvelopeRef<'a> {
    EnvelopeRef {
        id,
        source: "github",
        event_type: "push",
        received_at_unix_micros: 1_700_000_000_000_000,
        method: "POST",
        path: "/webhooks/github",
        query: "",
        headers,
        hidden: &[],
        content_type: "application/json",
        body,
        dedup_key: DELIVERY,
        verification: VerificationRef {
            scheme: "github",
            verified: true,
            secret_index: 0,
            static_credential: false,
        },
        client_addr: "192.0.2.1",
        body_ref: None,
    }
}
