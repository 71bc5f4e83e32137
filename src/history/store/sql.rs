//! SQL shared by both stores. Statements use `$N` placeholders, which sqlx
//! accepts for SQLite as well as PostgreSQL, so only the DDL (migrations)
//! and the pool set-up differ between the two dialects.

use super::search;
use super::{EventFilter, Position};

/// The SQL dialect of a store: the few conditions that differ (payload search).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Which way a scan walks the (received_at, id) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Newest first (lists, export).
    NewestFirst,
    /// Oldest first (bulk replay).
    OldestFirst,
}

/// What a scan selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Columns {
    /// The summary columns.
    Summary,
    /// The summary columns, headers and body.
    Full,
}

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

/// The page query: in `order` by (received_at, id), strictly after
/// `after` in that order, at most `limit` rows, summary or full rows. Each
/// filter adds one condition that the indexes on (column, received_at, id)
/// can serve.
pub(super) fn scan(
    dialect: Dialect,
    columns: Columns,
    order: Order,
    filter: &EventFilter,
    after: Option<&Position>,
    limit: u32,
) -> Statement {
    let mut st = Statement {
        sql: String::new(),
        params: Vec::new(),
    };
    let mut conditions = conditions(dialect, filter, &mut st);
    if let Some(after) = after {
        let at = st.bind(Param::Int(after.received_at));
        let id = st.bind(Param::Text(after.id.clone()));
        let (op, _) = order.sql();
        conditions.push(format!("(received_at, id) {op} ({at}, {id})"));
    }
    let limit = st.bind(Param::Int(i64::from(limit)));
    let select = match columns {
        Columns::Summary => SUMMARY_COLUMNS.to_owned(),
        Columns::Full => format!("{SUMMARY_COLUMNS}, headers, body"),
    };
    let (_, direction) = order.sql();
    st.sql = format!(
        "SELECT {select} FROM events{} ORDER BY received_at {direction}, id {direction} LIMIT {limit}",
        where_clause(&conditions)
    );
    st
}

/// How many events match `filter`.
pub(super) fn count(dialect: Dialect, filter: &EventFilter) -> Statement {
    let mut st = Statement {
        sql: String::new(),
        params: Vec::new(),
    };
    let conditions = conditions(dialect, filter, &mut st);
    st.sql = format!("SELECT COUNT(*) FROM events{}", where_clause(&conditions));
    st
}

impl Order {
    /// The cursor comparison and the sort direction.
    fn sql(self) -> (&'static str, &'static str) {
        match self {
            Order::NewestFirst => ("<", "DESC"),
            Order::OldestFirst => (">", "ASC"),
        }
    }
}

fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    }
}

/// One condition per filter, binding its values into `st`.
fn conditions(dialect: Dialect, filter: &EventFilter, st: &mut Statement) -> Vec<String> {
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
    for json in &filter.json {
        let value = st.bind(Param::Text(json.value.clone()));
        conditions.push(format!("{} = {value}", json.pointer.value_sql(dialect)));
    }
    if let Some(text) = &filter.text {
        let query = st.bind(Param::Text(search::text_query(dialect, text)));
        conditions.push(search::text_condition(dialect, &query));
    }
    conditions
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

        /// Runs a scan of complete rows.
        pub(super) async fn list_full(
            &self,
            statement: &$crate::history::store::sql::Statement,
        ) -> Result<Vec<$crate::history::store::EventRecord>, $crate::history::store::StoreError> {
            use $crate::history::store::{rows::FullRow, sql, EventRecord};
            let query = sql::bind_params!(sqlx::query_as::<_, FullRow>(&statement.sql), &statement.params);
            let rows = query.fetch_all(&self.pool).await?;
            rows.into_iter().map(EventRecord::try_from).collect()
        }

        /// Runs a count.
        pub(super) async fn count(
            &self,
            statement: &$crate::history::store::sql::Statement,
        ) -> Result<u64, $crate::history::store::StoreError> {
            use $crate::history::store::sql;
            let query = sql::bind_params!(sqlx::query_scalar::<_, i64>(&statement.sql), &statement.params);
            let count = query.fetch_one(&self.pool).await?;
            Ok(u64::try_from(count).unwrap_or(0))
        }

        /// Events received at or after `since` (µs), per source.
        pub(super) async fn count_by_source(
            &self,
            since: i64,
        ) -> Result<Vec<(String, i64)>, $crate::history::store::StoreError> {
            let sql = "SELECT source, COUNT(*) FROM events WHERE received_at >= $1 GROUP BY source ORDER BY source";
            let rows = sqlx::query_as::<_, (String, i64)>(sql)
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows)
        }

        /// Runs one statement without results (DDL).
        pub(super) async fn execute(&self, statement: &str) -> Result<(), $crate::history::store::StoreError> {
            sqlx::raw_sql(statement).execute(&self.pool).await?;
            Ok(())
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
    use crate::history::store::{JsonMatch, JsonPointer};

    fn list(filter: &EventFilter, after: Option<&Position>, limit: u32) -> Statement {
        scan(
            Dialect::Sqlite,
            Columns::Summary,
            Order::NewestFirst,
            filter,
            after,
            limit,
        )
    }

    #[test]
    fn payload_filters_follow_the_others_and_bind_their_values() {
        let filter = EventFilter {
            event_type: Some("charge".into()),
            json: vec![JsonMatch {
                pointer: JsonPointer::parse("/customer").unwrap(),
                value: "cus_1".into(),
            }],
            text: Some("refund".into()),
            ..Default::default()
        };
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let st = scan(dialect, Columns::Full, Order::OldestFirst, &filter, None, 5);
            assert!(st.sql.contains("headers, body FROM events"), "{}", st.sql);
            assert!(
                st.sql.ends_with("ORDER BY received_at ASC, id ASC LIMIT $4"),
                "{}",
                st.sql
            );
            assert_eq!(
                st.params[1..3],
                [
                    Param::Text("cus_1".into()),
                    Param::Text(search::text_query(dialect, "refund"))
                ]
            );
        }
        let counted = count(Dialect::Postgres, &filter);
        assert!(counted.sql.starts_with("SELECT COUNT(*) FROM events WHERE event_type = $1 AND hookgate_json_value(body, '{\"customer\"}'::text[]) = $2"), "{}", counted.sql);
    }

    #[test]
    fn an_empty_filter_orders_and_limits_only() {
        let st = list(&EventFilter::default(), None, 10);
        assert!(st.sql.starts_with("SELECT id, "), "{}", st.sql);
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
