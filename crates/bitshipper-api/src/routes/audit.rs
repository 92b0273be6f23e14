//! Reading the tenant's audit log (admin scope).

use crate::auth::{AdminScope, Auth};
use crate::extract::QueryMap;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    /// Position in the tenant's chain, from 1.
    pub seq: i64,
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// Who acted: `api_key:<id>` or `cli`.
    pub actor: String,
    /// What happened, e.g. `api_key.created`, `api_key.revoked`, `tenant.created`.
    pub action: String,
    pub target: String,
    pub details: serde_json::Value,
    /// SHA-256 over this entry and `prev_hash`: the chain `bitshipper audit verify` checks.
    pub hash: String,
    pub prev_hash: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub data: Vec<AuditEntryView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<String>, pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("api_key" = [])), params(AuditQuery),
    responses((status = 200, body = AuditPage)))]
pub async fn list_audit(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    QueryMap(q): QueryMap,
) -> Result<Json<AuditPage>, ApiError> {
    let mut errors = bitshipper_core::FieldErrors::default();
    for k in q.keys() {
        if k != "cursor" && k != "limit" {
            errors.push(k.clone(), "unknown query parameter");
        }
    }
    let before = match q.get("cursor") {
        None => None,
        Some(c) => match c.parse::<i64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                errors.push("cursor", "is not a cursor returned by this API");
                None
            }
        },
    };
    let max = state.limits.max_page_size;
    let limit = match q.get("limit").map(|l| l.parse::<u32>()) {
        None => 50,
        Some(Ok(n)) if (1..=max).contains(&n) => n,
        Some(_) => {
            errors.push("limit", format!("must be a whole number from 1 to {max}"));
            50
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors.0));
    }
    let mut rows = state
        .store
        .audit_entries(auth.tenant, before, limit + 1)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last().map(|e| e.seq.to_string()))
        .flatten();
    let data = rows
        .into_iter()
        .map(|e| AuditEntryView {
            seq: e.seq,
            at: e.at,
            actor: e.actor,
            action: e.action,
            target: e.target,
            details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
            hash: e.hash,
            prev_hash: e.prev_hash,
        })
        .collect();
    Ok(Json(AuditPage { data, next_cursor }))
}
