//! A forest packed for prediction: every node of every tree in one array of 16-byte nodes
//! (threshold or leaf value, feature with the missing-value direction, left child; the right
//! child is always next to the left), so walking a tree touches few cache lines.

use super::tree::Tree;

const LEAF: u32 = u32::MAX;
const MISSING_LEFT: u32 = 1 << 31;

#[derive(Debug, Clone, Copy)]
struct FlatNode {
    /// The split threshold, or the leaf's value.
    threshold: f64,
    /// The split feature (`MISSING_LEFT` set when NaN goes left), or `LEAF`.
    feature: u32,
    left: u32,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct FlatForest {
    nodes: Vec<FlatNode>,
    roots: Vec<u32>,
    /// Per node, the expected output of the rows that reached it (for contributions).
    expected: Vec<f64>,
}

impl FlatForest {
    pub(crate) fn pack(trees: &[Tree]) -> Self {
        let mut packed = Self::default();
        for tree in trees {
            let offset = u32::try_from(packed.nodes.len()).unwrap_or(u32::MAX);
            packed.roots.push(offset);
            packed.expected.extend(tree.nodes.iter().map(|n| n.value));
            packed.nodes.extend(tree.nodes.iter().map(|n| {
                if n.is_leaf() {
                    FlatNode {
                        threshold: n.value,
                        feature: LEAF,
                        left: 0,
                    }
                } else {
                    debug_assert_eq!(n.right, n.left + 1, "children are stored side by side");
                    FlatNode {
                        threshold: n.threshold,
                        feature: n.feature | if n.missing_left { MISSING_LEFT } else { 0 },
                        left: offset + n.left,
                    }
                }
            }));
        }
        packed
    }

    #[inline]
    pub(crate) fn predict(&self, row: &[f64]) -> f64 {
        let mut total = 0.0;
        for &root in &self.roots {
            let mut node = self.nodes[root as usize];
            while node.feature != LEAF {
                let x = row[(node.feature & !MISSING_LEFT) as usize];
                let left = if x.is_nan() {
                    node.feature & MISSING_LEFT != 0
                } else {
                    x <= node.threshold
                };
                node = self.nodes[(node.left + u32::from(!left)) as usize];
            }
            total += node.threshold;
        }
        total
    }

    /// Adds each feature's share of the output to `out` (the change in expected output at
    /// each split on the row's path, credited to the split's feature); returns the sum of the
    /// roots' expected outputs.
    #[inline]
    pub(crate) fn contributions(&self, row: &[f64], out: &mut [f64]) -> f64 {
        let mut base = 0.0;
        for &root in &self.roots {
            let mut i = root as usize;
            base += self.expected[i];
            let mut node = self.nodes[i];
            while node.feature != LEAF {
                let feature = (node.feature & !MISSING_LEFT) as usize;
                let x = row[feature];
                let left = if x.is_nan() {
                    node.feature & MISSING_LEFT != 0
                } else {
                    x <= node.threshold
                };
                let next = (node.left + u32::from(!left)) as usize;
                out[feature] += self.expected[next] - self.expected[i];
                i = next;
                node = self.nodes[i];
            }
        }
        base
    }
}
