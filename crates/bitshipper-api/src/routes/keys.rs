//! API keys: create (secret shown once), list, get, revoke. Admin scope.

use super::path_id;
use crate::auth::{AdminScope, Auth};
use crate::extract::PathId;
use crate::json::ApiJson;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::views::{ApiKeyView, CreatedApiKeyView};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use bitshipper_core::{ApiKeyId, Scope};
use bitshipper_store::probes::Resource;
use bitshipper_store::AuditRecord;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// A label for people, e.g. `warehouse-scanner`.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    #[schema(min_items = 1)]
    pub scopes: Vec<Scope>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<DateTime<Utc>>,
}

#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = CreateApiKey,
    security(("api_key" = [])),
    responses((status = 201, body = CreatedApiKeyView), (status = 422, body = Problem), (status = 403, body = Problem)))]
pub async fn create_key(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKeyView>), ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::field("name", "must be 1 to 100 characters"));
    }
    if body.scopes.is_empty() {
        return Err(ApiError::field("scopes", "at least one scope is required"));
    }
    if body.expires_at.is_some_and(|e| e <= Utc::now()) {
        return Err(ApiError::field("expires_at", "must be in the future"));
    }
    let mut scopes = body.scopes;
    scopes.sort();
    scopes.dedup();
    let created = state
        .store
        .create_api_key(auth.tenant, name, &scopes, body.expires_at)
        .await?;
    state
        .store
        .audit(
            auth.tenant,
            AuditRecord::api_key_created(auth.actor.clone(), &created.key),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKeyView {
            key: created.key.into(),
            secret: created.secret,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", security(("api_key" = [])),
    responses((status = 200, body = [ApiKeyView])))]
pub async fn list_keys(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    let keys = state.store.list_api_keys(auth.tenant).await?;
    Ok(Json(keys.into_iter().map(ApiKeyView::from).collect()))
}

#[utoipa::path(get, path = "/v1/api-keys/{id}", tag = "api-keys", security(("api_key" = [])),
    params(("id" = String, Path, description = "API key id")),
    responses((status = 200, body = ApiKeyView), (status = 404, body = Problem)))]
pub async fn get_key(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<ApiKeyView>, ApiError> {
    let id: ApiKeyId = path_id(&id, "api key")?;
    let Some(key) = state.store.get_api_key(auth.tenant, id).await? else {
        return Err(super::not_found(&state, Resource::ApiKey, id.0, auth.tenant).await);
    };
    Ok(Json(key.into()))
}

#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", security(("api_key" = [])),
    params(("id" = String, Path, description = "API key id")),
    responses((status = 204, description = "revoked"), (status = 404, body = Problem)))]
pub async fn revoke_key(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    let id: ApiKeyId = path_id(&id, "api key")?;
    if state.store.get_api_key(auth.tenant, id).await?.is_none() {
        return Err(super::not_found(&state, Resource::ApiKey, id.0, auth.tenant).await);
    }
    if state.store.revoke_api_key(auth.tenant, id).await? {
        state
            .store
            .audit(
                auth.tenant,
                AuditRecord::api_key_revoked(auth.actor.clone(), id),
            )
            .await?;
    }
    state.keys.forget(id);
    Ok(StatusCode::NO_CONTENT)
}
