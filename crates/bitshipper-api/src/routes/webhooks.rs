//! Provider integrations: webhook endpoints (admin), the webhook receiver each provider posts
//! to (authenticated by the provider's signature, not a key), and stored raw payloads (admin).

use super::path_id;
use crate::auth::{AdminScope, Auth};
use crate::extract::PathId;
use crate::ingest::Ingest;
use crate::json::ApiJson;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bitshipper_core::FieldError;
use bitshipper_providers::signature::{verify, Scheme};
use bitshipper_providers::Provider;
use bitshipper_store::AuditRecord;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// easypost, shippo, aftership, 17track or shipengine.
    pub provider: String,
    /// A label for people.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// ShipEngine only: the JSON Web Key Set its signatures verify against (the document at
    /// https://api.shipengine.com/jwks). Replace the endpoint when ShipEngine rotates keys.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    #[schema(value_type = String, format = "uuid")]
    pub id: uuid::Uuid,
    pub provider: String,
    pub name: String,
    /// Where the provider must post: append `?token=<secret>` for providers without a
    /// signature scheme.
    pub url_path: String,
    /// How deliveries are authenticated: the signature header, or `url-token`.
    pub authentication: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedEndpointView {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// The signing secret (or URL token). Shown once: configure it at the provider. Absent for
    /// ShipEngine, which signs with its own key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub data: Vec<EndpointView>,
}

fn view(e: bitshipper_store::WebhookEndpoint) -> EndpointView {
    let scheme = Provider::from_id(&e.provider).map(Scheme::of);
    EndpointView {
        url_path: format!("/v1/webhooks/{}/{}", e.provider, e.id),
        authentication: match scheme.and_then(|s| s.header()) {
            Some(h) => format!("header {h}"),
            None => "url-token".into(),
        },
        id: e.id,
        provider: e.provider,
        name: e.name,
        created_at: e.created_at,
        revoked_at: e.revoked_at,
    }
}

#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "integrations", request_body = CreateEndpoint,
    security(("api_key" = []), ("session" = [])),
    responses((status = 201, body = CreatedEndpointView), (status = 422, body = Problem)))]
pub async fn create_endpoint(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateEndpoint>,
) -> Result<(StatusCode, Json<CreatedEndpointView>), ApiError> {
    let provider = Provider::from_id(body.provider.trim())
        .filter(|p| p.is_webhook())
        .ok_or_else(|| {
            ApiError::field(
                "provider",
                "must be one of easypost, shippo, aftership, 17track, shipengine",
            )
        })?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::field("name", "must be 1 to 100 characters"));
    }
    // ShipEngine signs with RSA: what the endpoint keeps is the public key set, not a secret.
    let (material, shown) = match (provider, body.jwks) {
        (Provider::ShipEngine, Some(jwks)) => {
            let has_rsa_key = jwks["keys"].as_array().is_some_and(|keys| {
                keys.iter()
                    .any(|k| k["kid"].is_string() && k["n"].is_string() && k["e"].is_string())
            });
            if !has_rsa_key {
                return Err(ApiError::field(
                    "jwks",
                    "must be a JSON Web Key Set with RSA keys (kid, n, e)",
                ));
            }
            (jwks.to_string(), None)
        }
        (Provider::ShipEngine, None) => {
            return Err(ApiError::field(
                "jwks",
                "is required for shipengine: the key set from https://api.shipengine.com/jwks",
            ))
        }
        (_, Some(_)) => return Err(ApiError::field("jwks", "is only for shipengine")),
        (_, None) => {
            let secret = crate::credentials::random_token();
            (secret.clone(), Some(secret))
        }
    };
    let endpoint = state
        .store
        .create_webhook_endpoint(auth.tenant, provider.id(), name, &material)
        .await?;
    state
        .store
        .audit(
            auth.tenant,
            AuditRecord::new(
                auth.actor.clone(),
                "webhook_endpoint.created",
                format!("webhook_endpoint:{}", endpoint.id),
            )
            .with_details(serde_json::json!({ "provider": provider.id(), "name": name })),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpointView {
            endpoint: view(endpoint),
            secret: shown,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "integrations",
    security(("api_key" = []), ("session" = [])),
    responses((status = 200, body = EndpointList)))]
pub async fn list_endpoints(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
) -> Result<Json<EndpointList>, ApiError> {
    let endpoints = state.store.list_webhook_endpoints(auth.tenant).await?;
    Ok(Json(EndpointList {
        data: endpoints.into_iter().map(view).collect(),
    }))
}

#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "integrations",
    security(("api_key" = []), ("session" = [])), params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = Problem)))]
pub async fn revoke_endpoint(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    let id: uuid::Uuid = path_id(&id, "webhook endpoint")?;
    if !state.store.revoke_webhook_endpoint(auth.tenant, id).await? {
        return Err(ApiError::NotFound("webhook endpoint"));
    }
    state
        .store
        .audit(
            auth.tenant,
            AuditRecord::new(
                auth.actor.clone(),
                "webhook_endpoint.revoked",
                format!("webhook_endpoint:{id}"),
            ),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a delivery did.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResult {
    pub accepted: usize,
    pub rejected: usize,
    /// Codes not in the provider's mapping table: stored with status `unknown`.
    pub unmapped_codes: Vec<String>,
    #[schema(value_type = String, format = "uuid")]
    pub raw_payload_id: uuid::Uuid,
    /// Events that could not be stored, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[utoipa::path(post, path = "/v1/webhooks/{provider}/{endpoint_id}", tag = "integrations",
    description = "Public: the provider's signature (or the endpoint's URL token) authenticates the delivery. The body is the provider's own webhook payload.",
    params(("provider" = String, Path, description = "easypost, shippo, aftership, 17track or shipengine"),
           ("endpoint_id" = String, Path, description = "From POST /v1/webhook-endpoints"),
           ("token" = Option<String>, Query, description = "The endpoint secret, for providers without a signature scheme")),
    request_body(content = serde_json::Value, content_type = "application/json"),
    responses((status = 202, body = DeliveryResult), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn receive(
    State(state): State<AppState>,
    Path((provider_id, endpoint_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<DeliveryResult>), ApiError> {
    let provider = Provider::from_id(&provider_id)
        .filter(|p| p.is_webhook())
        .ok_or(ApiError::NotFound("webhook endpoint"))?;
    let endpoint_id: uuid::Uuid = path_id(&endpoint_id, "webhook endpoint")?;
    let Some(endpoint) = state
        .store
        .webhook_endpoint_secret(provider.id(), endpoint_id)
        .await?
    else {
        return Err(ApiError::NotFound("webhook endpoint"));
    };
    let tenant = endpoint.endpoint.tenant_id;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    if let Err(e) = verify(
        provider,
        &endpoint.secret,
        &body,
        header,
        query.get("token").map(String::as_str),
    ) {
        metrics::counter!("bitshipper_webhook_signature_failures_total", "provider" => provider.id())
            .increment(1);
        tracing::warn!(provider = provider.id(), endpoint = %endpoint_id, "webhook refused: {e}");
        return Err(ApiError::SignatureRejected(e.to_string()));
    }
    let table = state
        .providers
        .get(provider)
        .ok_or_else(|| ApiError::Internal(format!("no mapping table for {}", provider.id())))?;
    let mut ingest = Ingest::new(&state.store, &state.appender, &state.mapping, tenant, false);
    let raw_payload_id = ingest
        .payload(provider, table, &body, Some(endpoint_id))
        .await?;
    ingest.flush().await?;
    metrics::counter!("bitshipper_webhooks_received_total", "provider" => provider.id())
        .increment(1);
    Ok((
        StatusCode::ACCEPTED,
        Json(DeliveryResult {
            accepted: usize::try_from(ingest.summary.events).unwrap_or(usize::MAX),
            rejected: usize::try_from(ingest.summary.rejected).unwrap_or(usize::MAX),
            unmapped_codes: ingest.summary.unmapped_codes,
            raw_payload_id,
            errors: ingest.errors,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/raw-payloads/{id}", tag = "integrations",
    security(("api_key" = []), ("session" = [])), params(("id" = String, Path, description = "raw_payload_id of an event")),
    description = "The payload exactly as the provider sent it.",
    responses((status = 200, description = "The original bytes", content_type = "application/json"), (status = 404, body = Problem)))]
pub async fn get_raw_payload(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let id: uuid::Uuid = path_id(&id, "raw payload")?;
    let payload = state
        .store
        .raw_payload(auth.tenant, id)
        .await?
        .ok_or(ApiError::NotFound("raw payload"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (
                header::HeaderName::from_static("x-bitshipper-provider"),
                payload.provider,
            ),
        ],
        payload.body,
    )
        .into_response())
}
