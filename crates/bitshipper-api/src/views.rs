//! Response bodies: what the API shows of stored records.

use bitshipper_core::{Address, Location, Reason, Recipient, Scope, Status, TrackingEvent};
use bitshipper_store::{ApiKey, Shipment, StoredEvent};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ShipmentView {
    #[schema(value_type = String, format = "uuid")]
    pub id: uuid::Uuid,
    pub carrier: String,
    pub tracking_number: String,
    /// Folded from the events; `cancelled` when the shipper cancelled it before delivery.
    pub status: Status,
    pub reason: Option<Reason>,
    pub service_level: Option<String>,
    pub origin: Option<Address>,
    pub destination: Option<Address>,
    pub recipient: Option<Recipient>,
    pub weight_grams: Option<f64>,
    #[schema(value_type = Option<String>, format = Date)]
    pub ship_date: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub promised_delivery_date: Option<NaiveDate>,
    pub reference: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub last_location: Option<Location>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_scan_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_event_at: Option<DateTime<Utc>>,
    pub events_count: u32,
    /// Created by an event for an unknown tracking number (auto-track).
    pub auto_created: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub cancelled_at: Option<DateTime<Utc>>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    /// The latest prediction for a shipment in transit (absent before the first scan, when no
    /// model is live, and for shipments finished before one was).
    pub prediction: Option<PredictionView>,
}

/// The predicted delivery window: 80% of deliveries fall between p10 and p90.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EtaWindow {
    #[schema(value_type = String, format = DateTime)]
    pub p10: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub p50: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub p90: DateTime<Utc>,
}

/// A model's prediction for a shipment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PredictionView {
    pub eta: EtaWindow,
    /// Probability of delivery after the promised date (absent without a promised date).
    pub late_risk: Option<f64>,
    /// What raised the late risk most, in plain words.
    pub reasons: Vec<String>,
    pub model_version: String,
    #[schema(value_type = String, format = DateTime)]
    pub scored_at: DateTime<Utc>,
}

impl From<bitshipper_store::PredictionWrite> for PredictionView {
    fn from(p: bitshipper_store::PredictionWrite) -> Self {
        Self {
            eta: EtaWindow {
                p10: p.eta_p10,
                p50: p.eta_p50,
                p90: p.eta_p90,
            },
            late_risk: p.late_risk,
            reasons: p.reasons,
            model_version: p.model_version,
            scored_at: p.scored_at,
        }
    }
}

impl From<Shipment> for ShipmentView {
    fn from(s: Shipment) -> Self {
        let status = s.effective_status();
        let d = s.details;
        ShipmentView {
            id: s.id.0,
            carrier: d.carrier,
            tracking_number: d.tracking_number,
            status,
            reason: s.state.reason,
            service_level: d.service_level,
            origin: d.origin,
            destination: d.destination,
            recipient: d.recipient,
            weight_grams: d.weight_grams,
            ship_date: d.ship_date,
            promised_delivery_date: d.promised_delivery_date,
            reference: d.reference,
            metadata: d.metadata,
            last_location: s.state.last_location,
            first_scan_at: s.state.first_scan_at,
            delivered_at: s.state.delivered_at,
            last_event_at: s.state.last_event_at,
            events_count: s.state.events_count,
            auto_created: s.auto_created,
            cancelled_at: s.cancelled_at,
            created_at: s.created_at,
            updated_at: s.updated_at,
            prediction: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShipmentPage {
    pub data: Vec<ShipmentView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One entry of a shipment's timeline: the normalized event with its raw code.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntry {
    #[serde(flatten)]
    pub event: TrackingEvent,
    #[schema(value_type = String, format = DateTime)]
    pub received_at: DateTime<Utc>,
}

impl From<StoredEvent> for TimelineEntry {
    fn from(e: StoredEvent) -> Self {
        TimelineEntry {
            event: e.event,
            received_at: e.received_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    #[schema(value_type = String, format = "uuid")]
    pub shipment_id: uuid::Uuid,
    pub events: Vec<TimelineEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    #[schema(value_type = String, format = "uuid")]
    pub id: uuid::Uuid,
    pub name: String,
    /// The first characters of the secret, to recognize the key.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        ApiKeyView {
            id: k.id.0,
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes,
            created_at: k.created_at,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A key just created. `secret` is shown this once and never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKeyView {
    #[serde(flatten)]
    pub key: ApiKeyView,
    pub secret: String,
}
