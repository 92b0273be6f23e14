//! How well predictions held, for customers: over shipments delivered in a date range, the
//! share delivered inside the predicted window, the p50 error and late-risk calibration, by
//! carrier and week.

use crate::auth::{Auth, ReadScope};
use crate::extract::QueryMap;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use bitshipper_ml::accuracy::{summarize, Accuracy, GroupAccuracy, Outcome};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Longest range one report covers.
const MAX_DAYS: i64 = 366;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccuracyQuery {
    /// First delivery date (UTC) included, `YYYY-MM-DD`; default: 8 weeks before `to`.
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<String>,
    /// Last delivery date (UTC) included, `YYYY-MM-DD`; default: today.
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<String>,
    /// Which prediction of each shipment to judge: `first` (made at its first scan, the
    /// hardest; default) or `latest` (the last before delivery).
    #[param(value_type = Option<String>, pattern = "^(first|latest)$")]
    pub prediction: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccuracyReport {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    /// `first` or `latest`.
    pub prediction: String,
    #[schema(value_type = String, format = DateTime)]
    pub as_of: DateTime<Utc>,
    pub overall: Accuracy,
    pub by_carrier_week: Vec<GroupAccuracy>,
}

fn parse_date(
    errors: &mut bitshipper_core::FieldErrors,
    name: &str,
    text: Option<&String>,
) -> Option<NaiveDate> {
    let text = text?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| errors.push(name, "must be a date like 2026-04-01"))
        .ok()
}

#[utoipa::path(get, path = "/v1/predictions/accuracy", tag = "predictions", security(("api_key" = [])),
    params(AccuracyQuery),
    responses((status = 200, body = AccuracyReport), (status = 422, body = crate::problem::Problem)))]
pub async fn accuracy(
    auth: Auth<ReadScope>,
    State(state): State<AppState>,
    QueryMap(q): QueryMap,
) -> Result<Json<AccuracyReport>, ApiError> {
    let mut errors = bitshipper_core::FieldErrors::default();
    for k in q.keys() {
        if !["from", "to", "prediction"].contains(&k.as_str()) {
            errors.push(k.clone(), "unknown query parameter");
        }
    }
    let now = Utc::now();
    let to = parse_date(&mut errors, "to", q.get("to")).unwrap_or(now.date_naive());
    let from = parse_date(&mut errors, "from", q.get("from")).unwrap_or(to - Duration::weeks(8));
    if from > to {
        errors.push("from", "must not be after `to`");
    } else if (to - from).num_days() >= MAX_DAYS {
        errors.push(
            "from",
            format!("the range may cover at most {MAX_DAYS} days"),
        );
    }
    let which = q.get("prediction").map_or("first", String::as_str);
    if which != "first" && which != "latest" {
        errors.push("prediction", "must be `first` or `latest`");
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors.0));
    }
    let start = from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let end = (to + Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let delivered = state
        .store
        .delivered_with_predictions(auth.tenant, start, end)
        .await?;
    let outcomes: Vec<Outcome> = delivered
        .into_iter()
        .map(|d| {
            let p = if which == "latest" {
                d.prediction.latest
            } else {
                d.prediction.first
            };
            Outcome {
                carrier: d.carrier,
                delivered_at: d.delivered_at,
                promised_delivery_date: d.promised_delivery_date,
                eta_p10: p.eta_p10,
                eta_p50: p.eta_p50,
                eta_p90: p.eta_p90,
                late_risk: p.late_risk,
            }
        })
        .collect();
    let (overall, by_carrier_week) = summarize(&outcomes);
    Ok(Json(AccuracyReport {
        from,
        to,
        prediction: which.to_string(),
        as_of: now,
        overall,
        by_carrier_week,
    }))
}
