//! The audit log: append-only (database triggers refuse changes) and hash-chained per tenant,
//! so any later edit of an entry, or a removed one, shows when the chain is verified.

use crate::tenants::now;
use crate::{on_all_tenants, on_tenant, Store, StoreError};
use bitshipper_core::TenantId;
use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The hash before a tenant's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Something that happened, as the caller describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Who: `api_key:<id>`, `cli`, `system`.
    pub actor: String,
    /// What, dotted: `api_key.created`, `api_key.revoked`, `tenant.created`.
    pub action: String,
    /// What it was done to, e.g. `api_key:<id>`.
    pub target: String,
    /// Extra facts as JSON (never secrets, never personal data).
    pub details: serde_json::Value,
}

impl AuditRecord {
    /// A record without extra facts; add them with `with_details`.
    pub fn new(actor: impl Into<String>, action: &str, target: impl Into<String>) -> Self {
        AuditRecord {
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            details: serde_json::json!({}),
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// A new key: its name, scopes, visible prefix and expiry, never the secret.
    pub fn api_key_created(actor: String, key: &crate::ApiKey) -> Self {
        AuditRecord {
            actor,
            action: "api_key.created".into(),
            target: format!("api_key:{}", key.id),
            details: serde_json::json!({
                "name": key.name,
                "prefix": key.prefix,
                "scopes": key.scopes,
                "expires_at": key.expires_at,
            }),
        }
    }

    pub fn api_key_revoked(actor: String, key: bitshipper_core::ApiKeyId) -> Self {
        AuditRecord {
            actor,
            action: "api_key.revoked".into(),
            target: format!("api_key:{key}"),
            details: serde_json::json!({}),
        }
    }
}

impl AuditRecord {
    /// An erasure: what was asked for is named by id only, never by the personal data itself.
    pub fn erasure(actor: String, target: String, report: &crate::ErasureReport) -> Self {
        AuditRecord {
            actor,
            action: "personal_data.erased".into(),
            target,
            details: serde_json::json!(report),
        }
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// What verifying a tenant's chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainCheck {
    Intact { entries: u64 },
    Broken { seq: i64, reason: String },
}

/// SHA-256 over the tenant and every field of the entry but its own hash, each length-prefixed.
fn entry_hash(tenant: TenantId, e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    for part in [
        tenant.0.to_string().as_str(),
        &e.seq.to_string(),
        &e.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        &e.actor,
        &e.action,
        &e.target,
        &e.details,
        &e.prev_hash,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

impl Store {
    /// Appends an entry to the tenant's chain. Concurrent appends retry on the sequence
    /// conflict, so the chain never forks.
    pub async fn audit(
        &self,
        tenant: TenantId,
        record: AuditRecord,
    ) -> Result<AuditEntry, StoreError> {
        let details = record.details.to_string();
        for _ in 0..8 {
            let at = now();
            let last: Option<(i64, String)> = on_tenant!(self, tenant, pool => {
                sqlx::query_as("SELECT seq, hash FROM audit_log WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1")
                    .bind(tenant.0)
                    .fetch_optional(pool)
                    .await?
            });
            let (seq, prev_hash) = match last {
                Some((seq, hash)) => (seq + 1, hash),
                None => (1, GENESIS.to_string()),
            };
            let mut entry = AuditEntry {
                seq,
                at,
                actor: record.actor.clone(),
                action: record.action.clone(),
                target: record.target.clone(),
                details: details.clone(),
                prev_hash,
                hash: String::new(),
            };
            entry.hash = entry_hash(tenant, &entry);
            let result = on_tenant!(self, tenant, pool => {
                sqlx::query(
                    "INSERT INTO audit_log (tenant_id, seq, at, actor, action, target, details, prev_hash, hash)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(tenant.0)
                .bind(entry.seq).bind(entry.at).bind(&entry.actor).bind(&entry.action).bind(&entry.target).bind(&entry.details).bind(&entry.prev_hash).bind(&entry.hash)
                .execute(pool)
                .await
                .map(|_| ())
            });
            match result.map_err(StoreError::from) {
                Ok(()) => return Ok(entry),
                Err(e) if e.is_unique_violation() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict("audit log is busy; try again".into()))
    }

    /// Entries newest first; `before` is the cursor (a `seq` from the previous page).
    pub async fn audit_entries(
        &self,
        tenant: TenantId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditEntry> = on_tenant!(self, tenant, pool => {
            sqlx::query_as(
                "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log
                 WHERE tenant_id = $1 AND ($2 IS NULL OR seq < $2) ORDER BY seq DESC LIMIT $3",
            )
            .bind(tenant.0)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Recomputes every hash of the tenant's chain and checks each link.
    pub async fn verify_audit_chain(&self, tenant: TenantId) -> Result<ChainCheck, StoreError> {
        let rows: Vec<AuditEntry> = on_tenant!(self, tenant, pool => {
            sqlx::query_as(
                "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log
                 WHERE tenant_id = $1 ORDER BY seq",
            )
            .bind(tenant.0)
            .fetch_all(pool)
            .await?
        });
        let mut prev = GENESIS.to_string();
        for (i, e) in rows.iter().enumerate() {
            if e.seq != i as i64 + 1 {
                return Ok(ChainCheck::Broken {
                    seq: e.seq,
                    reason: format!(
                        "expected entry {}, found {}: an entry is missing",
                        i + 1,
                        e.seq
                    ),
                });
            }
            if e.prev_hash != prev {
                return Ok(ChainCheck::Broken {
                    seq: e.seq,
                    reason: "does not link to the previous entry".into(),
                });
            }
            let expected = entry_hash(tenant, e);
            if expected != e.hash {
                return Ok(ChainCheck::Broken {
                    seq: e.seq,
                    reason: "its content does not match its hash".into(),
                });
            }
            prev = e.hash.clone();
        }
        Ok(ChainCheck::Intact {
            entries: rows.len() as u64,
        })
    }

    /// Every tenant that has audit entries (for `bitshipper audit verify` over all tenants).
    pub async fn audited_tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let ids: Vec<Uuid> = on_all_tenants!(self, pool => {
            sqlx::query_scalar("SELECT DISTINCT tenant_id FROM audit_log").fetch_all(pool).await?
        });
        Ok(ids.into_iter().map(TenantId).collect())
    }
}
