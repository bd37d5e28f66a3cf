//! Opening datasets: one [`Dataset`] type whatever the source (CSV or Parquet
//! manifest, ImageFolder tree), so detectors, CLI and workbench never care
//! where the data came from.

#[cfg(target_os = "linux")]
pub mod beneath;
pub mod files;
pub mod fingerprint;
pub mod folder;
mod imagefolder;
pub mod images;
mod inputs;
pub(crate) mod manifest;
pub mod model;
pub mod npy;
mod parquet_footer;
pub mod paths;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::linalg::Matrix;

/// Where a dataset's embeddings came from; shown to users so they know what the
/// detectors looked at.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbeddingSource {
    /// A `.npy` file (sidecar or `--embeddings`).
    Npy(PathBuf),
    /// A Parquet list column named `embedding`.
    ParquetColumn,
    /// Numeric manifest columns `emb_0 … emb_{D-1}`.
    Columns(usize),
    /// None given: features are computed from pixels when a scan needs them.
    None,
}

/// A metadata column carried through unchanged (shown in the sample view, kept in exports).
#[derive(Debug, Clone)]
pub struct MetaColumn {
    /// Column name as in the manifest.
    pub name: String,
    /// One value per sample, rendered as text (empty for null).
    pub values: Vec<String>,
}

/// A dataset opened from any supported source.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The file or folder the user opened (used in messages).
    pub source: PathBuf,
    /// The folder that sample paths are relative to; nothing outside it is read.
    pub root: PathBuf,
    /// `root`'s real path (symlinks resolved), taken once when the dataset
    /// is opened; None for a dataset held in memory or a root that could
    /// not be resolved (each file's check then resolves `root` itself).
    pub real_root: Option<PathBuf>,
    /// The manifest file, if any (ImageFolder datasets have none).
    pub manifest: Option<PathBuf>,
    /// Sample ids, unique, as text.
    pub ids: Vec<String>,
    /// Given label of each sample, as an index into `classes`.
    pub labels: Vec<u32>,
    /// Class names, sorted.
    pub classes: Vec<String>,
    /// Relative path of each sample's file, if the dataset has files.
    pub paths: Option<Vec<String>>,
    /// Other manifest columns, kept for display and export.
    pub metadata: Vec<MetaColumn>,
    /// N×D embeddings, if the dataset has any; shared (not copied) with the
    /// scan's features and report when no reduction is needed.
    pub embeddings: Option<std::sync::Arc<Matrix>>,
    /// Where `embeddings` came from.
    pub embedding_source: EmbeddingSource,
    /// Non-fatal findings at open time (e.g. a class with a single sample).
    pub warnings: Vec<String>,
}

/// Options for [`Dataset::open`].
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Embeddings file that overrides any sidecar or column.
    pub embeddings: Option<PathBuf>,
}

impl Dataset {
    /// Opens a manifest file, a folder holding `manifest.parquet`/`manifest.csv`,
    /// or an ImageFolder root.
    pub fn open(path: &Path, opts: &OpenOptions) -> Result<Dataset> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let mut ds = if meta.is_dir() {
            let parquet = path.join("manifest.parquet");
            let csv = path.join("manifest.csv");
            if parquet.is_file() {
                manifest::open(&parquet, opts)?
            } else if csv.is_file() {
                manifest::open(&csv, opts)?
            } else {
                imagefolder::open(path, opts)?
            }
        } else {
            manifest::open(path, opts)?
        };
        ds.source = path.to_path_buf();
        ds.real_root = ds.root.canonicalize().ok();
        ds.check_class_sizes();
        Ok(ds)
    }

    /// A dataset held only in memory (no files): for library users who already
    /// have embeddings and labels, and for benchmarks and tests.
    pub fn in_memory(
        ids: Vec<String>,
        labels: Vec<u32>,
        classes: Vec<String>,
        embeddings: Matrix,
    ) -> Dataset {
        Dataset {
            source: PathBuf::from("<memory>"),
            root: PathBuf::from("."),
            real_root: None,
            manifest: None,
            ids,
            labels,
            classes,
            paths: None,
            metadata: Vec::new(),
            embeddings: Some(std::sync::Arc::new(embeddings)),
            embedding_source: EmbeddingSource::None,
            warnings: Vec::new(),
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the dataset has no samples (never true for an opened dataset).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Class name of sample `i`'s given label.
    pub fn label_name(&self, i: usize) -> &str {
        &self.classes[self.labels[i] as usize]
    }

    /// Absolute, checked path of sample `i`'s file; refuses anything that
    /// resolves outside the dataset folder (symlinks included).
    pub fn file_path(&self, i: usize) -> Result<PathBuf> {
        self.files().path(i)
    }

    /// Checked paths of many samples' files in one pass (every image of a
    /// scan), each folder resolved once for the pass
    /// ([`folder::FolderFiles`]); make one per pass, not one to keep.
    pub fn files(&self) -> SampleFiles<'_> {
        SampleFiles {
            ds: self,
            folder: folder::FolderFiles::new(&self.root, self.real_root.as_deref()),
        }
    }

    /// Per-class sample counts, indexed like `classes`.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.classes.len()];
        for &l in &self.labels {
            c[l as usize] += 1;
        }
        c
    }

    fn check_class_sizes(&mut self) {
        let counts = self.class_counts();
        for (k, &n) in counts.iter().enumerate() {
            if n == 1 {
                let i = self
                    .labels
                    .iter()
                    .position(|&l| l as usize == k)
                    .unwrap_or(0);
                self.warnings.push(format!(
                    "class '{}' has a single sample (row {}, id '{}'): per-class detectors skip it",
                    self.classes[k],
                    i + 1,
                    self.ids[i]
                ));
            }
        }
    }
}

/// Builds the sorted class list and label indices from label strings.
/// Labels that all parse as integers sort numerically, others alphabetically.
pub(crate) fn index_labels(raw: &[String]) -> (Vec<String>, Vec<u32>) {
    let mut classes: Vec<String> = raw.to_vec();
    classes.sort();
    classes.dedup();
    if classes.iter().all(|c| c.parse::<i64>().is_ok()) {
        classes.sort_by_key(|c| c.parse::<i64>().unwrap_or(0));
    }
    let index: HashMap<&str, u32> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as u32))
        .collect();
    let labels = raw.iter().map(|l| index[l.as_str()]).collect();
    (classes, labels)
}

/// Checks ids are present and unique; names the row of the first offence.
pub(crate) fn check_ids(file: &Path, column: &str, ids: &[String]) -> Result<()> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        if id.trim().is_empty() {
            return Err(Error::cell(file, i + 1, column, "missing id"));
        }
        if let Some(first) = seen.insert(id.as_str(), i + 1) {
            return Err(Error::cell(
                file,
                i + 1,
                column,
                format!("duplicate id '{id}' (first seen at row {first})"),
            ));
        }
    }
    Ok(())
}

/// Checks embeddings can be compared at all: at least one dimension, and
/// every value finite and small enough that a squared distance between two
/// samples cannot overflow (one value of 3e38 would make every distance to
/// its sample infinite, and the samples "duplicates" of each other). Names
/// the row and the column.
pub(crate) fn check_embedding_values(
    file: &Path,
    m: &Matrix,
    col_name: impl Fn(usize) -> String,
) -> Result<()> {
    if m.cols == 0 && m.rows > 0 {
        return Err(Error::file(
            file,
            "embeddings have zero dimensions per sample",
        ));
    }
    let limit = (f32::MAX / (4.0 * m.cols.max(1) as f32)).sqrt();
    for r in 0..m.rows {
        for (c, v) in m.row(r).iter().enumerate() {
            if !v.is_finite() {
                return Err(Error::cell(
                    file,
                    r + 1,
                    &col_name(c),
                    format!("embedding value {v} is not a finite number"),
                ));
            }
            if v.abs() > limit {
                return Err(Error::cell(
                    file,
                    r + 1,
                    &col_name(c),
                    format!(
                        "embedding value {v:e} is too large to measure distances with ({} dimensions allow up to {limit:.1e}); rescale the embeddings",
                        m.cols
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checked paths of a dataset's files for one pass ([`Dataset::files`]):
/// each sample's path through [`folder::FolderFiles`].
pub struct SampleFiles<'a> {
    ds: &'a Dataset,
    folder: folder::FolderFiles<'a>,
}

impl SampleFiles<'_> {
    /// Absolute, checked path of sample `i`'s file, as
    /// [`Dataset::file_path`] gives it.
    pub fn path(&self, i: usize) -> Result<PathBuf> {
        self.folder.path(self.relative(i)?)
    }

    /// Sample `i`'s path as the manifest gives it.
    fn relative(&self, i: usize) -> Result<&str> {
        let ds = self.ds;
        ds.paths
            .as_ref()
            .and_then(|p| p.get(i))
            .filter(|p| !p.is_empty())
            .map(String::as_str)
            .ok_or_else(|| Error::Other(format!("sample '{}' has no file", ds.ids[i])))
    }

    /// Opens sample `i`'s file, a regular file inside the dataset folder
    /// ([`folder::FolderFiles::open`]).
    pub fn open(&self, i: usize) -> Result<(PathBuf, std::fs::File, u64)> {
        self.folder.open(self.relative(i)?)
    }

    /// Sample `i`'s file whole, at most `max` bytes (`what` names it in
    /// messages), with its path.
    pub fn read(&self, i: usize, max: u64, what: &str) -> Result<(PathBuf, Vec<u8>)> {
        self.folder.read(self.relative(i)?, max, what)
    }

    /// SHA-256 (hex) of sample `i`'s file.
    pub fn sha256(&self, i: usize) -> Result<String> {
        self.folder.sha256(self.relative(i)?)
    }
}
