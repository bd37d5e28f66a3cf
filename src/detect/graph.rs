//! The best two-way cut of a k-nearest-neighbour graph, found by a sweep along
//! the graph's second eigenvector (spectral partitioning). Its conductance —
//! edges cut relative to the smaller side's edges — is near 0 when a class is
//! really two groups that barely touch, whatever shape each group has. That
//! catches backdoor clusters that are not Gaussian blobs.

use crate::knn::Neighbors;

/// A two-way split of a graph's nodes.
pub struct Cut {
    /// Edges cut / edges within the smaller side (0 = disconnected groups).
    pub conductance: f64,
    /// Nodes on the smaller side.
    pub smaller: Vec<bool>,
}

/// Sweep cut of the symmetrised neighbour graph; both sides keep at least
/// `min_side` nodes.
pub fn best_cut(nb: &Neighbors, n: usize, min_side: usize) -> Cut {
    let mut adj: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (i, list) in adj.iter_mut().enumerate().take(n) {
        list.extend_from_slice(nb.of(i));
    }
    for i in 0..n {
        for &j in nb.of(i) {
            adj[j as usize].push(i as u32);
        }
    }
    for a in adj.iter_mut() {
        a.sort_unstable();
        a.dedup();
    }
    let deg: Vec<f64> = adj.iter().map(|a| a.len().max(1) as f64).collect();
    let sq: Vec<f64> = deg.iter().map(|d| d.sqrt()).collect();
    let norm_top = sq.iter().map(|v| v * v).sum::<f64>().sqrt();
    let top: Vec<f64> = sq.iter().map(|v| v / norm_top).collect();
    // Power iteration on (I + D^-1/2 A D^-1/2)/2 with the top eigenvector
    // (∝ sqrt(degree)) projected out: converges to the second one.
    let mut x: Vec<f64> = (0..n)
        .map(|i| ((i * 7919) % 101) as f64 / 101.0 - 0.5)
        .collect();
    // Each node's x / sqrt(degree) once per round, not once per edge.
    let mut w = vec![0.0; n];
    let mut y = vec![0.0; n];
    for _ in 0..300 {
        for ((w, &x), &s) in w.iter_mut().zip(&x).zip(&sq) {
            *w = x / s;
        }
        for i in 0..n {
            let s: f64 = adj[i].iter().map(|&j| w[j as usize]).sum();
            y[i] = 0.5 * x[i] + 0.5 * s / sq[i];
        }
        let dot: f64 = y.iter().zip(&top).map(|(a, b)| a * b).sum();
        y.iter_mut().zip(&top).for_each(|(v, t)| *v -= dot * t);
        let norm = y.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
        for (x, &y) in x.iter_mut().zip(&y) {
            *x = y / norm;
        }
    }
    let f: Vec<f64> = x.iter().zip(&sq).map(|(v, s)| v / s).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| f[a].total_cmp(&f[b]).then(a.cmp(&b)));
    let vol_total: f64 = deg.iter().sum();
    let mut in_s = vec![false; n];
    let (mut cut, mut vol) = (0.0, 0.0);
    let mut best = (f64::INFINITY, 0usize);
    for (t, &v) in order.iter().enumerate() {
        let to_s = adj[v].iter().filter(|&&j| in_s[j as usize]).count() as f64;
        cut += adj[v].len() as f64 - 2.0 * to_s;
        vol += deg[v];
        in_s[v] = true;
        let left = t + 1;
        if left >= min_side && n - left >= min_side {
            let c = cut / vol.min(vol_total - vol).max(1e-12);
            if c < best.0 {
                best = (c, left);
            }
        }
    }
    let mut side = vec![false; n];
    for &v in &order[..best.1] {
        side[v] = true;
    }
    if best.1 * 2 > n {
        side.iter_mut().for_each(|s| *s = !*s);
    }
    Cut {
        conductance: if best.0.is_finite() { best.0 } else { 1.0 },
        smaller: side,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knn::knn;
    use crate::linalg::Matrix;

    #[test]
    fn finds_two_separate_groups() {
        let mut data = Vec::new();
        for i in 0..120 {
            let off = if i < 40 { 50.0 } else { 0.0 };
            data.push(off + (i as f32 * 0.71).sin());
            data.push((i as f32 * 1.37).cos());
        }
        let nb = knn(&Matrix::new(120, 2, data), 8);
        let cut = best_cut(&nb, 120, 5);
        assert!(cut.conductance < 0.01, "{}", cut.conductance);
        assert_eq!(cut.smaller.iter().filter(|&&s| s).count(), 40);
        assert!(cut.smaller[..40].iter().all(|&s| s));
    }
}
