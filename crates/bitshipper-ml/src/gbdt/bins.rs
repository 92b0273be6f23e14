//! Feature binning: each column's values mapped to at most 255 ordered bins (bin 0 is
//! "missing"), so tree growth sums gradients into small histograms instead of sorting.

use serde::{Deserialize, Serialize};

/// Most bins per feature, missing included (codes fit a `u8`).
pub const MAX_BINS: usize = 255;

/// Per feature, the upper bound of each value bin; bin code `i + 1` holds values in
/// `(upper[i - 1], upper[i]]`, the last bound is +∞, and code 0 holds NaN.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Binner {
    pub upper: Vec<Vec<f64>>,
}

impl Binner {
    /// Bounds from the data (column-major, `rows` per column): distinct values when there are
    /// few, quantiles of the values otherwise.
    pub fn fit(columns: &[f64], rows: usize) -> Self {
        let features = columns.len() / rows.max(1);
        let upper = (0..features)
            .map(|f| bounds(&columns[f * rows..(f + 1) * rows]))
            .collect();
        Self { upper }
    }

    pub fn bin(&self, feature: usize, value: f64) -> u8 {
        if value.is_nan() {
            return 0;
        }
        let upper = &self.upper[feature];
        let i = upper.partition_point(|u| *u < value);
        // Bounds hold at most MAX_BINS - 1 entries, so i + 1 fits.
        u8::try_from(i.min(upper.len() - 1) + 1).unwrap_or(u8::MAX)
    }

    /// The whole matrix as bin codes, column-major.
    pub fn bin_all(&self, columns: &[f64], rows: usize) -> Vec<u8> {
        (0..self.upper.len())
            .flat_map(|f| {
                columns[f * rows..(f + 1) * rows]
                    .iter()
                    .map(move |v| self.bin(f, *v))
            })
            .collect()
    }

    pub fn bins(&self, feature: usize) -> usize {
        self.upper[feature].len() + 1
    }
}

fn bounds(values: &[f64]) -> Vec<f64> {
    let mut finite: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    finite.sort_by(f64::total_cmp);
    finite.dedup();
    let room = MAX_BINS - 1;
    let mut upper: Vec<f64> = if finite.len() <= room {
        // Midpoints between distinct values, so unseen values in between split sensibly.
        finite.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect()
    } else {
        // Quantiles of the distinct values are not quantiles of the data; use the data's.
        let mut all: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        all.sort_by(f64::total_cmp);
        let mut cut: Vec<f64> = (1..room).map(|i| all[i * (all.len() - 1) / room]).collect();
        cut.dedup();
        cut
    };
    upper.push(f64::INFINITY);
    upper
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_values_get_one_bin_each_and_nan_is_bin_zero() {
        let b = Binner::fit(&[3.0, 1.0, 2.0, f64::NAN, 2.0], 5);
        assert_eq!(b.bins(0), 4);
        assert_eq!(b.bin(0, f64::NAN), 0);
        assert_eq!(b.bin(0, 1.0), 1);
        assert_eq!(b.bin(0, 2.0), 2);
        assert_eq!(b.bin(0, 3.0), 3);
        assert_eq!(b.bin(0, 100.0), 3);
        assert_eq!(b.bin(0, -5.0), 1);
    }

    #[test]
    fn many_values_stay_within_255_bins_in_order() {
        let values: Vec<f64> = (0..10_000).map(|i| f64::from(i) * 0.37).collect();
        let b = Binner::fit(&values, values.len());
        assert!(b.bins(0) <= MAX_BINS);
        let codes: Vec<u8> = values.iter().map(|v| b.bin(0, *v)).collect();
        assert!(codes.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(codes[0], 1);
    }
}
