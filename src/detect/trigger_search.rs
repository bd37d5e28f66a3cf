//! The `trigger` detector: the search for stamps and blended patterns in
//! [`super::trigger`], run over every class with the activation groups the
//! clustering found (see the README's *Triggers*).

use super::DetectorScores;
use super::detector::{Calibration, Detail, Detector, DetectorInfo, Evidence, Role, ScanContext};
use super::trigger::{Findings, NAME, TriggerScan, run};

/// The trigger detector (see [`super::trigger`]).
pub struct TriggerSearch;

static INFO: DetectorInfo = DetectorInfo {
    name: NAME,
    title: "trigger",
    finds: "images carrying a stamp or blended pattern",
    doing: "looking for triggers in images",
    role: Role::Primary,
    calibration: Calibration::FamilyWise { finding: "trigger" },
};

impl Detector for TriggerSearch {
    fn info(&self) -> &'static DetectorInfo {
        &INFO
    }
    fn run(&self, ctx: &ScanContext) -> Evidence {
        let n = ctx.len();
        let scan = match ctx.images {
            Some(stack) => {
                let none = vec![0u8; n];
                let cluster_of = ctx.split().map_or(&none, |s| &s.cluster_of);
                let f = ctx.features;
                run(
                    stack,
                    &f.labels,
                    cluster_of,
                    &f.class_names,
                    ctx.options.fdr,
                )
            }
            None => TriggerScan {
                detector: DetectorScores::new(INFO.name, n),
                found: Findings::none(n),
            },
        };
        Evidence {
            scores: scan.detector.into(),
            detail: Detail::Triggers(scan.found),
        }
    }
}
