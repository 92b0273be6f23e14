//! Applying log entries to shipment state: dedupe by event identity, auto-track unknown
//! tracking numbers, re-fold touched shipments, and move the consumer's log position — all in
//! one transaction, so a crash at any point neither loses nor doubles an event.

use crate::log::LogEntry;
use crate::shipments::to_json;
use crate::tenants::now;
use crate::{on_pool, Store, StoreError};
use bitshipper_core::{fold, ShipmentId, TenantId, TrackingEvent};
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// What one applied batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Events stored for the first time.
    pub applied: u64,
    /// Events already known (redelivery or duplicates).
    pub duplicates: u64,
    /// Log entries whose payload could not be read (kept in the log; counted, skipped).
    pub unreadable: u64,
    /// Shipments created because an event named an unknown tracking number.
    pub auto_created: u64,
    /// Shipments whose state was re-folded.
    pub shipments_touched: Vec<(TenantId, ShipmentId)>,
}

impl Store {
    /// The log position `consumer` has applied up to (0 when it never ran).
    pub async fn consumer_position(&self, consumer: &str) -> Result<i64, StoreError> {
        let pos: Option<i64> = on_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT position FROM processor_offsets WHERE consumer = $1")
                .bind(consumer)
                .fetch_optional(pool)
                .await?
        });
        Ok(pos.unwrap_or(0))
    }

    /// Applies `entries` (in log order) and records `consumer`'s new position in the same
    /// transaction. Re-applying entries already applied changes nothing.
    #[tracing::instrument(skip_all, fields(consumer, entries = entries.len()))]
    pub async fn apply_log_entries(
        &self,
        consumer: &str,
        entries: &[LogEntry],
    ) -> Result<ApplyOutcome, StoreError> {
        let Some(last) = entries.last() else {
            return Ok(ApplyOutcome::default());
        };
        let position = last.seq;
        let mut outcome = ApplyOutcome::default();
        let received_at = now();
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let mut shipment_ids: HashMap<(TenantId, String, String), Uuid> = HashMap::new();
            let mut touched: BTreeSet<(TenantId, Uuid)> = BTreeSet::new();
            for entry in entries {
                let event: TrackingEvent = match serde_json::from_str(&entry.payload) {
                    Ok(e) => e,
                    Err(err) => {
                        tracing::error!(seq = entry.seq, error = %err, "unreadable log entry skipped");
                        outcome.unreadable += 1;
                        continue;
                    }
                };
                let tenant = entry.tenant_id;
                let ident = (tenant, event.carrier.clone(), event.tracking_number.clone());
                let shipment_id = match shipment_ids.get(&ident) {
                    Some(id) => *id,
                    None => {
                        let found: Option<Uuid> = sqlx::query_scalar(
                            "SELECT id FROM shipments WHERE tenant_id = $1 AND carrier = $2 AND tracking_number = $3",
                        )
                        .bind(tenant.0)
                        .bind(&event.carrier)
                        .bind(&event.tracking_number)
                        .fetch_optional(&mut *tx)
                        .await?;
                        let id = match found {
                            Some(id) => id,
                            None => {
                                let id = ShipmentId::new().0;
                                sqlx::query(
                                    "INSERT INTO shipments (id, tenant_id, carrier, tracking_number, metadata, auto_created, created_at, updated_at, status, events_count)
                                     VALUES ($1, $2, $3, $4, '{}', $5, $6, $6, 'pre_transit', 0)",
                                )
                                .bind(id)
                                .bind(tenant.0)
                                .bind(&event.carrier)
                                .bind(&event.tracking_number)
                                .bind(true)
                                .bind(received_at)
                                .execute(&mut *tx)
                                .await?;
                                outcome.auto_created += 1;
                                id
                            }
                        };
                        shipment_ids.insert(ident, id);
                        id
                    }
                };
                let inserted = sqlx::query(
                    "INSERT INTO tracking_events (tenant_id, event_key, shipment_id, log_seq, occurred_at, body, received_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, event_key) DO NOTHING",
                )
                .bind(tenant.0)
                .bind(&event.event_key.0)
                .bind(shipment_id)
                .bind(entry.seq)
                .bind(event.occurred_at.with_timezone(&chrono::Utc))
                .bind(&entry.payload)
                .bind(received_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    outcome.applied += 1;
                    touched.insert((tenant, shipment_id));
                } else {
                    outcome.duplicates += 1;
                }
            }
            for (tenant, shipment_id) in &touched {
                let bodies: Vec<String> = sqlx::query_scalar(
                    "SELECT body FROM tracking_events WHERE tenant_id = $1 AND shipment_id = $2",
                )
                .bind(tenant.0)
                .bind(shipment_id)
                .fetch_all(&mut *tx)
                .await?;
                let events = bodies
                    .iter()
                    .map(|b| serde_json::from_str::<TrackingEvent>(b))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(StoreError::corrupt)?;
                let state = fold(events);
                sqlx::query(
                    "UPDATE shipments SET status = $3, reason = $4, last_location = $5, first_scan_at = $6, delivered_at = $7, last_event_at = $8, events_count = $9, updated_at = $10
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.0)
                .bind(shipment_id)
                .bind(state.status.as_str())
                .bind(state.reason.map(|r| r.as_str()))
                .bind(to_json(&state.last_location))
                .bind(state.first_scan_at)
                .bind(state.delivered_at)
                .bind(state.last_event_at)
                .bind(i64::from(state.events_count))
                .bind(received_at)
                .execute(&mut *tx)
                .await?;
                outcome.shipments_touched.push((*tenant, ShipmentId(*shipment_id)));
            }
            sqlx::query(
                "INSERT INTO processor_offsets (consumer, position) VALUES ($1, $2)
                 ON CONFLICT (consumer) DO UPDATE SET position = excluded.position",
            )
            .bind(consumer)
            .bind(position)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(outcome)
    }
}
