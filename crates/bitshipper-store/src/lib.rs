//! BitShipper persistence: one `Store` over SQLite (embedded default) or PostgreSQL (scaled),
//! chosen by URL, with per-dialect migrations and tenant-scoped repositories. Every repository
//! call that touches tenant data takes a `TenantId`; the one exception is API-key
//! authentication, which is how a tenant is found in the first place.

pub mod audit;
mod backend;
mod error;
pub mod idempotency;
pub mod keys;
pub mod log;
pub mod personal;
pub mod processing;
pub mod shipments;
pub mod tenants;
pub mod testing;
pub mod users;
pub mod vault;

pub use audit::{AuditEntry, AuditRecord, ChainCheck};
pub use backend::{Backend, Store};
pub use error::StoreError;
pub use idempotency::IdempotencyBegin;
pub use keys::{ApiKey, ApiKeyAuth, CreatedApiKey};
pub use log::{EventLog, LogEntry};
pub use personal::{ErasureReport, RecipientSelector, RotationReport};
pub use processing::ApplyOutcome;
pub use shipments::{Shipment, ShipmentFilter, StoredEvent};
pub use tenants::Tenant;
pub use users::{Invitation, NewSession, SessionAuth, User, UserCredentials};
pub use vault::{DataKey, KeyProvider, LocalKeyProvider, WrappedKey};

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
