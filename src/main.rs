//! The `hookgate` binary (being wired).
fn main() {}
