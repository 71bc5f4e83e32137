//! Signature verification (being written).
use crate::config::SourceConfig;
/// A configuration problem.
#[derive(Debug)]
pub struct ConfigProblem { /// key
pub key: String, /// message
pub message: String }
/// Verifier.
#[derive(Debug)]
pub struct Verifier;
impl Verifier {
    /// Builds.
    pub fn from_source(_source: &SourceConfig) -> Result<Self, ConfigProblem> { Ok(Verifier) }
}
