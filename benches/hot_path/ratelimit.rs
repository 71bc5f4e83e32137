//! The quota check every request passes first: a per-source bucket and a
//! per-client bucket, for a known client and for clients arriving one after another.

use std::net::{IpAddr, Ipv4Addr};

use criterion::Criterion;
use hookgate::config::Config;
use hookgate::ratelimit::RateLimiter;

const CONFIG: &str = r#"
[rate_limit]
per_client_ip = { per_second = 1000000000, burst = 1000000000 }
max_tracked_clients = 100000

[[sources]]
name = "github"
verify = "none"
rate_limit = { per_second = 1000000000, burst = 1000000000 }
"#;

pub(crate) fn bench(c: &mut Criterion) {
    let config = Config::from_toml(CONFIG).expect("bench config parses");
    let limiter = RateLimiter::new(&config);
    let mut group = c.benchmark_group("ratelimit");
    let client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    group.bench_function("check_one_client", |b| b.iter(|| limiter.check("github", client)));
    // 50,000 distinct clients in turn: the per-client table holds all of them (below its bound).
    let mut n = 0u32;
    group.bench_function("check_50k_clients", |b| {
        b.iter(|| {
            n = (n + 1) % 50_000;
            limiter.check("github", IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)))
        })
    });
    group.finish();
}
