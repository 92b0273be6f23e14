//! Delivery KPIs for customers: volume, on-time rate, transit-time p50/p90, exception and
//! first-attempt delivery rates, grouped by carrier, service, lane, day or week, with filters;
//! from the processor's rollups (default) or the lake.

use crate::auth::{Auth, ReadScope};
use crate::extract::QueryMap;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use bitshipper_core::analytics::{ExportRequest, ExportTable, KpiQuery, KpiReport, KpiSource};
use bitshipper_store::AuditRecord;
use chrono::Utc;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; parsing is `KpiQuery::from_params`
pub struct KpiParams {
    /// `rollups` (default: the processor's rollups, current within seconds) or `lake` (the
    /// warehouse over the lake's tables, as of its last commit; same definitions).
    #[param(value_type = Option<String>, pattern = "^(rollups|lake)$")]
    source: Option<String>,
    /// `all` (default), `carrier`, `service`, `lane`, `day` or `week` (ship day, UTC).
    #[param(value_type = Option<String>, pattern = "^(all|carrier|service|lane|day|week)$")]
    group_by: Option<String>,
    /// First ship day included, `YYYY-MM-DD`; default: 27 days before `to`.
    #[param(value_type = Option<String>, format = Date)]
    from: Option<String>,
    /// Last ship day included, `YYYY-MM-DD`; default: today. At most 366 days in all.
    #[param(value_type = Option<String>, format = Date)]
    to: Option<String>,
    /// Only this carrier, e.g. `ups`.
    carrier: Option<String>,
    /// Only this service level, e.g. `ground`.
    service: Option<String>,
    /// Only this lane: origin region `>` destination region, e.g. `KY>CA`.
    lane: Option<String>,
}

#[utoipa::path(get, path = "/v1/analytics/kpis", tag = "analytics", security(("api_key" = [])),
    params(KpiParams),
    responses((status = 200, body = KpiReport), (status = 422, body = crate::problem::Problem),
        (status = 503, description = "this deployment has no lake, or it cannot be read now", body = crate::problem::Problem)))]
pub async fn kpis(
    auth: Auth<ReadScope>,
    State(state): State<AppState>,
    QueryMap(q): QueryMap,
) -> Result<Json<KpiReport>, ApiError> {
    let query = KpiQuery::from_params(&q, Utc::now().date_naive())
        .map_err(|errors| ApiError::Validation(errors.0))?;
    if query.source == KpiSource::Rollups {
        return Ok(Json(
            state.store.kpis_from_rollups(auth.tenant, &query).await?,
        ));
    }
    let lake = state.analytics.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "source=lake: this deployment runs without a lake (lake.enabled = false); use source=rollups".into(),
        )
    })?;
    let report = lake.kpis(auth.tenant, &query).await.map_err(|cause| {
        tracing::error!(%cause, "lake analytics query failed");
        ApiError::Unavailable(
            "the lake cannot be queried right now; retry shortly, or use source=rollups".into(),
        )
    })?;
    Ok(Json(report))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; parsing is `ExportRequest::from_params`
pub struct ExportParams {
    /// `csv` or `parquet` (required).
    #[param(value_type = String, pattern = "^(csv|parquet)$")]
    format: String,
    /// First day included (ship day for shipments, event day for events), `YYYY-MM-DD`;
    /// default: 27 days before `to`.
    #[param(value_type = Option<String>, format = Date)]
    from: Option<String>,
    /// Last day included, `YYYY-MM-DD`; default: today. At most 366 days in all.
    #[param(value_type = Option<String>, format = Date)]
    to: Option<String>,
    /// Only this carrier.
    carrier: Option<String>,
    /// Only rows with this canonical status (a shipment's current one, or an event's).
    status: Option<String>,
}

#[utoipa::path(get, path = "/v1/exports/{table}", tag = "analytics", security(("api_key" = [])),
    params(("table" = String, Path, description = "`shipments` (current state, one row each) or `events`", pattern = "^(shipments|events)$"), ExportParams),
    responses((status = 200, description = "the rows, streamed as CSV (with a header) or Parquet",
            content((String = "text/csv"), (Vec<u8> = "application/vnd.apache.parquet"))),
        (status = 422, body = crate::problem::Problem),
        (status = 503, description = "this deployment has no lake, or it cannot be read now", body = crate::problem::Problem)))]
pub async fn export(
    auth: Auth<ReadScope>,
    State(state): State<AppState>,
    axum::extract::Path(table): axum::extract::Path<String>,
    QueryMap(q): QueryMap,
) -> Result<axum::response::Response, ApiError> {
    let table = ExportTable::parse(&table)
        .ok_or_else(|| ApiError::field("table", "must be `shipments` or `events`"))?;
    let request = ExportRequest::from_params(table, &q, Utc::now().date_naive())
        .map_err(|errors| ApiError::Validation(errors.0))?;
    let lake = state.analytics.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "exports read the lake, and this deployment runs without one (lake.enabled = false)"
                .into(),
        )
    })?;
    let stream = lake.export(auth.tenant, &request).await.map_err(|cause| {
        tracing::error!(%cause, "export failed to start");
        ApiError::Unavailable("the lake cannot be read right now; retry shortly".into())
    })?;
    // Exports are audited: who took which rows out.
    state
        .store
        .audit(
            auth.tenant,
            AuditRecord::new(
                auth.actor.clone(),
                "export.started",
                format!("export:{}", request.table.name()),
            )
            .with_details(serde_json::json!(request)),
        )
        .await?;
    let filename = format!(
        "{}-{}-{}.{}",
        request.table.name(),
        request.from,
        request.to,
        request.format.extension()
    );
    let body = axum::body::Body::from_stream(as_bytes(stream));
    let mut response = axum::response::Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(request.format.content_type()),
    );
    if let Ok(v) =
        axum::http::HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
    {
        headers.insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// Chunks as `Bytes`; an error mid-stream ends the response (the client sees a cut body).
fn as_bytes(
    stream: crate::state::ExportStream,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send {
    use futures::StreamExt;
    stream.map(|chunk| {
        chunk.map(bytes::Bytes::from).map_err(|cause| {
            tracing::error!(%cause, "export stream failed");
            std::io::Error::other(cause)
        })
    })
}
