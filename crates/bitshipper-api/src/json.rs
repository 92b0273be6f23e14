//! JSON request bodies with useful errors: 415 for a wrong content type, 413 past the size
//! limit, 400 for syntax errors with line and column, 422 naming the field for wrong types or
//! missing fields.

use crate::problem::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A body parsed into `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// A body that is syntactically valid JSON, left as a value for field-by-field validation.
#[derive(Debug)]
pub struct JsonValue(pub Value, pub Bytes);

async fn read_json_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/json" && !mime.ends_with("+json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    let limit = state.limits.max_body_bytes;
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
    }
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })
}

fn parse_value(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::MalformedJson(e.to_string()))
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = read_json_bytes(req, state).await?;
        let value = parse_value(&bytes)?;
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." {
                    "body".to_string()
                } else {
                    path
                };
                ApiError::field(field, clean_serde_message(&e.into_inner().to_string()))
            })
    }
}

impl FromRequest<AppState> for JsonValue {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = read_json_bytes(req, state).await?;
        Ok(JsonValue(parse_value(&bytes)?, bytes))
    }
}

/// serde's messages mention Rust types and positions in a re-serialized value; keep the part a
/// client can act on.
fn clean_serde_message(msg: &str) -> String {
    let msg = msg.split(" at line ").next().unwrap_or(msg);
    msg.replace("struct ", "").replace("variant ", "value ")
}
