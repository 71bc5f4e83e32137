//! App wiring (being written).
