//! Activation clustering (Chen et al. 2018), with a test that the split is real.
//!
//! ART splits every class in two and calls the smaller half poison, which flags
//! ~40% of a clean dataset. Here each class is reduced by PCA, a one- and a
//! two-component full-covariance Gaussian model are fitted, and the class is
//! only called split when the evidence says two groups: two components explain
//! it much better than one (a log-likelihood gain of [`SPLIT_GAIN`] nats per
//! sample: natural sub-styles of a Fashion-MNIST class gain 1–2.7, a backdoor
//! cluster 3.5–4.5, also when only 5% of the class is poisoned), or the groups
//! are far apart ([`SPLIT_SEPARATION`]), or the class's neighbour graph falls
//! apart into two pieces ([`SPLIT_CONDUCTANCE`], which needs no Gaussian shape).

use linfa::DatasetBase;
use linfa::traits::{Fit, Predict};
use linfa_clustering::KMeans;
use ndarray::Array2;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;
use rayon::prelude::*;

use super::context::ScanContext;
use super::gmm::{self, CovKind};
use super::graph;
use super::registry::{Calibration, ClassSplit, Detail, Detector, DetectorInfo, Evidence, Role};
use super::{ClassClusters, DetectorScores, Features};
use crate::knn::knn;
use crate::linalg::{Matrix, Pca};

/// Log-likelihood gain (nats/sample) above which a class counts as two groups.
pub const SPLIT_GAIN: f64 = 3.0;
/// Separation (pooled standard deviations between the groups' means) above
/// which the two groups barely overlap (< 0.3%): a split that is real however
/// few dimensions it lives in. The gain grows only with the log of the
/// separation, so a far-apart but low-dimensional cluster needs this test.
pub const SPLIT_SEPARATION: f64 = 6.0;
/// Conductance of the class's neighbour graph at or below which the class is
/// two groups that barely touch (measured on the Fashion-MNIST devsets:
/// natural classes 0.033–0.13, backdoor clusters 0.006–0.011).
pub const SPLIT_CONDUCTANCE: f64 = 0.02;
/// PCA dimensions per class (as in the paper and ART).
pub const DIMS: usize = 10;
/// Classes smaller than this are not clustered (too few samples for 10-d Gaussians).
pub const MIN_CLASS: usize = 40;
/// Within-class neighbours used to smooth cluster membership.
const SMOOTH_K: usize = 15;

/// The activation-clustering detector (see the module documentation).
pub struct ActivationCluster;

static INFO: DetectorInfo = DetectorInfo {
    name: "activation_cluster",
    title: "activation cluster",
    finds: "a separate group inside a class (backdoor, flips into it)",
    doing: "clustering classes",
    role: Role::Primary,
    calibration: Calibration::Threshold,
};

impl Detector for ActivationCluster {
    fn info(&self) -> &'static DetectorInfo {
        &INFO
    }
    fn run(&self, ctx: &ScanContext) -> Evidence {
        let f = ctx.features;
        let own_share = ctx
            .view
            .map(|v| own_label_share(&f.labels, &v.nb, &v.valid));
        let (scores, clusters, cluster_of) = run(f, ctx.options.seed, own_share.as_deref());
        Evidence {
            scores: scores.into(),
            detail: Detail::ClassSplit(ClassSplit {
                clusters,
                cluster_of,
            }),
        }
    }
}

/// Per-class result before it is spread over samples.
struct ClassResult {
    members: Vec<usize>,
    posterior: Vec<f64>,
    info: ClassClusters,
}

/// Runs the detector; returns per-sample scores and the per-class cluster
/// summary. `own_share` is, per sample, the share of its input-view
/// neighbours carrying its label ([`own_label_share`]); with it, the
/// suspect group of a split is the one that looks least like its class in
/// input space, whatever its size. Without it (no images), the smaller group.
pub fn run(
    f: &Features,
    seed: u64,
    own_share: Option<&[f64]>,
) -> (DetectorScores, Vec<ClassClusters>, Vec<u8>) {
    let n = f.labels.len();
    let results: Vec<ClassResult> = (0..f.n_classes)
        .into_par_iter()
        .map(|c| cluster_class(f, c as u32, seed, own_share))
        .collect();
    let mut scores = DetectorScores::new(INFO.name, n);
    let mut cluster_of = vec![0u8; n];
    let mut infos = Vec::with_capacity(results.len());
    for r in results {
        let strength = (r.info.gain / SPLIT_GAIN)
            .max(r.info.separation / SPLIT_SEPARATION)
            .max(SPLIT_CONDUCTANCE / r.info.conductance.max(1e-9))
            .clamp(0.0, 1.0);
        for (&i, &q) in r.members.iter().zip(&r.posterior) {
            cluster_of[i] = u8::from(q > 0.5);
            if r.info.flagged {
                scores.score[i] = q as f32;
                if q > 0.5 {
                    scores.flagged[i] = true;
                    scores.reasons[i] = Some(format!(
                        "in a distinct cluster of {} of {} '{}' samples ({}): a backdoor, or labels flipped into this class",
                        r.info.minority_size,
                        r.info.size,
                        f.class_names[r.info.class as usize],
                        split_evidence(&r.info)
                    ));
                }
            } else {
                scores.score[i] = (q * strength * 0.499) as f32;
            }
        }
        infos.push(r.info);
    }
    (scores, infos, cluster_of)
}

/// Per sample, the share of its neighbours in `nb` (the input view) that
/// carry its label; NaN where the sample is not `valid`.
pub fn own_label_share(labels: &[u32], nb: &crate::knn::Neighbors, valid: &[bool]) -> Vec<f64> {
    (0..labels.len())
        .map(|i| {
            if !valid[i] || nb.k == 0 {
                return f64::NAN;
            }
            let voters: Vec<u32> = nb
                .of(i)
                .iter()
                .copied()
                .filter(|&j| valid[j as usize])
                .collect();
            let same = voters
                .iter()
                .filter(|&&j| labels[j as usize] == labels[i])
                .count();
            same as f64 / voters.len().max(1) as f64
        })
        .collect()
}

/// Mean of `own` over the members, weighted by `w` (NaN members skipped).
fn weighted_mean(own: &[f64], members: &[usize], w: impl Fn(usize) -> f64) -> f64 {
    let (mut s, mut t) = (0.0, 0.0);
    for (k, &i) in members.iter().enumerate() {
        if own[i].is_finite() {
            s += w(k) * own[i];
            t += w(k);
        }
    }
    if t > 0.0 { s / t } else { f64::NAN }
}

fn cluster_class(f: &Features, class: u32, seed: u64, own_share: Option<&[f64]>) -> ClassResult {
    let members: Vec<usize> = (0..f.labels.len())
        .filter(|&i| f.labels[i] == class)
        .collect();
    if members.len() <= FIT_LIMIT {
        return split_members(f, class, members, seed, own_share).0;
    }
    // A large class is split on a random sample of its members, and every
    // member is then assigned by the two groups' model (fit on a sample,
    // assign all: no step grows faster than the class).
    let size = members.len();
    let fit: Vec<usize> = crate::knn::sample_rows(size, FIT_LIMIT)
        .into_iter()
        .map(|k| members[k])
        .collect();
    let (mut result, Some(place)) = split_members(f, class, fit, seed, own_share) else {
        unreachable!("a sample of FIT_LIMIT members is never below MIN_CLASS")
    };
    let z_all = project(&f.matrix.select_rows(&members), &place.pca, place.scale);
    let resp: Vec<Vec<f64>> = result.posterior.iter().map(|&q| vec![q, 1.0 - q]).collect();
    let q: Vec<f64> = gmm::extend(&place.z, &resp, CovKind::Diagonal, &z_all)
        .iter()
        .map(|r| r[0])
        .collect();
    result.info.size = size;
    result.info.minority_size = q.iter().filter(|&&v| v > 0.5).count();
    result.info.flagged &= result.info.minority_size >= 5 && size - result.info.minority_size >= 5;
    result.posterior = q;
    result.members = members;
    result
}

/// Classes above this many samples are split on a random sample of this
/// size (a split is as visible in 20,000 members as in a million).
pub const FIT_LIMIT: usize = 20_000;

/// The class's PCA coordinates, scaled by the first component's spread.
fn project(x: &Matrix, pca: &Pca, scale: f64) -> Vec<Vec<f64>> {
    let mut z = pca.transform(x);
    z.iter_mut().flatten().for_each(|v| *v /= scale);
    z
}

/// Where a split was made: the members' PCA coordinates, the PCA and its
/// scale, so that other members can be placed in the same space.
struct Placement {
    z: Vec<Vec<f64>>,
    pca: Pca,
    scale: f64,
}

/// Splits `members` of `class` (see the module docs); also returns where
/// (None for a class too small to split).
fn split_members(
    f: &Features,
    class: u32,
    members: Vec<usize>,
    seed: u64,
    own_share: Option<&[f64]>,
) -> (ClassResult, Option<Placement>) {
    let size = members.len();
    let mut info = ClassClusters {
        class,
        size,
        minority_size: 0,
        gain: 0.0,
        separation: 0.0,
        conductance: 1.0,
        flagged: false,
    };
    if size < MIN_CLASS {
        let result = ClassResult {
            posterior: vec![0.0; size],
            members,
            info,
        };
        return (result, None);
    }
    let x = f.matrix.select_rows(&members);
    let dims = DIMS.min(size / 4).min(x.cols).max(1);
    let pca = Pca::fit(&x, dims);
    let scale = pca.variances[0].sqrt().max(1e-12);
    let z = project(&x, &pca, scale);

    let assign = kmeans2(&z, seed.wrapping_add(class as u64));
    let init: Vec<Vec<f64>> = assign
        .iter()
        .map(|&a| {
            if a == 0 {
                vec![0.9, 0.1]
            } else {
                vec![0.1, 0.9]
            }
        })
        .collect();
    let full2 = gmm::fit(&z, init, CovKind::Full, 200);
    let full1 = gmm::fit(&z, vec![vec![1.0]; size], CovKind::Full, 2);
    let gain = full2.mean_log_likelihood - full1.mean_log_likelihood;
    let small = if full2.weights[0] <= full2.weights[1] {
        0
    } else {
        1
    };
    // Diagonal model started from the full model's split: better membership
    // when the cluster differs in a few units.
    let init_diag: Vec<Vec<f64>> = full2
        .resp
        .iter()
        .map(|r| vec![r[small].clamp(0.01, 0.99), 1.0 - r[small].clamp(0.01, 0.99)])
        .collect();
    let diag = gmm::fit(&z, init_diag, CovKind::Diagonal, 200);
    let mut q: Vec<f64> = diag.resp.iter().map(|r| r[0]).collect();
    let nb = knn(&normalized(&x), SMOOTH_K.min(size - 1));
    let cut = graph::best_cut(&nb, size, (size / 50).max(5));
    let mixture_split = gain >= SPLIT_GAIN || separation(&z, &q) >= SPLIT_SEPARATION;
    if !mixture_split && cut.conductance <= SPLIT_CONDUCTANCE {
        // Only the graph sees the split: its cut gives the members.
        q = cut
            .smaller
            .iter()
            .map(|&s| if s { 0.95 } else { 0.05 })
            .collect();
    }
    // Smooth membership over within-class neighbours (cosine): a sample whose
    // neighbours sit in the cluster belongs to it.
    for _ in 0..3 {
        let prev = q.clone();
        for (i, qi) in q.iter_mut().enumerate() {
            let m: f64 =
                nb.of(i).iter().map(|&j| prev[j as usize]).sum::<f64>() / nb.k.max(1) as f64;
            *qi = 0.5 * prev[i] + 0.5 * m;
        }
    }
    let mut minority = q.iter().filter(|&&v| v > 0.5).count();
    // The suspect group: the one whose members look least like their class
    // in input space (poison keeps its source class's look), else the
    // smaller one.
    let suspect_is_other = match own_share {
        Some(own) => {
            let in_q = weighted_mean(own, &members, |k| q[k]);
            let out_q = weighted_mean(own, &members, |k| 1.0 - q[k]);
            if in_q.is_finite() && out_q.is_finite() {
                out_q < in_q
            } else {
                minority * 2 > size
            }
        }
        None => minority * 2 > size,
    };
    if suspect_is_other {
        q.iter_mut().for_each(|v| *v = 1.0 - *v);
        minority = size - minority;
    }
    info.gain = gain;
    info.minority_size = minority;
    info.separation = separation(&z, &q);
    info.conductance = cut.conductance;
    info.flagged = (gain >= SPLIT_GAIN
        || info.separation >= SPLIT_SEPARATION
        || cut.conductance <= SPLIT_CONDUCTANCE)
        && minority >= 5
        && size - minority >= 5;
    let result = ClassResult {
        posterior: q,
        members,
        info,
    };
    (result, Some(Placement { z, pca, scale }))
}

/// The statistics that made the split count as real, in words.
fn split_evidence(info: &ClassClusters) -> String {
    let mut why = Vec::new();
    if info.gain >= SPLIT_GAIN {
        why.push(format!(
            "two groups fit {:.1} nats/sample better than one",
            info.gain
        ));
    }
    if info.separation >= SPLIT_SEPARATION {
        why.push(format!("groups {:.1} SD apart", info.separation));
    }
    if info.conductance <= SPLIT_CONDUCTANCE {
        why.push(format!(
            "neighbour graph conductance {:.3}",
            info.conductance
        ));
    }
    why.join(", ")
}

/// Distance between the two groups' means in units of their pooled spread
/// along that direction (reported to users; not used to decide).
fn separation(z: &[Vec<f64>], q: &[f64]) -> f64 {
    let d = z.first().map_or(0, Vec::len);
    let (mut m1, mut m0, mut w1, mut w0) = (vec![0.0; d], vec![0.0; d], 0.0, 0.0);
    for (x, &p) in z.iter().zip(q) {
        for j in 0..d {
            m1[j] += p * x[j];
            m0[j] += (1.0 - p) * x[j];
        }
        w1 += p;
        w0 += 1.0 - p;
    }
    if w1 < 1.0 || w0 < 1.0 {
        return 0.0;
    }
    m1.iter_mut().for_each(|v| *v /= w1);
    m0.iter_mut().for_each(|v| *v /= w0);
    let dir: Vec<f64> = m1.iter().zip(&m0).map(|(a, b)| a - b).collect();
    let norm = dir.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
    let proj: Vec<f64> = z
        .iter()
        .map(|x| x.iter().zip(&dir).map(|(a, b)| a * b).sum::<f64>() / norm)
        .collect();
    let (mut v1, mut v0) = (0.0, 0.0);
    let c1: f64 = m1.iter().zip(&dir).map(|(a, b)| a * b).sum::<f64>() / norm;
    let c0: f64 = m0.iter().zip(&dir).map(|(a, b)| a * b).sum::<f64>() / norm;
    for (p, &w) in proj.iter().zip(q) {
        v1 += w * (p - c1).powi(2);
        v0 += (1.0 - w) * (p - c0).powi(2);
    }
    (c1 - c0).abs() / ((v1 / w1 + v0 / w0) / 2.0).sqrt().max(1e-12)
}

/// 2-means with linfa (k-means++ start, several runs, seeded).
fn kmeans2(z: &[Vec<f64>], seed: u64) -> Vec<usize> {
    let d = z[0].len();
    let arr =
        Array2::from_shape_vec((z.len(), d), z.iter().flatten().copied().collect()).expect("shape");
    let data = DatasetBase::from(arr.clone());
    let rng = Xoshiro256Plus::seed_from_u64(seed);
    match KMeans::params_with_rng(2, rng)
        .n_runs(5)
        .tolerance(1e-6)
        .fit(&data)
    {
        Ok(model) => model.predict(&arr).to_vec(),
        // Degenerate data (e.g. all samples identical): one group.
        Err(_) => vec![0; z.len()],
    }
}

fn normalized(x: &Matrix) -> Matrix {
    let mut m = x.clone();
    for r in m.data.chunks_mut(x.cols.max(1)) {
        let n = r.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        r.iter_mut().for_each(|v| *v /= n);
    }
    m
}
