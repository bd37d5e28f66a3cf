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
        let mut cov = vec![0.0; d * d];
        let mut diff = vec![0.0; d];
        for (x, r) in z.iter().zip(resp) {
            let w = r[c];
            if w < 1e-12 {
                continue;
            }
            for ((v, &x), &m) in diff.iter_mut().zip(x).zip(&mu) {
                *v = x - m;
            }
            for a in 0..d {
                let wa = w * diff[a];
                match kind {
                    CovKind::Full => {
                        for (acc, &db) in cov[a * d..a * d + a + 1].iter_mut().zip(&diff) {
                            *acc += wa * db;
                        }
                    }
                    CovKind::Diagonal => cov[a * d + a] += wa * diff[a],
                }
            }
        }
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

/// Posteriors of every point under `model` (written into `resp`); returns
/// the mean log-likelihood per point.
fn e_step(z: &[Vec<f64>], model: &Model, resp: &mut [Vec<f64>]) -> f64 {
    let k = model.weights.len();
    let mut ll = 0.0;
    // Scratch reused for every point (allocating per point and component
    // was a third of a fit's time).
    let mut logp = vec![0.0; k];
    let mut y = vec![0.0; model.means.first().map_or(0, Vec::len)];
    // Each point costs one exp per component and one ln (the weights' logs
    // are taken once, the posteriors divide the exps already taken):
    // transcendentals were most of an E step in 10 dimensions.
    let log_weights: Vec<f64> = model.weights.iter().map(|w| w.ln()).collect();
    for (x, r) in z.iter().zip(resp.iter_mut()) {
        for (c, v) in logp.iter_mut().enumerate() {
            *v = log_weights[c] + model.comps[c].log_pdf(x, &model.means[c], &mut y);
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
    /// Lower Cholesky factor (row-major d×d); diagonal-only for `Diagonal`.
    chol: Vec<f64>,
    log_det: f64,
    /// d·ln(2π), the density's constant (taken once, not per point).
    log_2pi_d: f64,
    /// Reciprocals of the factor's diagonal: a multiplication per
    /// dimension and point instead of a division.
    inv_diag: Vec<f64>,
    d: usize,
    kind: CovKind,
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
        let inv_diag = (0..d).map(|a| 1.0 / l[a * d + a]).collect();
        Component {
            chol: l,
            log_det,
            log_2pi_d: d as f64 * (2.0 * std::f64::consts::PI).ln(),
            inv_diag,
            d,
            kind,
        }
    }

    /// Log density at `x` of the component centred at `mu`; `y` is scratch
    /// of at least `d` values.
    fn log_pdf(&self, x: &[f64], mu: &[f64], y: &mut [f64]) -> f64 {
        let d = self.d;
        let mut maha = 0.0;
        for i in 0..d {
            let mut s = x[i] - mu[i];
            if self.kind == CovKind::Full {
                for p in 0..i {
                    s -= self.chol[i * d + p] * y[p];
                }
            }
            y[i] = s * self.inv_diag[i];
            maha += y[i] * y[i];
        }
        -0.5 * (maha + self.log_det + self.log_2pi_d)
    }
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
