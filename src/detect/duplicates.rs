//! Near-copies that carry a label their look-alikes contradict: a flood of
//! near-duplicates planted with a wrong label, or one mislabelled copy.
//!
//! Copies are found without a fixed distance: how close a sample's nearest
//! neighbour is, on a log scale, is compared with how close nearest
//! neighbours are in this same dataset (a robust normal fit), and pairs
//! closer than the dataset's own neighbours could plausibly be are copies
//! (Benjamini–Hochberg at the scan's false-flag budget). Identical decoded
//! pixels are copies outright. The search runs in the input view when there
//! are images (a copy looks like its original whatever the model thinks),
//! else in the embeddings.
//!
//! Which copies are wrong is never decided by a majority: a flood
//! outnumbers the correctly labelled original it copies. Where a group's
//! labels conflict and one of them is carried by fewer members than every
//! other, that one is the original's; otherwise (a tie, or one label) the
//! group's label is the one its look-alikes *outside* any copy group carry
//! — among its own labels when they conflict. Members with another label
//! are flagged and that label is suggested. (Decided by look-alikes alone,
//! a flood relabelled to a class its original looks like — coats copied as
//! shirts — won, and the original was flagged instead.)

use std::collections::HashMap;

use super::detector::{Calibration, Detector, DetectorInfo, Evidence, Role, ScanContext};
use super::input_view::InputView;
use super::{DetectorScores, Features};
use crate::dataset::images::ImageDigest;
use crate::knn::Neighbors;
use crate::stats::{RobustFit, benjamini_hochberg};

/// The duplicate detector (see the module documentation).
pub struct Duplicates;

static INFO: DetectorInfo = DetectorInfo {
    name: "duplicate",
    title: "duplicate",
    finds: "near-copies carrying a contradicted label",
    doing: "comparing images",
    role: Role::Primary,
    calibration: Calibration::FalseDiscoveryRate {
        flags: "near-copy",
        false_means: "not to be copies at all",
    },
};

impl Detector for Duplicates {
    fn info(&self) -> &'static DetectorInfo {
        &INFO
    }
    fn run(&self, ctx: &ScanContext) -> Evidence {
        Evidence::scores(run(
            ctx.features,
            ctx.digests,
            ctx.view,
            ctx.neighbours,
            ctx.options.fdr,
        ))
    }
}

/// Runs the detector. `digests` is empty and `view` None when the dataset
/// has no images; `nb` are the embedding neighbours.
pub fn run(
    f: &Features,
    digests: &[Result<ImageDigest, String>],
    view: Option<&InputView>,
    nb: &Neighbors,
    fdr: f64,
) -> DetectorScores {
    let n = f.labels.len();
    let mut uf = UnionFind::new(n);
    let mut by_hash: HashMap<[u8; 32], usize> = HashMap::new();
    for (i, d) in digests.iter().enumerate() {
        if let Ok(d) = d {
            match by_hash.get(&d.pixel_hash) {
                Some(&j) => uf.union(i, j),
                None => {
                    by_hash.insert(d.pixel_hash, i);
                }
            }
        }
    }
    let (space, valid): (&Neighbors, Vec<bool>) = match view {
        Some(v) => (&v.nb, v.valid.clone()),
        None => (nb, vec![true; n]),
    };
    if let Some(limit) = copy_distance(space, &valid, fdr) {
        for i in (0..n).filter(|&i| valid[i]) {
            for (&j, &d) in space.of(i).iter().zip(space.dist2_of(i)) {
                if d <= limit && valid[j as usize] {
                    uf.union(i, j as usize);
                }
            }
        }
    }
    // Only samples with a copy are gathered into groups: a map entry for
    // every sample was 100 MB at a million samples, the scan's peak.
    let roots: Vec<usize> = (0..n).map(|i| uf.find(i)).collect();
    let mut size = vec![0u32; n];
    for &r in &roots {
        size[r] += 1;
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, &r) in roots.iter().enumerate().filter(|&(_, &r)| size[r] > 1) {
        groups.entry(r).or_default().push(i);
    }
    let mut out = DetectorScores::new(INFO.name, n);
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort();
    let mut copied = vec![false; n];
    for &i in groups.iter().flatten() {
        copied[i] = true;
    }
    for members in groups {
        judge_group(f, space, &members, &copied, &mut out);
    }
    out
}

/// The squared distance below which two samples are copies. Each sample's
/// nearest-neighbour distance gets a p-value: the lower tail of a robust
/// normal fit of the dataset's log nearest-neighbour distances (identical
/// copies: 0). Benjamini–Hochberg at `fdr` gives a p-value threshold, and
/// the distance at that threshold under the fit is the bound (so a copy
/// joins its group even when it is not its partner's nearest neighbour).
/// None when no pair is closer than chance allows.
fn copy_distance(space: &Neighbors, valid: &[bool], fdr: f64) -> Option<f32> {
    if space.k == 0 {
        return None;
    }
    let d2: Vec<f64> = (0..valid.len())
        .map(|i| space.dist2_of(i)[0] as f64)
        .collect();
    let log_d: Vec<f64> = (0..valid.len())
        .map(|i| {
            if valid[i] && d2[i] > 0.0 && d2[i].is_finite() {
                0.5 * d2[i].ln()
            } else {
                f64::NAN
            }
        })
        .collect();
    let fit = RobustFit::fit(&log_d, 1e-6)?;
    let p: Vec<f64> = (0..valid.len())
        .map(|i| match (valid[i], d2[i]) {
            (false, _) => f64::NAN,
            (true, 0.0) => 0.0,
            _ => fit.p_low(log_d[i]),
        })
        .collect();
    let (_, threshold) = benjamini_hochberg(&p, fdr);
    if threshold <= 0.0 {
        return None;
    }
    let log_bound = fit.value_at_p_low(threshold);
    Some((2.0 * log_bound).exp() as f32)
}

/// The label carried by fewer of a group's members than every other label
/// it carries (`own`: members per class), if one is.
fn fewest(own: &[usize]) -> Option<usize> {
    let mut present: Vec<(usize, usize)> = (0..own.len())
        .filter(|&c| own[c] > 0)
        .map(|c| (own[c], c))
        .collect();
    present.sort_unstable();
    match present.as_slice() {
        [(a, c), (b, _), ..] if a < b => Some(*c),
        _ => None,
    }
}

/// Decides one group of copies. Where its labels conflict and one of them
/// is carried by fewer members than every other, that one is the group's
/// label: relabelling copies leaves the original's label in the group, and
/// a flood outnumbers the original it copies (session 20: over the 1,211
/// conflicting groups of 35 flood and mixed sets whose labels are not tied,
/// the fewest label was the original's in every one, where the
/// look-alikes' vote missed it in 71 — copies relabelled to a class the
/// original looks like, z4201's coats copied as shirts). Otherwise its
/// label is the one most of its members' neighbours outside any copy
/// group carry (copies are no independent
/// witnesses, and floods of other sources may share a wrong label; the
/// group's own labels break a tie or decide when it has no such
/// neighbours) — among the group's own labels when they conflict, since
/// one of them is the original's (session 19: a dress copied with a
/// sneaker label, whose look-alikes mostly say Shirt, had both copies
/// flagged; over 194 sets the flood family 0.901 → 0.911, 15 sets higher,
/// 3 lower, z2911 0.96 → 0.93 the most, where a copy's wrong label had
/// more look-alikes than the original's); members labelled otherwise are
/// flagged.
fn judge_group(
    f: &Features,
    space: &Neighbors,
    members: &[usize],
    copied: &[bool],
    out: &mut DetectorScores,
) {
    let mut outside = vec![0usize; f.n_classes];
    for &i in members {
        for &j in space.of(i) {
            if !copied[j as usize] {
                outside[f.labels[j as usize] as usize] += 1;
            }
        }
    }
    let mut own = vec![0usize; f.n_classes];
    for &i in members {
        own[f.labels[i] as usize] += 1;
    }
    let total_outside: usize = outside.iter().sum();
    let conflicting = own.iter().filter(|&&c| c > 0).count() > 1;
    // Copies of one image carrying different labels: one of those labels
    // is the original's (relabelling a copy leaves the original's label in
    // the group), so the right one is chosen among them. A flood
    // outnumbers the original it copies: where one label has fewer
    // members than every other, it is the original's.
    let by_count = fewest(&own).filter(|_| conflicting);
    let right = by_count.unwrap_or_else(|| {
        (0..f.n_classes)
            .filter(|&c| !conflicting || own[c] > 0)
            .max_by_key(|&c| (outside[c], own[c], std::cmp::Reverse(c)))
            .unwrap_or(0)
    });
    // A consistent group is judged wrong only when its look-alikes outside
    // carry another label more often than the group's own.
    for &i in members {
        let given = f.labels[i] as usize;
        if given == right || (!conflicting && outside[given] * 2 >= outside[right]) {
            continue;
        }
        let share = outside[right] as f64 / total_outside.max(1) as f64;
        out.flagged[i] = true;
        out.score[i] = 1.0;
        out.suggested.set(i, right as u32);
        let why = if by_count.is_some() {
            format!(
                "{} labelled '{}', fewer than any other label — the original's, which a flood of copies outnumbers;",
                own[right], f.class_names[right]
            )
        } else {
            format!(
                "their look-alikes outside the group are labelled '{}' ({:.0}%),",
                f.class_names[right],
                share * 100.0
            )
        };
        out.reasons.set(
            i,
            format!(
                "one of {} near-copies; {why} this one '{}'",
                members.len(),
                f.class_names[given]
            ),
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Matrix;

    /// Judges the group of the first `members` samples, labelled as the
    /// first of `labels` (of `classes` classes), each of whose six
    /// neighbours `of(i)` gives; the rest are look-alikes outside.
    fn judged(
        labels: Vec<u32>,
        classes: usize,
        members: usize,
        of: impl Fn(u32) -> Vec<u32>,
    ) -> DetectorScores {
        let n = labels.len();
        let f = Features {
            matrix: Matrix::new(n, 1, vec![0.0; n]).into(),
            labels,
            n_classes: classes,
            class_names: (0..classes).map(|c| format!("c{c}")).collect(),
            ids: (0..n).map(|i| i.to_string()).collect(),
        };
        let last = members as u32 - 1;
        let space = Neighbors {
            k: 6,
            idx: (0..n as u32).flat_map(|i| of(i.min(last))).collect(),
            dist2: vec![1.0; n * 6],
        };
        let mut copied = vec![false; n];
        copied[..members].fill(true);
        let mut out = DetectorScores::new(INFO.name, n);
        let group: Vec<usize> = (0..members).collect();
        judge_group(&f, &space, &group, &copied, &mut out);
        out
    }

    /// An original (sample 0, class 0) and its copy relabelled 1 (sample
    /// 1), beside four images of class 2 that both copies look like most
    /// and one of class 0.
    #[test]
    fn a_relabelled_copy_is_judged_among_the_group_s_own_labels() {
        // Both copies' neighbours: each other, the four 2s and the other 0.
        let out = judged(vec![0, 1, 2, 2, 2, 2, 0], 3, 2, |i| {
            [1 - i, 2, 3, 4, 5, 6].to_vec()
        });
        // Class 2 is no label of the group: the original's class 0, which
        // its look-alikes carry more than the copy's 1, is the group's.
        assert_eq!(out.flagged[..2], [false, true]);
        assert_eq!(out.suggested.get(1), Some(&0));
        let why = out.reason(1).unwrap();
        assert!(
            why.contains("look-alikes outside the group are labelled 'c0'"),
            "{why}"
        );
    }

    /// An original (sample 0, class 0) and three copies relabelled 1,
    /// whose look-alikes outside carry 1 more often than 0 (the original
    /// looks like class 1): the flood outnumbers its original, so the
    /// fewest label is the group's and the copies are flagged.
    #[test]
    fn a_flood_to_a_look_alike_class_is_told_by_its_numbers() {
        // Every member's neighbours: the other members, then two
        // look-alikes of class 1 and one of class 0 outside the group.
        let out = judged(vec![0, 1, 1, 1, 1, 1, 0], 2, 4, |i| {
            let mut v: Vec<u32> = (0..4).filter(|&j| j != i).collect();
            v.extend([4, 5, 6]);
            v
        });
        assert_eq!(out.flagged[..4], [false, true, true, true]);
        assert_eq!(out.suggested.get(2), Some(&0));
        let why = out.reason(2).unwrap();
        assert!(
            why.contains("1 labelled 'c0', fewer than any other label"),
            "{why}"
        );
        assert_eq!(fewest(&[1, 3]), Some(0));
        assert_eq!(fewest(&[2, 2]), None);
        assert_eq!(fewest(&[0, 4, 0]), None);
    }
}
