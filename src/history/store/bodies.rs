//! Bodies kept out of Kafka records (claim check): ingest writes them here,
//! keyed by event id, before it publishes the record; the query API serves
//! them and retention deletes them by receive time. The SQL is the same in
//! both dialects; `body_operations!` expands it inside each store.

/// Idempotent write: a retried store of the same event id keeps the first row.
pub(super) const INSERT: &str = "INSERT INTO bodies (event_id, received_at, sha256, body) \
    VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING";

/// The body of one event.
pub(super) const SELECT: &str = "SELECT body FROM bodies WHERE event_id = $1";

/// Length and digest of one body, without reading it.
pub(super) const SELECT_DIGEST: &str = "SELECT CAST(length(body) AS BIGINT), sha256 FROM bodies WHERE event_id = $1";

/// Deletes at most `$2` of the oldest bodies received before `$1`.
pub(super) const DELETE_OLDER_THAN: &str = "DELETE FROM bodies WHERE event_id IN \
    (SELECT event_id FROM bodies WHERE received_at < $1 ORDER BY received_at LIMIT $2)";

/// What the store knows about a body kept out of the record, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyDigest {
    /// Length in bytes.
    pub length: u64,
    /// SHA-256 of the body.
    pub sha256: Vec<u8>,
}

/// The body operations, expanded inside `impl SqliteStore` and `impl PostgresStore`.
macro_rules! body_operations {
    () => {
        /// Stores a body under its event id (a second write of the same id is a no-op).
        pub(super) async fn put_body(
            &self,
            id: &str,
            received_at: i64,
            sha256: &[u8],
            body: &[u8],
        ) -> Result<(), $crate::history::store::StoreError> {
            sqlx::query($crate::history::store::bodies::INSERT)
                .bind(id)
                .bind(received_at)
                .bind(sha256)
                .bind(body)
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        /// The stored body of an event, if any.
        pub(super) async fn body(&self, id: &str) -> Result<Option<Vec<u8>>, $crate::history::store::StoreError> {
            let row: Option<(Vec<u8>,)> = sqlx::query_as($crate::history::store::bodies::SELECT)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.map(|(body,)| body))
        }

        /// Length and digest of the stored body of an event, if any.
        pub(super) async fn body_digest(
            &self,
            id: &str,
        ) -> Result<Option<$crate::history::store::BodyDigest>, $crate::history::store::StoreError> {
            let row: Option<(i64, Vec<u8>)> = sqlx::query_as($crate::history::store::bodies::SELECT_DIGEST)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.map(|(length, sha256)| $crate::history::store::BodyDigest {
                length: u64::try_from(length).unwrap_or(0),
                sha256,
            }))
        }

        /// Deletes up to `batch` bodies received before `cutoff`.
        pub(super) async fn delete_bodies_older_than(
            &self,
            cutoff: i64,
            batch: u32,
        ) -> Result<u64, $crate::history::store::StoreError> {
            let done = sqlx::query($crate::history::store::bodies::DELETE_OLDER_THAN)
                .bind(cutoff)
                .bind(i64::from(batch))
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
        }
    };
}
pub(super) use body_operations;
