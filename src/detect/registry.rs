//! The one list of detectors. The scan runs [`REGISTRY`] in order; the
//! combined verdict, the report's columns, the CLI summary and the
//! workbench's detector filter all read it, so a new detector is one file
//! implementing [`Detector`] and one line here.

use super::detector::{Detector, DetectorInfo, Role};

/// Every detector the scan runs, in report order: the one list.
pub static REGISTRY: [&dyn Detector; 8] = [
    &super::label_flip::LabelFlip,
    &super::activation_clustering::ActivationCluster,
    &super::spectral::Spectral,
    &super::outlier::Outlier,
    &super::duplicates::Duplicates,
    &super::trigger_search::TriggerSearch,
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
