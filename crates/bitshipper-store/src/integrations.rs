//! Provider connections: webhook endpoints (each with its own secret, sealed under the tenant
//! key) and the raw payloads providers sent, gzip-compressed and sealed, kept for audit and
//! removed by retention or erasure.

use crate::tenants::now;
use crate::{on_all_tenants, on_tenant, Store, StoreError};
use bitshipper_core::TenantId;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use uuid::Uuid;

/// A webhook endpoint as administrators see it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub provider: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What the webhook route needs to check a delivery.
#[derive(Debug, Clone)]
pub struct EndpointSecret {
    pub endpoint: WebhookEndpoint,
    pub secret: zeroize::Zeroizing<String>,
}

/// A stored raw payload, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPayload {
    pub id: Uuid,
    pub provider: String,
    pub endpoint_id: Option<Uuid>,
    pub tracking_number: Option<String>,
    pub received_at: DateTime<Utc>,
    pub body: Vec<u8>,
}

type EndpointRow = (
    Uuid,
    Uuid,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);
const ENDPOINT_COLUMNS: &str = "id, tenant_id, provider, name, created_at, revoked_at";

fn endpoint(r: EndpointRow) -> WebhookEndpoint {
    WebhookEndpoint {
        id: r.0,
        tenant_id: TenantId(r.1),
        provider: r.2,
        name: r.3,
        created_at: r.4,
        revoked_at: r.5,
    }
}

fn secret_context(id: Uuid) -> Vec<u8> {
    let mut c = b"webhook-secret:".to_vec();
    c.extend_from_slice(id.as_bytes());
    c
}

fn payload_context(tenant: TenantId, id: Uuid) -> Vec<u8> {
    let mut c = b"raw-payload:".to_vec();
    c.extend_from_slice(tenant.0.as_bytes());
    c.extend_from_slice(id.as_bytes());
    c
}

impl Store {
    /// Creates an endpoint with `secret` (the caller generates and shows it once).
    pub async fn create_webhook_endpoint(
        &self,
        tenant: TenantId,
        provider: &str,
        name: &str,
        secret: &str,
    ) -> Result<WebhookEndpoint, StoreError> {
        let id = Uuid::now_v7();
        let sealed = self
            .seal_for_tenant(tenant, &secret_context(id), secret.as_bytes())
            .await?;
        let at = now();
        on_tenant!(self, tenant, pool => {
            sqlx::query("INSERT INTO webhook_endpoints (id, tenant_id, provider, name, secret_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(id)
                .bind(tenant.0)
                .bind(provider)
                .bind(name)
                .bind(&sealed)
                .bind(at)
                .execute(pool)
                .await?;
        });
        Ok(WebhookEndpoint {
            id,
            tenant_id: tenant,
            provider: provider.into(),
            name: name.into(),
            created_at: at,
            revoked_at: None,
        })
    }

    pub async fn list_webhook_endpoints(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY id"
        );
        let rows: Vec<EndpointRow> = on_tenant!(self, tenant, pool => {
            sqlx::query_as(&sql).bind(tenant.0).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(endpoint).collect())
    }

    /// Revokes an endpoint; false when the tenant has no such endpoint.
    pub async fn revoke_webhook_endpoint(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        let n = on_tenant!(self, tenant, pool => {
            sqlx::query("UPDATE webhook_endpoints SET revoked_at = COALESCE(revoked_at, $3) WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id)
                .bind(now())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// The live endpoint `id` for `provider`, with its secret: how a delivery finds its tenant.
    pub async fn webhook_endpoint_secret(
        &self,
        provider: &str,
        id: Uuid,
    ) -> Result<Option<EndpointSecret>, StoreError> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS}, secret_sealed FROM webhook_endpoints WHERE id = $1 AND provider = $2 AND revoked_at IS NULL");
        type Row = (
            Uuid,
            Uuid,
            String,
            String,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
            String,
        );
        let row: Option<Row> = on_all_tenants!(self, pool => {
            sqlx::query_as(&sql).bind(id).bind(provider).fetch_optional(pool).await?
        });
        let Some(r) = row else {
            return Ok(None);
        };
        let sealed = r.6.clone();
        let endpoint = endpoint((r.0, r.1, r.2, r.3, r.4, r.5));
        let secret = self
            .open_for_tenant(endpoint.tenant_id, &secret_context(endpoint.id), &sealed)
            .await?;
        let secret = String::from_utf8(secret.to_vec()).map_err(StoreError::corrupt)?;
        Ok(Some(EndpointSecret {
            endpoint,
            secret: zeroize::Zeroizing::new(secret),
        }))
    }

    /// Keeps a payload (gzip, then sealed). The same bytes twice are stored once; returns the
    /// payload's id either way.
    pub async fn store_raw_payload(
        &self,
        tenant: TenantId,
        provider: &str,
        endpoint_id: Option<Uuid>,
        tracking_number: Option<&str>,
        body: &[u8],
    ) -> Result<Uuid, StoreError> {
        let digest = hex::encode(Sha256::digest(body));
        if let Some(id) = self.raw_payload_by_digest(tenant, &digest).await? {
            return Ok(id);
        }
        let id = Uuid::now_v7();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(body)
            .and_then(|_| gz.try_finish())
            .map_err(|e| StoreError::Crypto(format!("compressing a payload: {e}")))?;
        let compressed = gz
            .finish()
            .map_err(|e| StoreError::Crypto(format!("compressing a payload: {e}")))?;
        let sealed = self
            .seal_for_tenant(tenant, &payload_context(tenant, id), &compressed)
            .await?;
        let inserted = on_tenant!(self, tenant, pool => {
            sqlx::query("INSERT INTO raw_payloads (id, tenant_id, provider, endpoint_id, tracking_number, sha256, body_sealed, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, sha256) DO NOTHING")
                .bind(id)
                .bind(tenant.0)
                .bind(provider)
                .bind(endpoint_id)
                .bind(tracking_number)
                .bind(&digest)
                .bind(sealed.as_bytes())
                .bind(now())
                .execute(pool)
                .await?
                .rows_affected()
        });
        if inserted == 1 {
            return Ok(id);
        }
        self.raw_payload_by_digest(tenant, &digest)
            .await?
            .ok_or_else(|| StoreError::corrupt("raw payload vanished"))
    }

    async fn raw_payload_by_digest(
        &self,
        tenant: TenantId,
        digest: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        let id: Option<Uuid> = on_tenant!(self, tenant, pool => {
            sqlx::query_scalar("SELECT id FROM raw_payloads WHERE tenant_id = $1 AND sha256 = $2")
                .bind(tenant.0)
                .bind(digest)
                .fetch_optional(pool)
                .await?
        });
        Ok(id)
    }

    /// A stored payload, decompressed.
    pub async fn raw_payload(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<RawPayload>, StoreError> {
        type Row = (
            Uuid,
            String,
            Option<Uuid>,
            Option<String>,
            DateTime<Utc>,
            Vec<u8>,
        );
        let row: Option<Row> = on_tenant!(self, tenant, pool => {
            sqlx::query_as("SELECT id, provider, endpoint_id, tracking_number, received_at, body_sealed FROM raw_payloads WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        let Some(r) = row else {
            return Ok(None);
        };
        let sealed = String::from_utf8(r.5).map_err(StoreError::corrupt)?;
        let compressed = self
            .open_for_tenant(tenant, &payload_context(tenant, r.0), &sealed)
            .await?;
        let mut body = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut body)
            .map_err(StoreError::corrupt)?;
        Ok(Some(RawPayload {
            id: r.0,
            provider: r.1,
            endpoint_id: r.2,
            tracking_number: r.3,
            received_at: r.4,
            body,
        }))
    }

    /// Deletes payloads about these tracking numbers (erasure of a recipient).
    pub(crate) async fn delete_raw_payloads_for(
        &self,
        tenant: TenantId,
        tracking_numbers: &[String],
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        for tn in tracking_numbers {
            n += on_tenant!(self, tenant, pool => {
                sqlx::query("DELETE FROM raw_payloads WHERE tenant_id = $1 AND tracking_number = $2")
                    .bind(tenant.0)
                    .bind(tn)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
        }
        Ok(n)
    }
}
