//! SQL shared by both stores. Statements use `$N` placeholders, which sqlx
//! accepts for SQLite as well as PostgreSQL, so only the DDL (migrations)
//! and the pool set-up differ between the two dialects.

use super::{EventFilter, Position};

/// Columns of a summary, in [`SummaryRow`](super::rows::SummaryRow) order.
pub(super) const SUMMARY_COLUMNS: &str = "id, source, event_type, received_at, dedup_key, verified, \
    verification_scheme, secret_index, content_type, method, path, query, client_addr, body_size, \
    kafka_topic, kafka_partition, kafka_offset, indexed_at";

/// Summaries of the given ids (`$1..$N`), in no particular order.
pub(super) fn select_summaries(count: usize) -> String {
    let marks: Vec<String> = (1..=count).map(|n| format!("${n}")).collect();
    format!(
        "SELECT {SUMMARY_COLUMNS} FROM events WHERE id IN ({})",
        marks.join(", ")
    )
}

/// One complete row by id.
pub(super) fn select_one() -> String {
    format!("SELECT {SUMMARY_COLUMNS}, headers, body FROM events WHERE id = $1")
}

/// Deletes at most `$2` of the oldest events received before `$1`.
pub(super) const DELETE_OLDER_THAN: &str = "DELETE FROM events WHERE id IN \
    (SELECT id FROM events WHERE received_at < $1 ORDER BY received_at LIMIT $2)";

/// A bind value of a dynamically built statement.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Param {
    /// A text value.
    Text(String),
    /// An integer value.
    Int(i64),
    /// A boolean value.
    Bool(bool),
}

/// A statement with its bind values in placeholder order.
#[derive(Debug)]
pub(super) struct Statement {
    /// SQL text with `$1..$N`.
    pub(super) sql: String,
    /// Values for `$1..$N`.
    pub(super) params: Vec<Param>,
}

impl Statement {
    /// Adds a bind value and returns its placeholder.
    fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }
}

/// The page query: newest first by (received_at, id), strictly after
/// `after` in that order, at most `limit` rows. Each filter adds one
/// condition that the indexes on (column, received_at, id) can serve.
pub(super) fn list(filter: &EventFilter, after: Option<&Position>, limit: u32) -> Statement {
    let mut st = Statement {
        sql: String::new(),
        params: Vec::new(),
    };
    let mut conditions: Vec<String> = Vec::new();
    match &filter.sources {
        None => {}
        Some(sources) if sources.is_empty() => conditions.push("1 = 0".into()),
        Some(sources) if sources.len() == 1 => {
            conditions.push(format!("source = {}", st.bind(Param::Text(sources[0].clone()))))
        }
        Some(sources) => {
            let marks: Vec<String> = sources.iter().map(|s| st.bind(Param::Text(s.clone()))).collect();
            conditions.push(format!("source IN ({})", marks.join(", ")));
        }
    }
    if let Some(t) = &filter.event_type {
        conditions.push(format!("event_type = {}", st.bind(Param::Text(t.clone()))));
    }
    if let Some(since) = filter.since {
        conditions.push(format!("received_at >= {}", st.bind(Param::Int(since))));
    }
    if let Some(until) = filter.until {
        conditions.push(format!("received_at < {}", st.bind(Param::Int(until))));
    }
    if let Some(key) = &filter.dedup_key {
        conditions.push(format!("dedup_key = {}", st.bind(Param::Text(key.clone()))));
    }
    if let Some(verified) = filter.verified {
        conditions.push(format!("verified = {}", st.bind(Param::Bool(verified))));
    }
    if let Some(after) = after {
        let at = st.bind(Param::Int(after.received_at));
        let id = st.bind(Param::Text(after.id.clone()));
        conditions.push(format!("(received_at, id) < ({at}, {id})"));
    }
    let limit = st.bind(Param::Int(i64::from(limit)));
    let filter_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    st.sql =
        format!("SELECT {SUMMARY_COLUMNS} FROM events{filter_sql} ORDER BY received_at DESC, id DESC LIMIT {limit}");
    st
}

/// Binds the values of a [`Statement`] in order.
macro_rules! bind_params {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                $crate::history::store::sql::Param::Text(v) => query.bind(v.as_str()),
                $crate::history::store::sql::Param::Int(v) => query.bind(*v),
                $crate::history::store::sql::Param::Bool(v) => query.bind(*v),
            };
        }
        query
    }};
}
pub(super) use bind_params;

/// The operations whose SQL and binding are the same in both dialects,
/// expanded inside `impl SqliteStore` and `impl PostgresStore` (each has a
/// `pool` field) with the dialect's database type.
macro_rules! common_operations {
    ($db:ty) => {
        /// Runs a page query.
        pub(super) async fn list(
            &self,
            statement: &$crate::history::store::sql::Statement,
        ) -> Result<Vec<$crate::history::store::EventSummary>, $crate::history::store::StoreError> {
            use $crate::history::store::{rows::SummaryRow, sql, EventSummary};
            let query = sql::bind_params!(sqlx::query_as::<_, SummaryRow>(&statement.sql), &statement.params);
            let rows = query.fetch_all(&self.pool).await?;
            Ok(rows.into_iter().map(EventSummary::from).collect())
        }

        /// One complete row by id.
        pub(super) async fn get(
            &self,
            id: &str,
        ) -> Result<Option<$crate::history::store::EventRecord>, $crate::history::store::StoreError> {
            use $crate::history::store::{rows::FullRow, sql, EventRecord};
            let row = sqlx::query_as::<_, FullRow>(&sql::select_one())
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            row.map(EventRecord::try_from).transpose()
        }

        /// Deletes up to `batch` events received before `cutoff`.
        pub(super) async fn delete_older_than(
            &self,
            cutoff: i64,
            batch: u32,
        ) -> Result<u64, $crate::history::store::StoreError> {
            let statement = $crate::history::store::sql::DELETE_OLDER_THAN;
            let done = sqlx::query(statement)
                .bind(cutoff)
                .bind(i64::from(batch))
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
        }

        /// Runs `SELECT 1`.
        pub(super) async fn ping(&self) -> Result<(), $crate::history::store::StoreError> {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        }

        /// Closes the pool.
        pub(super) async fn close(&self) {
            self.pool.close().await;
        }
    };
}
pub(super) use common_operations;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_filter_orders_and_limits_only() {
        let st = list(&EventFilter::default(), None, 10);
        assert!(
            st.sql
                .ends_with("FROM events ORDER BY received_at DESC, id DESC LIMIT $1"),
            "{}",
            st.sql
        );
        assert_eq!(st.params, vec![Param::Int(10)]);
    }

    #[test]
    fn filters_and_cursor_bind_in_placeholder_order() {
        let filter = EventFilter {
            sources: Some(vec!["a".into(), "b".into()]),
            event_type: Some("push".into()),
            verified: Some(true),
            ..Default::default()
        };
        let after = Position {
            received_at: 5,
            id: "x".into(),
        };
        let st = list(&filter, Some(&after), 3);
        assert!(
            st.sql
                .contains("source IN ($1, $2) AND event_type = $3 AND verified = $4 AND (received_at, id) < ($5, $6)"),
            "{}",
            st.sql
        );
        assert_eq!(st.params.len(), 7);
    }

    #[test]
    fn an_empty_source_allow_list_matches_nothing() {
        let filter = EventFilter {
            sources: Some(vec![]),
            ..Default::default()
        };
        assert!(list(&filter, None, 1).sql.contains("1 = 0"));
    }
}
