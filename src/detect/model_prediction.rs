//! The model's own verdict: when the scan embeds with the user's model and
//! the model ends in a classifier of the dataset's classes, a sample it
//! confidently assigns to another class than its label is marked, with
//! that class suggested. It corroborates, never flags alone: measured on
//! the four devsets with models trained on them, the samples such a model
//! still contradicts after fitting them are mostly hard clean ones (its
//! flags no other detector shared were false 32 times in 35), while on
//! flipped labels it agrees with the label check (64 of its 69 flags were
//! flips, all but 6 already found). So it adds its reason and suggested
//! label to samples the others flag, and the workbench's detector filter
//! lists its own marks. Without a model it marks nothing.
//!
//! Which of the model's outputs is which class is not written in an ONNX
//! file, and the dataset's classes are sorted by name, not in the order the
//! model was trained with. So the order is read from the data: each output
//! is the class it most often predicts, which must give every class one
//! output and agree with at least half the given labels — else the model's
//! predictions are not used (and the scan says so).

use super::DetectorScores;
use super::detector::{Calibration, Detector, DetectorInfo, Evidence, Role, ScanContext};
use crate::linalg::Matrix;

/// The model-prediction detector (see the module documentation).
pub struct ModelPrediction;

static INFO: DetectorInfo = DetectorInfo {
    name: "model_prediction",
    title: "model disagrees",
    finds: "the user's model confidently predicts another class",
    doing: "reading the model's predictions",
    role: Role::Corroborating,
    calibration: Calibration::Threshold,
};

impl Detector for ModelPrediction {
    fn info(&self) -> &'static DetectorInfo {
        &INFO
    }
    fn run(&self, ctx: &ScanContext) -> Evidence {
        let n = ctx.len();
        Evidence::scores(match ctx.predictions.filter(|p| p.logits.rows == n) {
            Some(p) => run(
                &p.logits,
                &p.order,
                &ctx.features.labels,
                &ctx.features.class_names,
            ),
            None => DetectorScores::new(INFO.name, n),
        })
    }
}

/// Probability the model must give one other class for a flag: "confident"
/// in the sense a person would use, the same on every dataset.
pub const CONFIDENT: f64 = 0.9;

/// Flags samples whose softmax puts at least [`CONFIDENT`] on one class
/// other than their label; `order[k]` is model output `k`'s class.
pub fn run(logits: &Matrix, order: &[usize], labels: &[u32], classes: &[String]) -> DetectorScores {
    let mut out = DetectorScores::new(INFO.name, labels.len());
    for (i, &label) in labels.iter().enumerate() {
        let mut p = vec![0.0; classes.len()];
        for (k, v) in softmax(logits.row(i)).into_iter().enumerate() {
            p[order[k]] = v;
        }
        let own = p.get(label as usize).copied().unwrap_or(0.0);
        let Some((top, p_top)) = p
            .iter()
            .enumerate()
            .filter(|(c, _)| *c != label as usize)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(c, &v)| (c, v))
        else {
            continue;
        };
        out.score[i] = if p_top < CONFIDENT {
            0.5 * p_top / CONFIDENT
        } else {
            0.5 + 0.5 * (p_top - CONFIDENT) / (1.0 - CONFIDENT)
        } as f32;
        if p_top >= CONFIDENT {
            out.flagged[i] = true;
            out.suggested.set(i, top as u32);
            out.reasons.set(
                i,
                format!(
                    "the model itself puts {:.0}% on '{}' and {:.1}% on its label",
                    100.0 * p_top,
                    classes.get(top).map_or("?", String::as_str),
                    100.0 * own
                ),
            );
        }
    }
    out
}

/// Probabilities from scores, computed stably (the largest score subtracted).
fn softmax(scores: &[f32]) -> Vec<f64> {
    let max = scores.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let e: Vec<f64> = scores.iter().map(|&s| (s as f64 - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::super::predictions::class_order;
    use super::*;

    /// Only a confident vote for another class flags, and suggests it.
    #[test]
    fn flags_confident_disagreement_only() {
        let classes: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let logits = Matrix::new(
            4,
            3,
            vec![
                9.0, 0.0, 0.0, // agrees with label a
                0.0, 9.0, 0.0, // label a, confidently b
                0.0, 1.0, 1.2, // label a, unsure between b and c
                0.0, 0.0, 9.0, // label c, agrees
            ],
        );
        let s = run(&logits, &[0, 1, 2], &[0, 0, 0, 2], &classes);
        assert_eq!(s.flagged, [false, true, false, false]);
        assert_eq!(s.suggestion(1), Some(1));
        assert!(s.reason(1).unwrap().contains("'b'"));
        assert!(s.score[1] > 0.5 && s.score[2] < 0.5 && s.score[0] < 0.01);
    }

    /// The model's output order is read from what it predicts: outputs in
    /// another order than the sorted class names are mapped back; a model
    /// that agrees with few labels, or predicts two classes as one, is not
    /// used.
    #[test]
    fn class_order_comes_from_the_data() {
        // Outputs (c, a, b): output 0 is class 2, 1 is 0, 2 is 1.
        let labels = [0u32, 0, 1, 1, 2, 2, 0];
        let top = [1usize, 1, 2, 2, 0, 0, 2];
        let logits = Matrix::new(
            7,
            3,
            top.iter()
                .flat_map(|&t| (0..3).map(move |k| if k == t { 5.0 } else { 0.0 }))
                .collect(),
        );
        assert_eq!(class_order(&logits, &labels, 3), Some(vec![2, 0, 1]));
        let classes: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let s = run(&logits, &[2, 0, 1], &labels, &classes);
        assert_eq!(s.flagged, [false, false, false, false, false, false, true]);
        assert_eq!(s.suggestion(6), Some(1), "output 2 is class 'b'");
        // Everything predicted as one output: no order.
        let one = Matrix::new(7, 3, [5.0, 0.0, 0.0].repeat(7));
        assert_eq!(class_order(&one, &labels, 3), None);
    }
}
