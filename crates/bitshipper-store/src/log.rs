//! The embedded event log: an append-only table whose commit is the durable acknowledgement of
//! ingested events. On SQLite it is a file of its own beside the state database (fsync on every
//! commit; its writer never waits on state writes); on PostgreSQL a table in the same database.

use crate::backend::sibling_log_url;
use crate::tenants::now;
use crate::{on_pool, Backend, StoreError};
use bitshipper_core::TenantId;
use uuid::Uuid;

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

const SQLITE_DDL: &str = "CREATE TABLE IF NOT EXISTS event_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BLOB NOT NULL,
    appended_at TEXT NOT NULL,
    payload TEXT NOT NULL)";
const POSTGRES_DDL: &str = "CREATE TABLE IF NOT EXISTS event_log (
    seq BIGSERIAL PRIMARY KEY,
    tenant_id UUID NOT NULL,
    appended_at TIMESTAMPTZ NOT NULL,
    payload TEXT NOT NULL)";

/// Serializes appenders on PostgreSQL so sequence order equals commit order and a tailing
/// reader never skips a row that commits late.
const APPEND_LOCK_ID: i64 = 0x0062_6974_7368_6970;

impl EventLog {
    /// Opens the log that belongs to the state database at `state_url`.
    pub async fn open(state_url: &str) -> Result<Self, StoreError> {
        let url = if state_url.starts_with("sqlite:") {
            sibling_log_url(state_url)
        } else {
            state_url.to_string()
        };
        let db = Backend::connect(&url, true, 4).await?;
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
        let at = now();
        match &self.db {
            Backend::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let mut seqs = Vec::with_capacity(entries.len());
                for (tenant, payload) in entries {
                    let seq: i64 = sqlx::query_scalar(
                        "INSERT INTO event_log (tenant_id, appended_at, payload) VALUES ($1, $2, $3) RETURNING seq",
                    )
                    .bind(tenant.0)
                    .bind(at)
                    .bind(payload)
                    .fetch_one(&mut *tx)
                    .await?;
                    seqs.push(seq);
                }
                tx.commit().await?;
                Ok(seqs)
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(APPEND_LOCK_ID)
                    .execute(&mut *tx)
                    .await?;
                let tenants: Vec<Uuid> = entries.iter().map(|(t, _)| t.0).collect();
                let payloads: Vec<&str> = entries.iter().map(|(_, p)| p.as_str()).collect();
                let seqs: Vec<i64> = sqlx::query_scalar(
                    "INSERT INTO event_log (tenant_id, appended_at, payload)
                     SELECT t, $2, p FROM UNNEST($1::uuid[], $3::text[]) WITH ORDINALITY AS x(t, p, n)
                     ORDER BY n RETURNING seq",
                )
                .bind(&tenants)
                .bind(at)
                .bind(&payloads)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                let mut seqs = seqs;
                seqs.sort_unstable();
                Ok(seqs)
            }
        }
    }

    /// Up to `limit` entries after `after`, in order.
    pub async fn read_after(&self, after: i64, limit: u32) -> Result<Vec<LogEntry>, StoreError> {
        let rows: Vec<(i64, Uuid, String)> = on_pool!(&self.db, pool => {
            sqlx::query_as("SELECT seq, tenant_id, payload FROM event_log WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(seq, tenant, payload)| LogEntry {
                seq,
                tenant_id: TenantId(tenant),
                payload,
            })
            .collect())
    }

    /// The last sequence number written (0 for an empty log).
    pub async fn head(&self) -> Result<i64, StoreError> {
        let head: Option<i64> = on_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT MAX(seq) FROM event_log").fetch_one(pool).await?
        });
        Ok(head.unwrap_or(0))
    }

    pub async fn close(&self) {
        self.db.close().await
    }
}
