//! Tenants: one shipper's account.

use crate::{on_pool, Store, StoreError};
use bitshipper_core::TenantId;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl Store {
    pub async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        let tenant = Tenant {
            id: TenantId::new(),
            name: name.trim().to_string(),
            created_at: now(),
        };
        on_pool!(&self.db, pool => {
            sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(tenant.id.0)
                .bind(&tenant.name)
                .bind(tenant.created_at)
                .execute(pool)
                .await?;
        });
        Ok(tenant)
    }

    pub async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        let row: Option<(uuid::Uuid, String, DateTime<Utc>)> = on_pool!(&self.db, pool => {
            sqlx::query_as("SELECT id, name, created_at FROM tenants WHERE id = $1")
                .bind(id.0)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(id, name, created_at)| Tenant {
            id: TenantId(id),
            name,
            created_at,
        }))
    }
}

/// Current time truncated to microseconds, the precision both dialects store.
pub(crate) fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}
