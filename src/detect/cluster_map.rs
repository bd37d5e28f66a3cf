//! The cluster map's data: for every class and each of its two activation
//! groups, which class its members look like (nearest class centre, measured
//! against the main groups). A backdoor cluster of class A built from images
//! of other classes stands out as a row whose mass sits off the diagonal.

use rayon::prelude::*;

use super::Report;

/// One (class, group) row of the map.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRow {
    /// Class index.
    pub class: u32,
    /// 0 = main group, 1 = minority group.
    pub cluster: u8,
    /// Members of the row.
    pub members: Vec<usize>,
    /// How many of them the scan flagged.
    pub flagged: usize,
    /// Share of members whose nearest class centre is each class, for the
    /// classes that have any (class, share), by class: sparse, so a dataset
    /// of thousands of classes does not need classes² cells.
    pub looks_like: Vec<(u32, f32)>,
    /// Whether the split was judged real (the minority is flagged as a cluster).
    pub split: bool,
}

impl ClusterRow {
    /// Share of this row's members whose nearest class centre is `class`.
    pub fn share_looking_like(&self, class: u32) -> f32 {
        self.looks_like
            .binary_search_by_key(&class, |e| e.0)
            .map_or(0.0, |at| self.looks_like[at].1)
    }
}

/// Rows for every non-empty (class, group).
pub fn build(r: &Report) -> Vec<ClusterRow> {
    build_from(&ClusterInput {
        features: &r.features,
        labels: &r.labels,
        classes: r.class_names.len(),
        cluster_of: &r.cluster_of,
        clusters: &r.clusters,
        flagged: &r.flagged,
    })
}

/// What the cluster map is made from: the parts of a report it reads, so a
/// report still in the making (the workbench's stage-by-stage view) can
/// have its map too.
pub struct ClusterInput<'a> {
    /// The scan's features.
    pub features: &'a crate::linalg::Matrix,
    /// Given labels.
    pub labels: &'a [u32],
    /// Number of classes.
    pub classes: usize,
    /// Activation group of each sample.
    pub cluster_of: &'a [u8],
    /// Per-class split summaries.
    pub clusters: &'a [super::ClassClusters],
    /// Combined flags.
    pub flagged: &'a [bool],
}

/// Sets each row's count of flagged members from `flagged` (when more
/// detectors have finished, without recomputing the map).
pub fn recount(rows: &mut [ClusterRow], flagged: &[bool]) {
    for row in rows {
        row.flagged = row
            .members
            .iter()
            .filter(|&&i| flagged.get(i).copied().unwrap_or(false))
            .count();
    }
}

/// [`build`] from its parts.
pub fn build_from(r: &ClusterInput) -> Vec<ClusterRow> {
    let f = r.features;
    let (n, d, c) = (f.rows, f.cols, r.classes);
    // Centres of each class's main group.
    let mut centre = vec![0f64; c * d];
    let mut count = vec![0usize; c];
    for i in 0..n {
        if r.cluster_of[i] == 0 {
            let k = r.labels[i] as usize;
            count[k] += 1;
            for (a, v) in centre[k * d..(k + 1) * d].iter_mut().zip(f.row(i)) {
                *a += *v as f64;
            }
        }
    }
    for k in 0..c {
        let m = count[k].max(1) as f64;
        centre[k * d..(k + 1) * d].iter_mut().for_each(|v| *v /= m);
    }
    let nearest = |i: usize| {
        (0..c)
            .filter(|&k| count[k] > 0)
            .map(|k| {
                let dist: f64 = f
                    .row(i)
                    .iter()
                    .zip(&centre[k * d..(k + 1) * d])
                    .map(|(a, b)| (*a as f64 - b).powi(2))
                    .sum();
                (dist, k)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map_or(0, |x| x.1)
    };
    let mut groups: Vec<[Vec<usize>; 2]> = vec![[Vec::new(), Vec::new()]; c];
    for i in 0..n {
        groups[r.labels[i] as usize][usize::from(r.cluster_of[i] > 0)].push(i);
    }
    let mut rows = Vec::new();
    for (k, pair) in groups.into_iter().enumerate() {
        let k = k as u32;
        for (g, members) in pair.into_iter().enumerate() {
            if members.is_empty() {
                continue;
            }
            let mut nearest_of: Vec<u32> = members.par_iter().map(|&i| nearest(i) as u32).collect();
            nearest_of.sort_unstable();
            let mut looks: Vec<(u32, f32)> = Vec::new();
            for m in nearest_of {
                match looks.last_mut() {
                    Some(e) if e.0 == m => e.1 += 1.0 / members.len() as f32,
                    _ => looks.push((m, 1.0 / members.len() as f32)),
                }
            }
            let split = r.clusters.iter().any(|x| x.class == k && x.flagged);
            rows.push(ClusterRow {
                class: k,
                cluster: g as u8,
                flagged: members.iter().filter(|&&i| r.flagged[i]).count(),
                members,
                looks_like: looks,
                split,
            });
        }
    }
    rows
}
