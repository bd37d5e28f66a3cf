//! Every background job of the workbench in one place (as rerun's viewer
//! keeps its `BackgroundTasks`): opening, scanning, t-SNE, export and the
//! trigger search. The top bar's progress bars, Cancel and the tests' wait
//! all go through this list, so a new kind of job cannot be left out of one
//! of them (each had drifted: the progress bar had no trigger search, Cancel
//! stopped two kinds, the wait skipped t-SNE).

use crate::detect::trigger::Found;
use crate::jobs::Job;
use crate::project2d::Projection;

use super::Loaded;
use super::loaded::{Scanned, Stage};

/// The jobs that may be running; at most one of each kind.
#[derive(Default)]
pub struct BackgroundTasks {
    /// Opening a dataset: reading it and its review, the first view.
    pub open: Option<Job<Result<Loaded, String>>>,
    /// Scanning the open dataset (or reading its stored scan), with each
    /// detector's result on its way as it finishes.
    pub scan: Option<ScanTask>,
    /// t-SNE of the open dataset.
    pub projection: Option<Job<Projection>>,
    /// Exporting and signing the cleaned manifest.
    pub export: Option<Job<Result<super::signoff::ExportDone, String>>>,
    /// Looking for a trigger in the selection.
    pub trigger: Option<Job<Result<Found, String>>>,
}

/// The scan job and the channel its finished detectors arrive on.
pub struct ScanTask {
    /// The job; its result is the whole report.
    pub job: Job<Result<Scanned, String>>,
    /// Finished detectors, in order, until the job ends.
    pub stages: std::sync::mpsc::Receiver<Stage>,
}

/// What the list needs of any job, whatever it produces.
trait Running {
    fn progress(&self) -> (String, f32);
    fn cancel(&self);
}

impl<T: Send + 'static> Running for Job<T> {
    fn progress(&self) -> (String, f32) {
        Job::progress(self)
    }
    fn cancel(&self) {
        Job::cancel(self)
    }
}

impl BackgroundTasks {
    fn each(&self) -> impl Iterator<Item = &dyn Running> {
        let open = self.open.as_ref().map(|j| j as &dyn Running);
        let scan = self.scan.as_ref().map(|t| &t.job as &dyn Running);
        let projection = self.projection.as_ref().map(|j| j as &dyn Running);
        let export = self.export.as_ref().map(|j| j as &dyn Running);
        let trigger = self.trigger.as_ref().map(|j| j as &dyn Running);
        [open, scan, projection, export, trigger]
            .into_iter()
            .flatten()
    }

    /// Whether any job runs.
    pub fn is_busy(&self) -> bool {
        self.each().next().is_some()
    }

    /// Stage and fraction done of every running job, in a fixed order.
    pub fn progress(&self) -> Vec<(String, f32)> {
        self.each().map(Running::progress).collect()
    }

    /// Asks every job to stop. Jobs that cannot stop mid-way (t-SNE, an
    /// export already writing) finish in the background and their result is
    /// dropped or reported as it comes.
    pub fn cancel_all(&self) {
        self.each().for_each(Running::cancel);
    }
}
