//! A dataset open in the workbench, and the background jobs that open and
//! scan it. Opening shows the data at once (samples, classes, the PCA view
//! of the given embeddings); the scan runs behind and its detectors' flags
//! arrive one detector at a time. Everything heavy happens here, off the UI
//! thread.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Sender;

use crate::dataset::model::{Model, ModelOptions};
use crate::dataset::{Dataset, OpenOptions};
use crate::detect::cache::{self, Origin, ScanCache};
use crate::detect::cluster_map::{self, ClusterInput, ClusterRow};
use crate::detect::{
    Detail, DetectorScores, Evidence, MAX_SCAN_DIMS, Report, ScanOptions, ScanWatch, Verdict,
};
use crate::jobs::JobState;
use crate::linalg::Matrix;
use crate::project2d::{self, Projection};
use crate::review::{Review, ReviewSession};

/// Everything the workbench shows about one dataset.
pub struct Loaded {
    /// Where it was opened from.
    pub path: PathBuf,
    /// The dataset (shared with thumbnail decoders and the scan).
    pub dataset: Arc<Dataset>,
    /// The scan's report: while the scan runs, the detectors finished so
    /// far (none at first).
    pub report: Report,
    /// 2-D coordinates for the scatter view (the one shown; no points when
    /// there are no embeddings and the scan has not made features yet).
    pub projection: Projection,
    /// The PCA view, kept to switch back from t-SNE.
    pub pca: Projection,
    /// The t-SNE view once computed.
    pub tsne: Option<Projection>,
    /// Where the scan stands.
    pub scan: ScanState,
    /// The decisions as the store holds them (read here; written only
    /// through `saver`, and read back from the store once committed).
    pub session: ReviewSession,
    /// Writes decisions off the UI thread.
    pub saver: super::saver::Saver,
    /// Rows of the cluster map.
    pub cluster_rows: Vec<ClusterRow>,
    /// What the scan's false-flag budget promises (made once, shown every frame).
    pub budget_note: String,
    /// The user's model, loaded and checked at open; the scan embeds with it.
    pub model: Option<Arc<Model>>,
    /// Scan warnings already put before the user for this dataset: a
    /// rescan (another budget) does not raise a dismissed one again.
    pub warned: std::collections::BTreeSet<String>,
}

/// Where the scan of the open dataset stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanState {
    /// Running. `waiting` lists the detectors that have not finished;
    /// `stage_by_stage` says whether their flags join the report as they
    /// come (a first scan) or the report shown stays until the whole new
    /// one replaces it (a rescan with another budget).
    Running {
        /// Names of the detectors still to finish.
        waiting: Vec<&'static str>,
        /// Whether finished detectors' flags are shown at once.
        stage_by_stage: bool,
    },
    /// Finished; how the report was got.
    Done(Origin),
    /// Stopped before the end; why.
    Stopped(String),
}

impl ScanState {
    /// A scan about to start.
    pub fn starting(stage_by_stage: bool) -> ScanState {
        ScanState::Running {
            waiting: crate::detect::detector_infos().map(|d| d.name).collect(),
            stage_by_stage,
        }
    }

    /// One line for the queue panel.
    pub fn short(&self) -> String {
        match self {
            ScanState::Running { waiting, .. } => {
                let titles: Vec<&str> = waiting
                    .iter()
                    .filter_map(|n| crate::detect::detector_info(n).map(|d| d.title))
                    .collect();
                format!("Scanning; still running: {}", titles.join(", "))
            }
            ScanState::Done(o) => o.short().to_string(),
            ScanState::Stopped(why) => format!("Scan stopped ({why}); flags are incomplete"),
        }
    }

    /// The full sentence (the line's hover).
    pub fn describe(&self) -> String {
        match self {
            ScanState::Running { stage_by_stage, .. } if *stage_by_stage => {
                "Each detector's flags join the queue and the colouring as it finishes".into()
            }
            ScanState::Running { .. } => {
                "The report shown stays until the new scan has finished".into()
            }
            ScanState::Done(o) => o.describe(),
            ScanState::Stopped(why) => format!("The scan stopped: {why}. Scan again to finish it."),
        }
    }

    /// Whether the scan is still running.
    pub fn is_running(&self) -> bool {
        matches!(self, ScanState::Running { .. })
    }
}

/// Computes the t-SNE view in a job; the dataset stays usable meanwhile.
pub fn tsne(features: Arc<Matrix>, pca: Projection, job: &JobState) -> Projection {
    job.report("t-SNE", 0.0);
    project2d::tsne(&features, &pca, &|f| job.report("t-SNE", f))
}

impl Loaded {
    /// The decisions (read-only; changes go through `session`).
    pub fn review(&self) -> &Review {
        self.session.review()
    }

    /// Whether the view has a point for every sample (not so while a
    /// dataset without embeddings waits for the scan's features).
    pub fn has_view(&self) -> bool {
        self.projection.points.len() == self.dataset.len()
    }

    /// Shows one more finished detector (a message from [`scan`]).
    pub fn take_stage(&mut self, stage: Stage) {
        let ScanState::Running {
            waiting,
            stage_by_stage,
        } = &mut self.scan
        else {
            return;
        };
        waiting.retain(|n| *n != stage.evidence.scores.name);
        if !*stage_by_stage {
            return;
        }
        self.report.absorb(stage.evidence);
        self.report.set_verdict(stage.verdict);
        if let Some(rows) = stage.cluster_rows {
            self.cluster_rows = rows;
        }
        cluster_map::recount(&mut self.cluster_rows, &self.report.flagged);
        self.budget_note = stage.budget_note;
    }

    /// Puts the finished scan in place (or says why it stopped).
    pub fn take_scan(&mut self, r: Result<Scanned, String>) {
        match r {
            Ok(s) => {
                self.report = s.report;
                self.cluster_rows = s.cluster_rows;
                self.budget_note = s.budget_note;
                if let Some(p) = s.projection {
                    self.pca = p.clone();
                    self.projection = p;
                    self.tsne = None;
                }
                self.scan = ScanState::Done(s.origin);
            }
            Err(e) => self.scan = ScanState::Stopped(e),
        }
    }
}

/// Opens `path` and its review store (in `state_dir` if given) and makes
/// the first view: no scan yet, so the window shows the data at once. Runs
/// inside a [`crate::jobs::Job`].
pub fn open(
    path: PathBuf,
    state_dir: Option<PathBuf>,
    fdr: f64,
    model: Option<ModelOptions>,
    job: &JobState,
) -> Result<Loaded, String> {
    job.report("opening", 0.0);
    let ds = Dataset::open(&path, &OpenOptions::default()).map_err(|e| e.to_string())?;
    job.report("loading the model", 0.4);
    let model = model
        .map(|m| Model::load(&m, ds.classes.len()).map(Arc::new))
        .transpose()
        .map_err(|e| e.to_string())?;
    job.report("opening the review", 0.6);
    let writer = ReviewSession::open(&ds, state_dir.as_deref()).map_err(|e| e.to_string())?;
    let session = writer.reader().map_err(|e| e.to_string())?;
    if job.cancelled() {
        return Err("cancelled".into());
    }
    job.report("projecting", 0.8);
    let (features, source) = given_features(&ds, model.as_deref());
    let projection = if features.rows == ds.len() {
        project2d::pca(&features)
    } else {
        Projection {
            method: "PCA",
            points: Vec::new(),
        }
    };
    let report = Report::pending(&ds, features, source, fdr);
    job.report("done", 1.0);
    Ok(Loaded {
        path,
        dataset: Arc::new(ds),
        budget_note: "No flags yet: the scan is running.".into(),
        report,
        pca: projection.clone(),
        projection,
        tsne: None,
        scan: ScanState::starting(true),
        session,
        saver: super::saver::Saver::start(writer),
        cluster_rows: Vec::new(),
        model,
        warned: Default::default(),
    })
}

/// The features the window can show before the scan: the embeddings as
/// given (wide ones too; the scan's reduction keeps their top components),
/// or none (none either when a model's will replace them).
fn given_features(ds: &Dataset, model: Option<&Model>) -> (Arc<Matrix>, String) {
    if let Some(m) = model {
        return (
            Arc::new(Matrix::new(0, 0, Vec::new())),
            format!("the scan embeds with {}", m.describe()),
        );
    }
    match &ds.embeddings {
        Some(m) if m.cols <= MAX_SCAN_DIMS => (Arc::clone(m), format!("{}-d embeddings", m.cols)),
        Some(m) => (
            Arc::clone(m),
            format!("{}-d embeddings (scan pending)", m.cols),
        ),
        None => (
            Arc::new(Matrix::new(0, 0, Vec::new())),
            "no embeddings: features come from the scan".into(),
        ),
    }
}

/// One detector's result on its way to the window, with the combined
/// verdict and cluster map as they stand after it (computed on the scan's
/// thread, so taking it costs the window next to nothing).
pub struct Stage {
    /// The detector's evidence.
    pub evidence: Evidence,
    /// The combined verdict of every detector finished so far.
    pub verdict: Verdict,
    /// The cluster map, once the class split is known.
    pub cluster_rows: Option<Vec<ClusterRow>>,
    /// The budget sentence for the flags so far.
    pub budget_note: String,
}

/// A finished scan, ready to show.
pub struct Scanned {
    /// The report.
    pub report: Report,
    /// Read back or scanned now.
    pub origin: Origin,
    /// Its cluster map.
    pub cluster_rows: Vec<ClusterRow>,
    /// What its false-flag budget promises.
    pub budget_note: String,
    /// A new PCA view when the scan made the features (no embeddings given).
    pub projection: Option<Projection>,
}

/// Scans `ds` (or reads its stored scan beside `review_store`), sending
/// each finished detector to `stages`; runs inside a [`crate::jobs::Job`].
pub fn scan(
    ds: Arc<Dataset>,
    review_store: PathBuf,
    options: ScanOptions,
    stages: Sender<Stage>,
    job: &JobState,
) -> Result<Scanned, String> {
    let progress = |stage: &str, f: f32| job.report(&format!("scanning: {stage}"), f * 0.95);
    let (features, _) = given_features(&ds, options.model.as_deref());
    // Built from the scan's own evidence, so nothing but the newest
    // detector's scores is copied on the way to the window.
    let finished = |all: &[Evidence]| {
        let Some(newest) = all.last() else { return };
        let detectors: Vec<&DetectorScores> = all.iter().map(|e| &*e.scores).collect();
        let verdict = Verdict::of(&detectors, &ds.labels, None);
        let cluster_rows = match &newest.detail {
            Detail::ClassSplit(s) if features.rows == ds.len() => {
                Some(cluster_map::build_from(&ClusterInput {
                    features: &features,
                    labels: &ds.labels,
                    classes: ds.classes.len(),
                    cluster_of: &s.cluster_of,
                    trigger_of: &[],
                    clusters: &s.clusters,
                    flagged: &verdict.flagged,
                }))
            }
            _ => None,
        };
        let budget_note = crate::detect::budget_note(options.fdr, &|name| {
            detectors
                .iter()
                .find(|d| d.name == name)
                .map_or(0, |d| d.flagged.iter().filter(|&&f| f).count())
        });
        let _ = stages.send(Stage {
            evidence: newest.clone(),
            verdict,
            cluster_rows,
            budget_note,
        });
    };
    let store = ScanCache::beside(&review_store);
    let watch = ScanWatch {
        progress: &progress,
        cancelled: &|| job.cancelled(),
        finished: &finished,
    };
    let (report, origin) =
        cache::scan_cached(&ds, &options, store.as_ref().map_err(Clone::clone), &watch)
            .map_err(|e| e.to_string())?;
    job.report("projecting", 0.96);
    let made_features = options.model.is_some()
        || ds
            .embeddings
            .as_ref()
            .is_none_or(|e| e.rows != report.features.rows);
    let projection = made_features.then(|| project2d::pca(&report.features));
    let cluster_rows = cluster_map::build(&report);
    let budget_note = report.budget_note();
    job.report("done", 1.0);
    Ok(Scanned {
        report,
        origin,
        cluster_rows,
        budget_note,
        projection,
    })
}
