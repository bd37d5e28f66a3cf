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
//! How low a correct label's vote goes depends on the model: a weak one
//! mixes its classes and leaves clean images at a few percent by the
//! dozen. So with images a flag must also be rare for its class: the
//! votes of the class's images that look like it in the input view are
//! its null, and a doubted vote passes when Benjamini–Hochberg at the
//! scan's false-flag budget keeps its p-value under that null
//! (`rare_for_class`). Where hundreds of labels are doubted at once —
//! bulk random flips, whose neighbourhoods share their wrong labels and so
//! vote above the bar — a label whose vote few of its class's
//! native-looking images reach is flagged too (a rank test against the
//! same null, at the same budget).
//!
//! Labels flipped in bulk shield each other from that per-sample check
//! (a quarter of a flipped bag's neighbours carry its wrong label too);
//! with images, [`flip_groups`] finds them as a group (and the flips the
//! group hid), and the check flags them, suggesting the class they look
//! like.
//!
//! A model trained on flipped labels half learns them, and a flip it half
//! learnt votes for its wrong label about as much as a weak model's clean
//! images do. With embeddings and images, [`two_views`] flags the labels
//! both views dispute — the model's neighbourhood and what the image looks
//! like both put one other class above the label — each beyond what the
//! label's images vouched for by the other view show for that same pair
//! of classes, at the same budget.

use super::detector::{Calibration, Detector, DetectorInfo, Evidence, Role, ScanContext};
use super::duplicates;
use super::flip_groups::{self, FlipGroup};
use super::input_view::InputView;
use super::two_views::{self, Natives, TwoViews};
use super::votes::{VoteRows, Votes, read_votes, spread_rows};
use super::{DetectorScores, Features};
use crate::stats::{TailFit, benjamini_hochberg};

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
        // From pixel features the input view is the features' own space: no
        // image's look is a second opinion, so none withholds a flag and the
        // class's null is all its images (natives picked by the same view
        // vote high by construction: 10% of clean sets were flagged).
        let none_native = vec![false; ctx.len()];
        let look_rows = ctx.view.map(|v| spread_rows(ctx.features, &v.nb, None));
        let looks = ctx.view.zip(look_rows.as_ref()).map(|(v, rows)| {
            let valid = if ctx.from_pixels {
                none_native.as_slice()
            } else {
                v.valid.as_slice()
            };
            (read_votes(ctx.features, rows), valid)
        });
        let looks = looks.as_ref().map(|(votes, valid)| Looks { votes, valid });
        let mut scores = flag(ctx.features, ctx.votes, looks, ctx.options.fdr);
        if let Some(view) = ctx.view {
            let model = (ctx.neighbours, !ctx.from_pixels);
            let groups = flip_groups::find(&ctx.features.labels, view, model, ctx.options.fdr);
            flag_groups(
                &mut scores,
                &groups,
                &ctx.features.class_names,
                ctx.options.fdr,
            );
            if !ctx.from_pixels {
                let found = disputed_by_both(ctx, view, look_rows.as_ref());
                let f = ctx.features;
                flag_both_views(
                    &mut scores,
                    &found,
                    (&f.labels, &f.class_names),
                    ctx.options.fdr,
                );
            }
        }
        Evidence::scores(scores)
    }
}

/// The labels both views dispute ([`two_views`]), with the near-copies the
/// duplicate detector flags kept from voting (it runs after this one, and
/// takes a few milliseconds beside it); `look_rows`: the input view's
/// votes with every sample voting (the model's are in `ctx`).
fn disputed_by_both(
    ctx: &ScanContext,
    view: &InputView,
    look_rows: Option<&VoteRows>,
) -> Vec<Option<TwoViews>> {
    let (f, fdr) = (ctx.features, ctx.options.fdr);
    let copies = duplicates::run(f, ctx.digests, Some(view), ctx.neighbours, fdr);
    let voting: Vec<bool> = copies.flagged.iter().map(|&c| !c).collect();
    let given = (ctx.vote_rows, look_rows);
    let (by_model, by_look, counted) =
        two_views::votes_of_both(f, (ctx.neighbours, view), &voting, given);
    let natives = Natives {
        share: LOOKS_NATIVE,
        min: NULL_MIN,
    };
    two_views::disputed_by_both(f, (&by_model, &by_look), &counted, natives, fdr)
}

/// Flags the labels both views dispute that no other check here flagged,
/// suggesting the class both put above the label.
fn flag_both_views(
    scores: &mut DetectorScores,
    found: &[Option<TwoViews>],
    (labels, names): (&[u32], &[String]),
    fdr: f64,
) {
    for (i, t) in found.iter().enumerate() {
        let Some(t) = t else { continue };
        if scores.flagged[i] {
            continue;
        }
        let pair = (
            names[labels[i] as usize].as_str(),
            names[t.other as usize].as_str(),
        );
        let reason = both_views_reason(t, pair, names.len().saturating_sub(1));
        raise(scores, i, (strength(t.p, fdr), t.other), reason);
    }
}

/// A label both views dispute, in words; `others`: the classes the one
/// both views name was chosen from.
fn both_views_reason(t: &TwoViews, (given, other): (&str, &str), others: usize) -> String {
    let pct = |v: f64| format!("{:.0}%", 100.0 * v);
    format!(
        "both views say '{other}', not '{given}': its neighbours in the model's view give '{other}' {} ('{given}' {}) — {} of the {} images that look like '{given}' give it as much — and its look-alikes in pixel space give '{other}' {} ('{given}' {}) — {} of the {} '{given}' images the model places firmly among '{given}' look that much like it: label looks flipped (both views together p = {:.1e}, over the {others} classes it could have been)",
        pct(t.model.0),
        pct(t.model.1),
        t.model_rank.0,
        t.model_rank.1,
        pct(t.look.0),
        pct(t.look.1),
        t.look_rank.0,
        t.look_rank.1,
        t.p,
    )
}

/// Flags the members of labels flipped in bulk ([`flip_groups`]) that the
/// per-sample check left, and the images that joined them, suggesting the
/// class they look like; the suspicion grows from 0.5 at the false-flag
/// budget `fdr` to 1 as the group's one-way count becomes certain.
fn flag_groups(scores: &mut DetectorScores, groups: &[FlipGroup], names: &[String], fdr: f64) {
    for g in groups {
        let strength = strength(g.p_value, fdr);
        let why = group_reason(g, names);
        let (given, looks) = (&names[g.given as usize], &names[g.looks as usize]);
        let joined = format!(
            "labelled '{given}', its look-alikes carry '{looks}' more than '{given}' once the group's images are read as '{looks}' (more images join it so than the other way round); the group: {why}"
        );
        let member = format!("one of {why}");
        let members = g.members.iter().map(|&i| (i, member.as_str()));
        let joiners = g.joined.iter().map(|&i| (i, joined.as_str()));
        for (i, reason) in members.chain(joiners) {
            if !scores.flagged[i] {
                raise(scores, i, (strength, g.looks), reason.to_string());
            }
        }
    }
}

/// The suspicion of a flag whose evidence reached p-value `p` under the
/// false-flag budget `fdr`: 0.5 at the budget, growing to 1 as `p` falls.
fn strength(p: f64, fdr: f64) -> f32 {
    (0.5 + 0.5 * (1.0 - p / fdr).clamp(0.0, 1.0)) as f32
}

/// Flags sample `i` with `score`, the class `suggested` and `reason`.
fn raise(scores: &mut DetectorScores, i: usize, (score, suggested): (f32, u32), reason: String) {
    scores.flagged[i] = true;
    scores.score[i] = score;
    scores.suggested.set(i, suggested);
    scores.reasons.set(i, reason);
}

/// The group `g` and its evidence, in words (a member's reason is "one
/// of" this).
fn group_reason(g: &FlipGroup, names: &[String]) -> String {
    let (given, looks) = (&names[g.given as usize], &names[g.looks as usize]);
    let chance = if g.nearer >= flip_groups::MAX_NEARER {
        format!(", within chance for {} images", g.members.len())
    } else {
        String::new()
    };
    let n = g.members.len();
    let (on_look, on_label) = g.model_sides;
    // A group the model's view enlarged says which members came from
    // which view; the model's own count is of those pixel space chose.
    let (which, sides) = if g.alike < n {
        (
            format!(
                "that look like '{looks}' in pixel space ({}) or that the model places among '{looks}' images ({})",
                g.alike,
                n - g.alike
            ),
            format!(
                "of the {} that look like it the model itself places {on_look} among '{looks}' images, {on_label} among '{given}'",
                g.alike
            ),
        )
    } else {
        (
            format!("that look like '{looks}' in pixel space"),
            format!(
                "the model itself places {on_look} of them among '{looks}' images, {on_label} among '{given}'"
            ),
        )
    };
    format!(
        "{n} images labelled '{given}' {which}, where the two classes otherwise stay apart ({:.1}% of their look-alikes look like the other class, both ways added), spread like a random sample of '{looks}' ({:.0}% chance to lie nearer the '{given}' images than a '{looks}' image does, 50% for a random sample{chance}), {} the other way, and {sides}: labels flipped from '{looks}' in bulk",
        100.0 * g.touching,
        100.0 * g.nearer,
        g.the_other_way,
    )
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
/// input view (`looks`, when images were read); with images, a flag must
/// also be rare for its class at the false-flag budget `fdr`, and a label
/// doubted less is flagged where many are doubted as much
/// (`rare_for_class`).
pub fn flag(f: &Features, votes: &Votes, looks: Option<Looks>, fdr: f64) -> DetectorScores {
    let n = f.labels.len();
    let mut scores = DetectorScores::new(INFO.name, n);
    let disputed: Vec<bool> = (0..n)
        .map(|i| votes.label[i] != f.labels[i] && !looks.is_some_and(|l| l.native(i)))
        .collect();
    let doubted: Vec<bool> = (0..n)
        .map(|i| disputed[i] && votes.p_given[i] <= THRESHOLD)
        .collect();
    let rare = looks.map(|l| rare_for_class(&f.labels, votes, l, (&disputed, &doubted), fdr));
    for i in 0..n {
        let given = f.labels[i] as usize;
        let (best, bp, pg) = (
            votes.label[i] as usize,
            f64::from(votes.confidence[i]),
            votes.p_given[i],
        );
        let why = rare.as_ref().map(|r| r[i]);
        let flag = match why {
            None => doubted[i],
            Some(why) => why.is_some(),
        };
        scores.score[i] = if flag {
            calibrate(pg).max(0.5)
        } else {
            calibrate(pg).min(0.499)
        } as f32;
        if flag {
            scores.flagged[i] = true;
            let look = &f.class_names[given];
            let rarity = match why.flatten() {
                None => String::new(),
                Some(Rare::Fitted(p)) => {
                    // A fitted tail's p-value below one in a million says
                    // only "far out"; its digits would claim more.
                    let p = if p < 1e-6 {
                        "p < 1e-6".to_string()
                    } else {
                        format!("p = {p:.1e}")
                    };
                    format!(" (so low a share is rare among images that look like '{look}': {p})")
                }
                Some(Rare::Ranked { below, of }) => format!(
                    " (only {below} of the {of} images that look like '{look}' have so low a share, and hundreds of labels here are doubted as much)"
                ),
            };
            scores.reasons.set(
                i,
                format!(
                    "its neighbours say '{}' ({:.0}%), not '{}' ({:.0}%): label looks flipped{rarity}",
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

/// Fewest images of a class that look like it from which its null is
/// taken; with fewer, the class's own images are used, all of them.
const NULL_MIN: usize = 20;

/// Why a doubted label is rare for its class ([`rare_for_class`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rare {
    /// Its vote's lower-tail p-value under the fit to the class's null.
    Fitted(f64),
    /// Only `below` of the `of` images of the class's null vote as low.
    Ranked { below: usize, of: usize },
}

/// Which labels are rare for their class, and why; None for the rest.
///
/// How low the model's neighbourhood vote for a correct label goes
/// depends on the model. A weak model (65% accurate on 60-pixel colour
/// images) mixes its classes, and clean images' votes for their label fall
/// under [`THRESHOLD`] by the dozen; a strong one keeps them near 1. The
/// class's own images that look like their label in the input view (at
/// least [`LOOKS_NATIVE`] of its vote: a flipped image does not) show how
/// its correct labels vote — the class's null — and Benjamini–Hochberg
/// over all samples at the scan's budget `fdr` keeps, two ways:
/// - **fitted**: a `doubted` vote (at most [`THRESHOLD`]) whose lower-tail
///   p-value under a tail fitted to the lowest fifth of the log-odds of
///   the null's votes ([`TailFit`]: exponential until session 29, now a
///   generalized Pareto tail whose shape the null's own tail gives, so a
///   weak model's heavy tail no longer makes odd clean images look
///   impossible — 101 sets, mean F1 0.8778 → 0.8819) passes. Session 19, 165
///   poisoned sets: mean F1 0.874 → 0.901, 117 higher, 10 lower (flip
///   sets: z3104 0.66 → 0.62, z2403 0.69 → 0.65, z1110 0.05 → 0.00),
///   clean sets flagged at most 1.10% → 0.40%, against a robust normal
///   fit (median, MAD) whose tail was far thinner than the null's own
///   (session 18, which had brought 1.33% → 1.10% against no null).
///   Fitted to every image of the class instead, a class holding many
///   flips widens its own null and loses them (z2803 0.20 → 0.05).
/// - **ranked**: a `disputed` vote (any; another class above it) that few
///   of the null reach: p-value (null votes as low + 1) / (null + 1). With
///   a null of a few hundred images that passes only where a couple of
///   hundred labels are doubted that much at once — labels flipped at
///   random at a high rate, whose neighbourhoods share their wrong labels
///   and so vote above the bar. The null is cleaner than the clean images
///   that do not look like their class, so these flags are not held to
///   the budget: measured, 45–62% of them are flips (sets whose flips are
///   ~20% of the data). Session 18: 136 sets, 230 flips more for 161 clean
///   flags (z1907 0.75 → 0.82, z2811 0.76 → 0.80, z2706 0.77 → 0.80, z1001
///   0.79 → 0.83; the devset `flip` 0.83 → 0.82), no clean set flagged
///   more; the unseen draw 3000: z3000 0.72 → 0.80, z3001 0.77 → 0.84;
///   draw 2900: z2903 0.83 both (73 flags more, 32 flips).
fn rare_for_class(
    labels: &[u32],
    votes: &Votes,
    looks: Looks,
    (disputed, doubted): (&[bool], &[bool]),
    fdr: f64,
) -> Vec<Option<Rare>> {
    let n = labels.len();
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let mut natives = vec![Vec::new(); classes];
    let mut every = vec![Vec::new(); classes];
    for i in 0..n {
        every[labels[i] as usize].push(votes.p_given[i]);
        if looks.native(i) {
            natives[labels[i] as usize].push(votes.p_given[i]);
        }
    }
    let null: Vec<Vec<f64>> = natives
        .into_iter()
        .zip(every)
        .map(|(native, every)| {
            let mut v = if native.len() >= NULL_MIN {
                native
            } else {
                every
            };
            v.sort_by(f64::total_cmp);
            v
        })
        .collect();
    let fits: Vec<Option<TailFit>> = null
        .iter()
        .map(|v| TailFit::fit(&v.iter().map(|&p| log_odds(p)).collect::<Vec<_>>(), 1e-3))
        .collect();
    // Per sample: how many of its class's null vote as low, of how many.
    let ranks: Vec<(usize, usize)> = (0..n)
        .map(|i| {
            let null = &null[labels[i] as usize];
            (null.partition_point(|&v| v <= votes.p_given[i]), null.len())
        })
        .collect();
    let fitted: Vec<f64> = (0..n)
        .map(|i| match (doubted[i], fits[labels[i] as usize]) {
            (true, Some(fit)) => fit.p_low(log_odds(votes.p_given[i])),
            _ => 1.0,
        })
        .collect();
    let ranked: Vec<f64> = (0..n)
        .map(|i| {
            let (below, of) = ranks[i];
            if disputed[i] && of >= NULL_MIN {
                (below + 1) as f64 / (of + 1) as f64
            } else {
                1.0
            }
        })
        .collect();
    let (by_fit, _) = benjamini_hochberg(&fitted, fdr);
    let (by_rank, _) = benjamini_hochberg(&ranked, fdr);
    (0..n)
        .map(|i| {
            if doubted[i] && by_fit[i] {
                Some(Rare::Fitted(fitted[i]))
            } else if disputed[i] && by_rank[i] && ranked[i] < 1.0 {
                let (below, of) = ranks[i];
                Some(Rare::Ranked { below, of })
            } else {
                None
            }
        })
        .collect()
}

/// The log-odds of a share, kept finite.
fn log_odds(p: f64) -> f64 {
    let p = p.clamp(1e-4, 1.0 - 1e-4);
    (p / (1.0 - p)).ln()
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

    /// Samples of three classes with the given labels; only the labels
    /// matter to the flags.
    fn features_of(labels: Vec<u32>) -> Features {
        let n = labels.len();
        Features {
            matrix: Matrix::new(n, 1, vec![0.0; n]).into(),
            labels,
            n_classes: 3,
            class_names: (0..3).map(|c| format!("c{c}")).collect(),
            ids: (0..n).map(|i| i.to_string()).collect(),
        }
    }

    /// Four samples of three classes (labels 0, 1, 2, 0).
    fn features() -> Features {
        features_of(vec![0, 1, 2, 0])
    }

    /// Votes that put every sample's label at `p` (another class above).
    fn votes(labels: &[u32], p: &[f64]) -> Votes {
        Votes {
            label: labels.iter().map(|&l| (l + 1) % 3).collect(),
            confidence: p.iter().map(|&p| (1.0 - p) as f32).collect(),
            p_given: p.to_vec(),
        }
    }

    /// `labels` followed by `per_class` images of each class that look
    /// like it (input vote 0.9) with model votes for their label from
    /// `native` (called with 0..per_class): the class's null.
    fn with_natives(
        labels: &[u32],
        per_class: usize,
        native: impl Fn(usize) -> f64,
    ) -> (Features, Vec<f64>, Vec<f64>) {
        let mut all = labels.to_vec();
        let mut model = vec![f64::NAN; labels.len()];
        for c in 0..3 {
            for k in 0..per_class {
                all.push(c);
                model.push(native(k));
            }
        }
        let input = vec![0.9; all.len()];
        (features_of(all), model, input)
    }

    /// [`flag`] at a budget of 5% with the model's and the input view's
    /// votes for every label (`model_p`, `view_p`) and the readable images.
    fn flag_seen(f: &Features, model_p: &[f64], view_p: &[f64], valid: &[bool]) -> DetectorScores {
        let (model, view) = (votes(&f.labels, model_p), votes(&f.labels, view_p));
        let looks = Looks {
            votes: &view,
            valid,
        };
        flag(f, &model, Some(looks), 0.05)
    }

    #[test]
    fn a_sample_that_looks_like_its_label_is_not_flagged() {
        // Natives whose labels the model's neighbours back (90–99%).
        let (f, mut model_p, mut view_p) =
            with_natives(&[0, 1, 2, 1], 30, |k| 0.9 + 0.003 * k as f64);
        // The model's neighbours doubt the first four labels (3%).
        model_p[..4].copy_from_slice(&[0.03; 4]);
        // The input view: 0 looks like its label, 1 does not, 2 just
        // reaches the bar, 3's image was unreadable. (0 and 2 join their
        // class's null with their 3%: another 3% there is not rare. 3 is
        // labelled 1, whose null votes high.)
        view_p[..4].copy_from_slice(&[0.6, 0.05, LOOKS_NATIVE, 0.9]);
        let mut valid = vec![true; f.labels.len()];
        valid[3] = false;
        let s = flag_seen(&f, &model_p, &view_p, &valid);
        assert_eq!(s.flagged[..4], [false, true, false, true]);
        assert!(s.flagged[4..].iter().all(|&x| !x));
        assert!(s.reason(1).is_some_and(|r| r.contains("flipped")
            && r.contains("rare")
            && r.contains("p < 1e-6")));
        // Without images every doubted label is flagged.
        let s = flag(&f, &votes(&f.labels, &model_p), None, 0.05);
        assert_eq!(s.flagged[..4], [true; 4]);
    }

    #[test]
    fn a_low_vote_is_flagged_only_where_the_class_votes_high() {
        // A weak model: images that look like their class get anything
        // from 1% to 88% of their neighbours' vote; a doubted image's 3%
        // is common there. A strong one (90–99%): 3% is rare.
        let doubted = [0, 1, 2];
        let weak = |k: usize| 0.01 + 0.03 * k as f64;
        let strong = |k: usize| 0.9 + 0.003 * k as f64;
        for (native, flagged) in [(weak as fn(usize) -> f64, false), (strong, true)] {
            let (f, mut model_p, mut view_p) = with_natives(&doubted, 30, native);
            model_p[..3].copy_from_slice(&[0.03; 3]);
            view_p[..3].copy_from_slice(&[0.05; 3]);
            let s = flag_seen(&f, &model_p, &view_p, &vec![true; f.labels.len()]);
            assert_eq!(s.flagged[..3], [flagged; 3], "{:?}", &model_p[..3]);
            // Not flagged, its suspicion stays under one half.
            assert_eq!(s.score[0] >= 0.5, flagged);
        }
    }

    #[test]
    fn a_vote_the_class_null_s_own_tail_reaches_is_not_flagged() {
        // Most images that look like their class get 90–99% of the vote,
        // but 30 of 200 trail off from 30% to 8%: the null's tail is long,
        // and a clean image that looks unlike its class can fall a little
        // further. A normal fit to the null's middle (z ≈ −9.5 for 3%)
        // would call 3% impossible; the tail itself says it is not.
        let doubted = [0, 1, 2];
        let long_tail = |k: usize| {
            if k < 170 {
                0.9 + 0.09 * k as f64 / 170.0
            } else {
                0.3 - 0.22 * (k - 170) as f64 / 29.0
            }
        };
        let (f, mut model_p, mut view_p) = with_natives(&doubted, 200, long_tail);
        model_p[..3].copy_from_slice(&[0.03; 3]);
        view_p[..3].copy_from_slice(&[0.05; 3]);
        let s = flag_seen(&f, &model_p, &view_p, &vec![true; f.labels.len()]);
        assert_eq!(s.flagged[..3], [false; 3]);
    }

    #[test]
    fn labels_doubted_less_are_flagged_only_where_hundreds_are() {
        // Images labelled 0 whose neighbours give their label 10% (above
        // the bar) and that do not look like it, beside 300 of each class
        // that look like theirs and get 50–99%. A few such labels are
        // natural confusion; 250 at once are labels flipped in bulk.
        for (doubted, flagged) in [(5usize, false), (250, true)] {
            let (f, mut model_p, mut view_p) =
                with_natives(&vec![0; doubted], 300, |k| 0.5 + 0.49 * k as f64 / 300.0);
            model_p[..doubted].fill(0.1);
            view_p[..doubted].fill(0.05);
            let s = flag_seen(&f, &model_p, &view_p, &vec![true; f.labels.len()]);
            assert!(
                s.flagged[..doubted].iter().all(|&x| x == flagged),
                "{doubted}"
            );
            assert!(s.flagged[doubted..].iter().all(|&x| !x));
            if flagged {
                let r = s.reason(0).unwrap();
                assert!(r.contains("only 0 of the 300"), "{r}");
                assert!(s.score[0] >= 0.5);
            }
        }
    }

    #[test]
    fn a_flipped_group_flags_its_members_and_suggests_their_look() {
        let f = features();
        let mut s = flag(&f, &votes(&f.labels, &[0.9; 4]), None, 0.05);
        s.flagged[3] = true;
        let group = FlipGroup {
            given: 0,
            looks: 2,
            members: vec![0, 3],
            nearer: 0.5,
            touching: 0.0,
            the_other_way: 0,
            p_value: 0.001,
            alike: 2,
            model_sides: (9, 1),
            joined: Vec::new(),
        };
        flag_groups(&mut s, std::slice::from_ref(&group), &f.class_names, 0.05);
        assert_eq!(s.flagged, vec![true, false, false, true]);
        assert_eq!(s.suggestion(0), Some(2));
        assert!(
            s.reason(0).is_some_and(|r| r.contains("in bulk")
                && r.contains("the model itself places 9 of them among 'c2' images, 1 among 'c0'")),
            "{:?}",
            s.reason(0)
        );
        // A group the model's view enlarged says which members came from
        // which view, and of whom the model's count is.
        let mut second = flag(&f, &votes(&f.labels, &[0.9; 4]), None, 0.05);
        let enlarged = FlipGroup {
            alike: 1,
            ..group.clone()
        };
        flag_groups(&mut second, &[enlarged], &f.class_names, 0.05);
        assert!(
            second.reason(0).is_some_and(|r| r.contains(
                "2 images labelled 'c0' that look like 'c2' in pixel space (1) or that the model places among 'c2' images (1)"
            ) && r.contains("of the 1 that look like it the model itself places 9 among 'c2' images")),
            "{:?}",
            second.reason(0)
        );
        // A member flagged already keeps what it had.
        assert_eq!((s.suggestion(3), s.reason(3)), (None, None));
        // An image that joined the group is flagged for it, and says how.
        let mut s = flag(&f, &votes(&f.labels, &[0.9; 4]), None, 0.05);
        let with_joiner = FlipGroup {
            joined: vec![1],
            ..group.clone()
        };
        flag_groups(&mut s, &[with_joiner], &f.class_names, 0.05);
        assert_eq!(s.flagged, vec![true, true, false, true]);
        assert_eq!(s.suggestion(1), Some(2));
        assert!(
            s.reason(1).is_some_and(|r| r.starts_with("labelled 'c0'")
                && r.contains("once the group's images are read as 'c2'")
                && r.contains("the group: 2 images labelled 'c0'")
                && r.contains("in bulk")),
            "{:?}",
            s.reason(1)
        );
        // p 0.001 against a budget of 0.05: strong.
        assert!((s.score[0] - 0.99).abs() < 1e-6, "{}", s.score[0]);
        assert!(!s.reason(0).unwrap().contains("within chance"));
        // A group that reads nearer than the bar (accepted for its size)
        // says why it still counts as a random sample.
        let mut s = flag(&f, &votes(&f.labels, &[0.9; 4]), None, 0.05);
        let nearer = FlipGroup {
            nearer: 0.6,
            ..group
        };
        flag_groups(&mut s, &[nearer], &f.class_names, 0.05);
        assert!(
            s.reason(0).is_some_and(
                |r| r.contains("60% chance") && r.contains("within chance for 2 images")
            ),
            "{:?}",
            s.reason(0)
        );
    }
}
