//! What every detector sees: the analyses a scan computes once and shares.

use super::input_view::InputView;
use super::label_flip::Votes;
use super::registry::{ClassSplit, Detail, Evidence};
use super::trigger::ImageStack;
use super::{Features, ScanOptions};
use crate::dataset::images::ImageDigest;
use crate::knn::Neighbors;

/// The shared analyses of one scan, and the evidence of the detectors that
/// ran before (a detector may build on an earlier one's findings, e.g. the
/// trigger search localizes the groups activation clustering split off).
pub struct ScanContext<'a> {
    /// Embeddings (or pixel features), labels and names.
    pub features: &'a Features,
    /// Nearest neighbours in `features`.
    pub neighbours: &'a Neighbors,
    /// The neighbourhood's vote on every sample's label.
    pub votes: &'a Votes,
    /// The model-independent second view of every image, when images were read.
    pub view: Option<&'a InputView>,
    /// Per-image digests (pixel hashes), empty when images were not read.
    pub digests: &'a [Result<ImageDigest, String>],
    /// The images at a common size, when read.
    pub images: Option<&'a ImageStack>,
    /// The user's model's class scores and which output is which class,
    /// when the scan embedded with a model that classifies the dataset's
    /// classes.
    pub predictions: Option<&'a super::model_prediction::Predictions>,
    /// The scan's settings.
    pub options: &'a ScanOptions,
    /// Evidence of the detectors that ran before, in registry order.
    pub earlier: &'a [Evidence],
}

impl ScanContext<'_> {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.features.labels.len()
    }

    /// Whether the dataset is empty (never, for a scan).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The class split an earlier detector found, if any.
    pub fn split(&self) -> Option<&ClassSplit> {
        self.earlier.iter().find_map(|e| match &e.detail {
            Detail::ClassSplit(s) => Some(s),
            _ => None,
        })
    }
}
