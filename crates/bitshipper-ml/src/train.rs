//! Training and evaluation: examples at several points of each delivered shipment's life (at
//! label and after each scan), a time-based split (train, calibration, test), a calibrated
//! late-risk classifier and conformalized p10/p50/p90 quantile models of the time to delivery,
//! and a report beside two baselines: the carrier's promise and the lane's history.

use crate::features::{
    baseline_eta_hours, column, features_at, LaneHistory, ShipmentRecord, Vocabulary, FEATURE_NAMES,
};
use crate::gbdt::{self, sigmoid, Forest, Loss, Matrix, Params};
use crate::metrics::{self, Isotonic};
use crate::model::{eta_hours, Models, HOURS_PER_UNIT};
use crate::MlError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// Training settings.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub seed: u64,
    /// Most boosting rounds per model (each stops earlier when its validation loss does).
    pub rounds: usize,
    pub learning_rate: f64,
    /// Most prediction points taken from one shipment.
    pub max_examples_per_shipment: usize,
    /// Share of shipments (the latest shipped) held out for the test.
    pub test_fraction: f64,
    /// Share (just before the test) for calibration.
    pub calibration_fraction: f64,
    /// Share of the training examples (the latest) that decides when boosting stops.
    pub validation_fraction: f64,
    /// Target coverage of the p10–p90 window.
    pub interval_coverage: f64,
    /// Most training examples: beyond it, a fixed share of them is kept (chosen by a hash of
    /// their position, so the same data keeps the same ones).
    pub max_training_examples: usize,
    /// Also write the examples of each split as CSV here (for comparing with other libraries).
    pub export_dir: Option<std::path::PathBuf>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            rounds: 400,
            // On 180 simulated days 0.1, 0.25 and 0.35 score within 0.002 AUC and 0.1 h; 0.35
            // needs a fifth of the trees of 0.1, and scoring cost is mostly trees (docs/ml.md).
            learning_rate: 0.35,
            max_examples_per_shipment: 6,
            test_fraction: 0.2,
            calibration_fraction: 0.15,
            validation_fraction: 0.1,
            interval_coverage: 0.8,
            max_training_examples: 2_000_000,
            export_dir: None,
        }
    }
}

/// One prediction point: features at `t` and what happened after.
#[derive(Debug, Clone)]
pub struct Example {
    pub features: Vec<f64>,
    pub eta_hours: f64,
    pub late: Option<bool>,
    pub carrier: String,
    pub at: DateTime<Utc>,
    /// Hours to the end of the promised day (the carrier's own estimate).
    pub promise_eta_hours: f64,
    /// The lane's median transit minus the time already in transit.
    pub lane_eta_hours: f64,
    /// 1 − the lane's on-time rate.
    pub lane_late_rate: f64,
}

/// The prediction points of one delivered shipment: at label, then after each scan (before
/// delivery), at most `max` of them, evenly spread.
pub fn examples_of(
    record: &ShipmentRecord,
    history: &LaneHistory,
    vocabulary: &Vocabulary,
    max: usize,
) -> Vec<Example> {
    let (Some(delivered), Some(_)) = (record.delivered_at(), record.shipped_at()) else {
        return Vec::new();
    };
    let mut times: Vec<DateTime<Utc>> = record
        .events
        .iter()
        .map(|e| e.occurred_at.with_timezone(&Utc))
        .filter(|t| *t < delivered)
        .collect();
    times.sort();
    times.dedup();
    if times.len() > max {
        let step = times.len() as f64 / max as f64;
        times = (0..max)
            .map(|i| times[(i as f64 * step) as usize])
            .collect();
    }
    times
        .into_iter()
        .map(|t| {
            let features = features_at(record, t, history, vocabulary);
            let col = |name: &str| features[column(name)];
            let in_transit = col("hours_in_transit");
            Example {
                eta_hours: (delivered - t).num_seconds() as f64 / 3600.0,
                late: record.late(),
                carrier: record.details.carrier.clone(),
                at: t,
                promise_eta_hours: col("hours_until_promised"),
                lane_eta_hours: (col("lane_p50_transit_hours") - in_transit).max(0.0),
                lane_late_rate: 1.0 - col("lane_on_time_rate"),
                features,
            }
        })
        .collect()
}

fn eta_target(e: &&Example) -> f64 {
    (e.eta_hours - baseline_eta_hours(&e.features)) / HOURS_PER_UNIT
}

/// Row-major examples into the column-major buffer the booster reads.
fn columns(examples: &[&Example]) -> Vec<f64> {
    let cols = FEATURE_NAMES.len();
    let mut out = vec![0.0; examples.len() * cols];
    for (r, e) in examples.iter().enumerate() {
        for c in 0..cols {
            out[c * examples.len() + r] = e.features[c];
        }
    }
    out
}

/// Trains one model on `examples` (targets `y`), the latest `validation_fraction` of them
/// held out to decide when to stop.
fn fit(loss: Loss, cfg: &TrainConfig, examples: &[&Example], y: &[f64]) -> Forest {
    let split = ((1.0 - cfg.validation_fraction) * examples.len() as f64) as usize;
    let (train, valid) = examples.split_at(split);
    let (xt, xv) = (columns(train), columns(valid));
    let params = Params {
        rounds: cfg.rounds,
        learning_rate: cfg.learning_rate,
        seed: cfg.seed,
        ..Params::new(loss)
    };
    gbdt::train(
        &Matrix {
            columns: &xt,
            rows: train.len(),
        },
        &y[..split],
        (!valid.is_empty()).then_some((
            &Matrix {
                columns: &xv,
                rows: valid.len(),
            },
            &y[split..],
        )),
        &params,
        &|_| (),
    )
}

/// Examples with a label as CSV: the features, then `late`, `eta_hours`, `baseline_hours`
/// (missing values empty).
fn export_csv(path: &std::path::Path, examples: &[Example]) -> Result<(), MlError> {
    use std::io::Write;
    let io = |e: std::io::Error| MlError::Data(format!("{}: {e}", path.display()));
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    writeln!(
        out,
        "{},late,eta_hours,baseline_hours",
        FEATURE_NAMES.join(",")
    )
    .map_err(io)?;
    for e in examples.iter().filter(|e| e.late.is_some()) {
        let mut line: Vec<String> = e
            .features
            .iter()
            .map(|v| {
                if v.is_nan() {
                    String::new()
                } else {
                    v.to_string()
                }
            })
            .collect();
        line.push(u8::from(e.late == Some(true)).to_string());
        line.push(e.eta_hours.to_string());
        line.push(baseline_eta_hours(&e.features).to_string());
        writeln!(out, "{}", line.join(",")).map_err(io)?;
    }
    out.flush().map_err(io)
}

/// Late risks, and (p10, p50, p90) hours to delivery, one per example.
type Predictions = (Vec<f64>, Vec<(f64, f64, f64)>);

/// What `models` predict for labelled examples (an error when there are none).
fn predict_examples(models: &Models, examples: &[&Example]) -> Result<Predictions, MlError> {
    if examples.is_empty() {
        return Err(MlError::NotEnoughData("no test examples".into()));
    }
    Ok(examples
        .iter()
        .map(|e| models.predict_row(&e.features))
        .unzip())
}

/// Accuracy of one predictor on the test set.
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    pub examples: usize,
    pub auc: f64,
    pub brier: f64,
    pub log_loss: f64,
    pub calibration_error: f64,
    pub late_precision: f64,
    pub late_recall: f64,
    pub eta_mae_hours: f64,
    pub p10_p90_coverage: f64,
    /// Mean predicted p50 and mean actual hours to delivery (a bias check).
    pub mean_p50_hours: f64,
    pub mean_actual_hours: f64,
}

/// The evaluation report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub shipments: usize,
    pub train_examples: usize,
    pub calibration_examples: usize,
    pub test_examples: usize,
    pub test_from: DateTime<Utc>,
    pub model: Scores,
    pub promise_baseline: Scores,
    pub lane_baseline: Scores,
    pub by_carrier: BTreeMap<String, Scores>,
    pub interval_widening_hours: f64,
    /// First shipment and last delivery of the training data.
    pub trained_from: DateTime<Utc>,
    pub trained_to: DateTime<Utc>,
    /// Seconds per stage (features, each model, calibration, evaluation).
    pub stage_seconds: BTreeMap<String, f64>,
    /// Trees and nodes per model.
    pub trees: BTreeMap<String, (usize, usize)>,
}

fn scores(risk: &[f64], labels: &[bool], eta: &[(f64, f64, f64)], actual: &[f64]) -> Scores {
    let (precision, recall) = metrics::precision_recall(risk, labels, 0.5);
    Scores {
        examples: actual.len(),
        auc: metrics::auc(risk, labels),
        brier: metrics::brier(risk, labels),
        log_loss: metrics::log_loss(risk, labels),
        calibration_error: metrics::calibration_error(risk, labels),
        late_precision: precision,
        late_recall: recall,
        eta_mae_hours: metrics::mae(&eta.iter().map(|e| e.1).collect::<Vec<_>>(), actual),
        p10_p90_coverage: metrics::coverage(
            &eta.iter().map(|e| e.0).collect::<Vec<_>>(),
            &eta.iter().map(|e| e.2).collect::<Vec<_>>(),
            actual,
        ),
        mean_p50_hours: metrics::mean(eta.iter().map(|e| e.1)),
        mean_actual_hours: metrics::mean(actual.iter().copied()),
    }
}

/// The time split: delivered shipments by ship time, where calibration and test begin.
struct Holdout<'a> {
    history: LaneHistory,
    delivered: Vec<&'a ShipmentRecord>,
    cal_start: usize,
    test_start: usize,
}

impl<'a> Holdout<'a> {
    fn of(records: &'a [ShipmentRecord], cfg: &TrainConfig) -> Result<Self, MlError> {
        let history = LaneHistory::from_records(records);
        let mut delivered: Vec<&ShipmentRecord> = records
            .iter()
            .filter(|r| r.delivered_at().is_some() && r.shipped_at().is_some())
            .collect();
        if delivered.len() < 200 {
            return Err(MlError::NotEnoughData(format!(
                "{} delivered shipments; at least 200 are needed",
                delivered.len()
            )));
        }
        delivered.sort_by_key(|r| r.shipped_at());
        let n = delivered.len() as f64;
        Ok(Self {
            history,
            test_start: ((1.0 - cfg.test_fraction) * n) as usize,
            cal_start: ((1.0 - cfg.test_fraction - cfg.calibration_fraction) * n) as usize,
            delivered,
        })
    }
}

/// How `models` (trained earlier, with their own vocabulary) score on the test split that
/// training on `records` with `cfg` holds out: the champion's side of a champion/challenger
/// comparison on the same holdout.
pub fn evaluate_on_holdout(
    models: &Models,
    records: &[ShipmentRecord],
    cfg: &TrainConfig,
) -> Result<Scores, MlError> {
    let h = Holdout::of(records, cfg)?;
    let test: Vec<Example> = h.delivered[h.test_start..]
        .iter()
        .flat_map(|r| {
            examples_of(
                r,
                &h.history,
                &models.vocabulary,
                cfg.max_examples_per_shipment,
            )
        })
        .filter(|e| e.late.is_some())
        .collect();
    let refs: Vec<&Example> = test.iter().collect();
    let (risk, eta) = predict_examples(models, &refs)?;
    let labels: Vec<bool> = refs.iter().map(|e| e.late == Some(true)).collect();
    let actual: Vec<f64> = refs.iter().map(|e| e.eta_hours).collect();
    Ok(scores(&risk, &labels, &eta, &actual))
}

/// Trains on the earlier shipments and reports on the latest ones.
/// `progress` hears each stage as it starts.
pub fn train_and_evaluate(
    records: &[ShipmentRecord],
    cfg: &TrainConfig,
    progress: &dyn Fn(&str),
) -> Result<(Models, Report), MlError> {
    let mut stage_seconds = BTreeMap::new();
    let mut clock = std::time::Instant::now();
    let mut stage = |name: &str, next: &str| {
        stage_seconds.insert(name.to_string(), clock.elapsed().as_secs_f64());
        clock = std::time::Instant::now();
        progress(next);
    };
    progress("building features");
    let Holdout {
        history,
        delivered,
        cal_start,
        test_start,
    } = Holdout::of(records, cfg)?;
    let n = delivered.len();
    let test_from = delivered[test_start].shipped_at().unwrap_or_default();
    let mut vocabulary = Vocabulary::default();
    for r in &delivered[..cal_start] {
        vocabulary.learn(r);
    }
    let collect = |slice: &[&ShipmentRecord]| -> Vec<Example> {
        slice
            .iter()
            .flat_map(|r| examples_of(r, &history, &vocabulary, cfg.max_examples_per_shipment))
            .collect()
    };
    let train = collect(&delivered[..cal_start]);
    let calibration = collect(&delivered[cal_start..test_start]);
    let test = collect(&delivered[test_start..]);
    let labelled = train.iter().filter(|e| e.late.is_some()).count();
    let keep = (cfg.max_training_examples as f64 / labelled.max(1) as f64).min(1.0);
    let threshold = (keep * u64::MAX as f64) as u64;
    let train_refs: Vec<&Example> = train
        .iter()
        .filter(|e| e.late.is_some())
        .enumerate()
        .filter(|(i, _)| keep >= 1.0 || gbdt::mix(cfg.seed ^ *i as u64) <= threshold)
        .map(|(_, e)| e)
        .collect();
    if let Some(dir) = &cfg.export_dir {
        for (name, examples) in [
            ("train", &train),
            ("calibration", &calibration),
            ("test", &test),
        ] {
            export_csv(&dir.join(format!("{name}.csv")), examples)?;
        }
    }

    let rows = train_refs.len();
    let late_y: Vec<f64> = train_refs
        .iter()
        .map(|e| f64::from(u8::from(e.late == Some(true))))
        .collect();
    let eta_y: Vec<f64> = train_refs.iter().map(eta_target).collect();
    stage(
        "features",
        &format!("training the late-risk model on {rows} examples"),
    );
    let late = fit(Loss::LogLoss, cfg, &train_refs, &late_y);
    stage("late_risk", "training the p10 ETA model");
    let p10 = fit(Loss::Quantile(0.1), cfg, &train_refs, &eta_y);
    stage("eta_p10", "training the p50 ETA model");
    let p50 = fit(Loss::Quantile(0.5), cfg, &train_refs, &eta_y);
    stage("eta_p50", "training the p90 ETA model");
    let p90 = fit(Loss::Quantile(0.9), cfg, &train_refs, &eta_y);
    stage("eta_p90", "calibrating");

    // Calibration set: isotonic map for probabilities, conformal widening for the window.
    let cal: Vec<&Example> = calibration.iter().filter(|e| e.late.is_some()).collect();
    let raw: Vec<f64> = cal
        .iter()
        .map(|e| sigmoid(late.predict_row(&e.features)))
        .collect();
    let cal_labels: Vec<bool> = cal.iter().map(|e| e.late == Some(true)).collect();
    let calibration_map = Isotonic::fit(&raw, &cal_labels);
    let nonconformity: Vec<f64> = cal
        .iter()
        .map(|e| {
            let (l, h) = (eta_hours(&p10, &e.features), eta_hours(&p90, &e.features));
            (l - e.eta_hours).max(e.eta_hours - h)
        })
        .collect();
    let interval_widening = metrics::quantile(&nonconformity, cfg.interval_coverage).max(0.0);
    let as_of = delivered
        .iter()
        .filter_map(|r| r.delivered_at())
        .max()
        .unwrap_or(test_from);
    let models = Models {
        feature_names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        lanes: history.snapshot(as_of),
        late,
        p10,
        p50,
        p90,
        calibration: calibration_map,
        interval_widening,
        vocabulary,
    };

    stage("calibration", "evaluating on the test set");
    let test_refs: Vec<&Example> = test.iter().filter(|e| e.late.is_some()).collect();
    let (risk, eta) = predict_examples(&models, &test_refs)?;
    let labels: Vec<bool> = test_refs.iter().map(|e| e.late == Some(true)).collect();
    let actual: Vec<f64> = test_refs.iter().map(|e| e.eta_hours).collect();
    let model_scores = scores(&risk, &labels, &eta, &actual);
    // Baselines: the promise (past the promised day means late; ETA = end of promised day),
    // and the lane's history (its late rate; its median transit).
    let promise_risk: Vec<f64> = test_refs
        .iter()
        .map(|e| if e.promise_eta_hours < 0.0 { 1.0 } else { 0.0 })
        .collect();
    let promise_eta: Vec<(f64, f64, f64)> = test_refs
        .iter()
        .map(|e| {
            let p = e.promise_eta_hours.max(0.0);
            (p, p, p)
        })
        .collect();
    let lane_risk: Vec<f64> = test_refs
        .iter()
        .map(|e| {
            if e.lane_late_rate.is_finite() {
                e.lane_late_rate
            } else {
                0.5
            }
        })
        .collect();
    let lane_eta: Vec<(f64, f64, f64)> = test_refs
        .iter()
        .map(|e| {
            let p = if e.lane_eta_hours.is_finite() {
                e.lane_eta_hours
            } else {
                e.promise_eta_hours.max(0.0)
            };
            (p, p, p)
        })
        .collect();
    let mut by_carrier = BTreeMap::new();
    let carriers: std::collections::BTreeSet<&str> =
        test_refs.iter().map(|e| e.carrier.as_str()).collect();
    for c in carriers {
        let idx: Vec<usize> = (0..test_refs.len())
            .filter(|i| test_refs[*i].carrier == c)
            .collect();
        let pick = |v: &[f64]| idx.iter().map(|i| v[*i]).collect::<Vec<_>>();
        by_carrier.insert(
            c.to_string(),
            scores(
                &pick(&risk),
                &idx.iter().map(|i| labels[*i]).collect::<Vec<_>>(),
                &idx.iter().map(|i| eta[*i]).collect::<Vec<_>>(),
                &pick(&actual),
            ),
        );
    }
    stage("evaluation", "done");
    let report = Report {
        shipments: n,
        train_examples: rows,
        calibration_examples: cal.len(),
        test_examples: test_refs.len(),
        test_from,
        model: model_scores,
        promise_baseline: scores(&promise_risk, &labels, &promise_eta, &actual),
        lane_baseline: scores(&lane_risk, &labels, &lane_eta, &actual),
        by_carrier,
        interval_widening_hours: interval_widening,
        trained_from: delivered[0].shipped_at().unwrap_or_default(),
        trained_to: as_of,
        stage_seconds,
        trees: [
            ("late_risk", &models.late),
            ("eta_p10", &models.p10),
            ("eta_p50", &models.p50),
            ("eta_p90", &models.p90),
        ]
        .into_iter()
        .map(|(k, m)| {
            let nodes = m.trees.iter().map(|t| t.nodes.len()).sum();
            (k.to_string(), (m.trees.len(), nodes))
        })
        .collect(),
    };
    Ok((models, report))
}
