//! The detectors and the combined report.
//!
//! A scan first computes what every detector shares ([`ScanContext`]: the
//! features, their neighbours, the neighbourhood's label vote, the input
//! view, the images at a common size), then runs each detector of the
//! [`REGISTRY`] in order on it; each returns [`Evidence`]. Every detector
//! gives every sample a score in 0..1 (0.5 exactly at its own flag
//! threshold) and a readable reason. They are combined so that both kinds
//! of poison are caught in one dataset: label checking (`label_flip`,
//! `duplicate`) finds flipped labels but is blind to backdoors, because the
//! model learned the trigger as the target class; activation clustering and
//! the trigger search find backdoors but not scattered flips. Any primary
//! detector flags a sample; `spectral`, `outlier` and `model_prediction`
//! fire on odd-but-clean samples too, so they only add their reasons to
//! samples others flag ([`Role`]).

pub mod activation_clustering;
mod assemble;
pub mod cache;
pub mod cluster_map;
pub mod detector;
pub mod duplicates;
pub mod fixed_pattern;
pub mod flip_groups;
pub mod gmm;
pub mod graph;
pub mod group_spill;
pub mod input_view;
pub mod label_flip;
pub mod model_prediction;
pub mod outlier;
pub mod predictions;
pub mod registry;
pub mod sparse;
pub mod spectral;
pub mod split_sides;
pub mod trigger;
pub mod trigger_search;
pub mod two_views;
pub mod votes;

pub use assemble::Verdict;
pub use detector::{
    Calibration, ClassSplit, Detail, Detector, DetectorInfo, Evidence, Role, ScanContext,
    fdr_is_valid,
};
pub use registry::{REGISTRY, detector_info, detector_infos};

use crate::dataset::model::{self, Model};
use crate::dataset::{Dataset, EmbeddingSource, images};
use crate::error::{Error, Result};
use crate::knn::{Watch, knn_watched};
use crate::linalg::{Matrix, Pca};
use std::sync::Arc;

/// Dimensions above which embeddings are reduced by PCA before scanning, so
/// that neighbour search stays fast on wide embeddings (512-d and up).
pub const MAX_SCAN_DIMS: usize = 64;

/// Scan settings.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Seed for every randomised step; equal seeds give equal reports.
    pub seed: u64,
    /// Decode images to find duplicates (and for pixel features when there are no embeddings).
    pub use_images: bool,
    /// False-flag budget of the calibrated detectors: the expected share of
    /// near-copy and fixed-pattern flags that are wrong (Benjamini–Hochberg),
    /// and the chance of any false trigger (Bonferroni over the recurring
    /// windows).
    pub fdr: f64,
    /// The user's model: when given, its activations are the features
    /// (computed in the same pass that reads the images).
    pub model: Option<Arc<Model>>,
}

/// What a scan that read no images cannot do (`had_files`: the dataset
/// names image files, `--no-images` left them unread): said in the report,
/// so empty trigger columns are not read as "no backdoor".
pub fn without_images(had_files: bool) -> String {
    let why = if had_files {
        "no images were read (--no-images)"
    } else {
        "the dataset names no image files"
    };
    format!(
        "{why}: the trigger and fixed-pattern searches did not run, near-copies are judged in the embeddings alone, a class split's suspect group is its smaller one and the label check has no look-alikes to calibrate against — backdoors and clean-label poison go unfound, and more clean samples are flagged (README: Embeddings alone)"
    )
}

/// Default false-flag budget ([`ScanOptions::fdr`]).
pub const DEFAULT_FDR: f64 = 0.05;

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            seed: 0,
            use_images: true,
            fdr: DEFAULT_FDR,
            model: None,
        }
    }
}

/// What every detector sees: one matrix, labels and names.
pub struct Features {
    /// N×D features (embeddings, possibly PCA-reduced, or pixel features);
    /// shared with the dataset when they are its embeddings as given.
    pub matrix: Arc<Matrix>,
    /// Given label per sample.
    pub labels: Vec<u32>,
    /// Number of classes.
    pub n_classes: usize,
    /// Class names.
    pub class_names: Vec<String>,
    /// Sample ids (for reasons that point at another sample).
    pub ids: Vec<String>,
}

/// One detector's output for every sample.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DetectorScores {
    /// Detector name, also the report column suffix (`score_<name>`).
    pub name: &'static str,
    /// 0..1, 0.5 at the detector's threshold.
    #[serde(with = "crate::packed::f32s")]
    pub score: Vec<f32>,
    /// Whether this detector flags the sample.
    pub flagged: Vec<bool>,
    /// Why, for flagged samples ([`DetectorScores::reason`]).
    pub reasons: sparse::Sparse<String>,
    /// The label this detector's evidence points to, for flagged samples
    /// where it has one (e.g. a near-copy's look-alikes' label).
    pub suggested: sparse::Sparse<u32>,
}

/// [`DetectorScores`] as stored, before its name is matched to a detector
/// of this build.
#[derive(serde::Deserialize)]
struct StoredScores {
    name: String,
    #[serde(with = "crate::packed::f32s")]
    score: Vec<f32>,
    flagged: Vec<bool>,
    reasons: sparse::Sparse<String>,
    suggested: sparse::Sparse<u32>,
}

impl<'de> serde::Deserialize<'de> for DetectorScores {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = StoredScores::deserialize(d)?;
        let info = detector_info(&s.name).ok_or_else(|| {
            <D::Error as serde::de::Error>::custom(format!("unknown detector '{}'", s.name))
        })?;
        Ok(DetectorScores {
            name: info.name,
            score: s.score,
            flagged: s.flagged,
            reasons: s.reasons,
            suggested: s.suggested,
        })
    }
}

impl DetectorScores {
    /// All-zero scores for `n` samples.
    pub fn new(name: &'static str, n: usize) -> Self {
        DetectorScores {
            name,
            score: vec![0.0; n],
            flagged: vec![false; n],
            reasons: sparse::Sparse::default(),
            suggested: sparse::Sparse::default(),
        }
    }

    /// Why this detector flags sample `i` (None where it does not).
    pub fn reason(&self, i: usize) -> Option<&str> {
        self.reasons.get(i).map(String::as_str)
    }

    /// The label this detector suggests for sample `i`, if any.
    pub fn suggestion(&self, i: usize) -> Option<u32> {
        self.suggested.get(i).copied()
    }
}

/// The activation-clustering summary for one class (the cluster map's data).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClassClusters {
    /// Class index.
    pub class: u32,
    /// Samples in the class.
    pub size: usize,
    /// Samples in the smaller group.
    pub minority_size: usize,
    /// Log-likelihood gain of two groups over one (nats/sample).
    pub gain: f64,
    /// Distance between the groups in pooled standard deviations.
    pub separation: f64,
    /// Conductance of the best cut of the class's neighbour graph (0 = two disconnected groups).
    pub conductance: f64,
    /// Whether the split was judged real (its minority is flagged).
    pub flagged: bool,
    /// Share of the suspect group's input-view (pixel) neighbours that are
    /// other members of its class, outside the group; NaN without images.
    #[serde(default = "nan")]
    pub lookalikes: f64,
    /// That share for a random group of the class as large: what a natural
    /// sub-style, which still resembles the rest of its class, comes near.
    #[serde(default = "nan")]
    pub lookalikes_expected: f64,
}

/// Serde default for statistics a stored result may lack.
fn nan() -> f64 {
    f64::NAN
}

/// The full result of a scan (stored whole by [`cache`], so reopening
/// unchanged data shows it at once).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// Sample ids.
    pub ids: Vec<String>,
    /// Given labels.
    #[serde(with = "crate::packed::u32s")]
    pub labels: Vec<u32>,
    /// Class names.
    pub class_names: Vec<String>,
    /// Combined suspicion, 0..1; ≥ 0.5 exactly when flagged.
    #[serde(with = "crate::packed::f32s")]
    pub score: Vec<f32>,
    /// Combined verdict.
    pub flagged: Vec<bool>,
    /// Reasons from every detector that fired, joined by "; ".
    pub reasons: Vec<String>,
    /// Suggested label when it differs from the given one.
    pub suggested_label: Vec<Option<u32>>,
    /// Confidence of the neighbourhood's most probable label.
    #[serde(with = "crate::packed::f32s")]
    pub suggested_confidence: Vec<f32>,
    /// Each detector's scores.
    pub detectors: Vec<Arc<DetectorScores>>,
    /// Per-class cluster summary.
    pub clusters: Vec<ClassClusters>,
    /// Cluster (0 main, 1 minority) of each sample within its class.
    #[serde(with = "crate::packed::u8s")]
    pub cluster_of: Vec<u8>,
    /// What the detectors looked at, in words.
    pub feature_source: String,
    /// The features the detectors looked at (embeddings, reduced to at most
    /// [`MAX_SCAN_DIMS`] dimensions, or pixel features): the scatter view and
    /// neighbour thumbnails use the same space. Shared with the dataset's
    /// embeddings when they were used as given.
    pub features: Arc<Matrix>,
    /// Problems that did not stop the scan (unreadable images, tiny classes).
    pub warnings: Vec<String>,
    /// Triggers the `trigger` detector found in images.
    pub triggers: Vec<trigger::Trigger>,
    /// Per sample: the trigger patch it carries, in its own pixels
    /// (x0, y0, x1, y1 inclusive).
    pub trigger_box: Vec<Option<[u32; 4]>>,
    /// Per sample: index into `triggers` of the trigger it carries.
    pub trigger_of: Vec<Option<usize>>,
    /// The images at a common size, when the scan read them: the workbench
    /// localizes triggers of any selection from them without re-reading files.
    pub images: Option<std::sync::Arc<trigger::ImageStack>>,
    /// The false-flag budget the scan ran with ([`ScanOptions::fdr`]).
    pub fdr: f64,
    /// Each sample's nearest neighbours in `features` (up to
    /// [`SHOWN_NEIGHBOURS`], from the scan's own search): the workbench shows
    /// them without searching again.
    pub neighbours: crate::knn::Neighbors,
}

/// Neighbours a report keeps per sample ([`Report::neighbours`]).
pub const SHOWN_NEIGHBOURS: usize = 8;

impl Report {
    /// Number of flagged samples.
    pub fn flagged_count(&self) -> usize {
        self.flagged.iter().filter(|&&f| f).count()
    }

    /// The combined verdict as it would be without some primary
    /// detectors: how much they add (the evaluation and tests use it).
    pub fn flagged_without(&self, detectors: &[&str]) -> Vec<bool> {
        assemble::combine(
            &self.detectors.iter().map(|d| &**d).collect::<Vec<_>>(),
            self.ids.len(),
            detectors,
        )
        .1
    }

    /// What the false-flag budget promises about this report's flags, in
    /// one sentence for people (the CLI summary and the workbench's queue):
    /// the calibrated tests' bound, and which detectors it does not cover.
    pub fn budget_note(&self) -> String {
        budget_note(self.fdr, &|name| {
            self.detector(name)
                .map_or(0, |s| s.flagged.iter().filter(|&&f| f).count())
        })
    }

    /// A detector's scores by name.
    pub fn detector(&self, name: &str) -> Option<&DetectorScores> {
        self.detectors.iter().find(|d| d.name == name).map(|d| &**d)
    }
}

/// [`Report::budget_note`] for a report in the making: `flagged(name)`
/// counts the flags of the detector called `name` (0 if it has not run).
pub fn budget_note(fdr: f64, flagged: &dyn Fn(&str) -> usize) -> String {
    let promises: Vec<String> = detector_infos()
        .filter_map(|d| d.calibration.promise(fdr, flagged(d.name)))
        .collect();
    // Corroborating detectors never flag on their own: nothing to cover.
    let uncovered: Vec<&str> = detector_infos()
        .filter(|d| d.calibration == Calibration::Threshold && d.role != Role::Corroborating)
        .map(|d| d.title)
        .collect();
    format!(
        "False-flag budget {:.0}%: {}. Not covered (fixed thresholds): {}.",
        fdr * 100.0,
        promises.join("; "),
        uncovered.join(", ")
    )
}

/// Progress callback: stage name and fraction done (0..1).
pub type Progress<'a> = &'a (dyn Fn(&str, f32) + Sync);

/// What a running scan tells whoever waits for it: how far it is, whether
/// to stop, and each detector's evidence the moment it is finished, so the
/// workbench can show flags stage by stage instead of after the whole scan.
pub struct ScanWatch<'a> {
    /// Stage name and fraction done.
    pub progress: Progress<'a>,
    /// Checked between stages; true stops the scan with [`Error::Cancelled`].
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
    /// Called each time a detector finishes, with the evidence of every
    /// detector finished so far (the newest last).
    pub finished: &'a (dyn Fn(&[Evidence]) + Sync),
}

/// Scans a dataset with every detector and combines the results.
pub fn scan(ds: &Dataset, opts: &ScanOptions, progress: Progress) -> Result<Report> {
    scan_cancellable(ds, opts, progress, &|| false)
}

/// [`scan`] that stops with [`Error::Cancelled`] between stages once
/// `cancelled` returns true.
pub fn scan_cancellable(
    ds: &Dataset,
    opts: &ScanOptions,
    progress: Progress,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<Report> {
    let watch = ScanWatch {
        progress,
        cancelled,
        finished: &|_| {},
    };
    scan_watched(ds, opts, &watch)
}

/// [`scan`] that reports to `watch`: progress, cancel, and every
/// detector's evidence as soon as it is done.
pub fn scan_watched(ds: &Dataset, opts: &ScanOptions, watch: &ScanWatch) -> Result<Report> {
    let ScanWatch {
        progress,
        cancelled,
        finished,
    } = *watch;
    let progress = |stage: &str, f: f32| {
        if !cancelled() {
            progress(stage, f);
        }
    };
    let check = || {
        if cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    };
    let n = ds.len();
    if n < 2 {
        return Err(Error::file(&ds.source, "a scan needs at least 2 samples"));
    }
    let mut warnings = ds.warnings.clone();
    let mut predictions = None;
    let (model_features, mut digests) = match &opts.model {
        Some(m) => {
            let (features, digests, logits) =
                embed_with_model(ds, m, opts, &progress, cancelled, &mut warnings)?;
            predictions = logits;
            (Some(features), digests)
        }
        None if opts.use_images && ds.paths.is_some() => {
            progress("reading images", 0.0);
            let d = images::digest_all(ds, &|k| progress("reading images", k as f32 / n as f32));
            note_unreadable(ds, &d, &mut warnings);
            (None, d)
        }
        None => {
            warnings.push(without_images(ds.paths.is_some()));
            (None, Vec::new())
        }
    };
    let reduce = |m: &Matrix| {
        progress("reducing dimensions", 0.0);
        Pca::fit(m, MAX_SCAN_DIMS).transform_matrix(m)
    };
    let from_pixels = model_features.is_none() && ds.embeddings.is_none();
    let (matrix, feature_source) = match (model_features, &ds.embeddings, &ds.embedding_source) {
        (Some((m, source)), _, _) => (Arc::new(m), source),
        (None, Some(m), src) => (
            // Wide embeddings are reduced straight from the dataset's copy
            // (a second full copy of 1M × 512 would be 2 GB).
            if m.cols > MAX_SCAN_DIMS {
                Arc::new(reduce(m))
            } else {
                Arc::clone(m)
            },
            match src {
                EmbeddingSource::Npy(p) => {
                    format!("embeddings from {} ({}-d)", p.display(), m.cols)
                }
                EmbeddingSource::ParquetColumn => {
                    format!("embeddings from the 'embedding' column ({}-d)", m.cols)
                }
                EmbeddingSource::Columns(d) => {
                    format!("embeddings from columns emb_0…emb_{} ({d}-d)", d - 1)
                }
                EmbeddingSource::None => format!("{}-d embeddings", m.cols),
            },
        ),
        (None, None, _) => match images::pixel_features(&digests) {
            Some(m) => {
                warnings.push(
                    "no embeddings given: using 16×16 grayscale pixel features, which are far weaker than a model's embeddings — a label is doubted only where its image is rarer for its class than the class's own look-alikes (labels flipped at random mostly go unfound) and class splits flag nothing; give embeddings or --model for those"
                        .into(),
                );
                (
                    Arc::new(m),
                    "pixel features (no embeddings given)".to_string(),
                )
            }
            None => {
                return Err(Error::file(
                    &ds.source,
                    format!(
                        "no embeddings (no embeddings.npy, 'embedding' column or emb_* columns) and no readable images to compute features from{}",
                        why_no_images(ds, &digests)
                    ),
                ));
            }
        },
    };
    let matrix = if matrix.cols > MAX_SCAN_DIMS {
        Arc::new(reduce(&matrix))
    } else {
        matrix
    };
    let f = Features {
        matrix,
        labels: ds.labels.clone(),
        n_classes: ds.classes.len(),
        class_names: ds.classes.clone(),
        ids: ds.ids.clone(),
    };
    check()?;
    progress("finding neighbours", 0.1);
    let k = label_k(n, f.n_classes);
    let watch = Watch {
        progress: &|done| progress("finding neighbours", 0.1 + 0.35 * done),
        cancelled,
    };
    // The model's neighbours and the images' own look need nothing of
    // each other: each runs while the other waits on memory or a serial
    // step, so the two cores stay busy.
    let (nb, (view, images)) = rayon::join(
        || knn_watched(&f.matrix, k, &watch),
        || {
            let view = input_view::InputView::build(&digests, k, cancelled);
            let images = trigger::ImageStack::from_digests(&mut digests).map(Arc::new);
            (view, images)
        },
    );
    let nb = nb.ok_or(Error::Cancelled)?;
    let shown = nb.nearest(SHOWN_NEIGHBOURS);
    let vote_rows = votes::spread_rows(&f, &nb, None);
    let votes = votes::read_votes(&f, &vote_rows);
    // Kept for the two-view label check, which needs images and a model
    // view apart from them.
    let vote_rows = (view.is_some() && !from_pixels).then_some(vote_rows);
    check()?;
    progress("describing images", 0.5);
    let mut evidence: Vec<Evidence> = Vec::with_capacity(REGISTRY.len());
    for (done, detector) in REGISTRY.iter().enumerate() {
        check()?;
        progress(
            detector.info().doing,
            0.55 + 0.4 * done as f32 / REGISTRY.len() as f32,
        );
        let ctx = ScanContext {
            features: &f,
            neighbours: &nb,
            votes: &votes,
            vote_rows: vote_rows.as_ref(),
            view: view.as_ref(),
            from_pixels,
            digests: &digests,
            images: images.as_deref(),
            predictions: predictions.as_ref(),
            options: opts,
            earlier: &evidence,
        };
        let e = detector.run(&ctx);
        evidence.push(e);
        finished(&evidence);
    }
    // A trigger found in a class says which side of its split the poison
    // is on, which the clustering (run before the trigger search) could
    // only guess for images that look like their class.
    if !split_sides::side_with_carriers(&mut evidence, &f.labels, &f.class_names).is_empty() {
        finished(&evidence);
    }
    // Clean images the split took along with a backdoor's carriers.
    if group_spill::unflag_spill(&mut evidence, &f.matrix, &f.labels) > 0 {
        finished(&evidence);
    }
    // The full neighbour lists (k per sample) are done with: free them
    // before the report is assembled, the scan's other memory peak.
    drop(digests);
    drop(nb);
    drop(vote_rows);
    progress("combining", 0.95);
    let mut report = Report::pending(ds, f.matrix, feature_source, opts.fdr);
    for e in evidence {
        report.absorb(e);
    }
    report.recombine(Some(&votes));
    if let Some(view) = &view {
        report.suggest_sources(view);
    }
    report.warnings = warnings;
    report.images = images;
    report.neighbours = shown;
    progress("done", 1.0);
    Ok(report)
}

/// The model's activations with their description, the image digests
/// (empty unless images are used) and the model's predictions.
type ModelFeatures = (
    (Matrix, String),
    Vec<Result<images::ImageDigest, String>>,
    Option<predictions::Predictions>,
);

/// The model's activations as the scan's features (with its description),
/// the scan's image digests from the same decode when images are used, and
/// the model's predictions when it classifies the dataset's classes (which
/// output is which class read once, here).
fn embed_with_model(
    ds: &Dataset,
    model: &Model,
    opts: &ScanOptions,
    progress: &(dyn Fn(&str, f32) + Sync),
    cancelled: &(dyn Fn() -> bool + Sync),
    warnings: &mut Vec<String>,
) -> Result<ModelFeatures> {
    let n = ds.len();
    progress("embedding with the model", 0.0);
    let side = (opts.use_images).then(|| images::trigger_side(n));
    let e = model::embed_all(
        ds,
        model,
        side,
        &|k| progress("embedding with the model", k as f32 / n as f32),
        cancelled,
    )?;
    if cancelled() {
        return Err(Error::Cancelled);
    }
    let predictions = e
        .logits
        .map(|logits| predictions::Predictions::read(logits, &ds.labels, ds.classes.len()));
    if let Some(None) = predictions {
        warnings.push(format!(
            "the model's class predictions are not used: mapping its outputs to the classes they most often predict does not give one class per output agreeing with at least {:.0}% of the labels",
            100.0 * predictions::MIN_AGREEMENT
        ));
    }
    if !e.unreadable.is_empty() {
        warnings.push(format!(
            "{} image(s) could not be read, so the model could not embed them; they sit at the mean embedding and are best reviewed by hand",
            e.unreadable.len()
        ));
        warnings.extend(
            e.unreadable
                .iter()
                .take(20)
                .map(|(i, why)| format!("sample '{}' (row {}): {why}", ds.ids[*i], i + 1)),
        );
    }
    Ok((
        (e.embeddings, model.describe()),
        e.digests,
        predictions.flatten(),
    ))
}

/// Why a dataset without embeddings has no images to describe, for its
/// error: no images named, or the first image's own refusal (a folder of
/// images symlinked in from elsewhere is refused image by image, and "no
/// readable images" alone left the user guessing).
fn why_no_images(ds: &Dataset, digests: &[Result<images::ImageDigest, String>]) -> String {
    match digests.iter().position(Result::is_err) {
        None => " (the manifest names no images)".to_string(),
        Some(i) => format!(
            ": none of the {} images could be read — the first, sample '{}' (row {}): {}",
            digests.len(),
            ds.ids[i],
            i + 1,
            digests[i].as_ref().err().map_or("", String::as_str)
        ),
    }
}

/// Warns of images that could not be read (they are scanned by their
/// embedding only), naming the first twenty.
fn note_unreadable(
    ds: &Dataset,
    digests: &[Result<images::ImageDigest, String>],
    warnings: &mut Vec<String>,
) {
    let bad: Vec<String> = digests
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("sample '{}' (row {}): {e}", ds.ids[i], i + 1))
        })
        .collect();
    if !bad.is_empty() {
        warnings.push(format!(
            "{} image(s) could not be read; they are scanned by embedding only",
            bad.len()
        ));
        warnings.extend(bad.into_iter().take(20));
    }
}

/// Neighbours for the label check: 40, fewer for tiny datasets.
fn label_k(n: usize, classes: usize) -> usize {
    let per_class = n / classes.max(1);
    40.min((per_class / 2).max(5)).min(n - 1)
}
