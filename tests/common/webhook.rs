//! Webhooks as a provider sends them: a body signed for one of the gateway's
//! configured sources and POSTed to `/webhooks/{source}` over loopback.

use std::time::SystemTime;

use hookgate::verify::Verifier;
use http::{HeaderName, HeaderValue};

use super::Gateway;

/// Request headers in the order they are sent.
pub type Headers = Vec<(HeaderName, HeaderValue)>;

/// Headers from text pairs.
pub fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(name, value)| (name.parse().unwrap(), value.parse().unwrap()))
        .collect()
}

/// The headers the provider of the gateway's source `source` signs `body`
/// with at `now`, using the source's last secret: a provider holds only the
/// current one while the gateway accepts the old ones too. The provider's
/// delivery id header, where it sends one, carries `delivery`.
pub fn signed(gateway: &Gateway, source: &str, body: &[u8], delivery: &str, now: SystemTime) -> Headers {
    let mut signer = gateway.source(source);
    signer.secrets = signer.secrets.split_off(signer.secrets.len().saturating_sub(1));
    Verifier::from_source(&signer)
        .unwrap()
        .sign(body, delivery, now)
        .unwrap()
}

/// POSTs `body` with `headers` to `url`, as JSON unless `headers` name another content type.
pub async fn post(url: &str, body: &[u8], headers: &[(HeaderName, HeaderValue)]) -> reqwest::Response {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.post(url).body(body.to_vec());
    if !headers.iter().any(|(name, _)| name == http::header::CONTENT_TYPE) {
        request = request.header(http::header::CONTENT_TYPE, "application/json");
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

/// Signs `body` for the gateway's source `source` now, adds `extra` headers,
/// and POSTs it to `/webhooks/{source}`.
pub async fn post_signed(
    gateway: &Gateway,
    source: &str,
    body: &[u8],
    delivery: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut sent = signed(gateway, source, body, delivery, SystemTime::now());
    sent.extend(headers(extra));
    post(&gateway.url(&format!("/webhooks/{source}")), body, &sent).await
}
