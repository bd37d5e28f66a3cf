//! What each fuzz target feeds to poisonlens, in one place: the cargo-fuzz
//! targets call these, and `tests/it/fuzz_corpus.rs` (stable toolchain)
//! includes this file to replay every corpus input through the same calls.
//! Each must return normally whatever the bytes: a value or an error,
//! never a panic, a hang or an abort.

use std::path::{Path, PathBuf};

use poisonlens::dataset::{Dataset, OpenOptions, images, npy};
use poisonlens::manifest::{allowed_signers, record::Record, sign};

/// `.npy` bytes to the embeddings parser.
pub fn npy(data: &[u8]) {
    let _ = npy::parse_npy(Path::new("fuzz.npy"), data);
}

/// Image bytes to the decoder (header check, pixel limit).
pub fn image(data: &[u8]) {
    let _ = images::decode_bytes(Path::new("fuzz.img"), data);
}

/// CSV bytes (Parquet when they start with `PAR1`) written into `dir` and
/// opened as a dataset.
pub fn manifest(dir: &Path, data: &[u8]) {
    let name = if data.starts_with(b"PAR1") {
        "m.parquet"
    } else {
        "m.csv"
    };
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, data).expect("write input");
    let _ = Dataset::open(&path, &OpenOptions::default());
}

/// Split at the first 0xFF byte into signature/allowed-signers text and
/// record bytes; each to its parser, and the signer check on the first key.
pub fn record(data: &[u8]) {
    let (text, record) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(text);
    let list = allowed_signers::parse(&text);
    let _ = sign::verify(record, &text);
    let _ = serde_json::from_slice::<Record>(record);
    if let Some(s) = list.signers.first() {
        let _ = list.check("ana@example.org", sign::NAMESPACE, &s.key, 1_700_000_000);
    }
}
