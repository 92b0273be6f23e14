//! What the lake writer reads from the store: the shipments a range of the log changed and the
//! predictions scored since a point in time, with personal data left sealed or as keyed tokens;
//! and sealing of free-text fields under the tenant's data key before they leave for the lake.

use crate::processing::{Params, CHUNK_ROWS};
use crate::shipments::from_json;
use crate::vault::DataKey;
use crate::{on_all_tenants, Store, StoreError};
use bitshipper_core::{Address, ShipmentId, TenantId};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

/// A shipment's state as the lake keeps it: no recipient, no street lines, the recipient as its
/// keyed token, free-form metadata sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct LakeShipment {
    pub tenant_id: TenantId,
    pub shipment_id: ShipmentId,
    pub carrier: String,
    pub tracking_number: String,
    pub service_level: Option<String>,
    pub origin: Option<Address>,
    pub destination: Option<Address>,
    /// Keyed hash of the recipient's email (`em:...`) or `shp:<id>`; never the person.
    pub recipient_token: Option<String>,
    pub reference: Option<String>,
    pub weight_grams: Option<f64>,
    pub ship_date: Option<NaiveDate>,
    pub promised_delivery_date: Option<NaiveDate>,
    pub auto_created: bool,
    pub status: String,
    pub reason: Option<String>,
    pub first_scan_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_event_at: Option<DateTime<Utc>>,
    pub events_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// A shipment's latest prediction, as the lake keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct LakePrediction {
    pub tenant_id: TenantId,
    pub shipment_id: ShipmentId,
    pub model_version: String,
    pub scored_at: DateTime<Utc>,
    pub eta_p10: DateTime<Utc>,
    pub eta_p50: DateTime<Utc>,
    pub eta_p90: DateTime<Utc>,
    pub late_risk: Option<f64>,
}

#[derive(sqlx::FromRow)]
struct ShipmentRow {
    id: Uuid,
    tenant_id: Uuid,
    carrier: String,
    tracking_number: String,
    service_level: Option<String>,
    origin: Option<String>,
    destination: Option<String>,
    recipient_ref: Option<String>,
    reference: Option<String>,
    weight_grams: Option<f64>,
    ship_date: Option<NaiveDate>,
    promised_delivery_date: Option<NaiveDate>,
    auto_created: bool,
    status: String,
    reason: Option<String>,
    first_scan_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    last_event_at: Option<DateTime<Utc>>,
    events_count: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    cancelled_at: Option<DateTime<Utc>>,
}

/// Street lines are personal data: the lake keeps the rest of an address.
fn without_street(address: Option<Address>) -> Option<Address> {
    address.map(|a| Address {
        line1: None,
        line2: None,
        ..a
    })
}

impl Store {
    /// The shipments whose events sit in the log range `(after, through]`, in their current
    /// state (applied at least through `through` when the processor has reached it).
    pub async fn lake_shipments_changed(
        &self,
        after: i64,
        through: i64,
    ) -> Result<Vec<LakeShipment>, StoreError> {
        let ids: Vec<(Uuid, Uuid)> = on_all_tenants!(self, pool => {
            sqlx::query_as(
                "SELECT DISTINCT tenant_id, shipment_id FROM tracking_events WHERE log_seq > $1 AND log_seq <= $2",
            )
            .bind(after)
            .bind(through)
            .fetch_all(pool)
            .await?
        });
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK_ROWS) {
            let mut p = Params::new(&self.db);
            let sql = format!(
                "SELECT id, tenant_id, carrier, tracking_number, service_level, origin, destination, recipient_ref, reference,
                        weight_grams, ship_date, promised_delivery_date, auto_created, status, reason,
                        first_scan_at, delivered_at, last_event_at, events_count, created_at, updated_at, cancelled_at
                 FROM shipments WHERE id IN ({})",
                p.list(chunk.len())
            );
            let rows: Vec<ShipmentRow> = on_all_tenants!(self, pool => {
                let mut q = sqlx::query_as::<_, ShipmentRow>(&sql);
                for (_, id) in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(pool).await?
            });
            for r in rows {
                out.push(LakeShipment {
                    shipment_id: ShipmentId(r.id),
                    tenant_id: TenantId(r.tenant_id),
                    carrier: r.carrier,
                    tracking_number: r.tracking_number,
                    service_level: r.service_level,
                    origin: without_street(from_json(r.origin)?),
                    destination: without_street(from_json(r.destination)?),
                    recipient_token: r.recipient_ref,
                    reference: r.reference,
                    weight_grams: r.weight_grams,
                    ship_date: r.ship_date,
                    promised_delivery_date: r.promised_delivery_date,
                    auto_created: r.auto_created,
                    status: r.status,
                    reason: r.reason,
                    first_scan_at: r.first_scan_at,
                    delivered_at: r.delivered_at,
                    last_event_at: r.last_event_at,
                    events_count: r.events_count,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                    cancelled_at: r.cancelled_at,
                });
            }
        }
        out.sort_by_key(|s| (s.tenant_id.0, s.shipment_id.0));
        Ok(out)
    }

    /// Latest predictions scored in `(after, until]`, oldest first, at most `limit`.
    pub async fn lake_predictions_scored(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<LakePrediction>, StoreError> {
        type Row = (
            Uuid,
            Uuid,
            String,
            DateTime<Utc>,
            DateTime<Utc>,
            DateTime<Utc>,
            DateTime<Utc>,
            Option<f64>,
        );
        let rows: Vec<Row> = on_all_tenants!(self, pool => {
            sqlx::query_as(
                "SELECT tenant_id, shipment_id, model_version, scored_at, eta_p10, eta_p50, eta_p90, late_risk
                 FROM predictions WHERE scored_at > $1 AND scored_at <= $2
                 ORDER BY scored_at, tenant_id, shipment_id LIMIT $3",
            )
            .bind(after)
            .bind(until)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| LakePrediction {
                tenant_id: TenantId(r.0),
                shipment_id: ShipmentId(r.1),
                model_version: r.2,
                scored_at: r.3,
                eta_p10: r.4,
                eta_p50: r.5,
                eta_p90: r.6,
                late_risk: r.7,
            })
            .collect())
    }

    /// Records how far a log consumer that keeps its own position elsewhere (the lake writer
    /// keeps it in the lake) has read, so log retention never prunes what it has not yet read.
    pub async fn record_consumer_position(
        &self,
        consumer: &str,
        position: i64,
    ) -> Result<(), StoreError> {
        on_all_tenants!(self, pool => {
            sqlx::query(
                "INSERT INTO processor_offsets (consumer, position) VALUES ($1, $2)
                 ON CONFLICT (consumer) DO UPDATE SET position = excluded.position",
            )
            .bind(consumer)
            .bind(position)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A sealer holding the tenant's current data key, for sealing many values without a key
    /// look-up each. Destroying the tenant's keys (erasure) makes every sealed copy in the lake
    /// unreadable.
    pub async fn lake_sealer(&self, tenant: TenantId) -> Result<LakeSealer, StoreError> {
        let (version, key) = self.current_data_key(tenant.0).await?;
        Ok(LakeSealer { version, key })
    }

    /// Opens a value a `LakeSealer` made; fails once the tenant's keys are destroyed.
    pub async fn open_from_lake(
        &self,
        tenant: TenantId,
        column: &str,
        sealed: &str,
    ) -> Result<String, StoreError> {
        let plain = self
            .open_for_tenant(tenant, &lake_context(column), sealed)
            .await?;
        String::from_utf8(plain.to_vec()).map_err(StoreError::corrupt)
    }
}

/// Seals free-text values for the lake under one tenant's current data key, in the same
/// `sealed:v<version>:<base64>` form the store uses.
#[derive(Debug)]
pub struct LakeSealer {
    version: i32,
    key: DataKey,
}

impl LakeSealer {
    pub fn seal(&self, column: &str, plain: &str) -> String {
        use base64::Engine;
        let sealed = self.key.seal(&lake_context(column), plain.as_bytes());
        format!(
            "sealed:v{}:{}",
            self.version,
            base64::engine::general_purpose::STANDARD.encode(sealed)
        )
    }
}

fn lake_context(column: &str) -> Vec<u8> {
    let mut c = b"lake:".to_vec();
    c.extend_from_slice(column.as_bytes());
    c
}
