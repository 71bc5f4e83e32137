//! Zoom: `x-zm-signature: v0=<hex HMAC-SHA256(secret token, "v0:{ts}:{body}")>`
//! with the Unix seconds in `x-zm-request-timestamp`, checked against the
//! tolerance; plus the `endpoint.url_validation` handshake, answered (after
//! the request's own signature checked out) with the `plainToken` and its
//! HMAC-SHA256 under the secret that signed the request.

use std::time::SystemTime;

use http::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::declarative::{HeaderScheme, Layout};
use super::request::{Reply, RequestHead};
use super::{ConfigProblem, SignError, Verified, VerifyError};
use crate::config::{HmacAlgorithm, SignatureEncoding, SourceConfig};

/// The event name of Zoom's URL validation request.
const URL_VALIDATION: &str = "endpoint.url_validation";

/// The Zoom scheme for a source's secret tokens.
#[derive(Debug)]
pub(super) struct Zoom {
    scheme: HeaderScheme,
}

impl Zoom {
    /// The `v0` scheme keyed with each secret token.
    pub(super) fn new(source: &SourceConfig) -> Result<Self, ConfigProblem> {
        let layout = Layout {
            header: "x-zm-signature",
            algorithm: HmacAlgorithm::Sha256,
            encoding: SignatureEncoding::Hex,
            prefix: "v0=",
            signed: "v0:{header:x-zm-request-timestamp}:{body}",
            timestamp_header: Some("x-zm-request-timestamp"),
            id_header: None,
            public_url: None,
        };
        Ok(Self {
            scheme: HeaderScheme::build(&layout, source)?,
        })
    }

    /// Checks `x-zm-signature` and its timestamp.
    pub(super) fn verify(&self, head: RequestHead<'_>, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        self.scheme.verify(head, body, now)
    }

    /// The signature scheme underneath the handshake.
    pub(super) fn signature(&self) -> &HeaderScheme {
        &self.scheme
    }

    /// The answer to a verified `endpoint.url_validation` request, if `body` is one.
    pub(super) fn url_validation(&self, body: &[u8], verified: Verified) -> Option<Reply> {
        let plain = plain_token(body)?;
        let key = self.scheme.keys().get(verified.secret_index as usize)?;
        let encrypted = encrypted_token(key, &plain);
        Some(Reply::json(
            &serde_json::json!({ "plainToken": plain, "encryptedToken": encrypted }),
        ))
    }

    /// `x-zm-request-timestamp` and `x-zm-signature` made with the first secret.
    pub(super) fn sign(
        &self,
        body: &[u8],
        delivery_id: &HeaderValue,
        now: SystemTime,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        self.scheme.sign(body, delivery_id, now)
    }

    /// A signed `endpoint.url_validation` body as Zoom sends it, and the
    /// answer Zoom expects to it (hookgate send --handshake).
    pub(super) fn sample(&self, plain: &str, now: SystemTime) -> Option<(Vec<u8>, serde_json::Value)> {
        let key = self.scheme.keys().first()?;
        let millis = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        let body = serde_json::json!({
            "payload": { "plainToken": plain },
            "event_ts": millis,
            "event": URL_VALIDATION,
        });
        let expected = serde_json::json!({ "plainToken": plain, "encryptedToken": encrypted_token(key, plain) });
        Some((body.to_string().into_bytes(), expected))
    }
}

/// The hex HMAC-SHA256 of the plain token.
fn encrypted_token(key: &super::mac::MacKey, plain: &str) -> String {
    key.tag([plain.as_bytes()]).encode(SignatureEncoding::Hex)
}

/// The `payload.plainToken` of an `endpoint.url_validation` body.
fn plain_token(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Validation {
        event: String,
        payload: Payload,
    }
    #[derive(Deserialize)]
    struct Payload {
        #[serde(rename = "plainToken")]
        plain_token: String,
    }
    // Every Zoom event is checked; only bodies naming the event are parsed.
    memchr::memmem::find(body, URL_VALIDATION.as_bytes())?;
    let validation: Validation = serde_json::from_slice(body).ok()?;
    (validation.event == URL_VALIDATION).then_some(validation.payload.plain_token)
}

#[cfg(test)]
mod tests;
