//! The Sign-off / export dialog's state and the export job it starts (the
//! dialog is drawn by `panels/signoff.rs`). The form holds only what the
//! user typed and what it shows; the export itself is the same library call
//! `poisonlens export` makes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::loaded::Loaded;
use crate::dataset::Dataset;
use crate::jobs::JobState;
use crate::manifest::export::{self, Signer};
use crate::manifest::record::{self, Summary};
use crate::manifest::sign;
use crate::review::Review;

/// What the dialog shows and the user typed.
#[derive(Debug, Clone)]
pub struct SignoffForm {
    /// Folder to write the export into.
    pub out_dir: String,
    /// Whether to sign.
    pub sign: bool,
    /// Private key file.
    pub key: String,
    /// Signer identity (allowed-signers principal); empty means the key's
    /// comment, else the reviewer (as `poisonlens export --sign` does).
    pub identity: String,
    /// Who is reviewing: the identity when the key has no usable comment.
    pub reviewer: String,
    /// Whether an export already in the folder may be replaced (asked for
    /// once the export job has found one there).
    pub replace: bool,
    /// Flagged samples without a decision: they are signed as kept.
    pub flagged_undecided: usize,
    /// The key's passphrase (cleared once the export starts).
    pub passphrase: String,
    /// The outcome of the last attempt, when it failed.
    pub status: Option<String>,
    /// Counts before/after and reviewers, as of `version`.
    pub summary: Summary,
    /// Review version the summary was computed at.
    pub version: u64,
}

impl SignoffForm {
    /// A form with sensible defaults: `cleaned/` beside the dataset, the
    /// key used for the last signed export (`remembered`), else the
    /// reviewer's poisonlens or OpenSSH Ed25519 key if there is one.
    pub fn new(l: &Loaded, reviewer: &str, sign: bool, remembered: Option<&Path>) -> Self {
        let ds = &l.dataset;
        let dir = ds
            .manifest
            .as_deref()
            .and_then(Path::parent)
            .map_or_else(|| ds.root.clone(), Path::to_path_buf);
        let key = remembered
            .map(Path::to_path_buf)
            .or_else(default_key)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        SignoffForm {
            out_dir: dir.join("cleaned").display().to_string(),
            sign,
            key,
            identity: String::new(),
            reviewer: reviewer.to_string(),
            replace: false,
            passphrase: String::new(),
            status: None,
            summary: record::summarize(ds, l.review()),
            flagged_undecided: flagged_undecided(l),
            version: l.review().version(),
        }
    }

    /// Recomputes the summary if decisions changed since it was made.
    pub fn refresh(&mut self, l: &Loaded) {
        if self.version != l.review().version() {
            self.summary = record::summarize(&l.dataset, l.review());
            self.flagged_undecided = flagged_undecided(l);
            self.version = l.review().version();
        }
    }

    /// Checks the form and captures what the job needs (a snapshot of the
    /// decisions, so the export is exactly what the dialog summarised).
    pub fn request(&self, l: &Loaded) -> Result<ExportRequest, String> {
        if self.out_dir.trim().is_empty() {
            return Err("Choose a folder to export into.".into());
        }
        if self.sign && self.key.trim().is_empty() {
            return Err(
                "Choose your private key (or untick Sign). No key? Run `poisonlens keygen`.".into(),
            );
        }
        Ok(ExportRequest {
            dataset: Arc::clone(&l.dataset),
            review: l.review().clone(),
            fingerprint: l.session.fingerprint().to_string(),
            out: PathBuf::from(self.out_dir.trim()),
            key: self.sign.then(|| PathBuf::from(self.key.trim())),
            passphrase: Some(self.passphrase.clone()).filter(|p| !p.is_empty()),
            identity: self.identity.trim().to_string(),
            reviewer: self.reviewer.clone(),
            replace: self.replace,
            model: l
                .model
                .as_deref()
                .map(crate::manifest::record::ModelRef::of),
        })
    }
}

/// The reviewer's poisonlens or OpenSSH Ed25519 key, if there is one.
fn default_key() -> Option<PathBuf> {
    let ssh = PathBuf::from(std::env::var_os("HOME")?).join(".ssh");
    ["poisonlens_ed25519", "id_ed25519"]
        .iter()
        .map(|n| ssh.join(n))
        .find(|p| p.is_file())
}

/// Flagged samples that have no decision (the export keeps them).
fn flagged_undecided(l: &Loaded) -> usize {
    let review = l.review();
    (0..l.report.flagged.len())
        .filter(|&i| l.report.flagged[i] && review.decision(i).is_none())
        .count()
}

/// A finished export: the window's one-line message, and the key it was
/// signed with (remembered for the next sign-off).
#[derive(Debug)]
pub struct ExportDone {
    /// What to tell the user.
    pub message: String,
    /// The key file used, when signed.
    pub key: Option<PathBuf>,
}

/// Everything the export job needs, owned, to run off the UI thread.
pub struct ExportRequest {
    dataset: Arc<Dataset>,
    review: Review,
    fingerprint: String,
    out: PathBuf,
    key: Option<PathBuf>,
    passphrase: Option<String>,
    identity: String,
    reviewer: String,
    replace: bool,
    model: Option<crate::manifest::record::ModelRef>,
}

impl ExportRequest {
    /// Loads the key (first, so a wrong passphrase writes nothing), exports,
    /// and returns a one-line message for the window. An export already in
    /// the folder is only replaced when the user said so.
    pub fn run(self, job: &JobState) -> Result<ExportDone, String> {
        let existing = self.out.join(record::RECORD_FILE);
        if !self.replace && std::fs::symlink_metadata(&existing).is_ok() {
            return Err(format!(
                "{} already holds an export ({}). Tick \"{REPLACE_LABEL}\" to overwrite it, or choose another folder.",
                self.out.display(),
                record::RECORD_FILE
            ));
        }
        job.report("reading the key", 0.0);
        let key = match &self.key {
            Some(p) => {
                let pass = self.passphrase.clone();
                Some(
                    sign::load_private_key(p, &mut || Ok(pass.clone()))
                        .map_err(|e| e.to_string())?,
                )
            }
            None => None,
        };
        let identity = key.as_ref().map(|k| {
            let asked = Some(self.identity.as_str());
            sign::signer_identity(asked, k, &self.reviewer)
        });
        let signer = key.as_ref().zip(identity.as_deref()).map(|(k, id)| Signer {
            key: k,
            identity: id,
        });
        let done = export::export(
            &self.dataset,
            &self.review,
            &self.fingerprint,
            &self.out,
            signer,
            self.model.clone(),
            &|f| job.report("hashing kept files", f),
        )
        .map_err(|e| e.to_string())?;
        let c = &done.record.counts;
        let message = match (&key, &identity) {
            (Some(k), Some(id)) => format!(
                "Exported {} kept and {} excluded samples to {}, signed by {} ({}).",
                c.kept,
                c.excluded,
                self.out.display(),
                id,
                sign::fingerprint(k.public_key())
            ),
            _ => format!(
                "Exported {} kept and {} excluded samples to {} (not signed).",
                c.kept,
                c.excluded,
                self.out.display()
            ),
        };
        Ok(ExportDone {
            message,
            key: self.key,
        })
    }
}

/// The checkbox that allows replacing an export already in the folder.
pub const REPLACE_LABEL: &str = "Replace the export already in this folder";
