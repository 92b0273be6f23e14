//! Shipments and their stored tracking events, always within one tenant.

use crate::tenants::now;
use crate::{on_tenant, Store, StoreError};
use bitshipper_core::{
    Address, Location, NewShipment, Reason, ShipmentId, ShipmentState, Status, TenantId,
    TrackingEvent,
};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A stored shipment: what the client described plus what its events say.
#[derive(Debug, Clone, PartialEq)]
pub struct Shipment {
    pub id: ShipmentId,
    pub tenant_id: TenantId,
    pub details: NewShipment,
    pub state: ShipmentState,
    /// Created by an event for an unknown tracking number rather than by the API.
    pub auto_created: bool,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Shipment {
    /// The status shown to users: cancellation by the shipper wins over the carrier's view
    /// unless the parcel was delivered anyway.
    pub fn effective_status(&self) -> Status {
        match self.cancelled_at {
            Some(_) if self.state.status != Status::Delivered => Status::Cancelled,
            _ => self.state.status,
        }
    }
}

/// A tracking event as stored, with when it was applied.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub event: TrackingEvent,
    pub received_at: DateTime<Utc>,
}

/// Filters for listing shipments. `after` is the cursor: the last id of the previous page.
#[derive(Debug, Clone, Default)]
pub struct ShipmentFilter {
    pub status: Option<Status>,
    pub carrier: Option<String>,
    pub reference: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// Shipments to this recipient email (matched through its keyed hash).
    pub recipient_email: Option<String>,
    pub after: Option<ShipmentId>,
    pub limit: u32,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ShipmentRow {
    id: Uuid,
    tenant_id: Uuid,
    carrier: String,
    tracking_number: String,
    service_level: Option<String>,
    origin: Option<String>,
    destination: Option<String>,
    weight_grams: Option<f64>,
    ship_date: Option<NaiveDate>,
    promised_delivery_date: Option<NaiveDate>,
    reference: Option<String>,
    metadata: String,
    auto_created: bool,
    cancelled_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    status: String,
    reason: Option<String>,
    last_location: Option<String>,
    first_scan_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    last_event_at: Option<DateTime<Utc>>,
    events_count: i64,
    recipient_ref: Option<String>,
    recipient_sealed: Option<Vec<u8>>,
    rk_version: Option<i32>,
    rk_wrapped: Option<Vec<u8>>,
}

/// Shipment columns (table alias `s`) with the recipient's wrapped key (alias `rk`).
const SHIPMENT_COLUMNS: &str = "s.id, s.tenant_id, s.carrier, s.tracking_number, s.service_level, s.origin, s.destination, s.weight_grams, s.ship_date, s.promised_delivery_date, s.reference, s.metadata, s.auto_created, s.cancelled_at, s.created_at, s.updated_at, s.status, s.reason, s.last_location, s.first_scan_at, s.delivered_at, s.last_event_at, s.events_count, s.recipient_ref, s.recipient_sealed, rk.key_version AS rk_version, rk.wrapped_key AS rk_wrapped";
const SHIPMENT_FROM: &str = "shipments s LEFT JOIN recipient_keys rk ON rk.tenant_id = s.tenant_id AND rk.recipient_ref = s.recipient_ref";

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    text: Option<String>,
) -> Result<Option<T>, StoreError> {
    text.map(|t| serde_json::from_str(&t).map_err(StoreError::corrupt))
        .transpose()
}

pub(crate) fn to_json<T: serde::Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref().and_then(|v| serde_json::to_string(v).ok())
}

impl Store {
    /// Turns a row into a shipment, opening its sealed personal data.
    async fn shipment_from_row(&self, r: ShipmentRow) -> Result<Shipment, StoreError> {
        let metadata: BTreeMap<String, String> =
            serde_json::from_str(&r.metadata).map_err(StoreError::corrupt)?;
        let (id, tenant_id) = (ShipmentId(r.id), TenantId(r.tenant_id));
        let mut destination = from_json::<Address>(r.destination)?;
        let recipient_key = match (&r.recipient_ref, r.rk_version, &r.rk_wrapped) {
            (Some(rref), Some(v), Some(w)) => Some((rref.as_str(), v, w.as_slice())),
            _ => None,
        };
        let recipient = self
            .reveal_personal(
                tenant_id,
                id,
                r.recipient_sealed.as_deref(),
                recipient_key,
                &mut destination,
            )
            .await?;
        Ok(Shipment {
            id,
            tenant_id,
            details: NewShipment {
                carrier: r.carrier,
                tracking_number: r.tracking_number,
                service_level: r.service_level,
                origin: from_json::<Address>(r.origin)?,
                destination,
                recipient,
                weight_grams: r.weight_grams,
                ship_date: r.ship_date,
                promised_delivery_date: r.promised_delivery_date,
                reference: r.reference,
                metadata,
            },
            state: ShipmentState {
                status: r.status.parse().map_err(StoreError::corrupt)?,
                reason: r
                    .reason
                    .map(|s| s.parse::<Reason>().map_err(StoreError::corrupt))
                    .transpose()?,
                last_location: from_json::<Location>(r.last_location)?,
                first_scan_at: r.first_scan_at,
                delivered_at: r.delivered_at,
                last_event_at: r.last_event_at,
                events_count: u32::try_from(r.events_count).unwrap_or(u32::MAX),
            },
            auto_created: r.auto_created,
            cancelled_at: r.cancelled_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

impl Store {
    /// Creates a shipment; a second one with the same carrier and tracking number is a conflict.
    pub async fn create_shipment(
        &self,
        tenant: TenantId,
        details: NewShipment,
    ) -> Result<Shipment, StoreError> {
        let id = ShipmentId::new();
        let at = now();
        let state = ShipmentState::default();
        let metadata = serde_json::to_string(&details.metadata).map_err(StoreError::corrupt)?;
        let sealed = self
            .seal_personal(tenant, id, &details.recipient, &details.destination)
            .await?;
        let sql = "INSERT INTO shipments (id, tenant_id, carrier, tracking_number, service_level, origin, destination, recipient_ref, recipient_sealed, weight_grams, ship_date, promised_delivery_date, reference, metadata, auto_created, created_at, updated_at, status, events_count)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $17, $9, $10, $11, $12, $13, $14, $15, $15, $16, 0)";
        let result = on_tenant!(self, tenant, pool => {
            sqlx::query(sql)
                .bind(id.0)
                .bind(tenant.0)
                .bind(&details.carrier)
                .bind(&details.tracking_number)
                .bind(&details.service_level)
                .bind(to_json(&details.origin))
                .bind(to_json(&sealed.destination))
                .bind(&sealed.recipient_ref)
                .bind(details.weight_grams)
                .bind(details.ship_date)
                .bind(details.promised_delivery_date)
                .bind(&details.reference)
                .bind(&metadata)
                .bind(false)
                .bind(at)
                .bind(state.status.as_str())
                .bind(&sealed.recipient_sealed)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        match result.map_err(StoreError::from) {
            Err(e) if e.is_unique_violation() => Err(StoreError::Conflict(format!(
                "a shipment with carrier '{}' and tracking number '{}' already exists",
                details.carrier, details.tracking_number
            ))),
            Err(e) => Err(e),
            Ok(_) => Ok(Shipment {
                id,
                tenant_id: tenant,
                details,
                state,
                auto_created: false,
                cancelled_at: None,
                created_at: at,
                updated_at: at,
            }),
        }
    }

    pub async fn get_shipment(
        &self,
        tenant: TenantId,
        id: ShipmentId,
    ) -> Result<Option<Shipment>, StoreError> {
        let sql = format!(
            "SELECT {SHIPMENT_COLUMNS} FROM {SHIPMENT_FROM} WHERE s.tenant_id = $1 AND s.id = $2"
        );
        let row: Option<ShipmentRow> = on_tenant!(self, tenant, pool => {
            sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
        });
        match row {
            Some(r) => self.shipment_from_row(r).await.map(Some),
            None => Ok(None),
        }
    }

    pub async fn find_shipment_by_tracking(
        &self,
        tenant: TenantId,
        carrier: &str,
        tracking_number: &str,
    ) -> Result<Option<Shipment>, StoreError> {
        let sql = format!(
            "SELECT {SHIPMENT_COLUMNS} FROM {SHIPMENT_FROM} WHERE s.tenant_id = $1 AND s.carrier = $2 AND s.tracking_number = $3"
        );
        let row: Option<ShipmentRow> = on_tenant!(self, tenant, pool => {
            sqlx::query_as(&sql).bind(tenant.0).bind(carrier).bind(tracking_number).fetch_optional(pool).await?
        });
        match row {
            Some(r) => self.shipment_from_row(r).await.map(Some),
            None => Ok(None),
        }
    }

    /// Newest first; pass the last id of a page as `after` for the next one.
    pub async fn list_shipments(
        &self,
        tenant: TenantId,
        filter: &ShipmentFilter,
    ) -> Result<Vec<Shipment>, StoreError> {
        // Cancelled is an overlay on the folded status, so filtering by it looks at cancelled_at.
        let (status, cancelled_only) = match filter.status {
            Some(Status::Cancelled) => (None, true),
            other => (other.map(|s| s.as_str().to_string()), false),
        };
        let recipient_ref = match &filter.recipient_email {
            Some(email) => Some(self.email_ref(tenant, email).await?),
            None => None,
        };
        let sql = format!(
            "SELECT {SHIPMENT_COLUMNS} FROM {SHIPMENT_FROM} WHERE s.tenant_id = $1
               AND ($2 IS NULL OR s.status = $2)
               AND ($3 IS NULL OR s.carrier = $3)
               AND ($4 IS NULL OR s.reference = $4)
               AND ($5 IS NULL OR s.created_at >= $5)
               AND ($6 IS NULL OR s.created_at < $6)
               AND ($7 IS NULL OR s.id < $7)
               AND ($8 = FALSE OR s.cancelled_at IS NOT NULL)
               AND ($2 IS NULL OR s.cancelled_at IS NULL OR s.status = 'delivered')
               AND ($10 IS NULL OR s.recipient_ref = $10)
             ORDER BY s.id DESC LIMIT $9"
        );
        let rows: Vec<ShipmentRow> = on_tenant!(self, tenant, pool => {
            sqlx::query_as(&sql)
                .bind(tenant.0)
                .bind(&status)
                .bind(&filter.carrier)
                .bind(&filter.reference)
                .bind(filter.created_from)
                .bind(filter.created_to)
                .bind(filter.after.map(|a| a.0))
                .bind(cancelled_only)
                .bind(i64::from(filter.limit))
                .bind(&recipient_ref)
                .fetch_all(pool)
                .await?
        });
        let mut shipments = Vec::with_capacity(rows.len());
        for row in rows {
            shipments.push(self.shipment_from_row(row).await?);
        }
        Ok(shipments)
    }

    /// Replaces the client-described fields (not carrier or tracking number, not state).
    pub async fn update_shipment(
        &self,
        tenant: TenantId,
        id: ShipmentId,
        details: &NewShipment,
    ) -> Result<bool, StoreError> {
        let metadata = serde_json::to_string(&details.metadata).map_err(StoreError::corrupt)?;
        let sealed = self
            .seal_personal(tenant, id, &details.recipient, &details.destination)
            .await?;
        let sql = "UPDATE shipments SET service_level = $3, origin = $4, destination = $5, recipient_ref = $6, recipient_sealed = $13, recipient = NULL, weight_grams = $7, ship_date = $8, promised_delivery_date = $9, reference = $10, metadata = $11, updated_at = $12
                   WHERE tenant_id = $1 AND id = $2";
        let n = on_tenant!(self, tenant, pool => {
            sqlx::query(sql)
                .bind(tenant.0)
                .bind(id.0)
                .bind(&details.service_level)
                .bind(to_json(&details.origin))
                .bind(to_json(&sealed.destination))
                .bind(&sealed.recipient_ref)
                .bind(details.weight_grams)
                .bind(details.ship_date)
                .bind(details.promised_delivery_date)
                .bind(&details.reference)
                .bind(&metadata)
                .bind(now())
                .bind(&sealed.recipient_sealed)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Marks a shipment cancelled (idempotent); false when it does not exist.
    pub async fn cancel_shipment(
        &self,
        tenant: TenantId,
        id: ShipmentId,
    ) -> Result<bool, StoreError> {
        let at = now();
        let n = on_tenant!(self, tenant, pool => {
            sqlx::query(
                "UPDATE shipments SET cancelled_at = COALESCE(cancelled_at, $3), updated_at = $3 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// The shipment's events in timeline order.
    pub async fn list_events(
        &self,
        tenant: TenantId,
        shipment: ShipmentId,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows: Vec<(String, DateTime<Utc>)> = on_tenant!(self, tenant, pool => {
            sqlx::query_as("SELECT body, received_at FROM tracking_events WHERE tenant_id = $1 AND shipment_id = $2")
                .bind(tenant.0)
                .bind(shipment.0)
                .fetch_all(pool)
                .await?
        });
        let mut events = rows
            .into_iter()
            .map(|(body, received_at)| {
                Ok(StoredEvent {
                    event: serde_json::from_str(&body).map_err(StoreError::corrupt)?,
                    received_at,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        events.sort_by(|a, b| bitshipper_core::fold::timeline_order(&a.event, &b.event));
        Ok(events)
    }
}
