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

/// First two principal components.
pub fn pca(x: &Matrix) -> Projection {
    let p = Pca::fit(x, 2);
    let pts = p
        .transform(x)
        .into_iter()
        .map(|v| [v[0] as f32, v.get(1).copied().unwrap_or(0.0) as f32])
        .collect();
    Projection {
        method: "PCA",
        points: pts,
    }
}
