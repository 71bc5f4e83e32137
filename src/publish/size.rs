//! The size of a Kafka record as librdkafka counts it against the producer's
//! `message.max.bytes`, so that a record the producer can never take is
//! refused before it is handed over (413), instead of failing at the
//! producer on every retry (503 forever).

use std::collections::BTreeMap;

/// librdkafka's default `message.max.bytes`.
pub const DEFAULT_MESSAGE_MAX_BYTES: u64 = 1_000_000;
/// The smallest and largest `message.max.bytes` librdkafka accepts.
pub const MESSAGE_MAX_BYTES_RANGE: std::ops::RangeInclusive<u64> = 1000..=1_000_000_000;
/// The librdkafka option bounding one record.
pub const MESSAGE_MAX_BYTES: &str = "message.max.bytes";

/// The worst-case framing of one v2 record besides its key, value and
/// headers: length, attributes, timestamp delta, offset delta, key length,
/// value length and header count, each a varint at its widest
/// (librdkafka's `RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD`).
const RECORD_FRAMING: u64 = 5 + 1 + 10 + 5 + 5 + 5 + 5;

/// The producer's `message.max.bytes`: the configured option, else
/// librdkafka's default. An unparsable value (refused by validation) counts
/// as the default.
pub fn message_max_bytes(options: &BTreeMap<String, String>) -> u64 {
    options
        .get(MESSAGE_MAX_BYTES)
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES)
}

/// The size librdkafka compares with `message.max.bytes` for a record with
/// this key, value and headers.
pub fn record_size(key: Option<&[u8]>, payload: usize, headers: &[(&str, &str)]) -> u64 {
    let key = key.map_or(0, <[u8]>::len);
    let headers: u64 = headers
        .iter()
        .map(|(name, value)| header_size(name.len(), value.len()))
        .sum();
    RECORD_FRAMING + key as u64 + payload as u64 + headers
}

/// One serialized record header: its name and value, each after its length
/// as a zigzag varint.
fn header_size(name: usize, value: usize) -> u64 {
    zigzag_varint_len(name) + name as u64 + zigzag_varint_len(value) + value as u64
}

/// Bytes of `n` as a zigzag-encoded signed varint (Kafka's record lengths):
/// a non-negative length doubled, as a varint.
fn zigzag_varint_len(n: usize) -> u64 {
    prost::encoding::encoded_len_varint((n as u64) << 1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_grow_every_seven_bits_of_the_doubled_length() {
        assert_eq!(zigzag_varint_len(0), 1);
        assert_eq!(zigzag_varint_len(63), 1);
        assert_eq!(zigzag_varint_len(64), 2);
        assert_eq!(zigzag_varint_len(8191), 2);
        assert_eq!(zigzag_varint_len(8192), 3);
    }

    #[test]
    fn a_record_counts_framing_key_value_and_headers() {
        assert_eq!(record_size(None, 0, &[]), 36);
        assert_eq!(record_size(Some(b"key"), 10, &[]), 36 + 3 + 10);
        assert_eq!(record_size(None, 0, &[("hookgate-id", "abc")]), 36 + 1 + 11 + 1 + 3);
    }

    #[test]
    fn the_configured_limit_wins_over_the_default() {
        let mut options = BTreeMap::new();
        assert_eq!(message_max_bytes(&options), 1_000_000);
        options.insert(MESSAGE_MAX_BYTES.to_owned(), "2000000".to_owned());
        assert_eq!(message_max_bytes(&options), 2_000_000);
    }
}
