//! The cluster map's data: for every class, its main activation group, its
//! minority group and the samples carrying a found trigger, and which class
//! each group's members look like (nearest class centre, measured against
//! the main groups). A backdoor cluster of class A built from images of
//! other classes stands out as a row whose mass sits off the diagonal.
//!
//! Which row is suspect comes from the scan's evidence — most of its members
//! flagged — not from the activation split alone: a natural sub-style may
//! split a class while the backdoor's carriers, found by the trigger search,
//! sit inside the main group; they get a row of their own.

use rayon::prelude::*;

use super::Report;

/// One (class, group) row of the map.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRow {
    /// Class index.
    pub class: u32,
    /// [`MAIN`], [`MINORITY`] or [`CARRIERS`].
    pub cluster: u8,
    /// Members of the row.
    pub members: Vec<usize>,
    /// How many of them the scan flagged.
    pub flagged: usize,
    /// Share of members whose nearest class centre is each class, for the
    /// classes that have any (class, share), by class: sparse, so a dataset
    /// of thousands of classes does not need classes² cells.
    pub looks_like: Vec<(u32, f32)>,
    /// Whether the class's activation split was judged real (its
    /// minority flagged as a cluster).
    pub split: bool,
    /// Whether most of the row's members are flagged: the scan's evidence
    /// says this group is poison, whichever detector found it.
    pub suspect: bool,
}

/// Row of a class's main activation group.
pub const MAIN: u8 = 0;
/// Row of a class's minority activation group.
pub const MINORITY: u8 = 1;
/// Row of a class's samples carrying a trigger the scan found.
pub const CARRIERS: u8 = 2;

/// The row a sample belongs to within its class: trigger carriers first
/// (their own row, wherever the activation split put them), else its
/// activation group.
pub fn row_of(cluster_of: &[u8], trigger_of: &[Option<usize>], i: usize) -> u8 {
    if trigger_of.get(i).is_some_and(Option::is_some) {
        CARRIERS
    } else if cluster_of.get(i).is_some_and(|&g| g > 0) {
        MINORITY
    } else {
        MAIN
    }
}

/// Whether sample `i` of `r` is in the map's row `(class, cluster)`: what
/// clicking a row filters the queue and the view to.
pub fn in_row(r: &Report, i: usize, (class, cluster): (u32, u8)) -> bool {
    r.labels[i] == class && row_of(&r.cluster_of, &r.trigger_of, i) == cluster
}

/// What a row is called, for people.
pub fn row_name(cluster: u8) -> &'static str {
    match cluster {
        MAIN => "main",
        MINORITY => "minority",
        _ => "trigger",
    }
}

/// Whether a row with `flagged` of `members` flagged counts as suspect.
fn is_suspect(flagged: usize, members: usize) -> bool {
    members > 0 && 2 * flagged > members
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
        trigger_of: &r.trigger_of,
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
    /// Trigger each sample carries (empty before the trigger search).
    pub trigger_of: &'a [Option<usize>],
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
        row.suspect = is_suspect(row.flagged, row.members.len());
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
    let mut groups: Vec<[Vec<usize>; 3]> = vec![[Vec::new(), Vec::new(), Vec::new()]; c];
    for i in 0..n {
        groups[r.labels[i] as usize][usize::from(row_of(r.cluster_of, r.trigger_of, i))].push(i);
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
            let flagged = members.iter().filter(|&&i| r.flagged[i]).count();
            rows.push(ClusterRow {
                class: k,
                cluster: g as u8,
                flagged,
                suspect: is_suspect(flagged, members.len()),
                members,
                looks_like: looks,
                split,
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Matrix;

    /// Class 0: samples 0..6, a natural minority 4..6 (split judged real by
    /// the activation test, nothing flagged there) and three trigger
    /// carriers 1..4 inside the main group, flagged; class 1: samples 6..8.
    #[test]
    fn trigger_carriers_get_their_own_suspect_row_and_a_natural_split_does_not_stand_out() {
        let features = Matrix::new(8, 1, vec![0.0, 5.0, 5.0, 5.0, 1.0, 1.0, 5.0, 5.0]);
        let labels = [0, 0, 0, 0, 0, 0, 1, 1];
        let cluster_of = [0, 0, 0, 0, 1, 1, 0, 0];
        let trigger_of = [None, Some(0), Some(0), Some(0), None, None, None, None];
        let flagged = [false, true, true, true, false, false, false, false];
        let clusters = [crate::detect::ClassClusters {
            class: 0,
            size: 6,
            minority_size: 2,
            gain: 1.0,
            separation: 5.0,
            conductance: 0.01,
            flagged: true,
            lookalikes: f64::NAN,
            lookalikes_expected: f64::NAN,
        }];
        let rows = build_from(&ClusterInput {
            features: &features,
            labels: &labels,
            classes: 2,
            cluster_of: &cluster_of,
            trigger_of: &trigger_of,
            clusters: &clusters,
            flagged: &flagged,
        });
        let row = |c: u32, g: u8| {
            rows.iter()
                .find(|r| r.class == c && r.cluster == g)
                .unwrap()
        };
        let carriers = row(0, CARRIERS);
        assert_eq!(carriers.members, vec![1, 2, 3]);
        assert!(carriers.suspect);
        // They look like class 1 (nearest class centre, at 5).
        assert_eq!(carriers.share_looking_like(1), 1.0);
        assert!(!row(0, MINORITY).suspect, "a natural split is not suspect");
        assert_eq!(row(0, MAIN).members, vec![0]);
        assert!(!row(1, MAIN).suspect);
        assert_eq!(rows.len(), 4);
        // More detectors finishing change what is flagged: recount follows.
        let mut rows = rows;
        recount(&mut rows, &[false; 8]);
        assert!(rows.iter().all(|r| !r.suspect && r.flagged == 0));
    }
}
