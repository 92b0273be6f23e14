//! `POST /v1/events`: a batch of tracking events. Each event is validated on its own; the valid
//! ones are appended to the durable log and the answer (202) comes only after that commit.

use crate::auth::{Auth, IngestScope};
use crate::json::JsonValue;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use bitshipper_core::{EventInput, FieldError};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct EventBatchRequest {
    /// 1 to 1,000 events (and at most 1 MiB in all).
    #[schema(min_items = 1, max_items = 1000)]
    pub events: Vec<EventInput>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum EventResult {
    Accepted {
        index: usize,
        event_key: String,
        /// Position in the durable log.
        log_seq: i64,
    },
    Rejected {
        index: usize,
        errors: Vec<FieldError>,
    },
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventBatchResponse {
    pub accepted: usize,
    pub rejected: usize,
    /// One entry per submitted event, in order.
    pub results: Vec<EventResult>,
}

#[utoipa::path(post, path = "/v1/events", tag = "events", request_body = EventBatchRequest,
    security(("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for retries (1 to 255 printable ASCII characters)", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 202, description = "Valid events are durable in the log", body = EventBatchResponse),
        (status = 400, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
        (status = 422, description = "No event was valid", body = Problem),
        (status = 503, description = "At capacity; see Retry-After", body = Problem)))]
pub async fn ingest_events(
    auth: Auth<IngestScope>,
    State(state): State<AppState>,
    JsonValue(body, _): JsonValue,
) -> Result<(StatusCode, Json<EventBatchResponse>), ApiError> {
    let events = match &body {
        Value::Object(o) => {
            if let Some(k) = o.keys().find(|k| k.as_str() != "events") {
                return Err(ApiError::field(k.clone(), "unknown field"));
            }
            match o.get("events") {
                Some(Value::Array(a)) => a,
                Some(_) => return Err(ApiError::field("events", "must be an array")),
                None => return Err(ApiError::field("events", "is required")),
            }
        }
        Value::Array(a) => a,
        _ => {
            return Err(ApiError::field(
                "body",
                "must be an object with an `events` array",
            ))
        }
    };
    let max = state.limits.max_batch_events;
    if events.is_empty() {
        return Err(ApiError::field("events", "must contain at least one event"));
    }
    if events.len() > max {
        return Err(ApiError::field(
            "events",
            format!("has {} events; a batch holds at most {max}", events.len()),
        ));
    }

    let mut results: Vec<Option<EventResult>> = Vec::with_capacity(events.len());
    let mut keys: Vec<(usize, String)> = Vec::with_capacity(events.len());
    let mut entries = Vec::with_capacity(events.len());
    let mut all_errors = Vec::new();
    for (index, value) in events.iter().enumerate() {
        let prefix = format!("events[{index}].");
        match EventInput::parse(auth.tenant, value, &state.mapping, &prefix) {
            Ok(event) => {
                let payload =
                    serde_json::to_string(&event).map_err(|e| ApiError::Internal(e.to_string()))?;
                keys.push((index, event.event_key.0));
                entries.push((auth.tenant, payload));
                results.push(None);
            }
            Err(bitshipper_core::CoreError::Invalid(errors)) => {
                all_errors.extend(errors.iter().cloned());
                results.push(Some(EventResult::Rejected { index, errors }));
            }
            Err(e) => return Err(e.into()),
        }
    }
    metrics::counter!("bitshipper_events_rejected_total")
        .increment((events.len() - keys.len()) as u64);
    if keys.is_empty() {
        return Err(ApiError::Validation(all_errors));
    }
    let seqs = state.appender.append(entries).await?;
    metrics::counter!("bitshipper_events_ingested_total").increment(keys.len() as u64);
    for ((index, event_key), log_seq) in keys.into_iter().zip(seqs) {
        results[index] = Some(EventResult::Accepted {
            index,
            event_key,
            log_seq,
        });
    }
    let results: Vec<EventResult> = results.into_iter().flatten().collect();
    let accepted = results
        .iter()
        .filter(|r| matches!(r, EventResult::Accepted { .. }))
        .count();
    Ok((
        StatusCode::ACCEPTED,
        Json(EventBatchResponse {
            accepted,
            rejected: results.len() - accepted,
            results,
        }),
    ))
}
