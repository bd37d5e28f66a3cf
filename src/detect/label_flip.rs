//! Label-flip detection by neighbourhood label agreement.
//!
//! Each sample's label distribution is estimated from its k nearest
//! neighbours, then smoothed by label spreading (Zhou et al. 2004): the
//! neighbours' own estimates are mixed back in a few times, so a clean sample
//! in a confusable region (shirt among T-shirts) is not judged by one noisy
//! neighbourhood. A sample is flagged when the probability of its given label
//! falls to [`THRESHOLD`] or below; the most probable class is the suggestion.
//!
//! A model-independent second opinion can withhold a flag: when the input
//! view (what the image looks like, [`super::input_view`]) gives the label
//! at least [`LOOKS_NATIVE`] of its own smoothed vote, the sample looks like
//! its class and the model's neighbourhood is the one confused (weakly
//! trained models put clean samples of look-alike classes among each other).
//!
//! Labels flipped in bulk shield each other from that per-sample check
//! (a quarter of a flipped bag's neighbours carry its wrong label too);
//! with images, [`flip_groups`] finds them as a group, and the check flags
//! its members, suggesting the class they look like.

use super::detector::{Calibration, Detector, DetectorInfo, Evidence, Role, ScanContext};
use super::flip_groups::{self, FlipGroup};
use super::votes::{Votes, vote};
use super::{DetectorScores, Features};

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
        let looks = ctx
            .view
            .map(|v| (vote(ctx.features, &v.nb), v.valid.as_slice()));
        let looks = looks.as_ref().map(|(votes, valid)| Looks { votes, valid });
        let mut scores = flag(ctx.features, ctx.votes, looks);
        if let Some(view) = ctx.view {
            let groups =
                flip_groups::find(&ctx.features.labels, view, ctx.neighbours, ctx.options.fdr);
            flag_groups(
                &mut scores,
                &groups,
                &ctx.features.class_names,
                ctx.options.fdr,
            );
        }
        Evidence::scores(scores)
    }
}

/// Flags the members of labels flipped in bulk ([`flip_groups`]) that the
/// per-sample check left, suggesting the class they look like; the
/// suspicion grows from 0.5 at the false-flag budget `fdr` to 1 as the
/// group's one-way count becomes certain.
fn flag_groups(scores: &mut DetectorScores, groups: &[FlipGroup], names: &[String], fdr: f64) {
    for g in groups {
        let strength = 0.5 + 0.5 * (1.0 - g.p_value / fdr).clamp(0.0, 1.0);
        for &i in &g.members {
            if scores.flagged[i] {
                continue;
            }
            scores.flagged[i] = true;
            scores.score[i] = strength as f32;
            scores.suggested.set(i, g.looks);
            scores.reasons.set(
                i,
                format!(
                    "one of {} images labelled '{}' that look like '{}' in pixel space, where the two classes otherwise stay apart ({:.1}% of their look-alikes look like the other class, both ways added), spread like a random sample of '{}' ({:.0}% chance to lie nearer the '{}' images than a '{}' image does, 50% for a random sample), {} the other way, and the model itself places {} of them among '{}' images, {} among '{}': labels flipped from '{}' in bulk",
                    g.members.len(),
                    names[g.given as usize],
                    names[g.looks as usize],
                    100.0 * g.touching,
                    names[g.looks as usize],
                    100.0 * g.nearer,
                    names[g.given as usize],
                    names[g.looks as usize],
                    g.the_other_way,
                    g.model_sides.0,
                    names[g.looks as usize],
                    g.model_sides.1,
                    names[g.given as usize],
                    names[g.looks as usize]
                ),
            );
        }
    }
}

/// Flag when P(given label | neighbourhood) ≤ this.
pub const THRESHOLD: f64 = 0.06;
/// A flag is withheld when the input view's smoothed vote gives the label
/// at least this share. Measured over 77 sets (devsets, devzoo, sample,
/// draws 1000–1411): 115 of the label check's 1,134 false flags withheld
/// for 1 of its 1,258 true ones (0.15: 147 for 3; 0.3: 86 for 0); one
/// set's F1 fell (z110, 0.79 → 0.78: that true flag), 19 rose.
pub const LOOKS_NATIVE: f64 = 0.2;
/// The input view's vote on every sample's label, and which samples it
/// describes (an unreadable image has no look to judge).
#[derive(Clone, Copy)]
pub struct Looks<'a> {
    /// Label spreading over the input view's neighbours.
    pub votes: &'a Votes,
    /// Whether the sample's image was read.
    pub valid: &'a [bool],
}

impl Looks<'_> {
    /// Whether sample `i` looks like its label in the input view.
    fn native(&self, i: usize) -> bool {
        self.valid[i] && self.votes.p_given[i] >= LOOKS_NATIVE
    }
}

/// Flags the samples whose label the vote puts at [`THRESHOLD`] or below
/// (and another class above it), unless they look like their label in the
/// input view (`looks`, when images were read).
pub fn flag(f: &Features, votes: &Votes, looks: Option<Looks>) -> DetectorScores {
    let n = f.labels.len();
    let mut scores = DetectorScores::new(INFO.name, n);
    for i in 0..n {
        let given = f.labels[i] as usize;
        let (best, bp, pg) = (
            votes.label[i] as usize,
            f64::from(votes.confidence[i]),
            votes.p_given[i],
        );
        let flag = pg <= THRESHOLD && best != given && !looks.is_some_and(|l| l.native(i));
        scores.score[i] = if flag {
            calibrate(pg)
        } else {
            calibrate(pg).min(0.499)
        } as f32;
        if flag {
            scores.flagged[i] = true;
            scores.reasons.set(
                i,
                format!(
                    "its neighbours say '{}' ({:.0}%), not '{}' ({:.0}%): label looks flipped",
                    f.class_names[best],
                    bp * 100.0,
                    f.class_names[given],
                    pg * 100.0
                ),
            );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Matrix;

    /// Four samples of three classes (labels 0, 1, 2, 0); only the labels
    /// matter to the flags.
    fn features() -> Features {
        Features {
            matrix: Matrix::new(4, 1, vec![0.0; 4]).into(),
            labels: vec![0, 1, 2, 0],
            n_classes: 3,
            class_names: (0..3).map(|c| format!("c{c}")).collect(),
            ids: (0..4).map(|i| i.to_string()).collect(),
        }
    }

    /// Votes that put every sample's label at `p` (another class above).
    fn votes(labels: &[u32], p: &[f64]) -> Votes {
        Votes {
            label: labels.iter().map(|&l| (l + 1) % 3).collect(),
            confidence: p.iter().map(|&p| (1.0 - p) as f32).collect(),
            p_given: p.to_vec(),
        }
    }

    #[test]
    fn a_sample_that_looks_like_its_label_is_not_flagged() {
        let f = features();
        // The model's neighbours doubt every label (3%).
        let model = votes(&f.labels, &[0.03; 4]);
        // The input view: 0 looks like its label, 1 does not, 2 just
        // reaches the bar, 3's image was unreadable.
        let view = votes(&f.labels, &[0.6, 0.05, LOOKS_NATIVE, 0.9]);
        let valid = [true, true, true, false];
        let looks = Looks {
            votes: &view,
            valid: &valid,
        };
        let s = flag(&f, &model, Some(looks));
        assert_eq!(s.flagged, vec![false, true, false, true]);
        assert!(s.reason(1).is_some_and(|r| r.contains("flipped")));
        // Without images every doubted label is flagged.
        assert_eq!(flag(&f, &model, None).flagged, vec![true; 4]);
    }

    #[test]
    fn a_flipped_group_flags_its_members_and_suggests_their_look() {
        let f = features();
        let mut s = flag(&f, &votes(&f.labels, &[0.9; 4]), None);
        s.flagged[3] = true;
        let group = FlipGroup {
            given: 0,
            looks: 2,
            members: vec![0, 3],
            nearer: 0.5,
            touching: 0.0,
            the_other_way: 0,
            p_value: 0.001,
            model_sides: (9, 1),
        };
        flag_groups(&mut s, &[group], &f.class_names, 0.05);
        assert_eq!(s.flagged, vec![true, false, false, true]);
        assert_eq!(s.suggestion(0), Some(2));
        assert!(
            s.reason(0).is_some_and(|r| r.contains("in bulk")),
            "{:?}",
            s.reason(0)
        );
        // A member flagged already keeps what it had.
        assert_eq!((s.suggestion(3), s.reason(3)), (None, None));
        // p 0.001 against a budget of 0.05: strong.
        assert!((s.score[0] - 0.99).abs() < 1e-6, "{}", s.score[0]);
    }
}
