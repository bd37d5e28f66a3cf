//! A stamp wherever it is: small windows of pixels that recur *exactly* in
//! many images of one class and (almost) never in any other.
//!
//! Every image's [`SIDE`]×[`SIDE`] windows, at every position, are reduced
//! to 8 levels per channel and hashed, so a stamp matches itself wherever it
//! was placed (translation-invariant), while the varied content around it
//! does not. A trigger's training carriers all carry its target label
//! (dirty- or clean-label alike), so a candidate must be exclusive: at least
//! [`EXCLUSIVE`] of the images holding it in one class. Natural shapes are
//! exclusive now and then too (the gap between trouser legs), so how many
//! images hold a window is judged against the data's own look-alikes: the
//! counts of the windows exclusive to the *other* classes follow a
//! power-law tail, fitted at its 90th percentile; a window's p-value is that
//! tail beyond its count, and it must stay below the scan's false-flag
//! budget after a Bonferroni correction over all exclusive windows (a
//! trigger claims a whole group, so the chance of any false one is bounded).
//!
//! A window flat at 8 levels is background, a saturated area or an object's
//! even shading, everywhere — unless all its pixels are *exactly* one value:
//! the inside of a solid stamp is, natural shading seldom is. So a flat
//! window is hashed by its exact value when its pixels are identical (the
//! exclusivity test then sets a solid stamp apart from the background every
//! class shares) and skipped otherwise. A window whose levels differ by one
//! step at most is skipped too: the faint edge of an object against the
//! background recurs exactly in many images of a class (47 clean sneakers
//! at 44 places in z2008_clean, a false trigger until session 14).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU8, Ordering};

use rayon::prelude::*;

use super::stack::ImageStack;

/// Window side in stack pixels (the zoo's stamps are 2–12 px; 4 fits
/// inside a stamp or straddles its corner).
pub const SIDE: usize = 4;
/// Share of a candidate's carriers that must be in one class.
pub const EXCLUSIVE: f64 = 0.95;
/// Fewest carriers worth testing (the tail fit starts here).
pub const MIN_COUNT: usize = 3;
/// Fewest carriers for a lead worth localizing.
const LEAD_COUNT: usize = 5;
/// Leads localized per class.
const LEADS: usize = 6;
/// Low bits of a window hash left zero, for the class when occurrences are
/// sorted as one word (a 44-bit hash still tells tens of millions of
/// windows apart; a dataset with more than 2^20 classes is not searched).
const CLASS_MASK: u64 = (1 << 20) - 1;
/// Window occurrences hashed at most (images are sampled evenly beyond).
const OCCURRENCE_BUDGET: usize = 15_000_000;

/// A window that recurs exactly in one class far beyond chance.
#[derive(Debug, Clone)]
pub struct StampWindow {
    /// Hash of the quantized window.
    pub hash: u64,
    /// The class holding it.
    pub class: u32,
    /// Images (of the searched sample) holding it, in `class`.
    pub count: usize,
    /// Images holding it outside `class`.
    pub outside: usize,
    /// Tail p-value of `count` under the other classes' window counts.
    pub p_value: f64,
    /// An image holding it and where (x, y of the window's corner).
    pub example: (usize, usize, usize),
    /// Every image of the dataset holding it, with the corners where.
    pub holders: Vec<(usize, Vec<(usize, usize)>)>,
    /// Whether the count alone proves it a trigger. A window that does not
    /// is a *lead*: its carriers may still share an exact stamp at one
    /// place, which localizing them can show.
    pub significant: bool,
}

/// Hashes of every window of image `i` that is not flat, or flat with
/// identical pixels (by their exact value), with positions.
pub fn window_hashes(stack: &ImageStack, i: usize) -> Vec<(u64, u16, u16)> {
    let (w, h, c) = (stack.width, stack.height, stack.channels);
    if w < SIDE || h < SIDE || !stack.valid[i] {
        return Vec::new();
    }
    let img = stack.image(i);
    if c == 1 {
        return grey_window_hashes(img, w, h);
    }
    let mut out = Vec::with_capacity((w - SIDE + 1) * (h - SIDE + 1));
    for y in 0..=h - SIDE {
        for x in 0..=w - SIDE {
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            let corner = &img[(y * w + x) * c..(y * w + x + 1) * c];
            let first = corner[0] >> 5;
            let (mut flat, mut identical) = (true, true);
            let (mut lo, mut hi) = (first, first);
            for dy in 0..SIDE {
                let row = ((y + dy) * w + x) * c;
                let pixels = &img[row..row + SIDE * c];
                identical &= pixels.chunks_exact(c).all(|p| p == corner);
                for &v in pixels {
                    let q = v >> 5;
                    flat &= q == first;
                    lo = lo.min(q);
                    hi = hi.max(q);
                    hash = (hash ^ u64::from(q)).wrapping_mul(0x0100_0000_01b3);
                }
            }
            if !flat {
                if !faint(lo, hi) {
                    out.push((mix(hash) & !CLASS_MASK, x as u16, y as u16));
                }
            } else if identical {
                out.push((solid_hash(corner), x as u16, y as u16));
            }
        }
    }
    out
}

/// [`window_hashes`] of a grey image: a window's 16 levels of 3 bits fit
/// in one 48-bit word, built from four rows of 4 packed pixels (each row
/// packed once), so no byte-by-byte hashing is needed.
fn grey_window_hashes(img: &[u8], w: usize, h: usize) -> Vec<(u64, u16, u16)> {
    let across = w - SIDE + 1;
    // Per row and start x, the row's 4 pixels: packed levels, the lowest
    // and highest level (a window's span is its rows' spans), and whether
    // the 4 pixels are one value.
    let segments: Vec<Segment> = (0..h)
        .flat_map(|y| {
            let row = &img[y * w..(y + 1) * w];
            (0..across).map(move |x| Segment::of(&row[x..x + SIDE]))
        })
        .collect();
    // A flat window repeats one 3-bit level 16 times.
    const ONES: u64 = 0o1111_1111_1111_1111;
    let mut out = Vec::with_capacity(across * (h - SIDE + 1));
    for y in 0..=h - SIDE {
        let rows: [&[Segment]; SIDE] =
            std::array::from_fn(|dy| &segments[(y + dy) * across..(y + dy + 1) * across]);
        for x in 0..across {
            let word = rows.iter().fold(0u64, |acc, r| (acc << 12) | r[x].levels);
            if word != (word & 7) * ONES {
                let (lo, hi) = rows
                    .iter()
                    .fold((7, 0), |(lo, hi), r| (lo.min(r[x].lo), hi.max(r[x].hi)));
                if !faint(lo, hi) {
                    out.push((mix(word ^ GREY_SEED) & !CLASS_MASK, x as u16, y as u16));
                }
                continue;
            }
            let value = img[y * w + x];
            let identical = (0..SIDE).all(|dy| rows[dy][x].even && img[(y + dy) * w + x] == value);
            if identical {
                out.push((solid_hash(&[value]), x as u16, y as u16));
            }
        }
    }
    out
}

/// Four pixels of a grey row, as [`grey_window_hashes`] combines them.
#[derive(Clone, Copy)]
struct Segment {
    /// Their 3-bit levels, packed.
    levels: u64,
    /// Lowest level.
    lo: u8,
    /// Highest level.
    hi: u8,
    /// Whether all four are one value.
    even: bool,
}

impl Segment {
    fn of(px: &[u8]) -> Segment {
        let (mut levels, mut lo, mut hi) = (0u64, 7u8, 0u8);
        for &v in px {
            let q = v >> 5;
            levels = (levels << 3) | u64::from(q);
            lo = lo.min(q);
            hi = hi.max(q);
        }
        Segment {
            levels,
            lo,
            hi,
            even: px.iter().all(|&v| v == px[0]),
        }
    }
}

/// Whether a window whose levels (3 bits each) run from `lo` to `hi` lies
/// within one step: the faint edge of an object against the background,
/// or shading, which recurs exactly in many images of a class (a
/// sneaker's sole: 47 clean sneakers at 44 places in z2008_clean). It is
/// skipped as a flat window is; a stamp stands out by more.
fn faint(lo: u8, hi: u8) -> bool {
    hi - lo <= 1
}

/// Hash of a window whose pixels all equal `pixel` (its channel values),
/// apart from every quantized window's.
fn solid_hash(pixel: &[u8]) -> u64 {
    let word = pixel.iter().fold(u64::from(pixel.len() as u8), |acc, &v| {
        (acc << 8) | u64::from(v)
    });
    mix(word ^ SOLID_SEED) & !CLASS_MASK
}

/// Keeps solid windows' hashes apart from quantized ones.
const SOLID_SEED: u64 = 0x5851_f42d_4c95_7f2d;

/// Keeps grey windows' words apart from small colour hashes.
const GREY_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Final avalanche so nearby FNV states spread over all bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Window hashes are already mixed ([`mix`]), so maps keyed by them need no
/// second hash: this hasher passes the key through (SipHash made the
/// counting pass several times slower), its high half folded onto the low
/// one — a window hash's low [`CLASS_MASK`] bits are zero, and hash tables
/// place keys by their low bits.
#[derive(Default, Clone, Copy)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A map keyed by window hash.
type HashKeyed<V> = HashMap<u64, V, std::hash::BuildHasherDefault<PassThrough>>;

/// A set of window hashes.
type HashesSeen = HashSet<u64, std::hash::BuildHasherDefault<PassThrough>>;

/// The distinct hashes of one image's `windows`, in first-seen order, in a
/// vector of exactly their number; `seen` is scratch reused from image to
/// image. (Sorting each image's 625 windows to drop repeats took over half
/// as long as hashing them.)
fn distinct(windows: &[(u64, u16, u16)], seen: &mut HashesSeen) -> Vec<u64> {
    seen.clear();
    let mut out = Vec::with_capacity(windows.len());
    out.extend(windows.iter().map(|t| t.0).filter(|&h| seen.insert(h)));
    out.shrink_to_fit();
    out
}

/// The windows that recur in one class beyond what the other classes'
/// exclusive windows make plausible, most significant first (one per class
/// and carrier set: windows of one stamp share their carriers).
pub fn find(stack: &ImageStack, labels: &[u32], fdr: f64) -> Vec<StampWindow> {
    let sample = sample_images(stack);
    let per_image: Vec<Vec<u64>> = sample
        .par_iter()
        .map_init(HashesSeen::default, |seen, &i| {
            distinct(&window_hashes(stack, i), seen)
        })
        .collect();
    // Most windows occur once. A counting sketch (8-bit counts in 2^25
    // buckets, filled in parallel and stopping near MIN_COUNT) rules those
    // out before they are sorted: a window whose bucket holds fewer than
    // MIN_COUNT occurrences is surely rare.
    const SKETCH_BITS: u32 = 23;
    let sketch: Vec<AtomicU8> = (0..1usize << SKETCH_BITS)
        .map(|_| AtomicU8::new(0))
        .collect();
    let bucket = |h: u64| (h >> (64 - SKETCH_BITS)) as usize;
    per_image.par_iter().flatten().for_each(|&hsh| {
        let c = &sketch[bucket(hsh)];
        // Counts only matter up to MIN_COUNT: stop there (no wrap-around).
        if (c.load(Ordering::Relaxed) as usize) < MIN_COUNT {
            c.fetch_add(1, Ordering::Relaxed);
        }
    });
    let sketch: Vec<u8> = sketch.into_iter().map(AtomicU8::into_inner).collect();
    // The surviving (window, class) occurrences as one sortable word each:
    // the window's hash in the high bits, the class in the low ones.
    // Sorted, each window's run gives its total and, by class, its largest
    // share.
    if labels.iter().any(|&l| u64::from(l) > CLASS_MASK) {
        return Vec::new();
    }
    let mut keys: Vec<u64> = sample
        .par_iter()
        .zip(&per_image)
        .flat_map_iter(|(&i, hashes)| {
            let sketch = &sketch;
            hashes
                .iter()
                .filter(move |&&h| sketch[bucket(h)] as usize >= MIN_COUNT)
                .map(move |&h| h | u64::from(labels[i]))
        })
        .collect();
    drop(sketch);
    keys.par_sort_unstable();
    let mut exclusive: Vec<(u64, u32, usize, usize)> = Vec::new();
    for run in keys.chunk_by(|a, b| a & !CLASS_MASK == b & !CLASS_MASK) {
        let total = run.len();
        if total < MIN_COUNT {
            continue;
        }
        let (class, top) = run
            .chunk_by(|a, b| a == b)
            .map(|r| ((r[0] & CLASS_MASK) as u32, r.len()))
            .fold((0, 0), |best, c| if c.1 > best.1 { c } else { best });
        if top >= MIN_COUNT && top as f64 >= EXCLUSIVE * total as f64 {
            exclusive.push((run[0] & !CLASS_MASK, class, top, total - top));
        }
    }
    drop(keys);
    let classes: Vec<u32> = {
        let mut c: Vec<u32> = exclusive.iter().map(|e| e.1).collect();
        c.sort_unstable();
        c.dedup();
        c
    };
    let alpha: HashMap<u32, f64> = classes
        .iter()
        .filter_map(|&c| {
            let others: Vec<usize> = exclusive.iter().filter(|e| e.1 != c).map(|e| e.2).collect();
            tail_exponent(&others).map(|a| (c, a))
        })
        .collect();
    let p: Vec<f64> = exclusive
        .iter()
        .map(|e| match alpha.get(&e.1) {
            Some(&a) => ((e.2 as f64 - 0.5) / (MIN_COUNT as f64 - 0.5)).powf(-a),
            None => f64::NAN,
        })
        .collect();
    // A trigger claims a whole group of images, so what is controlled is
    // the chance of any false trigger at all (Bonferroni), not a share.
    let tested = p.iter().filter(|v| !v.is_nan()).count().max(1) as f64;
    let significant: Vec<bool> = p.iter().map(|&v| v * tested <= fdr).collect();
    let mut found: Vec<StampWindow> = exclusive
        .iter()
        .zip(&p)
        .zip(&significant)
        .filter(|((e, p), _)| !p.is_nan() && e.2 >= LEAD_COUNT)
        .map(|((e, &p_value), &significant)| StampWindow {
            hash: e.0,
            class: e.1,
            count: e.2,
            outside: e.3,
            p_value,
            example: (0, 0, 0),
            holders: Vec::new(),
            significant,
        })
        .collect();
    found.sort_by(|a, b| {
        a.p_value
            .total_cmp(&b.p_value)
            .then(b.count.cmp(&a.count))
            .then(a.hash.cmp(&b.hash))
    });
    // Per class: the most significant window (its stamp's other windows
    // share its carriers and add nothing), or up to [`LEADS`] leads.
    let mut taken: HashMap<u32, usize> = HashMap::new();
    found.retain(|s| {
        let n = taken.entry(s.class).or_default();
        let keep = if s.significant { *n == 0 } else { *n < LEADS };
        if keep {
            *n = if s.significant { usize::MAX } else { *n + 1 };
        }
        keep
    });
    locate(stack, &sample, &per_image, &mut found);
    found
}

/// Fills in every candidate's holders (all images, not only the searched
/// sample) and an example, in one pass over the images. `searched` are the
/// searched images and `hashes` their distinct window hashes: an image whose
/// list holds no candidate is skipped without hashing it again.
fn locate(stack: &ImageStack, searched: &[usize], hashes: &[Vec<u64>], found: &mut [StampWindow]) {
    let wanted: HashKeyed<usize> = found.iter().enumerate().map(|(k, s)| (s.hash, k)).collect();
    if wanted.is_empty() {
        return;
    }
    let mut known: Vec<Option<&Vec<u64>>> = vec![None; stack.len()];
    for (&i, h) in searched.iter().zip(hashes) {
        known[i] = Some(h);
    }
    let per_image: Vec<Vec<(usize, usize, usize)>> = (0..stack.len())
        .into_par_iter()
        .map(|i| {
            let holds_any = known[i].is_none_or(|h| h.iter().any(|k| wanted.contains_key(k)));
            if !holds_any {
                return Vec::new();
            }
            window_hashes(stack, i)
                .into_iter()
                .filter_map(|(h, x, y)| wanted.get(&h).map(|&k| (k, x as usize, y as usize)))
                .collect()
        })
        .collect();
    for (i, hits) in per_image.into_iter().enumerate() {
        for (k, x, y) in hits {
            let s = &mut found[k];
            match s.holders.last_mut() {
                Some((j, at)) if *j == i => at.push((x, y)),
                _ => s.holders.push((i, vec![(x, y)])),
            }
        }
    }
    for s in found.iter_mut() {
        if let Some((i, at)) = s.holders.first() {
            s.example = (*i, at[0].0, at[0].1);
        }
    }
}

/// Power-law exponent of counts ≥ [`MIN_COUNT`], from the 90th percentile
/// (P(count ≥ q90) = 0.1): the bulk of natural windows sets it, not the few
/// planted ones. None with fewer than 20 counts.
fn tail_exponent(counts: &[usize]) -> Option<f64> {
    if counts.len() < 20 {
        return None;
    }
    let mut v = counts.to_vec();
    let k = ((v.len() as f64 * 0.9) as usize).min(v.len() - 1);
    let q90 = *v.select_nth_unstable(k).1 as f64;
    let ratio = (q90 + 0.5) / (MIN_COUNT as f64 - 0.5);
    Some(10f64.ln() / ratio.ln().max(1e-3))
}

/// Images searched: all valid ones, or an even sample within
/// [`OCCURRENCE_BUDGET`] window occurrences.
fn sample_images(stack: &ImageStack) -> Vec<usize> {
    let per = (stack.width.saturating_sub(SIDE) + 1) * (stack.height.saturating_sub(SIDE) + 1);
    let valid: Vec<usize> = (0..stack.len()).filter(|&i| stack.valid[i]).collect();
    let cap = (OCCURRENCE_BUDGET / per.max(1)).max(1);
    if valid.len() <= cap {
        return valid;
    }
    let step = valid.len().div_ceil(cap);
    valid.into_iter().step_by(step).collect()
}

impl StampWindow {
    /// The holders labelled with the window's class (its carriers as a
    /// group to localize), in index order.
    pub fn carriers(&self, labels: &[u32]) -> Vec<usize> {
        self.holders
            .iter()
            .map(|(i, _)| *i)
            .filter(|&i| labels[i] == self.class)
            .collect()
    }
}

/// Where image `i` holds the window `hash` (corners), if anywhere.
pub fn positions(stack: &ImageStack, i: usize, hash: u64) -> Vec<(usize, usize)> {
    window_hashes(stack, i)
        .into_iter()
        .filter(|t| t.0 == hash)
        .map(|t| (t.1 as usize, t.2 as usize))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each image's distinct hashes, whatever came before in the reused set:
    /// repeats dropped, first-seen order kept, one image's hashes never
    /// hiding another's — also when all share their low bits.
    #[test]
    fn distinct_hashes_per_image_through_a_reused_set() {
        let mut seen = HashesSeen::default();
        let w =
            |hs: &[u64]| -> Vec<(u64, u16, u16)> { hs.iter().map(|&h| (h << 20, 0, 0)).collect() };
        assert_eq!(
            distinct(&w(&[5, 3, 5, 9, 3]), &mut seen),
            vec![5 << 20, 3 << 20, 9 << 20]
        );
        // The same values in the next image are counted again.
        assert_eq!(distinct(&w(&[9, 9, 1]), &mut seen), vec![9 << 20, 1 << 20]);
        assert!(distinct(&[], &mut seen).is_empty());
        let many: Vec<u64> = (0..3000).chain(0..3000).collect();
        let got = distinct(&w(&many), &mut seen);
        assert_eq!(got, (0..3000).map(|h| h << 20).collect::<Vec<_>>());
        assert_eq!(got.capacity(), 3000);
    }

    /// Whether a 4×4 grey image (16 values, row by row) gives its one
    /// window a hash.
    fn hashed(pixels: [u8; 16]) -> bool {
        !grey_window_hashes(&pixels, SIDE, SIDE).is_empty()
    }

    #[test]
    fn a_faint_edge_is_not_a_pattern_but_a_stamp_is() {
        // z2008_clean's false trigger: a sneaker's sole against the black
        // background, one level step at most.
        let sole = [23, 20, 24, 24, 34, 34, 33, 19, 15, 8, 4, 0, 0, 0, 0, 0];
        assert!(!hashed(sole));
        // A checkerboard stamp, and a pale stamp two steps above the
        // background, stand out.
        let board: [u8; 16] = std::array::from_fn(|k| if (k + k / 4) % 2 == 0 { 255 } else { 0 });
        assert!(hashed(board));
        let pale: [u8; 16] = std::array::from_fn(|k| if k % 5 == 0 { 70 } else { 0 });
        assert!(hashed(pale));
        // A solid stamp is hashed by its value; even shading is not.
        assert!(hashed([200; 16]));
        let shaded: [u8; 16] = std::array::from_fn(|k| 200 + (k % 3) as u8);
        assert!(!hashed(shaded));
    }

    /// `n` grey 16×16 images of texture (pseudo-random values 60–209, so no
    /// window recurs by chance and a stamp's edges never match) with a
    /// class's small mark in a corner, labels cycling over 4 classes; images in `stamped` get a 6×6 block filled by
    /// `fill(x, y)` at a place that moves with the image.
    fn stack(
        n: usize,
        stamped: &[usize],
        fill: impl Fn(usize, usize) -> u8,
    ) -> (ImageStack, Vec<u32>) {
        let (w, h) = (16usize, 16usize);
        let mut data = vec![0u8; n * w * h];
        let mut seed = 11u64;
        for (i, img) in data.chunks_mut(w * h).enumerate() {
            for v in img.iter_mut() {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                *v = 60 + (seed >> 33) as u8 % 150;
            }
            // The data's own look-alikes: one of 40 small marks per class
            // (each held by a few images of it), so the other classes have
            // exclusive windows to fit the tail of chance counts to.
            let mark = (i % 4) * 40 + (i / 4) % 40;
            let mut mark_seed = mark as u64 + 1;
            for y in 0..SIDE {
                for x in 0..SIDE {
                    mark_seed = mark_seed
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1442695040888963407);
                    img[(12 + y) * w + 12 + x] = 60 + (mark_seed >> 33) as u8 % 150;
                }
            }
            if stamped.contains(&i) {
                let (x0, y0) = (i % 10, (i / 10) % 10);
                for y in 0..6 {
                    for x in 0..6 {
                        img[(y0 + y) * w + x0 + x] = fill(x, y);
                    }
                }
            }
        }
        let stack = ImageStack::grey(w, h, data);
        (stack, (0..n).map(|i| (i % 4) as u32).collect())
    }

    #[test]
    fn a_solid_stamp_anywhere_is_found_by_its_exact_value() {
        // 40 of class 2's 150 images carry a solid block of 150 somewhere:
        // at 8 levels it is as flat as a background, exactly it is not.
        let stamped: Vec<usize> = (0..40).map(|k| 2 + 4 * k).collect();
        let (stack, labels) = stack(600, &stamped, |_, _| 150);
        let found = find(&stack, &labels, 0.05);
        let best = found.iter().find(|s| s.significant).expect("a trigger");
        assert_eq!(best.class, 2);
        assert_eq!(best.carriers(&labels), stamped);
    }

    #[test]
    fn even_shading_that_is_not_one_exact_value_is_no_stamp() {
        // The same block, its pixels 150 and 151 by turns (one level, not
        // one value): even shading, skipped like a background.
        let stamped: Vec<usize> = (0..40).map(|k| 2 + 4 * k).collect();
        let (stack, labels) = stack(600, &stamped, |x, y| 150 + ((x + y) % 2) as u8);
        let f = find(&stack, &labels, 0.05);
        assert!(f.iter().all(|s| !s.significant));
    }
}
