//! Cross-tenant probes: whether an id a tenant asked for and did not find belongs to another
//! tenant. Used only to count such attempts for the security dashboards; the answer to the
//! caller is the same 404 either way.

use crate::{on_all_tenants, Store, StoreError};
use bitshipper_core::TenantId;
use uuid::Uuid;

/// A resource addressed by id in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Shipment,
    ApiKey,
    User,
}

impl Resource {
    pub fn as_str(&self) -> &'static str {
        match self {
            Resource::Shipment => "shipment",
            Resource::ApiKey => "api_key", // pragma: allowlist secret (a resource name)
            Resource::User => "user",
        }
    }

    fn table(&self) -> &'static str {
        match self {
            Resource::Shipment => "shipments",
            Resource::ApiKey => "api_keys", // pragma: allowlist secret (a table name)
            Resource::User => "users",
        }
    }
}

impl Store {
    /// True when `id` exists but belongs to a tenant other than `asking`.
    pub async fn belongs_to_another_tenant(
        &self,
        resource: Resource,
        id: Uuid,
        asking: TenantId,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM {} WHERE id = $1 AND tenant_id <> $2",
            resource.table()
        );
        let n: i64 = on_all_tenants!(self, pool => {
            sqlx::query_scalar(&sql).bind(id).bind(asking.0).fetch_one(pool).await?
        });
        Ok(n > 0)
    }
}
