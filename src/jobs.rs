//! Background work with progress and cancel, so loading, scanning and
//! projecting never block the window. A job runs on its own thread; the UI
//! polls it each frame.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Shared between a job and whoever watches it.
#[derive(Debug, Default)]
pub struct JobState {
    /// Current stage and fraction done.
    progress: Mutex<(String, f32)>,
    cancel: AtomicBool,
}

impl JobState {
    /// Reports progress (called by the job).
    pub fn report(&self, stage: &str, fraction: f32) {
        let mut p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        p.0.clear();
        p.0.push_str(stage);
        p.1 = fraction.clamp(0.0, 1.0);
    }
    /// Whether cancel was asked for (checked by the job between steps).
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// A running or finished background job producing a `T`.
pub struct Job<T> {
    /// What the job does, in words (shown next to its progress bar).
    pub title: String,
    state: Arc<JobState>,
    handle: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> Job<T> {
    /// Starts `work` on a new thread.
    pub fn spawn(
        title: impl Into<String>,
        work: impl FnOnce(&JobState) -> T + Send + 'static,
    ) -> Self {
        let state = Arc::new(JobState::default());
        let s = Arc::clone(&state);
        let handle = std::thread::Builder::new()
            .name("poisonlens-job".into())
            .spawn(move || work(&s))
            .expect("spawn job thread");
        Job {
            title: title.into(),
            state,
            handle: Some(handle),
        }
    }

    /// Stage and fraction done.
    pub fn progress(&self) -> (String, f32) {
        self.state
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Asks the job to stop at its next check.
    pub fn cancel(&self) {
        self.state.cancel.store(true, Ordering::Relaxed);
    }

    /// Whether cancel was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.state.cancelled()
    }

    /// The result once the job has finished; `Err` carries a panic message
    /// so a bug in a job shows as an error, not a crashed window.
    pub fn try_take(&mut self) -> Option<Result<T, String>> {
        if !self.handle.as_ref()?.is_finished() {
            return None;
        }
        let h = self.handle.take()?;
        Some(h.join().map_err(|p| {
            p.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the job failed unexpectedly".into())
        }))
    }

    /// Waits for the result (tests and headless use).
    pub fn wait(mut self) -> Result<T, String> {
        loop {
            if let Some(r) = self.try_take() {
                return r;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_progress_and_cancels() {
        let job = Job::spawn("count", |s: &JobState| {
            for i in 0..1000 {
                if s.cancelled() {
                    return i;
                }
                s.report("counting", i as f32 / 1000.0);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            1000
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(job.progress().0, "counting");
        job.cancel();
        assert!(job.wait().unwrap() < 1000);
    }

    #[test]
    fn a_panicking_job_becomes_an_error() {
        let job = Job::spawn("boom", |_: &JobState| -> u32 { panic!("bad data") });
        assert_eq!(job.wait().unwrap_err(), "bad data");
    }
}
