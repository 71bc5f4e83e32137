//! The listening sockets of `hookgate serve`: bound with `SO_REUSEADDR` and
//! a kernel backlog of our choosing, so that a burst of senders connecting
//! at once waits to be accepted instead of being dropped.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};

use crate::config::Config;

/// Connections the kernel queues for the query and metrics listeners until
/// they are accepted (tokio's own default), and the least the webhook listener gets.
pub(super) const DEFAULT_BACKLOG: u32 = 1024;

/// A listener on `addr` for the configuration key `key`, its error naming both.
pub(super) fn bind(key: &str, addr: SocketAddr, backlog: u32) -> anyhow::Result<TcpListener> {
    listen(addr, backlog).with_context(|| format!("cannot listen on {key} = {addr}"))
}

/// A listener on `addr` whose kernel queue holds `backlog` connections not
/// yet accepted (Linux caps it at `net.core.somaxconn`). Beyond it the kernel
/// drops new connection attempts, which clients retry only after a second.
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted gateway listens again at once
    // even while its old connections linger in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// The webhook listener's backlog: room for as many waiting connections as
/// may be open, so that a burst of senders connecting at once (every provider
/// reconnecting after a restart) waits to be accepted instead of being dropped.
pub(super) fn ingest_backlog(config: &Config) -> u32 {
    u32::try_from(config.ingest.max_connections)
        .unwrap_or(u32::MAX)
        .max(DEFAULT_BACKLOG)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// How many of `attempts` simultaneous connects to a listener that never
    /// accepts complete within half a second (a dropped attempt is retried after a second).
    async fn connects_completed(backlog: u32, attempts: usize) -> usize {
        let listener = listen("127.0.0.1:0".parse().unwrap(), backlog).unwrap();
        let addr = listener.local_addr().unwrap();
        let connects = (0..attempts)
            .map(|_| tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect(addr)));
        let results = futures::future::join_all(connects).await;
        results.iter().filter(|result| matches!(result, Ok(Ok(_)))).count()
    }

    #[tokio::test]
    async fn the_backlog_bounds_the_connections_waiting_to_be_accepted() {
        assert_eq!(connects_completed(64, 40).await, 40, "a backlog of 64 holds 40");
        assert!(connects_completed(4, 40).await < 40, "a backlog of 4 does not");
    }

    #[test]
    fn the_webhook_backlog_has_room_for_every_allowed_connection() {
        let mut config = Config::from_toml("").unwrap();
        config.ingest.max_connections = 50_000;
        assert_eq!(ingest_backlog(&config), 50_000);
        config.ingest.max_connections = 10;
        assert_eq!(ingest_backlog(&config), DEFAULT_BACKLOG, "never below tokio's default");
    }
}
