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
//! trigger claims a whole group, so the chance of any false one is bounded). Flat windows (one value) are
//! skipped: they are background or saturated areas everywhere.

use std::collections::HashMap;
use std::ops::AddAssign;

use rayon::prelude::*;

use super::stack::ImageStack;

/// Window side in stack pixels (the zoo's stamps are 2–12 px; 4 fits
/// inside a stamp or straddles its corner).
pub const SIDE: usize = 4;
/// Share of a candidate's carriers that must be in one class.
pub const EXCLUSIVE: f64 = 0.95;
/// Fewest carriers worth testing (the tail fit starts here).
const MIN_COUNT: usize = 3;
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
}

/// Hashes of every non-flat window of image `i`, with positions.
pub fn window_hashes(stack: &ImageStack, i: usize) -> Vec<(u64, u16, u16)> {
    let (w, h, c) = (stack.width, stack.height, stack.channels);
    if w < SIDE || h < SIDE || !stack.valid[i] {
        return Vec::new();
    }
    let img = stack.image(i);
    let mut out = Vec::with_capacity((w - SIDE + 1) * (h - SIDE + 1));
    for y in 0..=h - SIDE {
        for x in 0..=w - SIDE {
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            let first = img[(y * w + x) * c] >> 5;
            let mut flat = true;
            for dy in 0..SIDE {
                let row = ((y + dy) * w + x) * c;
                for &v in &img[row..row + SIDE * c] {
                    let q = v >> 5;
                    flat &= q == first;
                    hash = (hash ^ u64::from(q)).wrapping_mul(0x0100_0000_01b3);
                }
            }
            if !flat {
                out.push((mix(hash), x as u16, y as u16));
            }
        }
    }
    out
}

/// Final avalanche so nearby FNV states spread over all bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Images holding one window, and the class most of them are in
/// (Boyer–Moore majority vote: exact whenever a class holds a majority).
#[derive(Default, Clone, Copy)]
struct Tally {
    total: u32,
    candidate: u32,
    votes: u32,
}

impl Tally {
    fn add(&mut self, class: u32) {
        self.total += 1;
        if self.votes == 0 {
            self.candidate = class;
            self.votes = 1;
        } else if self.candidate == class {
            self.votes += 1;
        } else {
            self.votes -= 1;
        }
    }
}

/// The windows that recur in one class beyond what the other classes'
/// exclusive windows make plausible, most significant first (one per class
/// and carrier set: windows of one stamp share their carriers).
pub fn find(stack: &ImageStack, labels: &[u32], fdr: f64) -> Vec<StampWindow> {
    let sample = sample_images(stack);
    let per_image: Vec<Vec<u64>> = sample
        .par_iter()
        .map(|&i| {
            let mut v: Vec<u64> = window_hashes(stack, i).into_iter().map(|t| t.0).collect();
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect();
    // Pass 1: per hash, images holding it and a majority-vote candidate
    // class (Boyer–Moore), in one flat map.
    let mut tally: HashMap<u64, Tally> = HashMap::new();
    for (&i, hashes) in sample.iter().zip(&per_image) {
        for &hsh in hashes {
            tally.entry(hsh).or_default().add(labels[i]);
        }
    }
    tally.retain(|_, t| t.total as usize >= MIN_COUNT);
    // Pass 2: exact count of each survivor's candidate class.
    let mut in_class: HashMap<u64, u32> = tally.keys().map(|&k| (k, 0)).collect();
    for (&i, hashes) in sample.iter().zip(&per_image) {
        for hsh in hashes {
            if let Some(n) = in_class.get_mut(hsh) {
                n.add_assign(u32::from(tally[hsh].candidate == labels[i]));
            }
        }
    }
    drop(per_image);
    let mut exclusive: Vec<(u64, u32, usize, usize)> = tally
        .iter()
        .filter_map(|(&hsh, t)| {
            let top = in_class[&hsh];
            (top as usize >= MIN_COUNT && top as f64 >= EXCLUSIVE * t.total as f64).then_some((
                hsh,
                t.candidate,
                top as usize,
                (t.total - top) as usize,
            ))
        })
        .collect();
    exclusive.sort_unstable();
    drop(tally);
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
        .filter(|(_, s)| **s)
        .map(|((e, &p_value), _)| StampWindow {
            hash: e.0,
            class: e.1,
            count: e.2,
            outside: e.3,
            p_value,
            example: (0, 0, 0),
        })
        .collect();
    found.sort_by(|a, b| {
        a.p_value
            .total_cmp(&b.p_value)
            .then(b.count.cmp(&a.count))
            .then(a.hash.cmp(&b.hash))
    });
    // One per class: the most significant (its stamp's other windows share
    // its carriers and add nothing).
    let mut seen = std::collections::HashSet::new();
    found.retain(|s| seen.insert(s.class));
    for s in &mut found {
        s.example = sample
            .iter()
            .find_map(|&i| {
                (labels[i] == s.class)
                    .then(|| window_hashes(stack, i))
                    .and_then(|v| v.into_iter().find(|t| t.0 == s.hash))
                    .map(|t| (i, t.1 as usize, t.2 as usize))
            })
            .unwrap_or((0, 0, 0));
    }
    found
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

/// Where image `i` holds the window `hash` (corners), if anywhere.
pub fn positions(stack: &ImageStack, i: usize, hash: u64) -> Vec<(usize, usize)> {
    window_hashes(stack, i)
        .into_iter()
        .filter(|t| t.0 == hash)
        .map(|t| (t.1 as usize, t.2 as usize))
        .collect()
}
