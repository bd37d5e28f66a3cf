//! Writing a cleaned dataset: `cleaned.csv` and `cleaned.parquet` for
//! training pipelines, `record.json` with the full account, and (when a key
//! is given) `record.json.sig`. Everything is built and signed in memory,
//! written to temporary files and only then renamed into place, so a failure
//! (wrong passphrase, full or read-only disk) leaves an earlier export whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;
use ssh_key::PrivateKey;

use super::record::{
    self, CSV_FILE, DatasetRef, ExcludedSample, FORMAT, KeptSample, PARQUET_FILE, RECORD_FILE,
    Record, SIGNATURE_FILE,
};
use super::sign;
use crate::dataset::Dataset;
use crate::dataset::files::sha256_hex;
use crate::error::{Error, Result};
use crate::review::{Decision, Review};

/// Who signs, with which key.
pub struct Signer<'a> {
    /// The decrypted private key.
    pub key: &'a PrivateKey,
    /// The identity written into the record (the allowed-signers principal).
    pub identity: &'a str,
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The record as written.
    pub record: Record,
    /// The files written, in the export folder.
    pub files: Vec<PathBuf>,
    /// Whether a signature was written.
    pub signed: bool,
}

/// Builds the record of `review` over `ds`, hashing every kept file
/// (in parallel; `progress` gets 0..1). `files` is left for the caller, who
/// writes the tables.
pub fn build_record(
    ds: &Dataset,
    review: &Review,
    fingerprint: &str,
    signer: Option<&str>,
    progress: &(dyn Fn(f32) + Sync),
) -> Result<Record> {
    let summary = record::summarize(ds, review);
    let root = ds.root.canonicalize().unwrap_or_else(|_| ds.root.clone());
    let path_of = |i: usize| {
        ds.paths
            .as_ref()
            .and_then(|p| p.get(i))
            .filter(|p| !p.is_empty())
            .cloned()
    };
    let kept_idx: Vec<usize> = (0..ds.len())
        .filter(|&i| review.final_label(i, ds.labels[i]).is_some())
        .collect();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let files = ds.files();
    let hashes: Vec<std::result::Result<Option<String>, String>> = kept_idx
        .par_iter()
        .map(|&i| {
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n.is_multiple_of(256) {
                progress(n as f32 / kept_idx.len().max(1) as f32);
            }
            if path_of(i).is_none() {
                return Ok(None);
            }
            files
                .sha256(i)
                .map(Some)
                .map_err(|e| format!("'{}' ({e})", ds.ids[i]))
        })
        .collect();
    let bad: Vec<&String> = hashes.iter().filter_map(|h| h.as_ref().err()).collect();
    if !bad.is_empty() {
        let shown: Vec<&str> = bad.iter().take(5).map(|s| s.as_str()).collect();
        return Err(Error::Other(format!(
            "cannot export: {} kept sample(s) have missing or unreadable files: {}{}; exclude them or restore the files",
            bad.len(),
            shown.join("; "),
            if bad.len() > 5 { "; …" } else { "" }
        )));
    }
    let kept: Vec<KeptSample> = kept_idx
        .iter()
        .zip(hashes)
        .map(|(&i, h)| {
            let e = review.decision(i);
            let label = review.final_label(i, ds.labels[i]).unwrap_or(ds.labels[i]);
            let changed = label != ds.labels[i];
            KeptSample {
                id: ds.ids[i].clone(),
                path: path_of(i),
                label: ds.classes[label as usize].clone(),
                original_label: changed.then(|| ds.label_name(i).to_string()),
                sha256: h.unwrap_or(None),
                decision: match e.map(|e| e.decision) {
                    None => "undecided",
                    Some(Decision::Relabel(_)) => "relabel",
                    _ => "keep",
                }
                .into(),
                reviewer: e.map(|e| e.reviewer.clone()),
                reason: e.map(|e| e.reason.clone()).filter(|r| !r.is_empty()),
            }
        })
        .collect();
    let excluded = (0..ds.len())
        .filter_map(|i| {
            let e = review.decision(i)?;
            (e.decision == Decision::Exclude).then(|| ExcludedSample {
                id: ds.ids[i].clone(),
                path: path_of(i),
                label: ds.label_name(i).to_string(),
                reason: e.reason.clone(),
                reviewer: e.reviewer.clone(),
                at: record::rfc3339(e.at),
            })
        })
        .collect();
    let record = Record {
        format: FORMAT.into(),
        poisonlens_version: env!("CARGO_PKG_VERSION").into(),
        created_at: record::rfc3339(crate::review::now()),
        signer: signer.map(str::to_string),
        dataset: DatasetRef {
            source: ds.source.to_string_lossy().into(),
            root: root.to_string_lossy().into(),
            manifest: ds
                .manifest
                .as_ref()
                .map(|m| m.canonicalize().unwrap_or_else(|_| m.clone()))
                .map(|m| m.to_string_lossy().into()),
            manifest_sha256: fingerprint.to_string(),
            samples: ds.len(),
        },
        reviewers: summary.reviewers,
        classes: ds.classes.clone(),
        counts: summary.counts,
        files: BTreeMap::new(),
        kept,
        excluded,
        model: None,
    };
    Ok(record)
}

/// The kept samples as a table: `id, path, label`, then the manifest's
/// metadata columns, carried through unchanged.
pub fn kept_frame(ds: &Dataset, kept: &[KeptSample]) -> Result<DataFrame> {
    let index: std::collections::HashMap<&str, usize> = ds
        .ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let rows: Vec<usize> = kept.iter().map(|k| index[k.id.as_str()]).collect();
    let mut cols = vec![
        Column::new(
            "id".into(),
            kept.iter().map(|k| k.id.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "path".into(),
            kept.iter().map(|k| k.path.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "label".into(),
            kept.iter().map(|k| k.label.clone()).collect::<Vec<_>>(),
        ),
    ];
    for m in &ds.metadata {
        if ["id", "path", "label"].contains(&m.name.as_str()) {
            continue;
        }
        cols.push(Column::new(
            m.name.as_str().into(),
            rows.iter()
                .map(|&r| m.values[r].clone())
                .collect::<Vec<_>>(),
        ));
    }
    DataFrame::new_infer_height(cols)
        .map_err(|e| Error::Other(format!("building the cleaned table: {e}")))
}

/// Builds, signs (if `signer`) and writes the export into `out`.
pub fn export(
    ds: &Dataset,
    review: &Review,
    fingerprint: &str,
    out: &Path,
    signer: Option<Signer<'_>>,
    model: Option<record::ModelRef>,
    progress: &(dyn Fn(f32) + Sync),
) -> Result<Exported> {
    for name in [CSV_FILE, PARQUET_FILE, RECORD_FILE, SIGNATURE_FILE] {
        ds.refuse_as_output(&out.join(name))?;
    }
    let mut record = build_record(
        ds,
        review,
        fingerprint,
        signer.as_ref().map(|s| s.identity),
        progress,
    )?;
    record.model = model;
    let mut df = kept_frame(ds, &record.kept)?;
    let mut csv = Vec::new();
    CsvWriter::new(&mut csv)
        .finish(&mut df)
        .map_err(|e| Error::Other(format!("writing {CSV_FILE}: {e}")))?;
    let mut parquet = Vec::new();
    ParquetWriter::new(&mut parquet)
        .finish(&mut df)
        .map_err(|e| Error::Other(format!("writing {PARQUET_FILE}: {e}")))?;
    record.files.insert(CSV_FILE.into(), sha256_hex(&csv));
    record
        .files
        .insert(PARQUET_FILE.into(), sha256_hex(&parquet));
    let mut json = serde_json::to_vec_pretty(&record)
        .map_err(|e| Error::Other(format!("encoding {RECORD_FILE}: {e}")))?;
    json.push(b'\n');
    let sig = signer
        .as_ref()
        .map(|s| sign::sign(s.key, &json))
        .transpose()?;

    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut parts: Vec<(&str, &[u8])> = vec![
        (CSV_FILE, &csv),
        (PARQUET_FILE, &parquet),
        (RECORD_FILE, &json),
    ];
    if let Some(s) = &sig {
        parts.push((SIGNATURE_FILE, s.as_bytes()));
    }
    write_all_or_nothing(out, &parts)?;
    if sig.is_none() {
        // An older signature would not match the new record.
        let stale = out.join(SIGNATURE_FILE);
        if stale.exists() {
            std::fs::remove_file(&stale).map_err(|e| Error::io(&stale, e))?;
        }
    }
    progress(1.0);
    Ok(Exported {
        files: parts.iter().map(|(n, _)| out.join(n)).collect(),
        record,
        signed: sig.is_some(),
    })
}

/// Writes every part to a temporary file (fsync'd); only when all are
/// written are they renamed over the old ones. On failure the temporary
/// files are removed and the old export is untouched.
fn write_all_or_nothing(dir: &Path, parts: &[(&str, &[u8])]) -> Result<()> {
    let tmp = |name: &str| dir.join(format!(".{name}.tmp"));
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        use std::io::Write;
        let p = tmp(name);
        let mut f = std::fs::File::create(&p).map_err(|e| Error::io(&p, e))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(&p, e))
    };
    for (i, (name, bytes)) in parts.iter().enumerate() {
        if let Err(e) = write(name, bytes) {
            for (n, _) in &parts[..=i] {
                let _ = std::fs::remove_file(tmp(n));
            }
            return Err(e);
        }
    }
    for (name, _) in parts {
        let dst = dir.join(name);
        std::fs::rename(tmp(name), &dst).map_err(|e| Error::io(&dst, e))?;
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
