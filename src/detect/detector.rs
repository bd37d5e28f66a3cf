//! What a detector is, what it sees and what it returns: the [`Detector`]
//! trait, its [`ScanContext`] (the analyses a scan computes once and
//! shares) and its [`Evidence`]. The detectors implement it and the list
//! of them is [`super::registry`]; this module names none of them, so the
//! list depends on the detectors and they on this, never round.

use super::input_view::InputView;
use super::predictions::Predictions;
use super::trigger::{Findings, ImageStack};
use super::votes::{VoteRows, Votes};
use super::{ClassClusters, DetectorScores, Features, ScanOptions};
use crate::dataset::images::ImageDigest;
use crate::knn::Neighbors;

/// How a detector's flags enter the combined verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Flags on its own.
    Primary,
    /// Never flags a sample by itself: adds its reason (and suggested
    /// label) to samples the others flag, and its own flags can be listed
    /// (the workbench's detector filter). For detectors that fire on
    /// odd-but-clean samples in every dataset.
    Corroborating,
}

/// What a detector is, for everything that lists detectors (the combined
/// verdict, the workbench's filter, progress, documentation).
#[derive(Debug, Clone, Copy)]
pub struct DetectorInfo {
    /// Report name (`score_<name>` column, `flagged_by` entries).
    pub name: &'static str,
    /// The name people see.
    pub title: &'static str,
    /// What it finds, in a few words.
    pub finds: &'static str,
    /// What the progress line says while it runs.
    pub doing: &'static str,
    /// Its part in the combined verdict.
    pub role: Role,
    /// What the scan's false-flag budget promises about its flags.
    pub calibration: Calibration,
}

/// How a detector's flags relate to the scan's false-flag budget
/// ([`super::ScanOptions::fdr`]), for the sentence the report states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calibration {
    /// A fixed threshold: the budget does not cover it.
    Threshold,
    /// A test against the data's own null controlling the false discovery
    /// rate: at most the budget's share of its flags are expected false.
    FalseDiscoveryRate {
        /// What its flags are called ("near-copy").
        flags: &'static str,
        /// What a false one is ("not to be copies at all").
        false_means: &'static str,
    },
    /// A test bounding the chance of any false finding by the budget.
    FamilyWise {
        /// What one finding is called ("trigger").
        finding: &'static str,
    },
}

impl Calibration {
    /// What it promises for `flagged` flags under budget `fdr`; None for a
    /// fixed threshold.
    pub fn promise(self, fdr: f64, flagged: usize) -> Option<String> {
        let pct = format!("{:.0}%", fdr * 100.0);
        match self {
            Calibration::Threshold => None,
            Calibration::FalseDiscoveryRate { flags, .. } if flagged == 0 => {
                Some(format!("no {flags} flags"))
            }
            Calibration::FalseDiscoveryRate { flags, false_means } => Some(format!(
                "at most {:.1} of the {flagged} {flags} flags expected {false_means}",
                fdr * flagged as f64
            )),
            Calibration::FamilyWise { finding } => {
                Some(format!("chance of a false {finding} at most {pct}"))
            }
        }
    }
}

/// Whether `fdr` is a budget a scan accepts: a share in (0, 0.5].
pub fn fdr_is_valid(fdr: f64) -> bool {
    fdr > 0.0 && fdr <= 0.5
}

/// A detector: reads the scan's shared analyses, returns its evidence.
pub trait Detector: Sync {
    /// Its registry entry.
    fn info(&self) -> &'static DetectorInfo;
    /// Its evidence on every sample of the scanned dataset.
    fn run(&self, ctx: &ScanContext) -> Evidence;
}

/// One detector's result: per-sample scores, flags and reasons, and what
/// else it found that the report (or a later detector) shows.
#[derive(Clone)]
pub struct Evidence {
    /// Per-sample scores, flags, reasons and suggested labels; shared, so
    /// the report and a window showing the scan stage by stage hold one copy.
    pub scores: std::sync::Arc<DetectorScores>,
    /// Findings beyond per-sample scores.
    pub detail: Detail,
}

impl Evidence {
    /// Evidence that is per-sample scores only.
    pub fn scores(scores: DetectorScores) -> Evidence {
        Evidence {
            scores: scores.into(),
            detail: Detail::None,
        }
    }
}

/// Findings beyond per-sample scores.
#[derive(Clone)]
pub enum Detail {
    /// Nothing more.
    None,
    /// How each class splits into two groups (activation clustering): the
    /// cluster map shows it and the trigger search localizes both groups.
    ClassSplit(ClassSplit),
    /// Triggers found in images, with where each image carries one.
    Triggers(Findings),
}

/// Each class's two groups.
#[derive(Debug, Clone)]
pub struct ClassSplit {
    /// Per-class summary.
    pub clusters: Vec<ClassClusters>,
    /// Per sample: 0 main group, 1 the suspect group of its class.
    pub cluster_of: Vec<u8>,
}

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
    /// The spread rows `votes` were read from (every class's share per
    /// sample), kept when images were read and the features are not their
    /// pixels: the two-view label check reads them whole
    /// ([`super::two_views`]).
    pub vote_rows: Option<&'a VoteRows>,
    /// The model-independent second view of every image, when images were read.
    pub view: Option<&'a InputView>,
    /// Whether `features` are the images' own pixel features (no embeddings
    /// given): then `view` describes the same space and is no second
    /// opinion — what a class's images look like is what they are grouped
    /// by, so a check that needs the model and the images to disagree
    /// cannot use it.
    pub from_pixels: bool,
    /// Per-image digests (pixel hashes), empty when images were not read.
    pub digests: &'a [Result<ImageDigest, String>],
    /// The images at a common size, when read.
    pub images: Option<&'a ImageStack>,
    /// The user's model's class scores and which output is which class,
    /// when the scan embedded with a model that classifies the dataset's
    /// classes.
    pub predictions: Option<&'a Predictions>,
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
