//! The review model: the one place where decisions about samples change.
//!
//! [`Review`] is the in-memory state (decisions, undo and redo stacks);
//! [`ReviewSession`] binds it to the durable [`store`], so the workbench and
//! the scriptable `review` command both write every change to disk before
//! showing it. A batch (excluding a whole cluster, relabelling a lasso
//! selection) is one [`Action`] and undoes as one step.

pub mod location;
mod session;
pub mod store;

pub use session::ReviewSession;

use std::time::{SystemTime, UNIX_EPOCH};

/// What a reviewer decided about a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Decision {
    /// Keep with the given label.
    Keep,
    /// Leave out of the cleaned dataset.
    Exclude,
    /// Keep with this class instead of the given one.
    Relabel(u32),
}

/// A decision with who, when and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The decision.
    pub decision: Decision,
    /// Why (free text; may be empty).
    pub reason: String,
    /// Who decided.
    pub reviewer: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

/// One sample's state before and after an action.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    /// Sample index.
    pub sample: usize,
    /// Its decision before (None = undecided).
    pub before: Option<Entry>,
    /// Its decision after.
    pub after: Option<Entry>,
}

/// One undoable step (a single decision or a batch).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Action {
    /// What changed.
    pub changes: Vec<Change>,
    /// Its event number in the durable store (0 while not stored), so an undo
    /// can name the step it reverts in the audit trail.
    pub seq: i64,
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReviewError {
    /// A sample index outside the dataset.
    #[error("no sample number {0}")]
    NoSuchSample(usize),
    /// A class index outside the class list.
    #[error("no class number {0}")]
    NoSuchClass(u32),
    /// Nothing selected.
    #[error("no samples selected")]
    Empty,
}

/// Decisions for every sample of one dataset, with undo/redo.
#[derive(Debug, Clone)]
pub struct Review {
    decisions: Vec<Option<Entry>>,
    n_classes: usize,
    undo: Vec<Action>,
    redo: Vec<Action>,
    version: u64,
}

/// Counts for the progress bar and per-class table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Samples with any decision.
    pub reviewed: usize,
    /// Kept as they are.
    pub kept: usize,
    /// Excluded.
    pub excluded: usize,
    /// Kept with a new label.
    pub relabelled: usize,
}

/// What a batch decision would do ([`Review::batch_effect`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchEffect {
    /// Samples without a decision yet.
    pub undecided: usize,
    /// Samples that already have this very decision.
    pub unchanged: usize,
    /// Earlier keeps the batch would replace.
    pub keeps_changed: usize,
    /// Earlier excludes the batch would replace.
    pub excludes_changed: usize,
    /// Earlier relabels (to any class but this one) the batch would replace.
    pub relabels_changed: usize,
}

impl BatchEffect {
    /// Earlier decisions the batch would replace.
    pub fn changed(&self) -> usize {
        self.keeps_changed + self.excludes_changed + self.relabels_changed
    }
}

impl Review {
    /// An empty review of `n` samples in `n_classes` classes.
    pub fn new(n: usize, n_classes: usize) -> Self {
        Review {
            decisions: vec![None; n],
            n_classes,
            undo: Vec::new(),
            redo: Vec::new(),
            version: 0,
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.decisions.len()
    }

    /// True for a review of no samples.
    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty()
    }

    /// The current decision for sample `i`.
    pub fn decision(&self, i: usize) -> Option<&Entry> {
        self.decisions.get(i).and_then(Option::as_ref)
    }

    /// What giving every one of `samples` decision `d` would do to the
    /// decisions already made: shown before a batch applies, so a box of
    /// samples cannot silently overwrite earlier keeps and relabels.
    pub fn batch_effect(&self, samples: &[usize], d: Decision) -> BatchEffect {
        let mut effect = BatchEffect::default();
        let mut seen = std::collections::HashSet::new();
        for &i in samples.iter().filter(|&&i| seen.insert(i)) {
            match self.decision(i).map(|e| e.decision) {
                None => effect.undecided += 1,
                Some(before) if before == d => effect.unchanged += 1,
                Some(Decision::Keep) => effect.keeps_changed += 1,
                Some(Decision::Exclude) => effect.excludes_changed += 1,
                Some(Decision::Relabel(_)) => effect.relabels_changed += 1,
            }
        }
        effect
    }

    /// Works out the action that would give each sample its decision (with
    /// the decisions it replaces), without changing anything: the session
    /// stores it first and only then [`push`](Self::push)es it. A sample
    /// named twice keeps its first decision.
    pub fn plan(
        &self,
        decisions: &[(usize, Decision)],
        reason: &str,
        reviewer: &str,
    ) -> Result<Action, ReviewError> {
        if decisions.is_empty() {
            return Err(ReviewError::Empty);
        }
        if let Some(&(bad, _)) = decisions.iter().find(|(i, _)| *i >= self.decisions.len()) {
            return Err(ReviewError::NoSuchSample(bad));
        }
        for (_, d) in decisions {
            if let Decision::Relabel(c) = *d
                && c as usize >= self.n_classes
            {
                return Err(ReviewError::NoSuchClass(c));
            }
        }
        let at = now();
        let mut seen = std::collections::HashSet::new();
        let changes = decisions
            .iter()
            .filter(|(i, _)| seen.insert(*i))
            .map(|&(i, decision)| Change {
                sample: i,
                before: self.decisions[i].clone(),
                after: Some(Entry {
                    decision,
                    reason: reason.to_string(),
                    reviewer: reviewer.to_string(),
                    at,
                }),
            })
            .collect();
        Ok(Action { changes, seq: 0 })
    }

    /// Applies an action worked out by [`plan`](Self::plan) (or read back from
    /// the store) as the newest undoable step; clears the redo stack.
    pub fn push(&mut self, action: Action) -> &Action {
        self.set_all(&action, false);
        self.redo.clear();
        self.undo.push(action);
        self.undo.last().expect("just pushed")
    }

    /// The step [`undo`](Self::undo) would revert.
    pub fn peek_undo(&self) -> Option<&Action> {
        self.undo.last()
    }

    /// The step [`redo`](Self::redo) would re-apply.
    pub fn peek_redo(&self) -> Option<&Action> {
        self.redo.last()
    }

    /// Reverts the last action; returns it, or None when there is nothing to undo.
    pub fn undo(&mut self) -> Option<&Action> {
        let action = self.undo.pop()?;
        self.set_all(&action, true);
        self.redo.push(action);
        self.redo.last()
    }

    /// Re-applies the last undone action.
    pub fn redo(&mut self) -> Option<&Action> {
        let action = self.redo.pop()?;
        self.set_all(&action, false);
        self.undo.push(action);
        self.undo.last()
    }

    /// Whether there is something to undo / redo.
    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }
    /// Whether there is something to redo.
    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// Label sample `i` ends up with, or None if excluded.
    pub fn final_label(&self, i: usize, given: u32) -> Option<u32> {
        match self.decision(i).map(|e| e.decision) {
            Some(Decision::Exclude) => None,
            Some(Decision::Relabel(c)) => Some(c),
            _ => Some(given),
        }
    }

    /// Increases with every change (apply, undo, redo): views compare it to
    /// know when to redraw what depends on decisions.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Overall and per-class counts in one pass (`labels` = given labels).
    pub fn tally_by_class(&self, labels: &[u32], n_classes: usize) -> (Tally, Vec<Tally>) {
        let mut total = Tally::default();
        let mut per = vec![Tally::default(); n_classes];
        for (i, e) in self.decisions.iter().enumerate() {
            let Some(e) = e else { continue };
            for t in [&mut total, &mut per[labels[i] as usize]] {
                t.reviewed += 1;
                match e.decision {
                    Decision::Keep => t.kept += 1,
                    Decision::Exclude => t.excluded += 1,
                    Decision::Relabel(_) => t.relabelled += 1,
                }
            }
        }
        (total, per)
    }

    /// Number of classes a relabel may name.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    fn set_all(&mut self, action: &Action, backwards: bool) {
        self.version += 1;
        for c in &action.changes {
            self.decisions[c.sample] = if backwards {
                c.before.clone()
            } else {
                c.after.clone()
            };
        }
    }
}

/// Who is deciding when no one said: `POISONLENS_REVIEWER`, else the login
/// name, so the audit trail never has an empty "who".
pub fn default_reviewer() -> String {
    ["POISONLENS_REVIEWER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| "reviewer".into())
}

/// Seconds since the Unix epoch, the time stamp of every decision.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A decision in words, with class names: how the store, `review --list`
/// and the audit trail write it, so they survive a change of class order.
pub fn describe(d: Option<Decision>, classes: &[String]) -> String {
    match d {
        None => "undecided".into(),
        Some(Decision::Keep) => "keep".into(),
        Some(Decision::Exclude) => "exclude".into(),
        Some(Decision::Relabel(c)) => format!(
            "relabel:{}",
            classes.get(c as usize).map_or("?", String::as_str)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_says_which_earlier_decisions_it_would_replace() {
        let mut r = Review::new(6, 3);
        let earlier = [
            (0, Decision::Keep),
            (1, Decision::Relabel(2)),
            (2, Decision::Exclude),
            (3, Decision::Relabel(1)),
        ];
        let a = r.plan(&earlier, "", "ana").unwrap();
        r.push(a);
        let e = r.batch_effect(&[0, 1, 2, 3, 4, 5, 5], Decision::Relabel(1));
        assert_eq!(
            e,
            BatchEffect {
                undecided: 2,
                unchanged: 1,
                keeps_changed: 1,
                excludes_changed: 1,
                relabels_changed: 1,
            }
        );
        assert_eq!(e.changed(), 3);
    }

    impl Review {
        /// One decision for several samples as one step (what a session
        /// does, without the store).
        fn apply(
            &mut self,
            samples: &[usize],
            decision: Decision,
            reason: &str,
            reviewer: &str,
        ) -> Result<&Action, ReviewError> {
            let pairs: Vec<(usize, Decision)> = samples.iter().map(|&i| (i, decision)).collect();
            let action = self.plan(&pairs, reason, reviewer)?;
            Ok(self.push(action))
        }
    }

    #[test]
    fn batch_is_one_undo_step_and_redo_restores_it() {
        let mut r = Review::new(5, 3);
        r.apply(&[0], Decision::Keep, "", "ana").unwrap();
        r.apply(&[1, 2, 2], Decision::Exclude, "cluster", "ana")
            .unwrap();
        let (all, per) = r.tally_by_class(&[0, 1, 1, 2, 2], 3);
        assert_eq!((per[0].kept, per[1].excluded, per[2].reviewed), (1, 2, 0));
        assert_eq!(
            all,
            Tally {
                reviewed: 3,
                kept: 1,
                excluded: 2,
                relabelled: 0
            }
        );
        r.undo().unwrap();
        assert!(r.decision(1).is_none() && r.decision(2).is_none());
        assert_eq!(r.decision(0).unwrap().decision, Decision::Keep);
        r.redo().unwrap();
        assert_eq!(r.decision(2).unwrap().reason, "cluster");
    }

    #[test]
    fn new_action_clears_redo_and_undo_restores_previous_decision() {
        let mut r = Review::new(3, 3);
        r.apply(&[0], Decision::Relabel(2), "", "a").unwrap();
        r.apply(&[0], Decision::Exclude, "", "a").unwrap();
        r.undo().unwrap();
        assert_eq!(r.final_label(0, 1), Some(2));
        r.apply(&[1], Decision::Keep, "", "a").unwrap();
        assert!(!r.can_redo());
    }

    #[test]
    fn refuses_bad_input() {
        let mut r = Review::new(2, 2);
        assert_eq!(
            r.apply(&[5], Decision::Keep, "", "a").unwrap_err(),
            ReviewError::NoSuchSample(5)
        );
        assert_eq!(
            r.apply(&[0], Decision::Relabel(7), "", "a").unwrap_err(),
            ReviewError::NoSuchClass(7)
        );
        assert_eq!(
            r.apply(&[], Decision::Keep, "", "a").unwrap_err(),
            ReviewError::Empty
        );
        assert!(r.undo().is_none());
    }
}
