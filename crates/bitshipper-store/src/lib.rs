//! BitShipper persistence: one `Store` over SQLite (embedded default) or PostgreSQL (scaled),
//! chosen by URL, with per-dialect migrations and tenant-scoped repositories. Every repository
//! call that touches tenant data takes a `TenantId`; the one exception is API-key
//! authentication, which is how a tenant is found in the first place.

pub mod audit;
pub(crate) mod backend;
mod error;
pub mod idempotency;
pub mod integrations;
pub mod keys;
mod kpi_index;
pub mod lake;
pub mod log;
pub mod personal;
pub mod predictions;
pub mod probes;
pub mod processing;
pub mod retention;
pub mod rollups;
pub mod shipments;
pub mod tenants;
pub mod testing;
pub mod users;
pub mod vault;

pub use audit::{AuditEntry, AuditRecord, ChainCheck};
pub use backend::{sqlite_path, Backend, Store};
pub use error::StoreError;
pub use idempotency::IdempotencyBegin;
pub use integrations::{EndpointSecret, RawPayload, WebhookEndpoint};
pub use keys::{ApiKey, ApiKeyAuth, CreatedApiKey};
pub use kpi_index::COMMIT_OVERLAP as KPI_COMMIT_OVERLAP;
pub use lake::{LakePrediction, LakeSealer, LakeShipment};
pub use log::{EventLog, LogEntry};
pub use personal::{ErasureReport, RecipientSelector, RotationReport};
pub use predictions::{
    DeliveredPrediction, ModelInfo, NewModel, PredictionWrite, ScoringInput, StoredPrediction,
};
pub use processing::ApplyOutcome;
pub use retention::{RetentionPolicy, RetentionReport};
pub use shipments::{Shipment, ShipmentFilter, StoredEvent};
pub use tenants::Tenant;
pub use users::{Invitation, NewSession, SessionAuth, User, UserCredentials};
pub use vault::{
    AwsCredentials, AwsKmsKeyProvider, DataKey, KeyProvider, LocalKeyProvider, WrappedKey,
};

/// Runs `$body` for one tenant. On PostgreSQL it runs in a transaction that sets
/// `bitshipper.tenant_id`, which row-level security checks; `$pool` is then the transaction's
/// connection (use it once: start a nested transaction with `$pool.begin()` for more).
#[macro_export]
#[doc(hidden)]
macro_rules! on_tenant {
    ($store:expr, $tenant:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres(pg) => {
                let mut scoped = $crate::backend::scoped_tx(pg, Some($tenant)).await?;
                #[allow(unused_mut)]
                let out = {
                    let $pool = &mut *scoped;
                    $body
                };
                scoped.commit().await?;
                out
            }
        }
    };
}

/// Like `on_tenant!` for the few paths that must see every tenant (authentication lookups,
/// the processor, key rotation): sets `bitshipper.all_tenants` instead.
#[macro_export]
#[doc(hidden)]
macro_rules! on_all_tenants {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres(pg) => {
                let mut scoped = $crate::backend::scoped_tx(pg, None).await?;
                let out = {
                    let $pool = &mut *scoped;
                    $body
                };
                scoped.commit().await?;
                out
            }
        }
    };
}

/// Runs the same code against whichever pool the backend holds. Query text is shared: both
/// dialects accept `$N` placeholders (sqlx's SQLite driver maps them to argument positions).
#[macro_export]
#[doc(hidden)]
macro_rules! on_pool {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}
