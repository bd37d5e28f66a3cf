//! The Sign-off / export dialog: its state, how it is drawn, and the export
//! job it starts. The dialog holds only what the user typed; the export
//! itself is the same library call `poisonlens export` makes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::app::{Action, Workbench};
use super::dialogs::{self, Picked};
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

/// Draws the dialog while it is open: what changed, where it goes, who
/// signs — shown before anything is written, so the reviewer signs what
/// they have seen.
pub(super) fn show(w: &mut Workbench, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    // A decision still on its way to disk would be missing from what is
    // signed: wait for it (it takes a moment) before signing.
    let saving = w.loaded.as_ref().is_some_and(|l| l.saver.is_saving());
    let busy = w.tasks.export.is_some() || saving;
    let progress = w.tasks.export.as_ref().map(|j| j.progress());
    let (Some(form), Some(l)) = (w.signoff.as_mut(), w.loaded.as_ref()) else {
        return;
    };
    form.refresh(l);
    let mut open = true;
    egui::Window::new("Sign off and export")
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_TOP, [0.0, 60.0])
        .show(ui.ctx(), |ui| {
            let c = &form.summary.counts;
            ui.label(format!(
                "{} kept ({} relabelled, {} without a decision), {} excluded of {} samples",
                c.kept,
                c.relabelled,
                c.undecided,
                c.excluded,
                c.kept + c.excluded
            ));
            egui::Grid::new("signoff_counts")
                .striped(true)
                .show(ui, |ui| {
                    ui.strong("class");
                    ui.strong("before");
                    ui.strong("after");
                    ui.end_row();
                    for (k, b) in &c.before {
                        let a = c.after.get(k).copied().unwrap_or(0);
                        ui.label(k);
                        ui.label(b.to_string());
                        let t = a.to_string();
                        if a != *b {
                            ui.strong(t);
                        } else {
                            ui.label(t);
                        }
                        ui.end_row();
                    }
                });
            if !form.summary.reviewers.is_empty() {
                ui.label(format!("Reviewers: {}", form.summary.reviewers.join(", ")));
            }
            if form.flagged_undecided > 0 {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!(
                        "{} flagged samples have no decision: they will be exported (and signed) as kept. Decide them in the queue first, or export to keep them.",
                        form.flagged_undecided
                    ),
                );
            }
            ui.separator();
            ui.add_enabled_ui(!busy, |ui| {
                egui::Grid::new("signoff_form")
                    .num_columns(2)
                    .show(ui, |ui| {
                        let folder = || rfd::FileDialog::new().pick_folder();
                        if !path_row(ui, "Export folder", &mut form.out_dir, "Browse…", folder) {
                            form.status = Some(dialogs::TYPE_THE_PATH.into());
                        }
                        ui.label("");
                        ui.checkbox(&mut form.sign, "Sign with my SSH key");
                        ui.end_row();
                        if form.sign {
                            let file = || rfd::FileDialog::new().pick_file();
                            if !path_row(ui, "Private key", &mut form.key, "Choose…", file) {
                                form.status = Some(dialogs::TYPE_THE_PATH.into());
                            }
                            let l = ui.label("Signer identity");
                            let hint = format!("the key's comment, else {}", form.reviewer);
                            ui.add(
                                egui::TextEdit::singleline(&mut form.identity)
                                    .hint_text(hint)
                                    .desired_width(300.0),
                            )
                            .labelled_by(l.id);
                            ui.end_row();
                            let l = ui.label("Key passphrase");
                            ui.add(
                                egui::TextEdit::singleline(&mut form.passphrase)
                                    .password(true)
                                    .hint_text("empty if the key has none")
                                    .desired_width(300.0),
                            )
                            .labelled_by(l.id);
                            ui.end_row();
                        }
                    });
                ui.checkbox(&mut form.replace, REPLACE_LABEL);
            });
            if let Some(s) = &form.status {
                ui.colored_label(ui.visuals().error_fg_color, s);
            }
            if let Some((stage, f)) = &progress {
                ui.add(egui::ProgressBar::new(*f).text(stage.as_str()));
            } else if saving {
                ui.label("Waiting for the last decisions to be saved…");
            }
            ui.horizontal(|ui| {
                let label = if form.sign {
                    "Sign and export"
                } else {
                    "Export"
                };
                if ui.add_enabled(!busy, egui::Button::new(label)).clicked() {
                    actions.push(Action::StartExport);
                }
                if ui.add_enabled(!busy, egui::Button::new("Cancel")).clicked() {
                    actions.push(Action::CloseSignoff);
                }
            });
        });
    if !open {
        actions.push(Action::CloseSignoff);
    }
}

/// One row of the form: a labelled path field and a button that fills it
/// from a file dialog (`pick`; None when cancelled). False when the dialog
/// could not be shown at all ([`dialogs::pick`]).
fn path_row(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut String,
    button: &str,
    pick: impl FnOnce() -> Option<std::path::PathBuf>,
) -> bool {
    let l = ui.label(label);
    let mut shown = true;
    ui.horizontal(|ui| {
        ui.add(egui::TextEdit::singleline(value).desired_width(300.0))
            .labelled_by(l.id);
        if ui.button(button).clicked() {
            match dialogs::pick(pick) {
                Picked::Path(p) => *value = p.display().to_string(),
                Picked::Cancelled => {}
                Picked::Unavailable => shown = false,
            }
        }
    });
    ui.end_row();
    shown
}
