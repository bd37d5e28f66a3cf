//! The neighbourhood's vote on every sample's label: label spreading (Zhou
//! et al. 2004) over a neighbour graph — the model's (the label check, the
//! suggested labels) or the input view's (whether a sample looks like its
//! label). Shared by the scan and its detectors, so it lives apart from any
//! one of them.

use rayon::prelude::*;

use super::Features;
use crate::knn::Neighbors;

/// Rounds of label spreading.
const ITERATIONS: usize = 4;
/// Weight of the neighbours' smoothed estimate against their raw labels.
const ALPHA: f64 = 0.8;

/// The neighbourhood's vote on every sample's label (label spreading over
/// the neighbour graph): shared by the scan, since it is also where every
/// sample's suggested label comes from.
pub struct Votes {
    /// Most probable class per sample (may equal the given label).
    pub label: Vec<u32>,
    /// Its probability.
    pub confidence: Vec<f32>,
    /// Probability of the given label.
    pub p_given: Vec<f64>,
}

/// Spreads the neighbours' labels (`ITERATIONS` rounds) and reads off
/// each sample's most probable class and the probability of its label.
///
/// With few classes (no more than twice the neighbours) each sample's
/// distribution is a dense row of all classes — the fastest form, and no
/// larger than its neighbours' labels. With more, rows are sparse (only the
/// classes a neighbourhood actually carries), so memory and time grow with
/// samples × neighbours, never samples × classes: a dataset with a class
/// per sample costs about what one with ten classes does.
pub fn vote(f: &Features, nb: &Neighbors) -> Votes {
    read_votes(f, &spread_rows(f, nb, None))
}

/// Each sample's most probable class and the probability of its label,
/// read off spread rows ([`spread_rows`]).
pub fn read_votes(f: &Features, rows: &VoteRows) -> Votes {
    read_off(f, |i| rows.entries(i))
}

/// Each sample's most probable class (ties to the lower class), its
/// probability, and the probability of the given label, from its row.
fn read_off(f: &Features, row: impl Fn(usize) -> Vec<(u32, f64)> + Sync) -> Votes {
    let per: Vec<(u32, f32, f64)> = (0..f.labels.len())
        .into_par_iter()
        .map(|i| {
            let r = row(i);
            let (best, bp) = r
                .iter()
                .copied()
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
                .unwrap_or((0, 0.0));
            let given = r.iter().find(|e| e.0 == f.labels[i]).map_or(0.0, |e| e.1);
            (best, bp as f32, given)
        })
        .collect();
    Votes {
        label: per.iter().map(|p| p.0).collect(),
        confidence: per.iter().map(|p| p.1).collect(),
        p_given: per.iter().map(|p| p.2).collect(),
    }
}

/// Label spreading over dense N × classes rows, with the neighbours in
/// `voting` (all when None).
fn spread_dense_among(f: &Features, nb: &Neighbors, voting: Option<&[bool]>) -> Vec<f64> {
    let (n, c) = (f.labels.len(), f.n_classes);
    let votes = |j: u32| voting.is_none_or(|v| v[j as usize]);
    let by = divisors(n, nb, voting);
    let mut raw = vec![0.0; n * c];
    for i in 0..n {
        for &j in nb.of(i).iter().filter(|&&j| votes(j)) {
            raw[i * c + f.labels[j as usize] as usize] += 1.0 / by[i];
        }
    }
    let mut p = raw.clone();
    for _ in 0..ITERATIONS {
        let prev = p.clone();
        p.par_chunks_mut(c.max(1)).enumerate().for_each(|(i, row)| {
            row.iter_mut().for_each(|v| *v = 0.0);
            for &j in nb.of(i).iter().filter(|&&j| votes(j)) {
                let j = j as usize;
                for (v, pv) in row.iter_mut().zip(&prev[j * c..(j + 1) * c]) {
                    *v += ALPHA * pv / by[i];
                }
            }
            for (v, rv) in row.iter_mut().zip(&raw[i * c..(i + 1) * c]) {
                *v += (1.0 - ALPHA) * rv;
            }
        });
    }
    p
}

/// What each sample's neighbours' votes are divided by: k when all vote
/// (as the method states it), else the number of its neighbours that do.
fn divisors(n: usize, nb: &Neighbors, voting: Option<&[bool]>) -> Vec<f64> {
    match voting {
        None => vec![nb.k.max(1) as f64; n],
        Some(v) => (0..n)
            .map(|i| nb.of(i).iter().filter(|&&j| v[j as usize]).count().max(1) as f64)
            .collect(),
    }
}

/// Every sample's spread class distribution, dense rows with few classes
/// (no more than twice the neighbours), sparse with more (see [`vote`]).
/// With `voting`, only those samples' labels count: the others neither
/// vote nor pass votes on, and each sample's neighbours are weighed among
/// those that vote — a flood of near-copies would otherwise outvote the
/// correctly labelled original it copies in every view at once
/// ([`super::two_views`]).
pub fn spread_rows(f: &Features, nb: &Neighbors, voting: Option<&[bool]>) -> VoteRows {
    if f.n_classes <= 2 * nb.k.max(1) {
        VoteRows::Dense {
            classes: f.n_classes,
            p: spread_dense_among(f, nb, voting),
        }
    } else {
        VoteRows::Sparse(spread_among(f, nb, voting))
    }
}

/// Every sample's class distribution after label spreading.
#[derive(Clone)]
pub enum VoteRows {
    /// N × classes shares.
    Dense {
        /// Number of classes (the row length).
        classes: usize,
        /// Row-major shares.
        p: Vec<f64>,
    },
    /// Only the classes a neighbourhood carries, per sample.
    Sparse(Vec<SparseRow>),
}

impl VoteRows {
    /// Sample `i`'s share for class `c` (0 when its neighbourhood carries
    /// none of it).
    pub fn share(&self, i: usize, c: u32) -> f64 {
        match self {
            VoteRows::Dense { classes, p } => p[i * classes + c as usize],
            VoteRows::Sparse(rows) => {
                let row = &rows[i];
                row.binary_search_by_key(&c, |e| e.0)
                    .map_or(0.0, |k| f64::from(row[k].1))
            }
        }
    }

    /// Sample `i`'s classes with a share above zero, and their shares.
    pub fn entries(&self, i: usize) -> Vec<(u32, f64)> {
        match self {
            VoteRows::Dense { classes, p } => p[i * classes..(i + 1) * classes]
                .iter()
                .enumerate()
                .filter(|e| *e.1 > 0.0)
                .map(|(c, &v)| (c as u32, v))
                .collect(),
            VoteRows::Sparse(rows) => rows[i].iter().map(|&(c, v)| (c, f64::from(v))).collect(),
        }
    }
}

/// Label spreading over sparse rows with the neighbours in `voting` (all
/// when None).
fn spread_among(f: &Features, nb: &Neighbors, voting: Option<&[bool]>) -> Vec<SparseRow> {
    let n = f.labels.len();
    let votes = |j: u32| voting.is_none_or(|v| v[j as usize]);
    let by = divisors(n, nb, voting);
    let raw: Vec<SparseRow> = spread_round(f.n_classes, n, |i, add| {
        for &j in nb.of(i).iter().filter(|&&j| votes(j)) {
            add(f.labels[j as usize], 1.0 / by[i]);
        }
    });
    let mut p = raw.clone();
    for _ in 0..ITERATIONS {
        p = spread_round(f.n_classes, n, |i, add| {
            for &j in nb.of(i).iter().filter(|&&j| votes(j)) {
                for &(c, v) in &p[j as usize] {
                    add(c, ALPHA * f64::from(v) / by[i]);
                }
            }
            for &(c, v) in &raw[i] {
                add(c, (1.0 - ALPHA) * f64::from(v));
            }
        });
    }
    p
}

/// One sample's class distribution: (class, probability), sorted by class.
type SparseRow = Vec<(u32, f32)>;

/// One round of building every sample's row: `fill(i, add)` calls
/// `add(class, mass)` for each contribution to sample `i`. Contributions
/// are summed in f64 in a per-thread scratch row of all classes (touched
/// entries only are read back and reset), so no intermediate list grows
/// with neighbours × their rows.
fn spread_round(
    n_classes: usize,
    n: usize,
    fill: impl Fn(usize, &mut dyn FnMut(u32, f64)) + Sync,
) -> Vec<SparseRow> {
    (0..n)
        .into_par_iter()
        .map_init(
            || (vec![0f64; n_classes], Vec::<u32>::new()),
            |(acc, touched), i| {
                fill(i, &mut |c, v| {
                    if v <= 0.0 {
                        return;
                    }
                    let slot = &mut acc[c as usize];
                    if *slot == 0.0 {
                        touched.push(c);
                    }
                    *slot += v;
                });
                touched.sort_unstable();
                let row = touched
                    .iter()
                    .map(|&c| (c, std::mem::take(&mut acc[c as usize]) as f32))
                    .collect();
                touched.clear();
                row
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knn::knn;
    use crate::linalg::{Matrix, XorShift};

    /// Label spreading written densely (N × classes), as the method is
    /// usually stated: the sparse version must agree with it.
    fn dense_p(f: &Features, nb: &Neighbors) -> Vec<Vec<f64>> {
        let (n, c, k) = (f.labels.len(), f.n_classes, nb.k as f64);
        let mut raw = vec![vec![0.0; c]; n];
        for (i, row) in raw.iter_mut().enumerate() {
            for &j in nb.of(i) {
                row[f.labels[j as usize] as usize] += 1.0 / k;
            }
        }
        let mut p = raw.clone();
        for _ in 0..ITERATIONS {
            let prev = p.clone();
            for i in 0..n {
                for cl in 0..c {
                    let spread: f64 = nb.of(i).iter().map(|&j| prev[j as usize][cl]).sum();
                    p[i][cl] = ALPHA * spread / k + (1.0 - ALPHA) * raw[i][cl];
                }
            }
        }
        p
    }

    fn features(n: usize, classes: usize, seed: u64) -> Features {
        let mut rng = XorShift::new(seed);
        let labels: Vec<u32> = (0..n).map(|i| (i % classes) as u32).collect();
        let data = (0..n)
            .flat_map(|i| {
                let l = labels[i] as f32;
                let a = rng.normal();
                let b = rng.normal();
                [l * 0.8 + a, (l * 1.3).sin() * 2.0 + b]
            })
            .collect();
        Features {
            matrix: Matrix::new(n, 2, data).into(),
            labels,
            n_classes: classes,
            class_names: (0..classes).map(|c| format!("c{c}")).collect(),
            ids: (0..n).map(|i| i.to_string()).collect(),
        }
    }

    #[test]
    fn sparse_spreading_agrees_with_the_dense_method() {
        for (n, classes) in [(300, 3), (400, 40), (200, 200)] {
            let f = features(n, classes, n as u64);
            let nb = knn(&f.matrix, 8);
            let dense = dense_p(&f, &nb);
            let sparse = spread_among(&f, &nb, None);
            let v = read_off(&f, |i| {
                sparse[i].iter().map(|&(k, v)| (k, f64::from(v))).collect()
            });
            let chosen = vote(&f, &nb);
            assert_eq!(chosen.label, v.label);
            for i in 0..n {
                let want = dense[i][f.labels[i] as usize];
                assert!(
                    (v.p_given[i] - want).abs() < 1e-5,
                    "{i}: {} vs {want}",
                    v.p_given[i]
                );
                let best = dense[i].iter().copied().fold(0.0, f64::max);
                assert!((f64::from(v.confidence[i]) - best).abs() < 1e-5);
                assert!((dense[i][v.label[i] as usize] - best).abs() < 1e-5);
            }
        }
    }
}
