//! Twilio: `X-Twilio-Signature: <base64 HMAC-SHA1(auth token, url + params)>`.
//! The URL is the one configured at Twilio, which behind a proxy is not the
//! one the gateway sees: the source's `public_url` (scheme, host, path),
//! followed by `?` and the query string exactly as received. For a form body,
//! every parameter follows, sorted by name then value, each as name + value
//! (decoded, no separators). For other bodies Twilio puts the hex SHA-256 of
//! the body in the query parameter `bodySHA256` and signs the URL alone.
//!
//! Twilio signs no timestamp; retries carry the same
//! `I-Twilio-Idempotency-Token`, the default dedup key. As Twilio's own
//! validators do, the URL is also tried with its default port toggled
//! (`https://host/` and `https://host:443/`), since Twilio may sign either.

use http::{header, HeaderName, HeaderValue};

use super::mac::{self, MacKey, Tag};
use super::request::RequestHead;
use super::{problem, ConfigProblem, SignError, Verified, VerifyError};
use crate::config::{HmacAlgorithm, SignatureEncoding, SourceConfig};

const SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-signature");
const IDEMPOTENCY: HeaderName = HeaderName::from_static("i-twilio-idempotency-token");
const FORM: &str = "application/x-www-form-urlencoded";
const DIGEST_LEN: usize = 20;

/// The Twilio scheme for a source's auth tokens.
#[derive(Debug)]
pub(super) struct Twilio {
    keys: Vec<MacKey>,
    /// The public URL as configured, then its twin with the default port toggled.
    urls: Vec<Box<str>>,
}

impl Twilio {
    /// Needs `public_url` and the auth tokens (`secrets`).
    pub(super) fn new(source: &SourceConfig) -> Result<Self, ConfigProblem> {
        let url = super::public_url(source)?.ok_or_else(|| {
            problem(
                "public_url",
                "verify = \"twilio\" needs public_url, the webhook URL as configured at Twilio (Twilio signs it)",
            )
        })?;
        let keys = super::mac_keys(source, HmacAlgorithm::Sha1)?;
        let mut urls = vec![Box::from(url)];
        urls.extend(port_twin(url).map(Box::from));
        Ok(Self { keys, urls })
    }

    /// Checks `X-Twilio-Signature` against every auth token and both forms of the URL.
    pub(super) fn verify(&self, head: RequestHead<'_>, body: &[u8]) -> Result<Verified, VerifyError> {
        let value = head.headers.get(SIGNATURE).ok_or(VerifyError::MissingSignature)?;
        let candidate = Tag::from_base64(value.as_bytes(), DIGEST_LEN)?;
        let params = match head.query_param("bodySHA256") {
            Some(expected) => {
                // Not secret: the hash is in the URL. The URL (with it) is what is signed.
                if !expected.eq_ignore_ascii_case(&mac::sha256(body).encode(SignatureEncoding::Hex)) {
                    return Err(VerifyError::InvalidSignature);
                }
                Vec::new()
            }
            None => sorted_params(body),
        };
        let query = head.query.filter(|query| !query.is_empty());
        let index = self.keys.iter().position(|key| {
            self.urls
                .iter()
                .any(|url| mac::matches_any(&key.tag(signed(url, query, &params)), &[candidate]))
        });
        index
            .map(|index| Verified {
                verified: true,
                secret_index: u32::try_from(index).unwrap_or(u32::MAX),
            })
            .ok_or(VerifyError::InvalidSignature)
    }

    /// The fingerprint of the request's signature: Twilio signs no timestamp.
    pub(super) fn replayable(&self, headers: &http::HeaderMap) -> Option<[u8; 32]> {
        let tag = Tag::from_base64(headers.get(SIGNATURE)?.as_bytes(), DIGEST_LEN).ok()?;
        Some(mac::fingerprint(&tag))
    }

    /// A form POST to the public URL as Twilio signs it with the first auth
    /// token, with its idempotency token set to the delivery id.
    pub(super) fn sign(
        &self,
        body: &[u8],
        delivery_id: &HeaderValue,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        let key = self.keys.first().ok_or(SignError::NoSecret)?;
        let params = sorted_params(body);
        let tag = key.tag(signed(&self.urls[0], None, &params));
        Ok(vec![
            (header::CONTENT_TYPE, HeaderValue::from_static(FORM)),
            (IDEMPOTENCY, delivery_id.clone()),
            (SIGNATURE, mac::ascii_header(tag.encode(SignatureEncoding::Base64))),
        ])
    }
}

/// The signed content: the URL, `?query`, then each name and value.
fn signed<'a>(url: &'a str, query: Option<&'a str>, params: &'a [(String, String)]) -> impl Iterator<Item = &'a [u8]> {
    let query: [&[u8]; 2] = match query {
        Some(query) => [b"?", query.as_bytes()],
        None => [b"", b""],
    };
    let pairs = params
        .iter()
        .flat_map(|(name, value)| [name.as_bytes(), value.as_bytes()]);
    std::iter::once(url.as_bytes()).chain(query).chain(pairs)
}

/// The form parameters of `body`, decoded and sorted by name, then value.
fn sorted_params(body: &[u8]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    params.sort_unstable();
    params
}

/// `url` with its default port removed when written, or added when not
/// (`None` for another port).
fn port_twin(url: &str) -> Option<String> {
    let (scheme, after) = url.split_once("://")?;
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let (authority, rest) = after.split_at(after.find('/').unwrap_or(after.len()));
    let twin = match authority.strip_suffix(default) {
        Some(host) => host.to_owned(),
        None if has_port(authority) => return None,
        None => format!("{authority}{default}"),
    };
    Some(format!("{scheme}://{twin}{rest}"))
}

/// True when an authority ends in `:digits` (an IPv6 literal ends in `]`).
fn has_port(authority: &str) -> bool {
    authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests;
