//! The benchmark's webhook deliveries: N signed deliveries from three
//! providers, each a pure function of its index, so that any phase can
//! rebuild delivery `i` (its id, dedup key, place in time) without keeping
//! a million of them in memory.
//!
//! Mix: github 50% (push, pull_request, issues, issue_comment, workflow_run,
//! release), stripe 30%, shopify 20%; in each source one type holds 1-2% of
//! its events (the "rare type" queries look for it). Bodies are JSON of
//! about 1 KiB; signature headers are the providers' real HMAC-SHA256
//! signatures over the body. Delivery `i` was received `N - i` milliseconds
//! before the run began, so ids (UUIDv7 of the receive time) grow with `i`.

use hmac::{Hmac, Mac};
use hookgate::envelope::{Header, Verification, WebhookEnvelope};
use sha2::Sha256;

/// A source, its secret and its event types with their weights (per mille).
struct Provider {
    /// Source name.
    name: &'static str,
    /// Share of all deliveries, per mille.
    share: u64,
    /// Event types and their share of the source's deliveries, per mille.
    types: &'static [(&'static str, u64)],
}

/// The three sources of the mix.
const PROVIDERS: [Provider; 3] = [
    Provider {
        name: "github",
        share: 500,
        types: &[
            ("push", 400),
            ("pull_request", 250),
            ("issues", 150),
            ("issue_comment", 100),
            ("workflow_run", 85),
            ("release", 15),
        ],
    },
    Provider {
        name: "stripe",
        share: 300,
        types: &[
            ("charge.succeeded", 400),
            ("payment_intent.succeeded", 300),
            ("invoice.paid", 200),
            ("customer.created", 90),
            ("charge.dispute.created", 10),
        ],
    },
    Provider {
        name: "shopify",
        share: 200,
        types: &[
            ("orders/create", 500),
            ("orders/paid", 300),
            ("products/update", 180),
            ("refunds/create", 20),
        ],
    },
];

/// The common (source, type) pair the listing queries use.
pub(crate) const COMMON_PAIR: (&str, &str) = ("github", "push");
/// The rare (source, type) pair the listing queries use (1% of stripe's events).
pub(crate) const RARE_PAIR: (&str, &str) = ("stripe", "charge.dispute.created");
/// Secret every delivery is signed with.
const SECRET: &[u8] = b"history-bench-secret";
/// Size of each JSON body, bytes.
const BODY_BYTES: usize = 1024;

/// SplitMix64: a well-mixed 64-bit value from an index.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Picks from `(item, weight per mille)` with `roll` in 0..1000.
fn pick<T: Copy>(items: impl Iterator<Item = (T, u64)>, roll: u64) -> T {
    let mut acc = 0;
    let mut last = None;
    for (item, weight) in items {
        acc += weight;
        last = Some(item);
        if roll < acc {
            return item;
        }
    }
    last.expect("weights")
}

/// Where delivery `i` sits and what it is, without its body.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    /// Gateway event id (UUIDv7 text).
    pub(crate) id: String,
    /// Source name.
    pub(crate) source: &'static str,
    /// Event type.
    pub(crate) event_type: &'static str,
    /// Receive time, µs since the epoch.
    pub(crate) received_at: i64,
    /// The provider's delivery id (the dedup key).
    pub(crate) dedup_key: String,
}

/// The deliveries of one run: `count` of them, received up to `origin_ms`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deliveries {
    /// How many.
    pub(crate) count: u64,
    /// Receive time of the newest, ms since the epoch.
    pub(crate) origin_ms: u64,
}

impl Deliveries {
    /// `count` deliveries, the newest received now.
    pub(crate) fn new(count: u64) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        Self { count, origin_ms: now }
    }

    /// Delivery `i` (0 is the oldest).
    pub(crate) fn delivery(&self, i: u64) -> Delivery {
        let bits = mix(i);
        let provider = pick(PROVIDERS.iter().map(|p| (p, p.share)), bits % 1000);
        let event_type = pick(provider.types.iter().copied(), (bits >> 10) % 1000);
        let ms = self.origin_ms - (self.count - i);
        let random = mix(bits).to_le_bytes();
        let mut tail = [0u8; 10];
        tail[..8].copy_from_slice(&random);
        tail[8..].copy_from_slice(&(i as u16).to_le_bytes());
        let id = uuid::Builder::from_unix_timestamp_millis(ms, &tail).into_uuid();
        let dedup_key = uuid::Uuid::from_u64_pair(mix(i ^ 0xD1CE), mix(i ^ 0xBEEF)).to_string();
        Delivery {
            id: id.to_string(),
            source: provider.name,
            event_type,
            received_at: (ms * 1000) as i64 + (bits % 1000) as i64,
            dedup_key,
        }
    }

    /// Delivery `i` as ingest would have published it: body, headers with
    /// the provider's signature, verification result.
    pub(crate) fn envelope(&self, i: u64) -> WebhookEnvelope {
        let d = self.delivery(i);
        let body = body(&d, i);
        let mut headers = vec![
            header("Content-Type", "application/json"),
            header("User-Agent", user_agent(d.source)),
        ];
        headers.extend(provider_headers(&d, &body));
        WebhookEnvelope {
            id: d.id,
            source: d.source.into(),
            event_type: d.event_type.into(),
            received_at_unix_micros: d.received_at,
            method: "POST".into(),
            path: format!("/webhooks/{}", d.source),
            query: String::new(),
            headers,
            content_type: "application/json".into(),
            body: body.into(),
            dedup_key: d.dedup_key,
            verification: Some(Verification {
                scheme: d.source.into(),
                verified: true,
                secret_index: 0,
                static_credential: false,
            }),
            client_addr: format!("192.0.2.{}", i % 250 + 1),
            replay: false,
            recovered: false,
            body_ref: None,
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: bytes::Bytes::copy_from_slice(value.as_bytes()),
    }
}

fn user_agent(source: &str) -> &'static str {
    match source {
        "github" => "GitHub-Hookshot/8e03811",
        "stripe" => "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        _ => "Shopify-Captain-Hook",
    }
}

/// HMAC-SHA256 of `message` with the bench secret.
fn sign(message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The provider's own headers: event type, delivery id, signature.
fn provider_headers(d: &Delivery, body: &[u8]) -> Vec<Header> {
    use base64::Engine as _;
    match d.source {
        "github" => vec![
            header("X-GitHub-Event", d.event_type),
            header("X-GitHub-Delivery", &d.dedup_key),
            header(
                "X-Hub-Signature-256",
                &format!("sha256={}", const_hex::encode(sign(body))),
            ),
        ],
        "stripe" => {
            let t = d.received_at / 1_000_000;
            let mut signed = format!("{t}.").into_bytes();
            signed.extend_from_slice(body);
            let v1 = const_hex::encode(sign(&signed));
            vec![header("Stripe-Signature", &format!("t={t},v1={v1}"))]
        }
        _ => vec![
            header("X-Shopify-Topic", d.event_type),
            header("X-Shopify-Webhook-Id", &d.dedup_key),
            header(
                "X-Shopify-Hmac-Sha256",
                &base64::engine::general_purpose::STANDARD.encode(sign(body)),
            ),
        ],
    }
}

/// A JSON body of about [`BODY_BYTES`] shaped like the provider's.
fn body(d: &Delivery, i: u64) -> Vec<u8> {
    let customer = mix(i ^ 0xC0FFEE) % 50_000;
    let head = match d.source {
        "github" => format!(
            r#"{{"action":"{}","repository":{{"full_name":"acme/repo-{}"}},"sender":{{"login":"user-{customer}"}},"delivery":"{}","#,
            d.event_type,
            customer % 300,
            d.dedup_key
        ),
        "stripe" => format!(
            r#"{{"id":"{}","type":"{}","data":{{"object":{{"customer":"cus_{customer}","amount":{}}}}},"#,
            d.dedup_key,
            d.event_type,
            mix(i) % 100_000
        ),
        _ => format!(
            r#"{{"id":{i},"topic":"{}","customer":{{"id":{customer}}},"webhook_id":"{}","#,
            d.event_type, d.dedup_key
        ),
    };
    let tail = "\"}";
    let pad = BODY_BYTES.saturating_sub(head.len() + tail.len() + "\"padding\":\"".len());
    let mut text = head;
    text.push_str("\"padding\":\"");
    text.extend(std::iter::repeat_n('x', pad));
    text.push_str(tail);
    text.into_bytes()
}
