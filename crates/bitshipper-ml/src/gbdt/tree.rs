//! A regression tree as grown and saved: nodes with their split, leaf value, expected value
//! and cover (`flat.rs` packs them for prediction and explanations).

use serde::{Deserialize, Serialize};

/// One node. A split sends a row left when its value is `<= threshold` (NaN goes the way
/// `missing_left` says); a leaf has `left == 0` and predicts `value`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub feature: u32,
    pub threshold: f64,
    /// The same split in bin codes: codes `1..=threshold_bin` go left.
    pub threshold_bin: u8,
    pub missing_left: bool,
    pub left: u32,
    pub right: u32,
    /// The leaf's output; for a split, the cover-weighted mean of the leaves below it (what
    /// the tree predicts knowing only that a row reached this node).
    pub value: f64,
    /// Training rows that reached the node.
    pub cover: f64,
}

impl Node {
    pub fn is_leaf(&self) -> bool {
        self.left == 0
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The leaf value for row `r` of a binned column-major matrix.
    pub fn predict_binned(&self, bins: &[u8], rows: usize, r: usize) -> f64 {
        let mut node = &self.nodes[0];
        while !node.is_leaf() {
            let code = bins[node.feature as usize * rows + r];
            let left = if code == 0 {
                node.missing_left
            } else {
                code <= node.threshold_bin
            };
            node = &self.nodes[if left { node.left } else { node.right } as usize];
        }
        node.value
    }

    /// Fills each split's `value` with the cover-weighted mean of its children, bottom up
    /// (children are always stored after their parent).
    pub fn fill_expected_values(&mut self) {
        for i in (0..self.nodes.len()).rev() {
            let n = &self.nodes[i];
            if n.is_leaf() {
                continue;
            }
            let (l, r) = (&self.nodes[n.left as usize], &self.nodes[n.right as usize]);
            let cover = l.cover + r.cover;
            let value = if cover > 0.0 {
                (l.value * l.cover + r.value * r.cover) / cover
            } else {
                0.0
            };
            self.nodes[i].value = value;
        }
    }

    /// Multiplies every output by `factor` (the learning rate).
    pub fn scale(&mut self, factor: f64) {
        for n in &mut self.nodes {
            n.value *= factor;
        }
    }
}
