//! The cleaned record (`record.json`): the full account a reviewer signs —
//! what is kept (with final labels and file hashes), what is excluded and
//! why, who decided, and which dataset it all refers to.

use std::collections::BTreeMap;

use crate::dataset::Dataset;
use crate::review::{Decision, Review};

/// `format` value of records this version writes and reads.
pub const FORMAT: &str = "poisonlens-cleaned-manifest/1";

/// File names inside an export folder.
pub const RECORD_FILE: &str = "record.json";
/// The signature beside the record (the name `ssh-keygen -Y sign` gives it).
pub const SIGNATURE_FILE: &str = "record.json.sig";
/// Kept samples for training pipelines, as CSV.
pub const CSV_FILE: &str = "cleaned.csv";
/// Kept samples for training pipelines, as Parquet.
pub const PARQUET_FILE: &str = "cleaned.parquet";

/// The signed record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// Always [`FORMAT`].
    pub format: String,
    /// The poisonlens that wrote it.
    pub poisonlens_version: String,
    /// When (RFC 3339, UTC).
    pub created_at: String,
    /// The identity (allowed-signers principal) of the reviewer who signed,
    /// if signed.
    pub signer: Option<String>,
    /// The dataset it refers to.
    pub dataset: DatasetRef,
    /// Everyone whose decisions the record contains.
    pub reviewers: Vec<String>,
    /// Class names.
    pub classes: Vec<String>,
    /// Counts before and after.
    pub counts: Counts,
    /// SHA-256 of each data file written beside the record.
    pub files: BTreeMap<String, String>,
    /// Samples in the cleaned dataset.
    pub kept: Vec<KeptSample>,
    /// Samples left out.
    pub excluded: Vec<ExcludedSample>,
    /// The model whose activations the scan used, when one was (absent in
    /// records of scans on given embeddings, and in older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
}

/// The model the review's scan embedded with: which file (by hash), which
/// layer, and how images were prepared, so the evidence can be recomputed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelRef {
    /// The `.onnx` file as given.
    pub file: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// The tensor whose values were the embeddings.
    pub layer: String,
    /// Input layout and size, pixel scale, mean and std, in words.
    pub preparation: String,
}

impl ModelRef {
    /// What a record says of `m`.
    pub fn of(m: &crate::dataset::model::Model) -> Self {
        ModelRef {
            file: m.path().to_string_lossy().into(),
            sha256: m.sha256.clone(),
            layer: m.layer.clone(),
            preparation: m.preparation(),
        }
    }
}

/// Which dataset, and where its files are.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DatasetRef {
    /// What the reviewer opened.
    pub source: String,
    /// Absolute folder sample paths are relative to (verify re-hashes there
    /// unless told `--data-root`).
    pub root: String,
    /// The manifest file, if the dataset has one.
    pub manifest: Option<String>,
    /// SHA-256 of the manifest file (for an ImageFolder, which has none, of
    /// its sorted id/label listing).
    pub manifest_sha256: String,
    /// Number of samples before cleaning.
    pub samples: usize,
}

/// Counts per class before and after, and overall.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Samples per given label.
    pub before: BTreeMap<String, usize>,
    /// Kept samples per final label.
    pub after: BTreeMap<String, usize>,
    /// Kept samples.
    pub kept: usize,
    /// Excluded samples.
    pub excluded: usize,
    /// Kept with a new label.
    pub relabelled: usize,
    /// Kept without anyone deciding (no decision recorded).
    pub undecided: usize,
}

/// A sample of the cleaned dataset.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KeptSample {
    /// Sample id.
    pub id: String,
    /// File, relative to the dataset root.
    pub path: Option<String>,
    /// Final label.
    pub label: String,
    /// The given label, when a reviewer changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_label: Option<String>,
    /// SHA-256 of the file.
    pub sha256: Option<String>,
    /// `keep`, `relabel` or `undecided`.
    pub decision: String,
    /// Who decided (absent when undecided).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
    /// Why (absent when none was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A sample left out, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExcludedSample {
    /// Sample id.
    pub id: String,
    /// File, relative to the dataset root.
    pub path: Option<String>,
    /// The given label.
    pub label: String,
    /// Why.
    pub reason: String,
    /// Who.
    pub reviewer: String,
    /// When (RFC 3339, UTC).
    pub at: String,
}

/// What the Sign-off dialog and `export` show before anything is written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Counts before/after.
    pub counts: Counts,
    /// Everyone with a decision in the review.
    pub reviewers: Vec<String>,
}

/// Counts and reviewers of `review` over `ds`; cheap (no file reads).
pub fn summarize(ds: &Dataset, review: &Review) -> Summary {
    let mut counts = Counts::default();
    let mut reviewers = std::collections::BTreeSet::new();
    for c in &ds.classes {
        counts.before.insert(c.clone(), 0);
        counts.after.insert(c.clone(), 0);
    }
    for i in 0..ds.len() {
        *counts
            .before
            .entry(ds.label_name(i).to_string())
            .or_default() += 1;
        let e = review.decision(i);
        if let Some(e) = e {
            reviewers.insert(e.reviewer.clone());
        }
        match review.final_label(i, ds.labels[i]) {
            None => counts.excluded += 1,
            Some(l) => {
                counts.kept += 1;
                *counts
                    .after
                    .entry(ds.classes[l as usize].clone())
                    .or_default() += 1;
                match e.map(|e| e.decision) {
                    Some(Decision::Relabel(l2)) if l2 != ds.labels[i] => counts.relabelled += 1,
                    None => counts.undecided += 1,
                    _ => {}
                }
            }
        }
    }
    Summary {
        counts,
        reviewers: reviewers.into_iter().collect(),
    }
}

/// The summary as a few lines of text (CLI output, dialog, tests).
pub fn summary_text(s: &Summary) -> String {
    use std::fmt::Write;
    let c = &s.counts;
    let mut t = format!(
        "{} kept ({} relabelled, {} without a decision), {} excluded\n",
        c.kept, c.relabelled, c.undecided, c.excluded
    );
    let w = c.before.keys().map(String::len).max().unwrap_or(5).max(5);
    let _ = writeln!(t, "{:<w$}  {:>7}  {:>7}", "class", "before", "after");
    for (k, b) in &c.before {
        let a = c.after.get(k).copied().unwrap_or(0);
        let _ = writeln!(t, "{k:<w$}  {b:>7}  {a:>7}");
    }
    if !s.reviewers.is_empty() {
        let _ = writeln!(t, "reviewers: {}", s.reviewers.join(", "));
    }
    t
}

/// RFC 3339 time of a Unix timestamp.
pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}
