//! Opaque keyset cursors. A cursor is the (received_at, id) of the last
//! event of a page, a fingerprint of the filters it was issued for and a
//! checksum, in unpadded base64url. The next page starts strictly after
//! that position, so events arriving meanwhile (all newer) never shift it:
//! no gap, no repeat. The checksum is an integrity check, not a secret: a
//! forged cursor could only name a position, and filters and token
//! restrictions are applied again on every page.
//!
//! Layout: version (1) | received_at (8, big-endian) | filter fingerprint (8) | id (rest) | checksum (8).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::history::store::{EventFilter, Position};

/// Format version byte.
const VERSION: u8 = 1;
/// Domain separation of the checksum.
const CHECKSUM_CONTEXT: &[u8] = b"hookgate cursor v1";
/// Longest id a cursor carries (UUIDs are 36 bytes).
const MAX_ID_LEN: usize = 128;

fn sha256_prefix(parts: &[&[u8]]) -> [u8; 8] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut prefix = [0; 8];
    prefix.copy_from_slice(&digest[..8]);
    prefix
}

/// A stable fingerprint of the filters (sources, type, since, until, dedup
/// key, verified, and the body searches when there are any: cursors issued
/// without them keep their fingerprint).
fn fingerprint(filter: &EventFilter) -> [u8; 8] {
    let sources = filter.sources.as_ref().map(|s| s.join("\u{0}"));
    let mut fields = vec![
        sources.unwrap_or_else(|| "\u{1}".into()),
        filter.event_type.clone().unwrap_or_else(|| "\u{1}".into()),
        filter.since.map_or_else(|| "\u{1}".into(), |v| v.to_string()),
        filter.until.map_or_else(|| "\u{1}".into(), |v| v.to_string()),
        filter.dedup_key.clone().unwrap_or_else(|| "\u{1}".into()),
        filter.verified.map_or_else(|| "\u{1}".into(), |v| v.to_string()),
    ];
    if filter.searches_bodies() {
        fields.extend(filter.json.iter().map(|j| format!("{}:{}", j.pointer, j.value)));
        fields.push(filter.text.clone().unwrap_or_else(|| "\u{1}".into()));
    }
    let parts: Vec<&[u8]> = fields.iter().map(|f| f.as_bytes()).collect();
    sha256_prefix(&parts)
}

/// The cursor continuing after `position` for `filter`.
pub(crate) fn encode(position: &Position, filter: &EventFilter) -> String {
    let mut bytes = Vec::with_capacity(25 + position.id.len());
    bytes.push(VERSION);
    bytes.extend_from_slice(&position.received_at.to_be_bytes());
    bytes.extend_from_slice(&fingerprint(filter));
    bytes.extend_from_slice(position.id.as_bytes());
    let checksum = sha256_prefix(&[CHECKSUM_CONTEXT, &bytes]);
    bytes.extend_from_slice(&checksum);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The position a cursor names, if it is intact and was issued for `filter`.
pub(crate) fn decode(cursor: &str, filter: &EventFilter) -> Result<Position, ApiError> {
    let invalid =
        |why: &str| ApiError::InvalidCursor(format!("`cursor` {why}; use the `next_cursor` of a previous page"));
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid("is not valid base64url"))?;
    if bytes.len() < 25 + 8 || bytes.len() > 25 + MAX_ID_LEN + 8 || bytes[0] != VERSION {
        return Err(invalid("is malformed"));
    }
    let (body, checksum) = bytes.split_at(bytes.len() - 8);
    if sha256_prefix(&[CHECKSUM_CONTEXT, body]) != checksum {
        return Err(invalid("is corrupt"));
    }
    if body[9..17] != fingerprint(filter) {
        return Err(ApiError::InvalidCursor(
            "`cursor` was issued for different filters".into(),
        ));
    }
    let mut received_at = [0; 8];
    received_at.copy_from_slice(&body[1..9]);
    let id = std::str::from_utf8(&body[17..]).map_err(|_| invalid("is malformed"))?;
    Ok(Position {
        received_at: i64::from_be_bytes(received_at),
        id: id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position() -> Position {
        Position {
            received_at: 1_700_000_000_000_001,
            id: "0190b6d2-0000-7000-8000-000000000001".into(),
        }
    }

    #[test]
    fn cursors_round_trip() {
        let filter = EventFilter {
            event_type: Some("push".into()),
            ..Default::default()
        };
        let cursor = encode(&position(), &filter);
        assert!(cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(decode(&cursor, &filter).unwrap(), position());
    }

    #[test]
    fn garbled_forged_and_foreign_cursors_are_refused() {
        let filter = EventFilter::default();
        let cursor = encode(&position(), &filter);
        let mut garbled = cursor.clone().into_bytes();
        garbled[5] = if garbled[5] == b'A' { b'B' } else { b'A' };
        let garbled = String::from_utf8(garbled).unwrap();
        for bad in ["", "!!!", "AAAA", garbled.as_str()] {
            assert!(matches!(decode(bad, &filter), Err(ApiError::InvalidCursor(_))), "{bad}");
        }
        let other = EventFilter {
            verified: Some(true),
            ..Default::default()
        };
        assert!(matches!(decode(&cursor, &other), Err(ApiError::InvalidCursor(_))));
        let searching = EventFilter {
            text: Some("refund".into()),
            ..Default::default()
        };
        assert!(matches!(decode(&cursor, &searching), Err(ApiError::InvalidCursor(_))));
        let cursor = encode(&position(), &searching);
        assert_eq!(decode(&cursor, &searching).unwrap(), position());
    }
}
