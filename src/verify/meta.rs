//! Meta (WhatsApp Business, Instagram, Messenger and other Graph API
//! webhooks): `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>`
//! on every POST, and the GET subscription handshake: `hub.mode=subscribe`,
//! `hub.verify_token` equal to the source's `verify_token`, and
//! `hub.challenge` echoed back as text/plain. Meta signs no timestamp;
//! replays within the dedup window need a `dedup_key` (Meta sends no delivery id).

use std::time::SystemTime;

use http::{HeaderName, HeaderValue};

use super::credential::Credentials;
use super::declarative::HeaderScheme;
use super::github::hub_signature_layout;
use super::request::{Reply, RequestHead};
use super::{problem, ConfigProblem, SignError, Verified, VerifyError};
use crate::config::{Secret, SourceConfig};

/// The Meta scheme: the app secrets and the verify token.
#[derive(Debug)]
pub(super) struct Meta {
    scheme: HeaderScheme,
    verify_token: Credentials,
    /// The verify token, for `hookgate send --handshake`.
    token: Secret,
}

impl Meta {
    /// Needs the app secrets (`secrets`) and the `verify_token`.
    pub(super) fn new(source: &SourceConfig) -> Result<Self, ConfigProblem> {
        let scheme = HeaderScheme::build(&hub_signature_layout(None), source)?;
        let token = source.verify_token.clone().ok_or_else(|| {
            problem(
                "verify_token",
                "verify = \"meta\" needs verify_token, the token entered in Meta's webhook settings",
            )
        })?;
        Ok(Self {
            scheme,
            verify_token: Credentials::new([token.expose()]),
            token,
        })
    }

    /// Checks `X-Hub-Signature-256` of a POST.
    pub(super) fn verify(&self, head: RequestHead<'_>, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        self.scheme.verify(head, body, now)
    }

    /// The signature scheme underneath the handshake.
    pub(super) fn signature(&self) -> &HeaderScheme {
        &self.scheme
    }

    /// Answers the GET subscription handshake, or says why it is refused.
    pub(super) fn subscribe(&self, head: RequestHead<'_>) -> Result<Reply, VerifyError> {
        if head.query_param("hub.mode").as_deref() != Some("subscribe") {
            return Err(VerifyError::MalformedHandshake);
        }
        let token = head
            .query_param("hub.verify_token")
            .ok_or(VerifyError::MissingCredential)?;
        self.verify_token
            .find(token.as_bytes())
            .ok_or(VerifyError::InvalidCredential)?;
        match head.query_param("hub.challenge") {
            Some(challenge) if !challenge.is_empty() => Ok(Reply::text(&challenge)),
            _ => Err(VerifyError::MalformedHandshake),
        }
    }

    /// `X-Hub-Signature-256` made with the first app secret.
    pub(super) fn sign(
        &self,
        body: &[u8],
        delivery_id: &HeaderValue,
        now: SystemTime,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        self.scheme.sign(body, delivery_id, now)
    }

    /// The query string of the subscription handshake Meta sends with `challenge`.
    pub(super) fn sample_query(&self, challenge: &str) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("hub.mode", "subscribe")
            .append_pair("hub.verify_token", &String::from_utf8_lossy(self.token.expose()))
            .append_pair("hub.challenge", challenge)
            .finish()
    }
}

#[cfg(test)]
mod tests;
