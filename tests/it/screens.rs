//! Snapshot tests of the workbench's main views at two screen sizes,
//! rendered by egui_kittest's wgpu renderer (on CI: Mesa's software Vulkan,
//! lavapipe). A layout change shows up as a failing test with a diff image
//! beside the stored one in `tests/snapshots/`; after a deliberate change,
//! `UPDATE_SNAPSHOTS=1 cargo test --test it screens::` writes the new pictures,
//! which are then reviewed like code. README's screenshots are these files.
//!
//! The dataset is copied to a fixed path first, since the window shows the
//! dataset's path and the export folder: a checkout's own path would make
//! every machine's picture different.
#![cfg(feature = "gui")]

use std::path::{Path, PathBuf};

use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};
use poisonlens::ui::{Settings, Workbench};

/// The two screen sizes the issue names: a laptop and a desktop.
const SIZES: [(&str, [f32; 2]); 2] = [
    ("1280x800", [1280.0, 800.0]),
    ("1600x1000", [1600.0, 1000.0]),
];

/// A fresh copy of the bundled sample at a path that is the same on every
/// machine, with its review state beside it.
fn sample_copy(name: &str) -> (PathBuf, Settings) {
    let root = Path::new("/tmp/poisonlens-screens").join(name);
    let _ = std::fs::remove_dir_all(&root);
    let data = root.join("sample_data");
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data");
    copy_dir(&from, &data);
    let state = root.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let settings = Settings {
        state_dir: Some(state),
        reviewer: "reviewer".into(),
        fdr: poisonlens::detect::DEFAULT_FDR,
        signing_key: None,
        views: Default::default(),
        model: None,
    };
    (data, settings)
}

/// Copies the dataset, leaving out review state a developer's own run of
/// the workbench on `sample_data/` may have left beside the manifest (the
/// pictures show a fresh review).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().contains(".review.") {
            continue;
        }
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The workbench on the sample, scanned, at `size`, drawn by wgpu.
fn workbench(name: &str, size: [f32; 2]) -> Harness<'static, Workbench> {
    let (data, settings) = sample_copy(name);
    let mut w = Workbench::new(data, vec![], settings);
    w.wait_for_job();
    assert!(w.loaded.is_some(), "{:?}", w.error);
    // Software rasterizers may round an anti-aliased edge differently on
    // another CPU (LLVM's code for it follows the CPU's features): a few
    // pixels may differ, a moved panel or line of text changes hundreds.
    let tolerance = SnapshotOptions::new().threshold(1.0).max_failed_pixels(100);
    let mut h = Harness::builder()
        .with_size(size)
        .with_options(tolerance)
        .wgpu()
        .build_ui_state(|ui, w: &mut Workbench| w.show(ui), w);
    settle(&mut h);
    h
}

/// Frames until every image asked for is decoded and uploaded (at most
/// ten seconds), then a few more for layout (egui sizes some widgets on a
/// second pass).
fn settle(h: &mut Harness<'_, Workbench>) {
    for _ in 0..500 {
        h.step();
        if !h.state().images_pending() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for _ in 0..4 {
        h.step();
    }
    assert!(!h.state().images_pending(), "images still decoding");
}

/// The triage view with one decision made, so the queue and the status
/// line show one.
fn triage(size_name: &str, size: [f32; 2]) {
    let mut h = workbench(&format!("triage_{size_name}"), size);
    h.key_press(Key::X);
    settle(&mut h);
    h.state_mut().wait_for_saves();
    settle(&mut h);
    h.snapshot(format!("triage_{size_name}"));
}

/// The cluster map tab.
fn cluster_map(size_name: &str, size: [f32; 2]) {
    let mut h = workbench(&format!("clusters_{size_name}"), size);
    h.get_by_label("Cluster map").click();
    settle(&mut h);
    h.snapshot(format!("cluster_map_{size_name}"));
}

/// The sign-off dialog after one decision.
fn sign_off(size_name: &str, size: [f32; 2]) {
    let mut h = workbench(&format!("signoff_{size_name}"), size);
    h.key_press(Key::X);
    settle(&mut h);
    h.state_mut().wait_for_saves();
    h.key_press_modifiers(Modifiers::COMMAND, Key::E);
    settle(&mut h);
    h.get_by_label("Sign and export");
    h.snapshot(format!("sign_off_{size_name}"));
}

/// Two tests per view, one at each window size — one harness per test,
/// since kittest gathers a test's snapshot results in its harness.
macro_rules! at_both_sizes {
    ($($view:ident: $small:ident, $large:ident;)*) => {$(
        #[test]
        fn $small() {
            $view(SIZES[0].0, SIZES[0].1);
        }

        #[test]
        fn $large() {
            $view(SIZES[1].0, SIZES[1].1);
        }
    )*};
}

at_both_sizes! {
    triage: triage_at_1280x800, triage_at_1600x1000;
    cluster_map: cluster_map_at_1280x800, cluster_map_at_1600x1000;
    sign_off: sign_off_at_1280x800, sign_off_at_1600x1000;
}
