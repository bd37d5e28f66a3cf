//! The Sign-off / export dialog, drawn from the form it edits (its state
//! and the export job are `ui/signoff.rs`): what changed, where it goes,
//! who signs, before anything is written.

use super::super::dialogs::{self, Picked};
use super::super::signoff::{REPLACE_LABEL, SignoffForm};
use super::super::state::{Action, State};

/// Draws the dialog while it is open: what changed, where it goes, who
/// signs — shown before anything is written, so the reviewer signs what
/// they have seen.
pub fn show(
    w: &State,
    signoff: &mut Option<SignoffForm>,
    ui: &mut egui::Ui,
    actions: &mut Vec<Action>,
) {
    // A decision still on its way to disk would be missing from what is
    // signed: wait for it (it takes a moment) before signing.
    let saving = w.loaded.as_ref().is_some_and(|l| l.saver.is_saving());
    let busy = w.tasks.export.is_some() || saving;
    let progress = w.tasks.export.as_ref().map(|j| j.progress());
    let (Some(form), Some(l)) = (signoff.as_mut(), w.loaded.as_ref()) else {
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
