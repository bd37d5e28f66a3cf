//! Detection quality on sets drawn from the attack distribution
//! (`../shared/devzoo/sets`), one per family the scan handles today. The
//! floors are what the scan reaches (README, *Quality*) with a margin, so a
//! change that loses a family fails here; the targets are higher
//! and are tracked by `examples/evaluate` over every set.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use poisonlens::dataset::{Dataset, OpenOptions};
use poisonlens::detect::{Report, ScanOptions, scan};
use poisonlens::eval::{Quality, quality, read_truth};

fn zoo(name: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/devzoo/sets")
        .join(name);
    if dir.exists() {
        Some(dir)
    } else {
        eprintln!("skipped: {} not present", dir.display());
        None
    }
}

/// Scans zoo set `name` (None when the zoo is absent) and asserts its
/// combined F1 is at least `floor`.
fn scan_with_f1(name: &str, floor: f64) -> Option<(Report, Quality)> {
    scan_with_truth(name, floor).map(|(r, _, q)| (r, q))
}

/// [`scan_with_f1`], with the set's truth.
fn scan_with_truth(name: &str, floor: f64) -> Option<(Report, HashMap<String, bool>, Quality)> {
    let dir = zoo(name)?;
    let (r, truth, q) = scan_zoo(&dir);
    assert!(q.f1() >= floor, "{name}: {q:?} F1 {:.3}", q.f1());
    Some((r, truth, q))
}

fn scan_zoo(dir: &Path) -> (Report, HashMap<String, bool>, Quality) {
    let ds = Dataset::open(dir, &OpenOptions::default()).unwrap();
    let truth = read_truth(&dir.join("truth.csv")).unwrap();
    let r = scan(&ds, &ScanOptions::default(), &|_, _| {}).unwrap();
    let q = quality(&r.ids, &r.flagged, &truth);
    (r, truth, q)
}

/// A flood of near-copies carrying a wrong label: the copies are flagged,
/// and most of the correctly labelled originals they outnumber are not (5
/// of 21 are, where the input view itself confuses the classes).
#[test]
fn duplicate_flood_copies_are_flagged_not_their_originals() {
    let Some(dir) = zoo("z107_dupflood") else {
        return;
    };
    let (r, _, q) = scan_zoo(&dir);
    assert!(q.f1() >= 0.85, "{q:?} F1 {:.3}", q.f1());
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    let originals: Vec<String> = meta["component_notes"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|c| c["source_ids"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert!(!originals.is_empty());
    let dup = r.detector("duplicate").unwrap();
    let flagged_originals = originals
        .iter()
        .filter_map(|id| r.ids.iter().position(|x| x == id))
        .filter(|&i| dup.flagged[i])
        .count();
    assert!(
        flagged_originals * 4 <= originals.len(),
        "{flagged_originals} of {} originals flagged",
        originals.len()
    );
    // The report says what the budget promises about these flags.
    let copies = dup.flagged.iter().filter(|&&f| f).count();
    let note = r.budget_note();
    let expected = format!(
        "at most {:.1} of the {copies} near-copy flags",
        r.fdr * copies as f64
    );
    assert!(note.contains(&expected), "{note}");
    assert!(
        note.contains("Not covered (fixed thresholds): label flip"),
        "{note}"
    );
}

/// Colour images with a flood and a small patch backdoor mixed in.
#[test]
fn mixed_colour_flood_is_found() {
    scan_with_f1("z103_mixed", 0.75);
}

/// A natural image blended into 2.6% of the data: once found everywhere by
/// a one-pixel "trigger" (70% of clean samples flagged); now the flags stay
/// with the poison, and every carrier is found (F1 0.91; 0.73 while the
/// fixed-pattern search looked only where images are flat).
#[test]
fn natural_image_blend_does_not_flood_the_queue() {
    let Some((r, q)) = scan_with_f1("z104_blend", 0.85) else {
        return;
    };
    assert!(q.fpr() <= 0.01, "{q:?}");
    for t in &r.triggers {
        if let Some([x0, y0, x1, y1]) = t.bbox {
            assert!((x1 - x0 + 1) * (y1 - y0 + 1) >= 3, "{}", t.summary);
        }
    }
}

/// Clean draws stay (nearly) unflagged, and no natural shape passes for a
/// trigger.
#[test]
fn clean_zoo_sets_stay_under_one_percent_flagged() {
    for name in ["z100_clean", "z108_clean"] {
        let Some(dir) = zoo(name) else {
            return;
        };
        let (r, _, q) = scan_zoo(&dir);
        assert_eq!(flags_of(&r, "fixed_pattern"), 0, "{name}: a fixed pattern");
        assert!(
            r.triggers.is_empty(),
            "{name}: {:?}",
            r.triggers.iter().map(|t| &t.summary).collect::<Vec<_>>()
        );
        assert!(
            q.flagged * 100 <= r.ids.len(),
            "{name}: {} of {} flagged",
            q.flagged,
            r.ids.len()
        );
    }
}

/// A 12-px checkerboard stamped at a random place in each image: found by
/// its exactly recurring windows wherever it is.
#[test]
fn a_stamp_at_random_places_is_found_wherever_it_is() {
    let Some((r, _)) = scan_with_f1("z102_patch", 0.9) else {
        return;
    };
    let t = r
        .triggers
        .iter()
        .find(|t| r.class_names[t.class as usize] == "Pullover")
        .expect("a trigger in the target class");
    assert!(t.carriers >= 120 && t.carriers <= 150, "{}", t.summary);
}

/// Clean-label: a solid stamp on target-class images whose labels stay
/// right (colour, 32 px) — the label checks cannot see it, the stamp can.
#[test]
fn a_clean_label_stamp_is_found_in_its_own_class() {
    scan_with_f1("z101_cleanlabel", 0.8);
}

/// The poison is 57% of its target class: the suspect group is chosen by
/// how it looks in input space, not by being the smaller.
#[test]
fn poison_that_outnumbers_its_class_is_still_the_suspect_group() {
    if let Some((_, q)) = scan_with_f1("z109_patch", 0.9) {
        assert!(q.fpr() <= 0.01, "{q:?}");
    }
}

/// How many samples detector `name` flags.
fn flags_of(r: &Report, name: &str) -> usize {
    let d = r.detectors.iter().find(|d| d.name == name).expect(name);
    d.flagged.iter().filter(|&&f| f).count()
}

/// Clean-label sinusoid (a third of Coat, labels kept): the fixed-pattern
/// search finds its carriers by the exact steps the signal leaves on their
/// background, and no other image.
#[test]
fn a_clean_label_sinusoid_is_found_by_its_exact_steps() {
    let Some(dir) = zoo("z111_cleanlabel") else {
        return;
    };
    let (r, truth, q) = scan_zoo(&dir);
    assert!(q.f1() >= 0.85, "{q:?} F1 {:.3}", q.f1());
    let d = r
        .detectors
        .iter()
        .find(|d| d.name == "fixed_pattern")
        .unwrap();
    let (mut hit, mut wrong) = (0, 0);
    for (i, id) in r.ids.iter().enumerate() {
        if d.flagged[i] {
            if truth[id] { hit += 1 } else { wrong += 1 }
        }
    }
    assert!(
        hit >= 95 && wrong <= 2,
        "{hit} carriers, {wrong} clean flagged"
    );
    let first = d.flagged.iter().position(|&f| f).unwrap();
    let reason = d.reason(first).unwrap();
    assert!(reason.contains("'Coat'"), "{reason}");
}

/// Random flips (7% of z110) that the model half learnt: without the
/// labels both views dispute beyond their class's own images
/// (`detect::two_views`) the scan reads F1 0.79; with them 0.81 — 12 flips
/// more for 10 clean images (the check is not held to the budget, and
/// says so in README) — each reason saying why.
#[test]
fn random_flips_both_views_dispute_are_found() {
    let Some((r, truth, _)) = scan_with_truth("z110_flips", 0.80) else {
        return;
    };
    let d = r.detectors.iter().find(|d| d.name == "label_flip").unwrap();
    let (mut hit, mut wrong) = (0, 0);
    for (i, id) in r.ids.iter().enumerate() {
        if d.flagged[i] && d.reason(i).is_some_and(|w| w.starts_with("both views say")) {
            if truth[id] { hit += 1 } else { wrong += 1 }
        }
    }
    eprintln!("two-view flags: {hit} flips, {wrong} clean");
    assert!(hit >= 10 && hit > wrong, "{hit} flips, {wrong} clean");
}
