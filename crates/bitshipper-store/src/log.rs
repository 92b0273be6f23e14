//! The embedded event log: an append-only table whose commit is the durable acknowledgement of
//! ingested events. On SQLite it is a file of its own beside the state database (fsync on every
//! commit; its writer never waits on state writes); on PostgreSQL a table in the same database.
//!
//! Each append (one group commit of many requests) is stored as **one record** holding its
//! events as lines of `tenant-id <TAB> event-json`, numbered `first_seq ..= first_seq + count - 1`.
//! Every event still has its own sequence number, and a reader may stop inside a record; but a
//! commit costs one row, not one row per event.

use crate::backend::sibling_log_url;
use crate::tenants::now;
use crate::{on_pool, Backend, StoreError};
use bitshipper_core::TenantId;

/// One record of the log: a normalized event of one tenant, as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub seq: i64,
    pub tenant_id: TenantId,
    pub payload: String,
}

#[derive(Clone, Debug)]
pub struct EventLog {
    db: Backend,
}

const SQLITE_DDL: &str = "CREATE TABLE IF NOT EXISTS log_records (
    first_seq INTEGER PRIMARY KEY,
    event_count INTEGER NOT NULL,
    appended_at TEXT NOT NULL,
    payload TEXT NOT NULL)";
const POSTGRES_DDL: &str = "CREATE TABLE IF NOT EXISTS log_records (
    first_seq BIGINT PRIMARY KEY,
    event_count INTEGER NOT NULL,
    appended_at TIMESTAMPTZ NOT NULL,
    payload TEXT NOT NULL)";

/// Serializes appenders on PostgreSQL so sequence numbers are assigned in commit order and a
/// tailing reader never skips a record that commits late.
const APPEND_LOCK_ID: i64 = 0x0062_6974_7368_6970;

const NEXT_SEQ: &str = "SELECT COALESCE(MAX(first_seq + event_count), 1) FROM log_records";

impl EventLog {
    /// Opens the log that belongs to the state database at `state_url`.
    pub async fn open(state_url: &str) -> Result<Self, StoreError> {
        let url = if state_url.starts_with("sqlite:") {
            sibling_log_url(state_url)
        } else {
            state_url.to_string()
        };
        let db = Backend::connect(&url, true, 4, false).await?;
        match &db {
            Backend::Sqlite(pool) => {
                sqlx::query(SQLITE_DDL).execute(pool).await?;
            }
            Backend::Postgres(pool) => {
                sqlx::query(POSTGRES_DDL).execute(pool).await?;
            }
        }
        Ok(Self { db })
    }

    /// Appends entries in one transaction (one fsync) and returns their sequence numbers.
    pub async fn append(&self, entries: &[(TenantId, String)]) -> Result<Vec<i64>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut payload = String::with_capacity(entries.iter().map(|(_, p)| p.len() + 38).sum());
        for (tenant, event) in entries {
            if event.contains('\n') {
                return Err(StoreError::corrupt("log payloads must be single-line JSON"));
            }
            payload.push_str(&tenant.0.to_string());
            payload.push('\t');
            payload.push_str(event);
            payload.push('\n');
        }
        let count = i32::try_from(entries.len()).map_err(StoreError::corrupt)?;
        let at = now();
        let first: i64 = on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            if matches!(self.db, Backend::Postgres(_)) {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(APPEND_LOCK_ID)
                    .execute(&mut *tx)
                    .await?;
            }
            let first: i64 = sqlx::query_scalar(NEXT_SEQ).fetch_one(&mut *tx).await?;
            sqlx::query("INSERT INTO log_records (first_seq, event_count, appended_at, payload) VALUES ($1, $2, $3, $4)")
                .bind(first)
                .bind(count)
                .bind(at)
                .bind(&payload)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            first
        });
        Ok((first..first + i64::from(count)).collect())
    }

    /// Up to `limit` entries after `after`, in order.
    pub async fn read_after(&self, after: i64, limit: u32) -> Result<Vec<LogEntry>, StoreError> {
        // Start at the record holding `after + 1`; whole records are read, then trimmed.
        let sql = "SELECT first_seq, payload FROM log_records
                   WHERE first_seq >= COALESCE((SELECT MAX(first_seq) FROM log_records WHERE first_seq <= $1), 0)
                   ORDER BY first_seq LIMIT $2";
        let limit_usize = limit as usize;
        let mut out = Vec::with_capacity(limit_usize.min(100_000));
        let mut cursor = after;
        // Records are fetched a few at a time until `limit` events are gathered.
        loop {
            let rows: Vec<(i64, String)> = on_pool!(&self.db, pool => {
                sqlx::query_as(sql).bind(cursor + 1).bind(8_i64).fetch_all(pool).await?
            });
            if rows.is_empty() {
                break;
            }
            let before = out.len();
            for (first, payload) in &rows {
                for (i, line) in payload.lines().enumerate() {
                    let seq = first + i as i64;
                    if seq <= cursor {
                        continue;
                    }
                    let (tenant, event) = line.split_once('\t').ok_or_else(|| {
                        StoreError::corrupt(format!("log record {first} line {i}"))
                    })?;
                    let tenant = tenant.parse().map_err(StoreError::corrupt)?;
                    out.push(LogEntry {
                        seq,
                        tenant_id: TenantId(tenant),
                        payload: event.to_string(),
                    });
                    if out.len() >= limit_usize {
                        return Ok(out);
                    }
                }
            }
            match out.last() {
                Some(last) if out.len() > before => cursor = last.seq,
                _ => break,
            }
        }
        Ok(out)
    }

    /// The last sequence number written (0 for an empty log).
    pub async fn head(&self) -> Result<i64, StoreError> {
        let next: i64 = on_pool!(&self.db, pool => {
            sqlx::query_scalar(NEXT_SEQ).fetch_one(pool).await?
        });
        Ok(next - 1)
    }

    /// Deletes records whose every event is at or below `applied_through` (applied by every
    /// consumer) and that were appended before `older_than`. The newest record always stays, as
    /// it carries the next sequence number.
    pub async fn prune(
        &self,
        applied_through: i64,
        older_than: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        let sql =
            "DELETE FROM log_records WHERE first_seq + event_count - 1 <= $1 AND appended_at < $2
                   AND first_seq < (SELECT MAX(first_seq) FROM log_records)";
        let n = on_pool!(&self.db, pool => {
            sqlx::query(sql)
                .bind(applied_through)
                .bind(older_than)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    }

    pub async fn close(&self) {
        self.db.close().await
    }
}
