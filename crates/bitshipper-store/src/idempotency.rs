//! Idempotency-Key records: the first answer to a keyed POST, replayed for retries (IETF
//! idempotency-key draft, Stripe semantics), scoped to the tenant.

use crate::tenants::now;
use crate::{on_all_tenants, on_tenant, Store, StoreError};
use bitshipper_core::TenantId;
use chrono::{DateTime, Duration, Utc};

/// What a request with an `Idempotency-Key` should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// First use of the key: run the request, then `complete_idempotency`.
    Started,
    /// Seen before with the same request: replay this answer.
    Replay { status: u16, body: String },
    /// Seen before with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

impl Store {
    pub async fn begin_idempotency(
        &self,
        tenant: TenantId,
        key: &str,
        request_hash: &str,
    ) -> Result<IdempotencyBegin, StoreError> {
        let inserted = on_tenant!(self, tenant, pool => {
            sqlx::query(
                "INSERT INTO idempotency_keys (tenant_id, key, request_hash, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, key) DO NOTHING",
            )
            .bind(tenant.0)
            .bind(key)
            .bind(request_hash)
            .bind(now())
            .execute(pool)
            .await?
            .rows_affected()
        });
        if inserted == 1 {
            return Ok(IdempotencyBegin::Started);
        }
        let row: Option<(String, Option<i32>, Option<String>)> = on_tenant!(self, tenant, pool => {
            sqlx::query_as("SELECT request_hash, status_code, response_body FROM idempotency_keys WHERE tenant_id = $1 AND key = $2")
                .bind(tenant.0)
                .bind(key)
                .fetch_optional(pool)
                .await?
        });
        Ok(match row {
            // Deleted between our insert and select (an aborted first try): treat as busy.
            None => IdempotencyBegin::InProgress,
            Some((_, None, _)) => IdempotencyBegin::InProgress,
            Some((hash, _, _)) if hash != request_hash => IdempotencyBegin::Mismatch,
            Some((_, Some(status), Some(body))) => IdempotencyBegin::Replay {
                status: u16::try_from(status).unwrap_or(500),
                body: self.open_response(tenant, key, &body).await?,
            },
            Some(_) => IdempotencyBegin::InProgress,
        })
    }

    pub async fn complete_idempotency(
        &self,
        tenant: TenantId,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError> {
        // Responses may echo personal data, so they are stored sealed like it.
        let body = self.seal_response(tenant, key, body).await?;
        on_tenant!(self, tenant, pool => {
            sqlx::query("UPDATE idempotency_keys SET status_code = $3, response_body = $4 WHERE tenant_id = $1 AND key = $2")
                .bind(tenant.0)
                .bind(key)
                .bind(i32::from(status))
                .bind(&body)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Forgets a key whose request failed on our side, so the client's retry can run.
    pub async fn abort_idempotency(&self, tenant: TenantId, key: &str) -> Result<(), StoreError> {
        on_tenant!(self, tenant, pool => {
            sqlx::query("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND status_code IS NULL")
                .bind(tenant.0)
                .bind(key)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Drops records older than `keep`; returns how many.
    pub async fn purge_idempotency(&self, keep: Duration) -> Result<u64, StoreError> {
        let cutoff: DateTime<Utc> = now() - keep;
        let n = on_all_tenants!(self, pool => {
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                .bind(cutoff)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    }
}
