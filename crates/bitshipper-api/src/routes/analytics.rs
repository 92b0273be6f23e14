//! Delivery KPIs for customers: volume, on-time rate, transit-time p50/p90, exception and
//! first-attempt delivery rates, grouped by carrier, service, lane, day or week, with filters.

use crate::auth::{Auth, ReadScope};
use crate::extract::QueryMap;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use bitshipper_core::analytics::{KpiQuery, KpiReport};
use chrono::Utc;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; parsing is `KpiQuery::from_params`
pub struct KpiParams {
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
    let source = state.analytics.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "analytics are off: this deployment runs without a lake (lake.enabled = false)".into(),
        )
    })?;
    let report = source.kpis(auth.tenant, &query).await.map_err(|cause| {
        tracing::error!(%cause, "analytics query failed");
        ApiError::Unavailable("analytics cannot be computed right now; retry shortly".into())
    })?;
    Ok(Json(report))
}
