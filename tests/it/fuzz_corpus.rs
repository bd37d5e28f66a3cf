//! Every input the fuzzers kept (`fuzz/corpus/<target>/`) replayed through
//! the very calls the fuzz targets make (`fuzz/src/lib.rs`, included here)
//! on the stable toolchain: each gives a value or an error, never a panic.
//! `cargo fuzz` (nightly) grows the corpus; this keeps what it found checked
//! on every CI run.

use crate::feed;

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

#[test]
fn npy_corpus() {
    corpus("npy").iter().for_each(|d| feed::npy(d));
}

#[test]
fn image_corpus() {
    corpus("image").iter().for_each(|d| feed::image(d));
}

#[test]
fn manifest_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    corpus("manifest")
        .iter()
        .for_each(|d| feed::manifest(tmp.path(), d));
}

#[test]
fn record_corpus() {
    corpus("record").iter().for_each(|d| feed::record(d));
}
