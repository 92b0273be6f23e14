//! Fresh databases for tests: a SQLite file in a temporary directory, or a new PostgreSQL
//! database on the server named by `BITSHIPPER_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`).

use crate::StoreError;
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
