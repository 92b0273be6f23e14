//! RFC 9457 problem details: every error the API returns, with a stable `type`, a status, a
//! human-readable detail and, for bad input, the offending fields. Internal causes are logged,
//! never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bitshipper_core::{CoreError, FieldError};
use bitshipper_pipeline::PipelineError;
use bitshipper_store::StoreError;
use serde::Serialize;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
const TYPE_BASE: &str = "https://bitshipper.dev/problems/";

/// The API crate's error type; each variant is one documented problem type.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    BadRequest(String),
    #[error("the payload cannot be read at {path}: {reason}")]
    InvalidPayload { path: String, reason: String },
    #[error("the webhook is not authentic: {0}")]
    SignatureRejected(String),
    #[error("authentication is required: send Authorization: Bearer bsk_live_..., or sign in for a session cookie")]
    Unauthorized,
    #[error("this caller lacks the '{needed}' permission")]
    Forbidden { needed: &'static str },
    #[error("a cookie-authenticated write must send the X-CSRF-Token header given at login")]
    CsrfRejected,
    #[error(
        "this tenant requires a second factor: set one up under /v1/auth/totp, then sign in again"
    )]
    MfaRequired,
    #[error("the email or password is wrong, or the account is locked or disabled")]
    LoginFailed,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyMismatch,
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyInProgress,
    #[error("the service is at capacity; retry after {retry_after_secs} s")]
    Busy { retry_after_secs: u32 },
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u32 },
    /// A capability this deployment has turned off or cannot reach right now.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// For invalid input: each offending field and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed-json", "Malformed JSON"),
            Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid request",
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            InvalidPayload { .. } => (
                StatusCode::BAD_REQUEST,
                "invalid-payload",
                "Unreadable provider payload",
            ),
            SignatureRejected(_) => (
                StatusCode::UNAUTHORIZED,
                "webhook-signature",
                "Webhook signature rejected",
            ),
            Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            CsrfRejected => (StatusCode::FORBIDDEN, "csrf", "CSRF token missing or wrong"),
            MfaRequired => (
                StatusCode::FORBIDDEN,
                "second-factor-required",
                "Second factor required",
            ),
            LoginFailed => (StatusCode::UNAUTHORIZED, "login-failed", "Login failed"),
            NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            IdempotencyMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
            ),
            IdempotencyInProgress => (
                StatusCode::CONFLICT,
                "idempotency-key-in-progress",
                "Request in progress",
            ),
            RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            Busy { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "Service at capacity",
            ),
            Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Unavailable",
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, reason)])
    }

    pub fn to_problem(&self) -> Problem {
        let (status, slug, title) = self.parts();
        let errors = match self {
            ApiError::Validation(errors) => errors.clone(),
            ApiError::InvalidPayload { path, reason } => {
                vec![FieldError::new(path.clone(), reason.clone())]
            }
            _ => Vec::new(),
        };
        let detail = match self {
            ApiError::Validation(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.reason))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        };
        Problem {
            kind: format!("{TYPE_BASE}{slug}"),
            title,
            status: status.as_u16(),
            detail,
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(cause = %cause, "internal error");
        }
        let problem = self.to_problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if let ApiError::Busy { retry_after_secs } | ApiError::RateLimited { retry_after_secs } =
            self
        {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        if matches!(self, ApiError::PayloadTooLarge { .. }) {
            // The rest of the body was not read; the connection cannot carry another request.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if matches!(self, ApiError::Unauthorized) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid(errors) => ApiError::Validation(errors),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::Conflict(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<PipelineError> for ApiError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Busy { retry_after_secs } => ApiError::Busy { retry_after_secs },
            PipelineError::Stopped => ApiError::Busy {
                retry_after_secs: 5,
            },
            PipelineError::Store(e) => ApiError::Internal(e.to_string()),
        }
    }
}
