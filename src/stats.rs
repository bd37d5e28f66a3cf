//! Calibration: turning a detector's statistic into a p-value against the
//! data's own null distribution, and choosing flags with a false-flag budget.
//!
//! A threshold picked on one dataset means something else on the next; a
//! p-value measured against how the same statistic falls in the same data
//! means the same everywhere. The null fits here are robust (median and
//! median absolute deviation), so the poisoned minority they are meant to
//! expose does not drag them along. [`benjamini_hochberg`] then flags the
//! most p-values it can while keeping the expected share of false flags at
//! the budget.

/// Standard normal lower tail P(Z ≤ z).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Standard normal upper tail P(Z ≥ z).
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The z with P(Z ≤ z) = p (bisection on [`normal_cdf`]; p outside (0, 1)
/// gives ∓∞).
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let (mut lo, mut hi) = (-40.0, 40.0);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if normal_cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Complementary error function (Numerical Recipes' Chebyshev fit,
/// relative error < 1.2e-7 everywhere — ample for p-values).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Median of finite values (NaN when there are none).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    *m
}

/// A robust normal fit: centre (median) and scale (1.4826 × MAD, the
/// standard deviation for normal data), unmoved by a minority of outliers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RobustFit {
    /// Median.
    pub center: f64,
    /// 1.4826 × median absolute deviation, never below `floor`.
    pub scale: f64,
}

impl RobustFit {
    /// Fits the finite `values`; `floor` keeps the scale above zero for
    /// data with many equal values. None when no value is finite.
    pub fn fit(values: &[f64], floor: f64) -> Option<RobustFit> {
        let center = median(values);
        if !center.is_finite() {
            return None;
        }
        let dev: Vec<f64> = values.iter().map(|v| (v - center).abs()).collect();
        let scale = (1.4826 * median(&dev)).max(floor);
        Some(RobustFit { center, scale })
    }

    /// The robust z-score of `v`.
    pub fn z(&self, v: f64) -> f64 {
        (v - self.center) / self.scale
    }

    /// One-sided p-value of `v` being this low under the fit.
    pub fn p_low(&self, v: f64) -> f64 {
        normal_cdf(self.z(v))
    }

    /// The value whose lower-tail p-value is `p` (inverse of [`Self::p_low`]).
    pub fn value_at_p_low(&self, p: f64) -> f64 {
        self.center + self.scale * normal_quantile(p)
    }
}

/// Share of a null sample whose lowest values a [`TailFit`] models.
pub const TAIL_SHARE: f64 = 0.2;

/// A lower tail fitted to the lowest [`TAIL_SHARE`] of a null sample
/// (peaks over threshold): below the threshold u, P(X ≤ x) = share ·
/// S(u − x), S the survival of a generalized Pareto distribution of the
/// tail's distances below u, fitted by the method of moments — shape ξ =
/// (1 − mean²/variance) / 2, kept at 0 or above, and scale σ = mean ·
/// (1 − ξ). At ξ = 0 that is the exponential tail exp(−(u − x) / mean).
///
/// Why not a normal tail: a normal fit to a null's middle says how far out
/// its tail goes by assumption, and real nulls are heavier — measured on the
/// label check's nulls (the model's votes of a class's native-looking
/// images, 196 zoo sets), 5–9% of values lie beyond −2 robust SDs where a
/// normal puts 2.3%, and up to 4.5% beyond −3 where it puts 0.13%. Clean
/// images two or three SDs out then got p < 1e-6 and passed any budget.
/// The tail's own values say how fast it thins.
///
/// Why a shape, not an exponential alone (sessions 19–28): on weak models
/// (colour images, 50–70% accurate) the nulls' tails are heavier than an
/// exponential, whose far tail then made odd clean images look impossible:
/// clean sets were flagged 13–21 times (z7204, z7205, z2808) and backdoors
/// of 1–2% lost F1 to a dozen clean flags (z5504, z2600, z1005). The shape
/// says from the tail's own spread how slowly it thins; never thinner than
/// an exponential, which strong models' nulls fit (session 29: 101 sets,
/// mean F1 0.8778 → 0.8819, clean-label 0.970 → 0.984, z7204 15 → 2 clean
/// flags; z7106 0.71 → 0.68 the largest loss).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TailFit {
    /// The threshold u: the largest of the tail's values.
    threshold: f64,
    /// σ: the generalized Pareto scale (the tail's mean distance below the
    /// threshold when `shape` is 0; kept above zero).
    scale: f64,
    /// ξ ≥ 0: how much heavier than an exponential the tail is.
    shape: f64,
    /// Share of the null at or below the threshold.
    share: f64,
}

impl TailFit {
    /// Fits the finite `values`; `floor` keeps σ above zero when the tail's
    /// values are all equal. None with fewer than two finite values.
    pub fn fit(values: &[f64], floor: f64) -> Option<TailFit> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.len() < 2 {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let k = ((TAIL_SHARE * v.len() as f64).ceil() as usize).clamp(2, v.len());
        let threshold = v[k - 1];
        let below: Vec<f64> = v[..k - 1].iter().map(|x| threshold - x).collect();
        let (shape, scale) = pareto_moments(&below);
        Some(TailFit {
            threshold,
            scale: scale.max(floor),
            shape,
            share: k as f64 / v.len() as f64,
        })
    }

    /// One-sided p-value of `v` being this low; values above the threshold
    /// are not in the tail and get the tail's share or more (capped at 1).
    pub fn p_low(&self, v: f64) -> f64 {
        let y = self.threshold - v;
        let survival = if self.shape > 0.0 && y > 0.0 {
            (1.0 + self.shape * y / self.scale).powf(-1.0 / self.shape)
        } else {
            (-y / self.scale).exp()
        };
        (self.share * survival).min(1.0)
    }
}

/// Generalized Pareto shape ξ (at least 0) and scale σ of the distances
/// `below` a threshold, by the method of moments: mean = σ / (1 − ξ),
/// variance = mean² / (1 − 2ξ). (0, 0) for no distances; an exponential
/// (ξ = 0, σ = mean) when they do not vary.
fn pareto_moments(below: &[f64]) -> (f64, f64) {
    let n = below.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = below.iter().sum::<f64>() / n as f64;
    let variance = if n > 1 {
        below.iter().map(|y| (y - mean) * (y - mean)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    let shape = if variance > 0.0 {
        (0.5 * (1.0 - mean * mean / variance)).max(0.0)
    } else {
        0.0
    };
    (shape, mean * (1.0 - shape))
}

/// Benjamini–Hochberg: which of `p` (NaN = not tested) to flag so that the
/// expected share of false flags among the flagged is at most `q`, and the
/// p-value threshold it arrived at, q·R/m for R flags of m tests (0 when
/// none): any further test with a p-value below it would be flagged too.
pub fn benjamini_hochberg(p: &[f64], q: f64) -> (Vec<bool>, f64) {
    let mut order: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]).then(a.cmp(&b)));
    let m = order.len() as f64;
    let mut cut = 0;
    for (rank, &i) in order.iter().enumerate() {
        if p[i] <= q * (rank + 1) as f64 / m {
            cut = rank + 1;
        }
    }
    let mut flags = vec![false; p.len()];
    for &i in &order[..cut] {
        flags[i] = true;
    }
    (flags, q * cut as f64 / m.max(1.0))
}

/// Holm's step-down adjusted p-values: with the `p` sorted ascending,
/// the i-th (from 0) is multiplied by (m − i), kept at least the one
/// before it, capped at 1. A family rejected where its adjusted value is
/// at most α has a chance of any false rejection at most α, as with
/// Bonferroni (m × p), but each rejection lowers the bar for the rest.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]).then(a.cmp(&b)));
    let mut adjusted = vec![1.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// Upper bound on P(X ≥ k) for X ~ Binomial(n, rate) (Chernoff–Hoeffding:
/// exp(−n·KL(k/n ‖ rate))); 1 when k/n does not exceed the rate. A bound
/// keeps the test valid (it can only make the test stricter).
pub fn binomial_tail_bound(k: u32, n: usize, rate: f64) -> f64 {
    let a = f64::from(k) / n.max(1) as f64;
    if a <= rate || rate <= 0.0 {
        return if a <= rate { 1.0 } else { 0.0 };
    }
    let kl = if a >= 1.0 {
        -rate.ln()
    } else {
        a * (a / rate).ln() + (1.0 - a) * ((1.0 - a) / (1.0 - rate)).ln()
    };
    (-(n as f64) * kl).exp()
}

/// Chance that at least `k` of `n` fair coin tosses come up heads: how
/// surprising `k` odd images one way are when `n - k` go the other way.
pub fn fair_coin_tail(k: usize, n: usize) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    // ln C(n, i) 2^-n for i = n down to k, summed stably.
    let half = -(n as f64) * std::f64::consts::LN_2;
    let mut log_c = 0.0;
    let mut logs = Vec::with_capacity(n - k + 1);
    for i in (k..=n).rev() {
        logs.push(log_c + half);
        log_c += (i as f64).ln() - ((n - i + 1) as f64).ln();
    }
    let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (top + logs.iter().map(|l| (l - top).exp()).sum::<f64>().ln())
        .exp()
        .min(1.0)
}

/// Chance that a value of `x` is below a value of `y` (ties count half):
/// the Mann–Whitney statistic over all pairs.
pub fn chance_smaller(x: &[f32], y: &[f32]) -> f64 {
    let mut sorted = y.to_vec();
    sorted.sort_by(f32::total_cmp);
    let mut wins = 0.0;
    for &v in x {
        let below = sorted.partition_point(|&w| w < v);
        let not_above = sorted.partition_point(|&w| w <= v);
        wins += (sorted.len() - not_above) as f64 + 0.5 * (not_above - below) as f64;
    }
    wins / (x.len() * y.len()).max(1) as f64
}

/// One-sided p-value of [`chance_smaller`] being `chance` or higher for
/// `nx` values against `ny` drawn from one distribution (where it is 0.5):
/// the normal approximation of the Mann–Whitney U test (no tie
/// correction). What a small sample's chance says: 0.6 from 12 values is
/// noise (p ≈ 0.12), from 120 it is not (p ≈ 0.0003).
pub fn chance_smaller_p(chance: f64, nx: usize, ny: usize) -> f64 {
    chance_smaller_p_vs(chance, 0.5, nx, ny)
}

/// One-sided p-value of [`chance_smaller`] being `chance` or higher when
/// it is `expected` in truth (`chance` or lower when `expected` is above
/// it: the p-value for "below `expected`"), for `nx` values against `ny`;
/// the spread is the Mann–Whitney null's, a fair stand-in near 0.5–0.8.
pub fn chance_smaller_p_vs(chance: f64, expected: f64, nx: usize, ny: usize) -> f64 {
    if nx == 0 || ny == 0 {
        return 1.0;
    }
    let (nx, ny) = (nx as f64, ny as f64);
    let sd = ((nx + ny + 1.0) / (12.0 * nx * ny)).sqrt();
    let z = (chance - expected) / sd;
    if expected <= chance {
        normal_sf(z)
    } else {
        normal_cdf(z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holm_steps_down_where_bonferroni_stops() {
        // Four tests at 5%: Bonferroni (× 4) keeps 0.001 and 0.01; Holm
        // keeps all four — 0.001 × 4, then 0.01 × 3, 0.02 × 2, 0.04 × 1.
        let adjusted = holm(&[0.02, 0.001, 0.04, 0.01]);
        let expect = [0.04, 0.004, 0.04, 0.03];
        for (a, e) in adjusted.iter().zip(expect) {
            assert!((a - e).abs() < 1e-12, "{adjusted:?}");
        }
        assert!(holm(&[0.6, 0.5]).iter().all(|&a| a == 1.0));
        assert!(holm(&[]).is_empty());
    }

    #[test]
    fn a_tail_fit_follows_a_heavy_tail_where_a_normal_fit_does_not() {
        // Laplace quantiles: P(X ≤ x) = exp(x) / 2 below zero.
        let n = 2000;
        let laplace: Vec<f64> = (0..n)
            .map(|i| {
                let p = (i as f64 + 0.5) / n as f64;
                if p < 0.5 {
                    (2.0 * p).ln()
                } else {
                    -(2.0 * (1.0 - p)).ln()
                }
            })
            .collect();
        let tail = TailFit::fit(&laplace, 1e-9).unwrap();
        let normal = RobustFit::fit(&laplace, 1e-9).unwrap();
        for x in [-4.0_f64, -6.0, -9.0] {
            let truth = 0.5 * x.exp();
            let ratio = tail.p_low(x) / truth;
            assert!(
                (0.8..1.25).contains(&ratio),
                "x {x}: tail {} vs {truth}",
                tail.p_low(x)
            );
            assert!(
                normal.p_low(x) < truth / 20.0,
                "a normal fit is far too sure at {x}"
            );
        }
        assert_eq!(tail.p_low(10.0), 1.0);
        assert!(TailFit::fit(&[1.0], 1e-9).is_none());
        let flat = TailFit::fit(&[2.0; 50], 1e-3).unwrap();
        assert!(flat.p_low(1.9) < 1e-6 && flat.p_low(2.0) > 0.1);
    }

    #[test]
    fn a_heavy_tail_keeps_its_weight() {
        // A lower tail whose distances follow a generalized Pareto law of
        // shape 0.3: P(X ≤ x) = (1 + 0.3·(−x))^(−1/0.3) below zero.
        let n = 2000;
        let shape = 0.3;
        let survival = |y: f64| (1.0 + shape * y).powf(-1.0 / shape);
        let values: Vec<f64> = (0..n)
            .map(|i| {
                let s = (i as f64 + 0.5) / n as f64;
                -((s.powf(-shape) - 1.0) / shape)
            })
            .collect();
        let tail = TailFit::fit(&values, 1e-9).unwrap();
        assert!((0.2..0.4).contains(&tail.shape), "shape {}", tail.shape);
        for x in [-5.0_f64, -10.0, -20.0] {
            let truth = survival(-x);
            let ratio = tail.p_low(x) / truth;
            assert!(
                (0.7..1.4).contains(&ratio),
                "x {x}: {} vs {truth}",
                tail.p_low(x)
            );
        }
        // An exponential with the tail's mean distance, as fitted before
        // session 29, is over ten times too sure that far out.
        let k = n / 5;
        let mean = values[..k - 1]
            .iter()
            .map(|x| values[k - 1] - x)
            .sum::<f64>()
            / (k - 1) as f64;
        let exponential = 0.2 * (-(values[k - 1] + 20.0) / mean).exp();
        assert!(exponential < survival(20.0) / 10.0, "{exponential}");
        // An exponential tail is fitted as one (shape near zero).
        let exp_values: Vec<f64> = (0..n).map(|i| ((i as f64 + 0.5) / n as f64).ln()).collect();
        let fit = TailFit::fit(&exp_values, 1e-9).unwrap();
        assert!(fit.shape < 0.05, "{}", fit.shape);
        assert_eq!(pareto_moments(&[]), (0.0, 0.0));
        assert_eq!(pareto_moments(&[1.0, 1.0]), (0.0, 1.0));
    }

    #[test]
    fn normal_tails_match_tables() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(-1.959_964) - 0.025).abs() < 1e-6);
        assert!((normal_sf(3.090_232) - 0.001).abs() < 1e-7);
        assert!((normal_cdf(-6.0) - 9.865_876e-10).abs() < 1e-13);
        for p in [1e-9, 0.001, 0.3, 0.5, 0.97] {
            assert!(
                (normal_cdf(normal_quantile(p)) / p - 1.0).abs() < 1e-6,
                "{p}"
            );
        }
    }

    #[test]
    fn robust_fit_ignores_a_minority_of_outliers() {
        let mut v: Vec<f64> = (0..1000)
            .map(|i| ((i % 100) as f64 - 49.5) / 29.0)
            .collect();
        v.extend(std::iter::repeat_n(1e6, 300));
        let f = RobustFit::fit(&v, 1e-9).unwrap();
        assert!(f.center.abs() < 1.0, "{f:?}");
        assert!(f.scale < 3.0, "{f:?}");
        assert!(RobustFit::fit(&[f64::NAN], 1.0).is_none());
    }

    #[test]
    fn benjamini_hochberg_flags_the_step_up_set() {
        // Sorted p: 0.001 (≤ .01), 0.008 (≤ .02), 0.035 (> .03, but the
        // step-up goes on), 0.04 (≤ .04), 0.9 (> .05).
        let p = [0.04, 0.9, 0.001, 0.035, 0.008, f64::NAN];
        let (f, largest) = benjamini_hochberg(&p, 0.05);
        assert_eq!(f, vec![true, false, true, true, true, false]);
        assert!((largest - 0.04).abs() < 1e-12);
        let (none, l) = benjamini_hochberg(&[0.5, 0.6], 0.05);
        assert_eq!(none, vec![false, false]);
        assert_eq!(l, 0.0);
    }

    #[test]
    fn tail_bound_is_a_valid_p_value() {
        assert_eq!(binomial_tail_bound(1, 100, 0.5), 1.0);
        let p = binomial_tail_bound(30, 100, 0.01);
        assert!(p > 0.0 && p < 1e-20, "{p}");
        // Exact P(X ≥ 3 | n = 10, 0.1) ≈ 0.0702; the bound is above it.
        assert!(binomial_tail_bound(3, 10, 0.1) >= 0.0702);
    }

    #[test]
    fn fair_coin_tail_is_the_binomial_upper_tail() {
        assert!((fair_coin_tail(8, 8) - 1.0 / 256.0).abs() < 1e-12);
        assert!((fair_coin_tail(2, 3) - 0.5).abs() < 1e-12);
        assert!((fair_coin_tail(0, 5) - 1.0).abs() < 1e-12);
        assert!(fair_coin_tail(600, 1000) < 1e-9);
        assert_eq!(fair_coin_tail(4, 3), 0.0);
    }

    #[test]
    fn chance_smaller_p_weighs_the_sample_size() {
        assert!((chance_smaller_p(0.5, 30, 300) - 0.5).abs() < 1e-6);
        let small = chance_smaller_p(0.6, 12, 300);
        let large = chance_smaller_p(0.6, 120, 300);
        assert!(small > 0.1 && small < 0.15, "{small}");
        assert!(large < 0.001, "{large}");
        assert_eq!(chance_smaller_p(0.9, 0, 300), 1.0);
        // Below an expected 0.75: 0.6 from 16 values is (p ≈ 0.02).
        let below = chance_smaller_p_vs(0.6, 0.75, 16, 384);
        assert!(below > 0.015 && below < 0.03, "{below}");
    }

    #[test]
    fn chance_smaller_counts_pairs_and_halves_ties() {
        assert_eq!(chance_smaller(&[1.0], &[2.0, 3.0]), 1.0);
        assert_eq!(chance_smaller(&[2.0], &[1.0, 2.0]), 0.25);
        assert_eq!(chance_smaller(&[], &[1.0]), 0.0);
    }
}
