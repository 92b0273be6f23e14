//! The warehouse: DataFusion over the lake's Delta tables, through views scoped to one tenant
//! by construction (a session sees only `events`, `shipments`, `shipments_current` and
//! `predictions`, each already filtered to the tenant), read-only SQL for operators, and the
//! KPI queries behind `/v1/analytics/`.

use crate::location::LakeLocation;
use crate::rows::{TableSpec, EVENTS, PREDICTIONS, SHIPMENTS};
use crate::table::LakeTable;
use crate::LakeError;
use bitshipper_core::TenantId;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::datasource::TableProvider;
use deltalake::datafusion::execution::runtime_env::RuntimeEnv;
use deltalake::datafusion::execution::SendableRecordBatchStream;
use deltalake::datafusion::prelude::{col, lit, SQLOptions, SessionConfig, SessionContext};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Table snapshots are re-read at most this often.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// The current row of each shipment: the one written at the highest log position.
const SHIPMENTS_CURRENT: &str = "CREATE VIEW shipments_current AS
    SELECT * EXCEPT (row_rank) FROM (
        SELECT *, ROW_NUMBER() OVER (PARTITION BY shipment_id ORDER BY log_seq DESC) AS row_rank
        FROM shipments) ranked
    WHERE row_rank = 1";

struct Snapshot {
    read_at: Instant,
    tables: Vec<LakeTable>,
}

/// Opens sessions over the lake. Cheap to share; table snapshots are cached for a second.
pub struct Warehouse {
    location: LakeLocation,
    snapshot: Mutex<Option<Snapshot>>,
    /// DataFusion's settings: its defaults, then any `DATAFUSION_*` environment variable.
    config: SessionConfig,
    /// One runtime for every session, so caches (Parquet footers, listings) are shared.
    runtime: Arc<RuntimeEnv>,
    /// Each tenant's session for the table versions it was built on: planning a query then
    /// costs no provider or view set-up while the tables stay unchanged.
    sessions: std::sync::Mutex<HashMap<TenantId, CachedSession>>,
}

/// Sessions kept at most (the least recently used goes first).
const SESSIONS_KEPT: usize = 64;

struct CachedSession {
    versions: Vec<Option<u64>>,
    ctx: SessionContext,
    used: Instant,
}

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warehouse")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// DataFusion's defaults, overridden by `DATAFUSION_*` environment variables (e.g.
/// `DATAFUSION_EXECUTION_TARGET_PARTITIONS=8`); unreadable ones are reported and ignored.
fn session_config() -> SessionConfig {
    SessionConfig::from_env()
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "ignoring unreadable DATAFUSION_* settings");
            SessionConfig::new()
        })
        .with_information_schema(false)
}

const SPECS: [&LazyTable; 3] = [&EVENTS, &SHIPMENTS, &PREDICTIONS];
type LazyTable = std::sync::LazyLock<TableSpec>;

impl Warehouse {
    pub fn new(location: LakeLocation) -> Self {
        Warehouse {
            location,
            snapshot: Mutex::new(None),
            config: session_config(),
            runtime: Arc::new(RuntimeEnv::default()),
            sessions: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn location(&self) -> &LakeLocation {
        &self.location
    }

    async fn tables(&self) -> Result<Vec<LakeTable>, LakeError> {
        let mut guard = self.snapshot.lock().await;
        if let Some(s) = guard.as_mut() {
            if s.read_at.elapsed() < REFRESH_EVERY && s.tables.len() == SPECS.len() {
                return Ok(s.tables.clone());
            }
            if s.tables.len() == SPECS.len() {
                for t in &mut s.tables {
                    t.refresh().await?;
                }
                s.read_at = Instant::now();
                return Ok(s.tables.clone());
            }
        }
        let mut tables = Vec::with_capacity(SPECS.len());
        for spec in SPECS {
            // A table not yet written is created empty, so queries work on a new lake.
            tables.push(LakeTable::open_or_create(&self.location, spec).await?);
        }
        *guard = Some(Snapshot {
            read_at: Instant::now(),
            tables: tables.clone(),
        });
        Ok(tables)
    }

    /// A session whose only tables are the tenant's views (shared by the tenant's queries
    /// while the tables are unchanged: read-only SQL cannot alter it).
    pub async fn session(&self, tenant: TenantId) -> Result<SessionContext, LakeError> {
        let tables = self.tables().await?;
        let versions: Vec<Option<u64>> = tables.iter().map(|t| t.delta().version()).collect();
        if let Some(cached) = self.cached_sessions().get_mut(&tenant) {
            if cached.versions == versions {
                cached.used = Instant::now();
                return Ok(cached.ctx.clone());
            }
        }
        let ctx = Self::build_session(
            SessionContext::new_with_config_rt(self.config.clone(), self.runtime.clone()),
            tenant,
            tables,
        )
        .await?;
        let mut sessions = self.cached_sessions();
        if sessions.len() >= SESSIONS_KEPT {
            if let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.used).map(|(t, _)| *t) {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            tenant,
            CachedSession {
                versions,
                ctx: ctx.clone(),
                used: Instant::now(),
            },
        );
        Ok(ctx)
    }

    fn cached_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, CachedSession>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn build_session(
        ctx: SessionContext,
        tenant: TenantId,
        tables: Vec<LakeTable>,
    ) -> Result<SessionContext, LakeError> {
        let tenant = tenant.0.to_string();
        for table in tables {
            table.delta().update_datafusion_session(&ctx.state())?;
            let provider: Arc<dyn TableProvider> = table.delta().table_provider().await?;
            let scoped = ctx
                .read_table(provider)?
                .filter(col("tenant_id").eq(lit(tenant.clone())))?;
            ctx.register_table(table.spec.name, scoped.into_view())?;
        }
        ctx.sql(SHIPMENTS_CURRENT).await?;
        Ok(ctx)
    }

    /// Runs one read-only statement (no DDL, no DML, no `SET`) in the tenant's session.
    pub async fn query(
        &self,
        tenant: TenantId,
        sql: &str,
    ) -> Result<SendableRecordBatchStream, LakeError> {
        let ctx = self.session(tenant).await?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let df = ctx.sql_with_options(sql, options).await?;
        Ok(df.execute_stream().await?)
    }

    /// Like [`query`](Self::query), collected.
    pub async fn query_all(
        &self,
        tenant: TenantId,
        sql: &str,
    ) -> Result<Vec<RecordBatch>, LakeError> {
        use futures::TryStreamExt;
        let stream = self.query(tenant, sql).await?;
        Ok(stream.try_collect().await?)
    }
}
