//! Hostile input against the running gateway's query API (role `all`):
//! tokens in URLs, malformed filters, garbled and forged cursors, odd
//! Authorization headers and event ids. Every answer is a stable 4xx (never
//! a 5xx), no token is echoed or logged, a forged cursor never widens what a
//! token may see, and metric labels stay bounded.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::gateway::{config, label_values};
use common::webhook::post;
use common::{error_code, unique, Broker, Gateway, Setup};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

const ADMIN: &str = "query-admin-token-5e5e";
const ONLY_A: &str = "query-a-token-0b0b";

struct Api {
    _broker: Broker,
    gateway: Gateway,
    http: reqwest::Client,
    /// Ids of the events of source `a`, then of source `b`.
    a: Vec<String>,
    b: Vec<String>,
}

/// A gateway running ingest and query, with an admin token and one restricted to source `a`,
/// and five events of each of the sources `a` and `b` indexed.
async fn api() -> Api {
    let rest = "[[query.tokens]]\ntoken = \"env:HG_ADMIN_TOKEN\"\nscopes = [\"read\", \"replay\"]\n\
                [[query.tokens]]\ntoken = \"env:HG_A_TOKEN\"\nscopes = [\"read\"]\nsources = [\"a\"]\n\
                [[sources]]\nname = \"a\"\nverify = \"none\"\n[[sources]]\nname = \"b\"\nverify = \"none\"\n";
    // A consumer group of its own: the tests share one broker and run in parallel.
    let group = format!("[query]\nconsumer_group = \"{}\"\n", unique("hostile-indexer"));
    let env = [("HG_ADMIN_TOKEN", ADMIN), ("HG_A_TOKEN", ONLY_A)];
    let Setup { broker, gateway, .. } = Setup::start(Broker::any(), 1, "all", &env, |bootstrap, topic| {
        config(bootstrap, topic, "", rest).replace("[query]\n", &group)
    });
    let mut ids = Vec::new();
    for source in ["a", "a", "a", "a", "a", "b", "b", "b", "b", "b"] {
        let response = post(&gateway.url(&format!("/webhooks/{source}")), b"{}", &[]).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        ids.push(
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let api = Api {
        _broker: broker,
        gateway,
        http: reqwest::Client::new(),
        b: ids.split_off(5),
        a: ids,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.get("/v1/events", Some(ADMIN)).await.1["events"]
        .as_array()
        .map_or(0, Vec::len)
        < 10
    {
        assert!(Instant::now() < deadline, "the events were not indexed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api
}

impl Api {
    async fn send(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> (StatusCode, Value, String) {
        let mut request = self.http.request(method, self.gateway.query_url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let (status, body, text) = self.send(reqwest::Method::GET, path, token).await;
        assert!(
            !text.contains(ADMIN) && !text.contains(ONLY_A),
            "{path}: an answer echoes a token: {text}"
        );
        (status, body)
    }

    fn assert_clean(&self) {
        let logs = self.gateway.logs();
        assert!(self.gateway.panics().is_empty(), "{:?}", self.gateway.panics());
        assert!(
            !logs.contains(ADMIN) && !logs.contains(ONLY_A),
            "a token reached the log:\n{logs}"
        );
    }
}

fn sources_of(page: &Value) -> BTreeSet<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn tokens_in_the_url_are_refused_on_every_route_and_never_echoed() {
    let api = api().await;
    let id = &api.a[0];
    let routes = [
        (reqwest::Method::GET, "/v1/events".to_owned()),
        (reqwest::Method::GET, "/v1/events/stream".to_owned()),
        (reqwest::Method::GET, format!("/v1/events/{id}")),
        (reqwest::Method::GET, format!("/v1/events/{id}/body")),
        (reqwest::Method::POST, format!("/v1/events/{id}/replay")),
        (reqwest::Method::GET, "/v1/openapi.json".to_owned()),
        (reqwest::Method::GET, "/v1/nowhere".to_owned()),
    ];
    let queries = [
        format!("token={ADMIN}"),
        format!("access_token={ADMIN}"),
        format!("Token={ADMIN}"),
        format!("ACCESS_TOKEN={ADMIN}"),
        format!("%74oken={ADMIN}"),
        format!("source=a&token={ADMIN}"),
        "token".to_owned(),
    ];
    for (method, path) in &routes {
        for query in &queries {
            // Even together with a valid Authorization header.
            for header in [None, Some(ADMIN)] {
                let (status, body, text) = api.send(method.clone(), &format!("{path}?{query}"), header).await;
                assert_eq!(
                    (status, error_code(&body)),
                    (StatusCode::BAD_REQUEST, "token_in_url"),
                    "{method} {path}?{query}: {text}"
                );
                assert!(!text.contains(ADMIN), "{text}");
            }
        }
    }
    api.assert_clean();
}

#[tokio::test]
async fn malformed_filters_get_stable_4xx_codes_never_5xx() {
    let api = api().await;
    let long = "x".repeat(20_000);
    let queries = [
        "limit=-1",
        "limit=0",
        "limit=1001",
        "limit=99999999999999999999999",
        "limit=1.5",
        "limit=",
        "limit=%00",
        "since=yesterday",
        "since=2024-13-45T99:99:99Z",
        "since=9999-12-31T23:59:59Z&until=0001-01-01T00:00:00Z",
        "since=%ZZ",
        "since=2024-05-01T14:00:00+99:00",
        "until=+275760-09-13T00:00:00Z",
        "verified=TRUE",
        "verified=1",
        "verified=",
        "source=",
        "type=",
        "dedup_key=",
        "source=a&source=b",
        "source=%00",
        "source=a'%20OR%201=1--",
        "type=%27;DROP%20TABLE%20events;--",
        "dedup_key=%E2%80%AE",
        "colour=red",
        "=x",
        "&&&",
        "a[b]=c",
        "%",
        "cursor=",
        "cursor=%",
        "limit=1&limit=2",
    ];
    let mut all: Vec<String> = queries.iter().map(|q| q.to_string()).collect();
    all.push(format!("type={long}"));
    all.push(format!("{long}=1"));
    let expected = [
        "invalid_filter",
        "unknown_parameter",
        "invalid_cursor",
        "forbidden",
        "token_in_url",
    ];
    for query in &all {
        let shown = &query[..query.len().min(60)];
        for token in [ADMIN, ONLY_A] {
            let (status, body) = api.get(&format!("/v1/events?{query}"), Some(token)).await;
            if status == StatusCode::OK {
                assert!(body["events"].is_array(), "?{shown}: {body}");
                if token == ONLY_A {
                    assert!(sources_of(&body).iter().all(|s| s == "a"), "?{shown}: {body}");
                }
            } else {
                assert!(
                    status.is_client_error() && expected.contains(&error_code(&body)),
                    "?{shown}: {status} {body}"
                );
            }
            // The live tail answers 200 and then streams forever: look at the status only.
            let request = api
                .http
                .get(api.gateway.query_url(&format!("/v1/events/stream?{query}")))
                .bearer_auth(token);
            let status = request.send().await.unwrap().status();
            assert!(
                status == StatusCode::OK || status.is_client_error(),
                "stream ?{shown}: {status}"
            );
        }
    }
    api.assert_clean();
}

/// sha256 over length-prefixed parts, first 8 bytes: the cursor module's construction.
fn digest8(parts: &[&[u8]]) -> [u8; 8] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize()[..8].try_into().unwrap()
}

/// A cursor built by hand as src/history/api/cursor.rs lays it out, for the
/// filter "sources = `sources`, nothing else set". The checksum is not a
/// secret, so anyone can do this; what it buys must be nothing.
fn forge(received_at: i64, id: &[u8], sources: Option<&str>) -> String {
    let unset = "\u{1}";
    let fields = [sources.unwrap_or(unset), unset, unset, unset, unset, unset];
    let parts: Vec<&[u8]> = fields.iter().map(|f| f.as_bytes()).collect();
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&received_at.to_be_bytes());
    bytes.extend_from_slice(&digest8(&parts));
    bytes.extend_from_slice(id);
    let checksum = digest8(&[b"hookgate cursor v1", &bytes]);
    bytes.extend_from_slice(&checksum);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn garbled_and_forged_cursors_are_refused_or_name_a_position_only() {
    let api = api().await;
    // The genuine article, as a sanity check of the forgery.
    let (_, page) = api.get("/v1/events?limit=2", Some(ONLY_A)).await;
    let genuine = page["next_cursor"].as_str().unwrap().to_owned();
    let (status, _) = api
        .get(&format!("/v1/events?limit=2&cursor={genuine}"), Some(ONLY_A))
        .await;
    assert_eq!(status, StatusCode::OK);
    let garbled = [
        "AAAA".to_owned(),
        "!!!!".to_owned(),
        "A".repeat(20_000),
        URL_SAFE_NO_PAD.encode([1u8; 40]),
        URL_SAFE_NO_PAD.encode([2u8; 40]),
        genuine.chars().rev().collect(),
        format!("{genuine}A"),
        genuine[1..].to_owned(),
    ];
    for cursor in &garbled {
        let (status, body) = api.get(&format!("/v1/events?cursor={cursor}"), Some(ONLY_A)).await;
        assert!(
            [StatusCode::BAD_REQUEST, StatusCode::URI_TOO_LONG].contains(&status),
            "{status} {body}"
        );
    }
    // Forged for the unrestricted filter, presented by the restricted token: different filters, refused.
    let (status, body) = api
        .get(
            &format!("/v1/events?cursor={}", forge(i64::MAX, b"zzzzzzzz", None)),
            Some(ONLY_A),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_cursor"),
        "{body}"
    );
    // Forged for the token's own filter: any position, but only ever its own source.
    let ids: [&[u8]; 4] = [
        b"zzzzzzzz",
        "\u{10ffff}\u{10ffff}".as_bytes(),
        b"' OR 1=1 --",
        &[b'f'; 128],
    ];
    for received_at in [i64::MAX, i64::MIN, 0, -1] {
        for id in ids {
            let cursor = forge(received_at, id, Some("a"));
            let (status, page) = api.get(&format!("/v1/events?cursor={cursor}"), Some(ONLY_A)).await;
            assert_eq!(status, StatusCode::OK, "{received_at} {id:?}: {page}");
            assert!(
                sources_of(&page).iter().all(|s| s == "a"),
                "a forged cursor widened the view: {page}"
            );
        }
    }
    let (status, page) = api
        .get(
            &format!("/v1/events?cursor={}", forge(i64::MAX, b"zzzzzzzz", Some("a"))),
            Some(ONLY_A),
        )
        .await;
    assert_eq!(
        (status, page["events"].as_array().unwrap().len()),
        (StatusCode::OK, 5),
        "{page}"
    );
    // Ids that are too short, too long or not UTF-8 are malformed. (The bounds
    // the decoder applies are 8 and 136 bytes; real ids are 36.)
    for id in [&b""[..], b"z", &[b'f'; 137], b"\xff\xfe\xff\xfe\xff\xfe\xff\xfe"] {
        let (status, body) = api
            .get(&format!("/v1/events?cursor={}", forge(0, id, Some("a"))), Some(ONLY_A))
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_cursor"),
            "{body}"
        );
    }
    api.assert_clean();
}

#[tokio::test]
async fn odd_authorization_headers_and_event_ids_are_refused_cleanly() {
    let api = api().await;
    let huge = "t".repeat(60_000);
    let headers = [
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        "bearer\tquery".to_owned(),
        format!("Basic {ADMIN}"),
        format!("Bearer {ADMIN}x"),
        format!("Bearer  {}", &ADMIN[1..]),
        format!("Bearer {huge}"),
        format!("Token {ADMIN}"),
        ADMIN.to_owned(),
    ];
    for header in &headers {
        let response = api
            .http
            .get(api.gateway.query_url("/v1/events"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            [
                StatusCode::UNAUTHORIZED,
                StatusCode::BAD_REQUEST,
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            ]
            .contains(&status),
            "{status}"
        );
        assert!(!response.text().await.unwrap().contains(ADMIN));
    }
    let ids = [
        "..%2F..%2Fetc%2Fpasswd".to_owned(),
        "%00".to_owned(),
        "%FF%FE".to_owned(),
        "x".repeat(10_000),
        "%E2%80%AE".to_owned(),
        "'%20OR%201=1--".to_owned(),
        "%2e%2e".to_owned(),
        api.b[0].to_uppercase(),
    ];
    for id in &ids {
        for suffix in ["", "/body"] {
            let (status, body) = api.get(&format!("/v1/events/{id}{suffix}"), Some(ADMIN)).await;
            assert!(status.is_client_error(), "{suffix} {status} {body}");
        }
        let (status, body, _) = api
            .send(reqwest::Method::POST, &format!("/v1/events/{id}/replay"), Some(ADMIN))
            .await;
        assert!(status.is_client_error(), "replay {status} {body}");
    }
    // A restricted token neither sees nor replays the other source's events, whatever the path says.
    for path in [
        format!("/v1/events/{}", api.b[0]),
        format!("/v1/events/{}/body", api.b[0]),
    ] {
        assert_eq!(api.get(&path, Some(ONLY_A)).await.0, StatusCode::FORBIDDEN, "{path}");
    }
    let (status, _, _) = api
        .send(
            reqwest::Method::POST,
            &format!("/v1/events/{}/replay", api.a[0]),
            Some(ONLY_A),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let metrics = api.gateway.metrics().await;
    let routes = label_values(&metrics, "hookgate_query_duration_seconds_count", "route");
    let known = [
        "/v1/events",
        "/v1/events/stream",
        "/v1/events/{id}",
        "/v1/events/{id}/body",
        "/v1/events/{id}/replay",
        "/v1/openapi.json",
        "unmatched",
    ];
    assert!(routes.iter().all(|r| known.contains(&r.as_str())), "{routes:?}");
    api.assert_clean();
}
