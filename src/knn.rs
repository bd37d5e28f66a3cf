//! k-nearest neighbours of every sample, shared by the label, outlier,
//! duplicate and clustering detectors (computed once per scan).
//!
//! Up to [`EXACT_LIMIT`] samples the search is exact (blocked matrix products).
//! Beyond, an inverted-file index keeps a full scan fast: samples are bucketed
//! by k-means, and each query scans the buckets nearest to it until it has
//! seen at least [`CANDIDATE_SHARE`] of the data (and 32·k samples), with exact
//! distances within them. Neighbour votes need the neighbourhood, not the
//! exact 40th neighbour; the test `ivf_agrees_with_exact_search` measures how
//! close it is.

use ndarray::s;
use rayon::prelude::*;

use crate::linalg::Matrix;

/// Largest dataset searched exactly.
pub const EXACT_LIMIT: usize = 10_000;
/// Share of the dataset each approximate query scans at least.
pub const CANDIDATE_SHARE: f64 = 1.0 / 16.0;

/// k neighbours of every row (excluding itself), nearest first; ties break by
/// index, so results are deterministic.
pub struct Neighbors {
    /// Neighbours per row.
    pub k: usize,
    /// N×k neighbour indices.
    pub idx: Vec<u32>,
    /// N×k squared Euclidean distances.
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

/// Keeps the k smallest (distance, index) pairs seen.
struct TopK {
    k: usize,
    items: Vec<(f32, u32)>,
    worst: f32,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            items: Vec::with_capacity(k + 1),
            worst: f32::INFINITY,
        }
    }
    fn clear(&mut self) {
        self.items.clear();
        self.worst = f32::INFINITY;
    }
    #[inline]
    fn push(&mut self, d: f32, j: u32) {
        if self.items.len() < self.k {
            self.items.push((d, j));
            if self.items.len() == self.k {
                self.items.sort_by(cmp);
                self.worst = self.items[self.k - 1].0;
            }
        } else if d < self.worst {
            let pos = self.items.partition_point(|e| cmp(e, &(d, j)).is_le());
            self.items.insert(pos, (d, j));
            self.items.pop();
            self.worst = self.items[self.k - 1].0;
        }
    }
    fn drain_into(&mut self, idx: &mut Vec<u32>, dist: &mut Vec<f32>) {
        if self.items.len() < self.k {
            self.items.sort_by(cmp);
        }
        for &(d, j) in &self.items {
            idx.push(j);
            dist.push(d);
        }
    }
}

fn cmp(a: &(f32, u32), b: &(f32, u32)) -> std::cmp::Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
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
    let nlist = ((n as f64).sqrt() as usize).clamp(16, 1024);
    let centroids = train_centroids(x, nlist);
    let cnorm = norms(&centroids);
    let norms = norms(x);
    let all = x.view();
    let cview = centroids.view();
    let assignment: Vec<u32> = (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .flat_map_iter(|b| {
            let (lo, hi) = (b * BLOCK, ((b + 1) * BLOCK).min(n));
            let dots = all.slice(s![lo..hi, ..]).dot(&cview.t());
            dots.outer_iter()
                .map(|row| {
                    let d: Vec<f32> = row
                        .iter()
                        .zip(&cnorm)
                        .map(|(dt, cn)| cn - 2.0 * dt)
                        .collect();
                    argmin(&d) as u32
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut cells: Vec<Vec<u32>> = vec![Vec::new(); nlist];
    for (i, &c) in assignment.iter().enumerate() {
        cells[c as usize].push(i as u32);
    }
    let want = ((n as f64 * CANDIDATE_SHARE) as usize).max(32 * k).min(n);
    let between = cview.dot(&cview.t());
    let done = std::sync::atomic::AtomicUsize::new(0);
    let per_cell: Vec<Vec<(u32, Vec<(f32, u32)>)>> = (0..nlist)
        .into_par_iter()
        .map(|c| {
            let queries = &cells[c];
            if queries.is_empty() || (watch.cancelled)() {
                watch.tick(&done, nlist);
                return Vec::new();
            }
            let mut order: Vec<usize> = (0..nlist).collect();
            let dist = |o: usize| cnorm[o] - 2.0 * between[[c, o]];
            order.sort_by(|&a, &b| dist(a).total_cmp(&dist(b)).then(a.cmp(&b)));
            let mut cand: Vec<u32> = Vec::with_capacity(want + 2 * queries.len());
            for o in order {
                cand.extend_from_slice(&cells[o]);
                if cand.len() >= want {
                    break;
                }
            }
            let q = x.select_rows(&queries.iter().map(|&i| i as usize).collect::<Vec<_>>());
            let cm = x.select_rows(&cand.iter().map(|&i| i as usize).collect::<Vec<_>>());
            let dots = q.view().dot(&cm.view().t());
            let mut top = TopK::new(k);
            let found = queries
                .iter()
                .zip(dots.outer_iter())
                .map(|(&i, row)| {
                    top.clear();
                    let ni = norms[i as usize];
                    for (&j, &dt) in cand.iter().zip(row.iter()) {
                        if j != i {
                            top.push((ni + norms[j as usize] - 2.0 * dt).max(0.0), j);
                        }
                    }
                    if top.items.len() < top.k {
                        top.items.sort_by(cmp);
                    }
                    (i, std::mem::take(&mut top.items))
                })
                .collect();
            watch.tick(&done, nlist);
            found
        })
        .collect();
    let mut idx = vec![0u32; n * k];
    let mut dist2 = vec![f32::INFINITY; n * k];
    for (i, items) in per_cell.into_iter().flatten() {
        let i = i as usize;
        for (slot, (d, j)) in items.into_iter().enumerate().take(k) {
            idx[i * k + slot] = j;
            dist2[i * k + slot] = d;
        }
    }
    Neighbors { k, idx, dist2 }
}

fn argmin(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x < v[best] {
            best = i;
        }
    }
    best
}

/// Lloyd's k-means on an evenly spaced sample (deterministic start: evenly
/// spaced sample points), 10 rounds; empty cells keep their centre.
fn train_centroids(x: &Matrix, nlist: usize) -> Matrix {
    let n = x.rows;
    let m = (64 * nlist).min(n);
    let sample: Vec<usize> = (0..m).map(|i| i * n / m).collect();
    let xs = x.select_rows(&sample);
    let mut cent = xs.select_rows(&(0..nlist).map(|c| c * m / nlist).collect::<Vec<_>>());
    let d = x.cols;
    for _ in 0..10 {
        let cn = norms(&cent);
        let dots = xs.view().dot(&cent.view().t());
        let mut sums = vec![0f64; nlist * d];
        let mut counts = vec![0usize; nlist];
        for (r, row) in dots.outer_iter().enumerate() {
            let best = (0..nlist)
                .map(|c| (cn[c] - 2.0 * row[c], c))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map_or(0, |v| v.1);
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

#[cfg(test)]
mod tests {
    use super::*;

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
