//! Labels flipped in bulk from one class to another, found as a group.
//!
//! When a quarter of the bags are relabelled Sandal, every flipped bag has
//! other flipped bags among its look-alikes: a quarter of its neighbours
//! carry "Sandal" in the model's view and in the input view alike, so no
//! neighbourhood doubts its label enough for the per-sample check (the
//! flips shield each other). What gives them away is the group. Take the
//! images labelled `g` that look like class `a` (most of their input-view
//! neighbours carry `a`). Natural confusion makes such a group too — the
//! shirts that look like coats — but only where the two classes touch.
//! So a group is flagged when all three hold:
//! - **the classes are apart**: the images that look like `g` make up, on
//!   average, a share of the neighbours of an image that looks like `a`,
//!   and the other way round; the two shares add up to less than one
//!   neighbour's (1/k). Then nothing natural puts `g` images among the
//!   `a` ones, and the group is unexplained but by relabelling.
//! - **the group is spread as a random sample of `a`**: relabelling picks
//!   images of `a` at random, so a member is no likelier to lie nearer to
//!   the `g`-looking images than an image of `a` is — that chance stays
//!   below [`MAX_NEARER`] (0.5 for a random sample; the odd images of `a`
//!   that happen to look like `g` lie nearer), or, for a group too small
//!   for its chance to mean much, is neither above 0.5 (at the fixed
//!   [`VETO_LEVEL`]) nor below a natural group's [`NATURAL_NEARER`] by
//!   more than chance at the budget (one-sided Mann–Whitney tests: 31 sandals flipped
//!   to Shirt read 0.59, which a random sample of 31 reaches one time in
//!   sixteen).
//! - **it goes one way**: between classes that stay apart, odd images
//!   look like the other class about as often both ways (a strange bag
//!   like a sandal, a strange sandal like a bag); relabelling moves many
//!   one way. The group's size against the count the other way is a fair
//!   coin's tail, and it must stay within the scan's false-flag budget
//!   after Holm's step-down correction over the groups that passed the
//!   first two tests (a Bonferroni correction until session 26).
//!
//! And one test in the model's own view: **the model places them among
//! the class they look like**. A flipped image is one the model had to
//! memorise; in its embedding it still sits among the class it came from.
//! Natural look-alikes (T-shirts that look like pullovers) are learnt as
//! what they are labelled: a group stands only if more of its members have
//! more model neighbours carrying the class they look like than their
//! label than the other way round ([`FlipGroup::takes_in`]); a flagged
//! group's reason says how many of its members the model places each way.
//! (So is a backdoor's carriers' group withheld — the model learnt the
//! trigger as the label; the trigger search flags those.) Session 17, over
//! 136 sets, withholding a group only where the model placed more among
//! the label beyond a fair coin (a sign test at [`VETO_LEVEL`]): 38 clean
//! flags fewer (most from the natural groups of T-shirts that look like
//! pullovers in z1604 and z2610), no poisoned sample lost. Session 29, the
//! plain majority: natural groups the model split without a significant
//! lean stood before (z6705: 11 T-shirts that look like pullovers, placed
//! 6 among Pullover and 11 among T-shirt, took 9 more in — 20 clean
//! flags); over 101 sets mean F1 0.8819 → 0.8830 (z6508 0.93 → 1.00, z4107
//! 0.89 → 0.93), no flip set lower, z5910 0.96 → 0.95 the one loss; the
//! fresh draw 7700 0.962 → 0.968 (z7711, clean-label, 0.94 → 0.99).
//!
//! Measured (session 14, prototype and builds over the devzoo and draws
//! 1000–1811, 96 sets): natural look-alike groups between Coat, Pullover
//! and Shirt had 6–15% of the `a` images' neighbours looking like `g` one
//! way alone, flipped groups 0–1.2% (one, Sandal → Ankle boot, 5%); z1811's
//! Bag → Sandal flips 1.7% both ways. Without the first test the natural
//! groups cost six backdoor sets 0.04–0.16 F1; measured one way only,
//! Sneaker/Ankle boot (2.5%) let 24 natural sneakers join a real group.
//! On the unseen draw 1900–1911: worst F1 0.31 → 0.64, mean 0.77 → 0.83,
//! no set lower, no clean set flagged more.
//!
//! **A second look, in the model's view** (session 26). An image's look
//! in the input view is the label most of its pixel-space look-alikes
//! carry; where the source class sits among several others in pixel
//! space, its flipped images scatter over those looks. z6008 (35% of
//! Shirt → Bag): of the 105 shirts labelled Bag, 19 looked like Shirt, 30
//! like T-shirt, 28 like Pullover, 24 like Coat — the Shirt group alone
//! failed the one-way test (19 against 11 the other way), the others the
//! spread test, and none was found. The model, trained on the labels,
//! still places most of them among shirts. So each pair whose input-view
//! group does not stand is tested once more with the images the model
//! places among the other class added (the class most of their model
//! neighbours carry), through the same tests; the natives stay the input
//! view's, and the model's own test counts only the members the input
//! view chose — of which the model must place more among the class they
//! look like than among their label (the images it chose cannot vouch
//! for themselves: without this, z6409, a flood with a blend, fell 0.96 →
//! 0.88, and z6204, a patch, 0.93 → 0.90). A backdoor's carriers, placed
//! among their label, or a flood's copies, placed among each other, add
//! nothing. The second look's groups join the one-way test's family, so
//! that correction is Holm's step-down, not Bonferroni's: with
//! Bonferroni the extra groups pushed a real one over the budget on the
//! fresh draw 5900 (z5901's 33 T-shirts relabelled Pullover, 0.68 →
//! 0.58). Measured on 122 sets (the devsets, the published zoo, draws
//! 6000–6011 of flips, 6100–6111, 6200 of patches, 6300 of clean sets,
//! 6400 mixed, 6500 clean-label, 35 sets of earlier draws): z6008 0.00 →
//! 0.87 (46 found as a group, 52 more joined), z6411 0.90 → 0.96, z6406
//! 0.95 → 0.98, z6004 0.78 → 0.79, z3402 0.82 → 0.81 (one clean flag);
//! clean sets unchanged; on the draw 5900, z5900 (a blend) 0.93 → 0.92.
//!
//! **Natives the flips made** (session 27). The spread test measures a
//! member's distance to the nearest image of its label that looks like
//! it; where several classes were flipped into one, a flipped image whose
//! look-alikes are flips too looks like its label from deep among its
//! source, and one such image is every member's nearest. For a group the
//! model places among the class it looks like (beyond a fair coin, at
//! [`VETO_LEVEL`]; only where the model's view is not the input view's
//! own space, as it is in a scan from pixels alone), the natives it is
//! measured against are those that still look like their label with the
//! group read as that class (`keep_their_look`). z6600 (asymmetric flips on ten classes, colour):
//! 64 of 65 sandals relabelled Coat found (3 before), F1 0.58 → 0.70;
//! z6007 0.60 → 0.74, z6005 0.56 → 0.63; no clean set or other family
//! moved over 144 sets.
//!
//! **Flips both ways** (session 27, `placed_both_ways`). The one-way
//! test takes the images the other way round for natural oddness; where
//! an attacker relabelled both ways (z6708: sneakers as Trouser and
//! trousers as Sneaker; z6009: bags as Coat and coats as Bag) that count
//! holds the other way's flips. When the model places both pixel-chosen
//! groups among their looks, each beyond a fair coin at the budget over
//! the pairs tested, the other way's images it places so are counted out.
//! Over 101 poisoned sets 0.8612 → 0.8675 with no set lower (z6009 0.01
//! → 0.64), no clean set moved; the fresh draw 6700's z6708 0.75 → 0.81.
//!
//! **The flips a group hid** (`join_shielded`, session 25). Where a
//! third of a class was relabelled, many flipped images have flipped
//! look-alikes carrying their wrong label most and so look like it: 40 of
//! z5400's 105 pullovers relabelled Bag. Once a group is found, its
//! members are read as the class they look like, and an image of its
//! label whose look-alikes then carry the group's source classes more than
//! its label joins (two rounds). Joins stand only if more images join so
//! than images of the source class would join the other way (a sign test
//! at the budget), and only groups the model mostly still places among
//! their source take images in — a backdoor's carriers also pass as a
//! group, and clean images beside them would join. Over 371 sets: pair
//! flips 0.674 → 0.730 mean F1 (z2305 0.26 → 0.72, z2902 0.33 → 0.87,
//! z5400 0.74 → 0.90), worst loss z5401_patch 0.95 → 0.90, clean sets
//! unchanged.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::input_view::{InputView, label_votes};
use crate::knn::Neighbors;
use crate::linalg::squared_distance;
use crate::stats;

/// Fewest images of one class looking like another that are tested as a
/// group (fewer say nothing about how they are spread).
pub const MIN_GROUP: usize = 8;
/// A group is a random sample of the class it looks like when the chance
/// that one of its members lies nearer to the images looking like its
/// label than a member of that class does is below this (0.5 exactly for
/// a random sample; natural look-alike groups lie nearer: median 0.75).
pub const MAX_NEARER: f64 = 0.55;
/// How much nearer natural look-alike groups lie (session 14: median
/// 0.75 over the devzoo and draws 1000–1811). A group above
/// [`MAX_NEARER`] is still a random sample when its chance is not above
/// 0.5 beyond noise (at [`VETO_LEVEL`]) and is below this beyond noise
/// (at the budget).
/// Session 18, 136 sets: z2803 (31 sandals flipped to Shirt, 0.59) 0.20 →
/// 0.86, z2305 0.04 → 0.29, z2710 0.75 → 0.82; 113 flags more that are
/// poison, 13 more that are not (z1006 0.84 → 0.81: 11 T-shirts that look
/// like coats), no clean set flagged more. Without the second condition,
/// small natural groups (8 T-shirts that look like coats, 0.60) passed
/// too: 27 clean flags, z2407 0.93 → 0.87.
pub const NATURAL_NEARER: f64 = 0.75;
/// The level of the test that withholds a group when it lies nearer to
/// the images that look like its label than a random sample would
/// (`test_pair`; until session 29 also of the test that the model learnt
/// a group as its label, now a plain majority, [`FlipGroup::takes_in`])
/// and of the model placing a group among its look (`test_pair`'s
/// natives) — fixed where they were measured, not the scan's false-flag
/// budget: a looser budget must never flag fewer. Until session 20 they
/// took the budget's level, and `--fdr 0.10` flagged none of z2803's 39
/// flipped sandals, which 0.05 finds (31).
pub const VETO_LEVEL: f64 = 0.05;
/// Images of each side compared at most (evenly drawn beyond): the test
/// is about distributions, which this many describe.
const COMPARED: usize = 500;

/// A group of images labelled `given` that look like `looks`, spread as a
/// random sample of `looks`: flipped from it.
#[derive(Debug, Clone)]
pub struct FlipGroup {
    /// The label they carry.
    pub given: u32,
    /// The class they look like (and were most likely taken from).
    pub looks: u32,
    /// The images.
    pub members: Vec<usize>,
    /// Chance that a member lies nearer to the images that look like
    /// `given` than an image of `looks` does.
    pub nearer: f64,
    /// Share of the neighbours of the images that look like `looks` that
    /// look like `given`, plus the same the other way round: how much the
    /// two classes touch apart from the group.
    pub touching: f64,
    /// Images labelled `looks` that look like `given`, less those the
    /// model places among `given` where labels were flipped both ways
    /// (`placed_both_ways`).
    pub the_other_way: usize,
    /// Chance of a group this large against `the_other_way` were odd
    /// images as likely to go either way, adjusted for the groups tested
    /// (Holm's step-down): at most the false-flag budget.
    pub p_value: f64,
    /// How many of the members look like `looks` in the input view; the
    /// rest are images the model places among `looks` (the second look,
    /// see the module docs).
    pub alike: usize,
    /// Of the `alike` members, those the model's own view places among
    /// `looks` (more of their model neighbours carry `looks` than `given`),
    /// and among `given` ([`model_sides`]).
    pub model_sides: (usize, usize),
    /// Images of `given` that joined once the members' labels were read
    /// as the class they look like (`join_shielded`).
    pub joined: Vec<usize>,
}

impl FlipGroup {
    /// Whether the group stands (`standing`) and images it hid may join
    /// it (`join_shielded`): the model places more of its members among
    /// the class they look like than among their label. A backdoor's
    /// relabelled carriers can pass as a group too, and clean images
    /// beside them would join; the model learnt those as their label, as
    /// it learns natural look-alikes, while flips it had to memorise it
    /// mostly still places among the class they came from.
    pub fn takes_in(&self) -> bool {
        self.model_sides.0 > self.model_sides.1
    }
}

/// The groups of images flipped in bulk ([`FlipGroup`]), from the input
/// view `view` of images labelled `labels`; `fdr` bounds the chance that
/// any group flagged is only natural oddness (Holm). `model` is the
/// model's own neighbours of every sample ([`FlipGroup::takes_in`]);
/// `model_apart`: they come from another space than the input view's
/// (embeddings, not the pixels themselves), so where the model places a
/// group is a second opinion on it (`test_pair`'s natives).
pub fn find(
    labels: &[u32],
    view: &InputView,
    (model, model_apart): (&Neighbors, bool),
    fdr: f64,
) -> Vec<FlipGroup> {
    let n = labels.len();
    let looks: Vec<Option<u32>> = (0..n)
        .into_par_iter()
        .map(|i| looks_like(labels, view, i))
        .collect();
    let by_look = by_pair(labels, &looks);
    let seen = (labels, looks.as_slice());
    let model_view = (model, model_apart);
    let mut found = tested_pairs(view, seen, (&by_look, &by_look), model_view, fdr, |_| true);
    // A second look, in the model's view, at the pairs the input view's
    // groups alone do not show (see the module docs).
    let stood: Vec<(u32, u32)> = found
        .iter()
        .zip(standing(&found, fdr))
        .filter_map(|(f, (_, up))| up.then_some((f.given, f.looks)))
        .collect();
    let placed: Vec<Option<u32>> = (0..n)
        .into_par_iter()
        .map(|i| {
            view.valid[i]
                .then(|| placed_among(labels, model, i))
                .flatten()
        })
        .collect();
    let by_either = merged(&by_look, &by_pair(labels, &placed));
    // Only groups the model's view enlarged: the same group again would
    // only be the same test twice.
    let size = |by: &ByPair, pair| by.get(&pair).map_or(0, Vec::len);
    let second = |pair| !stood.contains(&pair) && size(&by_either, pair) > size(&by_look, pair);
    found.extend(tested_pairs(
        view,
        seen,
        (&by_either, &by_look),
        model_view,
        fdr,
        second,
    ));
    let verdicts = standing(&found, fdr);
    let mut found: Vec<FlipGroup> = found
        .into_iter()
        .zip(verdicts)
        .filter_map(|(mut f, (p, up))| {
            f.p_value = p;
            up.then_some(f)
        })
        .collect();
    join_shielded(&mut found, labels, view, fdr);
    found
}

/// Samples by (their label, the class they look like or are placed
/// among).
type ByPair = BTreeMap<(u32, u32), Vec<usize>>;

/// Every sample by (its label, the label `looks` gives it), in one pass.
fn by_pair(labels: &[u32], looks: &[Option<u32>]) -> ByPair {
    let mut by = ByPair::new();
    for (i, look) in looks.iter().enumerate() {
        if let Some(a) = *look {
            by.entry((labels[i], a)).or_default().push(i);
        }
    }
    by
}

/// Both groupings' members per pair, in index order.
fn merged(a: &ByPair, b: &ByPair) -> ByPair {
    let mut out = a.clone();
    for (&pair, rows) in b {
        let v = out.entry(pair).or_default();
        v.extend(rows);
        v.sort_unstable();
        v.dedup();
    }
    out
}

/// The pairs of `groups` (label, look) that `keep` admits, tested as
/// groups ([`test_pair`], against the images that look like their label
/// in `pixels`, the input view's own grouping), with their count the
/// other way round in `groups` and the model's sides ([`model_sides`]) —
/// of the members `pixels` holds: the model's own test is fair only on
/// images it did not choose (the second look adds images the model places
/// among `a`, which would count for `a` by construction).
fn tested_pairs(
    view: &InputView,
    (labels, looks): (&[u32], &[Option<u32>]),
    (groups, pixels): (&ByPair, &ByPair),
    (model, model_apart): (&Neighbors, bool),
    fdr: f64,
    keep: impl Fn((u32, u32)) -> bool + Sync,
) -> Vec<FlipGroup> {
    let candidates: Vec<(u32, u32)> = groups
        .iter()
        .filter(|&(&(g, a), members)| g != a && members.len() >= MIN_GROUP && keep((g, a)))
        .map(|(&pair, _)| pair)
        .collect();
    let of_pixels = |pair: (u32, u32)| pixels.get(&pair).map_or(&[][..], Vec::as_slice);
    // Each pair's "placed among its look both ways" is one of this many
    // tests (Bonferroni at the budget, [`placed_both_ways`]).
    let both_ways_level = fdr / candidates.len().max(1) as f64;
    candidates
        .par_iter()
        .filter_map(|&(g, a)| {
            let members = &groups[&(g, a)];
            let (native_g, native_a) = (of_pixels((g, g)), of_pixels((a, a)));
            let sides = model_sides(of_pixels((g, a)), (g, a), labels, model);
            let mut f = test_pair(
                view,
                (labels, looks),
                (
                    members,
                    model_apart && model_placed_among_look(sides, VETO_LEVEL),
                ),
                native_g,
                native_a,
                (g, a),
                fdr,
            )?;
            let other = groups.get(&(a, g)).map_or(&[][..], Vec::as_slice);
            let pixel_sides = (sides, model_sides(of_pixels((a, g)), (a, g), labels, model));
            f.the_other_way = if model_apart && placed_both_ways(pixel_sides, both_ways_level) {
                other.len() - model_sides(other, (a, g), labels, model).0
            } else {
                other.len()
            };
            f.alike = of_pixels((g, a)).len();
            f.model_sides = sides;
            Some(f)
        })
        .collect()
}

/// Which of the groups `found` stand: between classes that stay apart
/// odd images look like the other class about as often both ways, and
/// relabelling moves many one way — a group's size against the count the
/// other way is a fair coin's tail, and Holm's step-down over all the
/// groups tested keeps the chance of any natural group standing within
/// the budget `fdr` (each group's adjusted value is returned beside it;
/// Holm rejects all Bonferroni does and more, so a second look at other
/// pairs costs the groups found at once little) — and the model places
/// more of the members that look like `looks` among that class than among
/// their label ([`FlipGroup::takes_in`]; of those alone in a group the
/// second look enlarged: the images the model chose cannot vouch for
/// themselves).
fn standing(found: &[FlipGroup], fdr: f64) -> Vec<(f64, bool)> {
    let tails: Vec<f64> = found
        .iter()
        .map(|f| {
            let k = f.members.len();
            stats::fair_coin_tail(k, k + f.the_other_way)
        })
        .collect();
    let adjusted = stats::holm(&tails);
    found
        .iter()
        .zip(adjusted)
        .map(|(f, p)| (p, p <= fdr && f.takes_in()))
        .collect()
}

/// Most rounds of [`join_shielded`] (each reads the labels corrected by
/// the one before; it stops as soon as a round adds nobody).
const JOIN_ROUNDS: usize = 2;

/// Adds to the `found` groups the images their own flipped labels hid.
///
/// A group's members are the images of `given` that look like `looks`
/// with the labels as given; but where a third of a class was relabelled,
/// a flipped image's look-alikes are flipped images too, and many carry
/// `given` most — the flips shield each other (z5400: 40 of 105 pullovers
/// relabelled Bag were left so). Once a group is found, its members'
/// labels are read as the class they look like; then an image of `given`
/// whose readable look-alikes carry the classes its label's groups came
/// from more than its label ([`shielded`]) joins the group whose class
/// they carry most (rounds repeat while images join, at most
/// [`JOIN_ROUNDS`]). A group's joins stand only if more images joined
/// than images of `looks` would join the other way
/// ([`the_other_way_joining`]; a fair coin's tail within the budget
/// `fdr`), and only groups that [`FlipGroup::takes_in`] take any.
fn join_shielded(found: &mut [FlipGroup], labels: &[u32], view: &InputView, fdr: f64) {
    let n = labels.len();
    let mut read = labels.to_vec();
    let mut member = vec![false; n];
    for g in found.iter() {
        for &i in &g.members {
            read[i] = g.looks;
            member[i] = true;
        }
    }
    let holds_group = |c: u32| found.iter().any(|g| g.given == c && g.takes_in());
    let tested: Vec<usize> = (0..n)
        .filter(|&i| view.valid[i] && holds_group(labels[i]))
        .collect();
    for _ in 0..JOIN_ROUNDS {
        let joining = shielded(found, &tested, &member, &read, labels, view);
        if joining.is_empty() {
            break;
        }
        for i in joining {
            let Some(group) = group_to_join(found, &read, labels[i], view, i) else {
                continue;
            };
            found[group].joined.push(i);
            member[i] = true;
            read[i] = found[group].looks;
        }
    }
    for g in found.iter_mut() {
        let mirrored = the_other_way_joining(g, &member, &read, labels, view);
        let joined = g.joined.len();
        if stats::fair_coin_tail(joined, joined + mirrored) > fdr {
            g.joined.clear();
        }
        g.joined.sort_unstable();
    }
}

/// How many images labelled `group.looks`, in no group, have more readable
/// neighbours carrying (as `read`) `group.given` than their own label: the
/// natural oddness [`join_shielded`]'s test would find the other way.
fn the_other_way_joining(
    group: &FlipGroup,
    member: &[bool],
    read: &[u32],
    labels: &[u32],
    view: &InputView,
) -> usize {
    (0..labels.len())
        .into_par_iter()
        .filter(|&i| labels[i] == group.looks && view.valid[i] && !member[i])
        .filter(|&i| {
            let (_, counts) = label_votes(&view.nb, read, i, |j| view.valid[j]);
            carried(&counts, group.given) > carried(&counts, group.looks)
        })
        .count()
}

/// Which of the `tested` images not yet a `member` have more readable
/// neighbours carrying (as `read`) the classes their label's groups came
/// from than carrying their label (see [`join_shielded`]).
fn shielded(
    found: &[FlipGroup],
    tested: &[usize],
    member: &[bool],
    read: &[u32],
    labels: &[u32],
    view: &InputView,
) -> Vec<usize> {
    tested
        .par_iter()
        .copied()
        .filter(|&i| !member[i])
        .filter(|&i| {
            let g = labels[i];
            let (_, counts) = label_votes(&view.nb, read, i, |j| view.valid[j]);
            let source = |c: u32| {
                found
                    .iter()
                    .any(|f| f.given == g && f.looks == c && f.takes_in())
            };
            let sources: usize = counts.iter().filter(|x| source(x.0)).map(|x| x.1).sum();
            sources > carried(&counts, g)
        })
        .collect()
}

/// The group of label `given` that image `i` joins: the one whose class
/// its neighbours (labels as `read`) carry most, else the largest.
fn group_to_join(
    found: &[FlipGroup],
    read: &[u32],
    given: u32,
    view: &InputView,
    i: usize,
) -> Option<usize> {
    let (_, counts) = label_votes(&view.nb, read, i, |j| view.valid[j]);
    (0..found.len())
        .filter(|&g| found[g].given == given && found[g].takes_in())
        .max_by_key(|&g| {
            (
                carried(&counts, found[g].looks),
                found[g].members.len(),
                usize::MAX - g,
            )
        })
}

/// How many of an image's look-alikes carry class `c`, from
/// [`label_votes`]' counts.
fn carried(counts: &[(u32, usize)], c: u32) -> usize {
    counts.iter().find(|x| x.0 == c).map_or(0, |x| x.1)
}

/// Whether labels were flipped both ways between two classes: the model
/// places the images of each that look like the other (`sides` and
/// `back`, [`model_sides`] of the images the input view chose) among the
/// class they look like, each beyond a fair coin at `level`.
///
/// Odd images go both ways between classes that stay apart, relabelling
/// one way — so the one-way test takes the images the other way round for
/// natural oddness. But an attacker may relabel both ways (z6708: 48
/// sneakers as Trouser and 43 trousers as Sneaker; groups of 46 and 44,
/// each a random sample, the one-way test 1.0). Flips are images the model
/// had to memorise and still places among their source, while natural
/// look-alikes are learnt as labelled; so where both ways are placed so,
/// the other way's images the model places among their look are counted
/// out of the natural count. The level is the budget over the pairs
/// tested (Bonferroni): natural odd images on weak colour models sit
/// among their look now and then (z103: 10 bags like T-shirts placed 10–0,
/// 8 T-shirts like bags 7–1), and at a plain 5% both ways a clean-label
/// set (z5104) fell 0.92 → 0.79.
fn placed_both_ways((sides, back): ((usize, usize), (usize, usize)), level: f64) -> bool {
    model_placed_among_look(sides, level) && model_placed_among_look(back, level)
}

/// The model's view places more of a group's members (its
/// [`model_sides`] `(looks, given)`) among the class they look like than
/// among their label than a fair coin would give, at `level` (a one-sided
/// sign test, ties left out; none placed so never passes) — the model had
/// to memorise them, as flipped images (see [`test_pair`]'s natives and
/// [`placed_both_ways`]).
fn model_placed_among_look((looks, given): (usize, usize), level: f64) -> bool {
    stats::fair_coin_tail(looks, given + looks) <= level
}

/// How many of `members` (labelled `g`, looking like `a`) the model's
/// neighbours (`model`) place among `a` — more neighbours carrying `a`
/// than `g` — and how many among their given label; ties in neither.
pub fn model_sides(
    members: &[usize],
    (g, a): (u32, u32),
    labels: &[u32],
    model: &Neighbors,
) -> (usize, usize) {
    let (mut given, mut looks) = (0, 0);
    for &i in members {
        let carrying = |c: u32| {
            model
                .of(i)
                .iter()
                .filter(|&&j| labels[j as usize] == c)
                .count()
        };
        match carrying(g).cmp(&carrying(a)) {
            std::cmp::Ordering::Greater => given += 1,
            std::cmp::Ordering::Less => looks += 1,
            std::cmp::Ordering::Equal => {}
        }
    }
    (looks, given)
}

/// The label most of sample `i`'s model neighbours carry (its own on a
/// tie): the class the model places it among.
fn placed_among(labels: &[u32], model: &Neighbors, i: usize) -> Option<u32> {
    let (_, counts) = label_votes(model, labels, i, |_| true);
    most_carried(counts, labels[i])
}

/// The label carried most in `counts` (label, neighbours), `own` on a
/// tie, else the lowest.
fn most_carried(counts: Vec<(u32, usize)>, own: u32) -> Option<u32> {
    counts
        .into_iter()
        .max_by(|x, y| {
            x.1.cmp(&y.1)
                .then((x.0 == own).cmp(&(y.0 == own)))
                .then(y.0.cmp(&x.0))
        })
        .map(|c| c.0)
}

/// The label most of sample `i`'s readable input-view neighbours carry
/// (its own on a tie); None for an unreadable image or one without
/// readable neighbours.
fn looks_like(labels: &[u32], view: &InputView, i: usize) -> Option<u32> {
    if !view.valid[i] {
        return None;
    }
    let (_, counts) = label_votes(&view.nb, labels, i, |j| view.valid[j]);
    most_carried(counts, labels[i])
}

/// Tests the `members` labelled `g` that look like `a` against the images
/// of `g` and of `a` that look like their own label (see the module docs).
/// `members` are in index order. `placed_among_look`: a model whose view
/// is apart from the input view places the members among `a`
/// ([`model_placed_among_look`]); then the natives of `g` they are
/// measured against are only those that keep their look with the members
/// read as `a` ([`keep_their_look`]).
fn test_pair(
    view: &InputView,
    (labels, looks): (&[u32], &[Option<u32>]),
    (members, placed_among_look): (&[usize], bool),
    native_g: &[usize],
    native_a: &[usize],
    (g, a): (u32, u32),
    fdr: f64,
) -> Option<FlipGroup> {
    let native_a = evenly(native_a.to_vec());
    if native_g.is_empty() || native_a.is_empty() {
        return None;
    }
    // How much the classes touch, both ways: the images that look like `g`
    // among the neighbours of those that look like `a`, and the other way
    // round. Natural confusion needs the classes to touch; a flip does not.
    // (Tested first: it is cheap, and most look-alike pairs fail it.)
    let native = |j: usize, c: u32| labels[j] == c && looks[j] == Some(c);
    let all_g = evenly(native_g.to_vec());
    let touching =
        mean_share(view, &native_a, |j| native(j, g)) + mean_share(view, &all_g, |j| native(j, a));
    if touching >= 1.0 / view.nb.k.max(1) as f64 {
        return None;
    }
    let native_g = if placed_among_look {
        evenly(keep_their_look(view, labels, native_g, (members, a)))
    } else {
        all_g
    };
    if native_g.is_empty() {
        return None;
    }
    let gap = |i: usize| -> f32 {
        native_g
            .iter()
            .map(|&j| squared_distance(view.matrix.row(i), view.matrix.row(j)))
            .fold(f32::INFINITY, f32::min)
    };
    let from_group: Vec<f32> = evenly(members.to_vec()).into_iter().map(gap).collect();
    let from_a: Vec<f32> = native_a.iter().map(|&i| gap(i)).collect();
    let nearer = stats::chance_smaller(&from_group, &from_a);
    let (nx, ny) = (from_group.len(), from_a.len());
    let lies_nearer = stats::chance_smaller_p(nearer, nx, ny) <= VETO_LEVEL;
    let below_natural = stats::chance_smaller_p_vs(nearer, NATURAL_NEARER, nx, ny) <= fdr;
    (nearer < MAX_NEARER || (!lies_nearer && below_natural)).then_some(FlipGroup {
        given: g,
        looks: a,
        members: members.to_vec(),
        nearer,
        touching,
        the_other_way: 0,
        p_value: 1.0,
        alike: members.len(),
        model_sides: (0, 0),
        joined: Vec::new(),
    })
}

/// The natives of a class `g` (`native_g`) that still look like it with
/// the `members` of a group of `g` read as the class `a` they look like:
/// more of their readable input-view neighbours carry `g` than `a`, or as
/// many.
///
/// Where several classes were flipped into `g`, a flipped image whose
/// look-alikes are flipped images too looks like `g` — deep among the
/// images of its source. One such image among `g`'s natives is the
/// nearest "`g`" image of every member and every native of `a` alike, and
/// the spread test then measures nothing (z6600: one of 65 sandals
/// relabelled Coat was the nearest Coat native of 45 of the 50 members
/// and 167 of 174 sandals; nearer 0.61, the group never stood). Read as
/// the hypothesis says, it looks like `a` again and drops out. Only for
/// groups the model places among `a`: reading a natural group (shirts at
/// the edge of the dresses) as `a` strips the natives that border it too,
/// so it reads spread (z108, a clean set: 19 shirts, placed 10 to 9 by the
/// model, would have been flagged).
fn keep_their_look(
    view: &InputView,
    labels: &[u32],
    native_g: &[usize],
    (members, a): (&[usize], u32),
) -> Vec<usize> {
    let read = |x: usize| {
        if members.binary_search(&x).is_ok() {
            a
        } else {
            labels[x]
        }
    };
    native_g
        .iter()
        .copied()
        .filter(|&j| {
            let g = labels[j];
            let carrying = |c: u32| {
                view.nb
                    .of(j)
                    .iter()
                    .map(|&x| x as usize)
                    .filter(|&x| view.valid[x] && read(x) == c)
                    .count()
            };
            carrying(g) >= carrying(a)
        })
        .collect()
}

/// Mean share of the neighbours of `rows` in the input view for which
/// `hit` holds.
fn mean_share(view: &InputView, rows: &[usize], hit: impl Fn(usize) -> bool) -> f64 {
    let total: f64 = rows
        .iter()
        .map(|&i| {
            let nb = view.nb.of(i);
            nb.iter().filter(|&&j| hit(j as usize)).count() as f64 / nb.len().max(1) as f64
        })
        .sum();
    total / rows.len().max(1) as f64
}

/// At most [`COMPARED`] of `rows`, drawn evenly at random (fixed seed).
fn evenly(rows: Vec<usize>) -> Vec<usize> {
    if rows.len() <= COMPARED {
        return rows;
    }
    crate::knn::sample_rows(rows.len(), COMPARED)
        .into_iter()
        .map(|k| rows[k])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knn::{Neighbors, knn};
    use crate::linalg::{Matrix, XorShift};

    /// An input view whose features are the given 2-d points.
    fn view_with(points: &[(f32, f32)]) -> InputView {
        let matrix = Matrix::new(
            points.len(),
            2,
            points.iter().flat_map(|&(x, y)| [x, y]).collect(),
        );
        let nb = knn(&matrix, 20);
        InputView {
            matrix,
            valid: vec![true; points.len()],
            nb,
        }
    }

    /// Points of a 20 × 20 grid, 0.3 apart, from `x0` along x.
    fn grid(x0: f32) -> Vec<(f32, f32)> {
        (0..400)
            .map(|k| (x0 + 0.3 * (k % 20) as f32, 0.3 * (k / 20) as f32))
            .collect()
    }

    /// Classes 0, 1, 2 side by side; every fourth image of class 1 (by its
    /// grid row and column, so spread evenly over the class) is labelled 0:
    /// the points, which are flipped, and the labels.
    fn a_quarter_of_class_one_flipped() -> (Vec<(f32, f32)>, Vec<bool>, Vec<u32>) {
        let points: Vec<(f32, f32)> = [0.0, 10.0, 20.0].iter().flat_map(|&x| grid(x)).collect();
        let flipped: Vec<bool> = (0..1200)
            .map(|i| (400..800).contains(&i) && (i % 20) % 2 == 0 && (i / 20) % 2 == 0)
            .collect();
        let labels: Vec<u32> = (0..1200)
            .map(|i| if flipped[i] { 0 } else { (i / 400) as u32 })
            .collect();
        (points, flipped, labels)
    }

    #[test]
    fn a_quarter_of_a_class_relabelled_evenly_is_found_as_one_group() {
        // The flipped images are spread as their class is.
        let (points, flipped, labels) = a_quarter_of_class_one_flipped();
        let view = view_with(&points);
        let found = find(&labels, &view, (&view.nb, false), 0.05);
        assert_eq!(found.len(), 1, "{found:?}");
        let g = &found[0];
        assert_eq!((g.given, g.looks), (0, 1));
        assert!(g.members.iter().all(|&i| flipped[i]), "{g:?}");
        assert!(g.members.len() >= 90, "{} of 100 found", g.members.len());
    }

    #[test]
    fn a_small_flipped_group_that_reads_a_little_nearer_by_chance_is_found() {
        // Sixteen images of class 1 labelled 0, one from each of the
        // columns 0–15 of its grid (so they read nearer to class 0 than a
        // random sample: 0.6 against 0.5, which sixteen images do by
        // chance one time in eleven, and well below a natural look-alike
        // group's 0.75).
        let points: Vec<(f32, f32)> = [0.0, 10.0].iter().flat_map(|&x| grid(x)).collect();
        let flipped = |i: usize| {
            (400..800).contains(&i) && {
                let (row, col) = ((i - 400) / 20, (i - 400) % 20);
                col < 16 && row == (3 * col + 1) % 20
            }
        };
        let labels: Vec<u32> = (0..800)
            .map(|i| if flipped(i) { 0 } else { (i / 400) as u32 })
            .collect();
        let view = view_with(&points);
        let found = find(&labels, &view, (&view.nb, false), 0.05);
        assert_eq!(found.len(), 1, "{found:?}");
        let g = &found[0];
        assert!(g.nearer > MAX_NEARER && g.nearer < 0.65, "{g:?}");
        assert_eq!(g.members.len(), 16);
        assert!(g.members.iter().all(|&i| flipped(i)));
        // A looser budget finds it too: the chance of lying that much
        // nearer (one in eleven) is no reason to withhold it at 10%.
        let looser = find(&labels, &view, (&view.nb, false), 0.10);
        assert_eq!(looser.len(), 1, "{looser:?}");
        assert_eq!(looser[0].members, g.members);
    }

    #[test]
    fn odd_images_going_both_ways_are_not_a_flip() {
        // Two classes apart; as many images of each sit among the other
        // (spread like it) as the other way round: natural oddness, not
        // relabelling, whatever their spread.
        let points: Vec<(f32, f32)> = [0.0, 10.0].iter().flat_map(|&x| grid(x)).collect();
        let odd = |i: usize| (i % 20).is_multiple_of(4) && (i / 20).is_multiple_of(4);
        let labels: Vec<u32> = (0..800)
            .map(|i| {
                let home = (i / 400) as u32;
                if odd(i % 400) { 1 - home } else { home }
            })
            .collect();
        let view = view_with(&points);
        let found = find(&labels, &view, (&view.nb, false), 0.05);
        assert!(found.is_empty(), "{found:?}");
        // The same images one way only are a flip.
        let one_way: Vec<u32> = (0..800).map(|i| u32::from(i >= 400 || odd(i))).collect();
        let found = find(&one_way, &view, (&view.nb, false), 0.05);
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn the_edge_of_a_class_that_looks_like_its_neighbour_is_not_a_group() {
        // Class 0's right tail reaches into class 1 (natural confusion):
        // the images of 0 that look like 1 lie at 1's near edge.
        let mut rng = XorShift::new(0xED6E);
        let (mut points, mut labels) = (vec![], vec![]);
        for k in 0..400 {
            let x = if k % 8 == 0 {
                3.0 + 1.5 * rng.uniform()
            } else {
                rng.normal()
            };
            points.push((x, rng.normal()));
            labels.push(0);
        }
        for _ in 0..300 {
            points.push((6.0 + rng.normal(), rng.normal()));
            labels.push(1);
        }
        let view = view_with(&points);
        let found = find(&labels, &view, (&view.nb, false), 0.05);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_group_the_model_learnt_as_its_label_is_not_a_flip() {
        // The relabelled quarter of class 1 from the first test, as the
        // input view sees it; in the model's view those images sit among
        // class 0, their label — natural look-alikes the model learnt as
        // what they are labelled (or a backdoor's carriers), not flips it
        // had to memorise.
        let (points, flipped, labels) = a_quarter_of_class_one_flipped();
        let view = view_with(&points);
        let learnt: Vec<(f32, f32)> = points
            .iter()
            .zip(&flipped)
            .map(|(&(x, y), &f)| {
                if f {
                    (x - 10.0 + 0.15, y + 0.15)
                } else {
                    (x, y)
                }
            })
            .collect();
        let model = view_with(&learnt).nb;
        assert!(find(&labels, &view, (&model, true), 0.05).is_empty());
        // Nor where the model places only a few more of them among their
        // label than among the class they look like (55 to 45: no
        // significant lean, but no flip it had to memorise either).
        let (mut moved, mut kept) = (0, 0);
        let split: Vec<(f32, f32)> = points
            .iter()
            .zip(&flipped)
            .map(|(&(x, y), &f)| {
                if f && moved < 55 {
                    moved += 1;
                    (x - 10.0 + 0.15, y + 0.15)
                } else {
                    kept += usize::from(f);
                    (x, y)
                }
            })
            .collect();
        assert_eq!((moved, kept), (55, 45));
        let model = view_with(&split).nb;
        assert!(find(&labels, &view, (&model, true), 0.05).is_empty());
        // Where the model still places them with the class they came
        // from, they are the flip the first test found.
        assert_eq!(find(&labels, &view, (&view.nb, false), 0.05).len(), 1);
    }

    /// An input view whose neighbours are given row by row.
    fn view_of(rows: &[[u32; 4]]) -> InputView {
        InputView {
            matrix: Matrix::new(rows.len(), 1, vec![0.0; rows.len()]),
            valid: vec![true; rows.len()],
            nb: Neighbors {
                k: 4,
                idx: rows.iter().flatten().copied().collect(),
                dist2: vec![1.0; rows.len() * 4],
            },
        }
    }

    /// Ten images of class 0 (0–9), a found group of ten labelled 0 that
    /// look like 1 (10–19), six more labelled 0 (20–25) whose look-alikes
    /// are two members, one another and one image of class 1 — they look
    /// like their label as given — and twenty images of class 1 (26–45),
    /// of which the last `odd` have class 0's images as look-alikes.
    fn shielded_six(odd: usize) -> (Vec<u32>, InputView, FlipGroup) {
        let mut rows: Vec<[u32; 4]> = Vec::new();
        let mut labels = Vec::new();
        for i in 0..10u32 {
            rows.push([(i + 1) % 10, (i + 2) % 10, (i + 3) % 10, (i + 4) % 10]);
            labels.push(0);
        }
        for i in 0..10u32 {
            rows.push([26 + i, 27 + i, 10 + (i + 1) % 10, 28 + i]);
            labels.push(0);
        }
        for i in 0..6u32 {
            rows.push([10 + i, 11 + i, 20 + (i + 1) % 6, 30 + i]);
            labels.push(0);
        }
        for i in 0..20u32 {
            let class_one = |d: u32| 26 + (i + d) % 20;
            rows.push(if (i as usize) < 20 - odd {
                [class_one(1), class_one(2), class_one(3), class_one(4)]
            } else {
                [i % 10, (i + 1) % 10, (i + 2) % 10, class_one(1)]
            });
            labels.push(1);
        }
        let group = FlipGroup {
            given: 0,
            looks: 1,
            members: (10..20).collect(),
            nearer: 0.5,
            touching: 0.0,
            the_other_way: 0,
            p_value: 0.001,
            alike: 10,
            model_sides: (10, 0),
            joined: Vec::new(),
        };
        (labels, view_of(&rows), group)
    }

    /// Neighbour rows (4 each) for `n` images from `start` that are one
    /// another's look-alikes.
    fn among_themselves(start: u32, n: u32) -> Vec<[u32; 4]> {
        (0..n)
            .map(|i| std::array::from_fn(|d| start + (i + 1 + d as u32) % n))
            .collect()
    }

    /// Class 0 (0–19), class 1 (20–59) and classes 3, 4, 5 (60–119, 20
    /// each), all looking like themselves; 26 images of class 1 labelled 0
    /// (120–145), of which in pixel space 8 look like class 1 and six each
    /// like classes 3, 4 and 5 (each below [`MIN_GROUP`]); six images of
    /// class 0 labelled 1 (146–151); then `odd` more labelled 1 that look
    /// like classes 3, 4 or 5 (at most seven each). Returns the labels, the
    /// input view and a model view that places the 26 among class 1 (but
    /// the first `learnt` among class 0, their label), the six among class
    /// 1, their label (natural look-alikes, learnt as labelled), and the
    /// `odd` more among class 0.
    fn flips_scattered_over_looks(odd: u32, learnt: u32) -> (Vec<u32>, InputView, Neighbors) {
        let mut rows: Vec<[u32; 4]> = among_themselves(0, 20);
        let mut labels = vec![0u32; 20];
        for (c, start, n) in [(1, 20, 40), (3, 60, 20), (4, 80, 20), (5, 100, 20)] {
            rows.extend(among_themselves(start, n));
            labels.extend(std::iter::repeat_n(c, n as usize));
        }
        let mut model_rows = rows.clone();
        let next_to = |near: u32, k: u32| -> [u32; 4] {
            let o = near + k % 10;
            [o, o + 1, o + 2, o + 3]
        };
        for k in 0..26u32 {
            let near = match k {
                0..8 => 20,
                8..14 => 60,
                14..20 => 80,
                _ => 100,
            };
            rows.push(next_to(near, k));
            model_rows.push(next_to(if k < learnt { 0 } else { 20 }, k));
            labels.push(0);
        }
        for k in 0..6 + odd {
            let near = if k < 6 {
                0
            } else {
                [60, 80, 100][(k % 3) as usize]
            };
            rows.push(next_to(near, k));
            model_rows.push(next_to(if k < 6 { 20 } else { 0 }, k));
            labels.push(1);
        }
        let model = view_of(&model_rows).nb;
        (labels, view_of(&rows), model)
    }

    #[test]
    fn flips_scattered_over_several_looks_are_found_in_the_models_view() {
        let (labels, view, model) = flips_scattered_over_looks(0, 0);
        // Pixel space alone: eight look like class 1 against six the other
        // way (a coin's tail of 0.4), the rest too few per look.
        assert!(find(&labels, &view, (&view.nb, false), 0.05).is_empty());
        // The model places all 26 among class 1.
        let found = find(&labels, &view, (&model, true), 0.05);
        assert_eq!(found.len(), 1, "{found:?}");
        let g = &found[0];
        assert_eq!((g.given, g.looks), (0, 1));
        assert_eq!(g.members, (120..146).collect::<Vec<_>>());
        // The model's own test counts only the eight it did not choose.
        assert_eq!((g.the_other_way, g.alike, g.model_sides), (6, 8, (8, 0)));
    }

    #[test]
    fn a_second_look_needs_the_images_the_model_did_not_choose_to_agree() {
        // Of the eight that look like class 1 in pixel space, the model
        // places four among class 0, their label: the 18 it chose itself
        // cannot vouch for the group.
        let (labels, view, model) = flips_scattered_over_looks(0, 4);
        assert!(find(&labels, &view, (&model, true), 0.05).is_empty());
        // Three among their label, five among class 1: it stands.
        let (labels, view, model) = flips_scattered_over_looks(0, 3);
        let found = find(&labels, &view, (&model, true), 0.05);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].model_sides, (5, 3));
    }

    #[test]
    fn images_the_model_places_both_ways_alike_are_not_a_flip() {
        // Twenty images labelled 1 that the model places among class 0
        // against the 26 labelled 0 it places among class 1: natural
        // oddness as likely as relabelling (a coin's tail of 0.23).
        let (labels, view, model) = flips_scattered_over_looks(14, 0);
        assert!(find(&labels, &view, (&model, true), 0.05).is_empty());
    }

    #[test]
    fn flips_hidden_by_each_other_join_the_group_found() {
        let (labels, view, group) = shielded_six(0);
        // As given, the six look like their label (and escape the group).
        assert!((20..26).all(|i| looks_like(&labels, &view, i) == Some(0)));
        let mut found = vec![group];
        join_shielded(&mut found, &labels, &view, 0.05);
        assert_eq!(found[0].members, (10..20).collect::<Vec<_>>());
        assert_eq!(found[0].joined, (20..26).collect::<Vec<_>>());
        // A group the model places among its label (a backdoor's learnt
        // carriers, say) takes nobody in.
        let mut learnt = vec![FlipGroup {
            model_sides: (3, 7),
            ..shielded_six(0).2
        }];
        join_shielded(&mut learnt, &labels, &view, 0.05);
        assert!(learnt[0].joined.is_empty());
    }

    #[test]
    fn images_joining_no_more_often_than_the_other_way_stay_out() {
        // Six images of class 1 look like class 0 as well: natural
        // oddness both ways, as likely to be what moved the six.
        let (labels, view, group) = shielded_six(6);
        let mut found = vec![group];
        join_shielded(&mut found, &labels, &view, 0.05);
        assert_eq!(found[0].members, (10..20).collect::<Vec<_>>());
        assert!(found[0].joined.is_empty());
    }

    #[test]
    fn a_flipped_image_that_looks_like_its_label_does_not_hide_a_group() {
        // Classes 0 and 1 apart; 30 images of class 1's right edge labelled
        // 0 (the group, looking like 1), and among them one more labelled 0
        // that looks like 0 (its look-alikes are flips too): as given, a
        // native of class 0 — and every member's nearest one.
        let mut points: Vec<(f32, f32)> = [0.0, 10.0].iter().flat_map(|&x| grid(x)).collect();
        let members: Vec<usize> = (800..830).collect();
        for m in 0..30 {
            points.push((15.15 + 0.3 * (m % 3) as f32, 0.15 + 0.3 * (m / 3) as f32));
        }
        points.push((15.45, 1.5));
        let view = view_with(&points);
        let mut labels: Vec<u32> = (0..800).map(|i| (i / 400) as u32).collect();
        labels.extend([0; 31]);
        let mut looks: Vec<Option<u32>> = labels.iter().map(|&l| Some(l)).collect();
        looks[800..830].fill(Some(1));
        let native_g: Vec<usize> = (0..400).chain([830]).collect();
        let native_a: Vec<usize> = (400..800).collect();
        let test = |placed_among_look| {
            test_pair(
                &view,
                (&labels, &looks),
                (&members, placed_among_look),
                &native_g,
                &native_a,
                (0, 1),
                0.05,
            )
        };
        // Measured against it, the group lies nearer to class 0 than class
        // 1 does: the spread test withholds it.
        assert!(test(false).is_none());
        // Read with the group as class 1, it looks like class 1 and drops
        // out; the group lies as far from class 0 as its place in class 1.
        assert_eq!(
            keep_their_look(&view, &labels, &native_g, (&members, 1)).len(),
            400
        );
        let g = test(true).expect("the group stands");
        assert!(g.nearer < MAX_NEARER, "{g:?}");
    }

    #[test]
    fn flips_both_ways_are_not_natural_oddness() {
        // Both ways placed among their look well past a fair coin at the
        // level: flipped both ways. One way only, or a coin's count, not.
        assert!(placed_both_ways(((44, 0), (45, 1)), 0.05 / 40.0));
        assert!(!placed_both_ways(((44, 0), (3, 4)), 0.05 / 40.0));
        assert!(!placed_both_ways(((10, 0), (7, 1)), 0.05 / 40.0));
        assert!(!placed_both_ways(((0, 0), (0, 0)), 0.05));
        // In a find: the six images of class 0 labelled 1 placed among
        // class 0 as well, with the 26 labelled 0 among class 1 — both
        // ways memorised; the six no longer stand for natural oddness.
        let (labels, view, mut model) = flips_scattered_over_looks(0, 0);
        for i in 146..152 {
            model.idx[i * 4..(i + 1) * 4].copy_from_slice(&[0, 1, 2, 3]);
        }
        let found = find(&labels, &view, (&model, true), 0.05);
        let g = found.iter().find(|g| (g.given, g.looks) == (0, 1));
        assert_eq!(g.map(|g| g.the_other_way), Some(0), "{found:?}");
        // With the model in the input view's own space, nothing changes.
        let found = find(&labels, &view, (&model, false), 0.05);
        let g = found.iter().find(|g| (g.given, g.looks) == (0, 1));
        assert_eq!(g.map(|g| g.the_other_way), Some(6), "{found:?}");
    }
}
