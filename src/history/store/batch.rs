//! The indexer's write path: a batch of events becomes a few multi-row
//! statements inside the caller's one transaction, instead of one statement
//! per event. Both dialects insert with `ON CONFLICT (id) DO NOTHING
//! RETURNING id`, so an id already stored (a re-read after a restart, a
//! replay) keeps its first row, and the returned ids tell which events were
//! new.
//!
//! - PostgreSQL: one `INSERT ... SELECT * FROM UNNEST($1::text[], ...)` per
//!   batch: 20 array parameters whatever the batch size, so one prepared
//!   statement serves every batch.
//! - SQLite: `INSERT ... VALUES (?, ...), (?, ...)` in chunks whose sizes are
//!   powers of two up to [`SQLITE_MAX_ROWS`], so a batch of any size needs at
//!   most a handful of statements and the statement cache holds at most
//!   nine shapes.

use std::collections::HashSet;

use sqlx::{Postgres, Sqlite, Transaction};

use super::rows::headers_json;
use super::{EventRecord, StoreError};

/// Columns written per event, in bind order.
const COLUMNS: &str = "id, source, event_type, received_at, dedup_key, verified, verification_scheme, \
    secret_index, content_type, method, path, query, client_addr, headers, body, body_size, kafka_topic, \
    kafka_partition, kafka_offset, indexed_at";
/// Values per row (the length of [`COLUMNS`]).
const COLUMN_COUNT: usize = 20;
/// Most rows in one SQLite statement (20 values each, far below SQLite's
/// limit of 32,766 bound values).
const SQLITE_MAX_ROWS: usize = 256;

/// Per record, whether its id was among `returned` (the ids the database
/// inserted). A second record with the same id in one batch was not new:
/// the first occurrence takes the id.
fn mark_new(records: &[EventRecord], mut returned: HashSet<String>) -> Vec<bool> {
    records.iter().map(|r| returned.remove(&r.summary.id)).collect()
}

/// Inserts `records` in `tx` (PostgreSQL); per record, whether it was new.
pub(super) async fn insert_postgres(
    tx: &mut Transaction<'static, Postgres>,
    records: &[EventRecord],
) -> Result<Vec<bool>, StoreError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let statement = format!(
        "INSERT INTO events ({COLUMNS}) SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], \
         $5::text[], $6::bool[], $7::text[], $8::int8[], $9::text[], $10::text[], $11::text[], $12::text[], \
         $13::text[], $14::text[], $15::bytea[], $16::int8[], $17::text[], $18::int4[], $19::int8[], $20::int8[]) \
         ON CONFLICT (id) DO NOTHING RETURNING id"
    );
    let summaries = || records.iter().map(|r| &r.summary);
    let headers: Vec<String> = records.iter().map(|r| headers_json(&r.headers)).collect();
    let returned: Vec<String> = sqlx::query_scalar(&statement)
        .bind(summaries().map(|s| s.id.as_str()).collect::<Vec<_>>())
        .bind(summaries().map(|s| s.source.as_str()).collect::<Vec<_>>())
        .bind(summaries().map(|s| s.event_type.as_deref()).collect::<Vec<_>>())
        .bind(summaries().map(|s| s.received_at).collect::<Vec<_>>())
        .bind(summaries().map(|s| s.dedup_key.as_deref()).collect::<Vec<_>>())
        .bind(summaries().map(|s| s.verification.verified).collect::<Vec<_>>())
        .bind(summaries().map(|s| s.verification.scheme.as_str()).collect::<Vec<_>>())
        .bind(
            summaries()
                .map(|s| i64::from(s.verification.secret_index))
                .collect::<Vec<_>>(),
        )
        .bind(summaries().map(|s| s.content_type.as_str()).collect::<Vec<_>>())
        .bind(summaries().map(|s| s.method.as_str()).collect::<Vec<_>>())
        .bind(summaries().map(|s| s.path.as_str()).collect::<Vec<_>>())
        .bind(summaries().map(|s| s.query.as_str()).collect::<Vec<_>>())
        .bind(summaries().map(|s| s.client_addr.as_str()).collect::<Vec<_>>())
        .bind(&headers)
        .bind(records.iter().map(|r| r.body.as_slice()).collect::<Vec<_>>())
        .bind(summaries().map(|s| s.body_size).collect::<Vec<_>>())
        .bind(summaries().map(|s| s.provenance.topic.as_str()).collect::<Vec<_>>())
        .bind(summaries().map(|s| s.provenance.partition).collect::<Vec<_>>())
        .bind(summaries().map(|s| s.provenance.offset).collect::<Vec<_>>())
        .bind(summaries().map(|s| s.indexed_at).collect::<Vec<_>>())
        .fetch_all(&mut **tx)
        .await?;
    Ok(mark_new(records, returned.into_iter().collect()))
}

/// Inserts `records` in `tx` (SQLite); per record, whether it was new.
pub(super) async fn insert_sqlite(
    tx: &mut Transaction<'static, Sqlite>,
    records: &[EventRecord],
) -> Result<Vec<bool>, StoreError> {
    let mut returned = HashSet::with_capacity(records.len());
    let mut rest = records;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(sqlite_chunk(rest.len()));
        returned.extend(insert_sqlite_chunk(tx, chunk).await?);
        rest = tail;
    }
    Ok(mark_new(records, returned))
}

/// The largest power of two not above `remaining` and [`SQLITE_MAX_ROWS`].
fn sqlite_chunk(remaining: usize) -> usize {
    let below = 1usize << (usize::BITS - 1 - remaining.leading_zeros());
    below.min(SQLITE_MAX_ROWS)
}

/// One multi-row statement; returns the ids it inserted.
async fn insert_sqlite_chunk(
    tx: &mut Transaction<'static, Sqlite>,
    chunk: &[EventRecord],
) -> Result<Vec<String>, StoreError> {
    let statement = sqlite_insert(chunk.len());
    let headers: Vec<String> = chunk.iter().map(|r| headers_json(&r.headers)).collect();
    let mut query = sqlx::query_scalar::<_, String>(&statement);
    for (record, headers) in chunk.iter().zip(headers) {
        query = bind_sqlite_row(query, record, headers);
    }
    Ok(query.fetch_all(&mut **tx).await?)
}

/// `INSERT ... VALUES` for `rows` rows of anonymous `?` parameters, bound
/// in order. Not `$N`: to bind a statement, sqlx asks SQLite for each
/// parameter's name, and SQLite finds a numbered parameter's name by a
/// linear walk of its list of names, so binding the 5,120 values of a
/// 256-row statement by number took quadratic time (half of the store-write
/// stage's CPU); an anonymous parameter has no name to look up.
fn sqlite_insert(rows: usize) -> String {
    let row = format!("({})", vec!["?"; COLUMN_COUNT].join(", "));
    format!(
        "INSERT INTO events ({COLUMNS}) VALUES {} ON CONFLICT (id) DO NOTHING RETURNING id",
        vec![row; rows].join(", ")
    )
}

/// A SQLite query with bind values.
type SqliteQuery<'q> = sqlx::query::QueryScalar<'q, Sqlite, String, sqlx::sqlite::SqliteArguments<'q>>;

/// Binds one row's 20 values in [`COLUMNS`] order.
fn bind_sqlite_row<'q>(query: SqliteQuery<'q>, record: &'q EventRecord, headers: String) -> SqliteQuery<'q> {
    let s = &record.summary;
    query
        .bind(s.id.as_str())
        .bind(s.source.as_str())
        .bind(s.event_type.as_deref())
        .bind(s.received_at)
        .bind(s.dedup_key.as_deref())
        .bind(s.verification.verified)
        .bind(s.verification.scheme.as_str())
        .bind(i64::from(s.verification.secret_index))
        .bind(s.content_type.as_str())
        .bind(s.method.as_str())
        .bind(s.path.as_str())
        .bind(s.query.as_str())
        .bind(s.client_addr.as_str())
        .bind(headers)
        .bind(record.body.as_slice())
        .bind(s.body_size)
        .bind(s.provenance.topic.as_str())
        .bind(s.provenance.partition)
        .bind(s.provenance.offset)
        .bind(s.indexed_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_up_to_the_limit() {
        assert_eq!(sqlite_chunk(1), 1);
        assert_eq!(sqlite_chunk(3), 2);
        assert_eq!(sqlite_chunk(255), 128);
        assert_eq!(sqlite_chunk(256), 256);
        assert_eq!(sqlite_chunk(500), 256);
        assert_eq!(sqlite_chunk(100_000), SQLITE_MAX_ROWS);
    }

    #[test]
    fn a_multi_row_statement_has_a_parameter_per_value() {
        let sql = sqlite_insert(2);
        assert_eq!(COLUMNS.split(", ").count(), COLUMN_COUNT);
        assert_eq!(sql.matches('?').count(), 2 * COLUMN_COUNT, "{sql}");
        assert!(sql.contains("?), (?,"), "{sql}");
        assert!(sql.ends_with("?) ON CONFLICT (id) DO NOTHING RETURNING id"), "{sql}");
    }
}
