//! Taking the dedup key, event type and client address out of a request,
//! as the source's configuration says. The body is parsed as JSON at most
//! once, and only when a `json:` spec needs it.
//!
//! Values longer than 256 bytes: an event type is cut (it only labels the
//! event), a dedup key is replaced by `sha256:` and the hex SHA-256 of the
//! whole value, so that two long keys sharing their first 256 bytes stay
//! two keys.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use serde_json::Value;

use crate::config::KeySpec;

/// Longest value taken as is as a dedup key or event type.
const MAX_VALUE_LEN: usize = 256;
/// What a hashed dedup key starts with.
const HASHED_PREFIX: &str = "sha256:";

/// A request body whose JSON parse happens on first use.
#[derive(Debug)]
pub struct LazyJson<'a> {
    /// The raw body.
    body: &'a [u8],
    /// Parsed body; `Some(None)` when it is not JSON.
    parsed: Option<Option<Value>>,
}

impl<'a> LazyJson<'a> {
    /// Wraps a body without parsing it.
    pub fn new(body: &'a [u8]) -> Self {
        Self { body, parsed: None }
    }

    fn value(&mut self) -> Option<&Value> {
        let body = self.body;
        self.parsed
            .get_or_insert_with(|| serde_json::from_slice(body).ok())
            .as_ref()
    }
}

/// The value `spec` points at, as text cut to 256 bytes (borrowed from the
/// headers, owned when taken from the JSON body); `None` when absent, empty
/// or not textual. This is how the event type is taken.
pub fn extract<'a>(spec: &KeySpec, headers: &'a HeaderMap, json: &mut LazyJson<'_>) -> Option<Cow<'a, str>> {
    Some(match find(spec, headers, json)? {
        Cow::Borrowed(text) => Cow::Borrowed(truncate(text)),
        Cow::Owned(text) => Cow::Owned(truncate(&text).to_owned()),
    })
}

/// The value `spec` points at as a dedup key: as [`extract`], except that a
/// value over 256 bytes becomes `sha256:<hex digest of the whole value>`.
pub fn extract_key<'a>(spec: &KeySpec, headers: &'a HeaderMap, json: &mut LazyJson<'_>) -> Option<Cow<'a, str>> {
    let value = find(spec, headers, json)?;
    if value.len() <= MAX_VALUE_LEN {
        return Some(value);
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(value.as_bytes());
    Some(Cow::Owned(format!("{HASHED_PREFIX}{}", const_hex::encode(digest))))
}

/// The whole value `spec` points at; `None` when absent, empty or not textual.
fn find<'a>(spec: &KeySpec, headers: &'a HeaderMap, json: &mut LazyJson<'_>) -> Option<Cow<'a, str>> {
    let value = match spec {
        KeySpec::None => return None,
        KeySpec::Header(name) => Cow::Borrowed(header_text(headers, name)?),
        KeySpec::Headers(names) => Cow::Borrowed(names.iter().find_map(|name| header_text(headers, name))?),
        KeySpec::Json(pointer) => match json.value()?.pointer(pointer)? {
            Value::String(text) => Cow::Owned(text.clone()),
            Value::Number(number) => Cow::Owned(number.to_string()),
            _ => return None,
        },
    };
    (!value.is_empty()).then_some(value)
}

/// The trimmed text of a header, when present, textual and not empty.
fn header_text<'a>(headers: &'a HeaderMap, name: &http::HeaderName) -> Option<&'a str> {
    let text = headers.get(name)?.to_str().ok()?.trim();
    (!text.is_empty()).then_some(text)
}

/// `value` cut to at most [`MAX_VALUE_LEN`] bytes, at a character boundary.
fn truncate(value: &str) -> &str {
    if value.len() <= MAX_VALUE_LEN {
        return value;
    }
    let mut cut = MAX_VALUE_LEN;
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    &value[..cut]
}

/// The client's address: the socket peer, or the last entry of the trusted
/// proxy header (the one the proxy appended) when one is configured and valid.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted_header: Option<&str>) -> IpAddr {
    trusted_header
        .and_then(|name| headers.get_all(name).iter().next_back())
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .and_then(|last| parse_ip(last.trim()))
        .unwrap_or_else(|| peer.ip())
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (http::HeaderName::from_static(k), http::HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn header_and_json_pointer_specs() {
        let h = headers(&[("x-github-delivery", " abc ")]);
        let mut json = LazyJson::new(br#"{"id":"evt_1","n":7,"o":{}}"#);
        assert_eq!(
            extract(
                &KeySpec::Header(http::HeaderName::from_static("x-github-delivery")),
                &h,
                &mut json
            )
            .as_deref(),
            Some("abc")
        );
        assert_eq!(
            extract(&KeySpec::Json("/id".into()), &h, &mut json).as_deref(),
            Some("evt_1")
        );
        assert_eq!(
            extract(&KeySpec::Json("/n".into()), &h, &mut json).as_deref(),
            Some("7")
        );
        assert_eq!(extract(&KeySpec::Json("/o".into()), &h, &mut json), None);
        assert_eq!(extract(&KeySpec::Json("/missing".into()), &h, &mut json), None);
        assert_eq!(extract(&KeySpec::None, &h, &mut json), None);
    }

    #[test]
    fn the_first_present_header_of_a_list_is_taken() {
        let spec: KeySpec = "header:idempotency-key|x-gitlab-event-uuid".parse().unwrap();
        let mut json = LazyJson::new(b"");
        let older = headers(&[("x-gitlab-event-uuid", "e-1"), ("idempotency-key", " ")]);
        assert_eq!(extract(&spec, &older, &mut json).as_deref(), Some("e-1"));
        let newer = headers(&[("x-gitlab-event-uuid", "e-1"), ("idempotency-key", "i-1")]);
        assert_eq!(extract(&spec, &newer, &mut json).as_deref(), Some("i-1"));
        assert_eq!(extract(&spec, &headers(&[]), &mut json), None);
    }

    #[test]
    fn invalid_json_and_invalid_utf8_yield_nothing() {
        let h = headers(&[]);
        let mut json = LazyJson::new(b"\xff\xfe{not json");
        assert_eq!(extract(&KeySpec::Json("/id".into()), &h, &mut json), None);
    }

    #[test]
    fn long_values_are_cut_on_a_char_boundary() {
        let long = "é".repeat(200);
        let body = serde_json::json!({ "id": long }).to_string();
        let mut json = LazyJson::new(body.as_bytes());
        let mut headers = HeaderMap::new();
        headers.insert("x-long", http::HeaderValue::from_str(&"a".repeat(300)).unwrap());
        let value = extract(&KeySpec::Json("/id".into()), &headers, &mut json).unwrap();
        assert!(value.len() <= MAX_VALUE_LEN && value.len() > MAX_VALUE_LEN - 2);
        let spec = KeySpec::Header(http::HeaderName::from_static("x-long"));
        assert_eq!(extract(&spec, &headers, &mut json).unwrap().len(), MAX_VALUE_LEN);
    }

    #[test]
    fn long_dedup_keys_are_hashed_whole_so_they_never_collide() {
        let common = "k".repeat(300);
        let (one, two) = (format!("{common}-1"), format!("{common}-2"));
        let mut headers = HeaderMap::new();
        let spec = KeySpec::Header(http::HeaderName::from_static("x-key"));
        let mut keys = Vec::new();
        for long in [&one, &two] {
            headers.insert("x-key", http::HeaderValue::from_str(long).unwrap());
            let key = extract_key(&spec, &headers, &mut LazyJson::new(b""))
                .unwrap()
                .into_owned();
            assert_eq!(key.len(), HASHED_PREFIX.len() + 64, "{key}");
            keys.push(key);
        }
        assert_ne!(keys[0], keys[1]);
        // Computed with Python: hashlib.sha256(("k" * 300 + "-1").encode()).hexdigest()
        assert_eq!(
            keys[0],
            "sha256:e565701491626ac3fabe8e52dd7ef5a4b68d40da807e5a58e2581872e1953c60"
        );
        let exact = "x".repeat(MAX_VALUE_LEN);
        let body = serde_json::json!({ "id": exact }).to_string();
        let key = extract_key(
            &KeySpec::Json("/id".into()),
            &headers,
            &mut LazyJson::new(body.as_bytes()),
        );
        assert_eq!(key.as_deref(), Some(exact.as_str()), "256 bytes are kept as they are");
    }

    #[test]
    fn client_ip_uses_the_proxy_appended_entry_only_when_trusted() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9")]);
        assert_eq!(client_ip(peer, &h, None), peer.ip());
        assert_eq!(client_ip(peer, &h, Some("x-forwarded-for")).to_string(), "203.0.113.9");
        let garbage = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(client_ip(peer, &garbage, Some("x-forwarded-for")), peer.ip());
    }
}
