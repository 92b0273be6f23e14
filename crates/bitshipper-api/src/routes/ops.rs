//! Operational endpoints: liveness, readiness, Prometheus metrics.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

/// Liveness: the process answers.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Readiness: the store answers and the processor is not hopelessly behind.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store_ok = state.store.ping().await.is_ok();
    let lag = state.progress.lag();
    let body = Json(json!({
        "status": if store_ok { "ready" } else { "unavailable" },
        "store": if store_ok { "ok" } else { "unreachable" },
        "log_head": state.progress.head(),
        "applied_position": state.progress.position(),
        "log_lag": lag,
    }));
    let code = if store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body)
}

/// Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    metrics::gauge!("bitshipper_log_lag_events").set(state.progress.lag() as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
