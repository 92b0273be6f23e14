//! Checks of the booster on data with known answers.

use super::*;

/// Uniform in [0, 1) from a counter (no RNG state, so the data is the same everywhere).
fn unit(i: u64, stream: u64) -> f64 {
    (mix(i.wrapping_mul(31).wrapping_add(stream)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Two features: `a` in [0, 100), `b` a category 0..4 (NaN for every tenth row). The target is
/// `3a + 40·[b = 2] + noise in [-30, 30)`, in the hundreds, like hours to delivery.
fn regression(n: usize, stream: u64) -> (Vec<f64>, Vec<f64>) {
    let mut columns = vec![0.0; 2 * n];
    let mut y = Vec::with_capacity(n);
    for r in 0..n {
        let a = unit(r as u64, stream) * 100.0;
        let b = if r % 10 == 0 {
            f64::NAN
        } else {
            (unit(r as u64, stream + 1) * 4.0).floor()
        };
        columns[r] = a;
        columns[n + r] = b;
        let noise = unit(r as u64, stream + 2) * 60.0 - 30.0;
        y.push(3.0 * a + if b == 2.0 { 40.0 } else { 0.0 } + noise);
    }
    (columns, y)
}

fn quantile_model(q: f64, columns: &[f64], y: &[f64]) -> Forest {
    let x = Matrix {
        columns,
        rows: y.len(),
    };
    train(&x, y, None, &Params::new(Loss::Quantile(q)), &|_| ())
}

fn row(columns: &[f64], n: usize, r: usize) -> [f64; 2] {
    [columns[r], columns[n + r]]
}

#[test]
fn quantile_models_bracket_the_truth_at_their_levels() {
    let (train_x, train_y) = regression(20_000, 1);
    let (test_x, test_y) = regression(5_000, 100);
    let n = test_y.len();
    for q in [0.1, 0.5, 0.9] {
        let model = quantile_model(q, &train_x, &train_y);
        let below = (0..n)
            .filter(|r| test_y[*r] <= model.predict_row(&row(&test_x, n, *r)))
            .count() as f64
            / n as f64;
        assert!(
            (below - q).abs() < 0.04,
            "q={q}: {below} of the test set below"
        );
    }
    // The median's error is close to the noise's own (uniform ±30: mean absolute 15).
    let p50 = quantile_model(0.5, &train_x, &train_y);
    let mae = (0..n)
        .map(|r| (test_y[r] - p50.predict_row(&row(&test_x, n, r))).abs())
        .sum::<f64>()
        / n as f64;
    assert!(mae < 17.5, "p50 MAE {mae}");
}

#[test]
fn log_loss_model_ranks_and_fits_probabilities() {
    // P(y = 1) = a / 100.
    let n = 20_000;
    let (columns, _) = regression(n, 7);
    let y: Vec<f64> = (0..n)
        .map(|r| f64::from(u8::from(unit(r as u64, 99) < columns[r] / 100.0)))
        .collect();
    let x = Matrix {
        columns: &columns,
        rows: n,
    };
    let model = train(&x, &y, None, &Params::new(Loss::LogLoss), &|_| ());
    for a in [10.0, 50.0, 90.0] {
        let p = sigmoid(model.predict_row(&[a, 1.0]));
        assert!((p - a / 100.0).abs() < 0.08, "a={a}: p={p}");
    }
}

#[test]
fn contributions_add_up_to_the_prediction() {
    let (columns, y) = regression(5_000, 3);
    let model = quantile_model(0.5, &columns, &y);
    for r in [0, 1, 17, 4999] {
        let x = row(&columns, y.len(), r);
        let (shares, expected) = model.contributions(&x);
        let total = expected + shares.iter().sum::<f64>();
        assert!((total - model.predict_row(&x)).abs() < 1e-9);
    }
    // `a` drives the target far more than `b`.
    let (shares, _) = model.contributions(&[95.0, 1.0]);
    assert!(
        shares[0] > 50.0 && shares[0].abs() > 5.0 * shares[1].abs(),
        "{shares:?}"
    );
}

#[test]
fn same_data_and_seed_give_the_same_model_on_any_number_of_threads() {
    let (columns, y) = regression(20_000, 5);
    let in_pool = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        pool.install(|| serde_json::to_string(&quantile_model(0.9, &columns, &y)))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let one = in_pool(1);
    assert_eq!(one, in_pool(2));
    assert_eq!(one, in_pool(2));
}

#[test]
fn validation_stops_training_when_it_stops_improving() {
    let (columns, y) = regression(5_000, 11);
    let (vc, vy) = regression(2_000, 12);
    let x = Matrix {
        columns: &columns,
        rows: y.len(),
    };
    let v = Matrix {
        columns: &vc,
        rows: vy.len(),
    };
    let mut params = Params::new(Loss::Quantile(0.5));
    params.rounds = 2_000;
    let model = train(&x, &y, Some((&v, &vy)), &params, &|_| ());
    assert!(model.trees.len() < 2_000, "{} trees", model.trees.len());
    assert!(!model.trees.is_empty());
}
