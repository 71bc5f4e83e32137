//! Standard Webhooks (standardwebhooks.com): `webhook-id`, `webhook-timestamp`
//! and `webhook-signature` (space-separated `v1,<base64>` / `v1a,<base64>`)
//! over `"{id}.{timestamp}.{body}"`. `v1` is HMAC-SHA256 keyed with a decoded
//! `whsec_` secret, `v1a` Ed25519 checked with a `whpk_` public key; one
//! source may hold both kinds.

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::mac::{self, Candidates, MacKey, Tag, BASE64};
use super::{problem, timestamp, ConfigProblem, SignError, Verified, VerifyError};
use crate::config::{HmacAlgorithm, Secret, SignatureEncoding, SourceConfig};

const ID: HeaderName = HeaderName::from_static("webhook-id");
const TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
const DOT: &[u8] = b".";

/// One configured secret.
enum Key {
    /// `whsec_`: a symmetric key for `v1` (boxed: an HMAC state is twice a public key's size).
    Hmac(Box<MacKey>),
    /// `whpk_`: a public key for `v1a`; verifies only, cannot sign.
    Ed25519(VerifyingKey),
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Hmac(key) => key.fmt(f),
            Key::Ed25519(_) => f.write_str("Ed25519PublicKey"),
        }
    }
}

/// The Standard Webhooks scheme for a source's keys.
#[derive(Debug)]
pub(super) struct StandardWebhooks {
    keys: Vec<Key>,
    tolerance: Duration,
}

/// The signatures of one request, by kind.
struct Signatures {
    v1: Candidates,
    v1a: Candidates,
}

impl StandardWebhooks {
    /// Decodes every `whsec_` / `whpk_` secret; a bad one names `secrets[i]`.
    pub(super) fn new(source: &SourceConfig) -> Result<Self, ConfigProblem> {
        super::check_tolerance(source)?;
        super::require_secrets(source)?;
        let keys = source
            .secrets
            .iter()
            .enumerate()
            .map(|(index, secret)| parse_key(index, secret));
        Ok(Self {
            keys: keys.collect::<Result<_, _>>()?,
            tolerance: source.tolerance(),
        })
    }

    /// Checks the three `webhook-*` headers against every key.
    pub(super) fn verify(&self, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let signature = headers.get(SIGNATURE).ok_or(VerifyError::MissingSignature)?;
        let id = headers.get(ID).ok_or(VerifyError::MissingSignature)?;
        let stamp = headers.get(TIMESTAMP).ok_or(VerifyError::MissingTimestamp)?;
        let signatures = Signatures::parse(signature.as_bytes())?;
        timestamp::check(timestamp::parse(stamp.as_bytes())?, now, self.tolerance)?;
        self.first_match([id.as_bytes(), DOT, stamp.as_bytes(), DOT, body], &signatures)
            .map(|secret_index| Verified {
                verified: true,
                secret_index,
            })
            .ok_or(VerifyError::InvalidSignature)
    }

    fn first_match(&self, content: [&[u8]; 5], signatures: &Signatures) -> Option<u32> {
        // Ed25519 needs the content in one piece: assemble it once, and only if needed.
        let mut joined: Option<Vec<u8>> = None;
        let index = self.keys.iter().position(|key| match key {
            Key::Hmac(key) => mac::matches_any(&key.tag(content), signatures.v1.as_slice()),
            Key::Ed25519(public) => {
                !signatures.v1a.is_empty() && {
                    let message = joined.get_or_insert_with(|| content.concat());
                    signatures
                        .v1a
                        .as_slice()
                        .iter()
                        .any(|sig| ed25519_ok(public, message, sig))
                }
            }
        })?;
        Some(u32::try_from(index).unwrap_or(u32::MAX))
    }

    /// `webhook-id`, `webhook-timestamp` and a `v1` signature made with the first secret.
    pub(super) fn sign(
        &self,
        body: &[u8],
        delivery_id: &HeaderValue,
        now: SystemTime,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        let key = match self.keys.first() {
            Some(Key::Hmac(key)) => key,
            Some(Key::Ed25519(_)) => return Err(SignError::PublicKeyOnly),
            None => return Err(SignError::NoSecret),
        };
        let stamp = timestamp::unix_seconds(now).to_string();
        let tag = key.tag([delivery_id.as_bytes(), DOT, stamp.as_bytes(), DOT, body]);
        let signature = format!("v1,{}", tag.encode(SignatureEncoding::Base64));
        Ok(vec![
            (ID, delivery_id.clone()),
            (TIMESTAMP, mac::ascii_header(stamp)),
            (SIGNATURE, mac::ascii_header(signature)),
        ])
    }
}

fn ed25519_ok(public: &VerifyingKey, message: &[u8], signature: &Tag) -> bool {
    Signature::from_slice(signature.as_bytes()).is_ok_and(|sig| public.verify_strict(message, &sig).is_ok())
}

impl Signatures {
    /// Space-separated `version,base64` entries; unknown versions are skipped.
    fn parse(value: &[u8]) -> Result<Self, VerifyError> {
        let mut found = Self {
            v1: Candidates::new(),
            v1a: Candidates::new(),
        };
        let mut entries = 0;
        for entry in value.split(|b| *b == b' ').filter(|entry| !entry.is_empty()) {
            entries += 1;
            let comma = entry
                .iter()
                .position(|b| *b == b',')
                .ok_or(VerifyError::MalformedSignature)?;
            let (version, encoded) = (&entry[..comma], &entry[comma + 1..]);
            match version {
                b"v1" => found.v1.push(Tag::from_base64(encoded, 32)?)?,
                b"v1a" => found.v1a.push(Tag::from_base64(encoded, 64)?)?,
                _ => {}
            }
        }
        if entries == 0 {
            return Err(VerifyError::MalformedSignature);
        }
        if found.v1.is_empty() && found.v1a.is_empty() {
            return Err(VerifyError::MissingSignature);
        }
        Ok(found)
    }
}

fn parse_key(index: usize, secret: &Secret) -> Result<Key, ConfigProblem> {
    let key = format!("secrets[{index}]");
    let origin = secret.origin();
    let bytes = secret.expose();
    if let Some(encoded) = bytes.strip_prefix(b"whsec_") {
        let raw = BASE64.decode(encoded).ok().filter(|raw| !raw.is_empty());
        let raw = raw.ok_or_else(|| problem(&key, format!("the whsec_ secret ({origin}) is not valid base64")))?;
        Ok(Key::Hmac(Box::new(MacKey::new(HmacAlgorithm::Sha256, &raw))))
    } else if let Some(encoded) = bytes.strip_prefix(b"whpk_") {
        public_key(encoded).map(Key::Ed25519).ok_or_else(|| {
            problem(
                &key,
                format!("the whpk_ key ({origin}) is not a base64 Ed25519 public key of 32 bytes"),
            )
        })
    } else {
        Err(problem(
            &key,
            format!("the secret ({origin}) must start with whsec_ (HMAC) or whpk_ (Ed25519 public key)"),
        ))
    }
}

fn public_key(encoded: &[u8]) -> Option<VerifyingKey> {
    let raw: [u8; 32] = BASE64.decode(encoded).ok()?.try_into().ok()?;
    // Small-order keys would accept forged signatures: refuse them outright.
    VerifyingKey::from_bytes(&raw).ok().filter(|public| !public.is_weak())
}

#[cfg(test)]
mod tests;
