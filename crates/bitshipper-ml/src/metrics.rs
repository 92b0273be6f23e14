//! Accuracy measures for the report: AUC, Brier score, log loss, calibration error,
//! precision and recall for the late class, MAE, interval coverage; and isotonic calibration.

use serde::{Deserialize, Serialize};

/// Area under the ROC curve (ties count half), by ranks.
pub fn auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut positives) = (0.0, 0usize);
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        let average_rank = (i + j + 1) as f64 / 2.0;
        for p in &pairs[i..j] {
            if p.1 {
                rank_sum += average_rank;
                positives += 1;
            }
        }
        i = j;
    }
    let negatives = pairs.len() - positives;
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    (rank_sum - (positives * (positives + 1)) as f64 / 2.0) / (positives * negatives) as f64
}

pub fn brier(p: &[f64], labels: &[bool]) -> f64 {
    mean(
        p.iter()
            .zip(labels)
            .map(|(p, y)| (p - f64::from(u8::from(*y))).powi(2)),
    )
}

pub fn log_loss(p: &[f64], labels: &[bool]) -> f64 {
    mean(p.iter().zip(labels).map(|(p, y)| {
        let p = p.clamp(1e-6, 1.0 - 1e-6);
        if *y {
            -p.ln()
        } else {
            -(1.0 - p).ln()
        }
    }))
}

/// Expected calibration error over ten equal-width probability bins.
pub fn calibration_error(p: &[f64], labels: &[bool]) -> f64 {
    let mut bins = [(0.0f64, 0.0f64, 0usize); 10];
    for (p, y) in p.iter().zip(labels) {
        let b = ((p * 10.0) as usize).min(9);
        bins[b].0 += p;
        bins[b].1 += f64::from(u8::from(*y));
        bins[b].2 += 1;
    }
    let n = p.len().max(1) as f64;
    bins.iter()
        .filter(|b| b.2 > 0)
        .map(|(sp, sy, c)| (*c as f64 / n) * ((sp - sy) / *c as f64).abs())
        .sum()
}

/// Precision and recall of "late" at a threshold.
pub fn precision_recall(p: &[f64], labels: &[bool], threshold: f64) -> (f64, f64) {
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    for (p, y) in p.iter().zip(labels) {
        match (*p >= threshold, *y) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fn_ += 1.0,
            _ => {}
        }
    }
    (tp / (tp + fp), tp / (tp + fn_))
}

pub fn mae(predicted: &[f64], actual: &[f64]) -> f64 {
    mean(predicted.iter().zip(actual).map(|(p, a)| (p - a).abs()))
}

/// Share of `actual` inside `[low, high]`.
pub fn coverage(low: &[f64], high: &[f64], actual: &[f64]) -> f64 {
    mean(
        low.iter()
            .zip(high)
            .zip(actual)
            .map(|((l, h), a)| f64::from(u8::from(*l <= *a && *a <= *h))),
    )
}

pub fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for v in values {
        sum += v;
        n += 1;
    }
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// The `q` quantile (0..1) of `values`.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    crate::gbdt::quantile_of(&mut values.to_vec(), q.clamp(0.0, 1.0))
}

/// Isotonic regression of outcomes on scores (pool-adjacent-violators): a monotone map from
/// raw score to calibrated probability, applied by step lookup.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Isotonic {
    /// Upper score edge of each block and its calibrated probability, ascending.
    steps: Vec<(f64, f64)>,
}

impl Isotonic {
    pub fn fit(scores: &[f64], labels: &[bool]) -> Self {
        let mut pairs: Vec<(f64, f64)> = scores
            .iter()
            .copied()
            .zip(labels.iter().map(|y| f64::from(u8::from(*y))))
            .filter(|(s, _)| s.is_finite())
            .collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Blocks of (max score, sum of outcomes, count).
        let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
        for (s, y) in pairs {
            blocks.push((s, y, 1.0));
            while blocks.len() > 1 {
                let n = blocks.len();
                let (a, b) = (blocks[n - 2], blocks[n - 1]);
                if a.1 / a.2 > b.1 / b.2 {
                    blocks.pop();
                    blocks[n - 2] = (b.0, a.1 + b.1, a.2 + b.2);
                } else {
                    break;
                }
            }
        }
        Isotonic {
            steps: blocks.into_iter().map(|(s, sum, n)| (s, sum / n)).collect(),
        }
    }

    pub fn apply(&self, score: f64) -> f64 {
        if self.steps.is_empty() || !score.is_finite() {
            return score;
        }
        let i = self.steps.partition_point(|(edge, _)| *edge < score);
        self.steps[i.min(self.steps.len() - 1)].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_match_hand_computed_values() {
        assert_eq!(
            auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]),
            0.75
        );
        assert_eq!(auc(&[0.5, 0.5], &[false, true]), 0.5);
        assert!((brier(&[1.0, 0.0], &[true, true]) - 0.5).abs() < 1e-12);
        assert!(log_loss(&[0.5], &[true]) - std::f64::consts::LN_2 < 1e-12);
        assert_eq!(
            precision_recall(&[0.9, 0.6, 0.2], &[true, false, true], 0.5),
            (0.5, 0.5)
        );
        assert_eq!(coverage(&[0.0, 0.0], &[1.0, 1.0], &[0.5, 2.0]), 0.5);
        assert_eq!(mae(&[1.0, 3.0], &[2.0, 2.0]), 1.0);
        assert!(calibration_error(&[0.95, 0.95], &[true, true]) < 0.06);
    }

    #[test]
    fn isotonic_is_monotone_and_fits_means() {
        let iso = Isotonic::fit(&[0.1, 0.2, 0.3, 0.4], &[false, true, false, true]);
        let out: Vec<f64> = [0.1, 0.2, 0.3, 0.4].iter().map(|s| iso.apply(*s)).collect();
        assert!(out.windows(2).all(|w| w[0] <= w[1]), "{out:?}");
        assert_eq!(out[0], 0.0);
        assert_eq!(out[3], 1.0);
    }
}
