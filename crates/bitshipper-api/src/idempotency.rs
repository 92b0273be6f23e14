//! `Idempotency-Key` on POSTs, scoped to the tenant: the same key and body replay the first
//! answer; the same key with another body is 422; a retry while the first runs is 409. Answers
//! of 5xx are not kept, so a retry after a server failure runs again.

use crate::auth::Authenticated;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bitshipper_store::IdempotencyBegin;
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";
const MAX_KEY_LEN: usize = 255;
/// Responses larger than this are not kept for replay (the request still runs).
const MAX_STORED_RESPONSE: usize = 4 * 1024 * 1024;

pub async fn idempotency(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if request.method() != Method::POST {
        return Ok(next.run(request).await);
    }
    let Some(key) = request.headers().get(HEADER) else {
        return Ok(next.run(request).await);
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| {
            !k.is_empty() && k.len() <= MAX_KEY_LEN && k.chars().all(|c| c.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} printable ASCII characters"
            ))
        })?
        .to_string();
    let Some(tenant) = request
        .extensions()
        .get::<Authenticated>()
        .map(|a| a.tenant)
    else {
        return Ok(next.run(request).await);
    };

    let (parts, body) = request.into_parts();
    let limit = state.limits.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str().as_bytes());
    hasher.update(b" ");
    hasher.update(parts.uri.to_string().as_bytes());
    hasher.update(b"\n");
    hasher.update(&bytes);
    let request_hash = hex::encode(hasher.finalize());

    match state
        .store
        .begin_idempotency(tenant, &key, &request_hash)
        .await?
    {
        IdempotencyBegin::Mismatch => Err(ApiError::IdempotencyMismatch),
        IdempotencyBegin::InProgress => Err(ApiError::IdempotencyInProgress),
        IdempotencyBegin::Replay { status, body } => Ok(replay(status, body)),
        IdempotencyBegin::Started => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            let (mut parts, body) = response.into_parts();
            let body = match axum::body::to_bytes(body, MAX_STORED_RESPONSE).await {
                Ok(b) => b,
                Err(e) => {
                    let _ = state.store.abort_idempotency(tenant, &key).await;
                    return Err(ApiError::Internal(format!(
                        "response too large to keep: {e}"
                    )));
                }
            };
            if parts.status.is_server_error() {
                state.store.abort_idempotency(tenant, &key).await?;
            } else {
                let text = String::from_utf8_lossy(&body);
                state
                    .store
                    .complete_idempotency(tenant, &key, parts.status.as_u16(), &text)
                    .await?;
            }
            parts.headers.insert(
                HEADER,
                HeaderValue::from_str(&key).unwrap_or(HeaderValue::from_static("")),
            );
            Ok(Response::from_parts(parts, Body::from(body)))
        }
    }
}

fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let content_type = if status.is_client_error() || status.is_server_error() {
        crate::problem::PROBLEM_CONTENT_TYPE
    } else {
        "application/json"
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
