//! The `trigger` detector: finds the pattern a backdoor stamped or blended
//! into images, from the images themselves, and flags every image carrying
//! it — also those whose embeddings looked clean.
//!
//! For each class, the minority group the activation clustering split off is
//! a candidate (whether or not its split passed the embedding test: a weak
//! model may barely separate a real backdoor). [`mod@localize`] compares its
//! images with the rest; an accepted patch or blend is then looked for in
//! every image ([`Trigger::score`]), at its place and, for patches, a few
//! pixels around it.

pub mod localize;
pub mod stack;
pub mod windows;

pub use localize::{Localization, localize};
pub use stack::{ImageStack, PixelStep};

use rayon::prelude::*;

use super::DetectorScores;

/// The trigger detector's name (its report column and flags): the search
/// here scores under it; the detector itself is
/// [`super::trigger_search::TriggerSearch`].
pub const NAME: &str = "trigger";

/// What kind of trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerKind {
    /// A stamp in one place: has a box.
    Patch,
    /// A pattern blended over whole images: a map, no box.
    Blend,
}

/// A trigger found in a group of images, ready to look for in any image.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Trigger {
    /// Class whose group revealed it (the backdoor's target, usually).
    pub class: u32,
    /// Patch or blend.
    pub kind: TriggerKind,
    /// Patch box in stack pixels (x0, y0, x1, y1 inclusive).
    pub bbox: Option<[u32; 4]>,
    /// Stack size the box and map refer to.
    pub width: usize,
    /// Stack height.
    pub height: usize,
    /// The map to show (height × width, 0..1): agreement for a patch,
    /// fine-detail mean difference for a blend.
    pub map: Vec<f32>,
    /// Readable images in the group it was found in.
    pub group_size: usize,
    /// Images carrying it (set by the scan).
    pub carriers: usize,
    /// One line for people.
    pub summary: String,
    /// The stamp itself (patches): the group's median image inside the box.
    pub pattern: Option<Pattern>,
    scorer: Scorer,
}

/// A trigger patch's pixels: what the stamp looks like.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pattern {
    /// Box width.
    pub width: usize,
    /// Box height.
    pub height: usize,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Row-major values inside the box.
    pub pixels: Vec<u8>,
    /// Which pixels of the box belong to the stamp.
    pub mask: Vec<bool>,
}

impl Pattern {
    /// Crops `image` (stack layout) and `mask` to `bbox`.
    fn crop(
        image: &[u8],
        mask: &[bool],
        stack_width: usize,
        channels: usize,
        bbox: [u32; 4],
    ) -> Self {
        let [x0, y0, x1, y1] = bbox.map(|v| v as usize);
        let (width, height) = (x1 - x0 + 1, y1 - y0 + 1);
        let mut pixels = Vec::with_capacity(width * height * channels);
        let mut m = Vec::with_capacity(width * height);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let p = y * stack_width + x;
                pixels.extend_from_slice(&image[p * channels..(p + 1) * channels]);
                m.push(mask[p]);
            }
        }
        Pattern {
            width,
            height,
            channels,
            pixels,
            mask: m,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum Scorer {
    Patch {
        pixels: Vec<(usize, usize)>,
        ring: Vec<(usize, usize)>,
        pattern: Vec<u8>,
        contrast: f32,
        radius: isize,
    },
    Blend(localize::Blend),
    /// A stamp found by [`windows`]: present wherever its window recurs.
    Window {
        hash: u64,
    },
    /// A pattern fixed in place ([`super::fixed_pattern`]): exact steps
    /// between neighbouring values (byte offsets and the step), carried when
    /// at least `need` of them match.
    Fixed {
        steps: Vec<(PixelStep, u8)>,
        need: u32,
    },
}

/// One image's result against one trigger.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// 0..1, ≥ 0.5 when the image carries the trigger.
    pub score: f32,
    /// Where (patches), in stack pixels.
    pub bbox: Option<[u32; 4]>,
}

impl Trigger {
    /// The trigger a localization found (a patch if there is one, else a
    /// blend); None if it found neither.
    pub fn from_localization(loc: &Localization, class: u32, class_name: &str) -> Option<Trigger> {
        let (kind, bbox, map, summary, scorer) = if let Some(p) = &loc.patch {
            let (pixels, ring) = localize::pixels_and_ring(&p.mask, loc.width, loc.height);
            let [x0, y0, x1, y1] = p.bbox;
            (
                TriggerKind::Patch,
                Some(p.bbox),
                loc.map.clone(),
                format!(
                    "{}×{} patch at x {x0}–{x1}, y {y0}–{y1} shared exactly by {:.0}% of a {}-image group of '{class_name}'",
                    x1 - x0 + 1,
                    y1 - y0 + 1,
                    p.group_match * 100.0,
                    loc.group_size
                ),
                Scorer::Patch {
                    pixels,
                    ring,
                    pattern: loc.pattern.clone(),
                    contrast: p.contrast,
                    radius: (loc.width.max(loc.height) as f32 / 14.0).round().max(1.0) as isize,
                },
            )
        } else if let Some(b) = &loc.blend {
            (
                TriggerKind::Blend,
                None,
                loc.detail_map.clone(),
                format!(
                    "a pattern blended over whole images ({:.0}% of the mean difference is fine detail; the {}-image group of '{class_name}' stands {:.1} robust SDs out along it)",
                    b.detail * 100.0,
                    loc.group_size,
                    b.group_z
                ),
                Scorer::Blend(b.clone()),
            )
        } else {
            return None;
        };
        Some(Trigger {
            class,
            kind,
            bbox,
            width: loc.width,
            height: loc.height,
            map,
            group_size: loc.group_size,
            carriers: 0,
            summary,
            pattern: loc
                .patch
                .as_ref()
                .map(|p| Pattern::crop(&loc.pattern, &p.mask, loc.width, loc.channels, p.bbox)),
            scorer,
        })
    }

    /// What the trigger's map shows, for people.
    pub fn map_caption(&self) -> &'static str {
        match (&self.scorer, self.kind) {
            (Scorer::Window { .. }, _) => {
                "Map: where the class's images hold the pattern. Next to it: the pattern."
            }
            (Scorer::Fixed { .. }, _) => {
                "Map: where the carriers share the pattern's exact steps (bright = most of them)"
            }
            (_, TriggerKind::Patch) => {
                "Map: where the group agrees and the rest does not. Next to it: the stamp."
            }
            (_, TriggerKind::Blend) => "The blended pattern's fine detail",
        }
    }

    /// What the workbench calls it.
    pub fn heading(&self) -> &'static str {
        match (&self.scorer, self.kind) {
            (Scorer::Fixed { .. }, _) => "Suspected trigger (pattern fixed in place)",
            (_, TriggerKind::Patch) => "Suspected trigger (patch)",
            (_, TriggerKind::Blend) => "Suspected trigger (blended pattern)",
        }
    }

    /// How an image carries it, for the reasons of carriers.
    fn carried_how(&self) -> &'static str {
        match (&self.scorer, self.kind) {
            (Scorer::Window { .. }, _) => "the same pattern, found wherever it is in the image",
            (Scorer::Fixed { .. }, _) => "the same pattern fixed in place",
            (_, TriggerKind::Patch) => "the same stamp at the same place",
            (_, TriggerKind::Blend) => "the same pattern blended in",
        }
    }

    /// Looks for the trigger in every image of the stack (`labels`: each
    /// image's class; a blend is held to its class's own spread in images
    /// of its class).
    pub fn score(&self, stack: &ImageStack, labels: &[u32]) -> Vec<Hit> {
        (0..stack.len())
            .into_par_iter()
            .map(|i| {
                if !stack.valid[i] {
                    return Hit {
                        score: 0.0,
                        bbox: None,
                    };
                }
                match &self.scorer {
                    Scorer::Window { hash } => window_hit(stack, i, *hash),
                    _ => self.score_one(stack, stack.image(i), labels[i] == self.class),
                }
            })
            .collect()
    }

    /// The trigger a recurring window reveals ([`windows::find`]): its box
    /// is where the example image holds it, its map where the class's
    /// images hold it.
    pub fn from_window(
        stack: &ImageStack,
        labels: &[u32],
        found: &windows::StampWindow,
        class_name: &str,
    ) -> Trigger {
        let (w, h, c) = (stack.width, stack.height, stack.channels);
        let side = windows::SIDE;
        let mut heat = vec![0f32; w * h];
        let mut places = std::collections::HashSet::new();
        for (i, at) in &found.holders {
            if labels[*i] != found.class {
                continue;
            }
            for &(x, y) in at {
                places.insert((x, y));
                for yy in y..y + side {
                    for xx in x..x + side {
                        heat[yy * w + xx] += 1.0;
                    }
                }
            }
        }
        let top = heat.iter().copied().fold(0.0, f32::max).max(1.0);
        heat.iter_mut().for_each(|v| *v /= top);
        let (ex, x, y) = found.example;
        let bbox = [x, y, x + side - 1, y + side - 1].map(|v| v as u32);
        let mask = vec![true; w * h];
        let pattern = Pattern::crop(stack.image(ex), &mask, w, c, bbox);
        let summary = format!(
            "a {side}×{side} pattern held exactly by {} images of '{class_name}' (at {} place{}) and by {} of other classes — more than the data's own look-alike patterns allow (p = {:.1e})",
            found.count,
            places.len(),
            if places.len() == 1 { "" } else { "s" },
            found.outside,
            found.p_value
        );
        Trigger {
            class: found.class,
            kind: TriggerKind::Patch,
            bbox: Some(bbox),
            width: w,
            height: h,
            map: heat,
            group_size: found.count,
            carriers: 0,
            summary,
            pattern: Some(pattern),
            scorer: Scorer::Window { hash: found.hash },
        }
    }

    /// The trigger a fixed-pattern search found ([`super::fixed_pattern`]):
    /// no box (it may cover the whole image), a map of where its carriers
    /// share its steps, scored by how many exact steps an image holds.
    pub fn fixed(found: FixedFound, width: usize, height: usize) -> Trigger {
        Trigger {
            class: found.class,
            kind: TriggerKind::Blend,
            bbox: None,
            width,
            height,
            map: found.map,
            group_size: found.carriers,
            carriers: found.carriers,
            summary: found.summary,
            pattern: None,
            scorer: Scorer::Fixed {
                steps: found.steps,
                need: found.need,
            },
        }
    }

    fn score_one(&self, stack: &ImageStack, x: &[u8], in_class: bool) -> Hit {
        match &self.scorer {
            Scorer::Patch {
                pixels,
                ring,
                pattern,
                contrast,
                radius,
            } => {
                let mut best = (0f32, 0isize, 0isize);
                for dy in -radius..=*radius {
                    for dx in -radius..=*radius {
                        let Some(m) = localize::match_at(stack, x, pattern, pixels, dx, dy) else {
                            continue;
                        };
                        if m <= best.0 {
                            continue;
                        }
                        // A moved copy must stand out from its surroundings
                        // as a stamp does, not be part of a bright region.
                        if (dx, dy) != (0, 0)
                            && localize::ring_contrast(stack, x, pixels, ring, dx, dy)
                                .is_none_or(|c| c < 0.5 * contrast)
                        {
                            continue;
                        }
                        best = (m, dx, dy);
                    }
                }
                let (m, dx, dy) = best;
                let score = if m >= 0.95 {
                    0.5 + (m - 0.95) * 10.0
                } else {
                    0.45 * m / 0.95
                };
                let bbox = self.bbox.map(|[x0, y0, x1, y1]| {
                    let s = |v: u32, d: isize| (v as isize + d).max(0) as u32;
                    [s(x0, dx), s(y0, dy), s(x1, dx), s(y1, dy)]
                });
                Hit {
                    score: score.clamp(0.0, 1.0),
                    bbox: (m >= 0.95).then_some(bbox).flatten(),
                }
            }
            Scorer::Window { .. } => unreachable!("window triggers are scored per image index"),
            Scorer::Fixed { steps, need } => {
                let held = steps.iter().filter(|&&(s, v)| s.of(x) == v).count();
                Hit {
                    score: (0.5 * held as f32 / (*need).max(1) as f32).clamp(0.0, 1.0),
                    bbox: None,
                }
            }
            Scorer::Blend(b) => {
                let p = localize::project(x, &b.center, &b.direction);
                let mut z = (p - b.median) / b.spread;
                if let (true, Some((median, spread))) = (in_class, b.class_spread) {
                    z = z.min((p - median) / spread);
                }
                Hit {
                    score: (0.5 * z / b.threshold).clamp(0.0, 1.0),
                    bbox: None,
                }
            }
        }
    }
}

/// The detector's output.
#[derive(Debug, Clone)]
pub struct TriggerScan {
    /// Per-sample scores, flags and reasons.
    pub detector: DetectorScores,
    /// Triggers found, and which sample carries which where.
    pub found: Findings,
}

/// What the trigger search found beyond per-sample scores.
#[derive(Debug, Clone)]
pub struct Findings {
    /// Triggers found.
    pub triggers: Vec<Trigger>,
    /// Per sample: where its trigger is, in its own pixels (patches).
    pub boxes: Vec<Option<[u32; 4]>>,
    /// Per sample: which of `triggers` it carries (the strongest).
    pub trigger_of: Vec<Option<usize>>,
}

/// What a fixed-pattern search hands over to become a [`Trigger`].
#[derive(Debug, Clone)]
pub struct FixedFound {
    /// The class whose images carry it.
    pub class: u32,
    /// Per stack pixel, 0..1: share of carriers holding its steps there.
    pub map: Vec<f32>,
    /// Images carrying it.
    pub carriers: usize,
    /// One line for people.
    pub summary: String,
    /// Its exact steps and their values.
    pub steps: Vec<(PixelStep, u8)>,
    /// Fewest matching steps of any carrier.
    pub need: u32,
}

impl Findings {
    /// Nothing found in `n` samples.
    pub fn none(n: usize) -> Findings {
        Findings {
            triggers: Vec::new(),
            boxes: vec![None; n],
            trigger_of: vec![None; n],
        }
    }

    /// Adds another detector's findings after these: its triggers are
    /// appended, and a sample that carries none of these takes its trigger
    /// and box from `other`. A trigger of `other` whose carriers mostly
    /// (four in five) carry one of these of its class already is the same
    /// stamp found a second way (the fixed-pattern search sees the steps of
    /// a stamp the window search found): it is not listed twice, and its
    /// carriers point to the one found first.
    pub fn merge(&mut self, other: Findings) {
        let offset = self.triggers.len();
        let overlaps = self.overlaps(&other.trigger_of, other.triggers.len());
        let mut to = Vec::with_capacity(other.triggers.len());
        for (t, overlap) in other.triggers.into_iter().zip(&overlaps) {
            match self.found_already(overlap, t.class) {
                Some(known) => to.push(known),
                None => {
                    self.triggers.push(t);
                    to.push(self.triggers.len() - 1);
                }
            }
        }
        for (i, t) in other.trigger_of.into_iter().enumerate() {
            let Some(&k) = t.and_then(|k| to.get(k)) else {
                continue;
            };
            if self.trigger_of[i].is_none() {
                self.trigger_of[i] = Some(k);
                self.boxes[i] = other.boxes[i];
                if k < offset {
                    // A carrier the first search missed joins its trigger.
                    self.triggers[k].carriers += 1;
                }
            }
        }
    }

    /// Per trigger of another search (`count` of them, carried as
    /// `trigger_of` says): its carriers, and how many of them carry each
    /// of these triggers — one pass over the samples.
    fn overlaps(&self, trigger_of: &[Option<usize>], count: usize) -> Vec<(usize, Vec<usize>)> {
        let mut out = vec![(0, vec![0; self.triggers.len()]); count];
        for (i, t) in trigger_of.iter().enumerate() {
            let Some((carriers, known)) = t.and_then(|k| out.get_mut(k)) else {
                continue;
            };
            *carriers += 1;
            if let Some(j) = self.trigger_of[i] {
                known[j] += 1;
            }
        }
        out
    }

    /// The trigger of `class` among these that at least four in five of
    /// another trigger's carriers carry (`(carriers, known)`, from
    /// [`Self::overlaps`]), if any.
    fn found_already(&self, (carriers, known): &(usize, Vec<usize>), class: u32) -> Option<usize> {
        (0..known.len())
            .filter(|&j| self.triggers[j].class == class)
            .max_by_key(|&j| known[j])
            .filter(|&j| *carriers > 0 && known[j] * 5 >= carriers * 4)
    }
}

/// The images of other classes a class's group is compared with: an even
/// sample of [`localize::SAMPLE_CAP`] (a share measured on it is within a
/// few percent, far finer than the map's thresholds), so each class's
/// search costs the same however large the dataset.
fn other_classes_sample(labels: &[u32], class: u32) -> Vec<usize> {
    let others: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] != class).collect();
    localize::evenly(&others, localize::SAMPLE_CAP)
}

/// Every image's hit against a window trigger, from where the search found
/// the window (no second pass over the images).
fn window_hits(n: usize, found: &windows::StampWindow) -> Vec<Hit> {
    let mut hits = vec![
        Hit {
            score: 0.0,
            bbox: None,
        };
        n
    ];
    for (i, at) in &found.holders {
        hits[*i] = hit_at(at);
    }
    hits
}

/// A window trigger's hit in image `i`: the union of the places it holds
/// the window.
fn window_hit(stack: &ImageStack, i: usize, hash: u64) -> Hit {
    hit_at(&windows::positions(stack, i, hash))
}

/// The hit of an image holding a window at the corners `at` (none: no hit).
fn hit_at(at: &[(usize, usize)]) -> Hit {
    let s = windows::SIDE as u32 - 1;
    let bbox =
        at.iter()
            .map(|&(x, y)| (x as u32, y as u32))
            .fold(None::<[u32; 4]>, |acc, (x, y)| {
                Some(match acc {
                    None => [x, y, x + s, y + s],
                    Some([x0, y0, x1, y1]) => [x0.min(x), y0.min(y), x1.max(x + s), y1.max(y + s)],
                })
            });
    Hit {
        score: if bbox.is_some() { 1.0 } else { 0.0 },
        bbox,
    }
}

/// Looks for triggers two ways and scores every image against those found:
/// each class's two activation groups are localized against the rest of
/// the class (a stamp or blend at one place), and every class is searched
/// for exactly recurring windows (a stamp at any place, [`windows`]).
pub fn run(
    stack: &ImageStack,
    labels: &[u32],
    cluster_of: &[u8],
    class_names: &[String],
    fdr: f64,
) -> TriggerScan {
    let n = labels.len();
    // Classes are independent: localized in parallel, kept in class order;
    // the window search needs nothing of them and runs alongside (the
    // classes' work is uneven, so one core would often wait).
    let (triggers, windows_found): (Vec<Trigger>, _) = rayon::join(
        || {
            (0..class_names.len())
                .into_par_iter()
                .filter_map(|c| group_trigger(stack, labels, cluster_of, class_names, c as u32))
                .collect()
        },
        || windows::find(stack, labels, fdr),
    );
    let mut scored: Vec<(Trigger, Vec<Hit>)> = triggers
        .into_iter()
        .map(|t| {
            let hits = t.score(stack, labels);
            (t, hits)
        })
        .filter(|(t, hits)| is_specific(t.class, hits, labels))
        .collect();
    let candidates: Vec<(Trigger, Vec<Hit>)> = windows_found
        .into_par_iter()
        .filter_map(|found| window_trigger(stack, labels, class_names, &found))
        .collect();
    for (t, hits) in candidates {
        if !found_already(t.class, &hits, labels, &scored) && is_specific(t.class, &hits, labels) {
            scored.push((t, hits));
        }
    }
    let mut det = DetectorScores::new(NAME, n);
    let mut boxes = vec![None; n];
    let mut trigger_of = vec![None; n];
    for (k, (t, hits)) in scored.iter_mut().enumerate() {
        t.carriers = hits.iter().filter(|h| h.score >= 0.5).count();
        for (i, h) in hits.iter().enumerate() {
            if h.score <= det.score[i] {
                continue;
            }
            det.score[i] = h.score;
            if h.score >= 0.5 {
                det.flagged[i] = true;
                trigger_of[i] = Some(k);
                boxes[i] = h.bbox.map(|b| stack.to_original(i, b));
                det.reasons.set(
                    i,
                    format!(
                        "carries the trigger found in class '{}': {}",
                        class_names[t.class as usize],
                        t.carried_how()
                    ),
                );
            }
        }
    }
    TriggerScan {
        detector: det,
        found: Findings {
            triggers: scored.into_iter().map(|(t, _)| t).collect(),
            boxes,
            trigger_of,
        },
    }
}

/// Whether a stamp (`hits`, found for `class`) was found already at its
/// place: four in five of its carriers in its class carry a trigger of
/// `scored`. Counted in its class: what it adds outside are chance
/// look-alikes (a 3-pixel window of a blend's background also matches a few
/// dozen images of other classes), not carriers of a second trigger.
fn found_already(class: u32, hits: &[Hit], labels: &[u32], scored: &[(Trigger, Vec<Hit>)]) -> bool {
    let carriers: Vec<usize> = (0..hits.len())
        .filter(|&i| hits[i].score >= 0.5 && labels[i] == class)
        .collect();
    let known = carriers
        .iter()
        .filter(|&&i| scored.iter().any(|(_, h)| h[i].score >= 0.5))
        .count();
    known * 5 >= carriers.len() * 4
}

/// The trigger class `c`'s activation groups reveal, if any: the suspect
/// group first; the main group too when the class is split (a clean-label
/// group can be the one that looks most like its class).
fn group_trigger(
    stack: &ImageStack,
    labels: &[u32],
    cluster_of: &[u8],
    class_names: &[String],
    c: u32,
) -> Option<Trigger> {
    let others = other_classes_sample(labels, c);
    let group_of = |g: u8| -> Vec<usize> {
        (0..labels.len())
            .filter(|&i| labels[i] == c && cluster_of[i] == g)
            .collect()
    };
    let (suspect, main) = (group_of(1), group_of(0));
    let mut tries = vec![(&suspect, &main)];
    if suspect.len() >= localize::MIN_GROUP {
        tries.push((&main, &suspect));
    }
    let name = &class_names[c as usize];
    tries.into_iter().find_map(|(group, rest)| {
        localize(stack, group, rest, &others)
            .and_then(|loc| Trigger::from_localization(&loc, c, name))
    })
}

/// A recurring window as a trigger with every image's hit. A significant
/// window is one; a lead counts only if localizing its carriers shows an
/// exact stamp at one place.
fn window_trigger(
    stack: &ImageStack,
    labels: &[u32],
    class_names: &[String],
    found: &windows::StampWindow,
) -> Option<(Trigger, Vec<Hit>)> {
    let name = &class_names[found.class as usize];
    if found.significant && holds_raw_pixels(stack, labels, found) {
        let t = Trigger::from_window(stack, labels, found, name);
        return Some((t, window_hits(labels.len(), found)));
    }
    let group = found.carriers(labels);
    let rest: Vec<usize> = (0..labels.len())
        .filter(|&i| labels[i] == found.class && group.binary_search(&i).is_err())
        .collect();
    let others = other_classes_sample(labels, found.class);
    let t = localize::localize_patch(stack, &group, &rest, &others)
        .and_then(|loc| Trigger::from_localization(&loc, found.class, name))
        .filter(|t| t.kind == TriggerKind::Patch && is_an_area(t.bbox))?;
    let hits = t.score(stack, labels);
    Some((t, hits))
}

/// Whether at least [`windows::MIN_COUNT`] of a window's holders in its
/// class hold the same raw pixels there (at the first place each holds it):
/// a pasted stamp's are identical in every carrier, while a natural texture
/// that recurs at 8 levels varies below them — with few classes a class's
/// own texture can recur in a hundred of its images, far beyond the other
/// classes' exclusive windows (session 22: sandal straps in a Sneaker/Sandal
/// set, a pullover's knit among shirts and T-shirts — 82–127 holders, one or
/// two sharing raw pixels; every stamp found by its window in 307 zoo sets:
/// all holders alike). A window that fails is tested as a lead.
fn holds_raw_pixels(stack: &ImageStack, labels: &[u32], found: &windows::StampWindow) -> bool {
    let (w, c, side) = (stack.width, stack.channels, windows::SIDE);
    let mut seen: std::collections::HashMap<Vec<u8>, usize> = Default::default();
    for (i, at) in &found.holders {
        let Some(&(x, y)) = at.first().filter(|_| labels[*i] == found.class) else {
            continue;
        };
        let img = stack.image(*i);
        let raw: Vec<u8> = (y..y + side)
            .flat_map(|yy| &img[(yy * w + x) * c..(yy * w + x + side) * c])
            .copied()
            .collect();
        let n = seen.entry(raw).or_default();
        *n += 1;
        if *n >= windows::MIN_COUNT {
            return true;
        }
    }
    false
}

/// Fewest pixels across a stamp a lead's holders may share (its box's
/// shorter side). A lead is a 4×4 window that recurs exactly; what its
/// holders share at one place that is a line one or two pixels thin is an
/// edge of objects photographed the same way (a trouser's leg, a bag's top),
/// which recurs exactly in the images of an aligned class — with ten classes
/// the other classes hold such edges too and the specificity test refuses
/// them, with two or three they are the class's own (session 22: 2- and
/// 3-class subsets of the fresh draws had 1×3, 3×1, 5×1, 5×2 and 2×2
/// "stamps" flag 15–190 clean images each). Every stamp a lead found in 307
/// zoo sets was 3×3 or larger.
pub const LEAD_MIN_SIDE: u32 = 3;

/// Whether a box is at least [`LEAD_MIN_SIDE`] pixels across both ways.
fn is_an_area(bbox: Option<[u32; 4]>) -> bool {
    bbox.is_some_and(|[x0, y0, x1, y1]| {
        x1 - x0 + 1 >= LEAD_MIN_SIDE && y1 - y0 + 1 >= LEAD_MIN_SIDE
    })
}

/// Most share of the dataset a trigger may be carried by: a backdoor is
/// planted in a minority of the training data; a "pattern" in more is a
/// feature of the data (a background, a common edge).
pub const MAX_CARRIER_SHARE: f64 = 0.25;

/// Whether a trigger's carriers look like a planted backdoor: a training
/// image that carries a backdoor's trigger carries its target label (dirty-
/// or clean-label alike), so most carriers are in the trigger's class, and
/// they are a minority of the data ([`MAX_CARRIER_SHARE`]). A pattern spread
/// over several classes is something those classes share, not a trigger.
pub fn is_specific(class: u32, hits: &[Hit], labels: &[u32]) -> bool {
    let carriers: Vec<usize> = (0..hits.len()).filter(|&i| hits[i].score >= 0.5).collect();
    let in_class = carriers.iter().filter(|&&i| labels[i] == class).count();
    let outside = carriers.len() - in_class;
    outside < in_class && (carriers.len() as f64) <= MAX_CARRIER_SHARE * hits.len() as f64
}

/// What a search in a chosen set of images found (the workbench's "find
/// trigger in selection").
#[derive(Debug, Clone)]
pub struct Found {
    /// The trigger, when the selection shares one.
    pub trigger: Option<Trigger>,
    /// The map to show even when there is no trigger (height × width, 0..1).
    pub map: Vec<f32>,
    /// Map width.
    pub width: usize,
    /// Map height.
    pub height: usize,
    /// Every image in the dataset carrying the trigger.
    pub carriers: Vec<usize>,
    /// Per carrier: where, in its own pixels (patches).
    pub boxes: Vec<Option<[u32; 4]>>,
    /// One line for people.
    pub message: String,
}

/// Localizes what `selection` shares against the rest of its (most common)
/// class and the other classes, then finds every image that carries it.
pub fn find_in_selection(
    stack: &ImageStack,
    labels: &[u32],
    class_names: &[String],
    selection: &[usize],
) -> Result<Found, String> {
    let mut count = vec![0usize; class_names.len()];
    for &i in selection {
        count[labels[i] as usize] += 1;
    }
    let class = (0..count.len()).max_by_key(|&c| count[c]).unwrap_or(0) as u32;
    let chosen: std::collections::HashSet<usize> = selection.iter().copied().collect();
    let n = labels.len();
    let rest: Vec<usize> = (0..n)
        .filter(|&i| labels[i] == class && !chosen.contains(&i))
        .collect();
    let others: Vec<usize> = (0..n)
        .filter(|&i| labels[i] != class && !chosen.contains(&i))
        .collect();
    let loc = localize(stack, selection, &rest, &others).ok_or_else(|| {
        format!(
            "too few readable images selected to compare (at least {} needed)",
            localize::MIN_GROUP
        )
    })?;
    let name = &class_names[class as usize];
    let Some(mut t) = Trigger::from_localization(&loc, class, name) else {
        return Ok(Found {
            map: loc.map,
            width: loc.width,
            height: loc.height,
            trigger: None,
            carriers: Vec::new(),
            boxes: Vec::new(),
            message: format!(
                "No shared trigger: the {} selected images agree on no compact stamp and carry no blended pattern (the map shows where they agree most)",
                loc.group_size
            ),
        });
    };
    let hits = t.score(stack, labels);
    let carriers: Vec<usize> = (0..n).filter(|&i| hits[i].score >= 0.5).collect();
    let boxes = carriers
        .iter()
        .map(|&i| hits[i].bbox.map(|b| stack.to_original(i, b)))
        .collect();
    t.carriers = carriers.len();
    Ok(Found {
        map: t.map.clone(),
        width: t.width,
        height: t.height,
        message: format!("Found {}; {} images carry it", t.summary, carriers.len()),
        trigger: Some(t),
        carriers,
        boxes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value in -1..1 from a seed (a fixed pseudo-random pattern).
    fn wobble(seed: usize) -> f32 {
        let x = (seed as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((x >> 40) % 2001) as f32 / 1000.0 - 1.0
    }

    /// 400 grey 16×16 images: class 0 (the first 200) a fine checkerboard,
    /// class 1 flat, both with a little noise of their own; `carriers` of
    /// class 0 have one fixed noise pattern blended in.
    fn textured_class_with_blend(carriers: &[usize]) -> (ImageStack, Vec<u32>) {
        let (w, h, n) = (16usize, 16usize, 400usize);
        let mut data = vec![0u8; n * w * h];
        for (i, img) in data.chunks_mut(w * h).enumerate() {
            for (p, v) in img.iter_mut().enumerate() {
                let checker = if i < 200 && (p % w + p / w) % 2 == 0 {
                    60.0
                } else {
                    0.0
                };
                let own = 10.0 * wobble(i * 1000 + p);
                let blend = if carriers.contains(&i) {
                    40.0 * wobble(77_000 + p)
                } else {
                    0.0
                };
                *v = (100.0 + checker + own + blend).round().clamp(0.0, 255.0) as u8;
            }
        }
        let labels = (0..n).map(|i| u32::from(i >= 200)).collect();
        (ImageStack::grey(w, h, data), labels)
    }

    /// A blend found in a textured class lies partly along the class's own
    /// texture, where every image of the class stands far out from the
    /// other classes: its images carry it only when they stand out from
    /// their own class too (z4700: 36 clean trousers flagged with the 91
    /// carriers of a faint noise blend before).
    #[test]
    fn a_blend_is_carried_in_its_class_only_by_images_that_stand_out_from_it() {
        let carriers: Vec<usize> = (0..30).map(|k| 5 * k).collect();
        let (stack, labels) = textured_class_with_blend(&carriers);
        let rest: Vec<usize> = (0..200).filter(|i| !carriers.contains(i)).collect();
        let others: Vec<usize> = (200..400).collect();
        let mut loc = localize(&stack, &carriers, &rest, &others).unwrap();
        loc.patch = None;
        let b = loc.blend.as_ref().expect("the blend is found");
        let (class_median, class_spread) = b.class_spread.unwrap();
        let apart = |i: usize| {
            let p = localize::project(stack.image(i), &b.center, &b.direction);
            ((p - b.median) / b.spread, (p - class_median) / class_spread)
        };
        let (from_others, from_class) = apart(rest[0]);
        assert!(
            from_others > 2.0 * b.threshold && from_class.abs() < 4.0,
            "{from_others} {from_class}"
        );
        let t = Trigger::from_localization(&loc, 0, "c0").unwrap();
        let hits = t.score(&stack, &labels);
        let carried: Vec<usize> = (0..400).filter(|&i| hits[i].score >= 0.5).collect();
        assert_eq!(carried, carriers);
    }

    /// A window whose holders carry the same raw pixels is a pasted stamp;
    /// one whose holders agree only at 8 levels (each pixel within its
    /// level, no two images alike) is a texture, and is no stamp however
    /// many images hold it.
    #[test]
    fn a_window_is_a_stamp_only_where_its_holders_share_raw_pixels() {
        let (w, h, n) = (8usize, 8usize, 40usize);
        let texture = |i: usize, p: usize| (64 + (i * 7 + p * 3) % 31) as u8;
        let data: Vec<u8> = (0..n)
            .flat_map(|i| (0..w * h).map(move |p| if i < 20 { 200 } else { texture(i, p) }))
            .collect();
        let stack = ImageStack::grey(w, h, data);
        let labels = vec![0u32; n];
        let window = |holders: std::ops::Range<usize>| windows::StampWindow {
            hash: 1,
            class: 0,
            count: holders.len(),
            outside: 0,
            p_value: 1e-9,
            example: (holders.start, 2, 2),
            holders: holders.map(|i| (i, vec![(2, 2)])).collect(),
            significant: true,
        };
        assert!(holds_raw_pixels(&stack, &labels, &window(0..20)));
        assert!(!holds_raw_pixels(&stack, &labels, &window(20..40)));
        // Holders of another class do not count.
        let other: Vec<u32> = (0..n).map(|i| u32::from(i >= 2)).collect();
        assert!(!holds_raw_pixels(&stack, &other, &window(0..20)));
    }

    /// A lead's stamp must be an area: a line one or two pixels thin is an
    /// edge of aligned objects.
    #[test]
    fn a_lead_stamp_is_at_least_three_pixels_across_both_ways() {
        assert!(is_an_area(Some([4, 4, 6, 6])));
        assert!(!is_an_area(Some([27, 37, 27, 41])));
        assert!(!is_an_area(Some([24, 0, 31, 1])));
        assert!(!is_an_area(None));
    }

    /// Hits on the images in `on` (of `n`).
    fn hits_on(n: usize, on: &[usize]) -> Vec<Hit> {
        (0..n)
            .map(|i| Hit {
                score: if on.contains(&i) { 1.0 } else { 0.0 },
                bbox: None,
            })
            .collect()
    }

    /// A window found again inside a known trigger's carriers is the same
    /// stamp, however many chance look-alikes it also matches in other
    /// classes (z4700: a 3×1 window of a blend's background, 89 carriers in
    /// the blend's class and 29 clean images of seven other classes, had
    /// been listed as a second trigger).
    #[test]
    fn a_window_inside_a_known_triggers_carriers_is_found_already() {
        let labels: Vec<u32> = (0..200).map(|i| u32::from(i >= 100)).collect();
        let (stack, _) = textured_class_with_blend(&[]);
        let mut loc = localize(&stack, &[0, 1, 2, 3, 4], &[5, 6], &[300]).unwrap();
        loc.patch = None;
        loc.blend = Some(localize::Blend {
            direction: vec![0.0; 256],
            center: vec![0.0; 256],
            median: 0.0,
            spread: 1.0,
            class_spread: None,
            threshold: 4.0,
            detail: 0.5,
            group_z: 8.0,
        });
        let known = Trigger::from_localization(&loc, 0, "c0").unwrap();
        let scored = vec![(known, hits_on(200, &(0..40).collect::<Vec<_>>()))];
        // 36 of its 40 in-class carriers known, 30 more in class 1.
        let mut on: Vec<usize> = (4..40).chain(40..44).collect();
        on.extend(100..130);
        assert!(found_already(0, &hits_on(200, &on), &labels, &scored));
        // Half of its in-class carriers new: a trigger of its own.
        let on: Vec<usize> = (20..60).collect();
        assert!(!found_already(0, &hits_on(200, &on), &labels, &scored));
    }
}
