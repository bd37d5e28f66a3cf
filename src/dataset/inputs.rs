//! A dataset's own files are never an output. `scan DS --out DS/manifest.csv`
//! or `export DIR/cleaned.csv --out DIR` would otherwise replace the very
//! data being reviewed with a report of it.

use std::path::{Path, PathBuf};

use super::{Dataset, EmbeddingSource};
use crate::error::{Error, Result};

impl Dataset {
    /// Refuses `target` as a file to write when it is (or links to) one of
    /// this dataset's inputs: its manifest, its embeddings, a sample's file,
    /// or a review store.
    pub fn refuse_as_output(&self, target: &Path) -> Result<()> {
        let Some(t) = resolved(target) else {
            return Ok(());
        };
        let refuse = |what: &str| {
            Err(Error::file(
                target,
                format!("is {what} of the dataset being read; choose another place to write"),
            ))
        };
        let name = t
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if name.ends_with(".review.sqlite")
            || name.ends_with(".review.sqlite-wal")
            || name.ends_with(".review.sqlite-shm")
        {
            return refuse("a review store");
        }
        if self.manifest.as_deref().and_then(resolved).as_ref() == Some(&t) {
            return refuse("the manifest");
        }
        if let EmbeddingSource::Npy(p) = &self.embedding_source
            && resolved(p).as_ref() == Some(&t)
        {
            return refuse("the embeddings file");
        }
        let root = resolved(&self.root);
        let is_sample = |rel: &String| {
            Path::new(rel).file_name().map(|n| n.to_string_lossy()) == Some(name.as_str().into())
                && root
                    .as_ref()
                    .and_then(|r| resolved(&r.join(rel)))
                    .is_some_and(|p| p == t)
        };
        if self
            .paths
            .as_ref()
            .is_some_and(|ps| ps.iter().any(is_sample))
        {
            return refuse("a sample's file");
        }
        Ok(())
    }
}

/// The canonical path of `p`, or of its folder joined with its name when
/// `p` does not exist yet; None when even the folder cannot be resolved.
fn resolved(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Some(c);
    }
    let parent = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Some(parent.canonicalize().ok()?.join(p.file_name()?))
}
