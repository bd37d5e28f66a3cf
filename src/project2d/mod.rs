//! 2-D projections of the embeddings for the scatter view. PCA is immediate
//! and linear, so distances along its axes mean something; it is the view a
//! dataset opens with.

use crate::linalg::{Matrix, Pca};

/// x/y coordinates per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// Method name, shown on the plot.
    pub method: &'static str,
    /// One point per sample.
    pub points: Vec<[f32; 2]>,
}

/// Rows the PCA view is fitted on at most: the top two components of
/// 50,000 random rows are those of the whole set to well within a pixel,
/// and fitting on them keeps the first picture of a million wide rows
/// (1,000,000 × 512) to a second instead of half a minute.
pub const PCA_FIT_ROWS: usize = 50_000;

/// First two principal components (fitted on at most [`PCA_FIT_ROWS`]
/// rows, every row projected).
pub fn pca(x: &Matrix) -> Projection {
    let fitted = if x.rows > PCA_FIT_ROWS {
        let rows = crate::knn::sample_rows(x.rows, PCA_FIT_ROWS);
        Pca::fit(&x.select_rows(&rows), 2)
    } else {
        Pca::fit(x, 2)
    };
    Projection {
        method: "PCA",
        points: fitted.transform_2d(x),
    }
}

/// Samples above which t-SNE switches from Barnes–Hut to the FFT-accelerated
/// gradient (FIt-SNE), which scales to millions of points.
pub const FFT_ABOVE: usize = 20_000;

/// t-SNE (perplexity 30, 750 epochs), a neighbourhood-preserving view in
/// which small clusters — a backdoor's poisoned group — separate visibly.
/// Started from the PCA view (scaled down, as is standard), which keeps PCA's
/// global layout; parallel sums make runs differ in the last digits, so the
/// view is not bit-for-bit reproducible (the scan is). `progress` gets 0..1.
pub fn tsne(x: &Matrix, pca_view: &Projection, progress: &dyn Fn(f32)) -> Projection {
    const EPOCHS: usize = 750;
    let rows: Vec<&[f32]> = (0..x.rows).map(|i| x.row(i)).collect();
    let n = rows.len();
    let mean_x = pca_view.points.iter().map(|p| p[0] as f64).sum::<f64>() / n.max(1) as f64;
    let sd = (pca_view
        .points
        .iter()
        .map(|p| (p[0] as f64 - mean_x).powi(2))
        .sum::<f64>()
        / n.max(1) as f64)
        .sqrt()
        .max(1e-12);
    let init: Vec<f32> = pca_view
        .points
        .iter()
        .flat_map(|p| {
            [
                (p[0] as f64 / sd * 1e-4) as f32,
                (p[1] as f64 / sd * 1e-4) as f32,
            ]
        })
        .collect();
    let euclid = |a: &&[f32], b: &&[f32]| crate::linalg::squared_distance(a, b).sqrt();
    let mut t: bhtsne::tSNE<f32, &[f32]> = bhtsne::tSNE::new(&rows);
    t.perplexity(30.0f32.min(((n.saturating_sub(1)) as f32 / 3.0).max(1.0)))
        .epochs(EPOCHS)
        .initial_embedding(init)
        .epoch_callback(|e, _| progress(e as f32 / EPOCHS as f32));
    if n > FFT_ABOVE {
        t.fit_sne(euclid);
    } else {
        t.barnes_hut(0.5, euclid);
    }
    let emb = t.embedding();
    Projection {
        method: "t-SNE",
        points: emb.chunks(2).map(|c| [c[0], c[1]]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsne_separates_two_groups() {
        let mut data = Vec::new();
        for i in 0..200 {
            let off = if i < 100 { 0.0 } else { 8.0 };
            for j in 0..5 {
                data.push(off + ((i * 7 + j * 13) % 17) as f32 * 0.05);
            }
        }
        let x = Matrix::new(200, 5, data);
        let p = pca(&x);
        let a = tsne(&x, &p, &|_| {});
        let mean = |r: std::ops::Range<usize>| {
            let n = r.len() as f32;
            r.fold([0.0, 0.0], |m, i| {
                [m[0] + a.points[i][0] / n, m[1] + a.points[i][1] / n]
            })
        };
        let (m0, m1) = (mean(0..100), mean(100..200));
        let gap = ((m0[0] - m1[0]).powi(2) + (m0[1] - m1[1]).powi(2)).sqrt();
        let spread = (0..100)
            .map(|i| ((a.points[i][0] - m0[0]).powi(2) + (a.points[i][1] - m0[1]).powi(2)).sqrt())
            .fold(0.0f32, f32::max);
        assert!(gap > spread, "gap {gap} spread {spread}");
    }
}
