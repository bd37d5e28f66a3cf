//! A reviewed, exported and signed copy of the sample dataset: the fixture
//! of the sign-off and verification tests.

use std::path::PathBuf;

use super::{ok, s, sample_copy};
use poisonlens::manifest::record::Record;

/// A reviewed, exported and signed copy of the sample, with its key and an
/// allowed_signers file naming the signer.
pub struct Signed {
    pub _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub data: PathBuf,
    pub out: PathBuf,
    pub key: PathBuf,
    pub allowed: PathBuf,
}

pub fn signed() -> Signed {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let data = sample_copy(&dir);
    let d = s(&data);
    ok(&[
        "review",
        d,
        "--exclude",
        "000010",
        "000011",
        "--reason",
        "trigger patch",
        "--reviewer",
        "ana",
    ]);
    ok(&[
        "review",
        d,
        "--relabel",
        "000012=Bag",
        "--keep",
        "000013",
        "--reviewer",
        "bob",
    ]);
    let key = dir.join("ana_key");
    let out = ok(&[
        "keygen",
        "--out",
        s(&key),
        "--identity",
        "ana@example.org",
        "--no-passphrase",
    ]);
    let line = out
        .lines()
        .find(|l| l.starts_with("ana@example.org "))
        .expect("keygen prints an allowed_signers line")
        .to_string();
    let allowed = dir.join("allowed_signers");
    std::fs::write(&allowed, format!("{line}\n")).unwrap();
    let exp = dir.join("export");
    ok(&[
        "export",
        d,
        "--out",
        s(&exp),
        "--sign",
        s(&key),
        "--identity",
        "ana@example.org",
    ]);
    Signed {
        _tmp: tmp,
        dir,
        data,
        out: exp,
        key,
        allowed,
    }
}

pub fn verify_args(t: &Signed) -> Vec<&str> {
    vec!["verify", s(&t.out), "--allowed-signers", s(&t.allowed)]
}

pub fn record(t: &Signed) -> Record {
    serde_json::from_slice(&std::fs::read(t.out.join("record.json")).unwrap()).unwrap()
}
