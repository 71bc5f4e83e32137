//! Open connections per client address, so that one sender cannot take every
//! connection slot of the listener. A client is an IPv4 address or an IPv6
//! /64 (hosts get whole /64s), as rate limiting counts them. The count uses
//! the socket peer: behind a proxy every connection comes from the proxy.
//!
//! A connection over the limit is answered at once with a fixed 429
//! `too_many_connections` and closed, without reading the request. The
//! answer lingers a moment so that the client can read it; at most
//! [`MAX_LINGERING`] refusals linger at once (they hold a file descriptor
//! each but no listener-wide slot), beyond that the answer is written once
//! without waiting and the connection closed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::error_body::error_body;
use crate::ratelimit::ClientKey;

/// How long a refused connection is given to take its answer before it is dropped.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// Most request bytes drained from a refused connection (so the close is a FIN, not a reset).
const REFUSAL_DRAIN_BYTES: usize = 64 * 1024;
/// Most refused connections lingering at once.
pub(crate) const MAX_LINGERING: usize = 1024;

/// The complete answer to a connection over the per-client limit.
fn refusal() -> Vec<u8> {
    let body = error_body(
        "too_many_connections",
        "too many open connections from this client address",
    );
    let head = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    [head.into_bytes(), body].concat()
}

/// Slots per client: open connections here, requests in flight in ingest.
/// Entries exist only while a client holds a slot, so the table never holds
/// more entries than slots are taken.
#[derive(Debug)]
pub(crate) struct PerClientSlots {
    /// Most slots one client may hold.
    max: usize,
    /// Slots taken, by client.
    open: Mutex<HashMap<ClientKey, usize>>,
}

/// One taken slot; dropping it gives the slot back.
#[derive(Debug)]
pub(crate) struct ClientSlot {
    /// The table it was taken from.
    table: Arc<PerClientSlots>,
    /// Whose slot it is.
    key: ClientKey,
}

impl PerClientSlots {
    /// A table allowing `max` slots per client.
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for `ip`, or `None` when the client holds `max` already.
    pub(crate) fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let key = ClientKey::from(ip);
        let mut open = self.open.lock();
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            table: self.clone(),
            key,
        })
    }

    /// Clients with at least one open connection.
    #[cfg(test)]
    fn clients(&self) -> usize {
        self.open.lock().len()
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The refused connections being answered, bounded by [`MAX_LINGERING`].
#[derive(Debug)]
pub(super) struct Refusals {
    /// One permit per lingering refusal.
    lingering: Arc<Semaphore>,
}

impl Default for Refusals {
    fn default() -> Self {
        Self::with_bound(MAX_LINGERING)
    }
}

impl Refusals {
    /// At most `bound` refusals lingering at once.
    fn with_bound(bound: usize) -> Self {
        Self {
            lingering: Arc::new(Semaphore::new(bound)),
        }
    }

    /// Answers `stream` with the 429 and closes it: in a task of its own that
    /// lingers up to [`REFUSAL_LINGER`], or at once when too many already linger.
    pub(super) fn refuse(&self, stream: TcpStream) {
        match self.lingering.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    linger(stream).await;
                    drop(permit);
                });
            }
            // One non-blocking write straight to the socket (its send buffer is
            // empty, so the answer fits), then the close.
            Err(_) => {
                if let Ok(mut socket) = stream.into_std() {
                    let _ = std::io::Write::write(&mut socket, &refusal());
                }
            }
        }
    }
}

/// Writes the 429, closes our side and reads what the client sent until it
/// closes too; bounded by [`REFUSAL_LINGER`].
async fn linger(mut stream: TcpStream) {
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        stream.write_all(&refusal()).await?;
        stream.shutdown().await?;
        // Read what the client already sent, so closing does not reset the
        // connection before it has read the answer.
        let mut drained = 0;
        let mut buffer = [0u8; 4096];
        while drained < REFUSAL_DRAIN_BYTES {
            match stream.read(&mut buffer).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_client_gets_at_most_max_slots_and_dropping_one_frees_it() {
        let table = PerClientSlots::new(2);
        let a = table.try_acquire(ip("10.0.0.1")).unwrap();
        let _b = table.try_acquire(ip("10.0.0.1")).unwrap();
        assert!(table.try_acquire(ip("10.0.0.1")).is_none());
        assert!(
            table.try_acquire(ip("10.0.0.2")).is_some(),
            "other clients are not affected"
        );
        drop(a);
        assert!(table.try_acquire(ip("10.0.0.1")).is_some());
    }

    #[test]
    fn entries_disappear_with_the_last_connection() {
        let table = PerClientSlots::new(3);
        let slots: Vec<_> = (0..50)
            .map(|i| table.try_acquire(ip(&format!("10.0.1.{i}"))).unwrap())
            .collect();
        assert_eq!(table.clients(), 50);
        drop(slots);
        assert_eq!(table.clients(), 0);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let table = PerClientSlots::new(1);
        let _a = table.try_acquire(ip("2001:db8:1:2::1")).unwrap();
        assert!(table.try_acquire(ip("2001:db8:1:2:ffff::9")).is_none(), "same /64");
        assert!(table.try_acquire(ip("2001:db8:1:3::1")).is_some(), "other /64");
        let _v4 = table.try_acquire(ip("192.0.2.7")).unwrap();
        assert!(table.try_acquire(ip("::ffff:192.0.2.7")).is_none());
    }

    /// A connected pair over loopback: (client side, server side).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        (client, listener.accept().await.unwrap().0)
    }

    async fn answer(mut client: TcpStream) -> String {
        let mut text = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), client.read_to_string(&mut text)).await;
        text
    }

    #[tokio::test]
    async fn refusals_beyond_the_lingering_bound_are_answered_without_waiting() {
        for bound in [1, 0] {
            let (client, server) = pair().await;
            Refusals::with_bound(bound).refuse(server);
            let text = answer(client).await;
            assert!(text.starts_with("HTTP/1.1 429"), "bound {bound}: {text}");
        }
    }

    #[test]
    fn the_refusal_is_a_complete_http_response() {
        let text = String::from_utf8(refusal()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "too_many_connections");
    }
}
