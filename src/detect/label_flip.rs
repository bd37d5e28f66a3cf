//! Label-flip detection by neighbourhood label agreement.
//!
//! Each sample's label distribution is estimated from its k nearest
//! neighbours, then smoothed by label spreading (Zhou et al. 2004): the
//! neighbours' own estimates are mixed back in a few times, so a clean sample
//! in a confusable region (shirt among T-shirts) is not judged by one noisy
//! neighbourhood. A sample is flagged when the probability of its given label
//! falls to [`THRESHOLD`] or below; the most probable class is the suggestion.

use super::{DetectorScores, Features};
use crate::knn::Neighbors;

/// Flag when P(given label | neighbourhood) ≤ this.
pub const THRESHOLD: f64 = 0.06;
/// Rounds of label spreading.
const ITERATIONS: usize = 4;
/// Weight of the neighbours' smoothed estimate against their raw labels.
const ALPHA: f64 = 0.8;

/// Suggested label and its probability for each sample.
pub struct Suggestions {
    /// Most probable class per sample (may equal the given label).
    pub label: Vec<u32>,
    /// Its probability.
    pub confidence: Vec<f32>,
    /// Probability of the given label.
    pub p_given: Vec<f32>,
}

/// Runs the detector over precomputed neighbours.
pub fn run(f: &Features, nb: &Neighbors) -> (DetectorScores, Suggestions) {
    let n = f.labels.len();
    let c = f.n_classes;
    let mut scores = DetectorScores::new("label_flip", n);
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
    let mut sug = Suggestions {
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
        let given = f.labels[i] as usize;
        let pg = row[given];
        sug.label[i] = best as u32;
        sug.confidence[i] = bp as f32;
        sug.p_given[i] = pg as f32;
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
    (scores, sug)
}

/// Maps P(given) to a 0..1 suspicion with 0.5 exactly at the threshold.
fn calibrate(pg: f64) -> f64 {
    if pg <= THRESHOLD {
        0.5 + 0.5 * (1.0 - pg / THRESHOLD)
    } else {
        0.5 * (1.0 - pg) / (1.0 - THRESHOLD)
    }
}
