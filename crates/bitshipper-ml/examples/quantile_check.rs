//! Quick check of perpetual's quantile objective on data with a known answer.
#![allow(clippy::unwrap_used)]
use perpetual::objective::Objective;
use perpetual::{Matrix, PerpetualBooster};

fn main() {
    let n = 5000;
    let x: Vec<f64> = (0..n).map(|i| (i % 100) as f64).collect();
    // y = 3x + 50 + noise in [-10, 10]
    let y: Vec<f64> = (0..n)
        .map(|i| 3.0 * x[i] + 50.0 + ((i * 7919 % 21) as f64 - 10.0))
        .collect();
    for (name, objective) in [
        (
            "quantile 0.5",
            Objective::QuantileLoss {
                quantile: Some(0.5),
            },
        ),
        ("squared", Objective::SquaredLoss),
    ] {
        let mut m = PerpetualBooster::default()
            .set_objective(objective)
            .set_budget(0.5);
        let t = std::time::Instant::now();
        m.fit(&Matrix::new(&x, n, 1), &y, None, None).unwrap();
        let p = m.predict(&Matrix::new(&x, n, 1), false);
        let mae: f64 = p.iter().zip(&y).map(|(a, b)| (a - b).abs()).sum::<f64>() / n as f64;
        let mean_p: f64 = p.iter().sum::<f64>() / n as f64;
        println!(
            "{name}: mae {mae:.2}, mean prediction {mean_p:.1} (mean y {:.1}), {:.1}s",
            y.iter().sum::<f64>() / n as f64,
            t.elapsed().as_secs_f64()
        );
    }
}
