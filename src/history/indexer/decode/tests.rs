//! The field rules one by one, and arbitrary bytes and strings through the
//! whole decode: it never panics, and what it accepts is clean.

use proptest::prelude::*;

use super::*;
use crate::envelope::{Header, Verification};

fn provenance() -> Provenance {
    Provenance {
        topic: "webhooks".into(),
        partition: 0,
        offset: 7,
    }
}

fn valid() -> WebhookEnvelope {
    WebhookEnvelope {
        id: "0190b6d2-0000-7000-8000-000000000001".into(),
        source: "github.prod_1-a".into(),
        event_type: "push\tsub".into(),
        received_at_unix_micros: 1_700_000_000_000_000,
        method: "POST".into(),
        path: "/webhooks/github".into(),
        query: "a=1&b=%00".into(),
        headers: vec![Header {
            name: "X-Odd\n\0".into(),
            value: bytes::Bytes::from_static(b"\0\r\n\xff"),
        }],
        content_type: "application/json; charset=utf-8".into(),
        body: bytes::Bytes::from_static(b"\0\xff"),
        dedup_key: "d\u{e9}livery-1".into(),
        verification: Some(Verification {
            scheme: "standard-webhooks".into(),
            verified: true,
            secret_index: 0,
            static_credential: false,
        }),
        client_addr: "2001:db8::1".into(),
        replay: false,
        recovered: false,
    }
}

fn decoded(envelope: &WebhookEnvelope) -> Result<EventRecord, DecodeError> {
    decode(Some(&envelope.to_bytes()), provenance(), 1)
}

fn refused_field(envelope: &WebhookEnvelope) -> &'static str {
    match decoded(envelope) {
        Err(DecodeError::Field { field, .. }) => field,
        other => panic!("expected a field refusal, got {other:?}"),
    }
}

#[test]
fn what_ingest_writes_is_accepted_with_headers_and_body_as_they_are() {
    let record = decoded(&valid()).unwrap();
    assert_eq!(record.body, b"\0\xff");
    assert_eq!(record.headers[0].name, "X-Odd\n\0");
    assert_eq!(record.to_envelope().unwrap(), valid());
}

/// Turns a valid envelope into one field rule's counterexample.
type Breakage = fn(&mut WebhookEnvelope);

#[test]
fn each_field_rule_refuses_what_ingest_never_writes() {
    let cases: Vec<(&str, Breakage)> = vec![
        ("id", |e| e.id = "0190b6d2-0000-7000-8000-000000000001\n".into()),
        ("id", |e| e.id = "0190B6D2-0000-7000-8000-000000000001".into()),
        ("id", |e| e.id = "0190b6d200007000800000000000001".into()),
        ("id", |e| e.id = "{0190b6d2-0000-7000-8000-000000000001}".into()),
        ("id", |e| e.id = "not-a-uuid".into()),
        ("id", |e| e.id.clear()),
        ("source", |e| e.source = "git hub".into()),
        ("source", |e| e.source = "a".repeat(65)),
        ("source", |e| e.source.clear()),
        ("method", |e| e.method = "PO ST".into()),
        ("method", |e| e.method.clear()),
        ("client_addr", |e| e.client_addr = "127.0.0.1\0".into()),
        ("client_addr", |e| e.client_addr = "localhost".into()),
        ("verification.scheme", |e| {
            e.verification = Some(Verification {
                scheme: "Git\nHub".into(),
                ..Default::default()
            })
        }),
        ("event_type", |e| e.event_type = "push\n".into()),
        ("event_type", |e| e.event_type = "x".repeat(MAX_KEY_BYTES + 1)),
        ("dedup_key", |e| e.dedup_key = "a\0b".into()),
        ("dedup_key", |e| e.dedup_key = "a\u{85}b".into()),
        ("dedup_key", |e| e.dedup_key = "a\u{7f}".into()),
        ("content_type", |e| e.content_type = "text/plain\r\nx-evil: 1".into()),
        ("path", |e| e.path = "/webhooks/a\tb".into()),
        ("query", |e| e.query = "a=\u{1b}[31m".into()),
    ];
    for (field, break_it) in cases {
        let mut envelope = valid();
        break_it(&mut envelope);
        assert_eq!(refused_field(&envelope), field, "{envelope:?}");
    }
}

#[test]
fn no_value_and_garbage_are_decode_errors() {
    assert!(matches!(decode(None, provenance(), 1), Err(DecodeError::NoValue)));
    assert!(matches!(
        decode(Some(b"\xff\xff\xff not protobuf"), provenance(), 1),
        Err(DecodeError::Protobuf(_))
    ));
    let mut envelope = valid();
    envelope.verification = None;
    assert_eq!(decoded(&envelope).unwrap().summary.verification.scheme, "");
}

/// Strings with every kind of character the rules care about.
fn wild_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9._-]{1,70}",
        "\\PC{0,40}",
        proptest::collection::vec(any::<char>(), 0..40).prop_map(|chars| chars.into_iter().collect()),
        Just("0190b6d2-0000-7000-8000-000000000001".to_owned()),
        Just("127.0.0.1".to_owned()),
    ]
}

fn wild_envelope() -> impl Strategy<Value = WebhookEnvelope> {
    let strings = proptest::collection::vec(wild_text(), 9);
    (strings, any::<i64>(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(s, received_at, body)| {
        WebhookEnvelope {
            id: s[0].clone(),
            source: s[1].clone(),
            event_type: s[2].clone(),
            received_at_unix_micros: received_at,
            method: s[3].clone(),
            path: s[4].clone(),
            query: s[5].clone(),
            headers: vec![Header {
                name: s[6].clone(),
                value: body.clone().into(),
            }],
            content_type: s[7].clone(),
            body: body.into(),
            dedup_key: s[8].clone(),
            verification: None,
            client_addr: "::1".into(),
            replay: false,
            recovered: false,
        }
    })
}

/// Nothing a column or an SSE field of the live tail could choke on.
fn assert_clean(record: &EventRecord) {
    let s = &record.summary;
    assert!(Uuid::try_parse(&s.id).is_ok(), "{s:?}");
    let columns = [
        Some(&s.id),
        Some(&s.source),
        s.event_type.as_ref(),
        s.dedup_key.as_ref(),
        Some(&s.method),
        Some(&s.path),
        Some(&s.query),
        Some(&s.content_type),
        Some(&s.client_addr),
        Some(&s.verification.scheme),
    ];
    for text in columns.into_iter().flatten() {
        assert!(!text.contains(['\0', '\r', '\n']), "{s:?}");
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(record) = decode(Some(&bytes), provenance(), 1) {
            assert_clean(&record);
        }
    }

    #[test]
    fn arbitrary_field_contents_are_accepted_only_when_clean(envelope in wild_envelope()) {
        if let Ok(record) = decoded(&envelope) {
            assert_clean(&record);
        }
    }

    #[test]
    fn a_mutated_valid_record_decodes_clean_or_not_at_all(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
    ) {
        let mut bytes = valid().to_bytes();
        for (index, value) in flips {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        if let Ok(record) = decode(Some(&bytes), provenance(), 1) {
            assert_clean(&record);
        }
    }
}
