//! A pattern blended or added at one place into part of a class: smooth
//! ramps and sinusoids (clean-label signals), faint blended noise or images,
//! stamps at a fixed position — on the background or over the object.
//!
//! Whatever is added to an image at a fixed place, or stamped over it, shows
//! *exactly* in the steps between neighbouring pixels: a stamp's steps are
//! its own in every image that carries it, and on a flat background an added
//! pattern's step is the pattern's own. Natural shading rarely repeats a step
//! value exactly at one place across many images. So the search looks at the
//! steps between neighbouring pixels (across and down, per channel) at every
//! place — and at the values themselves, since a stamp replaces them (a
//! solid block's inner steps are flat; its values are its own), except
//! values within `CLIP_MARGIN` of black or white, exact by clipping — and
//! asks, per class, which exact step values recur far more often in the
//! class than in the others — evidence measured against the data's own
//! other classes, not a threshold on pixel values:
//!
//! 1. **The class's pattern.** A step value is part of it when its count in
//!    the class is significant against its rate in the other classes (a
//!    binomial tail, Bonferroni over every step and class at the scan's
//!    false-flag budget) and at least [`SPECIFICITY`] times as common.
//! 2. **Cross-fitted carriers.** The pattern is learnt on one half of the
//!    class and each image of the other half is scored by how many of its
//!    steps match it exactly, so an image's own coincidences never raise its
//!    score. Its p-value is the share of other classes' images that match as
//!    many; Benjamini–Hochberg at the budget picks the carriers.
//! 3. **A group that shares it.** Natural shapes produce small groups of
//!    chance matches (a sub-style's saturated collar, say); a pattern is
//!    accepted only when at least [`localize::MIN_GROUP`] images carry it,
//!    the stronger half of them share at least [`MIN_SHARED_STEPS`] of its
//!    steps *more* than the best-matching image of another class holds (half
//!    as many for a group of at least [`WIDE_SHARE`] of its class), and
//!    [`TIMES_THE_NULL`] times as many (one that other classes' images hold
//!    nearly as well is never accepted), and
//!    what they share marks at least [`localize::MIN_STAMP_PIXELS`] pixels
//!    as stamped (its own value, or two steps to neighbours): a pattern of
//!    one or two pixels is never accepted, whatever the number of its steps
//!    (a two-pixel stamp on a flat background leaves up to eight, in colour
//!    24).

use rayon::prelude::*;

use super::DetectorScores;
use super::detector::{Calibration, Detail, Detector, DetectorInfo, Evidence, Role, ScanContext};
use super::trigger::localize::{self, evenly};
use super::trigger::{Findings, FixedFound, ImageStack, PixelStep, Trigger};
use crate::stats::{self, benjamini_hochberg};

/// The fixed-pattern detector (see the module documentation).
pub struct FixedPattern;

static INFO: DetectorInfo = DetectorInfo {
    name: "fixed_pattern",
    title: "fixed pattern",
    finds: "a pattern blended or added in place into part of a class",
    doing: "comparing pixel steps",
    role: Role::Primary,
    calibration: Calibration::FalseDiscoveryRate {
        flags: "fixed-pattern",
        false_means: "not to carry the pattern",
    },
};

impl Detector for FixedPattern {
    fn info(&self) -> &'static DetectorInfo {
        &INFO
    }
    fn run(&self, ctx: &ScanContext) -> Evidence {
        let (scores, found) = match ctx.images {
            Some(stack) => search(
                stack,
                (&ctx.features.labels, &ctx.features.class_names),
                &carried_before(ctx),
                ctx.options.fdr,
            ),
            None => (
                DetectorScores::new(INFO.name, ctx.len()),
                Findings::none(ctx.len()),
            ),
        };
        Evidence {
            scores: scores.into(),
            detail: Detail::Triggers(found),
        }
    }
}

/// The images an earlier detector found carrying a trigger (the trigger
/// search's carriers): [`search`] looks once more in their classes without
/// them.
fn carried_before(ctx: &ScanContext) -> Vec<bool> {
    let mut out = vec![false; ctx.len()];
    for e in ctx.earlier {
        if let Detail::Triggers(f) = &e.detail {
            for (o, t) in out.iter_mut().zip(&f.trigger_of) {
                *o |= t.is_some();
            }
        }
    }
    out
}

/// How many times more common in the class than elsewhere a step value must
/// be to belong to the class's pattern (natural shading recurs everywhere).
pub const SPECIFICITY: f64 = 10.0;
/// Steps of a pattern the stronger half of its carriers must share beyond
/// the most any image of another class holds. Session 13: 16 until then;
/// over 101 sets scored with both, 8 found six more patterns — a 3-pixel
/// random-binary stamp over the garment in z1606 (66 of 66, 11 steps beyond
/// the null's 3) and z1301 (61 of 61, 8 beyond 2), all of z1106's 84 and
/// badnets' 270, z101's 53 — and one clean image beside z1301's carriers,
/// no pattern on a clean set.
pub const MIN_SHARED_STEPS: usize = 8;
/// ... and at least this many times as many as that image holds: a group
/// sharing 32 steps of which an image of another class holds 23 has found
/// a shape both classes draw, not a stamp. Every pattern accepted on the
/// 101 sets above shares at least 4 times the null's best.
pub const TIMES_THE_NULL: usize = 2;
/// A group holding at least this share of its class needs only half of
/// [`MIN_SHARED_STEPS`] beyond the null. The margin is there for the
/// small groups a class's own shapes make by chance — over 285 sets
/// (devsets, devzoo, sample, draws 1000–4100) the largest such group held
/// 9.8% of its class (28 of z3608's 286 coats), most 2–8% — while a
/// backdoor the model learns is carried by a sizeable share of its target
/// class. A 2×2 stamp leaves only its four inner steps exact in every
/// carrier: z4103's 156 carriers (34% of 'Pullover') share 7 steps, 4
/// beyond the null; z3510's 3×3 stamp at the top edge, 71 (19%), 7 beyond.
pub const WIDE_SHARE: f64 = 0.15;

/// The steps a group of `group` images of a class of `members` must share
/// beyond the null's best ([`MIN_SHARED_STEPS`], halved for a group of at
/// least [`WIDE_SHARE`] of its class).
fn margin(group: usize, members: usize) -> usize {
    if group as f64 >= WIDE_SHARE * members as f64 {
        MIN_SHARED_STEPS / 2
    } else {
        MIN_SHARED_STEPS
    }
}

/// A value (not a step) this close to black or white is no evidence: the
/// background's noise and saturated areas are exact by clipping, and a
/// class's shape puts them at its own places (the gap between trouser legs
/// holds 1s); a stamp's own values are exact wherever they are.
const CLIP_MARGIN: usize = 8;
/// Fewest images of a class half holding a step value for it to count.
const MIN_HOLDERS: u32 = 3;
/// Steps tested at most (spread evenly over the image beyond).
const STEP_CAP: usize = 8_000;
/// Other classes' images an image's matches are compared with, at most.
const NULL_CAP: usize = 4_000;
/// Values a step can take (the difference of two bytes, wrapped).
const VALUES: usize = 256;

/// Flags the images that carry a class's fixed pattern (see the module
/// documentation); `fdr` is the scan's false-flag budget.
///
/// A second look where a trigger was found (session 29): a class may hold
/// two backdoors, and the carriers of one hide the other's pattern — the
/// fresh draw z7803 stamped 264 bags at random places and blended noise
/// into 48 more; the stamp was found, the blend not, and without the
/// stamp's carriers this search finds all 48 and nothing else. So each
/// class holding images `carried` (an earlier detector's trigger
/// carriers) is searched again without them and without every carrier
/// this search's first look found (the histogram the classes are measured
/// against loses those images too). Bonferroni's correction counts every
/// class searched, the second looks too.
pub fn search(
    stack: &ImageStack,
    (labels, names): (&[u32], &[String]),
    carried: &[bool],
    fdr: f64,
) -> (DetectorScores, Findings) {
    let n = labels.len().min(stack.len());
    let mut out = DetectorScores::new(INFO.name, labels.len());
    let mut findings = Findings::none(labels.len());
    let valid: Vec<usize> = (0..n).filter(|&i| stack.valid[i]).collect();
    let steps = evenly(&all_steps(stack), STEP_CAP);
    if steps.is_empty() {
        return (out, findings);
    }
    let again = classes_carrying(labels, &valid, carried, names.len());
    let alpha = fdr / (steps.len() * (names.len() + again.len()).max(1)) as f64;
    let all = names.len() as u32;
    let total = histogram(stack, &steps, &valid);
    let seen = (labels, valid.as_slice(), total.as_slice());
    let mut found = search_classes(stack, seen, &steps, (0..all).collect(), (alpha, fdr));
    if !again.is_empty() {
        // The second look: without the carriers found so far, whose steps
        // leave the whole histogram (not counted again from the rest).
        let mut hidden = carried.to_vec();
        hidden.resize(labels.len(), false);
        for &(i, ..) in found.iter().flat_map(|(_, c)| &c.flagged) {
            hidden[i] = true;
        }
        let (set_aside, rest): (Vec<usize>, Vec<usize>) = valid.iter().partition(|&&i| hidden[i]);
        let rest_total = subtract(total, &histogram(stack, &steps, &set_aside));
        let seen = (labels, rest.as_slice(), rest_total.as_slice());
        found.extend(search_classes(stack, seen, &steps, again, (alpha, fdr)));
    }
    for (class, carriers) in found {
        let name = &names[class as usize];
        carriers.write(&mut out, name);
        let k = findings.triggers.len();
        for &(i, ..) in &carriers.flagged {
            findings.trigger_of[i] = Some(k);
        }
        let trigger = carriers.trigger(class, name, stack, &steps);
        findings.triggers.push(trigger);
    }
    (out, findings)
}

/// The classes holding any of the `valid` images `carried`, in order.
fn classes_carrying(labels: &[u32], valid: &[usize], carried: &[bool], classes: usize) -> Vec<u32> {
    let mut holds = vec![false; classes];
    for &i in valid {
        if carried.get(i).copied().unwrap_or(false)
            && let Some(h) = holds.get_mut(labels[i] as usize)
        {
            *h = true;
        }
    }
    (0..classes as u32).filter(|&c| holds[c as usize]).collect()
}

/// Each of `classes` searched among the `valid` images (their own members
/// against the others'; `total` is their histogram), each step value
/// tested at `alpha`, carriers picked at the budget `fdr`; the carriers of
/// each class that holds a pattern.
fn search_classes(
    stack: &ImageStack,
    (labels, valid, total): (&[u32], &[usize], &[u32]),
    steps: &[PixelStep],
    classes: Vec<u32>,
    (alpha, fdr): (f64, f64),
) -> Vec<(u32, Carriers)> {
    // Members bucketed once, and the null sampled by stepping through all
    // images, so a dataset with very many classes costs no pass over every
    // image per class.
    let mut by_class: Vec<Vec<usize>> =
        vec![Vec::new(); classes.iter().max().map_or(0, |&m| m as usize + 1)];
    for &i in valid {
        if let Some(members) = by_class.get_mut(labels[i] as usize) {
            members.push(i);
        }
    }
    let stride = valid.len().div_ceil(NULL_CAP).max(1);
    classes
        .par_iter()
        .filter_map(|&class| {
            let members = by_class.get(class as usize)?;
            if members.len() < 2 * localize::MIN_GROUP {
                return None;
            }
            let others_count = valid.len() - members.len();
            let null: Vec<usize> = valid
                .iter()
                .step_by(stride)
                .copied()
                .filter(|&i| labels[i] != class)
                .collect();
            if null.is_empty() {
                return None;
            }
            let ctx = ClassSearch {
                stack,
                steps,
                total,
                others_count,
                null,
                alpha,
            };
            ctx.carriers(members, fdr).map(|c| (class, c))
        })
        .collect()
}

/// Every across and down step of the stack's images, and every value.
fn all_steps(stack: &ImageStack) -> Vec<PixelStep> {
    let (w, h, c) = (stack.width, stack.height, stack.channels);
    let at = |x: usize, y: usize, ch: usize| ((y * w + x) * c + ch) as u32;
    let mut out = Vec::new();
    // Direction and channel outermost, so an even sample of the list
    // (beyond STEP_CAP) is an even sample of places for each of them.
    for (dx, dy) in [(1, 0), (0, 1)] {
        for ch in 0..c {
            for y in 0..h - dy {
                for x in 0..w - dx {
                    out.push(PixelStep {
                        from: at(x, y, ch),
                        to: at(x + dx, y + dy, ch),
                    });
                }
            }
        }
    }
    out.extend((0..(w * h * c) as u32).map(|to| PixelStep {
        from: PixelStep::ZERO,
        to,
    }));
    out
}

/// Element-wise difference: counts of a histogram less a part of it.
fn subtract(mut a: Vec<u32>, b: &[u32]) -> Vec<u32> {
    a.iter_mut().zip(b).for_each(|(x, y)| *x -= y);
    a
}

/// Element-wise sum (a rayon reduce step).
fn add(mut a: Vec<u32>, b: Vec<u32>) -> Vec<u32> {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
    a
}

/// Counts of every step value at every step over `images`
/// (`step × VALUES + value`).
fn histogram(stack: &ImageStack, steps: &[PixelStep], images: &[usize]) -> Vec<u32> {
    let len = steps.len() * VALUES;
    images
        .par_chunks(64)
        .fold(
            || vec![0u32; len],
            |mut acc, chunk| {
                for &i in chunk {
                    let img = stack.image(i);
                    for (k, s) in steps.iter().enumerate() {
                        acc[k * VALUES + s.of(img) as usize] += 1;
                    }
                }
                acc
            },
        )
        .reduce(|| vec![0u32; len], add)
}

/// A class's pattern: steps with the value its carriers share.
type Pattern = Vec<(usize, u8)>;

/// What one class's search shares.
struct ClassSearch<'a> {
    stack: &'a ImageStack,
    steps: &'a [PixelStep],
    /// Histogram of every valid image.
    total: &'a [u32],
    /// Valid images of other classes.
    others_count: usize,
    /// The sample of them an image's matches are compared with.
    null: Vec<usize>,
    /// Significance a step value needs (budget over every test).
    alpha: f64,
}

/// One half's pattern, the other classes' matches of it (sorted) and each
/// step's chance of matching by coincidence.
struct Fitted {
    pattern: Pattern,
    null: Vec<u32>,
    chance: Vec<f64>,
}

impl Fitted {
    /// Most matches of any other-class image.
    fn null_max(&self) -> u32 {
        self.null.last().copied().unwrap_or(0)
    }
}

/// The carriers found in one class.
struct Carriers {
    /// (sample, matches, p-value) of each carrier.
    flagged: Vec<(usize, u32, f64)>,
    /// The p-value Benjamini–Hochberg flagged up to.
    threshold: f64,
    /// Most matches of any other-class image in the null sample.
    null_max: u32,
    /// How they hold the whole class's pattern.
    holdings: Holdings,
    /// The whole class's pattern.
    whole: Pattern,
}

impl ClassSearch<'_> {
    /// The class's carriers, when its pattern passes every test.
    fn carriers(&self, members: &[usize], fdr: f64) -> Option<Carriers> {
        let halves: [Vec<usize>; 2] = [
            members.iter().copied().step_by(2).collect(),
            members.iter().copied().skip(1).step_by(2).collect(),
        ];
        let hists = [
            histogram(self.stack, self.steps, &halves[0]),
            histogram(self.stack, self.steps, &halves[1]),
        ];
        let in_class = add(hists[0].clone(), hists[1].clone());
        // Each half is scored against the pattern learnt on the other half.
        let fitted: Vec<Option<Fitted>> = (0..2)
            .map(|h| {
                let pattern = self.pattern(&hists[1 - h], halves[1 - h].len(), &in_class);
                (pattern.len() >= MIN_SHARED_STEPS).then(|| self.fit(pattern, &in_class))
            })
            .collect();
        let null_max = fitted
            .iter()
            .flatten()
            .map(|f| f.null_max())
            .max()
            .unwrap_or(0);
        // A first pass against the other classes' coincidences, then a
        // second with the class's own (its objects' shading where the
        // pattern lies), measured on the members the first did not flag.
        let (first, _) = self.score(members, &fitted);
        let (flags1, _) = benjamini_hochberg(&first, fdr);
        let fitted: Vec<Option<Fitted>> = fitted
            .into_iter()
            .map(|f| f.map(|f| self.with_own_chance(f, members, &flags1)))
            .collect();
        let (p, matches) = self.score(members, &fitted);
        let (flags, threshold) = benjamini_hochberg(&p, fdr);
        let group: Vec<usize> = (0..members.len()).filter(|&k| flags[k]).collect();
        if group.len() < localize::MIN_GROUP {
            return None;
        }
        let whole = self.pattern(&in_class, members.len(), &in_class);
        let carriers: Vec<usize> = group.iter().map(|&k| members[k]).collect();
        let holdings = self.holdings(&carriers, &whole);
        if holdings.shared < margin(group.len(), members.len()) + null_max as usize
            || holdings.shared < TIMES_THE_NULL * null_max as usize
            || holdings.pixels < localize::MIN_STAMP_PIXELS
        {
            return None;
        }
        Some(Carriers {
            flagged: group
                .iter()
                .map(|&k| (members[k], matches[k], p[k]))
                .collect(),
            threshold,
            null_max,
            holdings,
            whole,
        })
    }

    /// A half's pattern with what its matches are judged against.
    fn fit(&self, pattern: Pattern, in_class: &[u32]) -> Fitted {
        let mut null: Vec<u32> = self
            .null
            .iter()
            .map(|&i| self.matches(i, &pattern))
            .collect();
        null.sort_unstable();
        let chance = self.chance(&pattern, in_class);
        Fitted {
            pattern,
            null,
            chance,
        }
    }

    /// Per member: the p-value of its matches (the larger of "beyond the
    /// other classes' images" and "beyond coincidence"), NaN where its half
    /// has no pattern, and the matches.
    fn score(&self, members: &[usize], fitted: &[Option<Fitted>]) -> (Vec<f64>, Vec<u32>) {
        let mut p = vec![f64::NAN; members.len()];
        let mut matches = vec![0u32; members.len()];
        for (h, f) in fitted.iter().enumerate() {
            let Some(f) = f else { continue };
            for (pos, &i) in members.iter().enumerate().skip(h).step_by(2) {
                let (m, by_chance) = self.coincidence(i, &f.pattern, &f.chance);
                let at_least = f.null.len() - f.null.partition_point(|&v| v < m);
                let beyond_others = (1 + at_least) as f64 / (1 + f.null.len()) as f64;
                p[pos] = beyond_others.max(by_chance);
                matches[pos] = m;
            }
        }
        (p, matches)
    }

    /// Raises each step's chance to how often the class's own unflagged
    /// members, where not flat, take the pattern's value there.
    fn with_own_chance(&self, mut f: Fitted, members: &[usize], flagged: &[bool]) -> Fitted {
        let clean: Vec<&[u8]> = members
            .iter()
            .zip(flagged)
            .filter(|(_, f)| !**f)
            .map(|(&i, _)| self.stack.image(i))
            .collect();
        for (c, &(k, v)) in f.chance.iter_mut().zip(&f.pattern) {
            let (mut held, mut non_flat) = (0u32, 0u32);
            for img in &clean {
                let step = self.steps[k].of(img);
                non_flat += u32::from(step != 0);
                held += u32::from(step == v);
            }
            *c = c.max((f64::from(held) + 1.0) / (f64::from(non_flat) + 2.0));
        }
        f
    }

    /// The step values that recur in `fit` (a histogram of `n_fit` images
    /// of the class) far beyond their rate in the other classes (`in_class`
    /// is the whole class's histogram, taken out of the total).
    fn pattern(&self, fit: &[u32], n_fit: usize, in_class: &[u32]) -> Pattern {
        let n_other = self.others_count as f64;
        (0..self.steps.len())
            .filter_map(|k| {
                let row = &fit[k * VALUES..(k + 1) * VALUES];
                let values = if self.steps[k].from == PixelStep::ZERO {
                    CLIP_MARGIN..VALUES - CLIP_MARGIN
                } else {
                    1..VALUES
                };
                let (value, &held) = row[values.clone()]
                    .iter()
                    .zip(values)
                    .map(|(h, v)| (v, h))
                    .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))?;
                let at = k * VALUES + value;
                let elsewhere = f64::from(self.total[at] - in_class[at]);
                let rate = (elsewhere + 1.0) / (n_other + 1.0);
                let share = f64::from(held) / n_fit as f64;
                let specific = held >= MIN_HOLDERS && share >= SPECIFICITY * rate;
                (specific && stats::binomial_tail_bound(held, n_fit, rate) <= self.alpha)
                    .then_some((k, value as u8))
            })
            .collect()
    }

    /// Per step of `pattern`: the chance that a non-flat step of an image
    /// without the pattern takes the pattern's value there, as often as the
    /// other classes' non-flat steps do (add-one smoothed).
    fn chance(&self, pattern: &Pattern, in_class: &[u32]) -> Vec<f64> {
        pattern
            .iter()
            .map(|&(k, v)| {
                let at = |value: usize| k * VALUES + value;
                let held = self.total[at(v as usize)] - in_class[at(v as usize)];
                let flat = self.total[at(0)] - in_class[at(0)];
                let non_flat = self.others_count as u32 - flat.min(self.others_count as u32);
                (f64::from(held) + 1.0) / (f64::from(non_flat) + 2.0)
            })
            .collect()
    }

    /// Image `i`'s matches of `pattern`, and the p-value of that many by
    /// coincidence: among its non-flat steps there, each matches with its
    /// [`Self::chance`] (an object's shading, not a shared pattern). This
    /// keeps the class's own images, whose objects cover the pattern's
    /// places, from being judged by other classes' flat background there.
    fn coincidence(&self, i: usize, pattern: &Pattern, chance: &[f64]) -> (u32, f64) {
        let img = self.stack.image(i);
        let (mut matched, mut non_flat, mut rate) = (0u32, 0usize, 0.0);
        for (&(k, v), &c) in pattern.iter().zip(chance) {
            let step = self.steps[k].of(img);
            if step != 0 {
                non_flat += 1;
                rate += c;
                matched += u32::from(step == v);
            }
        }
        let mean = rate / non_flat.max(1) as f64;
        (matched, stats::binomial_tail_bound(matched, non_flat, mean))
    }

    /// How many of `pattern`'s steps image `i` matches exactly.
    fn matches(&self, i: usize, pattern: &Pattern) -> u32 {
        let img = self.stack.image(i);
        pattern
            .iter()
            .filter(|&&(k, v)| self.steps[k].of(img) == v)
            .count() as u32
    }

    /// How `carriers` hold `pattern`: per step, how many of them hold it;
    /// the fewest steps any of them holds; and the steps at least half of
    /// the stronger half (by steps held) hold.
    fn holdings(&self, carriers: &[usize], pattern: &Pattern) -> Holdings {
        let mut held_by = vec![0u32; pattern.len()];
        let mut by_matches: Vec<(u32, usize)> = Vec::with_capacity(carriers.len());
        for &i in carriers {
            let img = self.stack.image(i);
            let mut m = 0;
            for (held, &(k, v)) in held_by.iter_mut().zip(pattern) {
                if self.steps[k].of(img) == v {
                    *held += 1;
                    m += 1;
                }
            }
            by_matches.push((m, i));
        }
        let need = by_matches.iter().map(|&(m, _)| m).min().unwrap_or(0);
        by_matches.sort_unstable_by(|a, b| b.cmp(a));
        let strong = &by_matches[..by_matches.len().div_ceil(2)];
        let shared: Vec<PixelStep> = pattern
            .iter()
            .filter(|&&(k, v)| {
                let held = strong
                    .iter()
                    .filter(|&&(_, i)| self.steps[k].of(self.stack.image(i)) == v)
                    .count();
                2 * held >= strong.len()
            })
            .map(|&(k, _)| self.steps[k])
            .collect();
        Holdings {
            held_by,
            need,
            shared: shared.len(),
            pixels: stamp_pixels(&shared, self.stack.channels)
                .max(beyond_two_pixels(shared.len(), self.stack.channels)),
        }
    }
}

/// How a class's carriers hold its whole pattern ([`ClassSearch::holdings`]).
struct Holdings {
    /// Per step of the pattern, carriers holding it.
    held_by: Vec<u32>,
    /// Fewest steps any carrier holds.
    need: u32,
    /// Steps the stronger half of the carriers share.
    shared: usize,
    /// Pixels what they share marks as stamped ([`stamp_pixels`]), or at
    /// least [`localize::MIN_STAMP_PIXELS`] when they share more pieces
    /// than two pixels leave ([`beyond_two_pixels`]).
    pixels: usize,
}

/// [`localize::MIN_STAMP_PIXELS`] when `shared` steps and values are more
/// than any stamp of one or two pixels leaves (each pixel: its value and
/// four steps, per channel — 10 per channel for two), else 0. With the
/// steps thinned beyond [`STEP_CAP`] (every other one of a 40 px colour
/// image) [`stamp_pixels`] sees no pixel between two shared steps: a
/// clean-label sinusoid on 110 colour ankle boots (z3806) shared 1,085
/// steps that lay on "0 pixels" and was never a trigger.
fn beyond_two_pixels(shared: usize, channels: usize) -> usize {
    if shared > 10 * channels.max(1) {
        localize::MIN_STAMP_PIXELS
    } else {
        0
    }
}

/// How many pixels (channels merged) `shared` marks as stamped: a pixel
/// whose own value it holds, or that two of its steps touch (a step only
/// says that one of its two ends is stamped; the background pixels around
/// a stamp each hold one step to it). So a one- or two-pixel stamp counts
/// one or two, however many exact steps it leaves.
fn stamp_pixels(shared: &[PixelStep], channels: usize) -> usize {
    let pixel = |offset: u32| offset as usize / channels.max(1);
    let mut pairs: Vec<(Option<usize>, usize)> = shared
        .iter()
        .map(|s| {
            (
                (s.from != PixelStep::ZERO).then(|| pixel(s.from)),
                pixel(s.to),
            )
        })
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let valued: std::collections::BTreeSet<usize> = pairs
        .iter()
        .filter(|(from, _)| from.is_none())
        .map(|&(_, to)| to)
        .collect();
    let mut stepped: Vec<usize> = pairs
        .iter()
        .filter_map(|&(from, to)| from.map(|f| [f, to]))
        .flatten()
        .collect();
    stepped.sort_unstable();
    let twice: std::collections::BTreeSet<usize> = stepped
        .chunk_by(|a, b| a == b)
        .filter(|run| run.len() >= 2)
        .map(|run| run[0])
        .collect();
    valued.union(&twice).count()
}

impl Carriers {
    /// The pattern as a trigger the workbench shows: a map of where the
    /// carriers share its steps, and how many steps a carrier holds at least.
    fn trigger(&self, class: u32, name: &str, stack: &ImageStack, steps: &[PixelStep]) -> Trigger {
        let (w, h, c) = (stack.width, stack.height, stack.channels);
        let mut map = vec![0f32; w * h];
        let share = |held: u32| held as f32 / self.flagged.len().max(1) as f32;
        for (&held, &(k, _)) in self.holdings.held_by.iter().zip(&self.whole) {
            for offset in steps[k].offsets() {
                let px = offset as usize / c;
                map[px] = map[px].max(share(held));
            }
        }
        let found = FixedFound {
            class,
            map,
            carriers: self.flagged.len(),
            summary: format!(
                "a pattern fixed in place, shared by {} images of '{name}' ({} exact pixel steps in common, none of another class holding more than {} of them)",
                self.flagged.len(),
                self.holdings.shared,
                self.null_max
            ),
            steps: self.whole.iter().map(|&(k, v)| (steps[k], v)).collect(),
            need: self.holdings.need,
        };
        Trigger::fixed(found, w, h)
    }

    /// Writes the carriers' flags, scores and reasons.
    fn write(&self, out: &mut DetectorScores, class: &str) {
        let group = self.flagged.len();
        for &(i, m, p) in &self.flagged {
            out.flagged[i] = true;
            out.score[i] = (0.5 + 0.5 * (1.0 - p / self.threshold.max(f64::MIN_POSITIVE)))
                .clamp(0.5, 1.0) as f32;
            out.reasons.set(i, format!(
                "carries a pattern fixed in place that {group} '{class}' images share ({} pixel steps in common): {m} of its steps match it exactly, no image of another class more than {} (a blended or added signal)",
                self.holdings.shared, self.null_max
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use super::*;

    /// `n` grey 16×16 images: a shape in the middle (varying brightness) on a
    /// black background; labels cycle over 4 classes; images in `carriers`
    /// get a vertical ramp added (clipped), as a clean-label signal is.
    fn stack_with_ramp(n: usize, carriers: &[usize]) -> (ImageStack, Vec<u32>) {
        let (w, h) = (16usize, 16usize);
        let mut data = vec![0u8; n * w * h];
        for i in 0..n {
            let img = &mut data[i * w * h..(i + 1) * w * h];
            let size = 3 + i % 5;
            for y in 8 - size / 2..8 + size / 2 {
                for x in 8 - size / 2 + (i % 3)..8 + size / 2 {
                    img[y * w + x] = 120 + ((i * 37 + x * 11 + y * 5) % 120) as u8;
                }
            }
            if carriers.contains(&i) {
                for y in 0..h {
                    let s = (y as f64 - 7.5) * 5.0;
                    for x in 0..w {
                        let v = f64::from(img[y * w + x]) + s;
                        img[y * w + x] = v.round().clamp(0.0, 255.0) as u8;
                    }
                }
            }
        }
        let stack = ImageStack::grey(w, h, data);
        let labels = (0..n).map(|i| (i % 4) as u32).collect();
        (stack, labels)
    }

    fn names() -> Vec<String> {
        (0..4).map(|c| format!("c{c}")).collect()
    }

    #[test]
    fn a_pattern_beside_another_backdoor_s_carriers_is_found_without_them() {
        // Class 2 (400 images): 30 carry a faint pattern added at twelve
        // fixed background pixels, and 250 others a 7×7 random binary
        // stamp at a random place each — a backdoor the trigger search
        // found. The stamps' exact steps fill the class's pattern and its
        // strongest carriers share no step: one look finds nothing.
        let faint: Vec<usize> = (0..30).map(|k| 2 + 4 * k).collect();
        let stamped: Vec<usize> = (30..280).map(|k| 2 + 4 * k).collect();
        let (base, labels) = stack_with_ramp(1600, &[]);
        let data: Vec<u8> = (0..1600)
            .flat_map(|i| -> Vec<u8> {
                let mut img = base.image(i).to_vec();
                if faint.contains(&i) {
                    for k in 0..12 {
                        img[(k / 6) * 16 + 2 * (k % 6)] = 40;
                    }
                }
                if stamped.contains(&i) {
                    let (x0, y0) = ((i * 7) % 10, (i * 5) % 10);
                    for dy in 0..7 {
                        for dx in 0..7 {
                            let on = (dx * 5 + dy * 3 + dx * dy + i) % 3 == 0;
                            img[(y0 + dy) * 16 + x0 + dx] = if on { 214 } else { 0 };
                        }
                    }
                }
                img
            })
            .collect();
        let stack = ImageStack::grey(16, 16, data);
        let (s, _) = search(&stack, (&labels, &names()), &[], 0.05);
        let once = faint.iter().filter(|&&i| s.flagged[i]).count();
        let mut carried = vec![false; 1600];
        stamped.iter().for_each(|&i| carried[i] = true);
        let (s, found) = search(&stack, (&labels, &names()), &carried, 0.05);
        let twice = faint.iter().filter(|&&i| s.flagged[i]).count();
        // Nothing but the two backdoors' images is flagged (stamps that
        // happen to share a place are a fixed stamp too).
        let clean = (0..1600)
            .filter(|&i| s.flagged[i] && !faint.contains(&i) && !stamped.contains(&i))
            .count();
        assert!(
            once == 0 && twice >= 25 && clean == 0,
            "faint carriers found: {once} in one look, {twice} in two ({clean} clean)"
        );
        let faint_trigger = found.trigger_of[faint[0]].expect("the faint pattern is a trigger");
        assert!(found.triggers[faint_trigger].summary.contains("'c2'"));
        let all: Vec<usize> = (0..1600).collect();
        assert_eq!(classes_carrying(&labels, &all, &carried, 4), vec![2]);
    }

    #[test]
    fn finds_a_ramp_added_to_part_of_one_class() {
        // Class 2 is every 4th image from 2; 30 of its 100 carry the ramp.
        let carriers: Vec<usize> = (0..30).map(|k| 2 + 4 * k).collect();
        let (stack, labels) = stack_with_ramp(400, &carriers);
        let (s, found) = search(&stack, (&labels, &names()), &[], 0.05);
        let flagged: Vec<usize> = (0..400).filter(|&i| s.flagged[i]).collect();
        assert_eq!(flagged, carriers, "exactly the ramp's carriers");
        let reason = s.reason(carriers[0]).unwrap();
        assert!(reason.contains("'c2'"), "{reason}");
        // The workbench's trigger: every carrier points to it, its map lies
        // on the background below the shapes, and it scores its carriers.
        assert_eq!(found.triggers.len(), 1);
        assert!(carriers.iter().all(|&i| found.trigger_of[i] == Some(0)));
        let t = &found.triggers[0];
        let top_rows: f32 = t.map[..16 * 3].iter().sum();
        let bottom_rows: f32 = t.map[16 * 13..].iter().sum();
        assert!(
            bottom_rows > 10.0 && top_rows == 0.0,
            "{top_rows} {bottom_rows}"
        );
        let hits = t.score(&stack, &labels);
        assert!(carriers.iter().all(|&i| hits[i].score >= 0.5));
        assert!(hits[0].score < 0.5 && hits[1].score < 0.5);
    }

    /// `n` images as [`stack_with_ramp`] makes them, each with a textured
    /// object over its middle (its steps vary from image to image).
    fn textured(n: usize) -> (ImageStack, Vec<u32>) {
        let (mut stack, labels) = stack_with_ramp(n, &[]);
        let mut seed = 7u64;
        for img in stack.data.chunks_mut(256) {
            for y in 4..12 {
                for x in 4..12 {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    img[y * 16 + x] = 60 + (seed >> 33) as u8 % 150;
                }
            }
        }
        (stack, labels)
    }

    /// Stamps a checkerboard of 200 and 0 over `rows` × `cols` of image `i`.
    fn stamp(stack: &mut ImageStack, i: usize, rows: Range<usize>, cols: Range<usize>) {
        let img = &mut stack.data[i * 256..(i + 1) * 256];
        for y in rows {
            for x in cols.clone() {
                img[y * 16 + x] = if (x + y) % 2 == 0 { 200 } else { 0 };
            }
        }
    }

    /// [`textured`] images with a 4×4 checkerboard (24 exact steps) over the
    /// object in 20 of class 1's 100 images, and those 20.
    fn stamped_in_class_1() -> (ImageStack, Vec<u32>, Vec<usize>) {
        let carriers: Vec<usize> = (0..20).map(|k| 1 + 4 * k).collect();
        let (mut stack, labels) = textured(400);
        for &i in &carriers {
            stamp(&mut stack, i, 6..10, 6..10);
        }
        (stack, labels, carriers)
    }

    #[test]
    fn finds_a_stamp_over_the_object_where_images_are_not_flat() {
        let (stack, labels, carriers) = stamped_in_class_1();
        let (s, found) = search(&stack, (&labels, &names()), &[], 0.05);
        let flagged: Vec<usize> = (0..400).filter(|&i| s.flagged[i]).collect();
        assert_eq!(flagged, carriers, "exactly the stamp's carriers");
        assert_eq!(found.triggers.len(), 1);
    }

    #[test]
    fn a_small_pattern_another_class_s_image_nearly_holds_is_not_a_trigger() {
        // The group found above is not accepted once an image of class 2
        // holds three of the stamp's rows (23 of the 32 steps and values
        // the group shares) by chance, as a natural shape shared across
        // classes does: the group then shares too little beyond that (9
        // more, but not twice as many).
        let (mut stack, labels, _) = stamped_in_class_1();
        stamp(&mut stack, 2, 6..9, 6..10);
        let (s, found) = search(&stack, (&labels, &names()), &[], 0.05);
        assert!(!s.flagged.iter().any(|&f| f) && found.triggers.is_empty());
    }

    /// [`stack_with_ramp`] images with `pixels` set to 170 in 20 of class
    /// 1's images (on their black background), and those 20.
    fn tiny_stamp(pixels: &[(usize, usize)]) -> (ImageStack, Vec<u32>, Vec<usize>) {
        let carriers: Vec<usize> = (0..20).map(|k| 1 + 4 * k).collect();
        let (mut stack, labels) = stack_with_ramp(400, &[]);
        for &i in &carriers {
            for &(y, x) in pixels {
                stack.data[i * 256 + y * 16 + x] = 170;
            }
        }
        (stack, labels, carriers)
    }

    #[test]
    fn a_stamp_of_three_pixels_is_found_and_one_of_two_never() {
        // Three pixels in an L (10 exact steps and values, none held by
        // another class): a trigger.
        let (stack, labels, carriers) = tiny_stamp(&[(2, 2), (2, 3), (3, 2)]);
        let (s, found) = search(&stack, (&labels, &names()), &[], 0.05);
        let flagged: Vec<usize> = (0..400).filter(|&i| s.flagged[i]).collect();
        assert_eq!(flagged, carriers);
        assert_eq!(found.triggers.len(), 1);
        // Two pixels leave 8 exact pieces — as many beyond the null as the
        // L's margin needs — but lie on two pixels: never a trigger.
        let (stack, labels, _) = tiny_stamp(&[(2, 2), (2, 3)]);
        let (s, found) = search(&stack, (&labels, &names()), &[], 0.05);
        assert!(!s.flagged.iter().any(|&f| f) && found.triggers.is_empty());
    }

    /// [`textured`] images with a 2×2 diagonal of 200 and 0 at the lower
    /// edge of the object (rows 11–12, columns 6–7: half on the texture,
    /// half on the black below) in `carriers` of class 1's 100 images.
    fn diagonal_at_the_edge(carriers: usize) -> (ImageStack, Vec<u32>, Vec<usize>) {
        let carriers: Vec<usize> = (0..carriers).map(|k| 1 + 4 * k).collect();
        let (mut stack, labels) = textured(400);
        for &i in &carriers {
            let img = &mut stack.data[i * 256..(i + 1) * 256];
            for (y, x, v) in [(11, 6, 200), (11, 7, 0), (12, 6, 0), (12, 7, 200)] {
                img[y * 16 + x] = v;
            }
        }
        (stack, labels, carriers)
    }

    #[test]
    fn a_small_stamp_carried_by_a_wide_share_of_its_class_is_found() {
        // A 2×2 stamp leaves few exact pieces where it lies half on an
        // object's texture; carried by 30 of its class's 100 images it
        // needs only half the margin, and is found.
        let (stack, labels, carriers) = diagonal_at_the_edge(30);
        let (s, found) = search(&stack, (&labels, &names()), &[], 0.05);
        let flagged: Vec<usize> = (0..400).filter(|&i| s.flagged[i]).collect();
        assert_eq!(flagged, carriers, "exactly the stamp's carriers");
        assert_eq!(found.triggers.len(), 1);
        // Carried by 10 of them — as small a group as a class's own shapes
        // make by chance — the same few pieces are not enough.
        let (stack, labels, _) = diagonal_at_the_edge(10);
        let (s, found) = search(&stack, (&labels, &names()), &[], 0.05);
        assert!(!s.flagged.iter().any(|&f| f) && found.triggers.is_empty());
        assert_eq!(margin(10, 100), MIN_SHARED_STEPS);
        assert_eq!(margin(15, 100), MIN_SHARED_STEPS / 2);
    }

    #[test]
    fn more_pieces_than_two_pixels_leave_are_a_stamp_of_three_or_more() {
        // Two pixels leave at most their two values and eight steps per
        // channel: 30 in colour. More lie on three pixels at least, even
        // where thinned steps leave no pixel between two of them.
        assert_eq!(beyond_two_pixels(30, 3), 0);
        assert_eq!(beyond_two_pixels(31, 3), localize::MIN_STAMP_PIXELS);
        assert_eq!(beyond_two_pixels(10, 1), 0);
        assert_eq!(beyond_two_pixels(1085, 3), localize::MIN_STAMP_PIXELS);
        // Every other step across a row: no pixel between two shared steps.
        let thinned: Vec<PixelStep> = (0..20u32)
            .map(|k| PixelStep {
                from: 2 * k,
                to: 2 * k + 1,
            })
            .collect();
        assert_eq!(stamp_pixels(&thinned, 1), 0);
    }

    #[test]
    fn stamp_pixels_counts_the_pixels_a_pattern_lies_on() {
        // Grey 16-wide image; a step is (from, to) offsets, a value (ZERO, at).
        let step = |from: u32, to: u32| PixelStep { from, to };
        let value = |at: u32| PixelStep {
            from: PixelStep::ZERO,
            to: at,
        };
        // Two pixels (34, 35) on a flat background: their values, the step
        // between them and the steps from the four sides.
        let two = [
            value(34),
            value(35),
            step(33, 34),
            step(35, 36),
            step(18, 34),
            step(19, 35),
            step(34, 50),
            step(35, 51),
        ];
        assert_eq!(stamp_pixels(&two, 1), 2);
        // Without their values (clipped white), the steps still mark two.
        assert_eq!(stamp_pixels(&two[2..], 1), 2);
        // The same in colour (three channels, offsets × 3 + channel): still two.
        let rgb: Vec<PixelStep> = two
            .iter()
            .flat_map(|s| {
                (0..3u32).map(move |c| PixelStep {
                    from: if s.from == PixelStep::ZERO {
                        s.from
                    } else {
                        s.from * 3 + c
                    },
                    to: s.to * 3 + c,
                })
            })
            .collect();
        assert_eq!(stamp_pixels(&rgb, 3), 2);
        // A third pixel below the first makes three.
        let mut three = two.to_vec();
        three.extend([value(50), step(49, 50), step(50, 66)]);
        assert_eq!(stamp_pixels(&three, 1), 3);
        // A solid block over a textured object shares only its values.
        let block: Vec<PixelStep> = (0..9).map(|k| value(100 + k / 3 * 16 + k % 3)).collect();
        assert_eq!(stamp_pixels(&block, 1), 9);
    }

    #[test]
    fn finds_a_solid_stamp_by_its_values() {
        // A solid 4×4 block of 170 on the background of 20 of class 1's
        // images: its inner steps are flat (0, no evidence) and its edges
        // are too few, but its exact values are its own.
        let carriers: Vec<usize> = (0..20).map(|k| 1 + 4 * k).collect();
        let (mut stack, labels) = stack_with_ramp(400, &[]);
        for &i in &carriers {
            let img = &mut stack.data[i * 256..(i + 1) * 256];
            for y in 11..15 {
                img[y * 16 + 1..y * 16 + 5].fill(170);
            }
        }
        let (s, found) = search(&stack, (&labels, &names()), &[], 0.05);
        let flagged: Vec<usize> = (0..400).filter(|&i| s.flagged[i]).collect();
        assert_eq!(flagged, carriers);
        // The map shows the block (values have one pixel each).
        let t = &found.triggers[0];
        assert!(t.map[12 * 16 + 2] > 0.5 && t.map[2 * 16 + 8] == 0.0);
    }

    #[test]
    fn flags_nothing_without_a_pattern() {
        let (stack, labels) = stack_with_ramp(400, &[]);
        let (s, found) = search(&stack, (&labels, &names()), &[], 0.05);
        assert!(!s.flagged.iter().any(|&f| f));
        assert!(found.triggers.is_empty());
    }

    #[test]
    fn a_pattern_spread_over_every_class_is_not_one_class_s() {
        // Every 3rd image of every class carries the ramp: nothing specific.
        let carriers: Vec<usize> = (0..400).step_by(3).collect();
        let (stack, labels) = stack_with_ramp(400, &carriers);
        let (s, _) = search(&stack, (&labels, &names()), &[], 0.05);
        assert!(!s.flagged.iter().any(|&f| f));
    }

    /// A fixed-pattern trigger of `class` on a 2×2 stack, `carriers` said.
    fn fixed_trigger(class: u32, carriers: usize) -> Trigger {
        Trigger::fixed(
            FixedFound {
                class,
                map: vec![0.0; 4],
                carriers,
                summary: String::new(),
                steps: vec![(PixelStep { from: 0, to: 1 }, 5)],
                need: 1,
            },
            2,
            2,
        )
    }

    #[test]
    fn findings_merge_keeps_the_first_trigger_and_offsets_the_second() {
        let trigger = |class| fixed_trigger(class, 1);
        let mut a = Findings::none(3);
        a.triggers.push(trigger(0));
        a.trigger_of[0] = Some(0);
        a.boxes[0] = Some([0, 0, 1, 1]);
        let mut b = Findings::none(3);
        b.triggers.push(trigger(1));
        b.trigger_of[0] = Some(0);
        b.trigger_of[2] = Some(0);
        a.merge(b);
        assert_eq!(a.triggers.len(), 2);
        assert_eq!(a.trigger_of, vec![Some(0), None, Some(1)]);
        assert_eq!(a.boxes[0], Some([0, 0, 1, 1]));
    }

    #[test]
    fn findings_merge_lists_a_stamp_found_twice_once() {
        // Four of five carriers of the second search's trigger carry the
        // first's, of the same class: the same stamp, listed once, and its
        // fifth carrier points to the first.
        let trigger = |class| fixed_trigger(class, 5);
        let first = |class| {
            let mut a = Findings::none(6);
            a.triggers.push(trigger(class));
            (0..4).for_each(|i| a.trigger_of[i] = Some(0));
            a
        };
        let second = || {
            let mut b = Findings::none(6);
            b.triggers.push(trigger(1));
            (0..5).for_each(|i| b.trigger_of[i] = Some(0));
            b
        };
        let mut a = first(1);
        a.triggers[0].carriers = 4;
        a.merge(second());
        assert_eq!(a.triggers.len(), 1);
        assert_eq!(a.trigger_of, [vec![Some(0); 5], vec![None]].concat());
        assert_eq!(a.triggers[0].carriers, 5);
        // Found in another class, it is another trigger.
        let mut a = first(0);
        a.merge(second());
        assert_eq!(a.triggers.len(), 2);
        assert_eq!(a.trigger_of[4], Some(1));
    }

    #[test]
    fn a_class_per_image_is_searched_at_no_cost_and_flags_nothing() {
        // Hostile labels: every image its own class (no class can hold a group).
        let (stack, _) = stack_with_ramp(3000, &(0..3000).step_by(2).collect::<Vec<_>>());
        let labels: Vec<u32> = (0..3000).collect();
        let names: Vec<String> = (0..3000).map(|c| c.to_string()).collect();
        let (s, found) = search(&stack, (&labels, &names), &[], 0.05);
        assert!(!s.flagged.iter().any(|&f| f) && found.triggers.is_empty());
    }
}
