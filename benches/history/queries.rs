//! Query latency on a filled store, through the store's own interface (the
//! statements the query API runs, without HTTP and JSON around them): one
//! query at a time, `rounds` of each after a few unmeasured ones, each round
//! with other parameters (another dedup key, id, cursor), p50 and p99.
//! Pages hold `DEFAULT_LIMIT + 1` events, as the API asks for them.
//!
//! Payload search: `json=` on a pointer the bench configures as an index
//! (`/data/object/customer`, stripe) and on one it does not
//! (`/sender/login`, github), and `q=` for a common word and a rare phrase.
//! A query that reads every row when no index serves it (the unindexed
//! pointer; `q=` on PostgreSQL without its optional word index) runs
//! `HISTORY_SCAN_ROUNDS` rounds (5) instead. The export reads 100,000
//! events (or half the store) in the export's keyset pages, 3 rounds.

use std::time::{Duration, Instant};

use hookgate::history::api::{DEFAULT_LIMIT, EXPORT_PAGE};
use hookgate::history::{EventFilter, JsonMatch, JsonPointer, Order, Position, Store};

use crate::deliveries::{Deliveries, COMMON_PAIR, RARE_PAIR};

/// Rounds not measured before each query's rounds.
const WARM_UP: u64 = 10;
/// How deep the deep page starts (events newer than it), at most.
pub(crate) const DEEP: u64 = 100_000;

/// Latencies of one query.
#[derive(Debug, Clone)]
pub(crate) struct Latency {
    /// What was asked.
    pub(crate) query: String,
    /// Median.
    pub(crate) p50: Duration,
    /// 99th percentile.
    pub(crate) p99: Duration,
    /// Events the last round returned (a sanity check).
    pub(crate) returned: usize,
    /// Measured rounds.
    pub(crate) rounds: u64,
}

/// Rounds of the export.
const EXPORT_ROUNDS: u64 = 3;
/// The pointer the benchmark indexes (as a source's `index` would).
pub(crate) const INDEXED_POINTER: &str = "/data/object/customer";
/// Customers the deliveries' bodies name (see `deliveries`).
const CUSTOMERS: u64 = 50_000;

/// A query of round `r`.
enum Query {
    /// A page of a filtered list.
    List(EventFilter, Option<Position>),
    /// One event by id.
    Get(String),
    /// Up to this many complete events, newest first, in export pages.
    Export(u64),
}

/// How often a query runs.
#[derive(Clone, Copy)]
enum Rounds {
    /// The run's rounds.
    All,
    /// `HISTORY_SCAN_ROUNDS`: it reads every row.
    Scan,
    /// [`EXPORT_ROUNDS`].
    Export,
}

fn json(pointer: &str, value: String) -> EventFilter {
    EventFilter {
        json: vec![JsonMatch {
            pointer: JsonPointer::parse(pointer).expect("pointer"),
            value,
        }],
        ..Default::default()
    }
}

fn text(text: String) -> EventFilter {
    EventFilter {
        text: Some(text),
        ..Default::default()
    }
}

fn pair(pair: (&str, &str)) -> EventFilter {
    EventFilter {
        sources: Some(vec![pair.0.into()]),
        event_type: Some(pair.1.into()),
        ..Default::default()
    }
}

/// An index spread over the deliveries by round `r` (distinct for distinct `r`).
fn spread(d: &Deliveries, r: u64) -> u64 {
    (r.wrapping_mul(7_919_993) + 12_345) % d.count
}

/// A query's name, how often it runs and the query of each round.
type Named = (String, Rounds, Box<dyn Fn(u64) -> Query>);

/// Every measured query, by name, as a function of the round.
fn queries(d: Deliveries, text_indexed: bool) -> Vec<Named> {
    let mut all = listings(d);
    let text_rounds = if text_indexed { Rounds::All } else { Rounds::Scan };
    let customer = move |r: u64| spread(&d, r) % CUSTOMERS;
    all.extend::<Vec<Named>>(vec![
        (
            format!("json= indexed pointer ({INDEXED_POINTER}, ~6 events)"),
            Rounds::All,
            Box::new(move |r| Query::List(json(INDEXED_POINTER, format!("cus_{}", customer(r))), None)),
        ),
        (
            "json= unindexed pointer (/sender/login, ~10 events)".into(),
            Rounds::Scan,
            Box::new(move |r| Query::List(json("/sender/login", format!("user-{}", customer(r))), None)),
        ),
        (
            "q= common word (push, 20% of events)".into(),
            text_rounds,
            Box::new(|_| Query::List(text("push".into()), None)),
        ),
        (
            "q= rare phrase (cus_N, ~6 events)".into(),
            text_rounds,
            Box::new(move |r| Query::List(text(format!("cus_{}", customer(r))), None)),
        ),
        (
            format!("export of {} events", DEEP.min(d.count / 2)),
            Rounds::Export,
            Box::new(move |_| Query::Export(DEEP.min(d.count / 2))),
        ),
    ]);
    all
}

/// The listing queries (indexed columns only).
fn listings(d: Deliveries) -> Vec<Named> {
    let deep = DEEP.min(d.count / 2);
    vec![
        (
            "newest page".into(),
            Rounds::All,
            Box::new(|_| Query::List(EventFilter::default(), None)),
        ),
        (
            format!("source + type, common ({}/{})", COMMON_PAIR.0, COMMON_PAIR.1),
            Rounds::All,
            Box::new(|_| Query::List(pair(COMMON_PAIR), None)),
        ),
        (
            format!("source + type, rare ({}/{})", RARE_PAIR.0, RARE_PAIR.1),
            Rounds::All,
            Box::new(|_| Query::List(pair(RARE_PAIR), None)),
        ),
        (
            "dedup_key".into(),
            Rounds::All,
            Box::new(move |r| {
                let filter = EventFilter {
                    dedup_key: Some(d.delivery(spread(&d, r)).dedup_key),
                    ..Default::default()
                };
                Query::List(filter, None)
            }),
        ),
        (
            "one event by id".into(),
            Rounds::All,
            Box::new(move |r| Query::Get(d.delivery(spread(&d, r)).id)),
        ),
        (
            format!("page {deep} deep by cursor"),
            Rounds::All,
            Box::new(move |r| {
                let at = d.delivery(d.count - deep - (r % 1000));
                Query::List(
                    EventFilter::default(),
                    Some(Position {
                        received_at: at.received_at,
                        id: at.id,
                    }),
                )
            }),
        ),
    ]
}

/// Runs one query; returns how many events it gave.
async fn run(store: &Store, query: Query) -> usize {
    match query {
        Query::List(filter, after) => store
            .list(&filter, after.as_ref(), DEFAULT_LIMIT + 1)
            .await
            .expect("list")
            .len(),
        Query::Get(id) => usize::from(store.get(&id).await.expect("get").is_some()),
        Query::Export(count) => export(store, count).await,
    }
}

/// Reads `count` complete events newest first in the export's pages.
async fn export(store: &Store, count: u64) -> usize {
    let filter = EventFilter::default();
    let mut read = 0;
    let mut after: Option<Position> = None;
    while (read as u64) < count {
        let page = store
            .scan(&filter, Order::NewestFirst, after.as_ref(), EXPORT_PAGE)
            .await
            .expect("scan");
        read += page.len();
        match page.last() {
            Some(last) if page.len() == EXPORT_PAGE as usize => after = Some(Position::from(&last.summary)),
            _ => break,
        }
    }
    read
}

/// Measures every query on `store`: `rounds` times, or `scan_rounds` for
/// those that read every row, after unmeasured rounds.
pub(crate) async fn measure(store: &Store, deliveries: Deliveries, rounds: u64, scan_rounds: u64) -> Vec<Latency> {
    let pointer = JsonPointer::parse(INDEXED_POINTER).expect("pointer");
    store.ensure_json_indexes(&[pointer]).await.expect("json index");
    let text_indexed = store.has_text_index().await.expect("text index");
    let mut results = Vec::new();
    for (name, how_often, query) in queries(deliveries, text_indexed) {
        let (rounds, warm_up) = match how_often {
            Rounds::All => (rounds, WARM_UP),
            Rounds::Scan => (scan_rounds, 1),
            Rounds::Export => (EXPORT_ROUNDS, 1),
        };
        for r in 0..warm_up {
            run(store, query(rounds + r)).await;
        }

        let mut times = Vec::with_capacity(rounds as usize);
        let mut returned = 0;
        for r in 0..rounds {
            let q = query(r);
            let started = Instant::now();
            returned = run(store, q).await;
            times.push(started.elapsed());
        }
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
        results.push(Latency {
            query: name,
            p50: at(0.5),
            p99: at(0.99),
            returned,
            rounds,
        });
    }
    results
}
