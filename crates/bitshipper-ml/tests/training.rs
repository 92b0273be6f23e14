//! Training end to end on simulated history: the same data and seed give the same models,
//! and the saved models score a shipment in transit the same way after loading.

use bitshipper_ml::history::simulated;
use bitshipper_ml::model::Models;
use bitshipper_ml::train::{train_and_evaluate, TrainConfig};
use chrono::Duration;

#[test]
fn same_data_and_seed_give_the_same_models_and_predictions() {
    let records = simulated(40, 40, 7, &|_, _| ()).unwrap_or_else(|e| panic!("{e}"));
    let cfg = TrainConfig::default();
    let (first, report) =
        train_and_evaluate(&records, &cfg, &|_| ()).unwrap_or_else(|e| panic!("{e}"));
    // The same history simulated again (a second run of `bitshipper train --sim-days`).
    let again_records = simulated(40, 40, 7, &|_, _| ()).unwrap_or_else(|e| panic!("{e}"));
    let (second, _) =
        train_and_evaluate(&again_records, &cfg, &|_| ()).unwrap_or_else(|e| panic!("{e}"));
    let bytes = first.to_json().unwrap_or_else(|e| panic!("{e}"));
    let again = second.to_json().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        bytes == again,
        "two trainings on the same data gave different models"
    );
    assert!(report.test_examples > 100, "{report:?}");
    assert!(report.model.auc > 0.5, "AUC {}", report.model.auc);

    // A shipment part-way through its life: one day after its first scan.
    let loaded = Models::from_json(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let record = records
        .iter()
        .rev()
        .find(|r| r.events.len() > 3 && r.promised_by().is_some())
        .unwrap_or_else(|| panic!("a shipment with scans and a promise"));
    let t = record.shipped_at().unwrap_or_default() + Duration::hours(24);
    let p = first.score(record, t);
    assert_eq!(p, loaded.score(record, t));
    assert!(p.eta_p10 <= p.eta_p50 && p.eta_p50 <= p.eta_p90, "{p:?}");
    assert!(p.eta_p10 >= t);
    let risk = p.late_risk.unwrap_or(-1.0);
    assert!((0.0..=1.0).contains(&risk), "{risk}");
    assert!(
        !p.reasons.is_empty() && p.reasons.len() <= 3,
        "{:?}",
        p.reasons
    );
}
