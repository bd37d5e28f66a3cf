//! Time to the first picture in the real workbench, driven headlessly by
//! egui_kittest (issue #11): a dataset of N × D embeddings on disk (a
//! 1,000,000-row `manifest.csv` and `embeddings.npy`, generated once into
//! DIR) is opened as a user opens it — `Workbench::new` on the path, then
//! frames as the window draws them — and reports when the first frame with
//! every sample in the embedding view was drawn, when each detector's flags
//! reached the queue, when the whole scan was in, how long queueing every
//! sample (`u`) takes, and the process's peak memory. A second open of the
//! same data reads the stored scan.
//!
//! Run: `cargo run --release --example bench_first_picture [N D] [DIR]`
//! (default 1,000,000 × 64 in `/tmp/poisonlens-bench-N-D`).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use poisonlens::ui::{Action, ScanState, Settings, Workbench};

fn main() {
    let (n, d) = common::sizes_from_args(&[(1_000_000, 64)])[0];
    let dir = std::env::args()
        .skip(1)
        .find(|a| a.parse::<usize>().is_err())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/poisonlens-bench-{n}-{d}")));
    if !dir.join("manifest.csv").is_file() {
        let t = Instant::now();
        common::write_to_disk(&common::synthetic(n, d), &dir).expect("write the dataset");
        println!(
            "wrote {n}x{d} to {} in {:.1} s",
            dir.display(),
            t.elapsed().as_secs_f64()
        );
        // The generator's memory is not the workbench's: measure in a fresh process.
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(std::env::args().skip(1))
            .status()
            .expect("rerun");
        std::process::exit(status.code().unwrap_or(1));
    }
    // Each open in its own process, so each peak memory is its own.
    if let Some(state) = std::env::var_os("BENCH_STATE_DIR") {
        open_and_watch(&dir, PathBuf::from(state));
        println!("  peak RSS of this open {:.0} MB", common::peak_rss_mb());
        return;
    }
    let state = tempfile::tempdir().expect("state dir");
    for run in ["first open (scans)", "second open (stored scan)"] {
        println!("{n}x{d}, {run}:");
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(std::env::args().skip(1))
            .env("BENCH_STATE_DIR", state.path())
            .status()
            .expect("run an open");
        assert!(status.success());
    }
}

/// Opens `dir` in a workbench and draws frames (at most 20 per second, as
/// the window does while a job runs) until the scan is in.
fn open_and_watch(dir: &std::path::Path, state_dir: PathBuf) {
    let t = Instant::now();
    let settings = Settings {
        state_dir: Some(state_dir),
        reviewer: "bench".into(),
        ..Default::default()
    };
    let w = Workbench::new(dir.to_path_buf(), vec![], settings);
    let mut h = Harness::builder()
        .with_size([1400.0, 860.0])
        .build_ui_state(|ui, w: &mut Workbench| w.show(ui), w);
    let mut pictured = false;
    let mut waiting = usize::MAX;
    loop {
        let shown_before = h.state().loaded.as_ref().is_some_and(|l| l.has_view());
        h.step();
        let at = t.elapsed().as_secs_f64();
        if shown_before && !pictured {
            pictured = true;
            println!("  {at:>6.2} s  first picture: every sample in the view, scan running");
        }
        if let Some(l) = &h.state().loaded {
            if let ScanState::Running { waiting: w, .. } = &l.scan
                && w.len() < waiting
            {
                if waiting != usize::MAX {
                    println!(
                        "  {at:>6.2} s  {} detector(s) in, {} flagged so far",
                        crate_detectors() - w.len(),
                        l.report.flagged_count()
                    );
                }
                waiting = w.len();
            }
            match &l.scan {
                ScanState::Done(origin) => {
                    println!(
                        "  {at:>6.2} s  scan complete ({}): {} flagged, {} in the queue",
                        origin.short(),
                        l.report.flagged_count(),
                        h.state().queue.len()
                    );
                    // What `u` costs: every sample queued, ranked, on the
                    // window's thread.
                    let t = Instant::now();
                    h.state_mut().apply(Action::FilterUnflagged(true));
                    println!(
                        "           every sample queued (u): {} in {:.0} ms",
                        h.state().queue.len(),
                        t.elapsed().as_secs_f64() * 1e3
                    );
                    return;
                }
                ScanState::Stopped(why) => panic!("scan stopped: {why}"),
                ScanState::Running { .. } => {}
            }
        } else if let Some(e) = &h.state().error {
            panic!("{e}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn crate_detectors() -> usize {
    poisonlens::detect::REGISTRY.len()
}
