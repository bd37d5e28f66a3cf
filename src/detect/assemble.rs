//! Building a [`Report`] from detectors' evidence, one detector at a time.
//!
//! The scan and the workbench assemble reports the same way: a report
//! starts [`Report::pending`] (every sample listed, no detector run), each
//! finished detector's [`Evidence`] is [`Report::absorb`]ed, and
//! [`Report::recombine`] recomputes the combined verdict. The workbench
//! does this as each detector finishes, so flags reach the queue stage by
//! stage; the scan does it once at the end, with the label vote.

use std::sync::Arc;

use super::detector::{Detail, Evidence, Role};
use super::input_view::InputView;
use super::registry;
use super::votes::Votes;
use super::{DetectorScores, REGISTRY, Report, trigger};
use crate::dataset::Dataset;
use crate::knn::Neighbors;
use crate::linalg::Matrix;

impl Report {
    /// A report of `ds` in which no detector has run yet: every detector
    /// present with zero scores and no flags, nothing suggested. What the
    /// workbench shows while the scan runs behind.
    pub fn pending(
        ds: &Dataset,
        features: Arc<Matrix>,
        feature_source: String,
        fdr: f64,
    ) -> Report {
        let n = ds.len();
        Report {
            ids: ds.ids.clone(),
            labels: ds.labels.clone(),
            class_names: ds.classes.clone(),
            score: vec![0.0; n],
            flagged: vec![false; n],
            reasons: vec![String::new(); n],
            suggested_label: vec![None; n],
            suggested_confidence: vec![0.0; n],
            // Detectors join as they finish (placeholders for all of them
            // would be 260 MB of zeros at a million samples).
            detectors: Vec::new(),
            clusters: Vec::new(),
            cluster_of: vec![0; n],
            feature_source,
            features,
            warnings: ds.warnings.clone(),
            triggers: Vec::new(),
            trigger_box: vec![None; n],
            trigger_of: vec![None; n],
            images: None,
            fdr,
            neighbours: Neighbors {
                k: 0,
                idx: Vec::new(),
                dist2: Vec::new(),
            },
        }
    }

    /// Takes in one detector's finished evidence: its scores join the
    /// report in registry order (replacing an earlier run's), a class split becomes the cluster map's data,
    /// triggers join those already found. The verdict is not recomputed
    /// until [`Report::recombine`]. Evidence for a different number of
    /// samples or an unknown detector is ignored (it cannot be this scan's).
    pub fn absorb(&mut self, e: Evidence) {
        let n = self.ids.len();
        if e.scores.score.len() != n {
            return;
        }
        let Some(rank) = registry_rank(e.scores.name) else {
            return;
        };
        match self.detectors.iter().position(|d| d.name == e.scores.name) {
            Some(at) => self.detectors[at] = e.scores,
            None => {
                let at = self
                    .detectors
                    .iter()
                    .position(|d| registry_rank(d.name) > Some(rank))
                    .unwrap_or(self.detectors.len());
                self.detectors.insert(at, e.scores);
            }
        }
        match e.detail {
            Detail::ClassSplit(s) if s.cluster_of.len() == n => {
                self.clusters = s.clusters;
                self.cluster_of = s.cluster_of;
            }
            Detail::Triggers(t) if t.trigger_of.len() == n => {
                let mut found = trigger::Findings {
                    triggers: std::mem::take(&mut self.triggers),
                    boxes: std::mem::take(&mut self.trigger_box),
                    trigger_of: std::mem::take(&mut self.trigger_of),
                };
                found.merge(t);
                self.triggers = found.triggers;
                self.trigger_box = found.boxes;
                self.trigger_of = found.trigger_of;
            }
            _ => {}
        }
    }

    /// Recomputes the combined verdict from the detectors' scores (see
    /// [`Report::verdict`]).
    pub fn recombine(&mut self, votes: Option<&Votes>) {
        let v = self.verdict(votes);
        self.set_verdict(v);
        if let Some(v) = votes {
            self.suggested_confidence = v.confidence.clone();
        }
    }

    /// Suggests, for each flagged sample nothing else suggested a label
    /// for, the class it looks like in input space where that is rare for
    /// its own class (see [`InputView::sources`], at the report's false-flag
    /// budget) — a backdoored image relabelled to the target class gets its
    /// source class back, so the annotator can relabel it instead of only
    /// excluding it — and says so in its reason.
    pub fn suggest_sources(&mut self, view: &InputView) {
        let found = view.sources(
            &self.labels,
            &self.flagged,
            |i| self.suggested_label[i].is_none(),
            self.fdr,
        );
        for (i, s) in found.into_iter().enumerate() {
            let Some(s) = s else { continue };
            self.suggested_label[i] = Some(s.class);
            self.suggested_confidence[i] = s.votes as f32 / s.counted as f32;
            let own = &self.class_names[self.labels[i] as usize];
            self.reasons[i].push_str(&format!(
                "; it looks like {} in pixel space ({} of its {} nearest unflagged images carry that label, as for only {:.1}% of unflagged '{own}' images)",
                self.class_names[s.class as usize],
                s.votes,
                s.counted,
                100.0 * s.p
            ));
        }
    }

    /// The combined score, flags, reasons and suggested labels the
    /// detectors' scores give; `votes` (the neighbourhood's label vote,
    /// which the scan has and a stage-by-stage view does not) fills in the
    /// suggestion where no flagging detector has one.
    pub fn verdict(&self, votes: Option<&Votes>) -> Verdict {
        let detectors: Vec<&DetectorScores> = self.detectors.iter().map(|d| &**d).collect();
        Verdict::of(&detectors, &self.labels, votes)
    }

    /// Puts a verdict made by [`Report::verdict`] (perhaps on another
    /// thread's copy of this report) in place.
    pub fn set_verdict(&mut self, v: Verdict) {
        if v.score.len() != self.ids.len() {
            return;
        }
        self.score = v.score;
        self.flagged = v.flagged;
        self.reasons = v.reasons;
        self.suggested_label = v.suggested_label;
    }
}

/// The combined verdict of a report, apart from the detectors' own scores:
/// what changes in the queue when another detector finishes.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Combined suspicion per sample.
    pub score: Vec<f32>,
    /// Combined flag per sample.
    pub flagged: Vec<bool>,
    /// Reasons per sample.
    pub reasons: Vec<String>,
    /// Suggested label per sample.
    pub suggested_label: Vec<Option<u32>>,
}

impl Verdict {
    /// The verdict `detectors` (those finished so far, any order) give on
    /// samples labelled `labels`; see [`Report::verdict`].
    pub fn of(detectors: &[&DetectorScores], labels: &[u32], votes: Option<&Votes>) -> Verdict {
        let n = labels.len();
        let (score, flagged, reasons) = combine(detectors, n, &[]);
        let suggested_label = (0..n)
            .map(|i| {
                detectors
                    .iter()
                    .find_map(|d| d.suggestion(i).filter(|_| d.flagged[i]))
                    .or(votes.map(|v| v.label[i]))
                    .filter(|&l| l != labels[i])
            })
            .collect();
        Verdict {
            score,
            flagged,
            reasons,
            suggested_label,
        }
    }
}

/// Position of a detector in the registry (report order).
fn registry_rank(name: &str) -> Option<usize> {
    REGISTRY.iter().position(|d| d.info().name == name)
}

/// Combined score, verdict and reasons per sample from every detector's
/// scores (`skip` leaves primary detectors out, to measure what they add).
pub(super) fn combine(
    detectors: &[&DetectorScores],
    n: usize,
    skip: &[&str],
) -> (Vec<f32>, Vec<bool>, Vec<String>) {
    let primary: Vec<&DetectorScores> = registry::names_with(Role::Primary)
        .into_iter()
        .filter(|p| !skip.contains(p))
        .filter_map(|p| detectors.iter().copied().find(|d| d.name == p))
        .collect();
    let corroborating: Vec<&DetectorScores> = registry::names_with(Role::Corroborating)
        .into_iter()
        .filter_map(|p| detectors.iter().copied().find(|d| d.name == p))
        .collect();
    let mut score = vec![0f32; n];
    let mut flagged = vec![false; n];
    let mut reasons = vec![String::new(); n];
    for i in 0..n {
        let s = primary.iter().map(|d| d.score[i]).fold(0f32, f32::max);
        let mut why: Vec<&str> = primary.iter().filter_map(|d| d.reason(i)).collect();
        flagged[i] = !why.is_empty();
        if flagged[i] {
            why.extend(corroborating.iter().filter_map(|d| d.reason(i)));
        }
        score[i] = if flagged[i] { s.max(0.5) } else { s.min(0.499) };
        reasons[i] = why.join("; ");
    }
    (score, flagged, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A detector's scores over three samples, flagging those in `flags`
    /// with a reason naming it.
    fn scores(name: &'static str, flags: [bool; 3]) -> DetectorScores {
        let mut d = DetectorScores::new(name, 3);
        for (i, &f) in flags.iter().enumerate() {
            d.flagged[i] = f;
            d.score[i] = if f { 0.8 } else { 0.1 };
            if f {
                d.reasons.set(i, format!("{name} says so"));
            }
        }
        d
    }

    /// Corroborating detectors never flag on their own, not even all
    /// together (spectral and outlier agreeing flagged 299 clean samples
    /// for 3 poisoned ones over 112 zoo sets); with a primary flag they
    /// add their reasons.
    #[test]
    fn corroborating_detectors_only_add_reasons() {
        let label = scores("label_flip", [true, false, false]);
        let spectral = scores("spectral", [true, true, false]);
        let outlier = scores("outlier", [true, true, false]);
        let (score, flagged, reasons) = combine(&[&label, &spectral, &outlier], 3, &[]);
        assert_eq!(flagged, vec![true, false, false]);
        assert!(reasons[0].contains("label_flip says so"));
        assert!(reasons[0].contains("spectral says so") && reasons[0].contains("outlier says so"));
        assert!(reasons[1].is_empty());
        assert!(score[0] >= 0.5 && score[1] < 0.5 && score[2] < 0.5);
    }
}
