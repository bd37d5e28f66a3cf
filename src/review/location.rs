//! Where a dataset's review store lives: beside the dataset by default (so it
//! travels with the data), in `--state-dir` when asked, and in the user's
//! state folder when the dataset's folder is read-only.

use std::path::{Path, PathBuf};

use crate::dataset::Dataset;
use crate::manifest::hash::sha256_hex;

/// The chosen store file, and a note for the user when it is not the default.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// The SQLite file.
    pub path: PathBuf,
    /// Why the store is not beside the dataset, if it is not.
    pub note: Option<String>,
}

/// Picks the store for `ds`: `<manifest stem>.review.sqlite` beside the
/// manifest (or `poisonlens.review.sqlite` in an ImageFolder root); inside
/// `state_dir` when given; in `$XDG_STATE_HOME/poisonlens/reviews` (or
/// `~/.local/state/...`) when the dataset's folder cannot be written.
pub fn locate(ds: &Dataset, state_dir: Option<&Path>) -> Location {
    let (dir, stem) = match &ds.manifest {
        Some(m) => (
            m.parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            m.file_stem()
                .map_or_else(|| "manifest".into(), |s| s.to_string_lossy().to_string()),
        ),
        None => (ds.root.clone(), "poisonlens".to_string()),
    };
    if let Some(d) = state_dir {
        return Location {
            path: d.join(elsewhere_name(ds, &stem)),
            note: None,
        };
    }
    let beside = dir.join(format!("{stem}.review.sqlite"));
    if writable(&dir, &beside) {
        return Location {
            path: beside,
            note: None,
        };
    }
    let path = user_state_dir().join(elsewhere_name(ds, &stem));
    Location {
        note: Some(format!(
            "{} is not writable, so this review is kept in {} (use --state-dir to choose)",
            dir.display(),
            path.display()
        )),
        path,
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

/// Whether we could create or update the store (and its WAL files) here.
fn writable(dir: &Path, store: &Path) -> bool {
    if store.exists()
        && std::fs::OpenOptions::new()
            .append(true)
            .open(store)
            .is_err()
    {
        return false;
    }
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

fn user_state_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("poisonlens").join("reviews")
}
