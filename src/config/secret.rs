//! Secrets from configuration: `env:NAME`, `file:PATH` or a literal value,
//! resolved once at load time and never printed (`Debug` shows `[redacted]`).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};

/// A resolved secret. Cloning is cheap; the bytes are shared.
#[derive(Clone)]
pub struct Secret {
    /// The secret material, exactly as resolved (file contents are trimmed of a trailing newline).
    bytes: Arc<[u8]>,
    /// Where the value came from, safe to print: "env:NAME", "file:PATH" or "literal".
    origin: Arc<str>,
}

/// Why a secret reference could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// `env:NAME` names a variable that is not set or not UTF-8.
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    /// `file:PATH` could not be read.
    #[error("cannot read secret file {path}: {source}")]
    File {
        /// The path as written in the configuration.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The reference resolved to nothing.
    #[error("secret is empty")]
    Empty,
}

impl Secret {
    /// Resolves a reference as written in the configuration.
    pub fn resolve(reference: &str) -> Result<Self, SecretError> {
        let (bytes, origin): (Vec<u8>, String) = if let Some(name) = reference.strip_prefix("env:") {
            let value = std::env::var(name).map_err(|_| SecretError::MissingEnv(name.to_owned()))?;
            (value.into_bytes(), reference.to_owned())
        } else if let Some(path) = reference.strip_prefix("file:") {
            let raw = std::fs::read(path).map_err(|source| SecretError::File {
                path: path.to_owned(),
                source,
            })?;
            (trim_trailing_newline(raw), reference.to_owned())
        } else {
            (reference.as_bytes().to_vec(), "literal".to_owned())
        };
        if bytes.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Self {
            bytes: bytes.into(),
            origin: origin.into(),
        })
    }

    /// Builds a secret from raw bytes (tests, benchmarks, `hookgate send`).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            bytes: bytes.into().into(),
            origin: "literal".into(),
        }
    }

    /// The secret material. Callers must not log it.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// True when the value was written literally in the configuration file.
    pub fn is_literal(&self) -> bool {
        &*self.origin == "literal"
    }

    /// Where the value came from, safe to show in messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

fn trim_trailing_newline(mut raw: Vec<u8>) -> Vec<u8> {
    while matches!(raw.last(), Some(b'\n' | b'\r')) {
        raw.pop();
    }
    raw
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}, [redacted])", self.origin)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let reference = String::deserialize(deserializer)?;
        Secret::resolve(&reference).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::resolve("hunter2-very-secret").unwrap();
        let shown = format!("{secret:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(secret.is_literal());
    }

    #[test]
    fn env_reference_resolves_and_missing_env_is_an_error() {
        std::env::set_var("HOOKGATE_TEST_SECRET_RESOLVE", "abc");
        let secret = Secret::resolve("env:HOOKGATE_TEST_SECRET_RESOLVE").unwrap();
        assert_eq!(secret.expose(), b"abc");
        assert_eq!(secret.origin(), "env:HOOKGATE_TEST_SECRET_RESOLVE");
        let err = Secret::resolve("env:HOOKGATE_TEST_SECRET_SURELY_UNSET").unwrap_err();
        assert!(err.to_string().contains("HOOKGATE_TEST_SECRET_SURELY_UNSET"));
    }

    #[test]
    fn file_reference_is_trimmed_and_unreadable_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "xyz\n").unwrap();
        let secret = Secret::resolve(&format!("file:{}", path.display())).unwrap();
        assert_eq!(secret.expose(), b"xyz");
        assert!(Secret::resolve("file:/nonexistent/hookgate-secret").is_err());
        assert!(matches!(
            Secret::resolve("env:HOOKGATE_EMPTY_SECRET_X").unwrap_err(),
            SecretError::MissingEnv(_)
        ));
    }
}
