//! Helpers shared by the verification unit tests: sources, header maps, a clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{Verifier, VerifyError};
use crate::config::{Preset, Secret, SourceConfig};

/// The "current time" of most tests (2023-11-14).
pub(super) const NOW: u64 = 1_700_000_000;

/// The moment `secs` after the Unix epoch.
pub(super) fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// A source with a preset and literal secrets, everything else defaulted.
pub(super) fn source(verify: Preset, secrets: &[&str]) -> SourceConfig {
    let secrets = secrets.iter().map(|s| Secret::from_bytes(s.as_bytes())).collect();
    SourceConfig::new("test", verify, secrets)
}

/// A verifier for a preset and literal secrets.
pub(super) fn verifier(verify: Preset, secrets: &[&str]) -> Verifier {
    Verifier::from_source(&source(verify, secrets)).expect("valid source")
}

/// A header map from text pairs.
pub(super) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(name, value)| {
            (
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            )
        })
        .collect()
}

/// The headers `verifier` signs `body` with, as a map (delivery id "evt_1").
pub(super) fn signed(verifier: &Verifier, body: &[u8], now: SystemTime) -> HeaderMap {
    verifier.sign(body, "evt_1", now).expect("signs").into_iter().collect()
}

/// Values of every shape that is not a well-formed signature, including non-ASCII bytes.
pub(super) const GARBAGE: [&[u8]; 12] = [
    b"",
    b"garbage",
    b" ",
    b"=",
    b",",
    b"sha256=",
    b"v1,",
    b"v0=zz",
    b"t=,v1=",
    b"\xff\xfe\xfd",
    b"sha256=\xc3\xa9\xc3\xa9",
    b"v1,\x80\x81==",
];

/// Puts each garbage value in `header` of a genuinely signed request: never a panic, never Ok.
pub(super) fn assert_garbage_rejected(verifier: &Verifier, header: &str, body: &[u8]) {
    for value in GARBAGE {
        let mut sent = signed(verifier, body, at(NOW));
        sent.insert(
            HeaderName::from_bytes(header.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
        let outcome = verifier.verify(&sent, body, at(NOW));
        assert!(outcome.is_err(), "{header}: {value:?} was accepted");
        assert_ne!(
            outcome,
            Err(VerifyError::InvalidSignature),
            "{header}: {value:?} should not reach the MAC"
        );
    }
}
