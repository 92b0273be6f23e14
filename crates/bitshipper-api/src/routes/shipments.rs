//! Shipments: create, get, look up by tracking number, list with filters and cursor pages,
//! update, cancel, and the timeline of events.

use super::path_id;
use crate::auth::{Auth, ReadScope, WriteScope};
use crate::extract::{PathId, QueryMap};
use crate::json::ApiJson;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::views::{ShipmentPage, ShipmentView, Timeline};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use bitshipper_core::event::{
    normalize_carrier, normalize_tracking_number, parse_rfc3339_with_offset,
};
use bitshipper_core::{NewShipment, ShipmentId, ShipmentInput, ShipmentPatch, Status};
use bitshipper_store::ShipmentFilter;
use serde::Deserialize;
use utoipa::IntoParams;

#[utoipa::path(post, path = "/v1/shipments", tag = "shipments", request_body = ShipmentInput,
    security(("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for retries (1 to 255 printable ASCII characters)", pattern = "^[!-~]{1,255}$")),
    responses((status = 201, body = ShipmentView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_shipment(
    auth: Auth<WriteScope>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<ShipmentInput>,
) -> Result<(StatusCode, Json<ShipmentView>), ApiError> {
    let new = NewShipment::try_from(input)?;
    let shipment = state.store.create_shipment(auth.tenant, new).await?;
    Ok((StatusCode::CREATED, Json(shipment.into())))
}

#[utoipa::path(get, path = "/v1/shipments/{id}", tag = "shipments", security(("api_key" = [])),
    params(("id" = String, Path, description = "Shipment id")),
    responses((status = 200, body = ShipmentView), (status = 404, body = Problem)))]
pub async fn get_shipment(
    auth: Auth<ReadScope>,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<ShipmentView>, ApiError> {
    let id: ShipmentId = path_id(&id, "shipment")?;
    let shipment = shipment_or_404(&state, auth.tenant, id).await?;
    let mut views = with_predictions(&state, auth.tenant, vec![shipment]).await?;
    Ok(Json(views.remove(0)))
}

/// Views of `shipments` with their stored predictions.
async fn with_predictions(
    state: &AppState,
    tenant: bitshipper_core::TenantId,
    shipments: Vec<bitshipper_store::Shipment>,
) -> Result<Vec<ShipmentView>, ApiError> {
    let ids: Vec<ShipmentId> = shipments.iter().map(|s| s.id).collect();
    let mut predictions = state.store.predictions(tenant, &ids).await?;
    Ok(shipments
        .into_iter()
        .map(|s| {
            let prediction = predictions.remove(&s.id).map(|p| p.latest.into());
            ShipmentView {
                prediction,
                ..s.into()
            }
        })
        .collect())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    #[param(min_length = 1, max_length = 32, pattern = "^[A-Za-z0-9_-]+$")]
    pub carrier: String,
    #[param(min_length = 1, max_length = 64, pattern = "^[!-~]+$")]
    pub tracking_number: String,
}

#[utoipa::path(get, path = "/v1/shipments/lookup", tag = "shipments", security(("api_key" = [])),
    params(LookupQuery),
    responses((status = 200, body = ShipmentView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn lookup_shipment(
    auth: Auth<ReadScope>,
    State(state): State<AppState>,
    QueryMap(q): QueryMap,
) -> Result<Json<ShipmentView>, ApiError> {
    let mut errors = bitshipper_core::FieldErrors::default();
    let carrier = match q.get("carrier") {
        None => {
            errors.push("carrier", "is required");
            None
        }
        Some(c) => normalize_carrier(c)
            .map_err(|e| errors.push("carrier", e))
            .ok(),
    };
    let tracking = match q.get("tracking_number") {
        None => {
            errors.push("tracking_number", "is required");
            None
        }
        Some(t) => normalize_tracking_number(t)
            .map_err(|e| errors.push("tracking_number", e))
            .ok(),
    };
    let (Some(carrier), Some(tracking)) = (carrier, tracking) else {
        return Err(ApiError::Validation(errors.0));
    };
    let shipment = state
        .store
        .find_shipment_by_tracking(auth.tenant, &carrier, &tracking)
        .await?
        .ok_or(ApiError::NotFound("shipment"))?;
    let mut views = with_predictions(&state, auth.tenant, vec![shipment]).await?;
    Ok(Json(views.remove(0)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Canonical status, e.g. `in_transit`, or `cancelled`.
    pub status: Option<Status>,
    #[param(min_length = 1, max_length = 32, pattern = "^[A-Za-z0-9_-]+$")]
    pub carrier: Option<String>,
    pub reference: Option<String>,
    /// Shipments to this recipient email (matched through a keyed hash; emails are not stored
    /// in plaintext).
    #[param(max_length = 254)]
    pub recipient_email: Option<String>,
    /// Created at or after this RFC 3339 time (with offset).
    #[param(value_type = Option<String>, format = DateTime)]
    pub created_from: Option<String>,
    /// Created before this RFC 3339 time (with offset).
    #[param(value_type = Option<String>, format = DateTime)]
    pub created_to: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<String>, format = "uuid")]
    pub cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/shipments", tag = "shipments", security(("api_key" = [])),
    params(ListQuery),
    responses((status = 200, body = ShipmentPage), (status = 422, body = Problem)))]
pub async fn list_shipments(
    auth: Auth<ReadScope>,
    State(state): State<AppState>,
    QueryMap(q): QueryMap,
) -> Result<Json<ShipmentPage>, ApiError> {
    const KNOWN: &[&str] = &[
        "status",
        "carrier",
        "reference",
        "recipient_email",
        "created_from",
        "created_to",
        "cursor",
        "limit",
    ];
    let mut errors = bitshipper_core::FieldErrors::default();
    for k in q.keys() {
        if !KNOWN.contains(&k.as_str()) {
            errors.push(k.clone(), "unknown query parameter");
        }
    }
    let mut filter = ShipmentFilter {
        limit: 50,
        ..Default::default()
    };
    if let Some(s) = q.get("status") {
        filter.status = s
            .parse::<Status>()
            .map_err(|e| errors.push("status", e))
            .ok();
    }
    if let Some(c) = q.get("carrier") {
        filter.carrier = normalize_carrier(c)
            .map_err(|e| errors.push("carrier", e))
            .ok();
    }
    filter.reference = q.get("reference").cloned();
    if let Some(e) = q.get("recipient_email") {
        if e.trim().is_empty() || e.chars().count() > 254 {
            errors.push("recipient_email", "must be 1 to 254 characters");
        } else {
            filter.recipient_email = Some(e.clone());
        }
    }
    for (name, slot) in [
        ("created_from", &mut filter.created_from),
        ("created_to", &mut filter.created_to),
    ] {
        if let Some(t) = q.get(name) {
            *slot = parse_rfc3339_with_offset(t)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| errors.push(name, e))
                .ok();
        }
    }
    if let Some(c) = q.get("cursor") {
        filter.after = Some(
            c.parse::<ShipmentId>()
                .map_err(|_| errors.push("cursor", "is not a cursor returned by this API"))
                .unwrap_or_default(),
        );
    }
    if let Some(l) = q.get("limit") {
        let max = state.limits.max_page_size;
        match l.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => filter.limit = n,
            _ => errors.push("limit", format!("must be a whole number from 1 to {max}")),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors.0));
    }
    // One extra row tells whether another page exists.
    let wanted = filter.limit;
    filter.limit += 1;
    let mut rows = state.store.list_shipments(auth.tenant, &filter).await?;
    let more = rows.len() > wanted as usize;
    rows.truncate(wanted as usize);
    let next_cursor = more
        .then(|| rows.last().map(|s| s.id.to_string()))
        .flatten();
    Ok(Json(ShipmentPage {
        data: with_predictions(&state, auth.tenant, rows).await?,
        next_cursor,
    }))
}

#[utoipa::path(patch, path = "/v1/shipments/{id}", tag = "shipments", request_body = ShipmentPatch,
    security(("api_key" = [])), params(("id" = String, Path, description = "Shipment id")),
    responses((status = 200, body = ShipmentView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_shipment(
    auth: Auth<WriteScope>,
    State(state): State<AppState>,
    PathId(id): PathId,
    ApiJson(patch): ApiJson<ShipmentPatch>,
) -> Result<Json<ShipmentView>, ApiError> {
    let id: ShipmentId = path_id(&id, "shipment")?;
    let current = shipment_or_404(&state, auth.tenant, id).await?;
    let next = patch.apply_to(&current.details)?;
    state.store.update_shipment(auth.tenant, id, &next).await?;
    let updated = shipment_or_404(&state, auth.tenant, id).await?;
    Ok(Json(updated.into()))
}

#[utoipa::path(post, path = "/v1/shipments/{id}/cancel", tag = "shipments", security(("api_key" = [])),
    params(("id" = String, Path, description = "Shipment id")),
    responses((status = 200, body = ShipmentView), (status = 404, body = Problem)))]
pub async fn cancel_shipment(
    auth: Auth<WriteScope>,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<ShipmentView>, ApiError> {
    let id: ShipmentId = path_id(&id, "shipment")?;
    if !state.store.cancel_shipment(auth.tenant, id).await? {
        return Err(ApiError::NotFound("shipment"));
    }
    let shipment = shipment_or_404(&state, auth.tenant, id).await?;
    Ok(Json(shipment.into()))
}

#[utoipa::path(get, path = "/v1/shipments/{id}/events", tag = "shipments", security(("api_key" = [])),
    params(("id" = String, Path, description = "Shipment id")),
    responses((status = 200, body = Timeline), (status = 404, body = Problem)))]
pub async fn shipment_events(
    auth: Auth<ReadScope>,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<Timeline>, ApiError> {
    let id: ShipmentId = path_id(&id, "shipment")?;
    shipment_or_404(&state, auth.tenant, id).await?;
    let events = state.store.list_events(auth.tenant, id).await?;
    Ok(Json(Timeline {
        shipment_id: id.0,
        events: events.into_iter().map(Into::into).collect(),
    }))
}

/// The tenant's shipment, or 404 (also for another tenant's id).
async fn shipment_or_404(
    state: &AppState,
    tenant: bitshipper_core::TenantId,
    id: ShipmentId,
) -> Result<bitshipper_store::Shipment, ApiError> {
    match state.store.get_shipment(tenant, id).await? {
        Some(s) => Ok(s),
        None => Err(super::not_found(
            state,
            bitshipper_store::probes::Resource::Shipment,
            id.0,
            tenant,
        )
        .await),
    }
}
