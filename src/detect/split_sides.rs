//! Which side of a class split is the poison, when a found trigger says so.
//!
//! Activation clustering picks a split's suspect group by how little it
//! looks like its class in the input view, or else by size. Images stamped
//! while keeping their labels (a clean-label attack) look like their class
//! as much as the clean ones do, and the pick can fall on the clean side:
//! in z3507 (a vertical ramp on 38% of Trouser) the 188 clean trousers
//! were the suspect group and the 113 stamped ones the main group; in z1008
//! (a stamp on 209 sneakers) 91 clean sneakers were flagged and 38 stamped
//! ones the pattern searches had missed sat unflagged in the main group.
//! A trigger the image searches found says where the poison is: when the
//! suspect group holds a smaller share of its class's trigger carriers than
//! the main group does, the split's sides are swapped.

use super::DetectorScores;
use super::detector::{ClassSplit, Detail, Evidence};

/// Swaps the sides of every flagged class split of `evidence` (the scan's,
/// in registry order) whose suspect group holds a smaller share of the
/// class's trigger carriers — samples a detector with trigger findings
/// flagged — than its main group. Returns the classes swapped.
pub fn side_with_carriers(
    evidence: &mut [Evidence],
    labels: &[u32],
    class_names: &[String],
) -> Vec<u32> {
    let carriers = trigger_carriers(evidence, labels.len());
    let Some(Evidence { scores, detail }) = evidence
        .iter_mut()
        .find(|e| matches!(e.detail, Detail::ClassSplit(_)))
    else {
        return Vec::new();
    };
    let Detail::ClassSplit(split) = detail else {
        return Vec::new();
    };
    let members = flagged_class_members(split, labels);
    // Decided on the shared scores; they are copied (a window showing the
    // scan stage by stage holds them too) only when a side changes.
    let turned: Vec<(usize, Shares)> = members
        .iter()
        .enumerate()
        .filter_map(|(c, m)| Some((c, carrier_shares(m, &scores.flagged, &carriers)?)))
        .filter(|(_, s)| s.suspect.0 * s.main.1 < s.main.0 * s.suspect.1)
        .collect();
    if turned.is_empty() {
        return Vec::new();
    }
    let scores = std::sync::Arc::make_mut(scores);
    let mut swapped = Vec::with_capacity(turned.len());
    for (c, shares) in turned {
        let class = split.clusters[c].class;
        let name = &class_names[class as usize];
        swap(scores, split, c, &members[c], shares, name);
        swapped.push(class);
    }
    swapped
}

/// The samples of each class whose split is flagged, indexed like
/// `split.clusters` (empty for the others): one pass over the labels, so
/// a dataset of many classes is not walked once per class.
fn flagged_class_members(split: &ClassSplit, labels: &[u32]) -> Vec<Vec<usize>> {
    let mut slot = std::collections::HashMap::new();
    for (c, info) in split.clusters.iter().enumerate() {
        if info.flagged {
            slot.insert(info.class, c);
        }
    }
    let mut members = vec![Vec::new(); split.clusters.len()];
    if slot.is_empty() {
        return members;
    }
    for (i, l) in labels.iter().enumerate() {
        if let Some(&c) = slot.get(l) {
            members[c].push(i);
        }
    }
    members
}

/// Per sample, whether a detector with trigger findings flagged it.
pub(super) fn trigger_carriers(evidence: &[Evidence], n: usize) -> Vec<bool> {
    let mut carriers = vec![false; n];
    for e in evidence
        .iter()
        .filter(|e| matches!(e.detail, Detail::Triggers(_)))
    {
        for (c, &f) in carriers.iter_mut().zip(&e.scores.flagged) {
            *c |= f;
        }
    }
    carriers
}

/// Carriers and members of a class's suspect and main groups.
#[derive(Clone, Copy)]
struct Shares {
    /// (carriers, members) of the suspect group.
    suspect: (usize, usize),
    /// (carriers, members) of the main group.
    main: (usize, usize),
}

/// The class's carrier counts per group; None when either group is empty
/// or the class has no carrier (nothing to side with).
fn carrier_shares(members: &[usize], flagged: &[bool], carriers: &[bool]) -> Option<Shares> {
    let mut s = Shares {
        suspect: (0, 0),
        main: (0, 0),
    };
    for &i in members {
        let group = if flagged[i] {
            &mut s.suspect
        } else {
            &mut s.main
        };
        group.0 += usize::from(carriers[i]);
        group.1 += 1;
    }
    let some = s.suspect.1 > 0 && s.main.1 > 0 && s.suspect.0 + s.main.0 > 0;
    some.then_some(s)
}

/// Makes class `c`'s main group its suspect group and the reverse.
fn swap(
    scores: &mut DetectorScores,
    split: &mut ClassSplit,
    c: usize,
    members: &[usize],
    shares: Shares,
    class_name: &str,
) {
    let info = &mut split.clusters[c];
    info.minority_size = shares.main.1;
    // The look-alike shares were measured for the other group.
    info.lookalikes = f64::NAN;
    info.lookalikes_expected = f64::NAN;
    for &i in members {
        split.cluster_of[i] = 1 - split.cluster_of[i].min(1);
        scores.score[i] = 1.0 - scores.score[i];
        scores.flagged[i] = !scores.flagged[i];
        if scores.flagged[i] {
            scores.reasons.set(i, format!(
                "in the group of {} of {} '{class_name}' samples that holds the class's trigger carriers ({} of them, against {} of the {} samples the clustering had called suspect): a backdoor, or poison stamped on the class's own images",
                shares.main.1,
                info.size,
                shares.main.0,
                shares.suspect.0,
                shares.suspect.1
            ));
        } else {
            scores.reasons.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::ClassClusters;
    use crate::detect::trigger::Findings;

    /// Class 0: samples 0–9; class 1: samples 10–19. Both splits flag
    /// their first five samples (posterior 0.8; the rest 0.2).
    fn split_evidence() -> Evidence {
        let mut scores = DetectorScores::new("activation_cluster", 20);
        let mut cluster_of = vec![0u8; 20];
        for i in (0..5).chain(10..15) {
            scores.flagged[i] = true;
            scores.reasons.set(i, "in a distinct cluster".into());
            cluster_of[i] = 1;
        }
        for i in 0..20 {
            scores.score[i] = if scores.flagged[i] { 0.8 } else { 0.2 };
        }
        let cluster = |class| ClassClusters {
            class,
            size: 10,
            minority_size: 5,
            gain: 4.0,
            separation: 3.0,
            conductance: 0.01,
            flagged: true,
            lookalikes: 0.3,
            lookalikes_expected: 0.4,
        };
        Evidence {
            scores: scores.into(),
            detail: Detail::ClassSplit(ClassSplit {
                clusters: vec![cluster(0), cluster(1)],
                cluster_of,
            }),
        }
    }

    /// A trigger detector's evidence flagging `carriers`.
    fn trigger_evidence(carriers: &[usize]) -> Evidence {
        let mut scores = DetectorScores::new("trigger", 20);
        for &i in carriers {
            scores.flagged[i] = true;
        }
        Evidence {
            scores: scores.into(),
            detail: Detail::Triggers(Findings::none(20)),
        }
    }

    #[test]
    fn a_split_whose_main_group_holds_the_carriers_is_turned_round() {
        let labels: Vec<u32> = (0..20).map(|i| u32::from(i >= 10)).collect();
        let names = vec!["Trouser".to_string(), "Bag".to_string()];
        // Class 0's carriers sit in its main group (6–9, and one suspect);
        // class 1's in its suspect group.
        let mut evidence = vec![
            split_evidence(),
            trigger_evidence(&[4, 6, 7, 8, 9, 10, 11, 12]),
        ];
        let swapped = side_with_carriers(&mut evidence, &labels, &names);
        assert_eq!(swapped, vec![0]);
        let scores = &evidence[0].scores;
        let flagged: Vec<usize> = (0..20).filter(|&i| scores.flagged[i]).collect();
        assert_eq!(flagged, vec![5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        assert!((scores.score[6] - 0.8).abs() < 1e-6 && (scores.score[0] - 0.2).abs() < 1e-6);
        assert!(scores.reason(0).is_none());
        let why = scores.reason(6).unwrap();
        assert!(
            why.contains("holds the class's trigger carriers (4 of them, against 1 of the 5"),
            "{why}"
        );
        let Detail::ClassSplit(split) = &evidence[0].detail else {
            panic!("the split stays a split")
        };
        assert_eq!(split.cluster_of[..10], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
        assert!(split.clusters[0].lookalikes.is_nan());
        assert_eq!(split.clusters[1].lookalikes, 0.3);
    }

    #[test]
    fn a_split_is_left_alone_without_carriers_in_its_class() {
        let labels: Vec<u32> = (0..20).map(|i| u32::from(i >= 10)).collect();
        let names = vec!["a".to_string(), "b".to_string()];
        let mut evidence = vec![split_evidence(), trigger_evidence(&[])];
        assert!(side_with_carriers(&mut evidence, &labels, &names).is_empty());
        assert_eq!(
            evidence[0].scores.flagged.iter().filter(|&&f| f).count(),
            10
        );
    }
}
