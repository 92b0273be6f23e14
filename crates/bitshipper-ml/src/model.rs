//! A trained model set as one artifact (the four forests, the probability calibration, the
//! window's conformal widening, the category vocabulary and the lane statistics as of the end
//! of training) and what serving asks of it: a prediction for a shipment at a time, with the
//! reasons in plain words.

use crate::features::{
    baseline_eta_hours, features_at, LaneSnapshot, ShipmentRecord, Vocabulary, FEATURE_NAMES,
};
use crate::gbdt::{sigmoid, Forest};
use crate::metrics::Isotonic;
use crate::MlError;
use bitshipper_core::{Reason, Status};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The ETA models' unit (a day) and target: hours to delivery beyond the baseline rule
/// (`features::baseline_eta_hours`), in days.
pub(crate) const HOURS_PER_UNIT: f64 = 24.0;

/// Hours to delivery by one ETA model: the baseline rule plus the model's correction.
pub(crate) fn eta_hours(model: &Forest, row: &[f64]) -> f64 {
    baseline_eta_hours(row) + HOURS_PER_UNIT * model.predict_row(row)
}

/// Most reasons given with a prediction.
const MAX_REASONS: usize = 3;

/// Everything serving needs, saved and loaded as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Models {
    pub feature_names: Vec<String>,
    pub late: Forest,
    pub p10: Forest,
    pub p50: Forest,
    pub p90: Forest,
    pub calibration: Isotonic,
    /// Hours added on both sides of [p10, p90] so the window holds its target coverage on
    /// the calibration set (conformalized quantile regression).
    pub interval_widening: f64,
    pub vocabulary: Vocabulary,
    pub lanes: LaneSnapshot,
}

/// A model's answer for one shipment at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub eta_p10: DateTime<Utc>,
    pub eta_p50: DateTime<Utc>,
    pub eta_p90: DateTime<Utc>,
    /// Probability of delivery after the promised day (calibrated); absent without a promise.
    pub late_risk: Option<f64>,
    /// What moved the late risk most, in plain words.
    pub reasons: Vec<String>,
    pub scored_at: DateTime<Utc>,
}

impl Models {
    pub fn to_json(&self) -> Result<Vec<u8>, MlError> {
        serde_json::to_vec(self).map_err(|e| MlError::Model(e.to_string()))
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, MlError> {
        let mut models: Models =
            serde_json::from_slice(bytes).map_err(|e| MlError::Model(e.to_string()))?;
        if models.feature_names != FEATURE_NAMES {
            return Err(MlError::Model(
                "the model was trained on a different feature list; retrain it".into(),
            ));
        }
        models.lanes.index();
        Ok(models)
    }

    /// Calibrated late risk and the (p10, p50, p90) hours to delivery for a feature row.
    pub fn predict_row(&self, row: &[f64]) -> (f64, (f64, f64, f64)) {
        self.predict_with_raw_risk(row, self.late.predict_row(row))
    }

    /// As `predict_row`, given the late model's raw output (log-odds) already computed.
    fn predict_with_raw_risk(&self, row: &[f64], raw_risk: f64) -> (f64, (f64, f64, f64)) {
        let risk = self.calibration.apply(sigmoid(raw_risk));
        let (lo, mid, hi) = (
            eta_hours(&self.p10, row),
            eta_hours(&self.p50, row),
            eta_hours(&self.p90, row),
        );
        let w = self.interval_widening;
        let lo = (lo.min(mid) - w).max(0.0);
        let hi = hi.max(mid) + w;
        (risk, (lo, mid.clamp(lo, hi), hi))
    }

    /// The prediction for `record` as of `t`, from what was known at `t`.
    pub fn score(&self, record: &ShipmentRecord, t: DateTime<Utc>) -> Prediction {
        let row = features_at(record, t, &self.lanes, &self.vocabulary);
        // One walk of the late model gives both its output and its reasons.
        let (shares, expected) = self.late.contributions(&row);
        let raw_risk = expected + shares.iter().sum::<f64>();
        let (risk, (lo, mid, hi)) = self.predict_with_raw_risk(&row, raw_risk);
        let at = |h: f64| t + Duration::seconds((h * 3600.0).round() as i64);
        Prediction {
            eta_p10: at(lo),
            eta_p50: at(mid),
            eta_p90: at(hi),
            late_risk: record.promised_by().map(|_| risk),
            reasons: self.reasons(record, &row, shares),
            scored_at: t,
        }
    }

    /// Predictions for many shipments, spread over the cores.
    pub fn score_batch(&self, batch: &[(&ShipmentRecord, DateTime<Utc>)]) -> Vec<Prediction> {
        use rayon::prelude::*;
        batch.par_iter().map(|(r, t)| self.score(r, *t)).collect()
    }

    /// The features that raised the late risk most (or, when none did, moved it most).
    fn reasons(&self, record: &ShipmentRecord, row: &[f64], shares: Vec<f64>) -> Vec<String> {
        // The largest shares first (ties: the earlier feature), picked one at a time: only
        // the few that are put in words are ever ranked.
        let raising = shares.iter().any(|s| *s > 0.01);
        let weight = |s: f64| if raising { s } else { s.abs() };
        let mut used = vec![false; shares.len()];
        let mut out = Vec::with_capacity(MAX_REASONS);
        while out.len() < MAX_REASONS {
            let best = (0..shares.len())
                .filter(|i| !used[*i] && (!raising || shares[*i] > 0.01))
                .max_by(|a, b| {
                    weight(shares[*a])
                        .total_cmp(&weight(shares[*b]))
                        .then(b.cmp(a))
                });
            let Some(i) = best else { break };
            used[i] = true;
            out.extend(describe(i, row, record));
        }
        out
    }
}

/// One feature's value in words, or `None` when it says nothing useful (missing values).
fn describe(feature: usize, row: &[f64], record: &ShipmentRecord) -> Option<String> {
    let v = row[feature];
    if v.is_nan() {
        return None;
    }
    let d = &record.details;
    let lane = record.lane_ref();
    let pct = |x: f64| (x * 100.0).round();
    let text = match FEATURE_NAMES[feature] {
        "carrier" => format!("carrier {}", d.carrier),
        "service" => format!(
            "service {}",
            d.service_level.as_deref().unwrap_or("unknown")
        ),
        "origin_region" => format!("shipped from {}", lane.origin),
        "destination_region" => format!("going to {}", lane.destination),
        "weight_kg" => format!("weighs {v:.1} kg"),
        "ship_weekday" => {
            let day = [
                "Monday",
                "Tuesday",
                "Wednesday",
                "Thursday",
                "Friday",
                "Saturday",
                "Sunday",
            ]
            .get(v as usize)?;
            format!("shipped on a {day}")
        }
        "ship_hour" => format!("handed over at {v:.0}:00"),
        "hours_in_transit" => format!("in transit for {v:.0} hours"),
        "status" => format!(
            "last status: {}",
            Status::ALL.get(v as usize)?.as_str().replace('_', " ")
        ),
        "reason" => format!(
            "last scan: {}",
            Reason::ALL.get(v as usize)?.as_str().replace('_', " ")
        ),
        "hours_since_last_scan" => format!("no scan for {v:.0} hours"),
        "scans_so_far" => format!("{v:.0} scans so far"),
        "promised_transit_days" => format!("promised in {v:.0} days"),
        "hours_until_promised" if v < 0.0 => format!("past the promised day by {:.0} hours", -v),
        "hours_until_promised" => format!("{v:.0} hours left before the promised day ends"),
        "weekend_at_t" if v > 0.5 => "it is the weekend".to_string(),
        "weekend_at_t" => return None,
        "lane_deliveries" => format!("{v:.0} earlier deliveries on this lane"),
        "lane_on_time_rate" if v >= 1.0 => {
            format!("no late deliveries on this lane with {} so far", d.carrier)
        }
        "lane_on_time_rate" => format!(
            "this lane is late {}% of the time with {}",
            pct(1.0 - v),
            d.carrier
        ),
        "lane_p50_transit_hours" => format!("this lane usually takes {v:.0} hours"),
        "carrier_service_on_time_rate" if v >= 1.0 => {
            format!(
                "no late deliveries with {} {} so far",
                d.carrier, lane.service
            )
        }
        "carrier_service_on_time_rate" => format!(
            "{} {} is late {}% of the time",
            d.carrier,
            lane.service,
            pct(1.0 - v)
        ),
        "carrier_service_p50_transit_hours" => {
            format!("{} {} usually takes {v:.0} hours", d.carrier, lane.service)
        }
        "warehouse" => format!("from warehouse {}", d.metadata.get("warehouse")?),
        "category" => format!("product category {}", d.metadata.get("category")?),
        "distance_km" => format!("{v:.0} km from origin to destination"),
        "remaining_km" => format!("{v:.0} km still to go from the last scan"),
        "holidays_before_promised" if v >= 1.0 => {
            format!("{v:.0} holiday(s) before the promised date")
        }
        "holidays_before_promised" => return None,
        "international" if v > 0.5 => "international shipment".to_string(),
        "international" => "domestic shipment".to_string(),
        _ => return None,
    };
    Some(text)
}
