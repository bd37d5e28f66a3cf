//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod signed;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The bundled sample dataset.
pub fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sample_data")
}

/// A private copy of the bundled sample (manifest, embeddings, images), so a
/// test can change files and keep its review store beside them.
pub fn sample_copy(dir: &Path) -> PathBuf {
    let to = dir.join("data");
    copy_dir(&sample(), &to);
    for f in [
        "manifest.review.sqlite",
        "manifest.review.sqlite-wal",
        "manifest.review.sqlite-shm",
        "manifest.review.scan",
    ] {
        let _ = std::fs::remove_file(to.join(f));
    }
    to
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// Runs the poisonlens binary.
pub fn poisonlens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_poisonlens"))
        .args(args)
        .env_remove("POISONLENS_PASSPHRASE")
        .output()
        .expect("run poisonlens")
}

/// Runs it and insists on success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let o = poisonlens(args);
    assert!(
        o.status.success(),
        "poisonlens {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs it and insists on failure; returns stderr + stdout.
pub fn fails(args: &[&str]) -> String {
    let o = poisonlens(args);
    assert!(
        !o.status.success(),
        "poisonlens {args:?} should have failed:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    )
}

/// Path as &str for argument lists.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Whether Debian's ssh-keygen is installed (CI installs it).
pub fn have_ssh_keygen() -> bool {
    Command::new("ssh-keygen").arg("-?").output().is_ok()
}
