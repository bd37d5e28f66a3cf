//! The user's model's class scores and which of its outputs is which
//! dataset class — read once by the scan (the order is read from the data:
//! each output is the class it most often predicts) and shared with the
//! detectors through their context.

use crate::linalg::Matrix;

/// The model's class scores with which output is which dataset class.
pub struct Predictions {
    /// One row of scores per sample, one column per model output.
    pub logits: Matrix,
    /// `order[k]`: the dataset class of model output `k`.
    pub order: Vec<usize>,
}

impl Predictions {
    /// The scores with their class order read from the data
    /// ([`class_order`]); `None` when no order can be trusted.
    pub fn read(logits: Matrix, labels: &[u32], classes: usize) -> Option<Self> {
        if logits.rows != labels.len() || logits.cols != classes {
            return None;
        }
        let order = class_order(&logits, labels, classes)?;
        Some(Predictions { logits, order })
    }
}

/// Share of the given labels the model must agree with for its outputs to
/// be taken as the dataset's classes (a model that does not is no
/// classifier of these labels).
pub const MIN_AGREEMENT: f64 = 0.5;

/// Which dataset class each model output is: the class it most often
/// predicts. `None` unless that is one class per output and the model then
/// agrees with at least [`MIN_AGREEMENT`] of the labels.
pub fn class_order(logits: &Matrix, labels: &[u32], classes: usize) -> Option<Vec<usize>> {
    let mut confusion = vec![vec![0usize; classes]; logits.cols];
    for (i, &l) in labels.iter().enumerate() {
        let row = logits.row(i);
        let top = (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b]))?;
        confusion[top][l as usize] += 1;
    }
    let order: Vec<usize> = confusion
        .iter()
        .map(|counts| (0..classes).max_by_key(|&c| (counts[c], std::cmp::Reverse(c))))
        .collect::<Option<_>>()?;
    let mut seen = vec![false; classes];
    for &c in &order {
        if std::mem::replace(&mut seen[c], true) {
            return None;
        }
    }
    let agree: usize = order
        .iter()
        .enumerate()
        .map(|(k, &c)| confusion[k][c])
        .sum();
    (agree as f64 >= MIN_AGREEMENT * labels.len() as f64).then_some(order)
}
