//! Retention: per-tenant limits on how long tracking events and personal data are kept after a
//! shipment's last activity, plus the housekeeping every deployment needs (expired sessions and
//! invitations, the applied part of the event log). Run by the scheduled job in the processor
//! role and by `bitshipper retention run`.

use crate::tenants::now;
use crate::{on_all_tenants, on_pool, on_tenant, EventLog, Store, StoreError};
use bitshipper_core::TenantId;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Most days a retention setting may name (about 27 years).
pub const MAX_RETENTION_DAYS: u32 = 10_000;

/// A tenant's retention settings; `None` keeps data until it is erased.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// Days after a shipment's last activity its tracking events are deleted (the shipment keeps
    /// its folded state).
    pub events_days: Option<u32>,
    /// Days after a shipment's last activity its recipient data is erased.
    pub personal_data_days: Option<u32>,
    /// Days raw provider payloads are kept after they arrive.
    #[serde(default)]
    pub raw_payload_days: Option<u32>,
}

/// What one retention run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub events_deleted: u64,
    pub raw_payloads_deleted: u64,
    pub recipients_erased: u64,
    pub recipient_keys_destroyed: u64,
    pub sessions_deleted: u64,
    pub invitations_deleted: u64,
    pub log_records_deleted: u64,
}

/// A tenant id and its three retention columns.
type PolicyRow = (Uuid, Option<i32>, Option<i32>, Option<i32>);

fn days(d: Option<i32>) -> Option<u32> {
    d.and_then(|d| u32::try_from(d).ok())
}

impl Store {
    pub async fn retention_policy(&self, tenant: TenantId) -> Result<RetentionPolicy, StoreError> {
        let row: Option<(Option<i32>, Option<i32>, Option<i32>)> = on_pool!(&self.db, pool => {
            sqlx::query_as("SELECT retain_events_days, retain_personal_data_days, retain_raw_payload_days FROM tenants WHERE id = $1")
                .bind(tenant.0)
                .fetch_optional(pool)
                .await?
        });
        Ok(row
            .map(|(e, p, r)| RetentionPolicy {
                events_days: days(e),
                personal_data_days: days(p),
                raw_payload_days: days(r),
            })
            .unwrap_or_default())
    }

    pub async fn set_retention_policy(
        &self,
        tenant: TenantId,
        policy: RetentionPolicy,
    ) -> Result<(), StoreError> {
        let as_i32 = |d: Option<u32>| {
            d.map(|d| i32::try_from(d.min(MAX_RETENTION_DAYS)).unwrap_or(i32::MAX))
        };
        on_pool!(&self.db, pool => {
            sqlx::query("UPDATE tenants SET retain_events_days = $2, retain_personal_data_days = $3, retain_raw_payload_days = $4 WHERE id = $1")
                .bind(tenant.0)
                .bind(as_i32(policy.events_days))
                .bind(as_i32(policy.personal_data_days))
                .bind(as_i32(policy.raw_payload_days))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Applies one tenant's policy as of `at`.
    pub async fn apply_retention(
        &self,
        tenant: TenantId,
        policy: RetentionPolicy,
        at: DateTime<Utc>,
    ) -> Result<RetentionReport, StoreError> {
        let mut report = RetentionReport::default();
        if let Some(d) = policy.events_days {
            let cutoff = at - Duration::days(i64::from(d));
            report.events_deleted = on_tenant!(self, tenant, pool => {
                sqlx::query("DELETE FROM tracking_events WHERE tenant_id = $1 AND shipment_id IN
                               (SELECT id FROM shipments WHERE tenant_id = $1 AND COALESCE(last_event_at, created_at) < $2)")
                    .bind(tenant.0)
                    .bind(cutoff)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
        }
        if let Some(d) = policy.raw_payload_days {
            let cutoff = at - Duration::days(i64::from(d));
            report.raw_payloads_deleted = on_tenant!(self, tenant, pool => {
                sqlx::query("DELETE FROM raw_payloads WHERE tenant_id = $1 AND received_at < $2")
                    .bind(tenant.0)
                    .bind(cutoff)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
        }
        if let Some(d) = policy.personal_data_days {
            let cutoff = at - Duration::days(i64::from(d));
            let (erased, keys) = on_tenant!(self, tenant, pool => {
                let mut tx = sqlx::Acquire::begin(pool).await?;
                let erased = sqlx::query("UPDATE shipments SET recipient = NULL, recipient_sealed = NULL, recipient_ref = NULL, recipient_erased_at = $3
                                          WHERE tenant_id = $1 AND COALESCE(last_event_at, created_at) < $2
                                            AND (recipient_sealed IS NOT NULL OR recipient IS NOT NULL)")
                    .bind(tenant.0)
                    .bind(cutoff)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                // A recipient key no shipment refers to any more protects nothing: destroy it.
                let keys = sqlx::query("DELETE FROM recipient_keys WHERE tenant_id = $1 AND NOT EXISTS
                                          (SELECT 1 FROM shipments s WHERE s.tenant_id = recipient_keys.tenant_id AND s.recipient_ref = recipient_keys.recipient_ref)")
                    .bind(tenant.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                (erased, keys)
            });
            report.recipients_erased = erased;
            report.recipient_keys_destroyed = keys;
        }
        Ok(report)
    }

    /// Applies every tenant's policy, removes expired sessions and invitations, and prunes the
    /// part of `log` every consumer has applied that is older than `keep_log`.
    pub async fn run_retention(
        &self,
        log: &EventLog,
        keep_log: Duration,
    ) -> Result<RetentionReport, StoreError> {
        let at = now();
        let tenants: Vec<PolicyRow> = on_pool!(&self.db, pool => {
            sqlx::query_as("SELECT id, retain_events_days, retain_personal_data_days, retain_raw_payload_days FROM tenants
                            WHERE erased_at IS NULL AND (retain_events_days IS NOT NULL OR retain_personal_data_days IS NOT NULL OR retain_raw_payload_days IS NOT NULL)")
                .fetch_all(pool)
                .await?
        });
        let mut total = RetentionReport::default();
        for (tenant, e, p, raw) in tenants {
            let r = self
                .apply_retention(
                    TenantId(tenant),
                    RetentionPolicy {
                        events_days: days(e),
                        personal_data_days: days(p),
                        raw_payload_days: days(raw),
                    },
                    at,
                )
                .await?;
            total.events_deleted += r.events_deleted;
            total.raw_payloads_deleted += r.raw_payloads_deleted;
            total.recipients_erased += r.recipients_erased;
            total.recipient_keys_destroyed += r.recipient_keys_destroyed;
        }
        let (sessions, invitations) = on_all_tenants!(self, pool => {
            let mut tx = sqlx::Acquire::begin(pool).await?;
            let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let invitations = sqlx::query("DELETE FROM invitations WHERE expires_at < $1 OR accepted_at IS NOT NULL")
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            (sessions, invitations)
        });
        total.sessions_deleted = sessions;
        total.invitations_deleted = invitations;
        let applied_by_all: Option<i64> = on_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT MIN(position) FROM processor_offsets")
                .fetch_one(pool)
                .await?
        });
        if let Some(position) = applied_by_all {
            total.log_records_deleted = log.prune(position, at - keep_log).await?;
        }
        Ok(total)
    }
}
