//! Claim check for a source's `large_bodies`: a body above the source's
//! threshold is written to the history store under the event id before the
//! record is published (and so before any 2xx), and the record carries a
//! [`BodyRef`] instead of the body. A write that fails or outlasts the
//! deadline is a 503 `store_unavailable`, and nothing is published.

use std::time::Instant;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::error::IngestError;
use crate::envelope::{body_location, BodyRef};
use crate::history::Store;
use crate::telemetry::names;

/// Writes `body` to `store` as the body of event `id`, received at
/// `received_at` (µs), by `deadline`; returns the reference for the record.
pub(super) async fn stash(
    store: &Store,
    source: &str,
    id: &str,
    received_at: i64,
    body: Bytes,
    deadline: Instant,
) -> Result<BodyRef, IngestError> {
    let length = body.len() as u64;
    let write = async {
        // Hashing tens of megabytes takes a while: keep it off the request threads.
        let (sha256, body) = tokio::task::spawn_blocking(move || (Sha256::digest(&body).to_vec(), body))
            .await
            .map_err(|error| error.to_string())?;
        store
            .put_body(id, received_at, &sha256, &body)
            .await
            .map_err(|error| error.to_string())?;
        Ok::<_, String>(sha256)
    };
    let sha256 = match tokio::time::timeout_at(deadline.into(), write).await {
        Ok(Ok(sha256)) => sha256,
        Ok(Err(error)) => {
            tracing::warn!(%source, %id, %error, "large body not stored; answering 503");
            return Err(IngestError::BodyStoreUnavailable);
        }
        Err(_) => {
            tracing::warn!(%source, %id, "large body not stored before the deadline; answering 503");
            return Err(IngestError::BodyStoreUnavailable);
        }
    };
    metrics::counter!(names::LARGE_BODIES_STORED, "source" => source.to_owned()).increment(1);
    Ok(BodyRef {
        length,
        sha256: sha256.into(),
        location: body_location(id),
    })
}
