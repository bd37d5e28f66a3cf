//! Checking an export: the signature over `record.json`, the signer against
//! an allowed-signers list, the CSV/Parquet against the record, and every
//! kept file against its SHA-256. Every problem is reported in words, not
//! just the first, so a reviewer sees the whole extent of a tampering.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::allowed_signers;
use super::record::{
    CSV_FILE, FORMAT, KeptSample, PARQUET_FILE, RECORD_FILE, Record, SIGNATURE_FILE,
};
use super::sign::{self, NAMESPACE};
use crate::dataset::files::sha256_file;
use crate::dataset::folder::FolderFiles;
use crate::dataset::{files, manifest};

/// Problems of one kind shown before "… and N more".
const SHOWN: usize = 10;

/// Largest `record.json` read (a million samples take about 300 MB).
const MAX_RECORD_BYTES: u64 = 4 << 30;
/// Largest signature file read.
const MAX_SIGNATURE_BYTES: u64 = 1 << 20;

/// Options for [`verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// An `allowed_signers` file (ssh-keygen format) the signer must be in.
    pub allowed_signers: Option<PathBuf>,
    /// The identity to check instead of the one the record names.
    pub identity: Option<String>,
    /// Where the dataset's files are now, if moved since export.
    pub data_root: Option<PathBuf>,
    /// Accept a valid signature by any key when no `allowed_signers` is
    /// given (the export is checked intact, the signer stays unverified).
    pub accept_any_signer: bool,
}

/// The outcome: problems (empty = all holds) and a one-line summary.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// What is wrong, one line each; long runs of one kind are cut to
    /// `SHOWN` lines and a line saying how many more there are.
    pub problems: Vec<String>,
    /// How many problems were found (shown or not).
    pub total: usize,
    /// Things worth knowing that are not problems (e.g. allowed-signers
    /// lines skipped as unreadable).
    pub notes: Vec<String>,
    /// One line describing what was checked.
    pub summary: String,
}

impl Verdict {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.total == 0
    }

    fn problem(&mut self, p: String) {
        self.problems.push(p);
        self.total += 1;
    }

    /// Adds problems of one kind, showing at most [`SHOWN`].
    fn problems_of_a_kind(&mut self, mut found: Vec<String>) {
        self.total += found.len();
        let more = found.len().saturating_sub(SHOWN);
        found.truncate(SHOWN);
        self.problems.extend(found);
        if more > 0 {
            self.problems.push(format!("… and {more} more like these"));
        }
    }
}

/// Verifies the export in `dir`. The signature and the signer are checked
/// first; only when both hold is anything the record names read (tables,
/// then the kept files, each only if it is a regular file under the
/// dataset root) — an unsigned or untrusted record cannot make poisonlens
/// open `/dev/zero` or answer whether a guessed file hash is right.
pub fn verify(dir: &Path, opts: &VerifyOptions) -> Verdict {
    let mut v = Verdict::default();
    let Some((bytes, record)) = read_record(dir, &mut v) else {
        return v;
    };
    let Some(signer_text) = check_signer(dir, &bytes, &record, opts, &mut v) else {
        v.notes.push(
            "stopped before reading the tables or any file the record names: its signature or signer is not trusted"
                .into(),
        );
        return v;
    };
    check_record(&record, &mut v);
    if let Some(m) = &record.model {
        v.notes.push(model_note(m));
    }
    for name in [CSV_FILE, PARQUET_FILE] {
        check_table(dir, name, &record, &mut v);
    }
    let root = opts
        .data_root
        .clone()
        .unwrap_or_else(|| PathBuf::from(&record.dataset.root));
    let real_root = root.canonicalize().ok();
    let folder = FolderFiles::new(&root, real_root.as_deref());
    let file_problems: Vec<String> = record
        .kept
        .par_iter()
        .filter_map(|k| check_file(&folder, k))
        .collect();
    let n_files = record.kept.iter().filter(|k| k.sha256.is_some()).count();
    v.problems_of_a_kind(file_problems);
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

/// What the record says of the model the review's scan used, and whether
/// the file it names still holds that model (the model is not part of the
/// cleaned dataset, so a change is worth knowing, not a failure).
fn model_note(m: &super::record::ModelRef) -> String {
    let now = match sha256_file(Path::new(&m.file)) {
        Ok(h) if h == m.sha256 => "the file there still holds it".to_string(),
        Ok(_) => "the file there now holds another model".to_string(),
        Err(e) => format!("its file cannot be checked here ({e})"),
    };
    format!(
        "the review's scan used model {} (sha256 {}), layer '{}', {}; {now}",
        m.file, m.sha256, m.layer, m.preparation
    )
}

/// Reads and parses `record.json` (a regular file of bounded size).
fn read_record(dir: &Path, v: &mut Verdict) -> Option<(Vec<u8>, Record)> {
    let path = dir.join(RECORD_FILE);
    let bytes = match files::read_capped(&path, MAX_RECORD_BYTES, "a record") {
        Ok(b) => b,
        Err(e) => {
            v.problem(e.to_string());
            return None;
        }
    };
    let record: Record = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            v.problem(format!("{}: not a poisonlens record: {e}", path.display()));
            return None;
        }
    };
    if record.format != FORMAT {
        v.problem(format!(
            "{}: format '{}' is not '{FORMAT}'",
            path.display(),
            record.format
        ));
        return None;
    }
    Some((bytes, record))
}

/// Checks the signature over the record and whether its signer is trusted;
/// returns the words describing the signer when both hold.
fn check_signer(
    dir: &Path,
    bytes: &[u8],
    record: &Record,
    opts: &VerifyOptions,
    v: &mut Verdict,
) -> Option<String> {
    let sig_path = dir.join(SIGNATURE_FILE);
    let armoured = match files::read_text_capped(&sig_path, MAX_SIGNATURE_BYTES, "a signature") {
        Ok(a) => a,
        Err(e) => {
            v.problem(format!("{e}: the record is not signed"));
            return None;
        }
    };
    let key = match sign::verify(bytes, &armoured) {
        Ok(k) => k,
        Err(e) => {
            v.problem(format!("{}: {e}", sig_path.display()));
            return None;
        }
    };
    let fp = sign::fingerprint(&key);
    let identity = opts.identity.clone().or_else(|| record.signer.clone());
    let who = identity.as_deref().unwrap_or("an unnamed signer");
    let Some(file) = &opts.allowed_signers else {
        if opts.accept_any_signer {
            return Some(format!(
                "signed by key {fp}, claiming to be {who}: signer NOT verified (--accept-any-signer)"
            ));
        }
        v.problem(format!(
            "signed by key {fp}, claiming to be {who}, but nothing says whom to trust: give --allowed-signers FILE (or --accept-any-signer to check only that the export is intact)"
        ));
        return None;
    };
    let Some(id) = identity else {
        v.problem(format!(
            "the record names no signer; give --identity to check against {}",
            file.display()
        ));
        return None;
    };
    let list = match allowed_signers::read(file) {
        Ok(l) => l,
        Err(e) => {
            v.problem(e.to_string());
            return None;
        }
    };
    v.notes.extend(
        list.skipped
            .iter()
            .map(|s| format!("{}: {s} (skipped, as ssh-keygen skips it)", file.display())),
    );
    match list.check(&id, NAMESPACE, &key, now_secs()) {
        Ok(line) => Some(format!(
            "signed by {id} ({fp}), an allowed signer ({} line {line})",
            file.display()
        )),
        Err(why) => {
            v.problem(format!(
                "signer '{id}' with key {fp} is not allowed by {} for namespace {NAMESPACE}: {why}",
                file.display()
            ));
            None
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The record against itself: every sample once, counts that add up.
fn check_record(record: &Record, v: &mut Verdict) {
    let mut times: HashMap<&str, (usize, usize)> = HashMap::new();
    for k in &record.kept {
        times.entry(&k.id).or_default().0 += 1;
    }
    for e in &record.excluded {
        times.entry(&e.id).or_default().1 += 1;
    }
    let mut found: Vec<String> = times
        .iter()
        .filter(|(_, (k, e))| k + e > 1)
        .map(|(id, (k, e))| {
            format!("{RECORD_FILE}: sample '{id}' is listed {k} time(s) as kept and {e} as excluded; each sample must appear once")
        })
        .collect();
    found.sort();
    v.problems_of_a_kind(found);
    let c = &record.counts;
    let (kept, excluded) = (record.kept.len(), record.excluded.len());
    if c.kept != kept || c.excluded != excluded || record.dataset.samples != kept + excluded {
        v.problem(format!(
            "{RECORD_FILE}: counts do not add up: {kept} kept and {excluded} excluded listed, counts say {} and {}, dataset {} samples",
            c.kept, c.excluded, record.dataset.samples
        ));
    }
}

/// A kept file's problem, if any: missing (or outside the data folder),
/// unreadable, or not the file that was signed.
fn check_file(folder: &FolderFiles, k: &KeptSample) -> Option<String> {
    let (Some(rel), Some(want)) = (&k.path, &k.sha256) else {
        return None;
    };
    match folder.sha256(rel) {
        // Why it could not be read: a path that does not resolve inside
        // the folder is missing; anything else says itself.
        Err(e) => Some(match folder.path(rel) {
            Err(_) => format!("sample '{}': file {rel} is missing", k.id),
            Ok(_) => format!("sample '{}': {e}", k.id),
        }),
        Ok(h) if &h != want => Some(format!(
            "sample '{}': file {rel} was modified after signing (SHA-256 differs)",
            k.id
        )),
        Ok(_) => None,
    }
}

/// Compares a table with the record: its hash, and row by row its ids,
/// labels and paths (so a table the signer hashed but that disagrees with
/// the record — rows missing, added or repeated — is caught too).
fn check_table(dir: &Path, name: &str, record: &Record, v: &mut Verdict) {
    let path = dir.join(name);
    let Some(want) = record.files.get(name) else {
        v.problem(format!("{RECORD_FILE} has no hash for {name}"));
        return;
    };
    let have = match sha256_file(&path) {
        Ok(h) => h,
        Err(e) => {
            v.problem(e.to_string());
            return;
        }
    };
    let hash_differs = &have != want;
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
        v.problem(format!(
            "{}: {}not readable as id/path/label",
            path.display(),
            if hash_differs {
                "changed after signing (SHA-256 differs) and "
            } else {
                ""
            }
        ));
        return;
    };
    let paths = col("path").unwrap_or_else(|| vec![None; ids.len()]);
    let mut found = compare_rows(&path, record, &ids, &labels, &paths);
    if hash_differs && found.is_empty() {
        found.push(format!(
            "{}: changed after signing (SHA-256 differs), though ids, paths and labels agree",
            path.display()
        ));
    } else if hash_differs {
        v.problem(format!(
            "{}: changed after signing (SHA-256 differs)",
            path.display()
        ));
    }
    v.problems_of_a_kind(found);
}

/// Row-by-row differences between a table and the record's kept samples.
fn compare_rows(
    path: &Path,
    record: &Record,
    ids: &[Option<String>],
    labels: &[Option<String>],
    paths: &[Option<String>],
) -> Vec<String> {
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
    found
}
