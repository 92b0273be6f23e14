//! How the predictions shown to customers held up, over delivered shipments: how often the
//! window held, the p50 error, and late-risk calibration, by carrier and ISO week.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// One delivered shipment and a prediction made for it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub carrier: String,
    pub delivered_at: DateTime<Utc>,
    /// Late is judged as delivery after the promised date (by the UTC calendar date).
    pub promised_delivery_date: Option<NaiveDate>,
    pub eta_p10: DateTime<Utc>,
    pub eta_p50: DateTime<Utc>,
    pub eta_p90: DateTime<Utc>,
    pub late_risk: Option<f64>,
}

/// Accuracy of one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Accuracy {
    pub shipments: u64,
    /// Share delivered inside the predicted p10–p90 window.
    pub window_held: f64,
    /// Mean absolute error of the p50 delivery time, in hours.
    pub p50_error_hours: f64,
    /// Shipments with a promise and a late risk (the calibration figures below cover these).
    pub with_promise: u64,
    /// Mean predicted late risk and the share actually late: close when calibrated.
    pub mean_late_risk: Option<f64>,
    pub late_rate: Option<f64>,
    /// Mean squared error of the late risk (lower is better).
    pub brier: Option<f64>,
}

/// One carrier × week.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GroupAccuracy {
    pub carrier: String,
    /// ISO week of delivery, like `2026-W14`.
    pub week: String,
    #[serde(flatten)]
    pub accuracy: Accuracy,
}

#[derive(Default)]
struct Sums {
    n: u64,
    held: u64,
    error: f64,
    judged: u64,
    risk: f64,
    late: u64,
    brier: f64,
}

impl Sums {
    fn add(&mut self, o: &Outcome) {
        self.n += 1;
        if o.eta_p10 <= o.delivered_at && o.delivered_at <= o.eta_p90 {
            self.held += 1;
        }
        self.error += (o.delivered_at - o.eta_p50).num_seconds().abs() as f64 / 3600.0;
        if let (Some(promised), Some(risk)) = (o.promised_delivery_date, o.late_risk) {
            let late = o.delivered_at.date_naive() > promised;
            let y = f64::from(u8::from(late));
            self.judged += 1;
            self.risk += risk;
            self.late += u64::from(late);
            self.brier += (risk - y) * (risk - y);
        }
    }

    fn accuracy(&self) -> Accuracy {
        let n = self.n.max(1) as f64;
        let j = self.judged as f64;
        let judged = |v: f64| (self.judged > 0).then(|| v / j);
        Accuracy {
            shipments: self.n,
            window_held: self.held as f64 / n,
            p50_error_hours: self.error / n,
            with_promise: self.judged,
            mean_late_risk: judged(self.risk),
            late_rate: judged(self.late as f64),
            brier: judged(self.brier),
        }
    }
}

/// Overall accuracy and accuracy by carrier and ISO week of delivery.
pub fn summarize(outcomes: &[Outcome]) -> (Accuracy, Vec<GroupAccuracy>) {
    let mut all = Sums::default();
    let mut groups: BTreeMap<(String, String), Sums> = BTreeMap::new();
    for o in outcomes {
        all.add(o);
        let w = o.delivered_at.iso_week();
        let week = format!("{}-W{:02}", w.year(), w.week());
        groups.entry((o.carrier.clone(), week)).or_default().add(o);
    }
    let by_group = groups
        .into_iter()
        .map(|((carrier, week), s)| GroupAccuracy {
            carrier,
            week,
            accuracy: s.accuracy(),
        })
        .collect();
    (all.accuracy(), by_group)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn counts_held_windows_errors_and_calibration_by_carrier_and_week() {
        let o = |carrier: &str, delivered: &str, p50: &str, risk: f64| Outcome {
            carrier: carrier.into(),
            delivered_at: at(delivered),
            promised_delivery_date: NaiveDate::from_ymd_opt(2026, 4, 1),
            eta_p10: at(p50) - chrono::Duration::hours(10),
            eta_p50: at(p50),
            eta_p90: at(p50) + chrono::Duration::hours(10),
            late_risk: Some(risk),
        };
        let outcomes = [
            // Held, 2 h off, on time.
            o("ups", "2026-03-31T12:00:00Z", "2026-03-31T10:00:00Z", 0.2),
            // Missed by 20 h, late.
            o("ups", "2026-04-02T12:00:00Z", "2026-04-01T16:00:00Z", 0.6),
            // Another carrier, another week.
            o("usps", "2026-04-08T12:00:00Z", "2026-04-08T12:00:00Z", 0.5),
        ];
        let (all, groups) = summarize(&outcomes);
        assert_eq!(all.shipments, 3);
        assert!((all.window_held - 2.0 / 3.0).abs() < 1e-9);
        assert!((all.p50_error_hours - 22.0 / 3.0).abs() < 1e-9);
        assert_eq!(all.late_rate, Some(2.0 / 3.0));
        let brier = (0.04 + 0.16 + 0.25) / 3.0;
        assert!((all.brier.unwrap_or(0.0) - brier).abs() < 1e-9);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            (groups[0].carrier.as_str(), groups[0].week.as_str()),
            ("ups", "2026-W14")
        );
        assert_eq!(groups[0].accuracy.shipments, 2);
        assert_eq!(groups[1].week, "2026-W15");
    }
}
