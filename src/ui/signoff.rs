//! The Sign-off / export dialog's state, and the export job it starts. The
//! dialog holds only what the user typed; the export itself is the same
//! library call `poisonlens export` makes.

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
    /// Signer identity (allowed-signers principal).
    pub identity: String,
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
    /// reviewer's poisonlens or OpenSSH Ed25519 key if there is one.
    pub fn new(l: &Loaded, reviewer: &str, sign: bool) -> Self {
        let ds = &l.dataset;
        let dir = ds
            .manifest
            .as_deref()
            .and_then(Path::parent)
            .map_or_else(|| ds.root.clone(), Path::to_path_buf);
        let key = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".ssh"))
            .and_then(|ssh| {
                ["poisonlens_ed25519", "id_ed25519"]
                    .iter()
                    .map(|n| ssh.join(n))
                    .find(|p| p.is_file())
            })
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        SignoffForm {
            out_dir: dir.join("cleaned").display().to_string(),
            sign,
            key,
            identity: reviewer.to_string(),
            passphrase: String::new(),
            status: None,
            summary: record::summarize(ds, l.review()),
            version: l.review().version(),
        }
    }

    /// Recomputes the summary if decisions changed since it was made.
    pub fn refresh(&mut self, l: &Loaded) {
        if self.version != l.review().version() {
            self.summary = record::summarize(&l.dataset, l.review());
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
        if self.sign && self.identity.trim().is_empty() {
            return Err("Give the signer identity (as in allowed_signers).".into());
        }
        Ok(ExportRequest {
            dataset: Arc::clone(&l.dataset),
            review: l.review().clone(),
            fingerprint: l.session.fingerprint().to_string(),
            out: PathBuf::from(self.out_dir.trim()),
            key: self.sign.then(|| PathBuf::from(self.key.trim())),
            passphrase: Some(self.passphrase.clone()).filter(|p| !p.is_empty()),
            identity: self.identity.trim().to_string(),
        })
    }
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
}

impl ExportRequest {
    /// Loads the key (first, so a wrong passphrase writes nothing), exports,
    /// and returns a one-line message for the window.
    pub fn run(self, job: &JobState) -> Result<String, String> {
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
        let signer = key.as_ref().map(|k| Signer {
            key: k,
            identity: &self.identity,
        });
        let done = export::export(
            &self.dataset,
            &self.review,
            &self.fingerprint,
            &self.out,
            signer,
            &|f| job.report("hashing kept files", f),
        )
        .map_err(|e| e.to_string())?;
        let c = &done.record.counts;
        Ok(match &key {
            Some(k) => format!(
                "Exported {} kept and {} excluded samples to {}, signed by {} ({}).",
                c.kept,
                c.excluded,
                self.out.display(),
                self.identity,
                sign::fingerprint(k.public_key())
            ),
            None => format!(
                "Exported {} kept and {} excluded samples to {} (not signed).",
                c.kept,
                c.excluded,
                self.out.display()
            ),
        })
    }
}
