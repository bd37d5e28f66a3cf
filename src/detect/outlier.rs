//! Outliers in embedding space: samples unusually far from their nearest
//! neighbours compared with the rest of their class (robust z-score of the
//! mean distance to the 10 nearest, median/MAD per class). It corroborates:
//! odd-but-clean samples exist in every real dataset, so it never flags a
//! sample in the combined report, it adds its reason to samples others flag
//! (see [`super::spectral`] for what flagging with it cost).

use super::detector::{Calibration, Detector, DetectorInfo, Evidence, Role, ScanContext};
use super::{DetectorScores, Features};
use crate::knn::Neighbors;

/// The outlier detector (see the module documentation).
pub struct Outlier;

static INFO: DetectorInfo = DetectorInfo {
    name: "outlier",
    title: "outlier",
    finds: "far from the rest of its class",
    doing: "measuring distances",
    role: Role::Corroborating,
    calibration: Calibration::Threshold,
};

impl Detector for Outlier {
    fn info(&self) -> &'static DetectorInfo {
        &INFO
    }
    fn run(&self, ctx: &ScanContext) -> Evidence {
        Evidence::scores(run(ctx.features, ctx.neighbours))
    }
}

/// Robust z above which a sample is an outlier.
pub const Z_THRESHOLD: f64 = 6.0;
const K: usize = 10;

/// Runs the detector over precomputed neighbours.
pub fn run(f: &Features, nb: &Neighbors) -> DetectorScores {
    let n = f.labels.len();
    let k = K.min(nb.k);
    let dist: Vec<f64> = (0..n)
        .map(|i| {
            nb.dist2_of(i)[..k]
                .iter()
                .map(|&d| (d as f64).sqrt())
                .sum::<f64>()
                / k.max(1) as f64
        })
        .collect();
    let mut out = DetectorScores::new(INFO.name, n);
    for c in 0..f.n_classes as u32 {
        let members: Vec<usize> = (0..n).filter(|&i| f.labels[i] == c).collect();
        if members.len() < 5 {
            continue;
        }
        let mut v: Vec<f64> = members.iter().map(|&i| dist[i]).collect();
        let med = median(&mut v);
        let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
        let mad = 1.4826 * median(&mut dev);
        if mad <= 0.0 {
            continue;
        }
        for &i in &members {
            let z = (dist[i] - med) / mad;
            out.score[i] = (0.5 * z / Z_THRESHOLD).clamp(0.0, 1.0) as f32;
            if z > Z_THRESHOLD {
                out.flagged[i] = true;
                out.reasons.set(
                    i,
                    format!("far from everything else in its class (robust z = {z:.1})"),
                );
            }
        }
    }
    out
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}
