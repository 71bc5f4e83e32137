//! The publisher on its own, on the embedded mock cluster: acks, a full
//! queue, and a fatal producer error that flips readiness until rebuilt and
//! fails what the fatal producer still held.

use std::time::{Duration, Instant};

use hookgate::envelope::WebhookEnvelope;
use hookgate::publish::{EmbeddedBroker, KafkaEndpoint, OutgoingRecord, PublishError, Publisher};

fn publisher(broker: &EmbeddedBroker, options: &[(&str, &str)]) -> Publisher {
    let endpoint = KafkaEndpoint {
        bootstrap: broker.bootstrap_servers().to_owned(),
        options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    Publisher::new(endpoint, Duration::from_secs(5)).unwrap()
}

fn envelope() -> WebhookEnvelope {
    WebhookEnvelope {
        id: hookgate::envelope::new_event_id().to_string(),
        source: "s".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_acked_publish_reports_where_the_record_went() {
    let broker = EmbeddedBroker::start(&["t".into()], 2).unwrap();
    let publisher = publisher(&broker, &[]);
    let ack = publisher
        .publish_envelope(&envelope(), "t", Some(b"k"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ack.topic, "t");
    assert!(ack.partition == 0 || ack.partition == 1);
    assert!(ack.offset >= 0);
    assert!(publisher.probe_broker(Duration::from_secs(2)).await);
}

#[tokio::test]
async fn a_full_queue_fails_fast_instead_of_waiting() {
    let broker = EmbeddedBroker::start(&["t".into()], 1).unwrap();
    // A one-message queue and a long linger keep the first record queued.
    let publisher = publisher(&broker, &[("queue.buffering.max.messages", "1"), ("linger.ms", "2000")]);
    let first = tokio::spawn({
        let publisher = publisher.clone();
        async move {
            publisher
                .publish_envelope(&envelope(), "t", None, Duration::from_secs(5))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let second = publisher
        .publish_envelope(&envelope(), "t", None, Duration::from_secs(5))
        .await;
    assert_eq!(second.unwrap_err(), PublishError::QueueFull);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(first.await.unwrap().is_ok());
}

#[tokio::test]
async fn a_fatal_error_marks_the_producer_unhealthy_until_it_is_rebuilt() {
    let broker = EmbeddedBroker::start(&["t".into()], 1).unwrap();
    let publisher = publisher(&broker, &[]);
    publisher
        .publish_envelope(&envelope(), "t", None, Duration::from_secs(5))
        .await
        .unwrap();
    publisher.inject_fatal_error();
    let deadline = Instant::now() + Duration::from_secs(5);
    while publisher.producer_healthy() {
        assert!(Instant::now() < deadline, "fatal error never noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failed = publisher
        .publish_envelope(&envelope(), "t", None, Duration::from_secs(5))
        .await;
    assert_eq!(failed.unwrap_err(), PublishError::Fatal);
    publisher.rebuild().await;
    assert!(publisher.producer_healthy());
    publisher
        .publish_envelope(&envelope(), "t", None, Duration::from_secs(5))
        .await
        .unwrap();
}

/// A record still held by a producer that hit a fatal error is answered
/// `producer_fatal` even when its report comes after the producer was
/// replaced (by then the live producer is healthy, so the report has to be
/// judged by the producer that took the record).
#[tokio::test]
async fn a_record_left_in_a_replaced_producer_is_answered_fatal() {
    let broker = EmbeddedBroker::start(&["t".into()], 1).unwrap();
    // A long linger keeps the record in the first producer's queue.
    let publisher = publisher(&broker, &[("linger.ms", "2000")]);
    let record = OutgoingRecord {
        topic: "t",
        key: None,
        payload: b"held",
        headers: &[],
    };
    let pending = publisher.enqueue(record).unwrap();
    publisher.inject_fatal_error();
    let deadline = Instant::now() + Duration::from_secs(5);
    while publisher.producer_healthy() {
        assert!(Instant::now() < deadline, "fatal error never noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    publisher.rebuild().await;
    assert!(publisher.producer_healthy(), "rebuilt");
    let verdict = publisher
        .verdict(pending, Instant::now() + Duration::from_secs(5))
        .await;
    assert_eq!(verdict.unwrap_err(), PublishError::Fatal);
    publisher
        .publish_envelope(&envelope(), "t", None, Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_record_over_message_max_bytes_is_refused_before_the_producer_takes_it() {
    let broker = EmbeddedBroker::start(&["t".into()], 1).unwrap();
    let publisher = publisher(&broker, &[("message.max.bytes", "2000")]);
    assert_eq!(publisher.max_record_bytes(), 2000);
    let headers = [("hookgate-id", "0190b6d2-0000-7000-8000-000000000001")];
    let fixed = hookgate::publish::record_size(Some(b"key"), 0, &headers);
    // Exactly at the limit as hookgate counts it: librdkafka takes it, so it counts no more.
    let payload = vec![b'p'; (2000 - fixed) as usize];
    fn record<'a>(payload: &'a [u8], headers: &'a [(&'a str, &'a str)]) -> OutgoingRecord<'a> {
        OutgoingRecord {
            topic: "t",
            key: Some(b"key"),
            payload,
            headers,
        }
    }
    let ack = publisher
        .publish(record(&payload, &headers), Duration::from_secs(5))
        .await;
    assert!(ack.is_ok(), "{ack:?}");
    let over = vec![b'p'; payload.len() + 1];
    let refused = publisher
        .publish(record(&over, &headers), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(refused, PublishError::TooLarge(_)), "{refused:?}");
    assert_eq!(refused.code(), "body_too_large");
    assert!(!refused.is_retryable());
}
