//! Checking an export: the signature over `record.json`, the signer against
//! an allowed-signers list, the CSV/Parquet against the record, and every
//! kept file against its SHA-256. Every problem is reported in words, not
//! just the first, so a reviewer sees the whole extent of a tampering.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::allowed_signers;
use super::hash::sha256_file;
use super::record::{
    CSV_FILE, FORMAT, KeptSample, PARQUET_FILE, RECORD_FILE, Record, SIGNATURE_FILE,
};
use super::sign::{self, NAMESPACE};
use crate::dataset::{manifest, paths};
use crate::error::Error;

/// Problems of one kind shown before "… and N more".
const SHOWN: usize = 10;

/// Options for [`verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// An `allowed_signers` file (ssh-keygen format) the signer must be in.
    pub allowed_signers: Option<PathBuf>,
    /// The identity to check instead of the one the record names.
    pub identity: Option<String>,
    /// Where the dataset's files are now, if moved since export.
    pub data_root: Option<PathBuf>,
}

/// The outcome: problems (empty = all holds) and a one-line summary.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// What is wrong, one line each.
    pub problems: Vec<String>,
    /// One line describing what was checked.
    pub summary: String,
}

impl Verdict {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the export in `dir`.
pub fn verify(dir: &Path, opts: &VerifyOptions) -> Verdict {
    let mut v = Verdict::default();
    let record_path = dir.join(RECORD_FILE);
    let bytes = match std::fs::read(&record_path) {
        Ok(b) => b,
        Err(e) => {
            v.problems.push(Error::io(&record_path, e).to_string());
            return v;
        }
    };
    let record: Record = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            v.problems.push(format!(
                "{}: not a poisonlens record: {e}",
                record_path.display()
            ));
            return v;
        }
    };
    if record.format != FORMAT {
        v.problems.push(format!(
            "{}: format '{}' is not '{FORMAT}'",
            record_path.display(),
            record.format
        ));
    }

    // Signature and signer.
    let sig_path = dir.join(SIGNATURE_FILE);
    let mut signer_text = String::from("unsigned");
    match std::fs::read_to_string(&sig_path) {
        Err(_) => v.problems.push(format!(
            "{} is missing: the record is not signed",
            sig_path.display()
        )),
        Ok(armoured) => match sign::verify(&bytes, &armoured) {
            Err(e) => v.problems.push(format!("{}: {e}", sig_path.display())),
            Ok(key) => {
                let fp = sign::fingerprint(&key);
                let identity = opts.identity.clone().or_else(|| record.signer.clone());
                signer_text = format!(
                    "signed by {} ({fp})",
                    identity.as_deref().unwrap_or("an unnamed signer")
                );
                match (&opts.allowed_signers, identity) {
                    (None, _) => signer_text.push_str(", signer not checked (no --allowed-signers)"),
                    (Some(f), None) => v.problems.push(format!(
                        "the record names no signer; give --identity to check against {}",
                        f.display()
                    )),
                    (Some(f), Some(id)) => match allowed_signers::read(f) {
                        Err(e) => v.problems.push(e.to_string()),
                        Ok(list) if allowed_signers::permits(&list, &id, NAMESPACE, &key) => {
                            signer_text.push_str(", an allowed signer");
                        }
                        Ok(_) => v.problems.push(format!(
                            "signer '{id}' with key {fp} is not allowed by {} for namespace {NAMESPACE}",
                            f.display()
                        )),
                    },
                }
            }
        },
    }

    // The tables written beside the record.
    for name in [CSV_FILE, PARQUET_FILE] {
        check_table(dir, name, &record, &mut v.problems);
    }

    // Every kept file.
    let root = opts
        .data_root
        .clone()
        .unwrap_or_else(|| PathBuf::from(&record.dataset.root));
    let file_problems: Vec<String> = record
        .kept
        .par_iter()
        .filter_map(|k| check_file(&root, k))
        .collect();
    let n_files = record.kept.iter().filter(|k| k.sha256.is_some()).count();
    push_limited(&mut v.problems, file_problems);
    v.summary = format!(
        "{}: {} kept and {} excluded samples; {signer_text}; {} and {} match; {n_files} files re-hashed under {}",
        dir.display(),
        record.kept.len(),
        record.excluded.len(),
        CSV_FILE,
        PARQUET_FILE,
        root.display()
    );
    v
}

fn check_file(root: &Path, k: &KeptSample) -> Option<String> {
    let (Some(rel), Some(want)) = (&k.path, &k.sha256) else {
        return None;
    };
    let p = match paths::resolve_existing(root, rel) {
        Ok(p) => p,
        Err(_) => return Some(format!("sample '{}': file {rel} is missing", k.id)),
    };
    match sha256_file(&p) {
        Err(e) => Some(format!("sample '{}': {e}", k.id)),
        Ok(h) if &h != want => Some(format!(
            "sample '{}': file {rel} was modified after signing (SHA-256 differs)",
            k.id
        )),
        Ok(_) => None,
    }
}

/// Compares a table's hash with the record; on mismatch, says which rows differ.
fn check_table(dir: &Path, name: &str, record: &Record, problems: &mut Vec<String>) {
    let path = dir.join(name);
    let Some(want) = record.files.get(name) else {
        problems.push(format!("{RECORD_FILE} has no hash for {name}"));
        return;
    };
    let have = match sha256_file(&path) {
        Ok(h) => h,
        Err(e) => {
            problems.push(e.to_string());
            return;
        }
    };
    if &have == want {
        return;
    }
    let df = if name.ends_with(".csv") {
        manifest::read_csv(&path)
    } else {
        manifest::read_parquet(&path)
    };
    let col = |c: &str| {
        df.as_ref()
            .ok()
            .and_then(|df| manifest::strings(&path, df, c).ok())
    };
    let (Some(ids), Some(labels)) = (col("id"), col("label")) else {
        problems.push(format!(
            "{}: changed after signing (SHA-256 differs) and no longer readable as id/path/label",
            path.display()
        ));
        return;
    };
    let paths = col("path").unwrap_or_else(|| vec![None; ids.len()]);
    let signed: HashMap<&str, &KeptSample> =
        record.kept.iter().map(|k| (k.id.as_str(), k)).collect();
    let mut found = Vec::new();
    let mut seen = HashMap::new();
    for (row, id) in ids.iter().enumerate() {
        let id = id.as_deref().unwrap_or("");
        let at = format!("{}: row {} (id '{id}')", path.display(), row + 1);
        if seen.insert(id.to_string(), row).is_some() {
            found.push(format!("{at}: appears twice"));
            continue;
        }
        let Some(k) = signed.get(id) else {
            found.push(format!("{at}: not in the signed record (sample added)"));
            continue;
        };
        let label = labels[row].as_deref().unwrap_or("");
        if label != k.label {
            found.push(format!(
                "{at}: label '{label}' but the signed record says '{}'",
                k.label
            ));
        }
        let p = paths[row].as_deref().filter(|p| !p.is_empty());
        if p != k.path.as_deref() {
            found.push(format!(
                "{at}: path '{}' but the signed record says '{}'",
                p.unwrap_or(""),
                k.path.as_deref().unwrap_or("")
            ));
        }
    }
    for k in &record.kept {
        if !seen.contains_key(&k.id) {
            found.push(format!(
                "{}: sample '{}' of the signed record is missing (sample removed)",
                path.display(),
                k.id
            ));
        }
    }
    if found.is_empty() {
        found.push(format!(
            "{}: changed after signing (SHA-256 differs), though ids, paths and labels agree",
            path.display()
        ));
    }
    push_limited(problems, found);
}

fn push_limited(problems: &mut Vec<String>, mut found: Vec<String>) {
    let more = found.len().saturating_sub(SHOWN);
    found.truncate(SHOWN);
    problems.extend(found);
    if more > 0 {
        problems.push(format!("… and {more} more like these"));
    }
}
