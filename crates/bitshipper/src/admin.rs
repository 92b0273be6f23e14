//! Administrative actions shared by the CLI and tests: creating tenants and API keys.

use bitshipper_core::{ApiKeyId, Scope, TenantId};
use bitshipper_store::{AuditRecord, CreatedApiKey, Store, Tenant};
use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("tenant name must be 1 to 200 characters")]
    InvalidName,
    #[error("no tenant with id {0}")]
    UnknownTenant(TenantId),
    #[error("no active api key {0} in this tenant")]
    UnknownKey(ApiKeyId),
    #[error(transparent)]
    Store(#[from] bitshipper_store::StoreError),
}

/// Creates a tenant and its first key, with the `admin` scope.
pub async fn create_tenant(
    store: &Store,
    name: &str,
) -> Result<(Tenant, CreatedApiKey), AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AdminError::InvalidName);
    }
    let tenant = store.create_tenant(name).await?;
    let key = store
        .create_api_key(tenant.id, "initial admin key", &[Scope::Admin], None)
        .await?;
    store
        .audit(
            tenant.id,
            AuditRecord {
                actor: "cli".into(),
                action: "tenant.created".into(),
                target: format!("tenant:{}", tenant.id),
                details: serde_json::json!({"name": tenant.name}),
            },
        )
        .await?;
    store
        .audit(
            tenant.id,
            AuditRecord::api_key_created("cli".into(), &key.key),
        )
        .await?;
    Ok((tenant, key))
}

/// Creates a key for an existing tenant.
pub async fn create_key(
    store: &Store,
    tenant: TenantId,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<DateTime<Utc>>,
) -> Result<CreatedApiKey, AdminError> {
    if store.get_tenant(tenant).await?.is_none() {
        return Err(AdminError::UnknownTenant(tenant));
    }
    let key = store
        .create_api_key(tenant, name, scopes, expires_at)
        .await?;
    store
        .audit(tenant, AuditRecord::api_key_created("cli".into(), &key.key))
        .await?;
    Ok(key)
}

/// Revokes a key of a tenant and records it in the audit log.
pub async fn revoke_key(store: &Store, tenant: TenantId, id: ApiKeyId) -> Result<(), AdminError> {
    if !store.revoke_api_key(tenant, id).await? {
        return Err(AdminError::UnknownKey(id));
    }
    store
        .audit(tenant, AuditRecord::api_key_revoked("cli".into(), id))
        .await?;
    Ok(())
}
