//! One detector interface and the one list of detectors.
//!
//! Every detector implements [`Detector`]: what it is ([`DetectorInfo`]) and
//! how it turns the shared [`ScanContext`] into [`Evidence`]. The scan runs
//! [`REGISTRY`] in order; the combined verdict, the report's columns, the
//! CLI summary and the workbench's detector filter all read the same list,
//! so a new detector is one file and one line here.

use super::context::ScanContext;
use super::trigger::Findings;
use super::{ClassClusters, DetectorScores};

/// How a detector's flags enter the combined verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Flags on its own.
    Primary,
    /// Fires on odd-but-clean samples too: flags only when every
    /// supporting detector agrees.
    Supporting,
    /// Never flags a sample by itself: adds its reason (and suggested
    /// label) to samples the others flag, and its own flags can be listed
    /// (the workbench's detector filter).
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

/// Every detector the scan runs, in report order: the one list.
pub static REGISTRY: [&dyn Detector; 8] = [
    &super::label_flip::LabelFlip,
    &super::activation_clustering::ActivationCluster,
    &super::spectral::Spectral,
    &super::outlier::Outlier,
    &super::duplicates::Duplicates,
    &super::trigger::TriggerSearch,
    &super::fixed_pattern::FixedPattern,
    &super::model_prediction::ModelPrediction,
];

/// Every detector's registry entry, in report order.
pub fn detector_infos() -> impl Iterator<Item = &'static DetectorInfo> {
    REGISTRY.iter().map(|d| d.info())
}

/// The registry entry of a detector by name.
pub fn detector_info(name: &str) -> Option<&'static DetectorInfo> {
    detector_infos().find(|d| d.name == name)
}

/// Names of the detectors with `role`, in report order.
pub fn names_with(role: Role) -> Vec<&'static str> {
    detector_infos()
        .filter(|d| d.role == role)
        .map(|d| d.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_reportable() {
        let names: Vec<&str> = detector_infos().map(|d| d.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate detector name");
        for n in names {
            assert!(
                n.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{n} is not a column-safe name"
            );
        }
        assert!(!names_with(Role::Primary).is_empty());
    }
}
