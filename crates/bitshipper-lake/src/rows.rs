//! The lake's three tables, column by column, and how store records become their rows. Personal
//! data never reaches a row in the clear: free text and exact coordinates are sealed under the
//! tenant's data key, the recipient is its keyed token, street lines are dropped.

use crate::LakeError;
use bitshipper_core::TrackingEvent;
use bitshipper_store::{LakePrediction, LakeSealer, LakeShipment, LogEntry};
use chrono::{DateTime, NaiveDate, Utc};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::arrow::json::ReaderBuilder;
use deltalake::arrow::record_batch::RecordBatch;
use serde::Serialize;
use std::sync::{Arc, LazyLock};

/// A table's name, columns and partitioning.
#[derive(Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub schema: SchemaRef,
    pub partition_columns: &'static [&'static str],
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}
fn timestamp(name: &str, nullable: bool) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        nullable,
    )
}
fn date(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Date32, nullable)
}

/// Every tracking event of the log, once: `events/tenant_id=.../event_date=.../*.parquet`.
pub static EVENTS: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    name: "events",
    schema: Arc::new(Schema::new(vec![
        utf8("tenant_id", false),
        date("event_date", false),
        Field::new("log_seq", DataType::Int64, false),
        utf8("event_key", false),
        utf8("event_id", true),
        utf8("carrier", false),
        utf8("tracking_number", false),
        timestamp("occurred_at", false),
        Field::new("utc_offset_minutes", DataType::Int32, false),
        utf8("status", false),
        utf8("reason", true),
        utf8("raw_code", true),
        utf8("city", true),
        utf8("region", true),
        utf8("country", true),
        utf8("postal_code", true),
        utf8("message_sealed", true),
        utf8("coordinates_sealed", true),
        utf8("raw_payload_id", true),
        timestamp("landed_at", false),
    ])),
    partition_columns: &["tenant_id", "event_date"],
});

/// A shipment's state each time the log changed it (the row with the highest `log_seq` is the
/// current one): `shipments/tenant_id=.../created_date=.../*.parquet`.
pub static SHIPMENTS: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    name: "shipments",
    schema: Arc::new(Schema::new(vec![
        utf8("tenant_id", false),
        date("created_date", false),
        utf8("shipment_id", false),
        Field::new("log_seq", DataType::Int64, false),
        utf8("carrier", false),
        utf8("tracking_number", false),
        utf8("service_level", true),
        utf8("origin_city", true),
        utf8("origin_region", true),
        utf8("origin_postal_code", true),
        utf8("origin_country", true),
        utf8("destination_city", true),
        utf8("destination_region", true),
        utf8("destination_postal_code", true),
        utf8("destination_country", true),
        utf8("lane", true),
        utf8("recipient_token", true),
        utf8("reference", true),
        Field::new("weight_grams", DataType::Float64, true),
        date("ship_date", true),
        date("promised_delivery_date", true),
        Field::new("auto_created", DataType::Boolean, false),
        utf8("status", false),
        utf8("reason", true),
        timestamp("first_scan_at", true),
        timestamp("delivered_at", true),
        timestamp("last_event_at", true),
        Field::new("events_count", DataType::Int64, false),
        timestamp("created_at", false),
        timestamp("updated_at", false),
        timestamp("cancelled_at", true),
        timestamp("landed_at", false),
    ])),
    partition_columns: &["tenant_id", "created_date"],
});

/// Each shipment's latest prediction whenever it was scored:
/// `predictions/tenant_id=.../scored_date=.../*.parquet`.
pub static PREDICTIONS: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    name: "predictions",
    schema: Arc::new(Schema::new(vec![
        utf8("tenant_id", false),
        date("scored_date", false),
        utf8("shipment_id", false),
        utf8("model_version", false),
        timestamp("scored_at", false),
        timestamp("eta_p10", false),
        timestamp("eta_p50", false),
        timestamp("eta_p90", false),
        Field::new("late_risk", DataType::Float64, true),
        timestamp("landed_at", false),
    ])),
    partition_columns: &["tenant_id", "scored_date"],
});

#[derive(Serialize)]
struct EventRow<'a> {
    tenant_id: String,
    event_date: NaiveDate,
    log_seq: i64,
    event_key: &'a str,
    event_id: Option<&'a str>,
    carrier: &'a str,
    tracking_number: &'a str,
    occurred_at: i64,
    utc_offset_minutes: i32,
    status: &'static str,
    reason: Option<&'static str>,
    raw_code: Option<&'a str>,
    city: Option<&'a str>,
    region: Option<&'a str>,
    country: Option<&'a str>,
    postal_code: Option<&'a str>,
    message_sealed: Option<String>,
    coordinates_sealed: Option<String>,
    raw_payload_id: Option<String>,
    landed_at: i64,
}

#[derive(Serialize)]
struct ShipmentRow<'a> {
    tenant_id: String,
    created_date: NaiveDate,
    shipment_id: String,
    log_seq: i64,
    carrier: &'a str,
    tracking_number: &'a str,
    service_level: Option<&'a str>,
    origin_city: Option<&'a str>,
    origin_region: Option<&'a str>,
    origin_postal_code: Option<&'a str>,
    origin_country: Option<&'a str>,
    destination_city: Option<&'a str>,
    destination_region: Option<&'a str>,
    destination_postal_code: Option<&'a str>,
    destination_country: Option<&'a str>,
    lane: Option<String>,
    recipient_token: Option<&'a str>,
    reference: Option<&'a str>,
    weight_grams: Option<f64>,
    ship_date: Option<NaiveDate>,
    promised_delivery_date: Option<NaiveDate>,
    auto_created: bool,
    status: &'a str,
    reason: Option<&'a str>,
    first_scan_at: Option<i64>,
    delivered_at: Option<i64>,
    last_event_at: Option<i64>,
    events_count: i64,
    created_at: i64,
    updated_at: i64,
    cancelled_at: Option<i64>,
    landed_at: i64,
}

#[derive(Serialize)]
struct PredictionRow<'a> {
    tenant_id: String,
    scored_date: NaiveDate,
    shipment_id: String,
    model_version: &'a str,
    scored_at: i64,
    eta_p10: i64,
    eta_p50: i64,
    eta_p90: i64,
    late_risk: Option<f64>,
    landed_at: i64,
}

fn to_batch<S: Serialize>(spec: &TableSpec, rows: &[S]) -> Result<RecordBatch, LakeError> {
    let mut decoder = ReaderBuilder::new(spec.schema.clone())
        .with_batch_size(rows.len().max(1))
        .build_decoder()?;
    decoder.serialize(rows)?;
    Ok(decoder
        .flush()?
        .unwrap_or_else(|| RecordBatch::new_empty(spec.schema.clone())))
}

/// Parsed log entries, ready to become event rows (parsing is separate so the writer can gather
/// the tenants whose keys it needs first).
pub struct ParsedEntry {
    pub seq: i64,
    pub tenant_id: bitshipper_core::TenantId,
    pub event: TrackingEvent,
}

/// Each entry parsed, or why it could not be (an unreadable entry is skipped and counted by
/// the writer, as the processor does, never blocking the log).
pub fn parse_entries_lenient(
    entries: &[LogEntry],
) -> impl Iterator<Item = Result<ParsedEntry, LakeError>> + '_ {
    entries.iter().map(|e| {
        let event: TrackingEvent = serde_json::from_str(&e.payload)
            .map_err(|err| LakeError::Corrupt(format!("log entry {}: {err}", e.seq)))?;
        Ok(ParsedEntry {
            seq: e.seq,
            tenant_id: e.tenant_id,
            event,
        })
    })
}

/// Event rows for `entries`, sealing with the sealer of each entry's tenant.
pub fn event_batch<'a>(
    entries: &[ParsedEntry],
    sealer_of: impl Fn(bitshipper_core::TenantId) -> Option<&'a LakeSealer>,
    landed_at: DateTime<Utc>,
) -> Result<RecordBatch, LakeError> {
    let landed = landed_at.timestamp_micros();
    let mut rows = Vec::with_capacity(entries.len());
    for entry in entries {
        let e = &entry.event;
        let sealer = sealer_of(entry.tenant_id).ok_or_else(|| {
            LakeError::Corrupt(format!("no data key for tenant {}", entry.tenant_id.0))
        })?;
        let location = e.location.as_ref();
        let coordinates = location.and_then(|l| match (l.lat, l.lon) {
            (Some(lat), Some(lon)) => {
                Some(sealer.seal("events.coordinates", &format!("{lat},{lon}")))
            }
            _ => None,
        });
        let utc = e.occurred_at.with_timezone(&Utc);
        rows.push(EventRow {
            tenant_id: entry.tenant_id.0.to_string(),
            event_date: utc.date_naive(),
            log_seq: entry.seq,
            event_key: e.event_key.0.as_str(),
            event_id: e.event_id.as_deref(),
            carrier: &e.carrier,
            tracking_number: &e.tracking_number,
            occurred_at: utc.timestamp_micros(),
            utc_offset_minutes: e.occurred_at.offset().local_minus_utc() / 60,
            status: e.status.as_str(),
            reason: e.reason.map(|r| r.as_str()),
            raw_code: e.raw_code.as_deref(),
            city: location.and_then(|l| l.city.as_deref()),
            region: location.and_then(|l| l.region.as_deref()),
            country: location.and_then(|l| l.country.as_deref()),
            postal_code: location.and_then(|l| l.postal_code.as_deref()),
            message_sealed: e
                .message
                .as_deref()
                .map(|m| sealer.seal("events.message", m)),
            coordinates_sealed: coordinates,
            raw_payload_id: e.raw_payload_id.map(|id| id.to_string()),
            landed_at: landed,
        });
    }
    to_batch(&EVENTS, &rows)
}

/// Shipment rows as of log position `log_seq`.
pub fn shipment_batch(
    shipments: &[LakeShipment],
    log_seq: i64,
    landed_at: DateTime<Utc>,
) -> Result<RecordBatch, LakeError> {
    let landed = landed_at.timestamp_micros();
    let micros = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_micros());
    let rows: Vec<ShipmentRow<'_>> = shipments
        .iter()
        .map(|s| {
            let o = s.origin.as_ref();
            let d = s.destination.as_ref();
            ShipmentRow {
                tenant_id: s.tenant_id.0.to_string(),
                created_date: s.created_at.date_naive(),
                shipment_id: s.shipment_id.0.to_string(),
                log_seq,
                carrier: &s.carrier,
                tracking_number: &s.tracking_number,
                service_level: s.service_level.as_deref(),
                origin_city: o.and_then(|a| a.city.as_deref()),
                origin_region: o.and_then(|a| a.region.as_deref()),
                origin_postal_code: o.and_then(|a| a.postal_code.as_deref()),
                origin_country: o.and_then(|a| a.country.as_deref()),
                destination_city: d.and_then(|a| a.city.as_deref()),
                destination_region: d.and_then(|a| a.region.as_deref()),
                destination_postal_code: d.and_then(|a| a.postal_code.as_deref()),
                destination_country: d.and_then(|a| a.country.as_deref()),
                lane: bitshipper_store::rollups::lane_name(o, d),
                recipient_token: s.recipient_token.as_deref(),
                reference: s.reference.as_deref(),
                weight_grams: s.weight_grams,
                ship_date: s.ship_date,
                promised_delivery_date: s.promised_delivery_date,
                auto_created: s.auto_created,
                status: &s.status,
                reason: s.reason.as_deref(),
                first_scan_at: micros(s.first_scan_at),
                delivered_at: micros(s.delivered_at),
                last_event_at: micros(s.last_event_at),
                events_count: s.events_count,
                created_at: s.created_at.timestamp_micros(),
                updated_at: s.updated_at.timestamp_micros(),
                cancelled_at: micros(s.cancelled_at),
                landed_at: landed,
            }
        })
        .collect();
    to_batch(&SHIPMENTS, &rows)
}

pub fn prediction_batch(
    predictions: &[LakePrediction],
    landed_at: DateTime<Utc>,
) -> Result<RecordBatch, LakeError> {
    let landed = landed_at.timestamp_micros();
    let rows: Vec<PredictionRow<'_>> = predictions
        .iter()
        .map(|p| PredictionRow {
            tenant_id: p.tenant_id.0.to_string(),
            scored_date: p.scored_at.date_naive(),
            shipment_id: p.shipment_id.0.to_string(),
            model_version: &p.model_version,
            scored_at: p.scored_at.timestamp_micros(),
            eta_p10: p.eta_p10.timestamp_micros(),
            eta_p50: p.eta_p50.timestamp_micros(),
            eta_p90: p.eta_p90.timestamp_micros(),
            late_risk: p.late_risk,
            landed_at: landed,
        })
        .collect();
    to_batch(&PREDICTIONS, &rows)
}
