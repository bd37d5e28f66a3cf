//! Opening real data in every supported form and scanning it end to end.

use std::path::{Path, PathBuf};
use std::process::Command;

use poisonlens::dataset::{Dataset, EmbeddingSource, OpenOptions};
use poisonlens::detect::trigger::TriggerKind;
use poisonlens::detect::{ScanOptions, scan};
use poisonlens::eval::{iou, quality, read_truth, report_quality, true_trigger_box};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data")
}

fn devsets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/devsets")
}

#[test]
fn sample_data_opens_with_embeddings_and_metadata() {
    let ds = Dataset::open(&sample(), &OpenOptions::default()).unwrap();
    assert_eq!(ds.len(), 3000);
    assert_eq!(ds.classes.len(), 10);
    assert!(matches!(ds.embedding_source, EmbeddingSource::Npy(_)));
    assert_eq!(ds.embeddings.as_ref().unwrap().cols, 64);
    assert!(ds.metadata.iter().any(|m| m.name == "source_index"));
    assert_eq!(ds.ids[0], "000000", "ids keep their leading zeros");
    let img = poisonlens::dataset::images::load(&ds, 0).unwrap();
    assert_eq!((img.width(), img.height()), (28, 28));
}

#[test]
fn csv_and_parquet_manifests_agree() {
    let dir = devsets().join("badnets");
    if !dir.exists() {
        eprintln!("skipped: {} not present", dir.display());
        return;
    }
    let csv = Dataset::open(&dir.join("manifest.csv"), &OpenOptions::default()).unwrap();
    let pq = Dataset::open(&dir.join("manifest.parquet"), &OpenOptions::default()).unwrap();
    assert_eq!(csv.ids, pq.ids);
    assert_eq!(csv.labels, pq.labels);
    assert_eq!(csv.classes, pq.classes);
    // The sidecar .npy wins for both; the Parquet column must hold the same values.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.join("manifest.parquet"),
        tmp.path().join("manifest.parquet"),
    )
    .unwrap();
    let col = Dataset::open(tmp.path(), &OpenOptions::default()).unwrap();
    assert_eq!(col.embedding_source, EmbeddingSource::ParquetColumn);
    assert_eq!(col.embeddings, csv.embeddings);
}

#[test]
fn image_folder_opens_and_falls_back_to_pixels() {
    let d = tempfile::tempdir().unwrap();
    let ds = Dataset::open(&sample(), &OpenOptions::default()).unwrap();
    for i in 0..60 {
        let class = ds.label_name(i).replace('/', "_");
        std::fs::create_dir_all(d.path().join(&class)).unwrap();
        std::fs::copy(
            ds.file_path(i).unwrap(),
            d.path().join(&class).join(format!("{}.png", ds.ids[i])),
        )
        .unwrap();
    }
    let f = Dataset::open(d.path(), &OpenOptions::default()).unwrap();
    assert_eq!(f.len(), 60);
    assert!(f.ids[0].contains('/'));
    assert_eq!(f.embedding_source, EmbeddingSource::None);
    let r = scan(&f, &ScanOptions::default(), &|_, _| {}).unwrap();
    assert!(r.feature_source.contains("pixel"));
    assert!(r.warnings.iter().any(|w| w.contains("no embeddings given")));
}

/// Without embeddings the features are the images' own pixels, and the
/// input view describes the same space: it cannot be the label check's
/// second opinion nor tell a class's natural styles from a foreign group.
/// Scanned so, the sample's clean images are not flooded into the queue
/// (16% of them were flagged when the view was taken for a second opinion)
/// while its backdoor is still found from its images.
#[test]
fn a_scan_from_pixels_alone_does_not_flood_the_queue() {
    let mut ds = Dataset::open(&sample(), &OpenOptions::default()).unwrap();
    ds.embeddings = None;
    ds.embedding_source = EmbeddingSource::None;
    let r = scan(&ds, &ScanOptions::default(), &|_, _| {}).unwrap();
    assert!(r.feature_source.contains("pixel"), "{}", r.feature_source);
    let truth = read_truth(&sample().join("truth.csv")).unwrap();
    let q = quality(&r.ids, &r.flagged, &truth);
    assert!(q.fpr() <= 0.01, "{q:?}");
    let backdoor = truth_of_kind("backdoor");
    let found = flagged_among(&r, &backdoor);
    assert!(
        found * 10 >= backdoor.len() * 9,
        "{found} of {}",
        backdoor.len()
    );
    let clusters = r.detector("activation_cluster").unwrap();
    assert!(!clusters.flagged.iter().any(|&f| f));
}

/// How many of `ids` the report flags.
fn flagged_among(r: &poisonlens::detect::Report, ids: &[String]) -> usize {
    ids.iter()
        .filter(|id| r.flagged[r.ids.iter().position(|x| x == *id).unwrap()])
        .count()
}

/// A dataset of two classes, as a user with a binary task has: the
/// sample's sneakers and sandals (with their embeddings and images). With
/// ten classes the other classes share a class's natural textures and
/// edges; with two, a sandal's straps recur exactly in a hundred sandals
/// and nowhere else — no trigger, and the clean images are not flooded
/// into the queue (19% of them were flagged as carrying one).
#[test]
fn two_classes_of_the_sample_do_not_make_a_texture_a_trigger() {
    let ds = Dataset::open(&sample(), &OpenOptions::default()).unwrap();
    let keep: Vec<usize> = (0..ds.len())
        .filter(|&i| matches!(ds.label_name(i), "Sneaker" | "Sandal"))
        .collect();
    let d = tempfile::tempdir().unwrap();
    let paths = ds.paths.as_ref().unwrap();
    // Images are copied in: paths must stay inside the dataset's folder.
    std::fs::create_dir(d.path().join("images")).unwrap();
    let mut manifest = String::from("id,label,path\n");
    for &i in &keep {
        std::fs::copy(sample().join(&paths[i]), d.path().join(&paths[i])).unwrap();
        manifest += &format!("{},{},{}\n", ds.ids[i], ds.label_name(i), paths[i]);
    }
    std::fs::write(d.path().join("manifest.csv"), manifest).unwrap();
    let emb = ds.embeddings.as_ref().unwrap().select_rows(&keep);
    poisonlens::dataset::npy::write_npy(&d.path().join("embeddings.npy"), &emb).unwrap();
    let two = Dataset::open(d.path(), &OpenOptions::default()).unwrap();
    assert_eq!(two.classes.len(), 2);
    let r = scan(&two, &ScanOptions::default(), &|_, _| {}).unwrap();
    let truth = read_truth(&sample().join("truth.csv")).unwrap();
    let q = quality(&r.ids, &r.flagged, &truth);
    assert!(q.fpr() <= 0.01, "{q:?}");
    assert!(
        r.triggers.is_empty(),
        "{:?}",
        r.triggers.iter().map(|t| &t.summary).collect::<Vec<_>>()
    );
}

/// The sample's ids whose truth is `kind`.
fn truth_of_kind(kind: &str) -> Vec<String> {
    let truth = std::fs::read_to_string(sample().join("truth.csv")).unwrap();
    truth
        .lines()
        .filter(|l| l.contains(&format!(",{kind},")))
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect()
}

#[test]
fn scan_is_deterministic_and_finds_sample_poison() {
    let ds = Dataset::open(&sample(), &OpenOptions::default()).unwrap();
    let a = scan(&ds, &ScanOptions::default(), &|_, _| {}).unwrap();
    let b = scan(&ds, &ScanOptions::default(), &|_, _| {}).unwrap();
    assert_eq!(a.score, b.score);
    assert_eq!(a.flagged, b.flagged);
    for (i, f) in a.flagged.iter().enumerate() {
        assert_eq!(*f, a.score[i] >= 0.5, "score and verdict agree");
        assert_eq!(*f, !a.reasons[i].is_empty(), "every flag has a reason");
    }
    // The sample's flips are plain in the embeddings; its 3×3 corner backdoor
    // is barely separated by the small model (see README), so only flips are
    // held to a recall bar here.
    let flips = truth_of_kind("flip");
    let found = flagged_among(&a, &flips);
    assert!(
        found * 10 >= flips.len() * 7,
        "found {found} of {} flips",
        flips.len()
    );
    let truth = read_truth(&sample().join("truth.csv")).unwrap();
    let q = report_quality(&a, &truth)[0].1;
    assert!(q.precision() > 0.7, "{q:?}");
}

/// `poisonlens scan --quiet EXTRA… sample_data --out OUT`.
fn scan_sample_cli(extra: &[&str], out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_poisonlens"))
        .args(["scan", "--quiet"])
        .args(extra)
        .arg(sample())
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn cli_scan_writes_every_report_format() {
    let out = tempfile::tempdir().unwrap();
    for ext in ["csv", "parquet", "json"] {
        let report = out.path().join(format!("r.{ext}"));
        let o = scan_sample_cli(&[], &report);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            stdout.contains("Bag") && stdout.contains("flagged"),
            "{stdout}"
        );
        assert!(stdout.contains("trigger in 'Bag': 3×3 patch"), "{stdout}");
        assert!(report.metadata().unwrap().len() > 1000);
    }
    let csv = std::fs::read_to_string(out.path().join("r.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    for col in [
        "id",
        "score",
        "flagged",
        "reasons",
        "suggested_label",
        "score_label_flip",
        "score_activation_cluster",
        "score_spectral",
        "score_outlier",
        "score_duplicate",
        "score_trigger",
        "trigger_box",
    ] {
        assert!(
            header.split(',').any(|h| h == col),
            "missing {col} in {header}"
        );
    }
    let text = std::fs::read_to_string(out.path().join("r.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["samples"].as_array().unwrap().len(), 3000);
    assert_eq!(json["triggers"][0]["kind"], "patch");
    let first = &json["samples"][0];
    assert!(first["scores"]["spectral"].is_number() && first["flagged_by"].is_array());
    // Written sample by sample, the report reads exactly as a document tree
    // of the same values would print: every key in alphabetical order, the
    // same numbers.
    // (serde_json's `float_roundtrip` makes the parse exact, so the
    // numbers print back as they were written.)
    assert_eq!(text, serde_json::to_string_pretty(&json).unwrap() + "\n");
    assert!(
        csv.contains(",23 23 25 25,"),
        "patch carriers have their box"
    );
}

#[test]
fn a_scan_without_images_says_what_it_could_not_do() {
    // --no-images on a dataset with images: a warning on stderr and in the
    // report, naming the option.
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("r.json");
    let o = Command::new(env!("CARGO_BIN_EXE_poisonlens"))
        .args(["scan", "--no-images", "--no-cache"])
        .arg(sample())
        .arg("--out")
        .arg(&report)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("warning: no images were read (--no-images): the trigger and fixed-pattern searches did not run"),
        "{stderr}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let warnings = json["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("no images were read"))
    );
    // With images read, no such warning.
    let o = scan_sample_cli(&["--no-cache"], &report);
    assert!(o.status.success());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(
        !json["warnings"].to_string().contains("no images"),
        "{}",
        json["warnings"]
    );
    // A dataset that names no image files says so instead.
    let ds = poisonlens::dataset::Dataset::in_memory(
        (0..40).map(|i| i.to_string()).collect(),
        (0..40).map(|i| i % 2).collect(),
        vec!["a".into(), "b".into()],
        poisonlens::linalg::Matrix::new(40, 2, (0..80).map(|k| k as f32).collect()),
    );
    let r = poisonlens::detect::scan(&ds, &Default::default(), &|_, _| {}).unwrap();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("the dataset names no image files")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn cli_scan_states_its_false_flag_budget() {
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("r.json");
    let o = scan_sample_cli(&["--fdr", "0.01"], &report);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("False-flag budget 1%:"), "{stdout}");
    assert!(
        last.contains("chance of a false trigger at most 1%"),
        "{last}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["fdr"], 0.01);
    assert_eq!(json["false_flag_note"], last);
    // A budget outside (0, 0.5] is refused, naming the option.
    for bad in ["0", "0.7", "abc", "NaN"] {
        let o = scan_sample_cli(&["--fdr", bad], &out.path().join("x.csv"));
        assert!(!o.status.success(), "--fdr {bad} accepted");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--fdr"),
            "--fdr {bad}"
        );
    }
}

#[test]
fn cli_reports_bad_input_without_panicking() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("m.csv"), "id,label\na,x\na,y\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_poisonlens"))
        .args(["scan"])
        .arg(d.path().join("m.csv"))
        .arg("--out")
        .arg(d.path().join("r.csv"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("m.csv: row 2, column 'id': duplicate id 'a'"),
        "{e}"
    );
    assert!(!e.contains("panicked"));
}

/// The quality targets on every devset (issue #2): F1 ≥ 0.90 on backdoors,
/// ≥ 0.80 on flips, ≤ 1% of the clean devset flagged; and (issue #5) the
/// trigger box overlaps the true patch with IoU ≥ 0.5, the blend is found,
/// the trigger detector never lowers recall and adds no flag where there is
/// no backdoor.
#[test]
fn devset_quality_targets() {
    let root = devsets();
    if !root.exists() {
        eprintln!("skipped: {} not present", root.display());
        return;
    }
    for (name, min_f1) in [
        ("badnets", 0.90),
        ("blend", 0.90),
        ("flip", 0.80),
        ("clean", 0.0),
    ] {
        let dir = root.join(name);
        let ds = Dataset::open(&dir, &OpenOptions::default()).unwrap();
        let r = scan(&ds, &ScanOptions::default(), &|_, _| {}).unwrap();
        let truth = read_truth(&dir.join("truth.csv")).unwrap();
        let q = report_quality(&r, &truth)[0].1;
        eprintln!("{name}: {q:?} F1={:.3} FPR={:.4}", q.f1(), q.fpr());
        if name == "clean" {
            assert!(q.fpr() <= 0.01, "{name}: {q:?}");
        } else {
            assert!(q.f1() >= min_f1, "{name}: F1 {:.3} {q:?}", q.f1());
        }
        // Issue #5: the trigger detector adds recall and no clean flags.
        let without = quality(&r.ids, &r.flagged_without(&["trigger"]), &truth);
        if q.poisoned > 0 {
            assert!(
                q.recall() >= without.recall(),
                "{name}: {q:?} vs {without:?}"
            );
        }
        match name {
            "badnets" => {
                let t = &r.triggers[0];
                let iou = iou(t.bbox.unwrap(), true_trigger_box(&dir).unwrap());
                assert!(iou >= 0.5, "badnets: trigger box IoU {iou:.2}");
                assert_eq!(r.class_names[t.class as usize], "Sneaker");
            }
            "blend" => assert!(
                r.triggers.iter().any(|t| t.kind == TriggerKind::Blend),
                "the blended pattern is detected"
            ),
            "clean" | "flip" => {
                assert!(
                    r.triggers.is_empty(),
                    "{name}: {} triggers",
                    r.triggers.len()
                );
                assert_eq!(q.flagged, without.flagged, "{name}: no extra flags");
            }
            _ => {}
        }
    }
}

#[test]
fn colour_jpeg_and_grayscale_png_of_mixed_sizes_scan_together() {
    let d = tempfile::tempdir().unwrap();
    for c in ["red", "dark"] {
        std::fs::create_dir_all(d.path().join(c)).unwrap();
    }
    for i in 0..24u32 {
        let v = (i * 9) as u8;
        if i % 2 == 0 {
            let img =
                image::RgbImage::from_fn(20 + i, 16, |x, _| image::Rgb([200, v, (x * 5) as u8]));
            img.save(d.path().join("red").join(format!("{i}.jpg")))
                .unwrap();
        } else {
            let img = image::GrayImage::from_fn(28, 28 + i, |x, y| {
                image::Luma([((x + y) as u8).wrapping_mul(v)])
            });
            img.save(d.path().join("dark").join(format!("{i}.png")))
                .unwrap();
        }
    }
    let ds = Dataset::open(d.path(), &OpenOptions::default()).unwrap();
    assert_eq!(ds.len(), 24);
    assert_eq!(ds.classes, vec!["dark", "red"]);
    let r = scan(&ds, &ScanOptions::default(), &|_, _| {}).unwrap();
    assert!(
        r.warnings.iter().all(|w| !w.contains("could not be read")),
        "{:?}",
        r.warnings
    );
}
