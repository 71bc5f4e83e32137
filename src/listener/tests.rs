//! The accept loop over loopback sockets: it serves, refuses a client over
//! its own limit while serving the others, closes a connection whose headers
//! do not arrive, and stops accepting at shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::sync::watch;

use super::*;

const WAIT: Duration = Duration::from_secs(10);

/// Answers every request with the client's address.
fn echo_peer(peer: SocketAddr) -> impl HttpService<Incoming, ResBody = Full<Bytes>, Future: Send> + Send {
    service_fn(move |_request: Request<Incoming>| async move {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(peer.ip().to_string()))))
    })
}

/// A listener on 127.0.0.1:0 served with `limits`, and its shutdown switch.
async fn start(limits: Limits) -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(serve(listener, "test", limits, echo_peer, stopped));
    (addr, stop, task)
}

fn limits(max_connections: usize, max_connections_per_ip: usize) -> Limits {
    Limits {
        max_connections,
        max_connections_per_ip,
        header_timeout: Duration::from_millis(500),
        drain_timeout: Duration::from_secs(1),
    }
}

async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.parse().unwrap(), 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// Everything the server sends until it closes the connection.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

async fn get(from: &str, to: SocketAddr) -> String {
    let mut stream = connect_from(from, to).await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    read_to_close(&mut stream).await
}

#[tokio::test]
async fn a_client_over_its_limit_is_refused_while_others_are_served() {
    let (addr, _stop, _task) = start(limits(4, 1)).await;
    let mut held = connect_from("127.0.0.1", addr).await;
    held.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let refused = get("127.0.0.1", addr).await;
    assert!(
        refused.starts_with("HTTP/1.1 429") && refused.contains("too_many_connections"),
        "{refused}"
    );
    let served = get("127.0.0.2", addr).await;
    assert!(
        served.starts_with("HTTP/1.1 200") && served.ends_with("127.0.0.2"),
        "{served}"
    );
}

#[tokio::test]
async fn headers_that_do_not_arrive_in_time_close_the_connection() {
    let (addr, _stop, _task) = start(limits(4, 4)).await;
    let mut slow = connect_from("127.0.0.1", addr).await;
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let answer = read_to_close(&mut slow).await;
    assert!(!answer.contains("200"), "{answer}");
    // Its slot is free again: with a limit of one, the next client is served.
    let (addr, _stop, _task) = start(limits(1, 1)).await;
    let mut slow = connect_from("127.0.0.1", addr).await;
    slow.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    assert!(get("127.0.0.2", addr).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns() {
    let (addr, stop, task) = start(limits(4, 4)).await;
    assert!(get("127.0.0.1", addr).await.starts_with("HTTP/1.1 200"));
    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, task).await.expect("serve returns").unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
}
