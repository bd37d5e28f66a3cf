//! torchvision-style ImageFolder trees: `root/<class>/<file>`.

use std::path::Path;

use super::{Dataset, EmbeddingSource, OpenOptions, index_labels, manifest::npy_embeddings};
use crate::error::{Error, Result};

/// File extensions treated as images.
pub const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "jpe"];

/// Opens an ImageFolder: the label is the class folder's name, the id the
/// file's path relative to root (sorted, so row order is stable for a sidecar
/// `embeddings.npy`).
pub fn open(root: &Path, opts: &OpenOptions) -> Result<Dataset> {
    let mut classes_dirs: Vec<_> = std::fs::read_dir(root)
        .map_err(|e| Error::io(root, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .collect();
    classes_dirs.sort_by_key(|e| e.file_name());
    let mut rel_paths = Vec::new();
    let mut raw_labels = Vec::new();
    for dir in classes_dirs {
        let class = dir.file_name().to_string_lossy().to_string();
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .map_err(|e| Error::io(&dir.path(), e))?
            .filter_map(|e| e.ok())
            .filter(|e| {
                let name = e.file_name().to_string_lossy().to_ascii_lowercase();
                IMAGE_EXTENSIONS
                    .iter()
                    .any(|x| name.ends_with(&format!(".{x}")))
            })
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        files.sort();
        for f in files {
            rel_paths.push(format!("{class}/{f}"));
            raw_labels.push(class.clone());
        }
    }
    if rel_paths.is_empty() {
        return Err(Error::file(
            root,
            "no manifest.csv/manifest.parquet and no images in class subfolders (root/<class>/<file>.png): nothing to open",
        ));
    }
    let (classes, labels) = index_labels(&raw_labels);
    let sidecar = root.join("embeddings.npy");
    let (embeddings, embedding_source) = match opts
        .embeddings
        .clone()
        .or(sidecar.is_file().then_some(sidecar))
    {
        Some(p) => (
            Some(npy_embeddings(&p, rel_paths.len(), root)?),
            EmbeddingSource::Npy(p),
        ),
        None => (None, EmbeddingSource::None),
    };
    Ok(Dataset {
        source: root.to_path_buf(),
        root: root.to_path_buf(),
        real_root: None,
        manifest: None,
        ids: rel_paths.clone(),
        labels,
        classes,
        paths: Some(rel_paths),
        metadata: Vec::new(),
        embeddings: embeddings.map(std::sync::Arc::new),
        embedding_source,
        warnings: Vec::new(),
    })
}
