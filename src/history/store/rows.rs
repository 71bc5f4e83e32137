//! Database rows as sqlx decodes them (the same for both dialects), and
//! their conversion to the store's public types.

use super::record::{EventRecord, EventSummary, HeaderEntry, Provenance, VerificationInfo};
use super::StoreError;

/// The summary columns of `events` (see `sql::SUMMARY_COLUMNS`).
#[derive(Debug, sqlx::FromRow)]
pub(super) struct SummaryRow {
    id: String,
    source: String,
    event_type: Option<String>,
    received_at: i64,
    dedup_key: Option<String>,
    verified: bool,
    verification_scheme: String,
    secret_index: i64,
    content_type: String,
    method: String,
    path: String,
    query: String,
    client_addr: String,
    body_size: i64,
    kafka_topic: String,
    kafka_partition: i32,
    kafka_offset: i64,
    indexed_at: i64,
}

/// A complete row: the summary plus headers (JSON text) and body.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct FullRow {
    #[sqlx(flatten)]
    summary: SummaryRow,
    headers: String,
    body: Vec<u8>,
}

impl From<SummaryRow> for EventSummary {
    fn from(row: SummaryRow) -> Self {
        EventSummary {
            id: row.id,
            source: row.source,
            event_type: row.event_type,
            received_at: row.received_at,
            dedup_key: row.dedup_key,
            verification: VerificationInfo {
                scheme: row.verification_scheme,
                verified: row.verified,
                secret_index: u32::try_from(row.secret_index).unwrap_or(0),
            },
            content_type: row.content_type,
            method: row.method,
            path: row.path,
            query: row.query,
            client_addr: row.client_addr,
            body_size: row.body_size,
            provenance: Provenance {
                topic: row.kafka_topic,
                partition: row.kafka_partition,
                offset: row.kafka_offset,
            },
            indexed_at: row.indexed_at,
        }
    }
}

impl TryFrom<FullRow> for EventRecord {
    type Error = StoreError;

    fn try_from(row: FullRow) -> Result<Self, StoreError> {
        let headers: Vec<HeaderEntry> = serde_json::from_str(&row.headers).map_err(|e| StoreError::Corrupt {
            id: row.summary.id.clone(),
            reason: e.to_string(),
        })?;
        Ok(EventRecord {
            summary: row.summary.into(),
            headers,
            body: row.body,
        })
    }
}

/// The JSON text stored in the `headers` column.
pub(super) fn headers_json(headers: &[HeaderEntry]) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".to_owned())
}
