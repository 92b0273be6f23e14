//! Scoring cost: one shipment at a time (features, four models, calibration, reasons) and a
//! batch of in-transit shipments, against the models trained on 60 simulated days.
//! `cargo bench -p bitshipper-ml --bench scoring`

use bitshipper_ml::history::simulated;
use bitshipper_ml::model::Models;
use bitshipper_ml::train::{train_and_evaluate, TrainConfig};
use chrono::{DateTime, Duration, Utc};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn setup() -> (
    Models,
    Vec<(bitshipper_ml::features::ShipmentRecord, DateTime<Utc>)>,
) {
    let records = simulated(60, 150, 42, &|_, _| ()).unwrap_or_else(|e| panic!("{e}"));
    let (models, _) = train_and_evaluate(&records, &TrainConfig::default(), &|_| ())
        .unwrap_or_else(|e| panic!("{e}"));
    // Each shipment as it stood one day after its first scan.
    let in_transit = records
        .into_iter()
        .filter_map(|r| {
            let t = r.shipped_at()? + Duration::hours(24);
            Some((r, t))
        })
        .take(1_000)
        .collect();
    (models, in_transit)
}

fn scoring(c: &mut Criterion) {
    let (models, shipments) = setup();
    let mut group = c.benchmark_group("scoring");
    group.throughput(Throughput::Elements(1));
    let (one, t) = &shipments[0];
    group.bench_function("one shipment", |b| {
        b.iter(|| black_box(models.score(black_box(one), *t)))
    });
    group.throughput(Throughput::Elements(shipments.len() as u64));
    let batch: Vec<_> = shipments.iter().map(|(r, t)| (r, *t)).collect();
    group.bench_function("batch of 1000, one core", |b| {
        b.iter(|| {
            batch
                .iter()
                .map(|(r, t)| models.score(r, *t))
                .collect::<Vec<_>>()
        })
    });
    group.bench_function("batch of 1000", |b| {
        b.iter(|| black_box(models.score_batch(black_box(&batch))))
    });
    // The models alone, on feature rows already built (what the per-event target measures
    // once features are kept up to date by the processor).
    let rows: Vec<Vec<f64>> = shipments
        .iter()
        .map(|(r, t)| {
            bitshipper_ml::features::features_at(r, *t, &models.lanes, &models.vocabulary)
        })
        .collect();
    group.bench_function("models only, batch of 1000", |b| {
        b.iter(|| {
            rows.iter()
                .map(|row| models.predict_row(black_box(row)))
                .collect::<Vec<_>>()
        })
    });
    group.bench_function("models only, batch of 1000 over the cores", |b| {
        use rayon::prelude::*;
        b.iter(|| {
            rows.par_iter()
                .map(|row| models.predict_row(black_box(row)))
                .collect::<Vec<_>>()
        })
    });
    group.finish();
}

criterion_group!(benches, scoring);
criterion_main!(benches);
