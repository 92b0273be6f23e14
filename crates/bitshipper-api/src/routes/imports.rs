//! `POST /v1/imports`: a CSV file (with its column mapping) or one provider payload, imported
//! into the caller's tenant. Bounded by the request body limit; `bitshipper import` streams
//! files of any size.

use crate::auth::{Auth, WriteScope};
use crate::ingest::{Ingest, IngestSummary};
use crate::json::ApiJson;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use bitshipper_providers::csv_import::{CsvMapping, CsvRows};
use bitshipper_providers::Provider;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// `csv`, or a provider format (ups-track, fedex-track, usps-track, dhl-track, easypost,
    /// shippo, aftership, 17track, shipengine).
    pub format: String,
    /// For `csv`: the column mapping (the JSON form of the mapping file).
    #[schema(value_type = Option<Object>)]
    pub mapping: Option<serde_json::Value>,
    /// For `csv`: the file's text, header first.
    pub csv: Option<String>,
    /// For a provider format: its payload.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
}

/// A rejected CSV row.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedRowView {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    #[serde(flatten)]
    pub summary: IngestSummary,
    pub rejected_rows: Vec<RejectedRowView>,
    #[schema(value_type = Option<String>, format = "uuid")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_payload_id: Option<uuid::Uuid>,
}

#[utoipa::path(post, path = "/v1/imports", tag = "integrations", request_body = ImportRequest,
    security(("api_key" = []), ("session" = [])),
    description = "Imports history. Importing the same content twice adds nothing: events are identified by their content and shipments by carrier and tracking number.",
    responses((status = 200, body = ImportResult), (status = 400, body = Problem), (status = 422, body = Problem)))]
pub async fn import(
    auth: Auth<WriteScope>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ImportRequest>,
) -> Result<Json<ImportResult>, ApiError> {
    let format = body.format.trim().to_ascii_lowercase();
    let mut ingest = Ingest::new(
        &state.store,
        &state.appender,
        &state.mapping,
        auth.tenant,
        false,
    );
    let mut raw_payload_id = None;
    if format == "csv" {
        let mapping = body
            .mapping
            .ok_or_else(|| ApiError::field("mapping", "is required for csv"))?;
        let mapping = CsvMapping::parse(&mapping.to_string())
            .map_err(|e| ApiError::field("mapping", e.to_string()))?;
        let text = body
            .csv
            .ok_or_else(|| ApiError::field("csv", "is required for csv"))?;
        let rows = CsvRows::new(text.as_bytes(), mapping)
            .map_err(|e| ApiError::field("csv", e.to_string()))?;
        ingest.csv(rows).await?;
    } else {
        let provider = Provider::from_id(&format).ok_or_else(|| {
            ApiError::field("format", "must be csv, ups-track, fedex-track, usps-track, dhl-track, easypost, shippo, aftership, 17track or shipengine")
        })?;
        let payload = body
            .payload
            .ok_or_else(|| ApiError::field("payload", "is required for a provider format"))?;
        let table = state
            .providers
            .get(provider)
            .ok_or_else(|| ApiError::Internal(format!("no mapping table for {}", provider.id())))?;
        let bytes = serde_json::to_vec(&payload).map_err(|e| ApiError::Internal(e.to_string()))?;
        raw_payload_id = Some(ingest.payload(provider, table, &bytes, None).await?);
    }
    ingest.flush().await?;
    Ok(Json(ImportResult {
        rejected_rows: ingest
            .rejected
            .iter()
            .take(1000)
            .map(|r| RejectedRowView {
                line: r.line,
                reason: r.reason.clone(),
            })
            .collect(),
        summary: ingest.summary,
        raw_payload_id,
    }))
}
