//! The Kafka record around an envelope: its routing headers (so consumers
//! can route without decoding) and its key, chosen the same way by ingest
//! and replay.

use crate::config::RecordKey;

/// Record header carrying the event id.
pub const HEADER_ID: &str = "hookgate-id";
/// Record header carrying the source name.
pub const HEADER_SOURCE: &str = "hookgate-source";
/// Record header carrying the event type (absent when unknown).
pub const HEADER_EVENT_TYPE: &str = "hookgate-event-type";
/// Record header present (value "true") on records published by a replay.
pub const HEADER_REPLAY: &str = "hookgate-replay";
/// Record header naming the schema of the value.
pub const HEADER_SCHEMA: &str = "hookgate-schema";
/// Value of [`HEADER_SCHEMA`].
pub const SCHEMA: &str = "hookgate.v1.WebhookEnvelope";

/// The record headers of an event: id, source, schema, the event type when
/// known and the replay mark when set, as (name, value) pairs.
pub fn record_headers<'a>(
    id: &'a str,
    source: &'a str,
    event_type: &'a str,
    replay: bool,
) -> Vec<(&'static str, &'a str)> {
    let mut headers = vec![(HEADER_ID, id), (HEADER_SOURCE, source), (HEADER_SCHEMA, SCHEMA)];
    if !event_type.is_empty() {
        headers.push((HEADER_EVENT_TYPE, event_type));
    }
    if replay {
        headers.push((HEADER_REPLAY, "true"));
    }
    headers
}

/// The record key of an event as the source's `key` setting asks: its id,
/// its dedup key (the id when it has none), or no key at all.
pub fn record_key<'a>(setting: &RecordKey, id: &'a str, dedup_key: &'a str) -> Option<&'a [u8]> {
    match setting {
        RecordKey::Id => Some(id.as_bytes()),
        RecordKey::DedupKey if !dedup_key.is_empty() => Some(dedup_key.as_bytes()),
        RecordKey::DedupKey => Some(id.as_bytes()),
        RecordKey::None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_and_event_type_show_only_when_set() {
        let plain = record_headers("i", "s", "", false);
        assert_eq!(plain, [(HEADER_ID, "i"), (HEADER_SOURCE, "s"), (HEADER_SCHEMA, SCHEMA)]);
        let full = record_headers("i", "s", "t", true);
        assert!(full.contains(&(HEADER_EVENT_TYPE, "t")));
        assert!(full.contains(&(HEADER_REPLAY, "true")));
    }

    #[test]
    fn the_key_follows_the_setting_and_falls_back_to_the_id() {
        assert_eq!(record_key(&RecordKey::Id, "i", "d"), Some(&b"i"[..]));
        assert_eq!(record_key(&RecordKey::DedupKey, "i", "d"), Some(&b"d"[..]));
        assert_eq!(record_key(&RecordKey::DedupKey, "i", ""), Some(&b"i"[..]));
        assert_eq!(record_key(&RecordKey::None, "i", "d"), None);
    }
}
