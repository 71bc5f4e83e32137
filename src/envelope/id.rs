//! Gateway-assigned event ids: UUIDv7, so that ids sort by the time the
//! webhook was received.

use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

/// A new event id for a webhook received now.
pub fn new_event_id() -> Uuid {
    new_event_id_at(SystemTime::now())
}

/// The event id of a webhook received at `received`: a UUIDv7 whose 48-bit
/// prefix is that millisecond and whose other 74 bits are random. Within one
/// millisecond the envelope's microsecond receive time orders events.
pub fn new_event_id_at(received: SystemTime) -> Uuid {
    let since_epoch = received.duration_since(UNIX_EPOCH).unwrap_or_default();
    let timestamp = uuid::Timestamp::from_unix(uuid::NoContext, since_epoch.as_secs(), since_epoch.subsec_nanos());
    Uuid::new_v7(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn event_ids_carry_their_receive_millisecond_and_differ_within_it() {
        let received = UNIX_EPOCH + Duration::new(1_790_000_000, 123_456_789);
        let (first, second) = (new_event_id_at(received), new_event_id_at(received));
        assert_eq!(first.get_version(), Some(uuid::Version::SortRand));
        let (seconds, nanos) = first.get_timestamp().expect("a v7 id has a timestamp").to_unix();
        assert_eq!((seconds, nanos), (1_790_000_000, 123_000_000));
        assert_ne!(first, second);
        let later = new_event_id_at(received + Duration::from_millis(1));
        assert!(later > first && later > second, "ids of a later millisecond sort after");
    }

    #[test]
    fn event_ids_are_v7_unique_and_ordered_by_millisecond() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let ids: Vec<Uuid> = (0..100_000).map(|_| new_event_id()).collect();
        let millisecond = |id: &Uuid| id.as_u128() >> 80;
        assert!(
            ids.windows(2)
                .all(|pair| millisecond(&pair[0]) <= millisecond(&pair[1])),
            "ids sort by the millisecond they were made in"
        );
        let distinct: std::collections::HashSet<&Uuid> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "no id repeats");
        assert!(ids
            .iter()
            .all(|id| id.get_version_num() == 7 && id.get_variant() == uuid::Variant::RFC4122));
        let (secs, nanos) = ids[0].get_timestamp().unwrap().to_unix();
        let millis = secs * 1000 + u64::from(nanos) / 1_000_000;
        assert!(millis >= before && millis < before + 5_000, "{millis} vs {before}");
        let random: std::collections::HashSet<u32> = ids
            .iter()
            .map(|id| u32::from_be_bytes(id.as_bytes()[12..16].try_into().unwrap()))
            .collect();
        assert!(random.len() > 99_000, "the low bits are random");
    }
}
