//! The Sign-off dialog: what changed, where it goes, who signs — shown
//! before anything is written, so the reviewer signs what they have seen.

use super::super::app::{Action, Workbench};

pub fn show(w: &mut Workbench, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    let busy = w.tasks.export.is_some();
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
            ui.separator();
            ui.add_enabled_ui(!busy, |ui| {
                egui::Grid::new("signoff_form")
                    .num_columns(2)
                    .show(ui, |ui| {
                        let l = ui.label("Export folder");
                        ui.horizontal(|ui| {
                            ui.add(
                                egui::TextEdit::singleline(&mut form.out_dir).desired_width(300.0),
                            )
                            .labelled_by(l.id);
                            if ui.button("Browse…").clicked()
                                && let Some(p) = rfd::FileDialog::new().pick_folder()
                            {
                                form.out_dir = p.display().to_string();
                            }
                        });
                        ui.end_row();
                        ui.label("");
                        ui.checkbox(&mut form.sign, "Sign with my SSH key");
                        ui.end_row();
                        if form.sign {
                            let l = ui.label("Private key");
                            ui.horizontal(|ui| {
                                ui.add(
                                    egui::TextEdit::singleline(&mut form.key).desired_width(300.0),
                                )
                                .labelled_by(l.id);
                                if ui.button("Choose…").clicked()
                                    && let Some(p) = rfd::FileDialog::new().pick_file()
                                {
                                    form.key = p.display().to_string();
                                }
                            });
                            ui.end_row();
                            let l = ui.label("Signer identity");
                            ui.add(
                                egui::TextEdit::singleline(&mut form.identity).desired_width(300.0),
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
            });
            if let Some(s) = &form.status {
                ui.colored_label(ui.visuals().error_fg_color, s);
            }
            if let Some((stage, f)) = &progress {
                ui.add(egui::ProgressBar::new(*f).text(stage.as_str()));
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
