//! Label-flip detection by neighbourhood label agreement.
//!
//! Each sample's label distribution is estimated from its k nearest
//! neighbours, then smoothed by label spreading (Zhou et al. 2004): the
//! neighbours' own estimates are mixed back in a few times, so a clean sample
//! in a confusable region (shirt among T-shirts) is not judged by one noisy
//! neighbourhood. A sample is flagged when the probability of its given label
//! falls to [`THRESHOLD`] or below; the most probable class is the suggestion.

use super::context::ScanContext;
use super::registry::{Calibration, Detector, DetectorInfo, Evidence, Role};
use super::{DetectorScores, Features};
use crate::knn::Neighbors;

/// The label-flip detector (see the module documentation).
pub struct LabelFlip;

static INFO: DetectorInfo = DetectorInfo {
    name: "label_flip",
    title: "label flip",
    finds: "labels their neighbours contradict",
    doing: "checking labels",
    role: Role::Primary,
    calibration: Calibration::Threshold,
};

impl Detector for LabelFlip {
    fn info(&self) -> &'static DetectorInfo {
        &INFO
    }
    fn run(&self, ctx: &ScanContext) -> Evidence {
        Evidence::scores(flag(ctx.features, ctx.votes))
    }
}

/// Flag when P(given label | neighbourhood) ≤ this.
pub const THRESHOLD: f64 = 0.06;
/// Rounds of label spreading.
const ITERATIONS: usize = 4;
/// Weight of the neighbours' smoothed estimate against their raw labels.
const ALPHA: f64 = 0.8;

/// The neighbourhood's vote on every sample's label (label spreading over
/// the neighbour graph): shared by the scan, since it is also where every
/// sample's suggested label comes from.
pub struct Votes {
    /// Most probable class per sample (may equal the given label).
    pub label: Vec<u32>,
    /// Its probability.
    pub confidence: Vec<f32>,
    /// Probability of the given label.
    pub p_given: Vec<f64>,
}

/// Spreads the neighbours' labels ([`ITERATIONS`] rounds) and reads off
/// each sample's most probable class and the probability of its label.
pub fn vote(f: &Features, nb: &Neighbors) -> Votes {
    let n = f.labels.len();
    let c = f.n_classes;
    let k = nb.k.max(1) as f64;
    let raw: Vec<f64> = {
        let mut r = vec![0.0; n * c];
        for i in 0..n {
            for &j in nb.of(i) {
                r[i * c + f.labels[j as usize] as usize] += 1.0 / k;
            }
        }
        r
    };
    let mut p = raw.clone();
    for _ in 0..ITERATIONS {
        let prev = p.clone();
        for i in 0..n {
            let row = &mut p[i * c..(i + 1) * c];
            row.iter_mut().for_each(|v| *v = 0.0);
            for &j in nb.of(i) {
                let j = j as usize;
                for (v, pv) in row.iter_mut().zip(&prev[j * c..(j + 1) * c]) {
                    *v += ALPHA * pv / k;
                }
            }
            for (v, rv) in row.iter_mut().zip(&raw[i * c..(i + 1) * c]) {
                *v += (1.0 - ALPHA) * rv;
            }
        }
    }
    let mut votes = Votes {
        label: vec![0; n],
        confidence: vec![0.0; n],
        p_given: vec![0.0; n],
    };
    for i in 0..n {
        let row = &p[i * c..(i + 1) * c];
        let (best, &bp) = row
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
            .unwrap_or((0, &0.0));
        votes.label[i] = best as u32;
        votes.confidence[i] = bp as f32;
        votes.p_given[i] = row[f.labels[i] as usize];
    }
    votes
}

/// Flags the samples whose label the vote puts at [`THRESHOLD`] or below
/// (and another class above it).
pub fn flag(f: &Features, votes: &Votes) -> DetectorScores {
    let n = f.labels.len();
    let mut scores = DetectorScores::new(INFO.name, n);
    for i in 0..n {
        let given = f.labels[i] as usize;
        let (best, bp, pg) = (
            votes.label[i] as usize,
            f64::from(votes.confidence[i]),
            votes.p_given[i],
        );
        let flag = pg <= THRESHOLD && best != given;
        scores.score[i] = if flag {
            calibrate(pg)
        } else {
            calibrate(pg).min(0.499)
        } as f32;
        if flag {
            scores.flagged[i] = true;
            scores.reasons[i] = Some(format!(
                "its neighbours say '{}' ({:.0}%), not '{}' ({:.0}%): label looks flipped",
                f.class_names[best],
                bp * 100.0,
                f.class_names[given],
                pg * 100.0
            ));
        }
    }
    scores
}

/// Maps P(given) to a 0..1 suspicion with 0.5 exactly at the threshold.
fn calibrate(pg: f64) -> f64 {
    if pg <= THRESHOLD {
        0.5 + 0.5 * (1.0 - pg / THRESHOLD)
    } else {
        0.5 * (1.0 - pg) / (1.0 - THRESHOLD)
    }
}
