//! Exact and near-duplicate samples that carry different labels: the same
//! image cannot be two classes, so one of the copies is mislabelled (or was
//! planted). Copies are found three ways: identical decoded pixels, an equal
//! difference-hash with near-equal pixels, and embeddings that coincide.

use std::collections::HashMap;

use super::{DetectorScores, Features};
use crate::dataset::images::ImageDigest;
use crate::knn::Neighbors;

/// Mean absolute pixel difference (0..1 scale) below which two images with the
/// same difference-hash count as near-duplicates.
const PIXEL_TOLERANCE: f32 = 0.02;
/// Embeddings closer than this fraction of the median nearest-neighbour
/// distance count as duplicates.
const EMBED_FRACTION: f32 = 0.05;

/// Runs the detector. `digests` is empty when the dataset has no images.
pub fn run(
    f: &Features,
    digests: &[Result<ImageDigest, String>],
    nb: &Neighbors,
) -> DetectorScores {
    let n = f.labels.len();
    let mut uf = UnionFind::new(n);
    // Identical pixels, and equal dHash with near-equal pixels.
    let mut by_hash: HashMap<[u8; 32], usize> = HashMap::new();
    let mut by_dhash: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, d) in digests.iter().enumerate() {
        if let Ok(d) = d {
            if let Some(&j) = by_hash.get(&d.pixel_hash) {
                uf.union(i, j);
            } else {
                by_hash.insert(d.pixel_hash, i);
            }
            by_dhash.entry(d.dhash).or_default().push(i);
        }
    }
    for bucket in by_dhash.values().filter(|b| b.len() > 1 && b.len() <= 64) {
        for (a, &i) in bucket.iter().enumerate() {
            for &j in &bucket[a + 1..] {
                if let (Ok(x), Ok(y)) = (&digests[i], &digests[j]) {
                    let diff: f32 = x
                        .features
                        .iter()
                        .zip(&y.features)
                        .map(|(p, q)| (p - q).abs())
                        .sum::<f32>()
                        / x.features.len().max(1) as f32;
                    if diff < PIXEL_TOLERANCE {
                        uf.union(i, j);
                    }
                }
            }
        }
    }
    // Coinciding embeddings.
    if nb.k > 0 {
        let mut first: Vec<f32> = (0..n).map(|i| nb.dist2_of(i)[0]).collect();
        first.sort_by(f32::total_cmp);
        let med = first[n / 2];
        let limit = med * EMBED_FRACTION * EMBED_FRACTION;
        for i in 0..n {
            for (&j, &d) in nb.of(i).iter().zip(nb.dist2_of(i)) {
                if d <= limit {
                    uf.union(i, j as usize);
                }
            }
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..n {
        groups.entry(uf.find(i)).or_default().push(i);
    }
    let mut out = DetectorScores::new("duplicate", n);
    for members in groups.values().filter(|g| g.len() > 1) {
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for &i in members {
            *counts.entry(f.labels[i]).or_default() += 1;
        }
        if counts.len() < 2 {
            continue;
        }
        let top = counts.values().copied().max().unwrap_or(0);
        let majority: Vec<u32> = counts
            .iter()
            .filter(|(_, c)| **c == top)
            .map(|(l, _)| *l)
            .collect();
        let unique_majority = (majority.len() == 1).then(|| majority[0]);
        for &i in members {
            if unique_majority == Some(f.labels[i]) {
                continue;
            }
            let other = members
                .iter()
                .find(|&&j| f.labels[j] != f.labels[i])
                .copied()
                .unwrap_or(i);
            out.flagged[i] = true;
            out.score[i] = 1.0;
            out.reasons[i] = Some(format!(
                "duplicate of '{}' which is labelled '{}' ({} copies in all)",
                f.ids[other],
                f.class_names[f.labels[other] as usize],
                members.len()
            ));
        }
    }
    out
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind((0..n).collect())
    }
    fn find(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[ra.max(rb)] = ra.min(rb);
        }
    }
}
