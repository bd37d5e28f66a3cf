//! Labels both views dispute: the model's neighbourhood and the input
//! view's (what the image looks like, not learnt from the labels) both give
//! one other class more of their vote than the label, and each gives it
//! more than the class's own images vouched for by the *other* view do.
//!
//! The per-sample label check ([`super::label_flip`]) reads the model's
//! vote alone, against what the class's images vote. A model trained on
//! flipped labels half learns them: a flip's model vote for its wrong label
//! sits at 10–50%, where a weak model's clean images vote too, and three
//! in five random flips went unflagged on weak models (z4403, colour 34 px,
//! 44% accurate: 156 of 480 found). What the image looks like was not
//! learnt from the labels, and there most of those flips still look like
//! their source class (the input view's vote for their label: median 4%).
//!
//! For a sample labelled `c` whose two views both put a class `d` above
//! `c` (`d` the class with the largest product of the two views' shares),
//! two ranks against `c`'s own images *for that pair*:
//! - **model**: of `c`'s images that look like `c` in the input view, how
//!   many the model's neighbourhood gives `d` as much;
//! - **look**: of `c`'s images the model places firmly with `c`, how many
//!   look that much like `d` in the input view.
//!
//! Each rank is a p-value, (as many + 1) / (null + 1); the two are combined
//! by Fisher's method (chi-square with four degrees of freedom), multiplied
//! by the other classes `d` was chosen from (Bonferroni), and flagged by
//! Benjamini–Hochberg over all samples at the scan's false-flag budget.
//! Per pair, not per class: shirts that look like T-shirts are common, so a
//! shirt both views call a T-shirt is weak evidence, while a trouser both
//! views call a bag is strong.
//!
//! Not a guarantee, and measured as such: each null leaves out the class's
//! ambiguous images (those the other view doubts), and an ambiguous image
//! is ambiguous in both views at once, so a clean image's p-value is
//! optimistic — in the clean sets' tails 3–5× as many clean images reach a
//! small value as a true p-value allows. Where nothing is flipped the
//! budget still holds (27 clean sets: no flag), because Benjamini–Hochberg
//! then demands values no clean image reaches; where hundreds of labels are
//! flipped it admits clean images with them (5–18% of this check's flags
//! on random-flip sets, against the budget's 5%).
//!
//! Near-copies the duplicate detector flags do not vote ([`spread_rows`]):
//! a flood of copies carrying a wrong label outvotes, in both views, the
//! correctly labelled originals it copies, and they were flagged instead
//! (z6804: 30 clean originals).

use std::borrow::Cow;
use std::collections::BTreeMap;

use rayon::prelude::*;

use super::Features;
use super::input_view::InputView;
use super::votes::{VoteRows, spread_rows};
use crate::knn::Neighbors;
use crate::stats::benjamini_hochberg;

/// Why both views doubt one label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwoViews {
    /// The class both views put above the label.
    pub other: u32,
    /// The model's neighbourhood's share for `other`, and for the label.
    pub model: (f64, f64),
    /// The input view's share for `other`, and for the label.
    pub look: (f64, f64),
    /// How many of the label's images that look like it give `other` as
    /// much in the model's view, of how many.
    pub model_rank: (usize, usize),
    /// How many of the label's images the model places firmly with it look
    /// as much like `other`, of how many.
    pub look_rank: (usize, usize),
    /// The combined p-value, multiplied by the classes `other` was chosen
    /// from.
    pub p: f64,
}

/// Which images vouch for a class: those whose vote for their own label in
/// the other view is at least `share`; a class with fewer than `min` such
/// images is not tested.
#[derive(Debug, Clone, Copy)]
pub struct Natives {
    /// Least share of the other view's vote for the label.
    pub share: f64,
    /// Fewest images a null is taken from.
    pub min: usize,
}

/// The samples both views dispute beyond their class's null, flagged at
/// the false-flag budget `fdr` (see the module docs); None for the rest.
/// `rows` are the model's and the input view's spread votes with only the
/// `counted` samples voting ([`votes_of_both`]); only they are tested.
pub fn disputed_by_both(
    f: &Features,
    rows: (&VoteRows, &VoteRows),
    counted: &[bool],
    natives: Natives,
    fdr: f64,
) -> Vec<Option<TwoViews>> {
    let found = tested(f, rows, counted, natives);
    let p: Vec<f64> = found.iter().map(|t| t.map_or(1.0, |t| t.p)).collect();
    let (flagged, _) = benjamini_hochberg(&p, fdr);
    found
        .into_iter()
        .zip(flagged)
        .map(|(t, flag)| t.filter(|_| flag))
        .collect()
}

/// The samples that count — `voting` and with a readable image — and the
/// model's and the input view's spread votes with only those voting. When
/// all count these are the plain votes, `given` (the model's, the input
/// view's) when the caller has them.
pub fn votes_of_both<'a>(
    f: &Features,
    (model, view): (&Neighbors, &InputView),
    voting: &[bool],
    given: (Option<&'a VoteRows>, Option<&'a VoteRows>),
) -> (Cow<'a, VoteRows>, Cow<'a, VoteRows>, Vec<bool>) {
    let counted: Vec<bool> = (0..f.labels.len())
        .map(|i| voting[i] && view.valid[i])
        .collect();
    let mask = counted.iter().any(|&c| !c).then_some(counted.as_slice());
    let rows = |nb: &Neighbors, given: Option<&'a VoteRows>| match (mask, given) {
        (None, Some(rows)) => Cow::Borrowed(rows),
        _ => Cow::Owned(spread_rows(f, nb, mask)),
    };
    let by_model = rows(model, given.0);
    let by_look = rows(&view.nb, given.1);
    (by_model, by_look, counted)
}

/// Every sample both views doubt, with its evidence (before the budget).
fn tested(
    f: &Features,
    rows: (&VoteRows, &VoteRows),
    counted: &[bool],
    natives: Natives,
) -> Vec<Option<TwoViews>> {
    let n = f.labels.len();
    let (by_model, by_look) = rows;
    let candidates: Vec<Option<u32>> = (0..n)
        .into_par_iter()
        .map(|i| {
            (counted[i])
                .then(|| both_doubt(rows, f.labels[i], i))
                .flatten()
        })
        .collect();
    let nulls = pair_nulls(f, rows, counted, &candidates, natives);
    let others = f.n_classes.saturating_sub(1).max(1) as f64;
    (0..n)
        .map(|i| {
            let d = candidates[i]?;
            let c = f.labels[i];
            let (null_model, null_look) = nulls.get(&(c, d))?;
            let model = (by_model.share(i, d), by_model.share(i, c));
            let look = (by_look.share(i, d), by_look.share(i, c));
            let model_rank = (at_least(null_model, model.0), null_model.len());
            let look_rank = (at_least(null_look, look.0), null_look.len());
            let p = (fisher(rank_p(model_rank), rank_p(look_rank)) * others).min(1.0);
            Some(TwoViews {
                other: d,
                model,
                look,
                model_rank,
                look_rank,
                p,
            })
        })
        .collect()
}

/// The class both views of sample `i` (labelled `c`) put above `c`, the
/// one with the largest product of their shares; None when no class is
/// above `c` in both.
fn both_doubt((by_model, by_look): (&VoteRows, &VoteRows), c: u32, i: usize) -> Option<u32> {
    let (own_model, own_look) = (by_model.share(i, c), by_look.share(i, c));
    by_model
        .entries(i)
        .into_iter()
        .filter(|&(d, m)| d != c && m > own_model)
        .filter_map(|(d, m)| {
            let l = by_look.share(i, d);
            (l > own_look).then_some((d, m * l))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(d, _)| d)
}

/// For every (label, other class) pair some sample doubts: the model's
/// shares for the other class among the label's images that look like it,
/// and the input view's shares for it among those the model places firmly
/// with the label — each sorted, each of at least `natives.min` images.
fn pair_nulls(
    f: &Features,
    (by_model, by_look): (&VoteRows, &VoteRows),
    counted: &[bool],
    candidates: &[Option<u32>],
    natives: Natives,
) -> BTreeMap<(u32, u32), (Vec<f64>, Vec<f64>)> {
    let mut pairs: BTreeMap<(u32, u32), (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for (i, d) in candidates.iter().enumerate() {
        if let Some(d) = *d {
            pairs.entry((f.labels[i], d)).or_default();
        }
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); f.n_classes];
    for (i, &l) in f.labels.iter().enumerate() {
        if counted[i] {
            by_class[l as usize].push(i);
        }
    }
    pairs.par_iter_mut().for_each(|(&(c, d), (model, look))| {
        for &j in &by_class[c as usize] {
            if by_look.share(j, c) >= natives.share {
                model.push(by_model.share(j, d));
            }
            if by_model.share(j, c) >= natives.share {
                look.push(by_look.share(j, d));
            }
        }
        model.sort_by(f64::total_cmp);
        look.sort_by(f64::total_cmp);
    });
    pairs.retain(|_, (model, look)| model.len() >= natives.min && look.len() >= natives.min);
    pairs
}

/// How many of the sorted `null` are at least `x`.
fn at_least(null: &[f64], x: f64) -> usize {
    null.len() - null.partition_point(|&v| v < x)
}

/// A rank's p-value: (as many + 1) / (null + 1).
fn rank_p((as_many, of): (usize, usize)) -> f64 {
    (as_many + 1) as f64 / (of + 1) as f64
}

/// Fisher's combination of two p-values: the chance of a product this
/// small, P(χ²₄ ≥ −2 ln(a·b)) = a·b·(1 − ln(a·b)).
fn fisher(a: f64, b: f64) -> f64 {
    let q = (a * b).clamp(f64::MIN_POSITIVE, 1.0);
    (q * (1.0 - q.ln())).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knn::knn;
    use crate::linalg::{Matrix, XorShift};

    const NATIVES: Natives = Natives {
        share: 0.2,
        min: 20,
    };

    /// Three classes as blobs in two views; `model_at(i)` and
    /// `look_at(i)` say which class's blob sample `i` sits in, in each view.
    fn two_views(
        labels: &[u32],
        model_at: impl Fn(usize) -> u32,
        look_at: impl Fn(usize) -> u32,
    ) -> (Features, Neighbors, InputView) {
        let n = labels.len();
        let mut rng = XorShift::new(7);
        let mut blob = |c: u32| {
            let (x, y) = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)][c as usize];
            [x + rng.normal(), y + rng.normal()]
        };
        let model: Vec<f32> = (0..n).flat_map(|i| blob(model_at(i))).collect();
        let look: Vec<f32> = (0..n).flat_map(|i| blob(look_at(i))).collect();
        let f = Features {
            matrix: Matrix::new(n, 2, model).into(),
            labels: labels.to_vec(),
            n_classes: 3,
            class_names: vec!["a".into(), "b".into(), "c".into()],
            ids: (0..n).map(|i| i.to_string()).collect(),
        };
        let nb = knn(&f.matrix, 10);
        let look = Matrix::new(n, 2, look);
        let view = InputView {
            nb: knn(&look, 10),
            matrix: look,
            valid: vec![true; n],
        };
        (f, nb, view)
    }

    /// Forty images of class 0 relabelled 1 sit with class 0 in both
    /// views, and are found, with 0 suggested. Forty images of class 2
    /// that look like class 1 but that the model places with class 2 (a
    /// natural look-alike the model tells apart) are not, nor is any
    /// correctly labelled image.
    #[test]
    fn flips_both_views_place_with_their_source_are_found() {
        let true_class = |i: usize| (i / 400) as u32;
        let flipped = |i: usize| i < 40;
        let lookalike = |i: usize| (800..840).contains(&i);
        let labels: Vec<u32> = (0..1200)
            .map(|i| if flipped(i) { 1 } else { true_class(i) })
            .collect();
        let look_at = |i: usize| if lookalike(i) { 1 } else { true_class(i) };
        let (f, nb, view) = two_views(&labels, true_class, look_at);
        let (by_model, by_look, counted) =
            votes_of_both(&f, (&nb, &view), &[true; 1200], (None, None));
        let found = disputed_by_both(&f, (&by_model, &by_look), &counted, NATIVES, 0.05);
        let hits: Vec<usize> = (0..1200).filter(|&i| found[i].is_some()).collect();
        assert!(hits.iter().all(|&i| flipped(i)), "clean flagged: {hits:?}");
        assert!(hits.len() >= 30, "only {} of 40 flips", hits.len());
        assert!(hits.iter().all(|&i| found[i].unwrap().other == 0));
    }

    /// Thirty copies of three class-0 images labelled 1 outvote, in both
    /// views, the originals they copy (both views doubt them, far beyond
    /// their class's null); kept from voting, they do not.
    #[test]
    fn copies_kept_from_voting_do_not_flag_their_originals() {
        let n = 630;
        let copy = |i: usize| i >= 600;
        let labels: Vec<u32> = (0..n)
            .map(|i| if copy(i) { 1 } else { (i / 200) as u32 })
            .collect();
        let at = |i: usize| if copy(i) { 0 } else { (i / 200) as u32 };
        let (f, _, mut view) = two_views(&labels, at, at);
        // Ten copies sit on each of the first three originals, in both views.
        let mut model = (*f.matrix).clone();
        for m in [&mut model, &mut view.matrix] {
            for i in 600..n {
                let original = (i - 600) % 3;
                for col in 0..2 {
                    m.data[i * 2 + col] = m.data[original * 2 + col] + 1e-3 * (i - 600) as f32;
                }
            }
        }
        let f = Features {
            matrix: model.into(),
            ..f
        };
        let nb = knn(&f.matrix, 10);
        view.nb = knn(&view.matrix, 10);
        let doubted = |voting: &[bool]| {
            let (by_model, by_look, counted) =
                votes_of_both(&f, (&nb, &view), voting, (None, None));
            let found = tested(&f, (&by_model, &by_look), &counted, NATIVES);
            (0..3)
                .filter(|&i| found[i].is_some_and(|t| t.p < 0.01))
                .count()
        };
        assert_eq!(doubted(&[true; 630]), 3, "the copies outvote nothing");
        let voting: Vec<bool> = (0..n).map(|i| !copy(i)).collect();
        assert_eq!(doubted(&voting), 0);
    }

    /// Fisher's method for two p-values agrees with the chi-square tail it
    /// stands for (four degrees of freedom: e^(−t/2)(1 + t/2)).
    #[test]
    fn fisher_matches_the_chi_square_tail() {
        for (a, b) in [(0.5f64, 0.5f64), (0.01, 0.2), (1e-4, 0.03), (1.0, 1.0)] {
            let t: f64 = -2.0 * (a * b).ln();
            let want = (-t / 2.0).exp() * (1.0 + t / 2.0);
            assert!((fisher(a, b) - want).abs() < 1e-12, "{a} {b}");
        }
        assert!((fisher(1.0, 1.0) - 1.0).abs() < 1e-12);
        assert!(fisher(0.0, 0.5) >= 0.0);
    }

    #[test]
    fn a_rank_counts_ties_as_at_least() {
        let null = [0.1, 0.2, 0.2, 0.5];
        assert_eq!(at_least(&null, 0.2), 3);
        assert_eq!(at_least(&null, 0.6), 0);
        assert_eq!(at_least(&null, 0.0), 4);
        assert!((rank_p((0, 4)) - 0.2).abs() < 1e-12);
    }
}
