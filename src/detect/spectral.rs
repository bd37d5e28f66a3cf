//! Spectral signature (Tran et al. 2018), with the paper's centred score.
//!
//! Per class: centre the embeddings, find the top singular vector, score each
//! sample by its squared projection. ART then cuts every class at a fixed
//! assumed poison rate (flagging ~50%); here the cut comes from the class's own
//! score distribution: Tukey's far-out fence (Q3 + 3·IQR). Because a clean
//! class's top direction also has a heavy tail, this detector corroborates:
//! it never flags a sample in the combined report, it adds its reason to
//! samples others flag. (Until session 17 it flagged where the outlier
//! detector agreed: over 112 zoo sets that agreement alone flagged 302
//! samples, 299 of them clean.)

use rayon::prelude::*;

use super::detector::{Calibration, Detector, DetectorInfo, Evidence, Role, ScanContext};
use super::{DetectorScores, Features};
use crate::linalg::Pca;

/// The spectral signature detector (see the module documentation).
pub struct Spectral;

static INFO: DetectorInfo = DetectorInfo {
    name: "spectral",
    title: "spectral signature",
    finds: "far out along a class's top direction",
    doing: "spectral signatures",
    role: Role::Corroborating,
    calibration: Calibration::Threshold,
};

impl Detector for Spectral {
    fn info(&self) -> &'static DetectorInfo {
        &INFO
    }
    fn run(&self, ctx: &ScanContext) -> Evidence {
        Evidence::scores(run(ctx.features))
    }
}

/// Classes smaller than this get no spectral score.
const MIN_CLASS: usize = 10;

/// Runs the detector.
pub fn run(f: &Features) -> DetectorScores {
    let n = f.labels.len();
    let per_class: Vec<(Vec<usize>, Vec<f64>, f64)> = (0..f.n_classes as u32)
        .into_par_iter()
        .map(|c| {
            let members: Vec<usize> = (0..n).filter(|&i| f.labels[i] == c).collect();
            if members.len() < MIN_CLASS {
                return (members, vec![], f64::INFINITY);
            }
            let x = f.matrix.select_rows(&members);
            let pca = Pca::fit(&x, 1);
            let s: Vec<f64> = pca.transform(&x).into_iter().map(|v| v[0] * v[0]).collect();
            let fence = tukey_far_fence(&s);
            (members, s, fence)
        })
        .collect();
    let mut out = DetectorScores::new(INFO.name, n);
    for (members, s, fence) in per_class {
        if s.is_empty() {
            continue;
        }
        for (&i, &v) in members.iter().zip(&s) {
            out.score[i] = (0.5 * v / fence.max(1e-12)).min(1.0) as f32;
            if v > fence {
                out.flagged[i] = true;
                out.reasons.set(
                    i,
                    format!(
                        "extreme on its class's top singular direction ({:.1}× the far-out fence)",
                        v / fence.max(1e-12)
                    ),
                );
            }
        }
    }
    out
}

/// Q3 + 3·IQR of the values.
pub fn tukey_far_fence(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let pos = p * (s.len() - 1) as f64;
        let lo = pos.floor() as usize;
        let hi = pos.ceil() as usize;
        s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
    };
    let (q1, q3) = (q(0.25), q(0.75));
    q3 + 3.0 * (q3 - q1)
}
