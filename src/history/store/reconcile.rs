//! The reconciler's tables (see `crate::reconcile`): a lease per source so
//! that one query replica reconciles it, the actions taken per missing item,
//! and each source's last run. Same SQL in both dialects.

use std::collections::HashSet;

use super::{observe, Store, StoreError};

/// Values per `IN (...)` list, well below both databases' bind limits.
pub(super) const CHUNK: usize = 500;

/// Takes or renews `$1` for holder `$2` until `$3`, unless another holder's lease runs past `$4` (now).
pub(super) const ACQUIRE_LEASE: &str = "INSERT INTO reconcile_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
    WHERE reconcile_leases.holder = excluded.holder OR reconcile_leases.expires_at < $4";
/// Gives up a lease held by `$2`.
pub(super) const RELEASE_LEASE: &str = "DELETE FROM reconcile_leases WHERE name = $1 AND holder = $2";
/// Remembers an action on an item.
pub(super) const RECORD_ACTION: &str = "INSERT INTO reconcile_actions (source, item, action, acted_at) \
    VALUES ($1, $2, $3, $4) ON CONFLICT (source, item) DO UPDATE SET action = excluded.action, acted_at = excluded.acted_at";
/// Forgets actions older than the lookback.
pub(super) const FORGET_ACTIONS: &str = "DELETE FROM reconcile_actions WHERE source = $1 AND acted_at < $2";
/// Stores a source's last run.
pub(super) const SAVE_RUN: &str = "INSERT INTO reconcile_runs (source, report, finished_at) VALUES ($1, $2, $3) \
    ON CONFLICT (source) DO UPDATE SET report = excluded.report, finished_at = excluded.finished_at";
/// Every source's last run.
pub(super) const RUNS: &str = "SELECT source, report FROM reconcile_runs ORDER BY source";

/// `SELECT {column} FROM {table} WHERE source = $1 {extra} AND {column} IN ($N..)` for `count` values after `first` fixed ones.
pub(super) fn select_in(column: &str, table: &str, extra: &str, first: usize, count: usize) -> String {
    let marks: Vec<String> = (first + 1..=first + count).map(|n| format!("${n}")).collect();
    format!(
        "SELECT {column} FROM {table} WHERE source = $1 {extra} AND {column} IN ({})",
        marks.join(", ")
    )
}

/// The reconciler's operations, expanded inside `impl SqliteStore` and `impl PostgresStore`.
macro_rules! reconcile_operations {
    () => {
        /// Runs a statement binding text and integer values in order; returns the rows it changed.
        pub(super) async fn reconcile_execute(
            &self,
            sql: &str,
            texts: &[&str],
            ints: &[i64],
        ) -> Result<u64, $crate::history::store::StoreError> {
            let mut query = sqlx::query(sql);
            for text in texts {
                query = query.bind(*text);
            }
            for int in ints {
                query = query.bind(*int);
            }
            Ok(query.execute(&self.pool).await?.rows_affected())
        }

        /// Runs a query of `(text, values...)` returning one text column.
        pub(super) async fn reconcile_texts(
            &self,
            sql: &str,
            first: &str,
            int: Option<i64>,
            values: &[String],
        ) -> Result<Vec<String>, $crate::history::store::StoreError> {
            let mut query = sqlx::query_scalar::<_, String>(sql).bind(first);
            if let Some(int) = int {
                query = query.bind(int);
            }
            for value in values {
                query = query.bind(value.as_str());
            }
            Ok(query.fetch_all(&self.pool).await?)
        }

        /// Every `(source, report)` of the runs table.
        pub(super) async fn reconcile_runs(&self) -> Result<Vec<(String, String)>, $crate::history::store::StoreError> {
            let sql = $crate::history::store::reconcile::RUNS;
            Ok(sqlx::query_as::<_, (String, String)>(sql)
                .fetch_all(&self.pool)
                .await?)
        }
    };
}
pub(super) use reconcile_operations;

impl Store {
    async fn execute(&self, sql: &str, texts: &[&str], ints: &[i64]) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.reconcile_execute(sql, texts, ints).await,
            Store::Postgres(s) => s.reconcile_execute(sql, texts, ints).await,
        }
    }

    async fn texts(
        &self,
        sql: &str,
        first: &str,
        int: Option<i64>,
        values: &[String],
    ) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Sqlite(s) => s.reconcile_texts(sql, first, int, values).await,
            Store::Postgres(s) => s.reconcile_texts(sql, first, int, values).await,
        }
    }

    /// Takes or renews the lease `name` for `holder` until `until` (µs); false while another holder's lease runs.
    pub async fn acquire_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> Result<bool, StoreError> {
        let changed = self.execute(ACQUIRE_LEASE, &[name, holder], &[until, now]).await;
        observe("lease", changed).map(|rows| rows == 1)
    }

    /// Gives up the lease `name` if `holder` has it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        observe("lease", self.execute(RELEASE_LEASE, &[name, holder], &[]).await).map(drop)
    }

    /// Those of `keys` that some stored event of `source` has as its dedup key.
    pub async fn present_dedup_keys(&self, source: &str, keys: &[String]) -> Result<HashSet<String>, StoreError> {
        let mut present = HashSet::new();
        for chunk in keys.chunks(CHUNK) {
            let sql = select_in("dedup_key", "events", "", 1, chunk.len());
            present.extend(observe("reconcile", self.texts(&sql, source, None, chunk).await)?);
        }
        Ok(present)
    }

    /// Those of `items` of `source` acted on at or after `since` (µs).
    pub async fn acted_on(&self, source: &str, items: &[String], since: i64) -> Result<HashSet<String>, StoreError> {
        let mut acted = HashSet::new();
        for chunk in items.chunks(CHUNK) {
            let sql = select_in("item", "reconcile_actions", "AND acted_at >= $2", 2, chunk.len());
            acted.extend(observe(
                "reconcile",
                self.texts(&sql, source, Some(since), chunk).await,
            )?);
        }
        Ok(acted)
    }

    /// Remembers that `action` was taken on `item` of `source` at `at` (µs).
    pub async fn record_action(&self, source: &str, item: &str, action: &str, at: i64) -> Result<(), StoreError> {
        observe(
            "reconcile",
            self.execute(RECORD_ACTION, &[source, item, action], &[at]).await,
        )
        .map(drop)
    }

    /// Forgets the actions on `source` taken before `cutoff` (µs).
    pub async fn forget_actions(&self, source: &str, cutoff: i64) -> Result<(), StoreError> {
        observe("reconcile", self.execute(FORGET_ACTIONS, &[source], &[cutoff]).await).map(drop)
    }

    /// Stores the report (JSON) of the last run of `source`.
    pub async fn save_run(&self, source: &str, report: &str, at: i64) -> Result<(), StoreError> {
        observe("reconcile", self.execute(SAVE_RUN, &[source, report], &[at]).await).map(drop)
    }

    /// The last run report (JSON) of every reconciled source, by source.
    pub async fn reconcile_runs(&self) -> Result<Vec<(String, String)>, StoreError> {
        let result = match self {
            Store::Sqlite(s) => s.reconcile_runs().await,
            Store::Postgres(s) => s.reconcile_runs().await,
        };
        observe("reconcile", result)
    }
}
