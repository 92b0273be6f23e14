//! Connecting to SQLite or PostgreSQL by URL, pool settings, and migrations.

use crate::error::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// The pool of one dialect.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Backend {
    pub fn dialect(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Opens a pool for `url`. `durable` asks SQLite to fsync every commit (used by the event
    /// log, whose commit is the acknowledgement); state tables can rely on the log for replay.
    /// On PostgreSQL, `as_app_role` makes every connection `SET ROLE bitshipper_app` so that
    /// row-level security applies (the state store); the event log, which holds no
    /// tenant-scoped rows and creates its own table, connects as the URL's user.
    pub async fn connect(
        url: &str,
        durable: bool,
        max_connections: u32,
        as_app_role: bool,
    ) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?;
            if let Some(parent) = opts.get_filename().parent() {
                if !parent.as_os_str().is_empty() && !parent.exists() {
                    std::fs::create_dir_all(parent).map_err(|source| StoreError::DataDir {
                        path: parent.display().to_string(),
                        source,
                    })?;
                }
            }
            let opts = opts
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(if durable {
                    SqliteSynchronous::Full
                } else {
                    SqliteSynchronous::Normal
                })
                .foreign_keys(true)
                // Freed pages are zeroed, so erased data does not linger in the file.
                .pragma("secure_delete", "ON")
                .busy_timeout(Duration::from_secs(10))
                .pragma("cache_size", "-32000");
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .min_connections(1)
                .connect_with(opts)
                .await?;
            Ok(Backend::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                // Queries run as a role without ownership, so row-level security applies
                // (until migration 0005 has made the role, the connection keeps its own).
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        use sqlx::Executor;
                        if !as_app_role {
                            return Ok(());
                        }
                        conn.execute(
                            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bitshipper_app') THEN SET ROLE bitshipper_app; END IF; END $$",
                        )
                        .await?;
                        Ok(())
                    })
                })
                // Lazy: the first connection opens after migrations have made the role.
                .connect_lazy_with(opts);
            Ok(Backend::Postgres(pool))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_string()))
        }
    }

    pub async fn close(&self) {
        match self {
            Backend::Sqlite(p) => p.close().await,
            Backend::Postgres(p) => p.close().await,
        }
    }
}

/// The state store: tenants, keys, shipments, events, processor offsets, idempotency records.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) db: Backend,
    /// Where migrations connect: as the URL's own user, which owns the schema.
    pub(crate) url: String,
    pub(crate) vault: Option<std::sync::Arc<crate::personal::Vault>>,
    /// The KPI API's in-memory copy of the rollups (see `kpi_index`).
    pub(crate) kpi_index: std::sync::Arc<crate::kpi_index::KpiIndex>,
}

impl Store {
    /// Connects to `url` (`sqlite://data/bitshipper.db`, `postgres://...`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let max = if url.starts_with("sqlite:") { 4 } else { 16 };
        Ok(Self {
            db: Backend::connect(url, false, max, true).await?,
            url: url.to_string(),
            vault: None,
            kpi_index: Default::default(),
        })
    }

    /// Applies pending migrations of this dialect; returns how many ran.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        match &self.db {
            Backend::Sqlite(pool) => {
                let m = sqlx::migrate!("./migrations/sqlite");
                let before = applied(&self.db).await;
                m.run(pool).await?;
                Ok(applied(&self.db).await.saturating_sub(before))
            }
            Backend::Postgres(_) => {
                // Not through the pool: its connections act as bitshipper_app, which owns
                // nothing. Migrations run as the URL's user.
                use sqlx::Connection;
                let m = sqlx::migrate!("./migrations/postgres");
                let mut conn = sqlx::PgConnection::connect(&self.url).await?;
                let count = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success";
                let before: i64 = sqlx::query_scalar(count)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap_or(0);
                m.run(&mut conn).await?;
                let after: i64 = sqlx::query_scalar(count).fetch_one(&mut conn).await?;
                conn.close().await?;
                Ok(usize::try_from(after - before).unwrap_or(0))
            }
        }
    }

    pub fn backend(&self) -> &Backend {
        &self.db
    }

    pub fn dialect(&self) -> &'static str {
        self.db.dialect()
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        crate::on_pool!(&self.db, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    pub async fn close(&self) {
        self.db.close().await
    }
}

async fn applied(db: &Backend) -> usize {
    let sql = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success";
    let n: Result<i64, _> =
        crate::on_pool!(db, pool => sqlx::query_scalar(sql).fetch_one(pool).await);
    n.map(|n| n as usize).unwrap_or(0)
}

/// The SQLite file that holds the event log beside a state database file: `x.db` → `x-log.db`.
/// The file path of a SQLite URL (`sqlite://data/x.db?mode=rwc` → `data/x.db`); `None` for
/// other databases.
pub fn sqlite_path(url: &str) -> Option<&Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(Path::new(rest.split('?').next().unwrap_or(rest)))
}

pub fn sibling_log_url(sqlite_url: &str) -> String {
    let (path, query) = match sqlite_url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (sqlite_url, None),
    };
    let p = Path::new(path);
    let stem = p
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("bitshipper");
    let ext = p.extension().and_then(|s| s.to_str()).unwrap_or("db");
    let file = format!("{stem}-log.{ext}");
    let parent = path
        .rsplit_once('/')
        .map(|(dir, _)| dir)
        .unwrap_or("sqlite:");
    let mut url = format!("{parent}/{file}");
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// A PostgreSQL transaction scoped for row-level security: to one tenant, or (with `None`) to
/// every tenant, for the paths that must look across them.
pub(crate) async fn scoped_tx(
    pool: &sqlx::PgPool,
    tenant: Option<bitshipper_core::TenantId>,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
    let mut tx = pool.begin().await?;
    match tenant {
        Some(t) => {
            sqlx::query("SELECT set_config('bitshipper.tenant_id', $1, true)")
                .bind(t.0.to_string())
                .execute(&mut *tx)
                .await?;
        }
        None => {
            sqlx::query("SELECT set_config('bitshipper.all_tenants', 'on', true)")
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_lives_beside_the_state_file() {
        assert_eq!(
            sibling_log_url("sqlite://data/bitshipper.db"),
            "sqlite://data/bitshipper-log.db"
        );
        assert_eq!(
            sibling_log_url("sqlite:///tmp/x/s.sqlite?mode=rwc"),
            "sqlite:///tmp/x/s-log.sqlite?mode=rwc"
        );
    }
}
