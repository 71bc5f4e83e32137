//! DNS rebinding protection of an open query API. Without `[[query.tokens]]`
//! the API answers only on loopback, but a web page can still reach it: its
//! own domain, re-resolved to 127.0.0.1, makes the browser send the page's
//! requests to the local API with the page's name as `Host`. So while no
//! token is configured, a request must name a loopback host (`localhost`,
//! a `*.localhost` name, 127.0.0.0/8 or `[::1]`, any port) in its `Host`
//! header and in an absolute request URI; anything else is 403
//! `host_not_allowed`. With tokens configured the token is the protection
//! and any host name is served (a proxy in front may use its own).

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{header, uri::Authority};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::ApiState;

/// Middleware: 403 `host_not_allowed` for a request to an open API that does not name a loopback host.
pub(crate) async fn require_loopback_host(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if state.auth().is_open() && !names_loopback(&request) {
        return ApiError::HostNotAllowed.into_response();
    }
    next.run(request).await
}

/// True when the request names a host and every host it names is a loopback one.
fn names_loopback(request: &Request) -> bool {
    let from_header = request
        .headers()
        .get(header::HOST)
        .map(|value| value.to_str().ok().and_then(|text| text.parse::<Authority>().ok()));
    let from_uri = request.uri().authority().cloned().map(Some);
    let named: Vec<Option<Authority>> = from_header.into_iter().chain(from_uri).collect();
    !named.is_empty()
        && named
            .iter()
            .all(|authority| authority.as_ref().is_some_and(is_loopback))
}

/// `localhost`, `*.localhost` (both resolved on the machine itself, RFC 6761),
/// or a loopback address; a trailing dot and any port are allowed.
fn is_loopback(authority: &Authority) -> bool {
    let host = authority.host();
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let address = host.trim_start_matches('[').trim_end_matches(']');
    address
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: Option<&str>, uri: &str) -> Request {
        let mut builder = Request::builder().uri(uri);
        if let Some(host) = host {
            builder = builder.header(header::HOST, host);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn loopback_names_and_addresses_pass() {
        for host in [
            "localhost",
            "LOCALHOST:8081",
            "localhost.",
            "api.localhost:8081",
            "127.0.0.1",
            "127.1.2.3:8081",
            "[::1]:8081",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(names_loopback(&request(Some(host), "/v1/events")), "{host}");
        }
    }

    #[test]
    fn other_hosts_and_missing_or_garbled_ones_are_refused() {
        for host in [
            "evil.example",
            "evil.example:8081",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "0.0.0.0:8081",
            "10.0.0.1",
            "[::2]",
            "",
            "local host",
        ] {
            assert!(!names_loopback(&request(Some(host), "/v1/events")), "{host}");
        }
        assert!(!names_loopback(&request(None, "/v1/events")), "no host at all");
        assert!(
            !names_loopback(&request(Some("localhost"), "http://evil.example/v1/events")),
            "an absolute URI naming another host"
        );
        assert!(names_loopback(&request(None, "http://127.0.0.1:8081/v1/events")));
    }
}
