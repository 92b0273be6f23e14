//! Gradient-boosted trees, written for this workload: histogram-based leaf-wise growth, a
//! log-loss objective (Newton leaves) and a quantile objective (leaves set to the quantile
//! of their residuals), early stopping on a validation set, and flat trees that serve a
//! prediction in a few hundred nanoseconds and explain it feature by feature. Deterministic:
//! the same data, parameters and seed give the same model on any number of threads.
//! docs/ml.md says why this replaced `perpetual`.

pub mod bins;
mod flat;
mod grow;
pub mod tree;

use bins::Binner;
use grow::{Data, Shape};
use serde::{Deserialize, Serialize};
use tree::Tree;

/// What a model minimizes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Loss {
    /// Binary log loss; the model outputs log-odds.
    LogLoss,
    /// Pinball loss of a quantile in (0, 1).
    Quantile(f64),
}

/// Training parameters.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub loss: Loss,
    pub rounds: usize,
    pub learning_rate: f64,
    pub max_leaves: usize,
    pub max_depth: usize,
    pub min_leaf: usize,
    pub lambda: f64,
    /// Share of rows each tree sees (chosen by a hash of seed, round and row).
    pub subsample: f64,
    pub seed: u64,
    /// Stop when the validation loss has not improved for this many rounds.
    pub patience: usize,
}

impl Params {
    pub fn new(loss: Loss) -> Self {
        Self {
            loss,
            rounds: 400,
            learning_rate: 0.1,
            max_leaves: 31,
            max_depth: 8,
            min_leaf: 40,
            lambda: 1.0,
            subsample: 0.8,
            seed: 42,
            patience: 30,
        }
    }
}

/// A trained model: a base score plus the sum of its trees' outputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Forest {
    pub loss: Loss,
    pub base: f64,
    pub trees: Vec<Tree>,
    pub features: usize,
    /// The trees packed for prediction (built on first use).
    #[serde(skip)]
    flat: std::sync::OnceLock<flat::FlatForest>,
}

/// Column-major training data: `columns[f * rows + r]`.
pub struct Matrix<'a> {
    pub columns: &'a [f64],
    pub rows: usize,
}

/// The logistic function: log-odds (what a `LogLoss` forest outputs) to probability.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The `q` quantile of `values` (reorders them; 0 when empty).
pub(crate) fn quantile_of(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let k = ((values.len() - 1) as f64 * q).round() as usize;
    let (_, v, _) = values.select_nth_unstable_by(k, f64::total_cmp);
    *v
}

/// A 64-bit mix (splitmix64): a fixed pseudo-random function of its input.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Loss {
    fn base(&self, y: &[f64]) -> f64 {
        match *self {
            Loss::LogLoss => {
                let m = (y.iter().sum::<f64>() / y.len().max(1) as f64).clamp(1e-6, 1.0 - 1e-6);
                (m / (1.0 - m)).ln()
            }
            Loss::Quantile(q) => quantile_of(&mut y.to_vec(), q),
        }
    }

    fn gradients(&self, y: &[f64], raw: &[f64], g: &mut [f32], h: &mut [f32]) {
        for i in 0..y.len() {
            let (gi, hi) = match *self {
                Loss::LogLoss => {
                    let p = sigmoid(raw[i]);
                    (p - y[i], (p * (1.0 - p)).max(1e-6))
                }
                Loss::Quantile(q) => (if raw[i] >= y[i] { 1.0 - q } else { -q }, 1.0),
            };
            g[i] = gi as f32;
            h[i] = hi as f32;
        }
    }

    /// Mean loss of raw outputs.
    pub fn mean(&self, y: &[f64], raw: &[f64]) -> f64 {
        let total: f64 = y
            .iter()
            .zip(raw)
            .map(|(y, s)| match *self {
                Loss::LogLoss => {
                    let p = sigmoid(*s).clamp(1e-12, 1.0 - 1e-12);
                    -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
                }
                Loss::Quantile(q) => {
                    let d = y - s;
                    if d >= 0.0 {
                        q * d
                    } else {
                        (q - 1.0) * d
                    }
                }
            })
            .sum();
        total / y.len().max(1) as f64
    }
}

impl Forest {
    /// The raw output for one row (log-odds for `LogLoss`).
    #[inline]
    pub fn predict_row(&self, row: &[f64]) -> f64 {
        self.base
            + self
                .flat
                .get_or_init(|| flat::FlatForest::pack(&self.trees))
                .predict(row)
    }

    /// Raw outputs for row-major rows (`features` values each).
    pub fn predict_rows(&self, rows: &[f64]) -> Vec<f64> {
        rows.chunks_exact(self.features.max(1))
            .map(|r| self.predict_row(r))
            .collect()
    }

    /// Each feature's share of the raw output, and the expected output they start from; the
    /// shares plus the expected output equal `predict_row(row)`.
    pub fn contributions(&self, row: &[f64]) -> (Vec<f64>, f64) {
        let mut out = vec![0.0; self.features];
        let expected = self.base
            + self
                .flat
                .get_or_init(|| flat::FlatForest::pack(&self.trees))
                .contributions(row, &mut out);
        (out, expected)
    }
}

/// Trains a forest; `validation` (if any) decides when to stop. `progress` hears the round.
pub fn train(
    x: &Matrix,
    y: &[f64],
    validation: Option<(&Matrix, &[f64])>,
    params: &Params,
    progress: &dyn Fn(usize),
) -> Forest {
    let features = x.columns.len() / x.rows.max(1);
    let binner = Binner::fit(x.columns, x.rows);
    let bins = binner.bin_all(x.columns, x.rows);
    let base = params.loss.base(y);
    let mut raw = vec![base; x.rows];
    let (mut g, mut h) = (vec![0f32; x.rows], vec![0f32; x.rows]);
    let valid_bins = validation.map(|(v, _)| binner.bin_all(v.columns, v.rows));
    let mut valid_raw = validation.map(|(v, _)| vec![base; v.rows]);
    let shape = Shape {
        max_leaves: params.max_leaves,
        max_depth: params.max_depth,
        min_leaf: params.min_leaf,
        lambda: params.lambda,
    };
    let mut trees: Vec<Tree> = Vec::new();
    let (mut best_loss, mut best_round) = (f64::INFINITY, 0);
    let mut residuals = Vec::new();
    for round in 0..params.rounds {
        progress(round);
        params.loss.gradients(y, &raw, &mut g, &mut h);
        let threshold = (params.subsample.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
        let round_seed = mix(params.seed ^ mix(round as u64));
        let rows: Vec<u32> = (0..x.rows)
            .filter(|r| params.subsample >= 1.0 || mix(round_seed ^ *r as u64) <= threshold)
            .map(|r| u32::try_from(r).unwrap_or(u32::MAX))
            .collect();
        let data = Data {
            binner: &binner,
            bins: &bins,
            rows: x.rows,
            gradient: &g,
            hessian: &h,
        };
        let (mut tree, leaves) = grow::grow(&data, rows, &shape, |leaf_rows| match params.loss {
            Loss::LogLoss => {
                let (sg, sh) = leaf_rows.iter().fold((0.0, 0.0), |(a, b), r| {
                    (a + f64::from(g[*r as usize]), b + f64::from(h[*r as usize]))
                });
                -sg / (sh + params.lambda)
            }
            Loss::Quantile(q) => {
                residuals.clear();
                residuals.extend(leaf_rows.iter().map(|r| y[*r as usize] - raw[*r as usize]));
                quantile_of(&mut residuals, q)
            }
        });
        tree.scale(params.learning_rate);
        tree.fill_expected_values();
        // Rows the tree was grown on get their leaf's value directly; the rest walk it.
        let mut seen = vec![false; x.rows];
        for (node, leaf_rows) in &leaves {
            let v = tree.nodes[*node].value;
            for r in leaf_rows {
                raw[*r as usize] += v;
                seen[*r as usize] = true;
            }
        }
        for (r, done) in seen.iter().enumerate() {
            if !done {
                raw[r] += tree.predict_binned(&bins, x.rows, r);
            }
        }
        if let (Some((v, vy)), Some(vb), Some(vr)) = (validation, &valid_bins, &mut valid_raw) {
            for (r, out) in vr.iter_mut().enumerate() {
                *out += tree.predict_binned(vb, v.rows, r);
            }
            trees.push(tree);
            let loss = params.loss.mean(vy, vr);
            if loss < best_loss - 1e-12 {
                (best_loss, best_round) = (loss, trees.len());
            } else if trees.len() - best_round >= params.patience {
                break;
            }
        } else {
            trees.push(tree);
            best_round = trees.len();
        }
    }
    trees.truncate(best_round);
    Forest {
        loss: params.loss,
        base,
        trees,
        features,
        flat: std::sync::OnceLock::new(),
    }
}

#[cfg(test)]
mod tests;
