//! Fresh databases for tests: a SQLite file in a temporary directory, or a new PostgreSQL
//! database on the server named by `BITSHIPPER_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`).

use crate::{Store, StoreError};
use bitshipper_core::TenantId;
use sqlx::Connection;

pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database URL of the given backend. Databases are named `bs_test_*` so a test
/// run can drop leftovers of earlier runs.
pub async fn fresh_database_url(backend: TestBackend) -> Result<String, StoreError> {
    let name = format!("bs_test_{}", uuid::Uuid::new_v4().simple());
    match backend {
        TestBackend::Sqlite => {
            let dir = std::env::temp_dir().join("bitshipper-tests").join(&name);
            std::fs::create_dir_all(&dir).map_err(|source| StoreError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
            Ok(format!("sqlite://{}/state.db", dir.display()))
        }
        TestBackend::Postgres => {
            let admin = std::env::var("BITSHIPPER_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string());
            let mut conn = sqlx::PgConnection::connect(&admin).await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            let (base, _) = admin.rsplit_once('/').unwrap_or((admin.as_str(), ""));
            Ok(format!("{base}/{name}"))
        }
    }
}

/// Everything the database holds, as raw bytes, for tests that look for leaked plaintext: for
/// SQLite every file in the database's directory (database, write-ahead log, event log); for
/// PostgreSQL every row of every table in the public schema as text (byte columns as hex, so a
/// test should look for the hex form of a secret as well).
pub async fn raw_dump(database_url: &str) -> Result<Vec<u8>, StoreError> {
    if let Some(path) = crate::sqlite_path(database_url) {
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        let io = |source| StoreError::DataDir {
            path: dir.display().to_string(),
            source,
        };
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            if entry.file_type().map_err(io)?.is_file() {
                out.extend(std::fs::read(entry.path()).map_err(io)?);
            }
        }
        return Ok(out);
    }
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut conn)
    .await?;
    let mut out = Vec::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
            .fetch_all(&mut conn)
            .await?;
        for row in rows {
            out.extend(row.into_bytes());
            out.push(b'\n');
        }
    }
    conn.close().await?;
    Ok(out)
}

/// Whether `haystack` holds `needle` as plain bytes or as lower-case hex (how PostgreSQL prints
/// byte columns).
pub fn contains_plain_or_hex(haystack: &[u8], needle: &str) -> bool {
    let hex_needle = hex::encode(needle.as_bytes());
    [needle.as_bytes(), hex_needle.as_bytes()]
        .iter()
        .any(|n| haystack.windows(n.len()).any(|w| w == *n))
}

/// The key-encryption key file tests use for a database: one per database, outside the source
/// tree, so a restarted application (or a CLI run) on the same database finds the same keys.
pub fn key_file_for(database_url: &str) -> std::path::PathBuf {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(database_url.as_bytes()));
    std::env::temp_dir()
        .join("bitshipper-tests")
        .join("keys")
        .join(format!("{}.json", &digest[..24]))
}

/// Makes a tenant look as if its shipments were applied before rollups existed (migration
/// 0010): no rollups, no remembered contributions. For rebuild tests.
pub async fn forget_rollups(store: &Store, tenant: TenantId) -> Result<(), StoreError> {
    crate::on_tenant!(store, tenant, pool => {
        let mut tx = sqlx::Acquire::begin(pool).await?;
        for sql in [
            "DELETE FROM kpi_rollups WHERE tenant_id = $1",
            "DELETE FROM kpi_transit_hours WHERE tenant_id = $1",
            "UPDATE shipments SET kpi_contribution = NULL WHERE tenant_id = $1",
        ] {
            sqlx::query(sql).bind(tenant.0).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(())
}
