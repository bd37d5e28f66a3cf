//! k-nearest neighbours of every sample, shared by the label, outlier,
//! duplicate and clustering detectors (computed once per scan).
//!
//! Up to [`EXACT_LIMIT`] samples the search is exact (blocked matrix products).
//! Beyond, an inverted-file index keeps a full scan fast: samples are bucketed
//! into about √n cells by k-means, and the queries of a cell scan the cells
//! nearest to it with one matrix product, exact distances within them. How
//! many cells is not a constant: the exact neighbours of a few hundred
//! sample queries are found first, and the fewest cells that hold
//! [`TARGET_RECALL`] of them are probed, so the search keeps its recall on
//! data of any structure and probes no more than that data needs. The test
//! `ivf_agrees_with_exact_search` and `examples/bench_knn` measure it.

use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;

use ndarray::s;
use rayon::prelude::*;

use crate::linalg::Matrix;

/// Largest dataset searched exactly.
pub const EXACT_LIMIT: usize = 10_000;

/// k neighbours of every row (excluding itself), nearest first; ties break by
/// index, so results are deterministic.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Neighbors {
    /// Neighbours per row.
    pub k: usize,
    /// N×k neighbour indices.
    #[serde(with = "crate::packed::u32s")]
    pub idx: Vec<u32>,
    /// N×k squared Euclidean distances.
    #[serde(with = "crate::packed::f32s")]
    pub dist2: Vec<f32>,
}

impl Neighbors {
    /// Neighbour indices of row `i`.
    pub fn of(&self, i: usize) -> &[u32] {
        &self.idx[i * self.k..(i + 1) * self.k]
    }
    /// Squared distances of row `i`'s neighbours.
    pub fn dist2_of(&self, i: usize) -> &[f32] {
        &self.dist2[i * self.k..(i + 1) * self.k]
    }

    /// Each row's `k` nearest only (`k` no more than it has): the shown
    /// neighbours come from the scan's search, not a second one.
    pub fn nearest(&self, k: usize) -> Neighbors {
        let k = k.min(self.k);
        let rows = self.rows();
        let mut idx = Vec::with_capacity(rows * k);
        let mut dist2 = Vec::with_capacity(rows * k);
        for i in 0..rows {
            idx.extend_from_slice(&self.of(i)[..k]);
            dist2.extend_from_slice(&self.dist2_of(i)[..k]);
        }
        Neighbors { k, idx, dist2 }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.idx.len().checked_div(self.k).unwrap_or(0)
    }
}

/// Neighbours of every row: exact for small data, inverted-file beyond.
pub fn knn(x: &Matrix, k: usize) -> Neighbors {
    knn_watched(x, k, &Watch::NONE).expect("an unwatched search is never cancelled")
}

/// What a long neighbour search reports and obeys: how far it has got
/// (0..1, from the worker threads as blocks finish) and whether to stop.
/// On a million points the search takes minutes; without this the window
/// could only show a spinner and the Cancel button waited for it.
pub struct Watch<'a> {
    /// Called with the share of the work done.
    pub progress: &'a (dyn Fn(f32) + Sync),
    /// Polled before each block; true stops the search.
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
}

impl Watch<'_> {
    /// Reports nothing and never stops.
    pub const NONE: Watch<'static> = Watch {
        progress: &|_| {},
        cancelled: &|| false,
    };

    /// Counts one finished unit of `total` and reports the share done.
    fn tick(&self, done: &std::sync::atomic::AtomicUsize, total: usize) {
        let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        (self.progress)(d as f32 / total.max(1) as f32);
    }
}

/// [`knn`] that reports progress and stops early (None) when cancelled.
pub fn knn_watched(x: &Matrix, k: usize, watch: &Watch) -> Option<Neighbors> {
    let nb = if x.rows <= EXACT_LIMIT {
        knn_exact_watched(x, k, watch)
    } else {
        knn_ivf_watched(x, k, watch)
    };
    (!(watch.cancelled)()).then_some(nb)
}

/// Keeps the k smallest (distance, index) pairs seen, ordered by
/// distance then index, in a max-heap: a newcomer that beats the
/// k-th replaces it in O(log k) (a sorted list shifted half its length per
/// insertion, 3–4% of a scan's instructions). Each pair is kept as one
/// word ([`ranked`]), so the heap compares integers.
struct TopK {
    k: usize,
    heap: std::collections::BinaryHeap<u64>,
    worst: f32,
}

/// A (distance, index) pair as one word whose integer order is the pair's
/// order (distance, then index): the distance's bits above the index.
/// Distances are never negative here (every caller clamps them at 0), and
/// the bits of a non-negative float order as the float does; a −0.0 counts
/// as 0.
fn ranked(d: f32, j: u32) -> u64 {
    let bits = if d.is_sign_negative() { 0 } else { d.to_bits() };
    (u64::from(bits) << 32) | u64::from(j)
}

/// The pair a [`ranked`] word holds.
fn unranked(w: u64) -> (f32, u32) {
    (f32::from_bits((w >> 32) as u32), w as u32)
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            heap: std::collections::BinaryHeap::with_capacity(k + 1),
            worst: f32::INFINITY,
        }
    }
    fn clear(&mut self) {
        self.heap.clear();
        self.worst = f32::INFINITY;
    }
    /// Offers a candidate; most are farther than the k-th and are turned
    /// away here, inlined into the distance loop (the call itself was a
    /// tenth of a scan's instructions when every candidate made it).
    #[inline(always)]
    fn push(&mut self, d: f32, j: u32) {
        if d < self.worst || self.heap.len() < self.k {
            self.insert(d, j);
        }
    }
    /// Keeps a candidate that [`Self::push`] let through: while fewer than
    /// k are kept it joins them; after, one nearer than the k-th replaces it.
    #[inline(never)]
    fn insert(&mut self, d: f32, j: u32) {
        if self.heap.len() < self.k {
            self.heap.push(ranked(d, j));
            if self.heap.len() == self.k {
                self.worst = self.heap.peek().map_or(f32::INFINITY, |&w| unranked(w).0);
            }
        } else if d < self.worst {
            if let Some(mut top) = self.heap.peek_mut() {
                *top = ranked(d, j);
            }
            self.worst = self.heap.peek().map_or(f32::INFINITY, |&w| unranked(w).0);
        }
    }
    /// Calls `visit(slot, distance, index)` for the kept pairs, nearest
    /// first, and empties the list (keeping its allocation).
    fn drain_sorted(&mut self, mut visit: impl FnMut(usize, f32, u32)) {
        let mut sorted = std::mem::take(&mut self.heap).into_sorted_vec();
        for (slot, &w) in sorted.iter().enumerate() {
            let (d, j) = unranked(w);
            visit(slot, d, j);
        }
        sorted.clear();
        self.heap = std::collections::BinaryHeap::from(sorted);
        self.worst = f32::INFINITY;
    }
    fn drain_into(&mut self, idx: &mut Vec<u32>, dist: &mut Vec<f32>) {
        self.drain_sorted(|_, d, j| {
            idx.push(j);
            dist.push(d);
        });
    }
}

fn norms(x: &Matrix) -> Vec<f32> {
    (0..x.rows)
        .map(|i| x.row(i).iter().map(|v| v * v).sum())
        .collect()
}

fn assemble(k: usize, blocks: Vec<(Vec<u32>, Vec<f32>)>) -> Neighbors {
    let mut idx = Vec::new();
    let mut dist2 = Vec::new();
    for (i, d) in blocks {
        idx.extend(i);
        dist2.extend(d);
    }
    Neighbors { k, idx, dist2 }
}

const BLOCK: usize = 128;

/// Exact search: ‖a‖²+‖b‖²−2a·b with blocked matrix products, parallel over
/// query blocks.
pub fn knn_exact(x: &Matrix, k: usize) -> Neighbors {
    knn_exact_watched(x, k, &Watch::NONE)
}

fn knn_exact_watched(x: &Matrix, k: usize, watch: &Watch) -> Neighbors {
    let n = x.rows;
    let k = k.min(n.saturating_sub(1));
    if k == 0 {
        return assemble(0, vec![]);
    }
    let norms = norms(x);
    let all = x.view();
    let (total, done) = (n.div_ceil(BLOCK), std::sync::atomic::AtomicUsize::new(0));
    let blocks = (0..total)
        .into_par_iter()
        .map(|b| {
            if (watch.cancelled)() {
                return (Vec::new(), Vec::new());
            }
            let (lo, hi) = (b * BLOCK, ((b + 1) * BLOCK).min(n));
            let dots = all.slice(s![lo..hi, ..]).dot(&all.t());
            let mut out = (
                Vec::with_capacity((hi - lo) * k),
                Vec::with_capacity((hi - lo) * k),
            );
            let mut top = TopK::new(k);
            for (r, i) in (lo..hi).enumerate() {
                top.clear();
                let ni = norms[i];
                for (j, (&dot, &nj)) in dots.row(r).iter().zip(&norms).enumerate() {
                    if j != i {
                        top.push((ni + nj - 2.0 * dot).max(0.0), j as u32);
                    }
                }
                top.drain_into(&mut out.0, &mut out.1);
            }
            watch.tick(&done, total);
            out
        })
        .collect();
    if (watch.cancelled)() {
        return assemble(0, vec![]);
    }
    assemble(k, blocks)
}

/// Approximate search over an inverted-file index (see the module docs).
/// Queries are processed a bucket at a time: all queries of a bucket scan the
/// same nearby buckets with one matrix product, which keeps memory access
/// sequential.
pub fn knn_ivf(x: &Matrix, k: usize) -> Neighbors {
    knn_ivf_watched(x, k, &Watch::NONE)
}

fn knn_ivf_watched(x: &Matrix, k: usize, watch: &Watch) -> Neighbors {
    let n = x.rows;
    let k = k.min(n.saturating_sub(1));
    if k == 0 {
        return assemble(0, vec![]);
    }
    let index = Index::build(x);
    let probes = index.probes_for_recall(x, k, TARGET_RECALL);
    let norms = norms(x);
    let nlist = index.cells.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    // Every sample's row is written by the one cell it belongs to, straight
    // into the result (no per-cell lists held alongside it: at a million
    // samples those were a third of a gigabyte).
    let idx: Vec<AtomicU32> = (0..n * k).map(|_| AtomicU32::new(0)).collect();
    let dist2: Vec<AtomicU32> = (0..n * k)
        .map(|_| AtomicU32::new(f32::INFINITY.to_bits()))
        .collect();
    (0..nlist).into_par_iter().for_each(|c| {
        let queries = &index.cells[c];
        if queries.is_empty() || (watch.cancelled)() {
            watch.tick(&done, nlist);
            return;
        }
        let cand = index.candidates(c, probes, 2 * k + 1);
        let cm = x.select_rows(&cand.iter().map(|&i| i as usize).collect::<Vec<_>>());
        let cand_norms: Vec<f32> = cand.iter().map(|&j| norms[j as usize]).collect();
        let mut top = TopK::new(k);
        // Queries a block at a time: a dense cell's distance matrix stays
        // small (BLOCK rows × its candidates).
        for block in queries.chunks(BLOCK) {
            let q = x.select_rows(&block.iter().map(|&i| i as usize).collect::<Vec<_>>());
            let dots = q.view().dot(&cm.view().t());
            for (&i, row) in block.iter().zip(dots.outer_iter()) {
                top.clear();
                let ni = norms[i as usize];
                for ((&j, &nj), &dt) in cand.iter().zip(&cand_norms).zip(row.iter()) {
                    let d = ni + nj - 2.0 * dt;
                    if j != i {
                        top.push(d.max(0.0), j);
                    }
                }
                let at = i as usize * k;
                top.drain_sorted(|slot, d, j| {
                    idx[at + slot].store(j, Relaxed);
                    dist2[at + slot].store(d.to_bits(), Relaxed);
                });
            }
        }
        watch.tick(&done, nlist);
    });
    let idx: Vec<u32> = idx.into_iter().map(AtomicU32::into_inner).collect();
    let dist2: Vec<f32> = dist2
        .into_iter()
        .map(|d| f32::from_bits(d.into_inner()))
        .collect();
    Neighbors { k, idx, dist2 }
}

/// Share of the exact neighbours the inverted file is set to find, measured
/// on a sample of the data itself (the bar is 0.95; the margin
/// covers the sample's error).
pub const TARGET_RECALL: f64 = 0.97;
/// Queries whose exact neighbours set the number of cells to probe.
const CALIBRATION_QUERIES: usize = 256;

/// The inverted file: k-means cells, and for each cell the other cells in
/// order of their centres' distance.
struct Index {
    cells: Vec<Vec<u32>>,
    cell_of: Vec<u32>,
    order: Vec<Vec<u32>>,
}

impl Index {
    /// About √n cells of √n samples each.
    fn build(x: &Matrix) -> Index {
        let n = x.rows;
        let nlist = ((n as f64).sqrt() as usize).clamp(16, 4096);
        let centroids = train_centroids(x, nlist);
        let cnorm = norms(&centroids);
        let cview = centroids.view();
        let cell_of = nearest_centroid(x, &centroids);
        let mut cells: Vec<Vec<u32>> = vec![Vec::new(); nlist];
        for (i, &c) in cell_of.iter().enumerate() {
            cells[c as usize].push(i as u32);
        }
        let between = cview.dot(&cview.t());
        let order = (0..nlist)
            .into_par_iter()
            .map(|c| {
                let mut o: Vec<u32> = (0..nlist as u32).collect();
                let dist = |o: u32| cnorm[o as usize] - 2.0 * between[[c, o as usize]];
                o.sort_by(|&a, &b| dist(a).total_cmp(&dist(b)).then(a.cmp(&b)));
                o
            })
            .collect();
        Index {
            cells,
            cell_of,
            order,
        }
    }

    /// The samples of cell `c`'s `probes` nearest cells, and further cells
    /// until there are at least `at_least`.
    fn candidates(&self, c: usize, probes: usize, at_least: usize) -> Vec<u32> {
        let mut cand = Vec::new();
        for (rank, &o) in self.order[c].iter().enumerate() {
            if rank >= probes && cand.len() >= at_least {
                break;
            }
            cand.extend_from_slice(&self.cells[o as usize]);
        }
        cand
    }

    /// The fewest cells to probe so that, on evenly spaced sample queries,
    /// at least `target` of their exact `k` neighbours lie in the probed
    /// cells — the search's recall, measured on this data rather than
    /// assumed (embeddings with little structure need more cells).
    fn probes_for_recall(&self, x: &Matrix, k: usize, target: f64) -> usize {
        let n = x.rows;
        let queries = sample_rows(n, CALIBRATION_QUERIES);
        let exact = exact_for(x, &queries, k);
        let rank_of_cell = |q: usize| {
            let mut rank = vec![0u32; self.cells.len()];
            for (r, &o) in self.order[self.cell_of[q] as usize].iter().enumerate() {
                rank[o as usize] = r as u32;
            }
            rank
        };
        let mut ranks: Vec<u32> = queries
            .par_iter()
            .zip(exact.par_iter())
            .flat_map_iter(|(&q, nb)| {
                let rank = rank_of_cell(q);
                nb.iter()
                    .map(|&j| rank[self.cell_of[j as usize] as usize])
                    .collect::<Vec<_>>()
            })
            .collect();
        if ranks.is_empty() {
            return self.cells.len();
        }
        ranks.sort_unstable();
        let need = ((target * ranks.len() as f64).ceil() as usize).clamp(1, ranks.len());
        ranks[need - 1] as usize + 1
    }
}

/// `m` distinct rows drawn at random with a fixed seed (evenly spaced rows
/// would alias with any periodic order of the data, e.g. rows sorted by
/// class in turn, and measure only part of it).
pub fn sample_rows(n: usize, m: usize) -> Vec<usize> {
    let mut rng = crate::linalg::XorShift::new(0x51A7_E5EE_D0C0_FFEE);
    let mut rows: Vec<usize> = if m >= n {
        (0..n).collect()
    } else {
        let mut seen = std::collections::HashSet::with_capacity(m);
        while seen.len() < m {
            seen.insert(((rng.next_f64() * n as f64) as usize).min(n - 1));
        }
        seen.into_iter().collect()
    };
    rows.sort_unstable();
    rows
}

/// Exact `k` neighbours of the rows `queries` among all rows (each query
/// excluded from its own list).
fn exact_for(x: &Matrix, queries: &[usize], k: usize) -> Vec<Vec<u32>> {
    let norms = norms(x);
    let all = x.view();
    queries
        .par_chunks(16)
        .flat_map_iter(|chunk| {
            let q = x.select_rows(chunk);
            let dots = q.view().dot(&all.t());
            let mut top = TopK::new(k);
            chunk
                .iter()
                .zip(dots.outer_iter())
                .map(|(&i, row)| {
                    top.clear();
                    for (j, (&dt, &nj)) in row.iter().zip(&norms).enumerate() {
                        if j != i {
                            top.push((norms[i] + nj - 2.0 * dt).max(0.0), j as u32);
                        }
                    }
                    let (mut idx, mut d) = (Vec::new(), Vec::new());
                    top.drain_into(&mut idx, &mut d);
                    idx
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Lloyd's k-means on a random sample of 32 points per cell (seeded, so
/// deterministic), 8 rounds; empty cells keep their centre.
fn train_centroids(x: &Matrix, nlist: usize) -> Matrix {
    let n = x.rows;
    let m = (32 * nlist).min(n);
    let xs = x.select_rows(&sample_rows(n, m));
    // Starting centres drawn at random from the sample (evenly spaced ones
    // alias with data stored in a periodic order: one class's rows only).
    let mut cent = xs.select_rows(&sample_rows(m, nlist));
    let d = x.cols;
    for _ in 0..8 {
        let nearest = nearest_centroid(&xs, &cent);
        let mut sums = vec![0f64; nlist * d];
        let mut counts = vec![0usize; nlist];
        for (r, &best) in nearest.iter().enumerate() {
            let best = best as usize;
            counts[best] += 1;
            for (s, v) in sums[best * d..(best + 1) * d].iter_mut().zip(xs.row(r)) {
                *s += *v as f64;
            }
        }
        for c in 0..nlist {
            if counts[c] > 0 {
                for j in 0..d {
                    cent.data[c * d + j] = (sums[c * d + j] / counts[c] as f64) as f32;
                }
            }
        }
    }
    cent
}

/// Index of the nearest centroid of every row, in parallel blocks.
fn nearest_centroid(x: &Matrix, centroids: &Matrix) -> Vec<u32> {
    let cnorm = norms(centroids);
    let all = x.view();
    let cview = centroids.view();
    (0..x.rows.div_ceil(BLOCK))
        .into_par_iter()
        .flat_map_iter(|b| {
            let (lo, hi) = (b * BLOCK, ((b + 1) * BLOCK).min(x.rows));
            let dots = all.slice(s![lo..hi, ..]).dot(&cview.t());
            dots.outer_iter()
                .map(|row| {
                    let mut best = (f32::INFINITY, 0u32);
                    for (c, (dt, cn)) in row.iter().zip(&cnorm).enumerate() {
                        let d = cn - 2.0 * dt;
                        if d < best.0 {
                            best = (d, c as u32);
                        }
                    }
                    best.1
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One word per (distance, index) pair orders as the pair does —
    /// distance first (zero, subnormal, ordinary, infinite), then index —
    /// and gives the pair back.
    #[test]
    fn ranked_words_order_as_their_pairs() {
        let ds = [0.0f32, 1e-45, 1e-38, 0.5, 0.5, 1.0, 3.4e38, f32::INFINITY];
        let mut pairs: Vec<(f32, u32)> = Vec::new();
        for (k, &d) in ds.iter().enumerate() {
            for j in [0u32, 7, u32::MAX] {
                pairs.push((d, j ^ k as u32));
            }
        }
        for &a in &pairs {
            assert_eq!(unranked(ranked(a.0, a.1)), a);
            for &b in &pairs {
                let want = a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
                assert_eq!(ranked(a.0, a.1).cmp(&ranked(b.0, b.1)), want, "{a:?} {b:?}");
            }
        }
        // A negative zero counts as zero.
        assert_eq!(ranked(-0.0, 3), ranked(0.0, 3));
    }

    #[test]
    fn exact_finds_exact_neighbours() {
        let x = Matrix::new(5, 1, vec![0.0, 10.0, 1.0, 3.0, 10.5]);
        let nb = knn_exact(&x, 2);
        assert_eq!(nb.of(0), &[2, 3]);
        assert_eq!(nb.of(1), &[4, 3]);
        assert_eq!(nb.dist2_of(0), &[1.0, 9.0]);
    }

    #[test]
    fn a_watched_search_reports_progress_and_stops_when_cancelled() {
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicBool, Ordering};
        let mut rng = crate::linalg::XorShift::new(3);
        for n in [2_000, EXACT_LIMIT + 2_000] {
            let x = Matrix::new(n, 4, (0..n * 4).map(|_| rng.normal()).collect());
            let seen = Mutex::new(Vec::new());
            let progress = |f: f32| seen.lock().unwrap().push(f);
            let never = || false;
            let nb = knn_watched(
                &x,
                5,
                &Watch {
                    progress: &progress,
                    cancelled: &never,
                },
            )
            .unwrap();
            let plain = knn(&x, 5);
            assert!(
                (0..n).all(|i| nb.of(i) == plain.of(i)),
                "watching does not change the result"
            );
            let seen = seen.into_inner().unwrap();
            assert!(
                seen.len() > 3 && (seen.iter().copied().fold(0.0, f32::max) - 1.0).abs() < 1e-6
            );
            // Cancelled after the first unit of work: stops, returns None.
            let stop = AtomicBool::new(false);
            let progress = |_: f32| stop.store(true, Ordering::Relaxed);
            let cancelled = || stop.load(Ordering::Relaxed);
            assert!(
                knn_watched(
                    &x,
                    5,
                    &Watch {
                        progress: &progress,
                        cancelled: &cancelled
                    }
                )
                .is_none()
            );
        }
    }
}
