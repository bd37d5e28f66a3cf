//! Bad input: every case gets an error naming the file, row and column (or a
//! warning for the sample concerned) and never a panic.

use std::path::{Path, PathBuf};

use poisonlens::dataset::{Dataset, OpenOptions, npy::write_npy};
use poisonlens::detect::{ScanOptions, scan};
use poisonlens::linalg::Matrix;

fn open(p: &Path) -> poisonlens::Result<Dataset> {
    Dataset::open(p, &OpenOptions::default())
}

fn err(p: &Path) -> String {
    open(p).expect_err("should fail").to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn png(dir: &Path, name: &str, v: u8) {
    let img = image::GrayImage::from_pixel(8, 8, image::Luma([v]));
    img.save(dir.join(name)).unwrap();
}

/// A small valid dataset: `n` rows in 2 classes with 4-d `emb_*` columns.
fn manifest(n: usize) -> String {
    let mut s = String::from("id,label,emb_0,emb_1,emb_2,emb_3\n");
    for i in 0..n {
        let c = i % 2;
        s += &format!(
            "s{i},{},{},{},{},{}\n",
            ["cat", "dog"][c],
            c as f32 + i as f32 * 0.01,
            1.0,
            0.5,
            -(i as f32) * 0.02
        );
    }
    s
}

#[test]
fn missing_id_names_row_and_column() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "m.csv", "id,label\na,x\n,y\n");
    let e = err(&p);
    assert!(
        e.contains("m.csv")
            && e.contains("row 2")
            && e.contains("'id'")
            && e.contains("missing id"),
        "{e}"
    );
}

#[test]
fn duplicate_id_names_both_rows() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "m.csv", "id,label\na,x\nb,y\na,z\n");
    let e = err(&p);
    assert!(
        e.contains("row 3") && e.contains("duplicate id 'a'") && e.contains("row 1"),
        "{e}"
    );
}

#[test]
fn no_label_column() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "m.csv", "id,class\na,x\n");
    let e = err(&p);
    assert!(
        e.contains("no 'label' column") && e.contains("id, class"),
        "{e}"
    );
}

#[test]
fn empty_dataset() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "m.csv", "id,label\n");
    let e = err(&p);
    assert!(e.contains("no rows"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let e = err(empty.path());
    assert!(e.contains("nothing to open"), "{e}");
}

#[test]
fn embeddings_of_different_length() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "manifest.csv", "id,label\na,x\nb,y\nc,x\n");
    write_npy(
        &d.path().join("embeddings.npy"),
        &Matrix::new(2, 2, vec![0.; 4]),
    )
    .unwrap();
    let e = err(d.path());
    assert!(
        e.contains("embeddings.npy") && e.contains("has 2 rows") && e.contains("3 samples"),
        "{e}"
    );
}

#[test]
fn nan_and_inf_in_embeddings() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "manifest.csv", "id,label\na,x\nb,y\n");
    write_npy(
        &d.path().join("embeddings.npy"),
        &Matrix::new(2, 2, vec![0., 1., f32::NAN, 2.]),
    )
    .unwrap();
    let e = err(d.path());
    assert!(
        e.contains("row 2") && e.contains("dimension 0") && e.contains("NaN"),
        "{e}"
    );

    // Without a sidecar .npy, emb_* columns are used.
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "cols.csv",
        "id,label,emb_0,emb_1\na,x,1,inf\nb,y,0,0\n",
    );
    let e = err(&p);
    assert!(
        e.contains("row 1") && e.contains("emb_1") && e.contains("not a finite"),
        "{e}"
    );

    let p = write(d.path(), "text.csv", "id,label,emb_0\na,x,1\nb,y,abc\n");
    let e = err(&p);
    assert!(
        e.contains("row 2") && e.contains("emb_0") && e.contains("'abc' is not a number"),
        "{e}"
    );
}

#[test]
fn wrong_npy_dtype_is_named() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "manifest.csv", "id,label\na,x\n");
    let h = "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1), }";
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(&[0; 4]);
    std::fs::write(d.path().join("embeddings.npy"), b).unwrap();
    let e = err(d.path());
    assert!(e.contains("embeddings.npy") && e.contains("'<i4'"), "{e}");
}

#[test]
fn path_escaping_the_folder_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "m.csv",
        "id,label,path\na,x,ok.png\nb,y,../../etc/passwd\n",
    );
    let e = err(&p);
    assert!(
        e.contains("row 2") && e.contains("'path'") && e.contains("leaves the dataset folder"),
        "{e}"
    );
    let p = write(d.path(), "abs.csv", "id,label,path\na,x,/etc/passwd\n");
    let e = err(&p);
    assert!(e.contains("row 1") && e.contains("absolute path"), "{e}");
}

/// A folder outside any dataset holding an image, `secret.png`.
fn outside_with_a_secret() -> tempfile::TempDir {
    let outside = tempfile::tempdir().unwrap();
    png(outside.path(), "secret.png", 200);
    outside
}

#[cfg(unix)]
#[test]
fn symlink_out_of_the_folder_is_refused_at_access() {
    let outside = outside_with_a_secret();
    let d = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.png"), d.path().join("link.png"))
        .unwrap();
    png(d.path(), "fine.png", 10);
    let p = write(
        d.path(),
        "m.csv",
        "id,label,path\na,x,link.png\nb,y,fine.png\n",
    );
    let ds = open(&p).unwrap();
    let e = ds.file_path(0).unwrap_err().to_string();
    assert!(e.contains("outside the dataset folder"), "{e}");
    assert!(ds.file_path(1).is_ok());
    assert!(poisonlens::dataset::images::load(&ds, 0).is_err());
}

/// Without embeddings the images are the features; when every one is
/// refused (an image folder symlinked in from elsewhere), the error says
/// why, naming the first sample, its row and its file — not only that no
/// image was readable.
#[cfg(unix)]
#[test]
fn a_scan_without_embeddings_whose_images_are_all_refused_says_why() {
    let outside = tempfile::tempdir().unwrap();
    for k in 0..4 {
        png(outside.path(), &format!("{k}.png"), 40 * k as u8);
    }
    let d = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), d.path().join("images")).unwrap();
    let p = write(
        d.path(),
        "m.csv",
        "id,label,path\na,x,images/0.png\nb,y,images/1.png\nc,x,images/2.png\nd,y,images/3.png\n",
    );
    let ds = open(&p).unwrap();
    let e = scan(&ds, &ScanOptions::default(), &|_, _| {})
        .expect_err("nothing to scan")
        .to_string();
    for part in [
        "none of the 4 images",
        "sample 'a' (row 1)",
        "0.png",
        "outside the dataset folder",
    ] {
        assert!(e.contains(part), "{part}: {e}");
    }
}

/// The dataset's folder is resolved once when it is opened: a folder
/// reached through a symlink still serves its own files, and a folder
/// symlinked inside it that leads out is still refused. Swapped after
/// opening for one that lies (the same path now leading elsewhere), or
/// taken away, it serves nothing — an error, not a panic.
#[cfg(unix)]
#[test]
fn a_symlinked_dataset_folder_serves_its_files_and_no_others() {
    let outside = outside_with_a_secret();
    let real = tempfile::tempdir().unwrap();
    png(real.path(), "fine.png", 10);
    std::os::unix::fs::symlink(outside.path(), real.path().join("out")).unwrap();
    write(
        real.path(),
        "manifest.csv",
        "id,label,path\na,x,fine.png\nb,y,out/secret.png\n",
    );
    let links = tempfile::tempdir().unwrap();
    let via = links.path().join("dataset");
    std::os::unix::fs::symlink(real.path(), &via).unwrap();
    let ds = open(&via).unwrap();
    assert!(ds.real_root.is_some());
    assert!(poisonlens::dataset::images::load(&ds, 0).is_ok());
    let e = ds.file_path(1).unwrap_err().to_string();
    assert!(e.contains("outside the dataset folder"), "{e}");
    // The link now leads to another folder with a file of the same name.
    let other = tempfile::tempdir().unwrap();
    png(other.path(), "fine.png", 99);
    std::fs::remove_file(&via).unwrap();
    std::os::unix::fs::symlink(other.path(), &via).unwrap();
    let e = ds.file_path(0).unwrap_err().to_string();
    assert!(e.contains("outside the dataset folder"), "{e}");
    assert!(poisonlens::dataset::images::load(&ds, 0).is_err());
    // And then to nothing at all.
    drop(other);
    let e = ds.file_path(0).unwrap_err().to_string();
    assert!(e.contains("fine.png"), "{e}");
}

#[test]
fn single_sample_class_warns_and_scan_goes_on() {
    let d = tempfile::tempdir().unwrap();
    let mut m = manifest(40);
    m += "lonely,bird,0,0,0,0\n";
    let p = write(d.path(), "m.csv", &m);
    let ds = open(&p).unwrap();
    assert!(
        ds.warnings
            .iter()
            .any(|w| w.contains("'bird'") && w.contains("single sample") && w.contains("row 41"))
    );
    let r = scan(&ds, &ScanOptions::default(), &|_, _| {}).unwrap();
    assert_eq!(r.ids.len(), 41);
    assert!(r.warnings.iter().any(|w| w.contains("'bird'")));
}

#[test]
fn corrupt_and_missing_images_are_reported_and_scan_goes_on() {
    let d = tempfile::tempdir().unwrap();
    let mut m = String::from("id,label,path,emb_0,emb_1\n");
    for i in 0..30 {
        png(d.path(), &format!("{i}.png"), (i * 8) as u8);
        m += &format!(
            "s{i},{},{i}.png,{},{}\n",
            ["a", "b"][i % 2],
            i % 2,
            i as f32 * 0.1
        );
    }
    std::fs::write(d.path().join("5.png"), b"not a png at all").unwrap();
    std::fs::remove_file(d.path().join("7.png")).unwrap();
    let p = write(d.path(), "m.csv", &m);
    let ds = open(&p).unwrap();
    let r = scan(&ds, &ScanOptions::default(), &|_, _| {}).unwrap();
    let w = r.warnings.join("\n");
    assert!(w.contains("'s5' (row 6)") && w.contains("decode"), "{w}");
    assert!(w.contains("'s7' (row 8)"), "{w}");
    assert_eq!(r.score.len(), 30);
}

#[test]
fn unknown_manifest_type() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "m.txt", "id,label\n");
    assert!(err(&p).contains("unknown manifest type"));
}
