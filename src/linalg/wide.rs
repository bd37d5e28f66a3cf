//! PCA of wide data — thousands of dimensions — without the D×D covariance
//! matrix: 10,000-d embeddings would need 800 MB for it (and more for its
//! products) whatever the number of samples. Instead the covariance is only
//! ever applied to a thin block of vectors, a few rows of the data at a
//! time (subspace iteration with a Rayleigh–Ritz step), so memory grows
//! with samples × dimensions and dimensions × components, never D².

use ndarray::{Array2, s};
use rayon::prelude::*;

use super::{Matrix, XorShift, orthonormalize, symmetric_eigen};

/// Dimensions from which the covariance matrix is no longer formed.
pub const WIDE: usize = 1024;

/// Rounds of subspace iteration (each multiplies by the covariance once).
const ROUNDS: usize = 12;

/// Rows centred and multiplied at a time (bounds the scratch memory).
const CHUNK: usize = 256;

/// The top `k` eigenpairs of the covariance of `x` about `mean`, largest
/// first, as [`super::top_eigen`] returns them.
pub fn top_components(x: &Matrix, mean: &[f64], k: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let d = x.cols;
    let p = (k + 8).min(d);
    let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15);
    let mut q = Array2::<f64>::from_shape_fn((d, p), |_| rng.next_f64() - 0.5);
    orthonormalize(&mut q);
    for _ in 0..ROUNDS {
        q = apply_covariance(x, mean, &q);
        orthonormalize(&mut q);
    }
    let y = apply_covariance(x, mean, &q);
    let small = q.t().dot(&y);
    let (vals, vecs) = symmetric_eigen(small.as_slice().expect("contiguous"), p);
    let comps = vecs
        .iter()
        .take(k)
        .map(|v| {
            (0..d)
                .map(|r| (0..p).map(|c| q[[r, c]] * v[c]).sum())
                .collect()
        })
        .collect();
    (vals[..k].to_vec(), comps)
}

/// Covariance × `q` (D×p), as Xcᵀ (Xc q) / (n − 1) over chunks of rows.
fn apply_covariance(x: &Matrix, mean: &[f64], q: &Array2<f64>) -> Array2<f64> {
    let (d, p) = (x.cols, q.ncols());
    let chunks = x.rows.div_ceil(CHUNK);
    let mut y = (0..chunks)
        .into_par_iter()
        .fold(
            || Array2::<f64>::zeros((d, p)),
            |mut acc, b| {
                let (lo, hi) = (b * CHUNK, ((b + 1) * CHUNK).min(x.rows));
                let mut c = Array2::<f64>::zeros((hi - lo, d));
                for (r, i) in (lo..hi).enumerate() {
                    let mut row = c.slice_mut(s![r, ..]);
                    for ((v, &xv), m) in row.iter_mut().zip(x.row(i)).zip(mean) {
                        *v = f64::from(xv) - m;
                    }
                }
                let z = c.dot(q);
                acc += &c.t().dot(&z);
                acc
            },
        )
        .reduce(|| Array2::<f64>::zeros((d, p)), |a, b| a + b);
    let denom = x.rows.saturating_sub(1).max(1) as f64;
    y.mapv_inplace(|v| v / denom);
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::{column_means, covariance, top_eigen};

    #[test]
    fn agrees_with_the_covariance_route() {
        let (n, d) = (300, 40);
        let mut rng = XorShift::new(7);
        // Three strong directions plus noise.
        let data: Vec<f32> = (0..n)
            .flat_map(|i| {
                let a = (i as f32 * 0.37).sin() * 5.0;
                let b = (i as f32 * 0.11).cos() * 3.0;
                let c = ((i * 7) % 13) as f32 * 0.3;
                let noise: Vec<f32> = (0..d).map(|_| rng.normal() * 0.05).collect();
                (0..d).map(move |j| {
                    a * (j % 3) as f32
                        + b * (j % 5 == 0) as u8 as f32
                        + c * (j as f32 / d as f32)
                        + noise[j]
                })
            })
            .collect();
        let x = Matrix::new(n, d, data);
        let mean = column_means(&x);
        let (v1, c1) = top_eigen(&covariance(&x, &mean), d, 3);
        let (v2, c2) = top_components(&x, &mean, 3);
        for t in 0..3 {
            assert!(
                (v1[t] - v2[t]).abs() <= 1e-6 * v1[0].max(1.0),
                "{v1:?} {v2:?}"
            );
            let dot: f64 = c1[t].iter().zip(&c2[t]).map(|(a, b)| a * b).sum();
            assert!(dot.abs() > 0.999, "component {t}: |cos| = {}", dot.abs());
        }
    }
}
