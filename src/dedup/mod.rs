//! Deduplication (being written).
