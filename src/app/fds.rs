//! The open-files budget. Every connection a listener holds open is a file
//! descriptor, and a process out of descriptors fails in the worst places
//! (accept loops spin, the producer cannot reach a broker, the history store
//! cannot open a file). At start-up the soft `RLIMIT_NOFILE` is raised to
//! the hard limit, and `serve` refuses to start when the listeners' caps
//! cannot fit in it, naming the key to lower.

use super::Role;
use crate::config::Config;
use crate::listener::MAX_LINGERING;
use crate::telemetry::METRICS_LISTENER_LIMITS;

/// Descriptors kept for everything but the listeners' connections: the
/// listening sockets, the Kafka producer's and consumer's broker
/// connections, Redis, the history store's pool, log and database files.
pub(super) const RESERVED: u64 = 512;

/// What the listeners of `role` may hold open at once, by configuration key:
/// each listener's `max_connections` plus the refused connections it may
/// be answering ([`MAX_LINGERING`]).
pub(super) fn listener_needs(config: &Config, role: Role) -> Vec<(&'static str, u64)> {
    let lingering = MAX_LINGERING as u64;
    let mut needs = Vec::new();
    if role.ingest() {
        needs.push((
            "ingest.max_connections",
            config.ingest.max_connections as u64 + lingering,
        ));
    }
    if role.query() {
        needs.push(("query.max_connections", config.query.max_connections as u64 + lingering));
    }
    needs.push((
        "metrics listener (fixed)",
        METRICS_LISTENER_LIMITS.max_connections as u64 + lingering,
    ));
    needs
}

/// Why `serve` does not start.
#[derive(Debug, thiserror::Error)]
pub(super) enum FdError {
    /// The limit could not be read or raised.
    #[error("cannot read or raise the open-files limit (RLIMIT_NOFILE): {0}")]
    Rlimit(#[from] std::io::Error),
    /// The listeners' caps do not fit.
    #[error(
        "the open-files limit is {limit} (the hard limit), but the listeners may hold {needed} descriptors \
         ({detail}, plus {RESERVED} for brokers, stores and files): lower {key} to at most {fits}, \
         or raise the hard limit (ulimit -Hn, systemd LimitNOFILE, the container's nofile ulimit)"
    )]
    TooFew {
        /// The soft limit after raising it to the hard limit.
        limit: u64,
        /// Descriptors the configuration may need.
        needed: u64,
        /// Each listener's share.
        detail: String,
        /// The key to lower.
        key: &'static str,
        /// The largest value of that key that fits (0 when none does).
        fits: u64,
    },
}

/// Raises the soft open-files limit to the hard limit and checks that the
/// listeners of `role` fit in it; returns the limit now in force.
pub(super) fn ensure(config: &Config, role: Role) -> Result<u64, FdError> {
    let limit = rlimit::increase_nofile_limit(u64::MAX)?;
    check(limit, &listener_needs(config, role))?;
    Ok(limit)
}

/// Whether `needs` plus [`RESERVED`] fit in `limit`; if not, names the
/// first configurable key (ingest's, when this process runs it) and the
/// largest value of it that fits.
pub(super) fn check(limit: u64, needs: &[(&'static str, u64)]) -> Result<(), FdError> {
    let needed = needs.iter().map(|(_, n)| n).sum::<u64>() + RESERVED;
    if needed <= limit {
        return Ok(());
    }
    let (key, own) = needs
        .iter()
        .copied()
        .find(|(key, _)| key.ends_with(".max_connections"))
        .unwrap_or(needs[0]);
    let fits = limit.saturating_sub(needed - own).saturating_sub(MAX_LINGERING as u64);
    let detail = needs
        .iter()
        .map(|(key, n)| format!("{key}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(FdError::TooFew {
        limit,
        needed,
        detail,
        key,
        fits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_in_a_common_hard_limit_and_roles_count_their_listeners() {
        let config = Config::from_toml("").unwrap();
        let all = listener_needs(&config, Role::All);
        assert_eq!(all.len(), 3);
        assert!(check(65_536, &all).is_ok());
        let query = listener_needs(&config, Role::Query);
        assert!(query.iter().all(|(key, _)| !key.starts_with("ingest")));
        assert!(check(4_096, &query).is_ok());
    }

    #[test]
    fn too_few_descriptors_name_the_key_to_lower_and_a_value_that_fits() {
        let config = Config::from_toml("[ingest]\nmax_connections = 50000\n").unwrap();
        let needs = listener_needs(&config, Role::All);
        let error = check(20_000, &needs).unwrap_err();
        let FdError::TooFew { key, fits, needed, .. } = &error else {
            panic!("{error}");
        };
        assert_eq!(*key, "ingest.max_connections");
        // ingest + its refusals, query + its refusals, metrics + its refusals, the reserve.
        assert_eq!(*needed, 50_000 + 1_024 + 1_024 + 1_024 + 256 + 1_024 + RESERVED);
        let mut lowered = config.clone();
        lowered.ingest.max_connections = usize::try_from(*fits).unwrap();
        assert!(check(20_000, &listener_needs(&lowered, Role::All)).is_ok());
        lowered.ingest.max_connections += 1;
        assert!(check(20_000, &listener_needs(&lowered, Role::All)).is_err());
        let message = error.to_string();
        assert!(
            message.contains("lower ingest.max_connections to at most") && message.contains("20000"),
            "{message}"
        );
    }

    #[test]
    fn a_query_replica_is_told_to_lower_the_query_listener() {
        let config = Config::from_toml("[query]\nmax_connections = 9000\n").unwrap();
        let error = check(4_096, &listener_needs(&config, Role::Query)).unwrap_err();
        assert!(error.to_string().contains("lower query.max_connections"), "{error}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
        let config = Config::from_toml("[ingest]\nmax_connections = 1\n[query]\nmax_connections = 1\n").unwrap();
        assert_eq!(ensure(&config, Role::All).unwrap(), hard);
        assert_eq!(rlimit::Resource::NOFILE.get().unwrap().0, hard);
    }
}
