//! Growing one tree, leaf by leaf: gradient histograms per leaf (the smaller child summed
//! from its rows, the larger one by subtraction from the parent), the best split of the best
//! leaf first, until the leaf budget, the depth limit or no gain stops it.

use super::bins::Binner;
use super::tree::{Node, Tree};
use rayon::prelude::*;

/// Limits on one tree's shape.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub max_leaves: usize,
    pub max_depth: usize,
    /// Fewest training rows in a leaf.
    pub min_leaf: usize,
    /// L2 penalty on leaf outputs (Newton steps).
    pub lambda: f64,
}

/// Row-count below which histograms are summed on one thread.
const PARALLEL_ROWS: usize = 4096;

#[derive(Debug, Clone, Copy, Default)]
struct Bin {
    g: f64,
    h: f64,
    n: u32,
}

/// The training data as tree growth reads it: bin codes (column-major), gradients, hessians.
pub struct Data<'a> {
    pub binner: &'a Binner,
    pub bins: &'a [u8],
    pub rows: usize,
    pub gradient: &'a [f32],
    pub hessian: &'a [f32],
}

#[derive(Debug, Clone, Copy)]
struct Split {
    gain: f64,
    feature: usize,
    threshold_bin: u8,
    missing_left: bool,
}

struct Leaf {
    node: usize,
    depth: usize,
    rows: Vec<u32>,
    hist: Vec<Bin>,
    best: Option<Split>,
}

struct Layout {
    offsets: Vec<usize>,
    total: usize,
}

impl Layout {
    fn of(binner: &Binner) -> Self {
        let mut offsets = Vec::with_capacity(binner.upper.len());
        let mut total = 0;
        for f in 0..binner.upper.len() {
            offsets.push(total);
            total += binner.bins(f);
        }
        Self { offsets, total }
    }

    fn feature<'h>(&self, hist: &'h [Bin], f: usize) -> &'h [Bin] {
        let end = self.offsets.get(f + 1).copied().unwrap_or(self.total);
        &hist[self.offsets[f]..end]
    }
}

fn histogram(data: &Data, layout: &Layout, rows: &[u32]) -> Vec<Bin> {
    let mut hist = vec![Bin::default(); layout.total];
    // One slice of the histogram per feature, summed independently (in row order, so the
    // result does not depend on the number of threads).
    let mut slices: Vec<&mut [Bin]> = Vec::with_capacity(layout.offsets.len());
    let mut rest: &mut [Bin] = &mut hist;
    for f in 0..layout.offsets.len() {
        let end = layout.offsets.get(f + 1).copied().unwrap_or(layout.total);
        let (head, tail) = rest.split_at_mut(end - layout.offsets[f]);
        slices.push(head);
        rest = tail;
    }
    let fill = |(f, slice): (usize, &mut &mut [Bin])| {
        let column = &data.bins[f * data.rows..(f + 1) * data.rows];
        for &r in rows {
            let r = r as usize;
            let b = &mut slice[column[r] as usize];
            b.g += f64::from(data.gradient[r]);
            b.h += f64::from(data.hessian[r]);
            b.n += 1;
        }
    };
    if rows.len() >= PARALLEL_ROWS {
        slices.par_iter_mut().enumerate().for_each(fill);
    } else {
        slices.iter_mut().enumerate().for_each(fill);
    }
    hist
}

fn score(g: f64, h: f64, lambda: f64) -> f64 {
    g * g / (h + lambda)
}

fn best_split(hist: &[Bin], layout: &Layout, shape: &Shape) -> Option<Split> {
    let mut best: Option<Split> = None;
    for f in 0..layout.offsets.len() {
        let bins = layout.feature(hist, f);
        let (g, h, n) = bins
            .iter()
            .fold((0.0, 0.0, 0u32), |(g, h, n), b| (g + b.g, h + b.h, n + b.n));
        let parent = score(g, h, shape.lambda);
        let missing = bins[0];
        for missing_left in [false, true] {
            if missing_left && missing.n == 0 {
                break;
            }
            let (mut gl, mut hl, mut nl) = if missing_left {
                (missing.g, missing.h, missing.n)
            } else {
                (0.0, 0.0, 0)
            };
            for (t, b) in bins.iter().enumerate().take(bins.len() - 1).skip(1) {
                gl += b.g;
                hl += b.h;
                nl += b.n;
                let nr = n - nl;
                if (nl as usize) < shape.min_leaf {
                    continue;
                }
                if (nr as usize) < shape.min_leaf {
                    break;
                }
                let (gr, hr) = (g - gl, h - hl);
                if hl <= 1e-6 || hr <= 1e-6 {
                    continue;
                }
                let gain = score(gl, hl, shape.lambda) + score(gr, hr, shape.lambda) - parent;
                if gain > best.map_or(1e-9, |s| s.gain) {
                    best = Some(Split {
                        gain,
                        feature: f,
                        threshold_bin: u8::try_from(t).unwrap_or(u8::MAX),
                        // With no missing values seen, unseen ones follow the bigger side.
                        missing_left: missing_left || (missing.n == 0 && nl >= nr),
                    });
                }
            }
        }
    }
    best
}

fn leaf_node(cover: usize) -> Node {
    Node {
        feature: 0,
        threshold: 0.0,
        threshold_bin: 0,
        missing_left: false,
        left: 0,
        right: 0,
        value: 0.0,
        cover: cover as f64,
    }
}

/// Grows a tree on `rows`; returns it with each leaf's node index and rows, so the caller
/// sets leaf outputs (`leaf_value`) knowing exactly which rows each one holds.
pub fn grow(
    data: &Data,
    rows: Vec<u32>,
    shape: &Shape,
    mut leaf_value: impl FnMut(&[u32]) -> f64,
) -> (Tree, Vec<(usize, Vec<u32>)>) {
    let layout = Layout::of(data.binner);
    let mut tree = Tree {
        nodes: vec![leaf_node(rows.len())],
    };
    let hist = histogram(data, &layout, &rows);
    let mut leaves = vec![Leaf {
        node: 0,
        depth: 0,
        best: best_split(&hist, &layout, shape),
        rows,
        hist,
    }];
    while leaves.len() < shape.max_leaves {
        let Some((i, _)) = leaves
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.best.map(|s| (i, s.gain)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        else {
            break;
        };
        let parent = leaves.swap_remove(i);
        let Some(split) = parent.best else { break };
        let column = &data.bins[split.feature * data.rows..(split.feature + 1) * data.rows];
        let (left_rows, right_rows): (Vec<u32>, Vec<u32>) = parent.rows.iter().partition(|&&r| {
            let code = column[r as usize];
            if code == 0 {
                split.missing_left
            } else {
                code <= split.threshold_bin
            }
        });
        let small = if left_rows.len() <= right_rows.len() {
            &left_rows
        } else {
            &right_rows
        };
        let small_hist = histogram(data, &layout, small);
        let large_hist: Vec<Bin> = parent
            .hist
            .iter()
            .zip(&small_hist)
            .map(|(p, s)| Bin {
                g: p.g - s.g,
                h: p.h - s.h,
                n: p.n - s.n,
            })
            .collect();
        let (left_hist, right_hist) = if left_rows.len() <= right_rows.len() {
            (small_hist, large_hist)
        } else {
            (large_hist, small_hist)
        };
        let left = tree.nodes.len();
        tree.nodes.push(leaf_node(left_rows.len()));
        tree.nodes.push(leaf_node(right_rows.len()));
        let node = &mut tree.nodes[parent.node];
        node.feature = u32::try_from(split.feature).unwrap_or(u32::MAX);
        node.threshold_bin = split.threshold_bin;
        node.threshold = data.binner.upper[split.feature][usize::from(split.threshold_bin) - 1];
        node.missing_left = split.missing_left;
        node.left = u32::try_from(left).unwrap_or(u32::MAX);
        node.right = node.left + 1;
        let depth = parent.depth + 1;
        for (offset, (rows, hist)) in [(left_rows, left_hist), (right_rows, right_hist)]
            .into_iter()
            .enumerate()
        {
            let splittable = depth < shape.max_depth && rows.len() >= 2 * shape.min_leaf;
            leaves.push(Leaf {
                node: left + offset,
                depth,
                best: if splittable {
                    best_split(&hist, &layout, shape)
                } else {
                    None
                },
                rows,
                hist,
            });
        }
    }
    let mut assignment = Vec::with_capacity(leaves.len());
    leaves.sort_by_key(|l| l.node);
    for leaf in leaves {
        tree.nodes[leaf.node].value = leaf_value(&leaf.rows);
        assignment.push((leaf.node, leaf.rows));
    }
    (tree, assignment)
}
