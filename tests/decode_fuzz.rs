//! The indexer's decode path fuzzed into both history stores: arbitrary
//! bytes, envelopes with arbitrary strings in every field, and valid records
//! with bytes flipped. Whatever `decode` accepts, SQLite and PostgreSQL both
//! store and give back unchanged, and a shared store's live-tail relay reads
//! it back; whatever either store would refuse, `decode` refused first.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};

use common::history::{envelope, PgSchema};
use hookgate::envelope::{Header, Verification, WebhookEnvelope};
use hookgate::history::{decode, Provenance, Store};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Strings with every kind of character the field rules care about.
fn wild_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9._-]{1,12}",
        "\\PC{0,24}",
        proptest::collection::vec(any::<char>(), 0..24).prop_map(|chars| chars.into_iter().collect()),
        "[a-z]{0,4}[\\x00\\t\\n\\r\\x7f\\u{85}][a-z]{0,4}",
    ]
}

/// A valid envelope with some fields replaced by wild strings (the id
/// rarely: almost no wild string is a UUID, and the stores are to see many
/// records with odd contents).
fn wild_envelope() -> impl Strategy<Value = WebhookEnvelope> {
    let id = proptest::option::weighted(0.05, wild_text());
    let fields = proptest::collection::vec(proptest::option::weighted(0.2, wild_text()), 9);
    let body = proptest::collection::vec(any::<u8>(), 0..64);
    (id, fields, body, any::<i64>()).prop_map(|(id, wild, body, received_at)| {
        let mut e = envelope("github", "push", 1_700_000_000_000_000, 1);
        if let Some(id) = id {
            e.id = id;
        }
        let targets: [&mut String; 7] = [
            &mut e.source,
            &mut e.event_type,
            &mut e.dedup_key,
            &mut e.method,
            &mut e.path,
            &mut e.query,
            &mut e.content_type,
        ];
        for (target, value) in targets.into_iter().zip(&wild) {
            if let Some(value) = value {
                value.clone_into(target);
            }
        }
        if let Some(name) = &wild[7] {
            e.headers.push(Header {
                name: name.clone(),
                value: body.clone().into(),
            });
        }
        if let Some(scheme) = &wild[8] {
            e.verification = Some(Verification {
                scheme: scheme.clone(),
                ..Default::default()
            });
        }
        e.body = body.into();
        e.received_at_unix_micros = received_at;
        e
    })
}

/// What the fuzzer feeds `decode`.
fn record_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..256),
        4 => wild_envelope().prop_map(|e| e.to_bytes()),
        2 => (
            wild_envelope(),
            proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)
        )
            .prop_map(|(e, flips)| {
                let mut bytes = e.to_bytes();
                for (index, value) in flips {
                    let at = index.index(bytes.len());
                    bytes[at] = value;
                }
                bytes
            }),
    ]
}

/// Decodes `value`; when it decodes, stores it in each store and reads it
/// back. Returns whether it decoded.
async fn store_if_decoded(value: &[u8], offset: i64, stores: &[(&str, Store)]) -> Result<bool, TestCaseError> {
    let provenance = Provenance {
        topic: "webhooks".into(),
        partition: 0,
        offset,
    };
    let Ok(record) = decode(Some(value), provenance, 1) else {
        return Ok(false);
    };
    for (kind, store) in stores {
        let inserted = store.insert_batch(std::slice::from_ref(&record)).await;
        prop_assert!(inserted.is_ok(), "{kind} refused {record:?}: {inserted:?}");
        let stored = store.get(&record.summary.id).await;
        prop_assert!(
            matches!(&stored, Ok(Some(back)) if *back == record),
            "{kind} changed {record:?} into {stored:?}"
        );
        if let Store::Postgres(shared) = store {
            let relayed = shared.summaries(std::slice::from_ref(&record.summary.id)).await;
            prop_assert!(relayed.is_ok(), "relay read of {record:?}: {relayed:?}");
        }
    }
    Ok(true)
}

#[test]
fn whatever_decodes_is_stored_unchanged_by_both_stores() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (sqlite, pg) = runtime.block_on(async {
        let sqlite = Store::open("sqlite::memory:").await.unwrap();
        (sqlite, PgSchema::create().await)
    });
    let stores = [("sqlite", sqlite), ("postgres", pg.store.clone())];
    let mut runner = TestRunner::new(Config {
        cases: 1000,
        ..Config::default()
    });
    let (offset, stored) = (AtomicI64::new(0), AtomicI64::new(0));
    let result = runner.run(&record_value(), |value| {
        let offset = offset.fetch_add(1, Ordering::Relaxed);
        let decoded = runtime.block_on(store_if_decoded(&value, offset, &stores))?;
        stored.fetch_add(i64::from(decoded), Ordering::Relaxed);
        Ok(())
    });
    runtime.block_on(pg.remove());
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let stored = stored.load(Ordering::Relaxed);
    println!(
        "{stored} of {} fuzzed records decoded and were stored",
        offset.load(Ordering::Relaxed)
    );
    assert!(
        stored >= 100,
        "too few records decoded ({stored}) for the stores to be exercised"
    );
}
