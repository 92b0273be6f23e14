//! Analytics requests and answers shared by the API, the CLI and the warehouse: which KPIs,
//! grouped how, filtered how; validated here so every entry point refuses the same inputs with
//! the same field errors.

use crate::error::FieldErrors;
use crate::event::normalize_carrier;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Longest date range one KPI request covers.
pub const MAX_KPI_DAYS: i64 = 366;
/// Default range when `from` is not given: this many days up to `to`.
pub const DEFAULT_KPI_DAYS: i64 = 28;

/// How KPI rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// One row for everything selected.
    All,
    Carrier,
    Service,
    /// Origin region to destination region, e.g. `KY>CA`.
    Lane,
    /// The shipment's ship day (first scan, UTC), `YYYY-MM-DD`.
    Day,
    /// The Monday of the ship day's ISO week.
    Week,
}

impl GroupBy {
    pub const ALL_NAMES: &'static str = "all, carrier, service, lane, day, week";

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "all" => GroupBy::All,
            "carrier" => GroupBy::Carrier,
            "service" => GroupBy::Service,
            "lane" => GroupBy::Lane,
            "day" => GroupBy::Day,
            "week" => GroupBy::Week,
            _ => return None,
        })
    }
}

/// Where KPI figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KpiSource {
    /// The processor's rollups: current within seconds (default).
    Rollups,
    /// The lake's tables through the warehouse: the same definitions, as of the lake's last
    /// commit.
    Lake,
}

/// A validated KPI request: shipments whose ship day is in `from..=to`, filtered, grouped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KpiQuery {
    pub source: KpiSource,
    pub group_by: GroupBy,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub carrier: Option<String>,
    pub service: Option<String>,
    pub lane: Option<String>,
}

const KPI_PARAMETERS: &[&str] = &[
    "source", "group_by", "from", "to", "carrier", "service", "lane",
];

fn parse_date(errors: &mut FieldErrors, name: &str, text: Option<&String>) -> Option<NaiveDate> {
    let text = text?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| errors.push(name, "must be a date like 2026-04-01"))
        .ok()
}

/// What every analytics request reads the same way: no unknown parameters, a bounded
/// `from..=to` range (default: the last 28 days up to `today`), an optional carrier.
struct CommonParams {
    from: NaiveDate,
    to: NaiveDate,
    carrier: Option<String>,
}

impl CommonParams {
    fn read(
        params: &HashMap<String, String>,
        allowed: &[&str],
        today: NaiveDate,
        errors: &mut FieldErrors,
    ) -> Self {
        let mut keys: Vec<&String> = params.keys().collect();
        keys.sort();
        for k in keys {
            if !allowed.contains(&k.as_str()) {
                errors.push(
                    k.clone(),
                    format!(
                        "unknown query parameter; expected one of: {}",
                        allowed.join(", ")
                    ),
                );
            }
        }
        let to = parse_date(errors, "to", params.get("to")).unwrap_or(today);
        let from = parse_date(errors, "from", params.get("from"))
            .unwrap_or(to - chrono::Duration::days(DEFAULT_KPI_DAYS - 1));
        if from > to {
            errors.push("from", "must not be after `to`");
        } else if (to - from).num_days() >= MAX_KPI_DAYS {
            errors.push(
                "from",
                format!("the range may cover at most {MAX_KPI_DAYS} days"),
            );
        }
        let carrier = params.get("carrier").and_then(|c| {
            normalize_carrier(c)
                .map_err(|reason| errors.push("carrier", reason))
                .ok()
        });
        CommonParams { from, to, carrier }
    }
}

fn parse_label(errors: &mut FieldErrors, name: &str, text: Option<&String>) -> Option<String> {
    let text = text?.trim();
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-' | '>' | '.'));
    if ok {
        Some(text.to_string())
    } else {
        errors.push(name, "must be 1-64 letters, digits, spaces or `_ - > .`");
        None
    }
}

impl KpiQuery {
    /// Reads query parameters; every unknown or bad one is a field error. `today` is the
    /// default `to`.
    pub fn from_params(
        params: &HashMap<String, String>,
        today: NaiveDate,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let common = CommonParams::read(params, KPI_PARAMETERS, today, &mut errors);
        let group_by = match params.get("group_by") {
            None => Some(GroupBy::All),
            Some(g) => GroupBy::parse(g).or_else(|| {
                errors.push(
                    "group_by",
                    format!("must be one of: {}", GroupBy::ALL_NAMES),
                );
                None
            }),
        };
        let source = match params.get("source").map(String::as_str) {
            None | Some("rollups") => KpiSource::Rollups,
            Some("lake") => KpiSource::Lake,
            Some(_) => {
                errors.push("source", "must be `rollups` or `lake`");
                KpiSource::Rollups
            }
        };
        let service = parse_label(&mut errors, "service", params.get("service"));
        let lane = parse_label(&mut errors, "lane", params.get("lane"));
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(KpiQuery {
            source,
            group_by: group_by.unwrap_or(GroupBy::All),
            from: common.from,
            to: common.to,
            carrier: common.carrier,
            service,
            lane,
        })
    }
}

/// An export's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Csv,
    Parquet,
}

impl ExportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Parquet => "application/vnd.apache.parquet",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Parquet => "parquet",
        }
    }
}

/// What an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportTable {
    /// One row per shipment (its current state), selected by ship day.
    Shipments,
    /// Every tracking event, selected by the UTC day it occurred.
    Events,
}

impl ExportTable {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "shipments" => Some(ExportTable::Shipments),
            "events" => Some(ExportTable::Events),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ExportTable::Shipments => "shipments",
            ExportTable::Events => "events",
        }
    }
}

/// A validated export request: rows of `table` whose day is in `from..=to`, filtered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportRequest {
    pub table: ExportTable,
    pub format: ExportFormat,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub carrier: Option<String>,
    pub status: Option<String>,
}

const EXPORT_PARAMETERS: &[&str] = &["format", "from", "to", "carrier", "status"];

impl ExportRequest {
    /// Reads query parameters (`format` is required); every unknown or bad one is a field
    /// error.
    pub fn from_params(
        table: ExportTable,
        params: &HashMap<String, String>,
        today: NaiveDate,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let common = CommonParams::read(params, EXPORT_PARAMETERS, today, &mut errors);
        let format = match params.get("format").map(String::as_str) {
            Some("csv") => Some(ExportFormat::Csv),
            Some("parquet") => Some(ExportFormat::Parquet),
            Some(_) => {
                errors.push("format", "must be `csv` or `parquet`");
                None
            }
            None => {
                errors.push("format", "is required: `csv` or `parquet`");
                None
            }
        };
        let status = params.get("status").and_then(|s| {
            s.parse::<crate::Status>()
                .map(|s| s.as_str().to_string())
                .map_err(|reason| errors.push("status", reason))
                .ok()
        });
        match format {
            Some(format) if errors.is_empty() => Ok(ExportRequest {
                table,
                format,
                from: common.from,
                to: common.to,
                carrier: common.carrier,
                status,
            }),
            _ => Err(errors),
        }
    }
}

/// The KPIs of one group. Rates are `null` where their denominator is zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KpiRow {
    /// The group's key (`all` when not grouped; empty text where the group value is unknown).
    pub key: String,
    /// Shipments with a ship day in range.
    pub volume: u64,
    pub delivered: u64,
    /// Delivered shipments that had a promised date.
    pub delivered_with_promise: u64,
    /// Of those, delivered on or before the promised date (UTC date).
    pub on_time: u64,
    pub on_time_rate: Option<f64>,
    /// Hours from first scan to delivery, each shipment's counted in whole hours (rounded
    /// down); `percentile_cont` (linear interpolation between ranks).
    pub transit_p50_hours: Option<f64>,
    pub transit_p90_hours: Option<f64>,
    /// Shipments with at least one exception event.
    pub exceptions: u64,
    pub exception_rate: Option<f64>,
    /// Delivered shipments with no failed delivery attempt.
    pub first_attempt: u64,
    pub first_attempt_rate: Option<f64>,
}

impl KpiRow {
    /// Fills the rates from the counts.
    pub fn with_rates(mut self) -> Self {
        let rate = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
        self.on_time_rate = rate(self.on_time, self.delivered_with_promise);
        self.exception_rate = rate(self.exceptions, self.volume);
        self.first_attempt_rate = rate(self.first_attempt, self.delivered);
        self
    }
}

/// A KPI answer and how fresh it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KpiReport {
    pub group_by: GroupBy,
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    /// Where the figures come from: `rollups` or `lake`.
    pub source: KpiSource,
    /// The newest data these figures include landed at this time.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub as_of: Option<DateTime<Utc>>,
    pub rows: Vec<KpiRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_cover_four_weeks_up_to_today() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        let q = KpiQuery::from_params(&params(&[]), today).expect("valid");
        assert_eq!(q.group_by, GroupBy::All);
        assert_eq!(q.to, today);
        assert_eq!((q.to - q.from).num_days(), DEFAULT_KPI_DAYS - 1);
    }

    #[test]
    fn every_bad_parameter_is_named() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        let err = KpiQuery::from_params(
            &params(&[
                ("group_by", "planet"),
                ("from", "yesterday"),
                ("carrier", "U P S!"),
                ("lane", "x';drop"),
                ("colour", "red"),
            ]),
            today,
        )
        .expect_err("invalid");
        let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
        for f in ["group_by", "from", "carrier", "lane", "colour"] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn ranges_are_bounded() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        let err =
            KpiQuery::from_params(&params(&[("from", "2024-01-01")]), today).expect_err("too long");
        assert_eq!(err.0[0].field, "from");
        let err =
            KpiQuery::from_params(&params(&[("from", "2026-12-01")]), today).expect_err("reversed");
        assert!(err.0[0].reason.contains("after"));
    }

    #[test]
    fn rates_are_null_without_a_denominator() {
        let row = KpiRow {
            key: "all".into(),
            volume: 4,
            delivered: 2,
            delivered_with_promise: 0,
            on_time: 0,
            on_time_rate: None,
            transit_p50_hours: None,
            transit_p90_hours: None,
            exceptions: 1,
            exception_rate: None,
            first_attempt: 1,
            first_attempt_rate: None,
        }
        .with_rates();
        assert_eq!(row.on_time_rate, None);
        assert_eq!(row.exception_rate, Some(0.25));
        assert_eq!(row.first_attempt_rate, Some(0.5));
    }
}
