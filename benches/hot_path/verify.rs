//! Signature verification per preset at 1 KiB and 64 KiB: the cost that
//! grows with the body (one HMAC or Ed25519 pass over it).

use std::time::SystemTime;

use base64::Engine;
use criterion::{BenchmarkId, Criterion, Throughput};
use ed25519_dalek::{Signer, SigningKey};
use hookgate::config::Secret;
use hookgate::verify::Verifier;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::fixtures::{json_body, sources};

pub(crate) fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    for size in [1024, 64 * 1024] {
        let body = json_body(size, "evt_1");
        group.throughput(Throughput::Bytes(size as u64));
        for source in sources() {
            let verifier = Verifier::from_source(&source).expect("bench source is valid");
            let now = SystemTime::now();
            let headers = signed(&verifier, &body, now);
            assert!(verifier.verify(&headers, &body, now).is_ok(), "{}", source.name);
            group.bench_with_input(BenchmarkId::new(source.name.as_str(), size), &body, |b, body| {
                b.iter(|| verifier.verify(&headers, body, now))
            });
        }
        let (verifier, headers) = ed25519(&body);
        let now = SystemTime::now();
        assert!(verifier.verify(&headers, &body, now).is_ok(), "ed25519");
        group.bench_with_input(BenchmarkId::new("standard-webhooks-ed25519", size), &body, |b, body| {
            b.iter(|| verifier.verify(&headers, body, now))
        });
    }
    group.finish();
}

/// The headers a genuine sender would add (`none` adds nothing).
fn signed(verifier: &Verifier, body: &[u8], now: SystemTime) -> HeaderMap {
    verifier
        .sign(body, "evt_1", now)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// A Standard Webhooks source holding an Ed25519 public key (`whpk_`, `v1a`),
/// with a request signed by its private half (the verifier cannot sign).
fn ed25519(body: &[u8]) -> (Verifier, HeaderMap) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let signing = SigningKey::from_bytes(&[7; 32]);
    let mut source = sources()
        .into_iter()
        .find(|s| s.name == "standard-webhooks")
        .expect("source");
    source.secrets = vec![Secret::from_bytes(format!(
        "whpk_{}",
        b64.encode(signing.verifying_key().as_bytes())
    ))];
    let verifier = Verifier::from_source(&source).expect("whpk_ source");
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let mut message = format!("evt_1.{stamp}.").into_bytes();
    message.extend_from_slice(body);
    let signature = format!("v1a,{}", b64.encode(signing.sign(&message).to_bytes()));
    let headers = [
        ("webhook-id", "evt_1".to_owned()),
        ("webhook-timestamp", stamp),
        ("webhook-signature", signature),
    ]
    .into_iter()
    .map(|(name, value)| (HeaderName::from_static(name), HeaderValue::from_str(&value).unwrap()))
    .collect();
    (verifier, headers)
}
