//! The second view of every sample: its input-space features
//! ([`images::input_view`]), which do not come from the suspect model.
//!
//! A model trained on poisoned labels places poison with its (wrong) label —
//! it learned to — but relabelling an image does not change how it looks:
//! in this view a flipped or near-copied sample sits with its source class.
//! The view is PCA-reduced to [`DIMS`] dimensions (neighbour search cost) and
//! its neighbours are computed once per scan.

use crate::dataset::images::{self, ImageDigest};
use crate::knn::{Neighbors, knn};
use crate::linalg::{Matrix, Pca};

/// Dimensions the input view is reduced to before neighbour search.
pub const DIMS: usize = 32;

/// The input view of a dataset and its neighbours.
pub struct InputView {
    /// N×[`DIMS`] reduced features (unreadable images: the mean).
    pub matrix: Matrix,
    /// Whether the sample's image was readable (others never vote or flag).
    pub valid: Vec<bool>,
    /// k nearest neighbours of every sample in this view.
    pub nb: Neighbors,
}

impl InputView {
    /// Builds the view from the scan's image digests; None when fewer than
    /// three images were readable.
    pub fn build(digests: &[Result<ImageDigest, String>], k: usize) -> Option<InputView> {
        let valid: Vec<bool> = digests.iter().map(Result::is_ok).collect();
        if valid.iter().filter(|&&v| v).count() < 3 {
            return None;
        }
        let full = images::pixel_features(digests)?;
        let matrix = if full.cols > DIMS {
            Pca::fit(&full, DIMS).transform_matrix(&full)
        } else {
            full
        };
        let nb = knn(&matrix, k.min(matrix.rows - 1));
        Some(InputView { matrix, valid, nb })
    }
}
