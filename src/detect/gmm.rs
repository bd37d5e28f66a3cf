//! Gaussian mixtures fitted by EM, in the small (≈10-d) PCA spaces the
//! clustering detector works in. Two covariance shapes: `Full` measures how
//! much a class really is two groups (the log-likelihood gain), `Diagonal`
//! assigns members well when a backdoor lives in a few sparse units.

/// Covariance shape of each component.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CovKind {
    /// Full covariance matrices.
    Full,
    /// Per-dimension variances only.
    Diagonal,
}

/// A fitted mixture.
#[derive(Debug, Clone)]
pub struct Gmm {
    /// Mixing weights, summing to 1.
    pub weights: Vec<f64>,
    /// Component means.
    pub means: Vec<Vec<f64>>,
    /// Mean log-likelihood per sample at the fitted parameters.
    pub mean_log_likelihood: f64,
    /// Posterior of each component for each sample (N×K).
    pub resp: Vec<Vec<f64>>,
}

const REG: f64 = 1e-4;

/// Fits a K-component mixture starting from the given responsibilities
/// (e.g. a k-means assignment); deterministic for a given start.
pub fn fit(z: &[Vec<f64>], init_resp: Vec<Vec<f64>>, kind: CovKind, max_iter: usize) -> Gmm {
    let k = init_resp.first().map_or(1, Vec::len);
    let mut resp = init_resp;
    let mut prev = f64::NEG_INFINITY;
    let mut weights = vec![1.0 / k as f64; k];
    let mut means = vec![vec![0.0; z.first().map_or(0, Vec::len)]; k];
    let mut ll = prev;
    for _ in 0..max_iter {
        let model = m_step(z, &resp, kind);
        ll = e_step(z, &model, &mut resp);
        weights = model.weights;
        means = model.means;
        if (ll - prev).abs() < 1e-7 {
            break;
        }
        prev = ll;
    }
    Gmm {
        weights,
        means,
        mean_log_likelihood: ll,
        resp,
    }
}

/// One mixture's parameters (what an M step estimates).
struct Model {
    weights: Vec<f64>,
    means: Vec<Vec<f64>>,
    comps: Vec<Component>,
}

/// Weights, means and covariances from the responsibilities.
fn m_step(z: &[Vec<f64>], resp: &[Vec<f64>], kind: CovKind) -> Model {
    let n = z.len();
    let d = z.first().map_or(0, Vec::len);
    let k = resp.first().map_or(1, Vec::len);
    let mut weights = vec![0.0; k];
    let mut means = Vec::with_capacity(k);
    let mut comps = Vec::with_capacity(k);
    for c in 0..k {
        let nk: f64 = resp.iter().map(|r| r[c]).sum::<f64>() + 1e-10;
        weights[c] = nk / n.max(1) as f64;
        let mut mu = vec![0.0; d];
        for (x, r) in z.iter().zip(resp) {
            for j in 0..d {
                mu[j] += r[c] * x[j];
            }
        }
        mu.iter_mut().for_each(|v| *v /= nk);
        let mut cov = match kind {
            CovKind::Full => weighted_scatter(z, resp, c, &mu),
            CovKind::Diagonal => weighted_variances(z, resp, c, &mu),
        };
        for a in 0..d {
            for b in 0..=a {
                let v = cov[a * d + b] / nk + if a == b { REG } else { 0.0 };
                cov[a * d + b] = v;
                cov[b * d + a] = v;
            }
        }
        means.push(mu);
        comps.push(Component::new(&cov, d, kind));
    }
    Model {
        weights,
        means,
        comps,
    }
}

/// Σ w·(x − μ)(x − μ)ᵀ over the points of `z`, weighted by their
/// responsibility `w` for component `c` (points below 1e-12 left out), as
/// one matrix product (d×n by n×d) rather than a rank-one update per point:
/// the M step was half of a mixture fit's time. Row-major d×d; the lower
/// triangle is what [`m_step`] reads.
fn weighted_scatter(z: &[Vec<f64>], resp: &[Vec<f64>], c: usize, mu: &[f64]) -> Vec<f64> {
    let diff = differences(z, mu);
    let mut weighted = diff.clone();
    for (mut row, r) in weighted.rows_mut().into_iter().zip(resp) {
        let w = if r[c] < 1e-12 { 0.0 } else { r[c] };
        row.mapv_inplace(|v| w * v);
    }
    weighted.t().dot(&diff).into_raw_vec_and_offset().0
}

/// The points of `z` minus `mu`, one row each.
fn differences(z: &[Vec<f64>], mu: &[f64]) -> ndarray::Array2<f64> {
    let mut diff = ndarray::Array2::<f64>::zeros((z.len(), mu.len()));
    for (mut row, x) in diff.rows_mut().into_iter().zip(z) {
        for ((v, &x), &m) in row.iter_mut().zip(x).zip(mu) {
            *v = x - m;
        }
    }
    diff
}

/// The diagonal of [`weighted_scatter`] (zeros elsewhere), for diagonal
/// components.
fn weighted_variances(z: &[Vec<f64>], resp: &[Vec<f64>], c: usize, mu: &[f64]) -> Vec<f64> {
    let d = mu.len();
    let mut cov = vec![0.0; d * d];
    for (x, r) in z.iter().zip(resp) {
        let w = r[c];
        if w < 1e-12 {
            continue;
        }
        for a in 0..d {
            let v = x[a] - mu[a];
            cov[a * d + a] += w * v * v;
        }
    }
    cov
}

/// Posteriors of every point under `model` (written into `resp`); returns
/// the mean log-likelihood per point.
fn e_step(z: &[Vec<f64>], model: &Model, resp: &mut [Vec<f64>]) -> f64 {
    let k = model.weights.len();
    let mut ll = 0.0;
    // Each point costs one exp per component and one ln (the weights' logs
    // are taken once, the posteriors divide the exps already taken):
    // transcendentals were most of an E step in 10 dimensions.
    let log_weights: Vec<f64> = model.weights.iter().map(|w| w.ln()).collect();
    let densities: Vec<Vec<f64>> = (0..k)
        .map(|c| model.comps[c].log_pdfs(z, &model.means[c]))
        .collect();
    let mut logp = vec![0.0; k];
    for (i, r) in resp.iter_mut().enumerate() {
        for (c, v) in logp.iter_mut().enumerate() {
            *v = log_weights[c] + densities[c][i];
        }
        let m = logp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        logp.iter_mut().for_each(|v| *v = (*v - m).exp());
        let s: f64 = logp.iter().sum();
        ll += m + s.ln();
        r.resize(k, 0.0);
        for c in 0..k {
            r[c] = logp[c] / s;
        }
    }
    ll / z.len().max(1) as f64
}

/// Extends memberships fitted on a sample to other points: the mixture
/// whose responsibilities on `fitted` are `resp` (one M step), evaluated
/// at every point of `z` (one E step). A large class is split on a sample
/// and its every member then assigned this way.
pub fn extend(
    fitted: &[Vec<f64>],
    resp: &[Vec<f64>],
    kind: CovKind,
    z: &[Vec<f64>],
) -> Vec<Vec<f64>> {
    let model = m_step(fitted, resp, kind);
    let mut out = vec![Vec::new(); z.len()];
    e_step(z, &model, &mut out);
    out
}

/// A component's covariance, factorised once per EM step.
struct Component {
    /// Log-determinant of the covariance.
    log_det: f64,
    /// d·ln(2π), the density's constant (taken once, not per point).
    log_2pi_d: f64,
    /// Reciprocals of the factor's diagonal: a multiplication per
    /// dimension and point instead of a division.
    inv_diag: Vec<f64>,
    /// (L⁻¹)ᵀ for a full component: the points' differences from the mean
    /// times it, in one matrix product, are their whitened coordinates.
    whiten: Option<ndarray::Array2<f64>>,
    d: usize,
}

impl Component {
    fn new(cov: &[f64], d: usize, kind: CovKind) -> Component {
        let mut l = vec![0.0; d * d];
        match kind {
            CovKind::Diagonal => {
                for a in 0..d {
                    l[a * d + a] = cov[a * d + a].max(1e-12).sqrt();
                }
            }
            CovKind::Full => {
                for i in 0..d {
                    for j in 0..=i {
                        let mut s = cov[i * d + j];
                        for p in 0..j {
                            s -= l[i * d + p] * l[j * d + p];
                        }
                        if i == j {
                            l[i * d + i] = s.max(1e-12).sqrt();
                        } else {
                            l[i * d + j] = s / l[j * d + j];
                        }
                    }
                }
            }
        }
        let log_det = 2.0 * (0..d).map(|a| l[a * d + a].ln()).sum::<f64>();
        let inv_diag: Vec<f64> = (0..d).map(|a| 1.0 / l[a * d + a]).collect();
        let whiten = (kind == CovKind::Full).then(|| inverse_transposed(&l, &inv_diag, d));
        Component {
            log_det,
            log_2pi_d: d as f64 * (2.0 * std::f64::consts::PI).ln(),
            inv_diag,
            whiten,
            d,
        }
    }

    /// Log densities of every point of `z` under the component centred at
    /// `mu`: a full component whitens all points with one matrix product
    /// (a triangular solve per point was half of an E step).
    fn log_pdfs(&self, z: &[Vec<f64>], mu: &[f64]) -> Vec<f64> {
        let constant = self.log_det + self.log_2pi_d;
        let Some(whiten) = &self.whiten else {
            return z.iter().map(|x| self.log_pdf_diagonal(x, mu)).collect();
        };
        differences(z, mu)
            .dot(whiten)
            .rows()
            .into_iter()
            .map(|y| -0.5 * (y.dot(&y) + constant))
            .collect()
    }

    /// Log density at `x` of a diagonal component centred at `mu`.
    fn log_pdf_diagonal(&self, x: &[f64], mu: &[f64]) -> f64 {
        let mut maha = 0.0;
        for i in 0..self.d {
            let y = (x[i] - mu[i]) * self.inv_diag[i];
            maha += y * y;
        }
        -0.5 * (maha + self.log_det + self.log_2pi_d)
    }
}

/// (L⁻¹)ᵀ of the lower-triangular row-major d×d `l` (whose diagonal's
/// reciprocals are `inv_diag`), by forward substitution on each column of
/// the identity.
fn inverse_transposed(l: &[f64], inv_diag: &[f64], d: usize) -> ndarray::Array2<f64> {
    let mut out = ndarray::Array2::<f64>::zeros((d, d));
    for col in 0..d {
        // Solve L·x = e_col; x is column `col` of L⁻¹, row `col` of out.
        let mut x = vec![0.0; d];
        for i in col..d {
            let mut s = if i == col { 1.0 } else { 0.0 };
            for p in col..i {
                s -= l[i * d + p] * x[p];
            }
            x[i] = s * inv_diag[i];
        }
        for (i, v) in x.into_iter().enumerate() {
            out[[col, i]] = v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_two_blobs_and_gains_likelihood() {
        let mut z = Vec::new();
        for i in 0..200 {
            let t = (i as f64 * 0.37).sin();
            let u = (i as f64 * 1.13).cos();
            z.push(if i < 150 {
                vec![t, u]
            } else {
                vec![100.0 + t, 100.0 + u]
            });
        }
        let init: Vec<Vec<f64>> = z
            .iter()
            .map(|x| {
                if x[0] > 50.0 {
                    vec![0.3, 0.7]
                } else {
                    vec![0.7, 0.3]
                }
            })
            .collect();
        let two = fit(&z, init, CovKind::Full, 100);
        let one = fit(&z, vec![vec![1.0]; 200], CovKind::Full, 100);
        let gain = two.mean_log_likelihood - one.mean_log_likelihood;
        assert!(
            gain > 3.0,
            "gain {gain}: {} vs {}",
            two.mean_log_likelihood,
            one.mean_log_likelihood
        );
        let small = if two.weights[0] < two.weights[1] {
            0
        } else {
            1
        };
        assert!((two.weights[small] - 0.25).abs() < 1e-6);
        assert!(two.resp[160][small] > 0.99 && two.resp[10][small] < 0.01);
    }
}
