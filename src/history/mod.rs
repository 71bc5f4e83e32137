//! History (being written).
