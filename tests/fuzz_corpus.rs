//! Every input the fuzzers kept (`fuzz/corpus/<target>/`) replayed through
//! the same parsers on the stable toolchain: each gives a value or an error,
//! never a panic. `cargo fuzz` (nightly) grows the corpus; this keeps what it
//! found checked on every CI run.

use std::path::{Path, PathBuf};

use poisonlens::dataset::{Dataset, OpenOptions, images, npy};
use poisonlens::manifest::{allowed_signers, record::Record, sign};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
}

#[test]
fn npy_corpus() {
    for f in corpus("npy") {
        let _ = npy::parse_npy(&f, &std::fs::read(&f).unwrap());
    }
}

#[test]
fn image_corpus() {
    for f in corpus("image") {
        let _ = images::decode_bytes(&f, &std::fs::read(&f).unwrap());
    }
}

#[test]
fn manifest_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    for f in corpus("manifest") {
        let data = std::fs::read(&f).unwrap();
        let name = if data.starts_with(b"PAR1") {
            "m.parquet"
        } else {
            "m.csv"
        };
        let p = tmp.path().join(name);
        std::fs::write(&p, &data).unwrap();
        let _ = Dataset::open(&p, &OpenOptions::default());
    }
}

#[test]
fn record_corpus() {
    for f in corpus("record") {
        let data = std::fs::read(&f).unwrap();
        let (text, record) = match data.iter().position(|&b| b == 0xff) {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (&data[..], &[][..]),
        };
        let text = String::from_utf8_lossy(text);
        let list = allowed_signers::parse(&text);
        let _ = sign::verify(record, &text);
        let _ = serde_json::from_slice::<Record>(record);
        if let Some(s) = list.signers.first() {
            let _ = list.check("ana@example.org", sign::NAMESPACE, &s.key, 1_700_000_000);
        }
    }
}
