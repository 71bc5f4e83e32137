//! Query latency on a filled store, through the store's own interface (the
//! statements the query API runs, without HTTP and JSON around them): one
//! query at a time, `rounds` of each after a few unmeasured ones, each round
//! with other parameters (another dedup key, id, cursor), p50 and p99.
//! Pages hold `DEFAULT_LIMIT + 1` events, as the API asks for them.

use std::time::{Duration, Instant};

use hookgate::history::api::DEFAULT_LIMIT;
use hookgate::history::{EventFilter, Position, Store};

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
}

/// A query of round `r`.
enum Query {
    /// A page of a filtered list.
    List(EventFilter, Option<Position>),
    /// One event by id.
    Get(String),
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

/// A query's name and the query of each round.
type Named = (String, Box<dyn Fn(u64) -> Query>);

/// Every measured query, by name, as a function of the round.
fn queries(d: Deliveries) -> Vec<Named> {
    let deep = DEEP.min(d.count / 2);
    vec![
        (
            "newest page".into(),
            Box::new(|_| Query::List(EventFilter::default(), None)),
        ),
        (
            format!("source + type, common ({}/{})", COMMON_PAIR.0, COMMON_PAIR.1),
            Box::new(|_| Query::List(pair(COMMON_PAIR), None)),
        ),
        (
            format!("source + type, rare ({}/{})", RARE_PAIR.0, RARE_PAIR.1),
            Box::new(|_| Query::List(pair(RARE_PAIR), None)),
        ),
        (
            "dedup_key".into(),
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
            Box::new(move |r| Query::Get(d.delivery(spread(&d, r)).id)),
        ),
        (
            format!("page {deep} deep by cursor"),
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
    }
}

/// Measures every query `rounds` times on `store`.
pub(crate) async fn measure(store: &Store, deliveries: Deliveries, rounds: u64) -> Vec<Latency> {
    let mut results = Vec::new();
    for (name, query) in queries(deliveries) {
        for r in 0..WARM_UP {
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
        });
    }
    results
}
