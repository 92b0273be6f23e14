//! API keys: random secrets shown once, stored as SHA-256 hashes, scoped, expirable, revocable.

use crate::tenants::now;
use crate::{on_all_tenants, on_tenant, Store, StoreError};
use base64::Engine;
use bitshipper_core::scope::{parse_scopes, Scope};
use bitshipper_core::{ApiKeyId, TenantId};
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const KEY_PREFIX: &str = "bsk_live_";
/// How many characters of the secret are kept in clear to recognize a key in listings.
const VISIBLE_PREFIX_LEN: usize = KEY_PREFIX.len() + 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key just created: the only time its secret exists outside the caller's hands.
#[derive(Debug)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: String,
}

/// Who a presented secret belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyAuth {
    pub key_id: ApiKeyId,
    pub tenant_id: TenantId,
    pub scopes: Vec<Scope>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Uuid,
    tenant_id: Uuid,
    name: String,
    prefix: String,
    scopes: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<KeyRow> for ApiKey {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> Result<Self, StoreError> {
        Ok(ApiKey {
            id: ApiKeyId(r.id),
            tenant_id: TenantId(r.tenant_id),
            name: r.name,
            prefix: r.prefix,
            scopes: parse_scopes(&r.scopes).map_err(StoreError::corrupt)?,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        })
    }
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn scopes_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(Scope::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

const KEY_COLUMNS: &str =
    "id, tenant_id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at";

impl Store {
    pub async fn create_api_key(
        &self,
        tenant: TenantId,
        name: &str,
        scopes: &[Scope],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<CreatedApiKey, StoreError> {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let secret = format!(
            "{KEY_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        let key = ApiKey {
            id: ApiKeyId::new(),
            tenant_id: tenant,
            name: name.to_string(),
            prefix: secret[..VISIBLE_PREFIX_LEN].to_string(),
            scopes: scopes.to_vec(),
            created_at: now(),
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        on_tenant!(self, tenant, pool => {
            sqlx::query(
                "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(key.id.0)
            .bind(tenant.0)
            .bind(&key.name)
            .bind(&key.prefix)
            .bind(hash_secret(&secret))
            .bind(scopes_text(scopes))
            .bind(key.created_at)
            .bind(key.expires_at)
            .execute(pool)
            .await?;
        });
        Ok(CreatedApiKey { key, secret })
    }

    pub async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY id");
        let rows: Vec<KeyRow> = on_tenant!(self, tenant, pool => {
            sqlx::query_as(&sql).bind(tenant.0).fetch_all(pool).await?
        });
        rows.into_iter().map(ApiKey::try_from).collect()
    }

    pub async fn get_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
    ) -> Result<Option<ApiKey>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2");
        let row: Option<KeyRow> = on_tenant!(self, tenant, pool => {
            sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
        });
        row.map(ApiKey::try_from).transpose()
    }

    /// Revokes a key of `tenant`; false when no such key (or already revoked).
    pub async fn revoke_api_key(&self, tenant: TenantId, id: ApiKeyId) -> Result<bool, StoreError> {
        let done = on_tenant!(self, tenant, pool => {
            sqlx::query(
                "UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(now())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Finds the live (not revoked, not expired) key with this secret. Unscoped by design: it
    /// is how the tenant is learned.
    pub async fn authenticate_api_key(
        &self,
        secret: &str,
    ) -> Result<Option<ApiKeyAuth>, StoreError> {
        if !secret.starts_with(KEY_PREFIX) || secret.len() > 128 {
            return Ok(None);
        }
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1");
        let row: Option<KeyRow> = on_all_tenants!(self, pool => {
            sqlx::query_as(&sql).bind(hash_secret(secret)).fetch_optional(pool).await?
        });
        let Some(key) = row.map(ApiKey::try_from).transpose()? else {
            return Ok(None);
        };
        let now = Utc::now();
        if key.revoked_at.is_some() || key.expires_at.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        Ok(Some(ApiKeyAuth {
            key_id: key.id,
            tenant_id: key.tenant_id,
            scopes: key.scopes,
            last_used_at: key.last_used_at,
            expires_at: key.expires_at,
        }))
    }

    /// Records use of a key. Callers throttle this so reads do not turn into writes.
    pub async fn touch_api_key(&self, tenant: TenantId, id: ApiKeyId) -> Result<(), StoreError> {
        on_tenant!(self, tenant, pool => {
            sqlx::query("UPDATE api_keys SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .bind(now())
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
