//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]`, each
//! `v1` an HMAC-SHA256 of `"{t}.{body}"` keyed with the whole endpoint secret
//! (`whsec_...` used as is, not decoded). Any `v1` matching any secret passes;
//! other schemes in the header are ignored.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};

use super::mac::{self, Candidates, MacKey, Tag};
use super::{timestamp, ConfigProblem, SignError, Verified, VerifyError};
use crate::config::{HmacAlgorithm, SignatureEncoding, SourceConfig};

const HEADER: HeaderName = HeaderName::from_static("stripe-signature");
const DIGEST_LEN: usize = 32;

/// The Stripe scheme for a source's endpoint secrets.
#[derive(Debug)]
pub(super) struct Stripe {
    keys: Vec<MacKey>,
    tolerance: Duration,
}

/// The parts of a `Stripe-Signature` header hookgate uses.
struct Parsed<'a> {
    timestamp: Option<&'a [u8]>,
    v1: Candidates,
}

impl Stripe {
    /// Precomputes one HMAC key per secret.
    pub(super) fn new(source: &SourceConfig) -> Result<Self, ConfigProblem> {
        super::check_tolerance(source)?;
        let keys = super::mac_keys(source, HmacAlgorithm::Sha256)?;
        Ok(Self {
            keys,
            tolerance: source.tolerance(),
        })
    }

    /// Checks `Stripe-Signature` against every secret.
    pub(super) fn verify(&self, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let value = headers.get(HEADER).ok_or(VerifyError::MissingSignature)?;
        let parsed = parse(value.as_bytes())?;
        let stamp = parsed.timestamp.ok_or(VerifyError::MissingTimestamp)?;
        let signed_at = timestamp::parse(stamp)?;
        if parsed.v1.is_empty() {
            return Err(VerifyError::MissingSignature);
        }
        timestamp::check(signed_at, now, self.tolerance)?;
        // The timestamp is signed exactly as sent.
        mac::first_match(&self.keys, || [stamp, b".", body], parsed.v1.as_slice())
            .map(|secret_index| Verified {
                verified: true,
                secret_index,
            })
            .ok_or(VerifyError::InvalidSignature)
    }

    /// `Stripe-Signature: t=...,v1=...` made with the first secret.
    pub(super) fn sign(&self, body: &[u8], now: SystemTime) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        let key = self.keys.first().ok_or(SignError::NoSecret)?;
        let stamp = timestamp::unix_seconds(now).to_string();
        let tag = key.tag([stamp.as_bytes(), b".", body]);
        let value = format!("t={stamp},v1={}", tag.encode(SignatureEncoding::Hex));
        Ok(vec![(HEADER, mac::ascii_header(value))])
    }
}

/// Splits `k=v` items on commas; a repeated `t`, an item without `=` or a
/// header with no item at all is malformed, a `v1` must be 64 hex digits.
fn parse(value: &[u8]) -> Result<Parsed<'_>, VerifyError> {
    let mut parsed = Parsed {
        timestamp: None,
        v1: Candidates::new(),
    };
    let mut items = 0;
    for item in value
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|item| !item.is_empty())
    {
        items += 1;
        let equals = item
            .iter()
            .position(|b| *b == b'=')
            .ok_or(VerifyError::MalformedSignature)?;
        let (name, text) = (&item[..equals], &item[equals + 1..]);
        match name {
            b"t" if parsed.timestamp.is_some() => return Err(VerifyError::MalformedSignature),
            b"t" => parsed.timestamp = Some(text),
            b"v1" => parsed.v1.push(Tag::from_hex(text, DIGEST_LEN)?)?,
            _ => {}
        }
    }
    if items == 0 {
        return Err(VerifyError::MalformedSignature);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use crate::config::Preset;
    use crate::verify::testing::{assert_garbage_rejected, at, headers, signed, source, verifier};
    use crate::verify::{Verified, Verifier, VerifyError};

    // Stripe publishes no test vector; this one was computed with Python's hmac.
    const SECRET: &str = "whsec_test_secret";
    const T: u64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"charge.succeeded"}"#;
    const V1: &str = "c0475716eb2200f1fe97fcf35a3c05d1fd4f8ba9a07a596730c8d18bb87c0672";

    fn header(value: &str) -> http::HeaderMap {
        headers(&[("Stripe-Signature", value)])
    }

    #[test]
    fn an_independently_computed_signature_verifies() {
        let stripe = verifier(Preset::Stripe, &[SECRET]);
        let sent = header(&format!("t={T},v1={V1}"));
        assert_eq!(
            stripe.verify(&sent, BODY, at(T)),
            Ok(Verified {
                verified: true,
                secret_index: 0
            })
        );
        assert_eq!(stripe.scheme(), "stripe");
    }

    #[test]
    fn sign_reproduces_the_vector() {
        let stripe = verifier(Preset::Stripe, &[SECRET]);
        assert_eq!(
            signed(&stripe, BODY, at(T))["stripe-signature"],
            format!("t={T},v1={V1}").as_str()
        );
    }

    #[test]
    fn any_v1_may_match_and_other_schemes_are_ignored() {
        let stripe = verifier(Preset::Stripe, &[SECRET]);
        let zeros = "0".repeat(64);
        let sent = header(&format!("t={T}, v0={zeros}, v1={zeros},v1={V1},v2=whatever"));
        assert!(stripe.verify(&sent, BODY, at(T)).is_ok());
        let only_v0 = header(&format!("t={T},v0={V1}"));
        assert_eq!(stripe.verify(&only_v0, BODY, at(T)), Err(VerifyError::MissingSignature));
    }

    #[test]
    fn rotation_reports_the_matching_secret() {
        let stripe = verifier(Preset::Stripe, &["whsec_new", "whsec_newer", SECRET]);
        assert_eq!(
            stripe
                .verify(&header(&format!("t={T},v1={V1}")), BODY, at(T))
                .unwrap()
                .secret_index,
            2
        );
    }

    #[test]
    fn tampering_and_wrong_secret_fail() {
        let stripe = verifier(Preset::Stripe, &[SECRET]);
        let sent = header(&format!("t={T},v1={V1}"));
        assert_eq!(
            stripe.verify(&sent, br#"{"id":"evt_2","type":"charge.succeeded"}"#, at(T)),
            Err(VerifyError::InvalidSignature)
        );
        let moved = header(&format!("t={},v1={V1}", T + 1));
        assert_eq!(stripe.verify(&moved, BODY, at(T)), Err(VerifyError::InvalidSignature));
        let stranger = verifier(Preset::Stripe, &["whsec_other"]);
        assert_eq!(stranger.verify(&sent, BODY, at(T)), Err(VerifyError::InvalidSignature));
    }

    #[test]
    fn tolerance_applies_both_ways_and_is_configurable() {
        let stripe = verifier(Preset::Stripe, &[SECRET]);
        let sent = header(&format!("t={T},v1={V1}"));
        assert_eq!(
            stripe.verify(&sent, BODY, at(T + 301)),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            stripe.verify(&sent, BODY, at(T - 301)),
            Err(VerifyError::FutureTimestamp)
        );
        let mut relaxed = source(Preset::Stripe, &[SECRET]);
        relaxed.tolerance = Some(std::time::Duration::from_secs(3600));
        let relaxed = Verifier::from_source(&relaxed).unwrap();
        assert!(relaxed.verify(&sent, BODY, at(T + 3600)).is_ok());
    }

    #[test]
    fn header_shapes_map_to_precise_reasons() {
        let stripe = verifier(Preset::Stripe, &[SECRET]);
        let cases = [
            (format!("v1={V1}"), VerifyError::MissingTimestamp),
            (format!("t=,v1={V1}"), VerifyError::MalformedTimestamp),
            (format!("t=-5,v1={V1}"), VerifyError::MalformedTimestamp),
            (format!("t={T}"), VerifyError::MissingSignature),
            (format!("t={T},t={T},v1={V1}"), VerifyError::MalformedSignature),
            (format!("t={T},v1={}", &V1[2..]), VerifyError::MalformedSignature),
            (format!("t={T},v1={}", "g".repeat(64)), VerifyError::MalformedSignature),
            (format!("t={T};v1={V1}"), VerifyError::MalformedTimestamp),
            (format!("t={T},v1"), VerifyError::MalformedSignature),
            (",,,".to_string(), VerifyError::MalformedSignature),
            (
                format!("t={T},{}", format!("v1={V1},").repeat(9)),
                VerifyError::MalformedSignature,
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(stripe.verify(&header(&value), BODY, at(T)), Err(expected), "{value}");
        }
        assert_eq!(
            stripe.verify(&headers(&[]), BODY, at(T)),
            Err(VerifyError::MissingSignature)
        );
        assert_garbage_rejected(&stripe, "stripe-signature", BODY);
    }
}
