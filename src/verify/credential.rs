//! Static credentials: senders that sign nothing and send the same secret
//! with every request, in a named header (`token`, and GitLab's
//! `X-Gitlab-Token`) or as HTTP Basic authentication (`basic`); also Meta's
//! verify token. Secrets are compared as SHA-256 digests in constant time.
//!
//! Weaker than a signature: the credential proves the sender knows the
//! secret, but nothing binds it to the body, so whoever sees one request
//! (a log, a proxy) can send any body with it. Envelopes say so
//! (`Verification.static_credential`), and the header is never copied into them.

use base64::Engine;
use http::{header, HeaderMap, HeaderName, HeaderValue};

use super::mac::{self, Tag, BASE64};
use super::{problem, ConfigProblem, Verified, VerifyError};
use crate::config::{Secret, SourceConfig};

/// The WWW-Authenticate challenge of a `basic` source's 401 answers; some
/// senders (Twilio) send credentials only after being challenged.
pub(super) const BASIC_CHALLENGE: &str = "Basic realm=\"hookgate\", charset=\"UTF-8\"";

/// Digests of the accepted secrets, in configuration order.
#[derive(Debug)]
pub(super) struct Credentials {
    digests: Vec<Tag>,
}

impl Credentials {
    /// The digests of `secrets`.
    pub(super) fn new<'a>(secrets: impl IntoIterator<Item = &'a [u8]>) -> Self {
        Self {
            digests: secrets.into_iter().map(mac::sha256).collect(),
        }
    }

    /// Index of the secret equal to `presented`, comparing with every one in constant time.
    pub(super) fn find(&self, presented: &[u8]) -> Option<u32> {
        mac::position(&mac::sha256(presented), &self.digests)
    }
}

/// A token in a named header, optionally after a prefix such as `Bearer `.
#[derive(Debug)]
pub(super) struct TokenScheme {
    header: HeaderName,
    prefix: Box<str>,
    credentials: Credentials,
    /// The first secret, which `sign` sends.
    first: Secret,
    /// Header in which a genuine sender puts its delivery id (only used by `sign`).
    id_header: Option<HeaderName>,
}

impl TokenScheme {
    /// `verify = "token"`: the header and prefix come from `token_header` and `token_prefix`.
    pub(super) fn configured(source: &SourceConfig) -> Result<Self, ConfigProblem> {
        let name = source.token_header.as_deref().ok_or_else(|| {
            problem(
                "token_header",
                "verify = \"token\" needs token_header, the header carrying the token",
            )
        })?;
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| problem("token_header", format!("`{name}` is not a valid header name")))?;
        let prefix = source.token_prefix.as_deref().unwrap_or_default();
        if !prefix.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            return Err(problem("token_prefix", "must be printable ASCII"));
        }
        Self::new(header, prefix, None, source)
    }

    /// A fixed header without prefix (GitLab's `X-Gitlab-Token`).
    pub(super) fn fixed(
        header: &'static str,
        id_header: &'static str,
        source: &SourceConfig,
    ) -> Result<Self, ConfigProblem> {
        let id_header = Some(HeaderName::from_static(id_header));
        Self::new(HeaderName::from_static(header), "", id_header, source)
    }

    fn new(
        header: HeaderName,
        prefix: &str,
        id_header: Option<HeaderName>,
        source: &SourceConfig,
    ) -> Result<Self, ConfigProblem> {
        let first = first_secret(source)?;
        for (index, secret) in source.secrets.iter().enumerate() {
            if HeaderValue::from_bytes(secret.expose()).is_err() || secret.expose().contains(&b' ') {
                return Err(problem(
                    &format!("secrets[{index}]"),
                    format!(
                        "the token ({}) cannot be sent in a header: use printable ASCII without spaces",
                        secret.origin()
                    ),
                ));
            }
        }
        Ok(Self {
            header,
            prefix: prefix.into(),
            credentials: Credentials::new(source.secrets.iter().map(Secret::expose)),
            first,
            id_header,
        })
    }

    /// The header that carries the token.
    pub(super) fn header(&self) -> &HeaderName {
        &self.header
    }

    /// Checks the token header against every secret.
    pub(super) fn verify(&self, headers: &HeaderMap) -> Result<Verified, VerifyError> {
        let value = headers.get(&self.header).ok_or(VerifyError::MissingCredential)?;
        let token = strip_prefix_ignore_case(value.as_bytes(), self.prefix.as_bytes())
            .ok_or(VerifyError::MalformedCredential)?;
        self.credentials
            .find(token)
            .map(credential_verified)
            .ok_or(VerifyError::InvalidCredential)
    }

    /// The token header (and the delivery id header, if the sender has one) a genuine sender adds.
    pub(super) fn sign(&self, delivery_id: &HeaderValue) -> Vec<(HeaderName, HeaderValue)> {
        let mut value = self.prefix.as_bytes().to_vec();
        value.extend_from_slice(self.first.expose());
        let token = HeaderValue::from_bytes(&value).expect("checked at start-up: a valid header value");
        let mut headers = vec![(self.header.clone(), token)];
        headers.extend(self.id_header.clone().map(|name| (name, delivery_id.clone())));
        headers
    }
}

/// HTTP Basic authentication: `Authorization: Basic base64(user:password)`,
/// each secret being one accepted `user:password`.
#[derive(Debug)]
pub(super) struct BasicScheme {
    credentials: Credentials,
    /// The first secret, which `sign` sends.
    first: Secret,
}

impl BasicScheme {
    /// Checks that every secret is a `user:password` pair.
    pub(super) fn new(source: &SourceConfig) -> Result<Self, ConfigProblem> {
        let first = first_secret(source)?;
        for (index, secret) in source.secrets.iter().enumerate() {
            if !secret.expose().contains(&b':') {
                return Err(problem(
                    &format!("secrets[{index}]"),
                    format!("the secret ({}) must be written user:password", secret.origin()),
                ));
            }
        }
        Ok(Self {
            credentials: Credentials::new(source.secrets.iter().map(Secret::expose)),
            first,
        })
    }

    /// Checks `Authorization: Basic ...` against every secret.
    pub(super) fn verify(&self, headers: &HeaderMap) -> Result<Verified, VerifyError> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or(VerifyError::MissingCredential)?;
        let encoded = strip_prefix_ignore_case(value.as_bytes(), b"basic ").ok_or(VerifyError::MalformedCredential)?;
        let decoded = BASE64
            .decode(encoded.trim_ascii())
            .map_err(|_| VerifyError::MalformedCredential)?;
        self.credentials
            .find(&decoded)
            .map(credential_verified)
            .ok_or(VerifyError::InvalidCredential)
    }

    /// `Authorization: Basic ...` with the first secret.
    pub(super) fn sign(&self) -> Vec<(HeaderName, HeaderValue)> {
        let value = format!("Basic {}", BASE64.encode(self.first.expose()));
        vec![(header::AUTHORIZATION, mac::ascii_header(value))]
    }
}

fn first_secret(source: &SourceConfig) -> Result<Secret, ConfigProblem> {
    super::require_secrets(source)?;
    Ok(source.secrets[0].clone())
}

fn credential_verified(secret_index: u32) -> Verified {
    Verified {
        verified: true,
        secret_index,
    }
}

/// `value` without `prefix`, compared ASCII case-insensitively (`Bearer`, `Basic`).
fn strip_prefix_ignore_case<'a>(value: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &value[prefix.len()..])
}

#[cfg(test)]
mod tests;
