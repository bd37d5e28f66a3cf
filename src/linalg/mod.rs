//! Small dense linear algebra the detectors share: a row-major matrix and
//! PCA (through the covariance matrix up to [`wide::WIDE`] dimensions,
//! without it beyond). Kept in one place so every detector sees the same
//! projections (and so they are computed once); neighbours are in `knn`.

pub mod wide;

use ndarray::{Array2, ArrayView2, s};
use rayon::prelude::*;

/// Row-major N×D f32 matrix: the in-memory form of embeddings and features.
/// Stored scan results carry it packed ([`crate::packed`]); reading one
/// back checks that the shape matches the values.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "StoredMatrix")]
pub struct Matrix {
    /// Number of rows (samples).
    pub rows: usize,
    /// Number of columns (dimensions).
    pub cols: usize,
    /// `rows * cols` values, row after row.
    #[serde(with = "crate::packed::f32s")]
    pub data: Vec<f32>,
}

/// A [`Matrix`] as read, before its shape is checked.
#[derive(serde::Deserialize)]
struct StoredMatrix {
    rows: usize,
    cols: usize,
    #[serde(with = "crate::packed::f32s")]
    data: Vec<f32>,
}

impl TryFrom<StoredMatrix> for Matrix {
    type Error = String;
    fn try_from(m: StoredMatrix) -> Result<Self, String> {
        if m.rows.checked_mul(m.cols) != Some(m.data.len()) {
            return Err(format!(
                "a {}x{} matrix with {} values",
                m.rows,
                m.cols,
                m.data.len()
            ));
        }
        Ok(Matrix {
            rows: m.rows,
            cols: m.cols,
            data: m.data,
        })
    }
}

impl Matrix {
    /// Wraps `data`; panics only on a programming error (length mismatch).
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Self {
        assert_eq!(rows * cols, data.len(), "matrix data length");
        Matrix { rows, cols, data }
    }

    /// Row `i` as a slice.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Gives the listed rows the mean of the others: a sample that could
    /// not be described (an unreadable image) then neither crashes a scan
    /// nor sits far from everything. No other rows: left as they are.
    pub fn fill_rows_with_mean(&mut self, rows: &[usize]) {
        let skip: std::collections::HashSet<usize> = rows.iter().copied().collect();
        let kept = self.rows - skip.len().min(self.rows);
        if rows.is_empty() || kept == 0 || self.cols == 0 {
            return;
        }
        let mut mean = vec![0f64; self.cols];
        for r in (0..self.rows).filter(|r| !skip.contains(r)) {
            for (m, v) in mean.iter_mut().zip(self.row(r)) {
                *m += f64::from(*v) / kept as f64;
            }
        }
        let cols = self.cols;
        for &r in &skip {
            for (v, m) in self.data[r * cols..(r + 1) * cols].iter_mut().zip(&mean) {
                *v = *m as f32;
            }
        }
    }

    /// A new matrix holding the given rows, in that order.
    pub fn select_rows(&self, idx: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(idx.len() * self.cols);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Matrix::new(idx.len(), self.cols, data)
    }

    /// Zero-copy ndarray view, for matrix products.
    pub fn view(&self) -> ArrayView2<'_, f32> {
        ArrayView2::from_shape((self.rows, self.cols), &self.data).expect("shape matches data")
    }
}

/// A tiny seeded xorshift generator: fixed start vectors here, and
/// reproducible synthetic data in tests and benchmarks, without a `rand`
/// dependency in the core.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [0, 1), as f32.
    pub fn uniform(&mut self) -> f32 {
        self.next_f64() as f32
    }
    /// Roughly standard normal (sum of 12 uniforms).
    pub fn normal(&mut self) -> f32 {
        (0..12).map(|_| self.uniform()).sum::<f32>() - 6.0
    }
}

/// A fitted principal-component projection.
#[derive(Debug, Clone)]
pub struct Pca {
    /// Column means subtracted before projecting.
    pub mean: Vec<f64>,
    /// `k` unit-length components, each of length D, largest variance first.
    pub components: Vec<Vec<f64>>,
    /// Variance along each component.
    pub variances: Vec<f64>,
}

impl Pca {
    /// Fits the top `k` components of `x` (k is clipped to D); from
    /// [`wide::WIDE`] dimensions on without forming the covariance matrix.
    pub fn fit(x: &Matrix, k: usize) -> Pca {
        let d = x.cols;
        let k = k.min(d).max(1);
        let mean = column_means(x);
        let (vals, vecs) = if d >= wide::WIDE {
            wide::top_components(x, &mean, k)
        } else {
            top_eigen(&covariance(x, &mean), d, k)
        };
        Pca {
            mean,
            components: vecs,
            variances: vals,
        }
    }

    /// The components transposed (D × k, row-major), for [`Pca::project_row`].
    fn transposed(&self) -> Vec<f64> {
        let k = self.components.len();
        let mut wt = vec![0.0; self.mean.len() * k];
        for (c, w) in self.components.iter().enumerate() {
            for (j, &v) in w.iter().enumerate() {
                wt[j * k + c] = v;
            }
        }
        wt
    }

    /// `row`'s coordinate on each component, into `out` (k values), given
    /// the components transposed (`wt`, [`Pca::transposed`]). One pass
    /// over the row updates every coordinate, so the k sums run side by
    /// side (vectorised across components) while each adds its terms in
    /// the row's order from −0.0, as `Iterator::sum` does: the same
    /// coordinates, bit for bit, as one dot product per component.
    fn project_row(&self, row: &[f32], wt: &[f64], out: &mut [f64]) {
        let k = out.len();
        out.fill(-0.0);
        if k == 0 {
            return;
        }
        for ((&v, m), w) in row.iter().zip(&self.mean).zip(wt.chunks_exact(k)) {
            let centred = v as f64 - m;
            for (o, &w) in out.iter_mut().zip(w) {
                *o += centred * w;
            }
        }
    }

    /// Projects every row of `x` onto the components (N×k, f64).
    pub fn transform(&self, x: &Matrix) -> Vec<Vec<f64>> {
        let wt = self.transposed();
        let k = self.components.len();
        (0..x.rows)
            .into_par_iter()
            .map(|i| {
                let mut z = vec![0.0; k];
                self.project_row(x.row(i), &wt, &mut z);
                z
            })
            .collect()
    }

    /// Projects every row onto the first two components as plot points
    /// (no per-row allocation: a million rows cost 8 MB, not 1M vectors).
    pub fn transform_2d(&self, x: &Matrix) -> Vec<[f32; 2]> {
        let axis = |c: usize, r: &[f32]| -> f32 {
            self.components.get(c).map_or(0.0, |w| {
                r.iter()
                    .zip(&self.mean)
                    .zip(w)
                    .map(|((&v, m), w)| (v as f64 - m) * w)
                    .sum::<f64>() as f32
            })
        };
        (0..x.rows)
            .into_par_iter()
            .map(|i| {
                let r = x.row(i);
                [axis(0, r), axis(1, r)]
            })
            .collect()
    }

    /// Projects every row into a new f32 matrix (for neighbour search).
    pub fn transform_matrix(&self, x: &Matrix) -> Matrix {
        let k = self.components.len();
        let mut data = vec![0f32; x.rows * k];
        let wt = self.transposed();
        // Written in place: no vector per row.
        data.par_chunks_mut(k.max(1)).enumerate().for_each_init(
            || vec![0.0; k],
            |z: &mut Vec<f64>, (i, out)| {
                self.project_row(x.row(i), &wt, z);
                for (o, &v) in out.iter_mut().zip(z.iter()) {
                    *o = v as f32;
                }
            },
        );
        Matrix::new(x.rows, k, data)
    }
}

/// Squared Euclidean distance between two rows of equal length (summed
/// in order, so the same pair always gives the same value).
pub fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Column means in f64.
pub fn column_means(x: &Matrix) -> Vec<f64> {
    mean_of_rows(x, 0..x.rows)
}

/// Column means in f64 over the rows `rows` (a group's centre).
pub fn mean_of_rows(x: &Matrix, rows: impl ExactSizeIterator<Item = usize>) -> Vec<f64> {
    let n = rows.len().max(1) as f64;
    let mut m = vec![0.0f64; x.cols];
    for i in rows {
        for (a, &v) in m.iter_mut().zip(x.row(i)) {
            *a += v as f64;
        }
    }
    m.iter_mut().for_each(|v| *v /= n);
    m
}

/// Sample covariance (D×D, row-major f64), via a blocked matrix product.
pub fn covariance(x: &Matrix, mean: &[f64]) -> Vec<f64> {
    let d = x.cols;
    let chunk = 4096;
    let partial: Vec<Array2<f64>> = (0..x.rows.div_ceil(chunk))
        .into_par_iter()
        .map(|b| {
            let lo = b * chunk;
            let hi = ((b + 1) * chunk).min(x.rows);
            let mut c = Array2::<f64>::zeros((hi - lo, d));
            for (r, i) in (lo..hi).enumerate() {
                for (j, &v) in x.row(i).iter().enumerate() {
                    c[[r, j]] = v as f64 - mean[j];
                }
            }
            c.t().dot(&c)
        })
        .collect();
    let mut acc = Array2::<f64>::zeros((d, d));
    for p in partial {
        acc += &p;
    }
    let denom = (x.rows.saturating_sub(1)).max(1) as f64;
    acc.mapv_inplace(|v| v / denom);
    acc.into_raw_vec_and_offset().0
}

/// Top `k` eigenpairs of a symmetric D×D matrix (row-major), largest first.
/// Small matrices are decomposed whole; large ones by subspace iteration with a
/// Rayleigh–Ritz step, which is exact enough for PCA and far cheaper.
pub fn top_eigen(a: &[f64], d: usize, k: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    if d <= 128 {
        let (vals, vecs) = symmetric_eigen(a, d);
        return (vals[..k].to_vec(), vecs[..k].to_vec());
    }
    let p = (k + 8).min(d);
    let am = Array2::from_shape_vec((d, d), a.to_vec()).expect("square");
    // Deterministic start: a fixed pseudo-random basis.
    let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15);
    let mut q = Array2::<f64>::from_shape_fn((d, p), |_| rng.next_f64() - 0.5);
    orthonormalize(&mut q);
    for _ in 0..40 {
        q = am.dot(&q);
        orthonormalize(&mut q);
    }
    let small = q.t().dot(&am).dot(&q);
    let (vals, vecs) = symmetric_eigen(small.as_slice().expect("contiguous"), p);
    let mut out_vecs = Vec::with_capacity(k);
    for v in vecs.iter().take(k) {
        let col: Vec<f64> = (0..d)
            .map(|r| (0..p).map(|c| q[[r, c]] * v[c]).sum())
            .collect();
        out_vecs.push(col);
    }
    (vals[..k].to_vec(), out_vecs)
}

pub(crate) fn orthonormalize(q: &mut Array2<f64>) {
    let p = q.ncols();
    for j in 0..p {
        for i in 0..j {
            let dot: f64 = q.column(i).dot(&q.column(j));
            let ci = q.column(i).to_owned();
            let mut cj = q.slice_mut(s![.., j]);
            cj.scaled_add(-dot, &ci);
        }
        let norm = q.column(j).dot(&q.column(j)).sqrt().max(1e-300);
        q.column_mut(j).mapv_inplace(|v| v / norm);
    }
}

/// All eigenpairs of a symmetric D×D matrix (row-major), sorted by
/// decreasing eigenvalue; eigenvectors are returned as rows, each with its
/// largest-magnitude entry positive (so the same matrix always gives the
/// same vectors). Householder tridiagonalisation and implicit QR
/// (`linfa-linalg`): O(D³) with a small constant — the cyclic Jacobi
/// rotations it replaced cost 6% of a whole scan's instructions on the
/// class-sized PCAs alone. Callers pass finite matrices (embeddings are
/// checked on reading); one that is not gets zero eigenvalues and the
/// identity basis rather than a panic.
pub fn symmetric_eigen(a: &[f64], d: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    use linfa_linalg::eigh::EighInto;
    let identity = || {
        let vecs = (0..d)
            .map(|i| (0..d).map(|j| f64::from(u8::from(i == j))).collect())
            .collect();
        (vec![0.0; d], vecs)
    };
    if d == 0 || a.len() != d * d || !a.iter().all(|v| v.is_finite()) {
        return identity();
    }
    let m = Array2::from_shape_vec((d, d), a.to_vec()).expect("d × d values");
    let Ok((vals, vecs)) = m.eigh_into() else {
        return identity();
    };
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&x, &y| vals[y].total_cmp(&vals[x]));
    let out_vals = order.iter().map(|&i| vals[i].max(0.0)).collect();
    let out_vecs = order
        .iter()
        .map(|&i| {
            let mut col: Vec<f64> = vecs.column(i).to_vec();
            let big = col
                .iter()
                .copied()
                .fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
            if big < 0.0 {
                col.iter_mut().for_each(|x| *x = -*x);
            }
            col
        })
        .collect();
    (out_vals, out_vecs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The side-by-side projection gives every coordinate exactly (bit for
    /// bit) the dot product of the centred row with the component, summed
    /// in order: reports stay the same whichever way it is computed.
    #[test]
    fn projections_equal_one_dot_product_per_component() {
        let mut rng = XorShift::new(0x9CA);
        let (n, d) = (200, 37);
        let x = Matrix::new(n, d, (0..n * d).map(|_| rng.normal()).collect());
        let pca = Pca::fit(&x, 7);
        let dot = |i: usize, w: &[f64]| -> f64 {
            x.row(i)
                .iter()
                .zip(&pca.mean)
                .zip(w)
                .map(|((&v, m), w)| (v as f64 - m) * w)
                .sum()
        };
        let z = pca.transform(&x);
        let m = pca.transform_matrix(&x);
        for (i, zi) in z.iter().enumerate() {
            for (c, w) in pca.components.iter().enumerate() {
                assert_eq!(
                    zi[c].to_bits(),
                    dot(i, w).to_bits(),
                    "row {i}, component {c}"
                );
                assert_eq!(m.row(i)[c].to_bits(), (dot(i, w) as f32).to_bits());
            }
        }
    }

    /// Listed rows take the mean of the others; nothing to average from
    /// leaves the matrix as it was.
    #[test]
    fn rows_filled_with_the_mean_of_the_others() {
        let mut m = Matrix::new(3, 2, vec![1., 2., 0., 0., 3., 6.]);
        m.fill_rows_with_mean(&[1]);
        assert_eq!(m.data, [1., 2., 2., 4., 3., 6.]);
        let mut all = Matrix::new(1, 2, vec![5., 5.]);
        all.fill_rows_with_mean(&[0]);
        assert_eq!(all.data, [5., 5.]);
    }

    #[test]
    fn symmetric_eigen_matches_known_eigenvalues() {
        let a = [2.0, 1.0, 1.0, 2.0];
        let (vals, vecs) = symmetric_eigen(&a, 2);
        assert!((vals[0] - 3.0).abs() < 1e-9 && (vals[1] - 1.0).abs() < 1e-9);
        assert!((vecs[0][0].abs() - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-9);
    }

    #[test]
    fn symmetric_eigen_decomposes_a_covariance() {
        // A covariance of 64-d data (the class PCAs' size): A·v = λ·v for
        // every pair, orthonormal vectors, decreasing values, each
        // vector's largest entry positive.
        let d = 64;
        let mut rng = XorShift::new(7);
        let x = Matrix::new(
            500,
            d,
            (0..500 * d)
                .map(|k| rng.normal() * (1.0 + (k % d) as f32 / 8.0))
                .collect(),
        );
        let a = covariance(&x, &column_means(&x));
        let (vals, vecs) = symmetric_eigen(&a, d);
        assert!(vals.windows(2).all(|w| w[0] >= w[1]));
        for (l, v) in vals.iter().zip(&vecs) {
            for r in 0..d {
                let av: f64 = (0..d).map(|c| a[r * d + c] * v[c]).sum();
                assert!((av - l * v[r]).abs() < 1e-9 * vals[0], "row {r}");
            }
            let big = v
                .iter()
                .copied()
                .fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
            assert!(big > 0.0);
        }
        for i in 0..d {
            for j in 0..d {
                let dot: f64 = vecs[i].iter().zip(&vecs[j]).map(|(p, q)| p * q).sum();
                assert!((dot - f64::from(u8::from(i == j))).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn symmetric_eigen_of_a_non_finite_matrix_is_the_identity_not_a_panic() {
        let (vals, vecs) = symmetric_eigen(&[1.0, f64::NAN, f64::NAN, 1.0], 2);
        assert_eq!(vals, vec![0.0, 0.0]);
        assert_eq!(vecs, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
    }

    #[test]
    fn subspace_iteration_agrees_with_the_full_decomposition() {
        let d = 150;
        let mut a = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                a[i * d + j] = ((i * 7 + j * 3) % 11) as f64 * 0.01
                    + if i == j {
                        100.0 * 0.8f64.powi(i as i32)
                    } else {
                        0.0
                    };
            }
        }
        // symmetrise
        for i in 0..d {
            for j in 0..i {
                let m = (a[i * d + j] + a[j * d + i]) / 2.0;
                a[i * d + j] = m;
                a[j * d + i] = m;
            }
        }
        let (v1, _) = symmetric_eigen(&a, d);
        let (v2, _) = top_eigen(&a, d, 5);
        for i in 0..5 {
            assert!(
                (v1[i] - v2[i]).abs() < 1e-6 * v1[i],
                "{} vs {}",
                v1[i],
                v2[i]
            );
        }
    }
}
