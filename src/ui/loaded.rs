//! A dataset open in the workbench, and the background job that opens it.
//! Everything heavy (reading, scanning, projecting) happens here, off the UI
//! thread.

use std::path::PathBuf;
use std::sync::Arc;

use crate::dataset::{Dataset, OpenOptions};
use crate::detect::cache::{self, Origin, ScanCache};
use crate::detect::cluster_map::{self, ClusterRow};
use crate::detect::{Report, ScanOptions};
use crate::jobs::JobState;
use crate::project2d::{self, Projection};
use crate::review::{Review, ReviewSession};

/// Everything the workbench shows about one dataset.
pub struct Loaded {
    /// Where it was opened from.
    pub path: PathBuf,
    /// The dataset (shared with thumbnail decoders).
    pub dataset: Arc<Dataset>,
    /// The scan.
    pub report: Report,
    /// 2-D coordinates for the scatter view (the one shown).
    pub projection: Projection,
    /// The PCA view, kept to switch back from t-SNE.
    pub pca: Projection,
    /// The t-SNE view once computed.
    pub tsne: Option<Projection>,
    /// Whether the scan ran now or was read back, in words.
    pub origin: Origin,
    /// The decisions, bound to their durable store.
    pub session: ReviewSession,
    /// Rows of the cluster map.
    pub cluster_rows: Vec<ClusterRow>,
    /// What the scan's false-flag budget promises (made once, shown every frame).
    pub budget_note: String,
}

/// Computes the t-SNE view in a job; the dataset stays usable meanwhile.
pub fn tsne(features: Arc<crate::linalg::Matrix>, pca: Projection, job: &JobState) -> Projection {
    job.report("t-SNE", 0.0);
    project2d::tsne(&features, &pca, &|f| job.report("t-SNE", f))
}

impl Loaded {
    /// The decisions (read-only; changes go through `session`).
    pub fn review(&self) -> &Review {
        self.session.review()
    }
}

/// Opens, scans and projects `path`, and opens its review store (in
/// `state_dir` if given); runs inside a [`crate::jobs::Job`].
pub fn load(
    path: PathBuf,
    state_dir: Option<PathBuf>,
    options: &ScanOptions,
    job: &JobState,
) -> Result<Loaded, String> {
    job.report("opening", 0.0);
    let ds = Dataset::open(&path, &OpenOptions::default()).map_err(|e| e.to_string())?;
    job.report("opening the review", 0.02);
    let session = ReviewSession::open(&ds, state_dir.as_deref()).map_err(|e| e.to_string())?;
    if job.cancelled() {
        return Err("cancelled".into());
    }
    let progress = |stage: &str, f: f32| job.report(&format!("scanning: {stage}"), f * 0.9);
    let store = ScanCache::beside(&session.location.path);
    let (report, origin) = cache::scan_cached(
        &ds,
        options,
        store.as_ref().map_err(Clone::clone),
        &progress,
        &|| job.cancelled(),
    )
    .map_err(|e| e.to_string())?;
    job.report("projecting", 0.92);
    let projection = project2d::pca(&report.features);
    let cluster_rows = cluster_map::build(&report);
    let budget_note = report.budget_note();
    job.report("done", 1.0);
    Ok(Loaded {
        path,
        dataset: Arc::new(ds),
        report,
        pca: projection.clone(),
        projection,
        tsne: None,
        origin,
        session,
        cluster_rows,
        budget_note,
    })
}
