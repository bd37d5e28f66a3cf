//! Clean images caught in a backdoor's activation group.
//!
//! Where the trigger search found a backdoor's carriers in a class, the
//! class's activation split is explained: its suspect group is the
//! carriers, as the model learnt them. But the split's border is the
//! mixture's, and it takes clean images of the class along — the
//! trousers of a sub-style nearest the carriers (z4911: 39 clean T-shirts
//! beside 112 carriers; z3808: 45 clean trousers). A group member that
//! carries no trigger itself stays flagged only when, in the model's own
//! view, it lies nearer the carriers' mean than the mean of the class's
//! images outside the group: a carrier the image searches missed (a
//! clean-label stamp they could not see) was learnt as the carriers were;
//! a clean image of the class was not.
//!
//! Measured over 319 sets with images and embeddings (session 22): of the
//! group-only flags in classes with at least five carriers, 144 of 146
//! poisoned ones lie nearer the carriers, 168 of 279 clean ones do not
//! (median distance share 0.37 against 0.52); mean F1 0.8411 → 0.8426,
//! z3108 0.92 → 0.99, z4000 0.85 → 0.92, z4700 0.88 → 0.95, z3106 0.83 →
//! 0.89; one set lower, z1008 0.993 → 0.988.

use super::detector::{Detail, Evidence};
use super::split_sides::trigger_carriers;
use super::trigger::localize::MIN_GROUP;
use crate::linalg::{Matrix, mean_of_rows, squared_distance};

/// Unflags the activation group's members that carry no trigger and lie
/// nearer their class's images outside the group than its trigger
/// carriers, in every class with at least [`MIN_GROUP`] carriers (see the
/// module docs); `features` are the scan's (embeddings), `labels` the
/// given ones. Returns how many flags were withdrawn.
pub fn unflag_spill(evidence: &mut [Evidence], features: &Matrix, labels: &[u32]) -> usize {
    let carriers = trigger_carriers(evidence, labels.len());
    let Some(e) = evidence
        .iter_mut()
        .find(|e| matches!(e.detail, Detail::ClassSplit(_)))
    else {
        return 0;
    };
    let spill = spilled(features, labels, &e.scores.flagged, &carriers);
    if spill.is_empty() {
        return 0;
    }
    let scores = std::sync::Arc::make_mut(&mut e.scores);
    for &i in &spill {
        scores.flagged[i] = false;
        scores.score[i] = scores.score[i].min(0.499);
        scores.reasons.remove(i);
    }
    spill.len()
}

/// The group members (`flagged`) that carry no trigger and lie at least as
/// near their class's unflagged non-carriers' mean as its carriers' mean.
fn spilled(features: &Matrix, labels: &[u32], flagged: &[bool], carriers: &[bool]) -> Vec<usize> {
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let mut of_class = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        of_class[l as usize].push(i);
    }
    let mut out = Vec::new();
    for members in &of_class {
        let carrying: Vec<usize> = members.iter().copied().filter(|&i| carriers[i]).collect();
        let (group, rest): (Vec<usize>, Vec<usize>) = members
            .iter()
            .copied()
            .filter(|&i| !carriers[i])
            .partition(|&i| flagged[i]);
        if carrying.len() < MIN_GROUP || rest.len() < MIN_GROUP || group.is_empty() {
            continue;
        }
        let (towards, away) = (mean_row(features, &carrying), mean_row(features, &rest));
        out.extend(group.into_iter().filter(|&i| {
            let x = features.row(i);
            squared_distance(x, &towards) >= squared_distance(x, &away)
        }));
    }
    out.sort_unstable();
    out
}

/// Mean of the rows `rows` of `m`, in the matrix's precision.
fn mean_row(m: &Matrix, rows: &[usize]) -> Vec<f32> {
    mean_of_rows(m, rows.iter().copied())
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One class of 30 on a line: carriers at 10 (0–9), clean images at 0
    /// (10–29); the group holds the carriers, two clean images at 1 and 2,
    /// and one missed carrier at 9.
    #[test]
    fn group_members_nearer_the_rest_than_the_carriers_are_spill() {
        let mut x: Vec<f32> = vec![10.0; 10];
        x.extend(std::iter::repeat_n(0.0, 20));
        x[10] = 1.0;
        x[11] = 2.0;
        x[12] = 9.0;
        let m = Matrix::new(30, 1, x);
        let labels = vec![0u32; 30];
        let carriers: Vec<bool> = (0..30).map(|i| i < 10).collect();
        let flagged: Vec<bool> = (0..30).map(|i| i < 13).collect();
        assert_eq!(spilled(&m, &labels, &flagged, &carriers), vec![10, 11]);
        // Without five carriers in the class nothing is judged.
        let few: Vec<bool> = (0..30).map(|i| i < 4).collect();
        assert!(spilled(&m, &labels, &flagged, &few).is_empty());
    }
}
