//! Property tests of every parser of untrusted input that tests/verify_props.rs
//! does not cover already (signature headers are there): signed timestamps,
//! dedup-key and event-type extraction, the trusted client-address header,
//! configuration text, envelope decoding (what the indexer reads), and the
//! query API's filters and cursors (private, so driven over HTTP against an
//! in-process router). Each holds for any input: no panic, and the answer is
//! the one the rules say.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use serde_json::Value;

use hookgate::config::{Config, HmacAlgorithm, HmacSpec, KeySpec, Preset, Secret, SignatureEncoding, SourceConfig};
use hookgate::envelope::WebhookEnvelope;
use hookgate::ingest::{client_ip, extract, extract_key, LazyJson};
use hookgate::verify::{Verifier, VerifyError};

// ---------------------------------------------------------------- timestamps

/// The presets that sign a timestamp, and where it travels.
#[derive(Debug, Clone, Copy)]
enum Stamped {
    /// `t=` inside `Stripe-Signature`.
    Stripe,
    /// `X-Slack-Request-Timestamp`.
    Slack,
    /// `webhook-timestamp`.
    Standard,
    /// A declarative scheme's `timestamp_header` (`x-ts`).
    Hmac,
}

fn stamped() -> impl Strategy<Value = Stamped> {
    prop_oneof![
        Just(Stamped::Stripe),
        Just(Stamped::Slack),
        Just(Stamped::Standard),
        Just(Stamped::Hmac)
    ]
}

fn stamped_verifier(kind: Stamped, tolerance: Duration) -> Verifier {
    let (verify, secret, hmac) = match kind {
        Stamped::Stripe => (Preset::Stripe, "whsec_prop".to_owned(), None),
        Stamped::Slack => (Preset::Slack, "slack-prop".to_owned(), None),
        Stamped::Standard => (Preset::StandardWebhooks, "whsec_cHJvcC1zZWNyZXQ=".to_owned(), None),
        Stamped::Hmac => {
            let spec = HmacSpec {
                header: "x-signature".into(),
                algorithm: HmacAlgorithm::Sha256,
                encoding: SignatureEncoding::Hex,
                prefix: String::new(),
                signed: "{header:x-ts}.{body}".into(),
                timestamp_header: Some("x-ts".into()),
            };
            (Preset::Hmac, "hmac-prop".to_owned(), Some(spec))
        }
    };
    let source = SourceConfig {
        hmac,
        tolerance: Some(tolerance),
        ..SourceConfig::new("prop", verify, vec![Secret::from_bytes(secret)])
    };
    Verifier::from_source(&source).expect("valid source")
}

fn at(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs as u64)
}

/// The headers with the signed timestamp replaced by `stamp`.
fn restamp(kind: Stamped, mut headers: HeaderMap, stamp: &[u8]) -> Option<HeaderMap> {
    let (name, value) = match kind {
        Stamped::Stripe => {
            let original = headers.get("stripe-signature")?.to_str().ok()?.to_owned();
            let v1 = original.split(',').find(|part| part.starts_with("v1="))?;
            let mut value = b"t=".to_vec();
            value.extend_from_slice(stamp);
            value.push(b',');
            value.extend_from_slice(v1.as_bytes());
            ("stripe-signature", value)
        }
        Stamped::Slack => ("x-slack-request-timestamp", stamp.to_vec()),
        Stamped::Standard => ("webhook-timestamp", stamp.to_vec()),
        Stamped::Hmac => ("x-ts", stamp.to_vec()),
    };
    headers.insert(HeaderName::from_static(name), HeaderValue::from_bytes(&value).ok()?);
    Some(headers)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Signed at `now + skew` and checked at `now`: accepted exactly within the
    /// tolerance (bounds included), else stale or future by the side it is on.
    #[test]
    fn the_tolerance_window_holds_for_every_timestamped_preset(
        kind in stamped(),
        tolerance in 1u64..3600,
        now in 1_000_000_000i64..4_000_000_000,
        skew_factor in -2.0f64..2.0,
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let verifier = stamped_verifier(kind, Duration::from_secs(tolerance));
        let skew = (skew_factor * tolerance as f64).round() as i64;
        let headers: HeaderMap = verifier.sign(&body, "msg_prop", at(now + skew)).unwrap().into_iter().collect();
        let result = verifier.verify(&headers, &body, at(now));
        let expected = if skew < -(tolerance as i64) {
            Err(VerifyError::StaleTimestamp)
        } else if skew > tolerance as i64 {
            Err(VerifyError::FutureTimestamp)
        } else {
            Ok(())
        };
        prop_assert_eq!(result.map(|_| ()), expected, "skew {}s, tolerance {}s", skew, tolerance);
    }

    /// Any bytes in place of the signed timestamp: never a panic, and never
    /// accepted unless they are the very digits that were signed.
    #[test]
    fn arbitrary_timestamp_bytes_never_panic_or_pass(
        kind in stamped(),
        stamp in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40),
            "[0-9]{0,25}".prop_map(String::into_bytes),
            "[-+ .e0-9]{0,12}".prop_map(String::into_bytes),
        ],
        now in 1_000_000_000i64..4_000_000_000,
    ) {
        let verifier = stamped_verifier(kind, Duration::from_secs(300));
        let body = br#"{"id":"evt_prop"}"#;
        let headers: HeaderMap = verifier.sign(body, "msg_prop", at(now)).unwrap().into_iter().collect();
        if let Some(headers) = restamp(kind, headers, &stamp) {
            let result = verifier.verify(&headers, body, at(now));
            if stamp != now.to_string().into_bytes() {
                prop_assert!(result.is_err(), "{:?} accepted", String::from_utf8_lossy(&stamp));
            }
        }
    }
}

// -------------------------------------------------------- key extraction

/// Longest value extraction returns (src/ingest/extract.rs).
const MAX_VALUE_LEN: usize = 256;

/// What extraction must return for a found text: trimmed (headers), cut on a char boundary, None when empty.
fn expected_value(text: &str) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    let mut cut = text.len().min(MAX_VALUE_LEN);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Some(text[..cut].to_owned())
}

/// JSON documents with a small key vocabulary, so that pointers often hit.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,300}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![Just("id".to_owned()), Just("type".to_owned()), "[a-z~/]{1,4}"],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn pointer() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("id".to_owned()),
            Just("type".to_owned()),
            Just("0".to_owned()),
            "[a-z~01/]{0,4}"
        ],
        0..4,
    )
    .prop_map(|parts| parts.iter().map(|p| format!("/{p}")).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn json_pointer_extraction_matches_the_document(document in json_value(), pointer in pointer()) {
        let body = serde_json::to_vec(&document).unwrap();
        let mut json = LazyJson::new(&body);
        let got = extract(&KeySpec::Json(pointer.clone()), &HeaderMap::new(), &mut json).map(String::from);
        // As read back from the bytes (serde_json's float parsing is not an exact round trip).
        let document: Value = serde_json::from_slice(&body).unwrap();
        let expected = match document.pointer(&pointer) {
            Some(Value::String(text)) => expected_value(text),
            Some(Value::Number(number)) => expected_value(&number.to_string()),
            _ => None,
        };
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn extraction_from_arbitrary_bodies_and_headers_never_panics(
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            (1usize..5000).prop_map(|depth| "[".repeat(depth).into_bytes()),
            (1usize..2000).prop_map(|depth| format!("{}1{}", "{\"id\":".repeat(depth), "}".repeat(depth)).into_bytes()),
        ],
        pointer in ".{0,20}",
        name in "[a-z][a-z0-9-]{0,15}",
        value in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut headers = HeaderMap::new();
        let header_value = HeaderValue::from_bytes(&value);
        if let Ok(v) = &header_value {
            headers.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), v.clone());
        }
        let mut json = LazyJson::new(&body);
        let header = HeaderName::from_bytes(name.as_bytes()).unwrap();
        for spec in [KeySpec::Json(pointer.clone()), KeySpec::Header(header.clone()), KeySpec::None] {
            if let Some(found) = extract(&spec, &headers, &mut json) {
                prop_assert!(!found.is_empty() && found.len() <= MAX_VALUE_LEN);
            }
        }
        // A header value is taken when it is visible ASCII, trimmed, and not empty.
        let got = extract(&KeySpec::Header(header), &headers, &mut json).map(String::from);
        let expected = header_value.ok().and_then(|v| v.to_str().ok().map(str::trim).and_then(expected_value));
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn dedup_keys_are_kept_whole_or_hashed_whole(a in ".{1,400}", b in ".{1,400}") {
        let key = |text: &str| {
            let body = serde_json::json!({ "id": text }).to_string();
            extract_key(&KeySpec::Json("/id".into()), &HeaderMap::new(), &mut LazyJson::new(body.as_bytes()))
                .map(String::from)
                .unwrap()
        };
        let (ka, kb) = (key(&a), key(&b));
        for (text, found) in [(&a, &ka), (&b, &kb)] {
            prop_assert!(found.len() <= MAX_VALUE_LEN);
            if text.len() <= MAX_VALUE_LEN {
                prop_assert_eq!(found, text);
            } else {
                prop_assert!(found.starts_with("sha256:") && found.len() == 71);
            }
        }
        prop_assert_eq!(ka == kb, a == b, "different keys never collide");
    }

    #[test]
    fn key_specs_parse_or_refuse_any_text(spec in ".{0,40}") {
        if let Ok(parsed) = spec.parse::<KeySpec>() {
            match parsed {
                KeySpec::None => prop_assert_eq!(spec.as_str(), "none"),
                KeySpec::Header(name) => prop_assert_eq!(name.as_str(), spec["header:".len()..].to_ascii_lowercase()),
                KeySpec::Headers(names) => {
                    let listed: Vec<&str> = names.iter().map(|name| name.as_str()).collect();
                    prop_assert_eq!(listed.join("|"), spec["header:".len()..].to_ascii_lowercase());
                }
                KeySpec::Json(pointer) => prop_assert!(pointer.is_empty() || pointer.starts_with('/')),
            }
        }
    }

    /// The trusted header's last entry wins when it is an address; anything
    /// else (or an untrusted header) falls back to the socket peer.
    #[test]
    fn the_client_address_is_the_peer_or_the_proxy_appended_entry(
        entries in proptest::collection::vec(prop_oneof![
            any::<std::net::Ipv4Addr>().prop_map(|ip| ip.to_string()),
            any::<std::net::Ipv6Addr>().prop_map(|ip| ip.to_string()),
            any::<SocketAddr>().prop_map(|addr| addr.to_string()),
            "[ -~]{0,30}",
        ], 0..4),
        trusted in any::<bool>(),
        peer in any::<SocketAddr>(),
    ) {
        let joined = entries.join(",");
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&joined) {
            headers.insert("x-forwarded-for", value);
        }
        let got = client_ip(peer, &headers, trusted.then_some("x-forwarded-for"));
        let last = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).and_then(|v| v.rsplit(',').next()).map(str::trim);
        let parsed = last.and_then(|l| l.parse::<IpAddr>().ok().or_else(|| l.parse::<SocketAddr>().ok().map(|a| a.ip())));
        let expected = if trusted { parsed.unwrap_or(peer.ip()) } else { peer.ip() };
        prop_assert_eq!(got, expected);
    }

    /// What the indexer reads from the topic is untrusted too: any bytes decode or fail, never panic.
    #[test]
    fn envelope_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = WebhookEnvelope::from_bytes(&bytes);
    }
}

// ------------------------------------------------------------ configuration

/// Any value at all: the wrong type, or text that does not parse.
fn wild_value() -> BoxedStrategy<toml::Value> {
    let leaf = prop_oneof![
        ".{0,12}".prop_map(toml::Value::String),
        any::<i64>().prop_map(toml::Value::Integer),
        any::<bool>().prop_map(toml::Value::Boolean),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(toml::Value::Float),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(toml::Value::Array),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
    .boxed()
}

fn text(choices: &'static [&'static str]) -> BoxedStrategy<toml::Value> {
    proptest::sample::select(choices)
        .prop_map(|s| toml::Value::String(s.to_owned()))
        .boxed()
}

fn int(range: std::ops::Range<i64>) -> BoxedStrategy<toml::Value> {
    prop_oneof![19 => range.prop_map(toml::Value::Integer), 1 => any::<i64>().prop_map(toml::Value::Integer)].boxed()
}

fn table(keys: &'static [&'static str]) -> BoxedStrategy<toml::Value> {
    let entries: Vec<_> = keys
        .iter()
        .map(|k| proptest::option::weighted(0.35, fitting(k)).prop_map(move |v| (k.to_string(), v)))
        .collect();
    entries
        .prop_map(|entries| toml::Value::Table(entries.into_iter().filter_map(|(k, v)| Some((k, v?))).collect()))
        .boxed()
}

/// Mostly a value of the right shape for `key` (valid or subtly not), sometimes anything.
fn fitting(key: &'static str) -> BoxedStrategy<toml::Value> {
    const DURATIONS: &[&str] = &[
        "5s",
        "8s",
        "0s",
        "72h",
        "30d",
        "1ms",
        "10s",
        "2m",
        "1h",
        "-1s",
        "5 parsecs",
    ];
    const ADDRS: &[&str] = &[
        "127.0.0.1:0",
        "0.0.0.0:8081",
        "[::1]:0",
        "127.0.0.1:9464",
        "127.0.0.1:8080",
        "localhost:80",
    ];
    let shaped = match key {
        "listen" => text(ADDRS),
        "deadline" | "header_timeout" | "body_timeout" | "window" | "retention" | "tolerance" => text(DURATIONS),
        "max_body_bytes"
        | "max_connections"
        | "max_connections_per_ip"
        | "max_in_flight"
        | "max_keys"
        | "max_tracked_clients"
        | "max_streams"
        | "embedded_partitions"
        | "per_second"
        | "burst" => int(0..5),
        "client_ip_header" | "header" | "timestamp_header" => {
            text(&["x-forwarded-for", "x-ts", "bad header", "", "X-Sig"])
        }
        "redact_headers" | "scopes" => {
            proptest::collection::vec(text(&["authorization", "read", "replay", "write", ""]), 0..3)
                .prop_map(toml::Value::Array)
                .boxed()
        }
        "brokers" => text(&["127.0.0.1:9092", " ", ""]),
        "topic" | "name" | "consumer_group" => text(&["webhooks", "a", "b", "", "a b", "../x"]),
        "options" => proptest::collection::btree_map(
            proptest::sample::select(vec![
                "linger.ms",
                "acks",
                "retries",
                "enable.idempotence",
                "max.in.flight.requests.per.connection",
                "x",
            ]),
            text(&["0", "1", "6", "all", "env:HOOKGATE_PROPS_UNSET", "-1"]),
            0..3,
        )
        .prop_map(|m| toml::Value::Table(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
        .boxed(),
        "redis" => text(&["redis://127.0.0.1:1", "http://x", ""]),
        "store" => text(&["sqlite://x.db", "postgres://u@h/db", "mysql://x", ""]),
        "per_client_ip" | "rate_limit" => table(&["per_second", "burst"]),
        "tokens" => proptest::collection::vec(table(&["token", "scopes", "sources"]), 0..2)
            .prop_map(toml::Value::Array)
            .boxed(),
        "token" => text(&["literal-token", "env:HOOKGATE_PROPS_UNSET", ""]),
        "sources" => proptest::collection::vec(text(&["a", "b", "nope"]), 0..2)
            .prop_map(toml::Value::Array)
            .boxed(),
        "verify" => text(&[
            "github",
            "stripe",
            "shopify",
            "slack",
            "standard-webhooks",
            "hmac",
            "none",
            "gitlab",
            "zoom",
            "meta",
            "twilio",
            "basic",
            "token",
            "gitlab-ce",
        ]),
        "secrets" => proptest::collection::vec(
            text(&[
                "s3cret",
                "whsec_c2VjcmV0",
                "whsec_!!!",
                "whpk_AAAA",
                "env:HOOKGATE_PROPS_UNSET",
                "",
            ]),
            0..3,
        )
        .prop_map(toml::Value::Array)
        .boxed(),
        "hmac" => table(&[
            "header",
            "algorithm",
            "encoding",
            "prefix",
            "signed",
            "timestamp_header",
        ]),
        "algorithm" => text(&["sha1", "sha256", "sha512", "md5"]),
        "encoding" => text(&["hex", "base64", "base32"]),
        "prefix" => text(&["", "sha256=", "v0="]),
        "signed" => text(&["{body}", "{header:x-ts}.{body}", "{body", "{header:}", "{nope}", ""]),
        "key" => text(&["id", "dedup_key", "none", "random"]),
        "public_url" => text(&[
            "https://h.example/webhooks/a",
            "h.example/x",
            "https://h.example/x?q=1",
            "",
        ]),
        "verify_token" => text(&["literal-token", "env:HOOKGATE_PROPS_UNSET", ""]),
        "token_header" => text(&["x-token", "authorization", "bad header", ""]),
        "token_prefix" => text(&["Bearer ", "", "\n"]),
        "dedup_key" | "event_type" => text(&[
            "header:x-id",
            "header:x-id|x-other",
            "header:x-id|bad name",
            "json:/id",
            "json:id",
            "none",
            "body:/id",
            "header:bad name",
            "",
        ]),
        _ => wild_value(),
    };
    prop_oneof![19 => shaped, 1 => wild_value()].boxed()
}

/// A section with some of its own keys, and now and then one it does not have.
fn section(keys: &'static [&'static str]) -> BoxedStrategy<toml::Value> {
    (
        table(keys),
        proptest::option::weighted(0.05, ("[a-z_]{1,8}", wild_value())),
    )
        .prop_map(|(mut table, stray)| {
            if let (toml::Value::Table(t), Some((k, v))) = (&mut table, stray) {
                t.insert(k, v);
            }
            table
        })
        .boxed()
}

fn config_table() -> impl Strategy<Value = toml::Table> {
    let sections = (
        proptest::option::of(section(&[
            "listen",
            "max_body_bytes",
            "deadline",
            "header_timeout",
            "body_timeout",
            "client_ip_header",
            "max_connections",
            "max_connections_per_ip",
            "max_in_flight",
            "redact_headers",
        ])),
        proptest::option::of(section(&["brokers", "topic", "options", "embedded_partitions"])),
        proptest::option::of(section(&["window", "max_keys", "redis"])),
        proptest::option::of(section(&["per_client_ip", "max_tracked_clients"])),
        proptest::option::of(section(&[
            "listen",
            "store",
            "retention",
            "tokens",
            "consumer_group",
            "header_timeout",
            "max_connections",
            "max_connections_per_ip",
            "max_streams",
        ])),
        proptest::option::of(section(&["listen"])),
        proptest::collection::vec(
            section(&[
                "name",
                "verify",
                "secrets",
                "hmac",
                "topic",
                "key",
                "rate_limit",
                "max_body_bytes",
                "dedup_key",
                "event_type",
                "tolerance",
                "public_url",
                "verify_token",
                "token_header",
                "token_prefix",
            ]),
            0..3,
        ),
    );
    sections.prop_map(|(ingest, kafka, dedup, rate_limit, query, metrics, sources)| {
        let mut table = toml::Table::new();
        let named = [
            ("ingest", ingest),
            ("kafka", kafka),
            ("dedup", dedup),
            ("rate_limit", rate_limit),
            ("query", query),
            ("metrics", metrics),
        ];
        for (name, value) in named {
            if let Some(value) = value {
                table.insert(name.to_owned(), value);
            }
        }
        if !sources.is_empty() {
            table.insert("sources".into(), toml::Value::Array(sources));
        }
        table
    })
}

/// A valid minimal source, so that generated sections are reached past "no sources".
const VALID_SOURCE: &str = "[[sources]]\nname = \"ok\"\nverify = \"github\"\nsecrets = [\"s\"]\n";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn any_text_parses_or_is_refused_as_config(text in prop_oneof![".{0,200}", "[\\[\\]a-z_=\"\\n .0-9{}]{0,200}"]) {
        if let Ok(config) = Config::from_toml(&text) {
            let _ = config.validate();
        }
    }

    /// Any table of known and unknown keys with fitting or unfitting values:
    /// loading, validating and preparing the sources never panic, and
    /// validation names every problem it finds by a key.
    #[test]
    fn any_toml_table_loads_validates_and_prepares_without_panicking(table in config_table(), with_valid_source in any::<bool>()) {
        let mut text = toml::to_string(&table).unwrap_or_default();
        if with_valid_source && !table.contains_key("sources") {
            text.push('\n');
            text.push_str(VALID_SOURCE);
        }
        if let Ok(config) = Config::from_toml(&text) {
            for issue in config.validate() {
                prop_assert!(!issue.key.is_empty() && !issue.message.is_empty(), "{:?}", issue);
            }
            let _ = hookgate::ingest::prepare_sources(&config);
            for source in &config.sources {
                let _ = Verifier::from_source(source);
            }
        }
    }
}

proptest! {
    /// A source built in code is the one its minimal `[[sources]]` table
    /// parses to: name, preset and secrets as given, every other key at its default.
    #[test]
    fn a_source_built_in_code_equals_its_minimal_table(
        name in "[a-z][a-z0-9_-]{0,15}",
        preset in proptest::sample::select(vec![
            "github", "stripe", "shopify", "slack", "standard-webhooks", "gitlab", "zoom", "meta", "twilio", "basic",
            "token", "hmac", "none",
        ]),
        secrets in proptest::collection::vec("[a-zA-Z0-9_]{1,20}", 0..3),
    ) {
        let quoted: Vec<String> = secrets.iter().map(|s| format!("\"{s}\"")).collect();
        let text = format!("[[sources]]\nname = \"{name}\"\nverify = \"{preset}\"\nsecrets = [{}]\n", quoted.join(", "));
        let parsed = Config::from_toml(&text).unwrap().sources.remove(0);
        prop_assert_eq!(parsed.verify.as_str(), preset);
        let built = SourceConfig::new(name, parsed.verify, secrets.iter().map(|s| Secret::from_bytes(s.as_str())).collect());
        prop_assert_eq!(format!("{built:?}"), format!("{parsed:?}"));
        let exposed = |source: &SourceConfig| source.secrets.iter().map(|s| s.expose().to_vec()).collect::<Vec<_>>();
        prop_assert_eq!(exposed(&built), exposed(&parsed));
    }
}

// ------------------------------------------------- query filters and cursors

/// The query API on an in-memory store with a few events, served on loopback
/// for the whole test binary (a runtime of its own keeps it alive).
struct QueryApi {
    runtime: tokio::runtime::Runtime,
    base: String,
    http: reqwest::Client,
}

fn query_api() -> &'static QueryApi {
    static API: OnceLock<QueryApi> = OnceLock::new();
    API.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let base = runtime.block_on(serve_query_api());
        QueryApi {
            runtime,
            base,
            http: reqwest::Client::new(),
        }
    })
}

async fn serve_query_api() -> String {
    use hookgate::history::{router, ApiState, EventRecord, LiveFeed, Provenance, Store};
    use hookgate::publish::{EmbeddedBroker, KafkaEndpoint, Publisher};
    let broker = Box::leak(Box::new(EmbeddedBroker::start(&["webhooks".into()], 1).unwrap()));
    let endpoint = KafkaEndpoint {
        bootstrap: broker.bootstrap_servers().to_owned(),
        options: Default::default(),
    };
    let publisher = Publisher::new(endpoint, Duration::from_secs(1)).unwrap();
    let config = Config::from_toml(
        "[[sources]]\nname = \"a\"\nverify = \"none\"\n[[sources]]\nname = \"b\"\nverify = \"none\"\n",
    )
    .unwrap();
    let store = Store::open("sqlite::memory:").await.unwrap();
    let records: Vec<EventRecord> = (0..6u8)
        .map(|n| {
            let envelope = WebhookEnvelope {
                id: hookgate::envelope::new_event_id().to_string(),
                source: if n % 2 == 0 { "a" } else { "b" }.into(),
                event_type: "push".into(),
                received_at_unix_micros: 1_700_000_000_000_000 + i64::from(n),
                dedup_key: format!("d{n}"),
                ..Default::default()
            };
            let provenance = Provenance {
                topic: "webhooks".into(),
                partition: 0,
                offset: i64::from(n),
            };
            EventRecord::from_envelope(&envelope, provenance, 1).unwrap()
        })
        .collect();
    store.insert_batch(&records).await.unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    std::mem::forget(stop);
    let state = ApiState::new(store, Arc::new(config), publisher, LiveFeed::default(), shutdown);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    base
}

impl QueryApi {
    fn get(&self, path_and_query: &str) -> (u16, Value) {
        self.runtime.block_on(async {
            let response = self
                .http
                .get(format!("{}{path_and_query}", self.base))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        })
    }
}

/// Query strings built from the parameters' own names and plausible and implausible values, percent-escapes included.
fn query_string() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        proptest::sample::select(vec![
            "source",
            "type",
            "since",
            "until",
            "dedup_key",
            "verified",
            "limit",
            "cursor"
        ])
        .prop_map(str::to_owned),
        "[a-z_%0-9]{0,6}",
    ];
    let value = prop_oneof![
        proptest::sample::select(vec![
            "a",
            "b",
            "push",
            "true",
            "false",
            "1",
            "1000",
            "1001",
            "0",
            "-1",
            "2024-05-01T14:00:00Z",
            "2023-11-14T22:13:20.000003Z",
            "9999-12-31T23:59:59Z",
            "0000-01-01T00:00:00Z",
            "%ZZ",
            "%00",
            "%F0%9F%92%A9",
            "AQAAAAAAAAAA",
            "",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,24}".prop_map(|v| v.replace(['&', '#', ' '], "")),
        "[A-Za-z0-9_-]{0,80}",
    ];
    proptest::collection::vec((name, value), 0..5).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    /// Whatever the query string, the list route answers 200 with events that
    /// match the named source, or a 400 with one of the stable codes; never 5xx.
    #[test]
    fn any_query_string_gets_a_page_or_a_stable_400(query in query_string()) {
        let (status, body) = query_api().get(&format!("/v1/events?{query}"));
        match status {
            200 => {
                let events = body["events"].as_array().expect("events");
                let wanted = query.split('&').filter_map(|p| p.strip_prefix("source=")).next();
                if let Some(source) = wanted {
                    prop_assert!(events.iter().all(|e| e["source"] == source), "{} -> {}", query, body);
                }
            }
            400 => {
                let code = body["error"]["code"].as_str().unwrap_or_default();
                prop_assert!(["invalid_filter", "unknown_parameter", "invalid_cursor", "token_in_url"].contains(&code), "{} -> {}", query, body);
            }
            other => prop_assert!(false, "{} -> {} {}", query, other, body),
        }
    }

    /// A cursor is opaque: anything that was not issued by the server is refused.
    #[test]
    fn any_cursor_not_issued_by_the_server_is_refused(cursor in prop_oneof!["[A-Za-z0-9_-]{0,200}", "[ -~]{0,40}"]) {
        let encoded: String = cursor.bytes().map(|b| format!("%{b:02X}")).collect();
        let (status, body) = query_api().get(&format!("/v1/events?cursor={encoded}"));
        prop_assert_eq!(status, 400, "{} -> {}", cursor, body);
        prop_assert!(["invalid_cursor", "invalid_filter"].contains(&body["error"]["code"].as_str().unwrap_or_default()), "{}", body);
    }

    /// Walking pages of any size with the cursors the server issues visits every event once, newest first.
    #[test]
    fn issued_cursors_walk_every_event_once(limit in 1u32..8, source in proptest::option::of(prop_oneof![Just("a"), Just("b")])) {
        let filter = source.map(|s| format!("&source={s}")).unwrap_or_default();
        let mut path = format!("/v1/events?limit={limit}{filter}");
        let mut seen = Vec::new();
        loop {
            let (status, page) = query_api().get(&path);
            prop_assert_eq!(status, 200, "{}", page);
            seen.extend(page["events"].as_array().unwrap().iter().map(|e| e["received_at_unix_micros"].as_i64().unwrap()));
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/v1/events?limit={limit}{filter}&cursor={cursor}"),
                None => break,
            }
        }
        let expected = if source.is_some() { 3 } else { 6 };
        prop_assert_eq!(seen.len(), expected);
        prop_assert!(seen.windows(2).all(|w| w[0] > w[1]), "{:?}", seen);
    }
}
