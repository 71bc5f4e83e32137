//! Publishing to Kafka (being written).

mod options;

pub use options::rejected_options;
