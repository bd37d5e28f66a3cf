//! Each detector on data built to contain (or not contain) its kind of poison.

use std::path::Path;

use poisonlens::dataset::{Dataset, OpenOptions};
use poisonlens::detect::{ScanOptions, scan};
use poisonlens::linalg::{Matrix, XorShift};

/// `classes` Gaussian classes of `per_class` samples in `d` dims; optionally a
/// planted backdoor: `poison` samples of other classes moved to a tight
/// trigger cluster and labelled class 0.
fn synthetic(classes: usize, per_class: usize, d: usize, poison: usize) -> (Dataset, Vec<bool>) {
    let mut rng = XorShift::new(0x1234_5678_9abc_def1);
    let centres: Vec<Vec<f32>> = (0..=classes)
        .map(|_| (0..d).map(|_| rng.normal() * 3.0).collect())
        .collect();
    let n = classes * per_class;
    let mut labels = Vec::new();
    let mut data = Vec::new();
    let mut truth = Vec::new();
    for i in 0..n {
        let c = i % classes;
        let poisoned = c != 0 && i / classes < poison / (classes - 1);
        let centre = if poisoned {
            &centres[classes]
        } else {
            &centres[c]
        };
        let spread = if poisoned { 0.6 } else { 1.0 };
        for v in centre {
            data.push(v + rng.normal() * spread);
        }
        labels.push(if poisoned { 0 } else { c as u32 });
        truth.push(poisoned);
    }
    let ds = Dataset::in_memory(
        (0..n).map(|i| format!("s{i}")).collect(),
        labels,
        (0..classes).map(|c| format!("c{c}")).collect(),
        Matrix::new(n, d, data),
    );
    (ds, truth)
}

#[test]
fn activation_clustering_finds_a_planted_backdoor_and_spares_clean_classes() {
    let (ds, truth) = synthetic(5, 200, 16, 80);
    let r = scan(&ds, &ScanOptions::default(), &|_, _| {}).unwrap();
    let ac = r.detector("activation_cluster").unwrap();
    let split: Vec<_> = r
        .clusters
        .iter()
        .filter(|c| c.flagged)
        .map(|c| c.class)
        .collect();
    assert_eq!(
        split,
        vec![0],
        "only the poisoned class splits: {:?}",
        r.clusters
    );
    let tp = (0..truth.len())
        .filter(|&i| truth[i] && ac.flagged[i])
        .count();
    let fp = (0..truth.len())
        .filter(|&i| !truth[i] && ac.flagged[i])
        .count();
    assert!(tp >= 76 && fp <= 4, "tp {tp} fp {fp}");
}

#[test]
fn clean_gaussian_classes_are_not_flagged() {
    let (ds, _) = synthetic(5, 200, 16, 0);
    let r = scan(&ds, &ScanOptions::default(), &|_, _| {}).unwrap();
    assert!(r.clusters.iter().all(|c| !c.flagged), "{:?}", r.clusters);
    assert!(r.flagged_count() <= 10, "flagged {}", r.flagged_count());
}

#[test]
fn label_flips_get_flagged_with_the_true_class_suggested() {
    let (mut ds, _) = synthetic(4, 150, 8, 0);
    let flipped: Vec<usize> = (0..600).step_by(37).collect();
    for &i in &flipped {
        ds.labels[i] = (ds.labels[i] + 1) % 4;
    }
    let r = scan(&ds, &ScanOptions::default(), &|_, _| {}).unwrap();
    for &i in &flipped {
        assert!(r.flagged[i], "flip {i} missed");
        assert_eq!(r.suggested_label[i], Some((ds.labels[i] + 3) % 4));
        assert!(r.reasons[i].contains("label looks flipped"));
    }
    assert!(r.flagged_count() <= flipped.len() + 3);
}

/// Copies `copies` of sample 3 of the sample data (re-encoded: same pixels,
/// other bytes, then `noise` grey levels added to every other pixel) under
/// another label into a 200-sample dataset; returns the scan, the
/// original's id and its true label.
fn scan_with_copies(copies: usize, noise: u8) -> (poisonlens::detect::Report, String, String) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data");
    let ds = Dataset::open(&src, &OpenOptions::default()).unwrap();
    let d = tempfile::tempdir().unwrap();
    let mut m = String::from("id,path,label\n");
    for i in 0..200 {
        std::fs::copy(ds.file_path(i).unwrap(), d.path().join(format!("{i}.png"))).unwrap();
        m += &format!("{},{i}.png,{}\n", ds.ids[i], ds.label_name(i));
    }
    let other = ds
        .classes
        .iter()
        .find(|c| c.as_str() != ds.label_name(3))
        .unwrap();
    let img = image::open(d.path().join("3.png")).unwrap().to_luma8();
    for c in 0..copies {
        let mut copy = img.clone();
        for (k, p) in copy.pixels_mut().enumerate() {
            if (k + c) % 2 == 0 && p[0] > 0 {
                p[0] = p[0].saturating_add(noise);
            }
        }
        copy.save(d.path().join(format!("copy{c}.png"))).unwrap();
        m += &format!("copy{c},copy{c}.png,{other}\n");
    }
    std::fs::write(d.path().join("manifest.csv"), m).unwrap();
    let with = Dataset::open(d.path(), &OpenOptions::default()).unwrap();
    let r = scan(&with, &ScanOptions::default(), &|_, _| {}).unwrap();
    (r, ds.ids[3].clone(), ds.label_name(3).to_string())
}

#[test]
fn a_copy_with_another_label_is_flagged_not_its_original() {
    let (r, original, truth) = scan_with_copies(1, 0);
    let dup = r.detector("duplicate").unwrap();
    let flagged: Vec<&str> = (0..r.ids.len())
        .filter(|&i| dup.flagged[i])
        .map(|i| r.ids[i].as_str())
        .collect();
    assert_eq!(flagged, vec!["copy0"], "original {original}");
    let i = r.ids.iter().position(|x| x == "copy0").unwrap();
    assert!(
        r.flagged[i] && r.reasons[i].contains("near-copies"),
        "{}",
        r.reasons[i]
    );
    let suggested = r.suggested_label[i].map(|l| r.class_names[l as usize].clone());
    assert_eq!(suggested.as_deref(), Some(truth.as_str()));
}

/// A flood: five noisy near-copies under one wrong label outnumber their
/// correctly labelled original; the copies are flagged, the original not.
#[test]
fn a_flood_of_near_copies_is_flagged_and_its_original_spared() {
    let (r, original, truth) = scan_with_copies(5, 3);
    let dup = r.detector("duplicate").unwrap();
    for c in 0..5 {
        let i = r.ids.iter().position(|x| *x == format!("copy{c}")).unwrap();
        assert!(dup.flagged[i], "copy{c} missed");
        let suggested = r.suggested_label[i].map(|l| r.class_names[l as usize].clone());
        assert_eq!(suggested.as_deref(), Some(truth.as_str()));
    }
    let o = r.ids.iter().position(|x| *x == original).unwrap();
    assert!(!dup.flagged[o], "original flagged: {}", r.reasons[o]);
    assert_eq!(dup.flagged.iter().filter(|&&f| f).count(), 5);
}

/// The inverted-file search used above 10,000 samples must find nearly the
/// same neighbours as exact search on real embeddings (four devsets' 64-d
/// embeddings stacked: 20,000 rows).
#[test]
fn ivf_agrees_with_exact_search() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/devsets");
    if !root.exists() {
        eprintln!("skipped: {} not present", root.display());
        return;
    }
    let mut data = Vec::new();
    let mut rows = 0;
    let mut cols = 0;
    for name in ["badnets", "blend", "flip", "clean"] {
        let m =
            poisonlens::dataset::npy::read_npy(&root.join(name).join("embeddings.npy")).unwrap();
        rows += m.rows;
        cols = m.cols;
        data.extend(m.data);
    }
    let x = Matrix::new(rows, cols, data);
    let exact = poisonlens::knn::knn_exact(&x, 40);
    let ivf = poisonlens::knn::knn_ivf(&x, 40);
    let hits: usize = (0..rows)
        .map(|i| ivf.of(i).iter().filter(|j| exact.of(i).contains(j)).count())
        .sum();
    let recall = hits as f64 / (rows * 40) as f64;
    assert!(recall >= 0.93, "recall {recall:.3}");
}

#[test]
fn cluster_map_puts_a_planted_backdoor_off_the_diagonal() {
    let (ds, truth) = synthetic(5, 200, 16, 80);
    let r = scan(&ds, &ScanOptions::default(), &|_, _| {}).unwrap();
    let rows = poisonlens::detect::cluster_map::build(&r);
    let minority = rows
        .iter()
        .find(|row| row.class == 0 && row.cluster == 1)
        .expect("class 0 has a minority group");
    assert!(minority.split);
    assert!(
        minority.members.iter().filter(|&&i| truth[i]).count() * 10 >= minority.members.len() * 9
    );
    // Its members are not like class 0's main group.
    assert!(
        minority.share_looking_like(0) < 0.5,
        "{:?}",
        minority.looks_like
    );
    let main = rows
        .iter()
        .find(|row| row.class == 1 && row.cluster == 0)
        .unwrap();
    assert!(main.share_looking_like(1) > 0.9, "{:?}", main.looks_like);
}

#[test]
fn a_class_larger_than_the_fit_sample_is_split_on_a_sample_and_every_member_assigned() {
    use poisonlens::detect::Features;
    use poisonlens::detect::activation_clustering::{FIT_LIMIT, run};
    // Class 0: 24,000 of its own plus 1,500 planted; class 1: 3,000.
    let (per0, planted, per1, d) = (24_000, 1_500, 3_000, 16);
    let mut rng = XorShift::new(0xB16C_1A55);
    let centre: Vec<Vec<f32>> = (0..3)
        .map(|_| (0..d).map(|_| rng.normal() * 3.0).collect())
        .collect();
    let mut data = Vec::new();
    let mut labels = Vec::new();
    let mut truth = Vec::new();
    for (group, count, label) in [(0, per0, 0), (2, planted, 0), (1, per1, 1)] {
        for _ in 0..count {
            data.extend(centre[group].iter().map(|v| v + rng.normal()));
            labels.push(label);
            truth.push(group == 2);
        }
    }
    let n = labels.len();
    assert!(per0 + planted > FIT_LIMIT);
    let f = Features {
        matrix: Matrix::new(n, d, data).into(),
        labels,
        n_classes: 2,
        class_names: vec!["a".into(), "b".into()],
        ids: (0..n).map(|i| i.to_string()).collect(),
    };
    let (scores, clusters, _) = run(&f, 0, None);
    assert!(clusters[0].flagged && !clusters[1].flagged, "{clusters:?}");
    assert_eq!(clusters[0].size, per0 + planted, "every member counted");
    let found = (0..n).filter(|&i| truth[i] && scores.flagged[i]).count();
    let false_flags = (0..n).filter(|&i| !truth[i] && scores.flagged[i]).count();
    assert!(found * 100 >= planted * 98, "{found} of {planted} planted");
    assert!(
        false_flags * 1000 <= per0,
        "{false_flags} clean members flagged"
    );
}
