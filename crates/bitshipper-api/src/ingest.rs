//! Provider payloads and CSV rows into the pipeline, one path for the webhook receiver,
//! `POST /v1/imports` and `bitshipper import`: raw payloads stored (sealed, compressed), codes
//! mapped (unmapped ones counted and kept as `unknown`), events validated like `POST /v1/events`
//! and appended in batches; CSV rows may create their shipments, bad rows are reported by line.

use crate::problem::ApiError;
use bitshipper_core::{
    CoreError, EventInput, FieldError, MappingTable, NewShipment, ShipmentInput, TenantId,
    TrackingEvent,
};
use bitshipper_pipeline::{LogAppender, PipelineError};
use bitshipper_providers::csv_import::{CsvRows, RejectedRow};
use bitshipper_providers::{Provider, ProviderError, ProviderTable};
use bitshipper_store::{Store, StoreError};
use serde::Serialize;
use std::collections::HashSet;
use utoipa::ToSchema;

const BATCH: usize = 2_000;
/// Distinct unmapped codes labelled in `/metrics` per process; the rest count as `other`.
const MAX_CODE_LABELS: usize = 500;

/// What an ingest did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct IngestSummary {
    /// CSV rows or payloads read.
    pub rows: u64,
    /// Events appended (duplicates of stored events are dropped when applied).
    pub events: u64,
    pub shipments_created: u64,
    pub rejected: u64,
    /// Codes missing from the provider's mapping table, stored as `unknown`.
    pub unmapped_codes: Vec<String>,
}

/// Appends on behalf of one tenant.
pub struct Ingest<'a> {
    store: &'a Store,
    appender: &'a LogAppender,
    mapping: &'a MappingTable,
    tenant: TenantId,
    /// On backpressure: wait and retry (imports) instead of answering 503 (webhooks).
    wait_when_busy: bool,
    batch: Vec<(TenantId, String)>,
    pub summary: IngestSummary,
    /// Rows or events refused, with why.
    pub rejected: Vec<RejectedRow>,
    pub errors: Vec<FieldError>,
}

fn code_label(provider: Provider, code: &str) -> String {
    static SEEN: std::sync::OnceLock<std::sync::Mutex<HashSet<String>>> =
        std::sync::OnceLock::new();
    let clean: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.'))
        .take(40)
        .collect();
    let key = format!("{}:{clean}", provider.id());
    match SEEN.get_or_init(Default::default).lock() {
        Ok(mut set) if set.contains(&key) || set.len() < MAX_CODE_LABELS => {
            set.insert(key);
            clean
        }
        _ => "other".into(),
    }
}

/// A payload that cannot be read: 400 naming the place.
pub fn payload_error(e: ProviderError) -> ApiError {
    match e {
        ProviderError::Invalid { path, reason } => ApiError::InvalidPayload { path, reason },
        ProviderError::Json(reason) => ApiError::InvalidPayload {
            path: "$".into(),
            reason: format!("not valid JSON: {reason}"),
        },
        other => ApiError::Internal(other.to_string()),
    }
}

impl<'a> Ingest<'a> {
    pub fn new(
        store: &'a Store,
        appender: &'a LogAppender,
        mapping: &'a MappingTable,
        tenant: TenantId,
        wait_when_busy: bool,
    ) -> Self {
        Ingest {
            store,
            appender,
            mapping,
            tenant,
            wait_when_busy,
            batch: Vec::new(),
            summary: IngestSummary::default(),
            rejected: Vec::new(),
            errors: Vec::new(),
        }
    }

    async fn push(&mut self, event: TrackingEvent) -> Result<(), ApiError> {
        self.batch.push((
            self.tenant,
            serde_json::to_string(&event).map_err(|e| ApiError::Internal(e.to_string()))?,
        ));
        self.summary.events += 1;
        if self.batch.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Appends what is batched; call once at the end.
    pub async fn flush(&mut self) -> Result<(), ApiError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let n = batch.len() as u64;
        loop {
            match self.appender.append(batch.clone()).await {
                Ok(_) => break,
                Err(PipelineError::Busy { retry_after_secs }) if self.wait_when_busy => {
                    tokio::time::sleep(std::time::Duration::from_secs(u64::from(
                        retry_after_secs.clamp(1, 5),
                    )))
                    .await
                }
                Err(e) => return Err(e.into()),
            }
        }
        metrics::counter!("bitshipper_events_ingested_total").increment(n);
        Ok(())
    }

    /// One provider payload: stored raw, parsed, mapped, appended. Returns the raw payload id.
    pub async fn payload(
        &mut self,
        provider: Provider,
        table: &ProviderTable,
        body: &[u8],
        endpoint: Option<uuid::Uuid>,
    ) -> Result<uuid::Uuid, ApiError> {
        let events = bitshipper_providers::parse(provider, table, body).map_err(payload_error)?;
        self.summary.rows += 1;
        let raw = self
            .store
            .store_raw_payload(
                self.tenant,
                provider.id(),
                endpoint,
                events.first().map(|e| e.tracking_number.as_str()),
                body,
            )
            .await?;
        for (i, e) in events.iter().enumerate() {
            if !e.mapped {
                metrics::counter!("bitshipper_unmapped_codes_total", "provider" => provider.id(), "code" => code_label(provider, &e.raw_code))
                    .increment(1);
                if !self.summary.unmapped_codes.contains(&e.raw_code) {
                    self.summary.unmapped_codes.push(e.raw_code.clone());
                }
            }
            match e.to_tracking_event(
                self.tenant,
                self.mapping,
                Some(raw),
                &format!("events[{i}]."),
            ) {
                Ok(event) => self.push(event).await?,
                Err(CoreError::Invalid(mut errors)) => {
                    self.summary.rejected += 1;
                    self.errors.append(&mut errors);
                }
                Err(other) => return Err(other.into()),
            }
        }
        Ok(raw)
    }

    /// CSV rows: shipments created where mapped (existing ones kept), events appended, bad rows
    /// recorded with their line numbers.
    pub async fn csv<R: std::io::Read>(&mut self, rows: CsvRows<R>) -> Result<(), ApiError> {
        let mut shipments_seen = HashSet::new();
        for row in rows {
            self.summary.rows += 1;
            let row = match row {
                Ok(r) => r,
                Err(r) => {
                    self.reject(r);
                    continue;
                }
            };
            let mut event_value = row.event;
            self.unknown_unless_mapped(&mut event_value);
            let event = match EventInput::parse(self.tenant, &event_value, self.mapping, "") {
                Ok(event) => event,
                Err(CoreError::Invalid(errors)) => {
                    self.reject(RejectedRow {
                        line: row.line,
                        reason: errors
                            .iter()
                            .map(|e| format!("{}: {}", e.field, e.reason))
                            .collect::<Vec<_>>()
                            .join("; "),
                    });
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(shipment) = &row.shipment {
                let key = (event.carrier.clone(), event.tracking_number.clone());
                if shipments_seen.insert(key) {
                    match self.create_shipment(shipment).await? {
                        Ok(created) => self.summary.shipments_created += u64::from(created),
                        Err(reason) => {
                            self.reject(RejectedRow {
                                line: row.line,
                                reason,
                            });
                            continue;
                        }
                    }
                }
            }
            self.push(event).await?;
        }
        Ok(())
    }

    /// A carrier code the built-in table does not know, with no explicit status, is kept as
    /// `unknown` rather than refused: history is never dropped for a missing mapping.
    fn unknown_unless_mapped(&mut self, event: &mut serde_json::Value) {
        let Some(obj) = event.as_object_mut() else {
            return;
        };
        if obj.get("status").is_some() {
            return;
        }
        let carrier = obj
            .get("carrier")
            .and_then(|c| c.as_str())
            .map(|c| c.trim().to_ascii_lowercase());
        let code = obj
            .get("raw_code")
            .and_then(|c| c.as_str())
            .map(str::to_string);
        if let (Some(carrier), Some(code)) = (carrier, code) {
            if self.mapping.lookup(&carrier, &code).is_none() {
                metrics::counter!("bitshipper_unmapped_codes_total", "provider" => "csv", "code" => "carrier-code")
                    .increment(1);
                if !self.summary.unmapped_codes.contains(&code) {
                    self.summary.unmapped_codes.push(code);
                }
                obj.insert("status".into(), serde_json::json!("unknown"));
            }
        }
    }

    fn reject(&mut self, row: RejectedRow) {
        self.summary.rejected += 1;
        // Bounded: a file of nothing but bad rows must not fill memory; the count stays exact.
        if self.rejected.len() < 100_000 {
            self.rejected.push(row);
        }
    }

    /// `Ok(Ok(true))` created, `Ok(Ok(false))` existed, `Ok(Err(reason))` invalid row.
    async fn create_shipment(
        &self,
        shipment: &serde_json::Value,
    ) -> Result<Result<bool, String>, ApiError> {
        let input: ShipmentInput = match serde_json::from_value(shipment.clone()) {
            Ok(i) => i,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let new = match NewShipment::try_from(input) {
            Ok(n) => n,
            Err(CoreError::Invalid(errors)) => {
                return Ok(Err(errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.reason))
                    .collect::<Vec<_>>()
                    .join("; ")))
            }
            Err(e) => return Err(e.into()),
        };
        match self.store.create_shipment(self.tenant, new).await {
            Ok(_) => Ok(Ok(true)),
            Err(StoreError::Conflict(_)) => Ok(Ok(false)),
            Err(e) => Err(e.into()),
        }
    }
}
