//! Where a group of images agrees with itself and differs from everything
//! else: the per-pixel map that localizes a stamped trigger, and the
//! high-frequency mean difference that exposes a blended one.
//!
//! Patch: at each pixel, the group's median value; the map is the fraction
//! of the group within [`AGREE`] of it, minus the larger of that fraction in
//! the rest of the class and in the other classes. A stamp gives a compact
//! block near 1; shapes the group merely shares with its class, or
//! background everyone shares, cancel. The block is accepted as a trigger
//! only if the images that show it show it exactly (a stamp is all-or-
//! nothing; natural features match partly), and it is rare. An image that
//! agrees with a stamp of several values only where the stamp holds one
//! of them (a dark area under a checkerboard's dark squares) matches by
//! that flat area, not partly by the stamp, and is not counted as a
//! partial match.
//!
//! Blend: a pattern mixed into whole images shifts the group's mean by the
//! pattern, which — unlike differences of shape — has fine detail. The part
//! of the mean difference a 3×3 blur removes must carry much of its energy,
//! and the group must stand far out along it.

use rayon::prelude::*;

use super::stack::ImageStack;

/// Two 8-bit values "agree" when this close (survives JPEG noise, not a
/// different pattern).
pub const AGREE: i16 = 26;
/// Fewest pixels a stamp may have: one or two pixels that a group happens
/// to share (a background hole, an edge) are never a trigger.
pub const MIN_STAMP_PIXELS: usize = 3;
/// Smallest group worth localizing.
pub const MIN_GROUP: usize = 5;
/// Reference sets (rest of class, other classes) are sampled down to this:
/// the agreement share measured on 2,000 images is within ±2.3 points (one
/// SD at worst), far finer than the map's thresholds (≥ 0.25).
pub const SAMPLE_CAP: usize = 2_000;

/// A localized stamp.
#[derive(Debug, Clone)]
pub struct Patch {
    /// Pixels of the trigger (height × width).
    pub mask: Vec<bool>,
    /// Bounding box, inclusive: x0, y0, x1, y1 (stack pixels).
    pub bbox: [u32; 4],
    /// How much the stamp stands out from the pixels around it in the group
    /// (median, 8-bit units); moved copies must stand out half as much.
    pub contrast: f32,
    /// Of the images matching at least half the stamp, the share matching
    /// all of it.
    pub exactness: f32,
    /// Share of the group carrying the stamp exactly.
    pub group_match: f32,
}

/// A blended whole-image pattern.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Blend {
    /// Unit direction of the pattern's fine detail (one weight per value).
    pub direction: Vec<f32>,
    /// Mean image of the reference set (0..1 per value).
    pub center: Vec<f32>,
    /// Median and robust spread of reference projections.
    pub median: f32,
    /// 1.4826 × median absolute deviation.
    pub spread: f32,
    /// Median and robust spread of the rest of the group's class: an image
    /// of that class carries the pattern only when it stands out from its
    /// own class too (its shape alone can lie far along the direction from
    /// the other classes' median).
    pub class_spread: Option<(f32, f32)>,
    /// z above which an image carries the pattern.
    pub threshold: f32,
    /// Share of the mean difference's energy in fine detail.
    pub detail: f32,
    /// Median z of the group.
    pub group_z: f32,
}

/// The outcome of localizing one group.
#[derive(Debug, Clone)]
pub struct Localization {
    /// Stack width and height.
    pub width: usize,
    /// Stack height.
    pub height: usize,
    /// Channels of `pattern`.
    pub channels: usize,
    /// Agreement map (height × width, 0..1): where the group agrees and the rest does not.
    pub map: Vec<f32>,
    /// Fine-detail mean difference (height × width, 0..1 of its maximum).
    pub detail_map: Vec<f32>,
    /// The group's median image (the pattern, where `patch` says).
    pub pattern: Vec<u8>,
    /// The stamp, if one was found.
    pub patch: Option<Patch>,
    /// The blended pattern, if one was found.
    pub blend: Option<Blend>,
    /// Readable images in the group.
    pub group_size: usize,
}

/// Localizes what `group` shares against `rest` (the rest of its class) and
/// `others` (other classes). None when fewer than [`MIN_GROUP`] of the
/// group's images are readable.
pub fn localize(
    stack: &ImageStack,
    group: &[usize],
    rest: &[usize],
    others: &[usize],
) -> Option<Localization> {
    localize_with(stack, group, rest, others, true)
}

/// [`localize`] looking for a stamp only (no blend): the cheaper test for
/// groups that can only be a stamp's carriers (window leads).
pub fn localize_patch(
    stack: &ImageStack,
    group: &[usize],
    rest: &[usize],
    others: &[usize],
) -> Option<Localization> {
    localize_with(stack, group, rest, others, false)
}

fn localize_with(
    stack: &ImageStack,
    group: &[usize],
    rest: &[usize],
    others: &[usize],
    with_blend: bool,
) -> Option<Localization> {
    let valid =
        |s: &[usize]| -> Vec<usize> { s.iter().copied().filter(|&i| stack.valid[i]).collect() };
    let group = valid(group);
    if group.len() < MIN_GROUP {
        return None;
    }
    let rest = evenly(&valid(rest), SAMPLE_CAP);
    let others = evenly(&valid(others), SAMPLE_CAP);
    let pattern = median_image(stack, &group);
    // The map is at most fg, then at most fg − fr: where such a bound is
    // already below MAP_FLOOR, no stamp's threshold ([`find_patch`]) can be
    // reached whatever the rest does. A stamp-only search (the window
    // leads, dozens per scan) compares the rest and the other classes only
    // where it still can; the map shown for a group or a selection keeps
    // its faint areas.
    let may_reach = |at: Vec<usize>, bound: &dyn Fn(usize) -> f32| -> Vec<usize> {
        if with_blend {
            at
        } else {
            at.into_iter().filter(|&p| bound(p) >= MAP_FLOOR).collect()
        }
    };
    let all: Vec<usize> = (0..stack.width * stack.height).collect();
    let fg = agree_fraction(stack, &group, &pattern, &all);
    let shared = may_reach(all, &|p| fg[p]);
    let fr = agree_fraction(stack, &rest, &pattern, &shared);
    let open = may_reach(shared, &|p| fg[p] - fr[p]);
    let fo = agree_fraction(stack, &others, &pattern, &open);
    let mut map = vec![0f32; fg.len()];
    for &p in &open {
        map[p] = (fg[p] - fr[p].max(fo[p])).max(0.0);
    }
    let patch = find_patch(stack, &group, &map, &fg, &pattern);
    let (blend, detail_map) = if with_blend {
        find_blend(stack, &group, &others, &rest)
    } else {
        (None, vec![0.0; stack.width * stack.height])
    };
    Some(Localization {
        width: stack.width,
        height: stack.height,
        channels: stack.channels,
        map,
        detail_map,
        pattern,
        patch,
        blend,
        group_size: group.len(),
    })
}

/// Every `k`-th element so at most `cap` remain (deterministic: equal
/// inputs give equal samples, spread over the whole list).
pub fn evenly<T: Copy>(v: &[T], cap: usize) -> Vec<T> {
    let step = v.len().div_ceil(cap.max(1)).max(1);
    v.iter().step_by(step).copied().collect()
}

/// Per-value median over the group.
fn median_image(stack: &ImageStack, group: &[usize]) -> Vec<u8> {
    (0..stack.image_len())
        .into_par_iter()
        .map_init(Vec::new, |buf, j| {
            buf.clear();
            buf.extend(group.iter().map(|&i| stack.image(i)[j]));
            let mid = buf.len() / 2;
            *buf.select_nth_unstable(mid).1
        })
        .collect()
}

/// Whether image `x` agrees with `pattern` at pixel `p` (all channels).
#[inline]
fn agrees(x: &[u8], pattern: &[u8], p: usize, c: usize) -> bool {
    (0..c).all(|k| (x[p * c + k] as i16 - pattern[p * c + k] as i16).abs() <= AGREE)
}

/// Per pixel of `at` (indices; 0 elsewhere), the share of `set` agreeing
/// with `pattern`.
///
/// When `at` holds more than an eighth of the pixels, every pixel is
/// compared in one straight pass that the compiler turns into SIMD, and
/// those outside `at` are masked off — gathering the listed pixels one by
/// one cost several times as much (this was an eighth of a scan's
/// instructions on the devsets). The counts, and so the shares, are the
/// same either way.
fn agree_fraction(stack: &ImageStack, set: &[usize], pattern: &[u8], at: &[usize]) -> Vec<f32> {
    let pixels = stack.width * stack.height;
    if set.is_empty() {
        return vec![0.0; pixels];
    }
    let c = stack.channels;
    let straight = at.len() * 8 > pixels;
    // The straight pass's mask (1 where asked); the gathering pass needs none.
    let mask = if straight {
        let mut m = vec![0u8; pixels];
        at.iter().for_each(|&p| m[p] = 1);
        m
    } else {
        Vec::new()
    };
    let counts = set
        .par_chunks(AGREE_CHUNK)
        .map(|chunk| {
            let mut n = vec![0u16; pixels];
            for &i in chunk {
                let x = stack.image(i);
                if straight {
                    count_agreeing(&mut n, x, pattern, &mask, c);
                } else {
                    for &p in at {
                        n[p] += u16::from(agrees(x, pattern, p, c));
                    }
                }
            }
            n
        })
        .fold(
            || vec![0u32; pixels],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += u32::from(y));
                a
            },
        )
        .reduce(
            || vec![0u32; pixels],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        );
    counts
        .iter()
        .map(|&k| k as f32 / set.len() as f32)
        .collect()
}

/// Images counted per chunk of [`agree_fraction`]: its per-chunk counts
/// are u16, so a chunk must stay below 65,536 images.
const AGREE_CHUNK: usize = 256;

/// Adds 1 to `n[p]` for every pixel `p` where `mask[p]` is 1 and image `x`
/// agrees with `pattern` in all `c` channels (see [`agrees`]).
fn count_agreeing(n: &mut [u16], x: &[u8], pattern: &[u8], mask: &[u8], c: usize) {
    let close = |a: u8, b: u8| u8::from(i16::from(a.abs_diff(b)) <= AGREE);
    if c == 1 {
        for (((n, &a), &b), &m) in n.iter_mut().zip(x).zip(pattern).zip(mask) {
            *n += u16::from(close(a, b) & m);
        }
        return;
    }
    for (((n, a), b), &m) in n
        .iter_mut()
        .zip(x.chunks_exact(c))
        .zip(pattern.chunks_exact(c))
        .zip(mask)
    {
        let all = a.iter().zip(b).fold(m, |acc, (&a, &b)| acc & close(a, b));
        *n += u16::from(all);
    }
}

/// Share of `pixels` (indices) where image `x` agrees with `pattern` shifted by (dx, dy).
pub(crate) fn match_at(
    stack: &ImageStack,
    x: &[u8],
    pattern: &[u8],
    pixels: &[(usize, usize)],
    dx: isize,
    dy: isize,
) -> Option<f32> {
    let (w, h, c) = (stack.width as isize, stack.height as isize, stack.channels);
    let mut hit = 0usize;
    for &(px, py) in pixels {
        let (sx, sy) = (px as isize + dx, py as isize + dy);
        if sx < 0 || sy < 0 || sx >= w || sy >= h {
            return None;
        }
        let src = (sy * w + sx) as usize;
        let pat = py * stack.width + px;
        hit += usize::from(
            (0..c).all(|k| (x[src * c + k] as i16 - pattern[pat * c + k] as i16).abs() <= AGREE),
        );
    }
    Some(hit as f32 / pixels.len().max(1) as f32)
}

/// |mean over the ring around `pixels` − mean over `pixels`|, shifted by (dx, dy).
pub(crate) fn ring_contrast(
    stack: &ImageStack,
    x: &[u8],
    pixels: &[(usize, usize)],
    ring: &[(usize, usize)],
    dx: isize,
    dy: isize,
) -> Option<f32> {
    let (w, h, c) = (stack.width as isize, stack.height as isize, stack.channels);
    let mean = |set: &[(usize, usize)]| -> Option<f32> {
        let mut sum = 0u64;
        let mut n = 0u64;
        for &(px, py) in set {
            let (sx, sy) = (px as isize + dx, py as isize + dy);
            if sx < 0 || sy < 0 || sx >= w || sy >= h {
                continue;
            }
            let p = (sy * w + sx) as usize;
            sum += (0..c).map(|k| x[p * c + k] as u64).sum::<u64>();
            n += c as u64;
        }
        (n > 0).then(|| sum as f32 / n as f32)
    };
    Some((mean(ring)? - mean(pixels)?).abs())
}

/// Pixel positions as (x, y).
pub(crate) type Pixels = Vec<(usize, usize)>;

/// Whether the pixels of `pixels` (`w` wide, `c` channels) where image
/// `x` agrees with `pattern` all hold one value of the pattern: every
/// channel of the pattern spans at most twice [`AGREE`] over them, so a
/// flat area agrees with all of them. An image matching a two-valued stamp
/// that way — a sandal's dark background on a checkerboard's dark half —
/// matches by its flat area alone, not partly by the stamp's shape
/// ([`test_region`]).
fn matches_one_value(
    x: &[u8],
    pattern: &[u8],
    pixels: &[(usize, usize)],
    w: usize,
    c: usize,
) -> bool {
    let agreeing = pixels
        .iter()
        .filter(|&&(px, py)| agrees(x, pattern, py * w + px, c));
    spans_one_value(pattern, agreeing, w, c)
}

/// Whether `pattern` (`w` wide, `c` channels) spans at most twice
/// [`AGREE`] in every channel over `pixels`: one value agrees with all.
fn spans_one_value<'a>(
    pattern: &[u8],
    pixels: impl Iterator<Item = &'a (usize, usize)>,
    w: usize,
    c: usize,
) -> bool {
    let mut lo = vec![u8::MAX; c];
    let mut hi = vec![0u8; c];
    for &(px, py) in pixels {
        for k in 0..c {
            let v = pattern[(py * w + px) * c + k];
            lo[k] = lo[k].min(v);
            hi[k] = hi[k].max(v);
        }
    }
    lo.iter()
        .zip(&hi)
        .all(|(&l, &h)| i16::from(h.saturating_sub(l)) <= 2 * AGREE)
}

/// Pixels of a mask as (x, y), and the one-pixel ring around them.
pub(crate) fn pixels_and_ring(mask: &[bool], w: usize, h: usize) -> (Pixels, Pixels) {
    let inside: Vec<(usize, usize)> = (0..w * h)
        .filter(|&p| mask[p])
        .map(|p| (p % w, p / w))
        .collect();
    let mut ring = Vec::new();
    for y in 0..h {
        for x in 0..w {
            if mask[y * w + x] {
                continue;
            }
            let near = (y.saturating_sub(1)..=(y + 1).min(h - 1))
                .any(|yy| (x.saturating_sub(1)..=(x + 1).min(w - 1)).any(|xx| mask[yy * w + xx]));
            if near {
                ring.push((x, y));
            }
        }
    }
    (inside, ring)
}

/// Lowest map value a stamp's pixels may have: a region is where the
/// map exceeds half its peak, and never less than this.
const MAP_FLOOR: f32 = 0.25;

/// The stamp among the map's bright regions: each of the largest few is
/// tested (see [`test_region`]); of those that behave like a stamp, the one
/// most specific to the group (carried by the fewest images outside it)
/// wins — a shape the group shares with its source class would also be
/// carried by that class's clean images.
fn find_patch(
    stack: &ImageStack,
    group: &[usize],
    map: &[f32],
    shared: &[f32],
    pattern: &[u8],
) -> Option<Patch> {
    let (w, h) = (stack.width, stack.height);
    let peak = map.iter().copied().fold(0.0f32, f32::max);
    if peak < 0.5 {
        return None;
    }
    let thr = (0.5 * peak).max(MAP_FLOOR);
    let valid: Vec<usize> = (0..stack.len()).filter(|&i| stack.valid[i]).collect();
    components(map, w, h, thr)
        .into_iter()
        .take(5)
        .filter_map(|mask| {
            let mask = with_shared_box(mask, shared, w, h);
            test_region(stack, group, &valid, pattern, mask)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(p, _)| p)
}

/// The stamp a bright region of the map belongs to: the region plus every
/// pixel of its bounding box that at least half the group shares. The map
/// cancels what the group shares with everyone — a stamp's dark squares on
/// a dark background — but those pixels are part of the stamp: without
/// them a checkerboard's bright squares alone are matched by any bright
/// area of any image, and the stamp's carriers no longer stand out.
fn with_shared_box(mut mask: Vec<bool>, shared: &[f32], w: usize, h: usize) -> Vec<bool> {
    let at = (0..w * h).filter(|&p| mask[p]);
    let (x0, x1) = at
        .clone()
        .map(|p| p % w)
        .fold((w, 0), |(a, b), x| (a.min(x), b.max(x)));
    let (y0, y1) = at
        .map(|p| p / w)
        .fold((h, 0), |(a, b), y| (a.min(y), b.max(y)));
    for y in y0..=y1.min(h.saturating_sub(1)) {
        for x in x0..=x1.min(w.saturating_sub(1)) {
            mask[y * w + x] |= shared[y * w + x] >= 0.5;
        }
    }
    mask
}

/// Whether a region behaves like a stamp: at least [`MIN_STAMP_PIXELS`] and
/// small (≤ 1/16 of the image), and
/// of the images matching at least half of it ≥ 85% match all of it, at
/// least half the group carries it exactly, at most a quarter of the data
/// does. Returns the patch and the share of its carriers inside the group.
///
/// An image agreeing with a stamp of several values only where it holds
/// one of them ([`matches_one_value`]) is not a partial match. z6108, a 4×4
/// checkerboard of 255 and 0 on 42 images relabelled T-shirt: 150 other
/// images, dark there with a stray pixel or two, matched its eight dark
/// squares, and the stamp read as natural (exactness 42 of 192); its window
/// (42 holders, all in one class) was only a lead, so none was found.
fn test_region(
    stack: &ImageStack,
    group: &[usize],
    valid: &[usize],
    pattern: &[u8],
    mask: Vec<bool>,
) -> Option<(Patch, f32)> {
    let (w, h) = (stack.width, stack.height);
    let area = mask.iter().filter(|&&m| m).count();
    if area < MIN_STAMP_PIXELS || area * 16 > w * h {
        return None;
    }
    let (pixels, ring) = pixels_and_ring(&mask, w, h);
    let matched = |i: usize| match_at(stack, stack.image(i), pattern, &pixels, 0, 0).unwrap_or(0.0);
    // The group's own match first (its images are all readable, so among
    // `valid`): most regions fail it, and then the whole dataset need not
    // be matched (window leads test dozens).
    let group_exact = group.iter().filter(|&&i| matched(i) >= 0.95).count();
    let group_match = group_exact as f32 / group.len() as f32;
    if group_match < 0.5 {
        return None;
    }
    let matches: Vec<f32> = valid.par_iter().map(|&i| matched(i)).collect();
    let exact = matches.iter().filter(|&&m| m >= 0.95).count();
    // A solid stamp is matched in part by a flat area partly over it; a
    // stamp of several values is not matched in part by a flat area that
    // agrees with one of them only.
    let c = stack.channels;
    let solid = spans_one_value(pattern, pixels.iter(), w, c);
    let by_shape = |i: usize| solid || !matches_one_value(stack.image(i), pattern, &pixels, w, c);
    let partial = valid
        .iter()
        .zip(&matches)
        .filter(|&(&i, &m)| m >= 0.95 || (m >= 0.5 && by_shape(i)))
        .count();
    let exactness = exact as f32 / partial.max(1) as f32;
    if exactness < 0.85 || exact * 4 > valid.len() {
        return None;
    }
    let mut contrasts: Vec<f32> = group
        .iter()
        .filter_map(|&i| ring_contrast(stack, stack.image(i), &pixels, &ring, 0, 0))
        .collect();
    contrasts.sort_by(f32::total_cmp);
    let contrast = contrasts.get(contrasts.len() / 2).copied().unwrap_or(0.0);
    let xs = pixels.iter().map(|p| p.0 as u32);
    let ys = pixels.iter().map(|p| p.1 as u32);
    let bbox = [xs.clone().min()?, ys.clone().min()?, xs.max()?, ys.max()?];
    let specificity = group_exact as f32 / exact.max(1) as f32;
    Some((
        Patch {
            mask,
            bbox,
            contrast,
            exactness,
            group_match,
        },
        specificity,
    ))
}

/// The 8-connected regions of `map > thr`, largest first.
fn components(map: &[f32], w: usize, h: usize, thr: f32) -> Vec<Vec<bool>> {
    let mut label = vec![0u32; w * h];
    let mut sizes = Vec::new();
    for start in 0..w * h {
        if map[start] <= thr || label[start] != 0 {
            continue;
        }
        let id = sizes.len() as u32 + 1;
        let mut size = 0;
        let mut todo = vec![start];
        label[start] = id;
        while let Some(p) = todo.pop() {
            size += 1;
            let (x, y) = (p % w, p / w);
            for yy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for xx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let q = yy * w + xx;
                    if map[q] > thr && label[q] == 0 {
                        label[q] = id;
                        todo.push(q);
                    }
                }
            }
        }
        sizes.push((size, id));
    }
    sizes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    sizes
        .iter()
        .map(|&(_, id)| label.iter().map(|&l| l == id).collect())
        .collect()
}

/// Mean image (0..1 per value) of a set.
fn mean_image(stack: &ImageStack, set: &[usize]) -> Vec<f32> {
    let n = stack.image_len();
    let mut sum = vec![0f64; n];
    for &i in set {
        for (s, &v) in sum.iter_mut().zip(stack.image(i)) {
            *s += v as f64;
        }
    }
    let k = set.len().max(1) as f64 * 255.0;
    sum.iter().map(|&s| (s / k) as f32).collect()
}

/// `others` (other classes) give the reference mean — backdoor images come
/// from other classes — and the group must stand out from them and from
/// `rest` (the rest of its class) alike: a group that differs only in its
/// class's shape stands out from the other classes, not from its own.
fn find_blend(
    stack: &ImageStack,
    group: &[usize],
    others: &[usize],
    rest: &[usize],
) -> (Option<Blend>, Vec<f32>) {
    let reference = if others.is_empty() { rest } else { others };
    let (w, h, c) = (stack.width, stack.height, stack.channels);
    let pixels = w * h;
    if reference.is_empty() {
        return (None, vec![0.0; pixels]);
    }
    let center = mean_image(stack, reference);
    let (detail, share) = fine_detail(stack, group, &center);
    let mut detail_map: Vec<f32> = (0..pixels)
        .map(|p| (0..c).map(|k| detail[p * c + k].abs()).sum::<f32>() / c as f32)
        .collect();
    let top = detail_map.iter().copied().fold(0.0f32, f32::max);
    if top > 0.0 {
        detail_map.iter_mut().for_each(|v| *v /= top);
    }
    let Some(direction) = unit(&detail) else {
        return (None, detail_map);
    };
    // How far the group stands out, measured without selection bias: the
    // direction comes from one half of the group, the z from the other
    // (a direction fitted to the group's own noise would make any group
    // stand out in an image with thousands of pixels).
    let halves: [Vec<usize>; 2] = [
        group.iter().copied().step_by(2).collect(),
        group.iter().copied().skip(1).step_by(2).collect(),
    ];
    let held_out_z = |fit: &[usize], test: &[usize]| -> f32 {
        let Some(d) = unit(&fine_detail(stack, fit, &center).0) else {
            return 0.0;
        };
        [reference, rest]
            .iter()
            .filter(|r| !r.is_empty())
            .map(|r| {
                let (median, spread) = reference_spread(stack, r, &center, &d);
                let mut z: Vec<f32> = test
                    .iter()
                    .map(|&i| (project(stack.image(i), &center, &d) - median) / spread)
                    .collect();
                median_f32(&mut z)
            })
            .fold(f32::INFINITY, f32::min)
    };
    let group_z = held_out_z(&halves[0], &halves[1]).min(held_out_z(&halves[1], &halves[0]));
    let (median, spread) = reference_spread(stack, reference, &center, &direction);
    let class_spread =
        (!rest.is_empty()).then(|| reference_spread(stack, rest, &center, &direction));
    let blend = (share >= 0.2 && group_z >= 6.0).then(|| Blend {
        threshold: (group_z / 2.0).max(4.0),
        direction,
        center,
        median,
        spread,
        class_spread,
        detail: share,
        group_z,
    });
    (blend, detail_map)
}

/// The fine detail of (mean of `set` − `center`): the difference minus its
/// 3×3 box blur (edges averaged over the neighbours that exist), and the
/// share of the difference's energy it holds.
fn fine_detail(stack: &ImageStack, set: &[usize], center: &[f32]) -> (Vec<f32>, f32) {
    let (w, h, c) = (stack.width, stack.height, stack.channels);
    let mean = mean_image(stack, set);
    let diff: Vec<f32> = mean.iter().zip(center).map(|(a, b)| a - b).collect();
    let mut detail = vec![0f32; diff.len()];
    for y in 0..h {
        for x in 0..w {
            for k in 0..c {
                let (mut s, mut n) = (0f32, 0f32);
                for yy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                    for xx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                        s += diff[(yy * w + xx) * c + k];
                        n += 1.0;
                    }
                }
                let j = (y * w + x) * c + k;
                detail[j] = diff[j] - s / n;
            }
        }
    }
    let energy: f32 = diff.iter().map(|v| v * v).sum();
    let fine: f32 = detail.iter().map(|v| v * v).sum();
    let share = if energy > 1e-9 { fine / energy } else { 0.0 };
    (detail, share)
}

/// `v` scaled to unit length; None when it is (almost) zero.
fn unit(v: &[f32]) -> Option<Vec<f32>> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    (norm > 1e-6).then(|| v.iter().map(|x| x / norm).collect())
}

/// An image projected on `direction`, relative to `center` (0..1 scale).
/// Summed in eight lanes, which the compiler keeps in one SIMD register
/// (a single running sum cannot be reordered, so it ran one pixel at a
/// time); the lanes are added at the end.
pub(crate) fn project(x: &[u8], center: &[f32], direction: &[f32]) -> f32 {
    const LANES: usize = 8;
    let term = |x: u8, m: f32, d: f32| (f32::from(x) / 255.0 - m) * d;
    let mut acc = [0f32; LANES];
    let whole = x.len().min(center.len()).min(direction.len()) / LANES * LANES;
    for ((x, m), d) in x[..whole]
        .chunks_exact(LANES)
        .zip(center[..whole].chunks_exact(LANES))
        .zip(direction[..whole].chunks_exact(LANES))
    {
        for l in 0..LANES {
            acc[l] += term(x[l], m[l], d[l]);
        }
    }
    let tail: f32 = x[whole..]
        .iter()
        .zip(&center[whole..])
        .zip(&direction[whole..])
        .map(|((&x, &m), &d)| term(x, m, d))
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// Median and robust spread (1.4826 × MAD) of the reference projections.
fn reference_spread(
    stack: &ImageStack,
    reference: &[usize],
    center: &[f32],
    direction: &[f32],
) -> (f32, f32) {
    let mut p: Vec<f32> = reference
        .par_iter()
        .map(|&i| project(stack.image(i), center, direction))
        .collect();
    let median = median_f32(&mut p);
    let mut dev: Vec<f32> = p.iter().map(|v| (v - median).abs()).collect();
    (median, (1.4826 * median_f32(&mut dev)).max(1e-6))
}

fn median_f32(v: &mut [f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    *v.select_nth_unstable_by(mid, f32::total_cmp).1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16×16 grey image: textured (values 60–200, matching neither 0
    /// nor 255), with a 4×4 checkerboard of 255 and 0 at (6, 6) when
    /// `stamped`.
    fn textured(seed: usize, stamped: bool) -> Vec<u8> {
        let mut img: Vec<u8> = (0..256)
            .map(|p| 60 + ((p * 37 + seed * 101) % 141) as u8)
            .collect();
        if stamped {
            for y in 6..10 {
                for x in 6..10 {
                    img[y * 16 + x] = if (x + y) % 2 == 0 { 255 } else { 0 };
                }
            }
        }
        img
    }

    #[test]
    fn a_checkerboard_is_not_matched_in_part_by_a_dark_area() {
        // Ten stamped images of a class, forty more of it, and a hundred
        // images of other classes dark where the stamp is (one stray pale
        // pixel on a bright square): each agrees with the stamp's eight
        // dark squares — half of it — by its dark area alone. Counted as
        // partial matches, they made the stamp look like a natural
        // feature (exactness 10 of 110).
        let mut data = Vec::new();
        for i in 0..50 {
            data.extend(textured(i, i < 10));
        }
        for _ in 0..100 {
            let mut dark = vec![0u8; 256];
            dark[6 * 16 + 6] = 140;
            data.extend(dark);
        }
        let stack = ImageStack::grey(16, 16, data);
        let (group, rest, others): (Vec<usize>, Vec<usize>, Vec<usize>) =
            ((0..10).collect(), (10..50).collect(), (50..150).collect());
        let loc = localize_patch(&stack, &group, &rest, &others).expect("group localized");
        let patch = loc.patch.expect("the checkerboard is found");
        assert_eq!(patch.bbox, [6, 6, 9, 9]);
        assert_eq!(patch.exactness, 1.0);
    }
}
