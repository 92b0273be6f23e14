//! A regression tree as a flat array of nodes: what serving walks (a few compares per level,
//! no allocation) and what explains a prediction (each split's share of it).

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

    fn goes_left(&self, x: f64) -> bool {
        if x.is_nan() {
            self.missing_left
        } else {
            x <= self.threshold
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The leaf a row of raw feature values reaches.
    #[inline]
    pub fn leaf(&self, row: &[f64]) -> &Node {
        let mut node = &self.nodes[0];
        while !node.is_leaf() {
            let next = if node.goes_left(row[node.feature as usize]) {
                node.left
            } else {
                node.right
            };
            node = &self.nodes[next as usize];
        }
        node
    }

    #[inline]
    pub fn predict(&self, row: &[f64]) -> f64 {
        self.leaf(row).value
    }

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

    /// Adds each feature's share of this tree's prediction to `out` (the change in expected
    /// value at each split on the row's path, credited to the split's feature) and returns
    /// the root's expected value; the shares plus that value sum to the prediction.
    pub fn contributions(&self, row: &[f64], out: &mut [f64]) -> f64 {
        let mut node = &self.nodes[0];
        let root = node.value;
        while !node.is_leaf() {
            let next = &self.nodes[if node.goes_left(row[node.feature as usize]) {
                node.left
            } else {
                node.right
            } as usize];
            out[node.feature as usize] += next.value - node.value;
            node = next;
        }
        root
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
