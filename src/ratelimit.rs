//! Rate limiting with governor (GCRA token buckets): one bucket per source
//! that sets `rate_limit`, one per client address under
//! `rate_limit.per_client_ip`, and one per client address under
//! `rate_limit.unverified_per_client_ip`. Ingest charges the first two only
//! once a request's signature checked out, so unsigned requests cannot drain
//! the budget of the genuine sender; a request that failed verification is
//! charged to the third instead. The client bucket is checked first, so a
//! single noisy client is refused before it drains its source's budget.
//!
//! Client addresses are grouped as one host would own them: an IPv4 address
//! is one client, an IPv6 client is its /64 prefix (hosts get whole /64s, so
//! per-address buckets would be trivial to dodge), and an IPv4-mapped IPv6
//! address counts as the IPv4 address.
//!
//! Client state is bounded by `rate_limit.max_tracked_clients`. When a client
//! not yet tracked arrives at the bound, idle buckets (indistinguishable from
//! fresh ones) are dropped first; if every tracked client is still active, the
//! newcomer is refused with a client-IP 429 until buckets go idle. Refusing,
//! rather than letting untracked clients through, keeps both memory and the
//! per-client limit intact under an address-spraying flood: the table only
//! stays full while `max_tracked_clients` clients are active within one
//! burst-refill period, and providers retry a 429 after `Retry-After`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::StateStore;
use governor::{DefaultDirectRateLimiter, NotUntil, Quota as GovernorQuota};
use parking_lot::Mutex;

use crate::config::{Config, Quota};
use crate::telemetry::names;

/// Least time between two prunes triggered by requests (a full table is pruned at most this often).
const PRUNE_AT_MOST_EVERY: Duration = Duration::from_millis(100);

/// Which quota refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// The source's own quota.
    Source,
    /// The per-client-address quota.
    ClientIp,
    /// The per-client-address quota of requests that failed verification.
    Unverified,
}

impl LimitScope {
    /// The label value used in metrics: "source", "client_ip" or "unverified".
    pub fn as_str(self) -> &'static str {
        match self {
            LimitScope::Source => "source",
            LimitScope::ClientIp => "client_ip",
            LimitScope::Unverified => "unverified",
        }
    }
}

/// A refused request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// The quota that refused it.
    pub scope: LimitScope,
    /// When to try again: whole seconds, at least one (the `Retry-After` header).
    pub retry_after: Duration,
}

/// A client as the per-client limits (quotas, connection counts) see it:
/// an IPv4 address, or the /64 prefix one IPv6 host owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    /// An IPv4 address (also from an IPv4-mapped IPv6 address).
    V4([u8; 4]),
    /// The /64 prefix of an IPv6 address.
    V6([u8; 8]),
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(v4.octets()),
                None => {
                    let octets = v6.octets();
                    let mut prefix = [0; 8];
                    prefix.copy_from_slice(&octets[..8]);
                    ClientKey::V6(prefix)
                }
            },
        }
    }
}

/// Client buckets shared between the governor limiter and this module, which
/// needs to ask whether a client is already tracked before admitting a new one.
#[derive(Clone)]
struct SharedStore(Arc<DashMapStateStore<ClientKey, ClientHasher>>);

/// Hashes client keys for the bucket table: foldhash, seeded per process.
/// It is much cheaper than the standard library's SipHash on keys this
/// short, and the random seed still keeps senders from choosing addresses
/// that collide.
type ClientHasher = foldhash::quality::RandomState;

impl std::fmt::Debug for SharedStore {
    /// The count only: client addresses stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore").field("clients", &self.0.len()).finish()
    }
}

impl StateStore for SharedStore {
    type Key = ClientKey;

    fn measure_and_replace<T, F, E>(&self, key: &ClientKey, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<ClientKey> for SharedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::retain_recent(&*self.0, drop_below)
    }

    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::shrink_to_fit(&*self.0)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The keyed limiter type over [`SharedStore`].
type ClientLimiter =
    governor::RateLimiter<ClientKey, SharedStore, DefaultClock, NoOpMiddleware<<DefaultClock as Clock>::Instant>>;

/// The per-client-address quota and its bounded state.
#[derive(Debug)]
struct Clients {
    /// One bucket per client key.
    limiter: ClientLimiter,
    /// The limiter's buckets, to look up and count.
    store: SharedStore,
    /// Most clients tracked.
    max_tracked: usize,
    /// When a request last pruned; a lock so that only one request prunes at a time.
    last_prune: Mutex<Option<Instant>>,
    /// What a client refused for a full table is told: a bucket's full refill time.
    full_retry_after: Duration,
}

/// Per-source and per-client-address quotas.
#[derive(Debug)]
pub struct RateLimiter {
    /// Buckets of the sources that set `rate_limit`; other sources are unlimited.
    sources: HashMap<String, DefaultDirectRateLimiter>,
    /// The per-client quota, when configured.
    clients: Option<Clients>,
    /// The per-client quota of requests that failed verification.
    unverified: Clients,
}

impl RateLimiter {
    /// Builds the quotas of `config`: each source's `rate_limit` and `rate_limit.per_client_ip`.
    pub fn new(config: &Config) -> RateLimiter {
        let sources = config
            .sources
            .iter()
            .filter_map(|s| {
                Some((
                    s.name.clone(),
                    governor::RateLimiter::direct(governor_quota(s.rate_limit?)),
                ))
            })
            .collect();
        let clients = config
            .rate_limit
            .per_client_ip
            .map(|quota| Clients::new(quota, config.rate_limit.max_tracked_clients));
        let unverified = Clients::new(
            config.rate_limit.unverified_per_client_ip,
            config.rate_limit.max_tracked_clients,
        );
        RateLimiter {
            sources,
            clients,
            unverified,
        }
    }

    /// Admits one request of `source` from `client`, or says which quota refused it and for how long.
    pub fn check(&self, source: &str, client: IpAddr) -> Result<(), Limited> {
        if let Some(clients) = &self.clients {
            clients.check(ClientKey::from(client), LimitScope::ClientIp)?;
        }
        match self.sources.get(source) {
            Some(limiter) => limiter
                .check()
                .map_err(|n| limited(LimitScope::Source, &n, limiter.clock())),
            None => Ok(()),
        }
    }

    /// Charges one failed verification to `client`'s unverified budget, or
    /// says for how long the client has exhausted it.
    pub fn check_unverified(&self, client: IpAddr) -> Result<(), Limited> {
        self.unverified.check(ClientKey::from(client), LimitScope::Unverified)
    }

    /// Drops the state of idle clients and updates the tracked-clients gauge.
    pub fn prune(&self) {
        if let Some(clients) = &self.clients {
            clients.prune();
        }
        self.unverified.prune();
        metrics::gauge!(names::RATE_LIMIT_TRACKED_CLIENTS).set(self.tracked_clients() as f64);
    }

    /// Client keys (IPv4 addresses, IPv6 /64s) currently tracked, in both per-client quotas.
    pub fn tracked_clients(&self) -> usize {
        self.clients.as_ref().map_or(0, |c| c.store.len()) + self.unverified.store.len()
    }
}

impl Clients {
    fn new(quota: Quota, max_tracked: usize) -> Self {
        let quota = governor_quota(quota);
        let store = SharedStore(Arc::new(DashMapStateStore::with_hasher(ClientHasher::default())));
        Clients {
            limiter: governor::RateLimiter::new(quota, store.clone(), DefaultClock::default()),
            store,
            max_tracked: max_tracked.max(1),
            last_prune: Mutex::new(None),
            full_retry_after: whole_seconds(quota.burst_size_replenished_in()),
        }
    }

    fn check(&self, key: ClientKey, scope: LimitScope) -> Result<(), Limited> {
        // Concurrent newcomers may overshoot the bound by the number of requests in progress.
        if !self.store.0.contains_key(&key) && self.store.len() >= self.max_tracked && !self.make_room() {
            return Err(Limited {
                scope,
                retry_after: self.full_retry_after,
            });
        }
        let clock = self.limiter.clock();
        self.limiter.check_key(&key).map_err(|n| limited(scope, &n, clock))
    }

    /// Prunes unless another request did so very recently (or is doing so); true if there is room now.
    fn make_room(&self) -> bool {
        if let Some(mut last) = self.last_prune.try_lock() {
            if last.is_none_or(|at| at.elapsed() >= PRUNE_AT_MOST_EVERY) {
                self.prune();
                *last = Some(Instant::now());
            }
        }
        self.store.len() < self.max_tracked
    }

    fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// The governor quota of a configured one: `burst` is the bucket's capacity,
/// refilled at `per_second`. Zeros (rejected by validation) count as 1.
fn governor_quota(quota: Quota) -> GovernorQuota {
    let per_second = NonZeroU32::new(quota.per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(quota.burst).unwrap_or(NonZeroU32::MIN);
    GovernorQuota::per_second(per_second).allow_burst(burst)
}

fn limited(scope: LimitScope, not_until: &NotUntil<<DefaultClock as Clock>::Instant>, clock: &DefaultClock) -> Limited {
    Limited {
        scope,
        retry_after: whole_seconds(not_until.wait_time_from(clock.now())),
    }
}

/// Rounds up to whole seconds, at least one: Retry-After carries integer seconds.
fn whole_seconds(wait: Duration) -> Duration {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(seconds.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceConfig;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    fn config(client: Option<(u32, u32)>, sources: &[(&str, Option<(u32, u32)>)], max_tracked: usize) -> Config {
        let mut config = Config::from_toml("").unwrap();
        config.rate_limit.per_client_ip = client.map(|(per_second, burst)| Quota { per_second, burst });
        config.rate_limit.max_tracked_clients = max_tracked;
        config.sources = sources
            .iter()
            .map(|&(name, quota)| SourceConfig {
                name: name.into(),
                rate_limit: quota.map(|(per_second, burst)| Quota { per_second, burst }),
                ..SourceConfig::demo()
            })
            .collect();
        config
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn client_quota_allows_the_burst_then_refuses() {
        let limiter = RateLimiter::new(&config(Some((1, 3)), &[("s", None)], 100));
        for _ in 0..3 {
            assert_eq!(limiter.check("s", A), Ok(()));
        }
        let refused = limiter.check("s", A).unwrap_err();
        assert_eq!(
            refused,
            Limited {
                scope: LimitScope::ClientIp,
                retry_after: Duration::from_secs(1)
            }
        );
        assert_eq!(refused.scope.as_str(), "client_ip");
    }

    #[test]
    fn debug_shows_no_client_addresses() {
        let limiter = RateLimiter::new(&config(Some((1, 1)), &[], 100));
        limiter.check("s", A).unwrap();
        let debug = format!("{limiter:?}");
        assert!(
            debug.contains("clients: 1") && !debug.contains("V4(") && !debug.contains("192, 0, 2"),
            "{debug}"
        );
    }

    #[test]
    fn clients_are_independent() {
        let limiter = RateLimiter::new(&config(Some((1, 1)), &[("s", None)], 100));
        assert_eq!(limiter.check("s", A), Ok(()));
        assert!(limiter.check("s", A).is_err());
        assert_eq!(limiter.check("s", B), Ok(()));
        assert_eq!(limiter.tracked_clients(), 2);
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64_and_mapped_ipv4_is_ipv4() {
        let limiter = RateLimiter::new(&config(Some((1, 1)), &[("s", None)], 100));
        assert_eq!(limiter.check("s", ip("2001:db8:1:2::1")), Ok(()));
        assert!(limiter.check("s", ip("2001:db8:1:2:ffff::9")).is_err(), "same /64");
        assert_eq!(limiter.check("s", ip("2001:db8:1:3::1")), Ok(()), "other /64");
        assert_eq!(limiter.check("s", ip("192.0.2.1")), Ok(()));
        assert!(limiter.check("s", ip("::ffff:192.0.2.1")).is_err(), "mapped = IPv4");
    }

    #[test]
    fn source_quotas_are_independent_and_unknown_sources_unlimited() {
        let limiter = RateLimiter::new(&config(
            None,
            &[("a", Some((1, 2))), ("b", Some((1, 1))), ("free", None)],
            100,
        ));
        assert_eq!(limiter.check("a", A), Ok(()));
        assert_eq!(limiter.check("a", B), Ok(()));
        let refused = limiter.check("a", A).unwrap_err();
        assert_eq!((refused.scope, refused.scope.as_str()), (LimitScope::Source, "source"));
        assert!(refused.retry_after >= Duration::from_secs(1));
        assert_eq!(limiter.check("b", A), Ok(()));
        for _ in 0..100 {
            assert_eq!(limiter.check("free", A), Ok(()));
            assert_eq!(limiter.check("nope", A), Ok(()));
        }
        assert_eq!(limiter.tracked_clients(), 0, "no per-client quota, no client state");
    }

    #[test]
    fn client_quota_is_checked_before_the_source() {
        let limiter = RateLimiter::new(&config(Some((1, 1)), &[("s", Some((1, 5)))], 100));
        assert_eq!(limiter.check("s", A), Ok(()));
        for _ in 0..10 {
            // Refused by its own quota, so the noisy client leaves the source's budget alone.
            assert_eq!(limiter.check("s", A).unwrap_err().scope, LimitScope::ClientIp);
        }
        for n in 1..5u8 {
            assert_eq!(limiter.check("s", IpAddr::from([10, 0, 0, n])), Ok(()));
        }
        assert_eq!(
            limiter.check("s", IpAddr::from([10, 0, 0, 9])).unwrap_err().scope,
            LimitScope::Source
        );
    }

    #[test]
    fn failed_verifications_spend_their_own_budget_only() {
        let mut config = config(Some((1, 2)), &[("s", Some((1, 2)))], 100);
        config.rate_limit.unverified_per_client_ip = Quota {
            per_second: 1,
            burst: 3,
        };
        let limiter = RateLimiter::new(&config);
        for _ in 0..3 {
            assert_eq!(limiter.check_unverified(A), Ok(()));
        }
        let refused = limiter.check_unverified(A).unwrap_err();
        assert_eq!(
            (refused.scope, refused.scope.as_str()),
            (LimitScope::Unverified, "unverified")
        );
        assert_eq!(limiter.check_unverified(B), Ok(()), "per client address");
        // The source's and the client's quotas are untouched by the failures.
        assert_eq!(limiter.check("s", A), Ok(()));
        assert_eq!(limiter.check("s", A), Ok(()));
        assert_eq!(limiter.check("s", A).unwrap_err().scope, LimitScope::ClientIp);
        assert_eq!(limiter.tracked_clients(), 3, "A in both tables, B in one");
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(whole_seconds(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(whole_seconds(Duration::from_millis(1)), Duration::from_secs(1));
        assert_eq!(whole_seconds(Duration::from_millis(1001)), Duration::from_secs(2));
        assert_eq!(whole_seconds(Duration::from_secs(3)), Duration::from_secs(3));
        let limiter = RateLimiter::new(&config(Some((1, 1)), &[], 100));
        limiter.check("s", A).unwrap();
        // One request per second: the wait is just under a second, announced as 1 s.
        assert_eq!(limiter.check("s", A).unwrap_err().retry_after, Duration::from_secs(1));
    }

    #[test]
    fn prune_drops_idle_clients() {
        // 1000/s with a burst of 1: a bucket is idle again 1 ms after its request.
        let limiter = RateLimiter::new(&config(Some((1000, 1)), &[], 100));
        for n in 0..10u8 {
            limiter.check("s", IpAddr::from([10, 0, 0, n])).unwrap();
        }
        assert_eq!(limiter.tracked_clients(), 10);
        std::thread::sleep(Duration::from_millis(20));
        limiter.prune();
        assert_eq!(limiter.tracked_clients(), 0);
    }

    #[test]
    fn full_table_refuses_newcomers_while_everyone_is_active() {
        // A burst of 5 at 1/s keeps a used bucket non-idle for seconds.
        let limiter = RateLimiter::new(&config(Some((1, 5)), &[], 3));
        for n in 0..3u8 {
            limiter.check("s", IpAddr::from([10, 0, 0, n])).unwrap();
        }
        let refused = limiter.check("s", IpAddr::from([10, 0, 0, 9])).unwrap_err();
        assert_eq!(
            refused,
            Limited {
                scope: LimitScope::ClientIp,
                retry_after: Duration::from_secs(5)
            }
        );
        assert_eq!(limiter.tracked_clients(), 3);
        assert_eq!(
            limiter.check("s", IpAddr::from([10, 0, 0, 1])),
            Ok(()),
            "tracked clients go on"
        );
    }

    #[test]
    fn full_table_makes_room_by_dropping_idle_clients() {
        let limiter = RateLimiter::new(&config(Some((1000, 1)), &[], 3));
        for n in 0..3u8 {
            limiter.check("s", IpAddr::from([10, 0, 0, n])).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(limiter.check("s", IpAddr::from([10, 0, 0, 9])), Ok(()));
        assert_eq!(limiter.tracked_clients(), 1);
    }
}
