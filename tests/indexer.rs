//! The indexer against the embedded (librdkafka mock) cluster: envelopes
//! published with the real Publisher show up in the store with their Kafka
//! provenance; a restart mid-stream neither loses nor doubles events;
//! undecodable records are skipped; replays do not add rows. On a real
//! broker: records that anyone with write access to the topic could write
//! (ids that are no UUID, control characters in columns) are decode
//! failures for both stores, and a running gateway's live tail survives them.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::gateway::config;
use common::history::{envelope, now_micros, sqlite_memory, PgSchema, SseReader};
use common::{unique, wait_until, Setup};
use hookgate::envelope::WebhookEnvelope;
use hookgate::history::{EventFilter, Indexer, IndexerReport, IndexerSettings, LiveFeed, Store};
use hookgate::publish::{EmbeddedBroker, KafkaEndpoint, OutgoingRecord, Publisher};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const TOPIC: &str = "webhooks";
const WAIT: Duration = Duration::from_secs(30);

/// A broker with one topic, and a publisher on it.
struct Cluster {
    /// Bootstrap servers.
    bootstrap: String,
    /// The topic the tests publish to and index.
    topic: String,
    /// Publishes like ingest does.
    publisher: Publisher,
    /// Keeps the embedded broker alive.
    _embedded: Option<EmbeddedBroker>,
    /// Keeps a private Tansu alive.
    _tansu: Option<common::Broker>,
}

/// The in-process mock cluster.
fn cluster(partitions: i32) -> Cluster {
    let broker = EmbeddedBroker::start(&[TOPIC.to_owned()], partitions).expect("mock cluster");
    let bootstrap = broker.bootstrap_servers().to_owned();
    Cluster::new(bootstrap, TOPIC.to_owned(), Some(broker), None)
}

/// A real Kafka-protocol broker (Tansu) with a fresh topic.
fn tansu(partitions: i32) -> Cluster {
    let broker = common::Broker::any();
    let topic = common::unique("history-indexer");
    common::create_topic(&broker.bootstrap(), &topic, partitions);
    Cluster::new(broker.bootstrap(), topic, None, Some(broker))
}

impl Cluster {
    fn new(bootstrap: String, topic: String, embedded: Option<EmbeddedBroker>, tansu: Option<common::Broker>) -> Self {
        let endpoint = KafkaEndpoint {
            bootstrap: bootstrap.clone(),
            options: Default::default(),
        };
        let publisher = Publisher::new(endpoint, Duration::from_secs(5)).expect("publisher");
        Cluster {
            bootstrap,
            topic,
            publisher,
            _embedded: embedded,
            _tansu: tansu,
        }
    }

    /// The indexer's endpoint. The mock cluster only rebalances a group that
    /// a member left after the session timeout (a real broker does at once),
    /// so restarts in these tests need a short one.
    fn endpoint(&self) -> KafkaEndpoint {
        let options = [("session.timeout.ms".to_owned(), "6000".to_owned())].into();
        KafkaEndpoint {
            bootstrap: self.bootstrap.clone(),
            options,
        }
    }
}

/// A running indexer and the switch that stops it.
struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<IndexerReport>,
}

impl Running {
    async fn stop(self) -> IndexerReport {
        self.stop.send(true).unwrap();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("indexer stops")
            .expect("indexer task")
    }
}

fn start_indexer(cluster: &Cluster, store: &Store, live: &LiveFeed, group: &str) -> Running {
    let settings = IndexerSettings {
        topics: vec![cluster.topic.clone()],
        group: group.into(),
        retention: Some(Duration::from_secs(3600)),
    };
    let indexer = Indexer::new(&cluster.endpoint(), &settings, store.clone(), Some(live.clone())).expect("indexer");
    let (stop, shutdown) = watch::channel(false);
    Running {
        stop,
        task: tokio::spawn(indexer.run(shutdown)),
    }
}

async fn publish_one(publisher: &Publisher, topic: &str, n: u64) -> String {
    let envelope = envelope("github", "push", now_micros(), n);
    let key = envelope.id.clone();
    publisher
        .publish_envelope(&envelope, topic, Some(key.as_bytes()), WAIT)
        .await
        .expect("acked");
    envelope.id
}

async fn publish(cluster: &Cluster, n: u64) -> String {
    publish_one(&cluster.publisher, &cluster.topic, n).await
}

async fn count(store: &Store) -> usize {
    store.list(&EventFilter::default(), None, 1000).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_envelopes_are_indexed_with_their_provenance() {
    let cluster = cluster(3);
    let store = sqlite_memory().await;
    let live = LiveFeed::default();
    let mut tail = live.subscribe();
    let indexer = start_indexer(&cluster, &store, &live, "g-provenance");
    let mut ids = HashSet::new();
    for n in 0..50 {
        ids.insert(publish(&cluster, n).await);
    }
    wait_until(WAIT, "50 indexed events", || async { count(&store).await == 50 }).await;
    let events = store.list(&EventFilter::default(), None, 1000).await.unwrap();
    let stored: HashSet<String> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(stored, ids);
    let provenance: HashSet<(i32, i64)> = events
        .iter()
        .map(|e| (e.provenance.partition, e.provenance.offset))
        .collect();
    assert_eq!(provenance.len(), 50, "each event has its own partition/offset");
    assert!(events.iter().all(|e| e.provenance.topic == TOPIC));
    // Every new event went to the live tail too.
    let first = tokio::time::timeout(WAIT, tail.recv()).await.unwrap().unwrap();
    assert!(ids.contains(&first.id));
    let report = indexer.stop().await;
    assert_eq!((report.records, report.inserted, report.decode_failures), (50, 50, 0));
}

/// Publishes events in the background while the indexer is stopped and
/// restarted: every event is stored once, and the second run resumes after
/// the first run's commits instead of reading everything again.
async fn restart_mid_stream(cluster: Cluster, store: Store) {
    let live = LiveFeed::default();
    let (before, during) = (100u64, 200u64);
    let first = start_indexer(&cluster, &store, &live, "g-restart");
    for n in 0..before {
        publish(&cluster, n).await;
    }
    wait_until(WAIT, "the first events", || async {
        count(&store).await == before as usize
    })
    .await;
    let (publisher, topic) = (cluster.publisher.clone(), cluster.topic.clone());
    let producing = tokio::spawn(async move {
        for n in before..before + during {
            publish_one(&publisher, &topic, n).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    wait_until(WAIT, "indexing while producing", || async {
        count(&store).await >= (before + 20) as usize
    })
    .await;
    let first = first.stop().await;
    assert!(!producing.is_finished(), "the restart happens while events keep coming");
    let second = start_indexer(&cluster, &store, &live, "g-restart");
    producing.await.unwrap();
    let total = before + during;
    wait_until(WAIT, "every event indexed", || async {
        count(&store).await == total as usize
    })
    .await;
    let second = second.stop().await;
    assert!(second.inserted > 0);
    assert_eq!(
        first.inserted + second.inserted,
        total,
        "no event lost or doubled: {first:?} {second:?}"
    );
    assert_eq!(
        first.records + second.records,
        total,
        "the restart resumed from the committed offsets"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_stream_neither_loses_nor_doubles_sqlite() {
    restart_mid_stream(cluster(3), sqlite_memory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_stream_neither_loses_nor_doubles_postgres() {
    let pg = PgSchema::create().await;
    restart_mid_stream(cluster(3), pg.store.clone()).await;
    pg.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_stream_neither_loses_nor_doubles_on_a_real_broker() {
    let pg = PgSchema::create().await;
    restart_mid_stream(tansu(3), pg.store.clone()).await;
    pg.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_records_are_skipped_and_indexing_goes_on() {
    let cluster = cluster(1);
    let store = sqlite_memory().await;
    let indexer = start_indexer(&cluster, &store, &LiveFeed::default(), "g-garbage");
    let garbage = OutgoingRecord {
        topic: &cluster.topic,
        key: None,
        payload: b"\xff\xff\xff not protobuf",
        headers: &[],
    };
    cluster.publisher.publish(garbage, WAIT).await.expect("acked");
    let id = publish(&cluster, 1).await;
    wait_until(WAIT, "the valid event", || async {
        store.get(&id).await.unwrap().is_some()
    })
    .await;
    let report = indexer.stop().await;
    assert_eq!((report.records, report.inserted, report.decode_failures), (2, 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_record_keeps_one_row_and_the_original_provenance() {
    let cluster = cluster(1);
    let store = sqlite_memory().await;
    let indexer = start_indexer(&cluster, &store, &LiveFeed::default(), "g-replay");
    let mut original = envelope("github", "push", now_micros(), 1);
    let first = cluster
        .publisher
        .publish_envelope(&original, TOPIC, None, WAIT)
        .await
        .unwrap();
    original.replay = true;
    cluster
        .publisher
        .publish_envelope(&original, TOPIC, None, WAIT)
        .await
        .unwrap();
    let sentinel = publish(&cluster, 2).await;
    wait_until(WAIT, "the sentinel", || async {
        store.get(&sentinel).await.unwrap().is_some()
    })
    .await;
    let report = indexer.stop().await;
    assert_eq!((report.records, report.inserted), (3, 2));
    let stored = store.get(&original.id).await.unwrap().unwrap();
    assert_eq!(stored.summary.provenance.offset, first.offset);
    assert_eq!(count(&store).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_older_than_retention_are_not_indexed() {
    let cluster = cluster(1);
    let store = sqlite_memory().await;
    let indexer = start_indexer(&cluster, &store, &LiveFeed::default(), "g-expired");
    let old = envelope("github", "push", now_micros() - 2 * 3600 * 1_000_000, 1);
    cluster
        .publisher
        .publish_envelope(&old, TOPIC, None, WAIT)
        .await
        .unwrap();
    let fresh = publish(&cluster, 2).await;
    wait_until(WAIT, "the fresh event", || async {
        store.get(&fresh).await.unwrap().is_some()
    })
    .await;
    let report = indexer.stop().await;
    assert_eq!((report.records, report.inserted, report.expired), (2, 1, 1));
    assert!(store.get(&old.id).await.unwrap().is_none());
}

/// Advisory lock the blocking trigger waits for.
const BLOCK_KEY: i64 = 20_150;
/// Events published before the blocking test's indexer starts.
const BLOCK_EVENTS: u64 = 300;
/// The event whose insert waits for [`BLOCK_KEY`] (`delivery-150`, offset 150).
const BLOCKED: u64 = 150;

/// The offset committed by `group` on partition 0 of the cluster's topic (0 when none).
async fn committed_offset(cluster: &Cluster, group: &str) -> i64 {
    let (bootstrap, topic, group) = (cluster.bootstrap.clone(), cluster.topic.clone(), group.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &group)
            .create()
            .expect("consumer");
        let mut partitions = TopicPartitionList::new();
        partitions.add_partition(&topic, 0);
        let committed = consumer.committed_offsets(partitions, WAIT).expect("committed offsets");
        match committed.find_partition(&topic, 0).map(|p| p.offset()) {
            Some(Offset::Offset(offset)) => offset,
            _ => 0,
        }
    })
    .await
    .unwrap()
}

/// Backends waiting for [`BLOCK_KEY`].
async fn blocked_backends(admin: &sqlx::PgPool) -> i64 {
    let sql =
        format!("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {BLOCK_KEY} AND NOT granted");
    sqlx::query_scalar(&sql).fetch_one(admin).await.unwrap()
}

/// The store stalls inside a batch (a trigger waits for a lock the test
/// holds on event 150) and the indexer dies there, as in a crash: no event
/// of that batch is visible, no offset past the stored events is committed,
/// and the next indexer of the group reads the batch again and stores every
/// event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indexer_dying_inside_a_batch_commits_nothing_of_it_and_its_successor_reads_it_again() {
    let cluster = cluster(1);
    let pg = PgSchema::create().await;
    let admin = pg.admin().await;
    let trigger = format!(
        "CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN PERFORM pg_advisory_xact_lock({BLOCK_KEY}); RETURN NEW; END $$; \
         CREATE TRIGGER stall BEFORE INSERT ON events FOR EACH ROW \
         WHEN (NEW.dedup_key = 'delivery-{BLOCKED}') EXECUTE FUNCTION stall();"
    );
    sqlx::raw_sql(&trigger).execute(&admin).await.unwrap();
    let mut holder = admin.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(BLOCK_KEY)
        .execute(&mut *holder)
        .await
        .unwrap();
    for n in 0..BLOCK_EVENTS {
        publish(&cluster, n).await;
    }
    let first = start_indexer(&cluster, &pg.store, &LiveFeed::default(), "g-stall");
    wait_until(WAIT, "the indexer stalled inside a batch", || async {
        blocked_backends(&admin).await == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stored = count(&pg.store).await as i64;
    let committed = committed_offset(&cluster, "g-stall").await;
    assert!(
        stored < BLOCKED as i64,
        "the stalled batch holding event {BLOCKED} is invisible: {stored} stored"
    );
    assert!(
        committed <= stored,
        "offset {committed} committed with only {stored} events stored"
    );
    // The crash: the indexer is gone mid-batch, and the database ends its session.
    first.stop.send(true).unwrap();
    first.task.abort();
    let _ = first.task.await;
    let sql = format!("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = {BLOCK_KEY} AND NOT granted");
    sqlx::query(&sql).execute(&admin).await.unwrap();
    sqlx::raw_sql("DROP TRIGGER stall ON events")
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(BLOCK_KEY)
        .execute(&mut *holder)
        .await
        .unwrap();
    drop(holder);
    let second = start_indexer(&cluster, &pg.store, &LiveFeed::default(), "g-stall");
    wait_until(WAIT, "every event indexed after the restart", || async {
        count(&pg.store).await == BLOCK_EVENTS as usize
    })
    .await;
    let report = second.stop().await;
    assert_eq!(
        report.records as i64,
        BLOCK_EVENTS as i64 - committed,
        "read again from the committed offset"
    );
    assert_eq!(
        report.inserted as i64,
        BLOCK_EVENTS as i64 - stored,
        "each event stored once"
    );
    admin.close().await;
    pg.remove().await;
}

/// Turns a valid envelope into one ingest never writes.
type Spoil = fn(&mut WebhookEnvelope);

/// Envelopes ingest never writes, each with what is wrong with it.
fn hostile_envelopes() -> Vec<(&'static str, WebhookEnvelope)> {
    let base = || envelope("github", "push", now_micros(), 9);
    let cases: [(&'static str, Spoil); 7] = [
        ("newline in the id", |e| e.id.push('\n')),
        ("id not a UUID", |e| e.id = "../../etc/passwd".into()),
        ("NUL in the dedup key", |e| e.dedup_key = "delivery\0-9".into()),
        ("CR LF in the event type", |e| {
            e.event_type = "push\r\nevent: admin".into()
        }),
        ("NUL in the source", |e| e.source = "git\0hub".into()),
        ("NUL in the path", |e| e.path = "/webhooks/\0".into()),
        ("garbage client address", |e| e.client_addr = "\u{1b}[2J".into()),
    ];
    cases
        .into_iter()
        .map(|(what, spoil)| {
            let mut hostile = base();
            spoil(&mut hostile);
            (what, hostile)
        })
        .collect()
}

/// Hostile records then a valid one, straight to a real broker's topic:
/// every hostile record is a decode failure, the valid one is stored and announced.
async fn hostile_records_are_decode_failures(store: Store) {
    let cluster = tansu(1);
    let live = LiveFeed::default();
    let mut tail = live.subscribe();
    let indexer = start_indexer(&cluster, &store, &live, &unique("g-hostile"));
    let hostile = hostile_envelopes();
    for (_, envelope) in &hostile {
        cluster
            .publisher
            .publish_envelope(envelope, &cluster.topic, None, WAIT)
            .await
            .expect("acked");
    }
    let sentinel = publish(&cluster, 1).await;
    wait_until(WAIT, "the valid event", || async {
        store.get(&sentinel).await.unwrap().is_some()
    })
    .await;
    let report = indexer.stop().await;
    assert_eq!(
        (report.decode_failures, report.inserted),
        (hostile.len() as u64, 1),
        "{report:?}"
    );
    assert_eq!(count(&store).await, 1);
    let first = tokio::time::timeout(WAIT, tail.recv()).await.unwrap().unwrap();
    assert_eq!(first.id, sentinel, "only the valid event reached the live tail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_records_are_decode_failures_sqlite() {
    hostile_records_are_decode_failures(sqlite_memory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_records_are_decode_failures_postgres() {
    let pg = PgSchema::create().await;
    hostile_records_are_decode_failures(pg.store.clone()).await;
    pg.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_gateway_skips_hostile_records_and_its_live_tail_goes_on() {
    let group = unique("hostile-topic");
    let rest = "[[sources]]\nname = \"github\"\nverify = \"none\"\n";
    let setup = Setup::start(common::Broker::any(), 1, "query", &[], |bootstrap, topic| {
        config(bootstrap, topic, "", rest).replace("[query]\n", &format!("[query]\nconsumer_group = \"{group}\"\n"))
    });
    let gateway = &setup.gateway;
    let mut tail = SseReader::open(&gateway.query_url("/v1/events/stream"), "unused").await;
    let cluster = Cluster::new(setup.broker.bootstrap(), setup.topic.clone(), None, None);
    let hostile = hostile_envelopes();
    for (_, envelope) in &hostile {
        cluster
            .publisher
            .publish_envelope(envelope, &cluster.topic, None, WAIT)
            .await
            .expect("acked");
    }
    let sentinel = publish(&cluster, 1).await;
    let block = tail.next_event().await;
    assert!(block.contains(&sentinel), "the live tail goes on: {block}");
    let failures = format!(
        "hookgate_indexer_decode_failures_total{{topic=\"{}\"}} {}",
        setup.topic,
        hostile.len()
    );
    assert!(
        gateway.metrics().await.contains(&failures),
        "{}",
        gateway.metrics().await
    );
    assert!(gateway.panics().is_empty(), "{:?}", gateway.panics());
}
