//! Where a dataset's review store lives: beside the dataset by default (so it
//! travels with the data and every reviewer of that copy sees one history),
//! or in `--state-dir` when asked. Never anywhere else on its own: a review
//! silently started elsewhere is a fork, and an export from either side
//! would ignore the other's decisions. So when the store beside the dataset
//! exists but cannot be written, it is opened **read-only** (its decisions
//! shown and exported, new ones refused with a pointer to `--state-dir`);
//! when the folder cannot take a new store, the review is empty and
//! read-only until a `--state-dir` is given.

use std::path::{Path, PathBuf};

use crate::dataset::Dataset;
use crate::dataset::files::sha256_hex;
use crate::error::{Error, Result};

/// The chosen store file, whether it may be written, and a note for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// The SQLite file.
    pub path: PathBuf,
    /// Why decisions cannot be recorded here, if they cannot.
    pub read_only: Option<String>,
    /// What the user should know about where the review is kept.
    pub note: Option<String>,
    /// The store beside the dataset, when `--state-dir` puts this one
    /// elsewhere: a new store there starts as a copy of it, so continuing a
    /// review elsewhere never drops its decisions.
    pub seed: Option<PathBuf>,
}

/// Picks the store for `ds`: `<manifest stem>.review.sqlite` beside the
/// manifest (or `poisonlens.review.sqlite` in an ImageFolder root), or a
/// file named after the dataset's location inside `state_dir` when given.
/// Fails when something that is not a file sits where the store goes.
pub fn locate(ds: &Dataset, state_dir: Option<&Path>) -> Result<Location> {
    let (dir, stem) = match &ds.manifest {
        Some(m) => (
            m.parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            m.file_stem()
                .map_or_else(|| "manifest".into(), |s| s.to_string_lossy().to_string()),
        ),
        None => (ds.root.clone(), "poisonlens".to_string()),
    };
    let beside = dir.join(format!("{stem}.review.sqlite"));
    if let Some(d) = state_dir {
        let path = d.join(elsewhere_name(ds, &stem));
        refuse_non_file(&path)?;
        let seed = (!path.exists() && beside.is_file()).then(|| beside.clone());
        return Ok(Location {
            note: seed.as_ref().map(|b| {
                format!(
                    "this review continues in {} from a copy of {}",
                    path.display(),
                    b.display()
                )
            }),
            path,
            read_only: None,
            seed,
        });
    }
    refuse_non_file(&beside)?;
    let read_only = if beside.exists() {
        (!file_writable(&beside) || !dir_writable(&dir)).then(|| {
            format!(
                "{} cannot be written (read-only folder or file)",
                beside.display()
            )
        })
    } else {
        (!dir_writable(&dir)).then(|| {
            format!(
                "{} is not writable, so no review can be kept beside the dataset",
                dir.display()
            )
        })
    };
    Ok(Location {
        note: read_only.as_ref().map(|why| {
            format!(
                "{why}: the review is read-only; give --state-dir DIR to record decisions there"
            )
        }),
        path: beside,
        read_only,
        seed: None,
    })
}

/// Refuses a folder, FIFO or device where the store file goes.
fn refuse_non_file(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.is_file() => Err(Error::file(
            path,
            "is where the review store goes, but it is not a regular file; move it away or give --state-dir DIR",
        )),
        _ => Ok(()),
    }
}

/// A name unique to the dataset's location, for stores kept away from it.
fn elsewhere_name(ds: &Dataset, stem: &str) -> String {
    let key = ds
        .manifest
        .as_deref()
        .unwrap_or(&ds.root)
        .canonicalize()
        .unwrap_or_else(|_| ds.source.clone());
    let h = sha256_hex(key.to_string_lossy().as_bytes());
    let folder = key
        .parent()
        .and_then(|p| p.file_name())
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    format!("{folder}-{stem}-{}.review.sqlite", &h[..12])
}

/// Whether the existing store file can be opened for writing.
fn file_writable(store: &Path) -> bool {
    std::fs::OpenOptions::new().append(true).open(store).is_ok()
}

/// Whether files can be created in `dir` (SQLite's WAL and lock files).
fn dir_writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".poisonlens-write-test-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}
