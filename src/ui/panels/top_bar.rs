//! Menu, the running job's progress with Cancel, and errors in plain words.

use super::super::app::{Action, Workbench};
use super::super::commands::{Command, shortcut_text};

pub fn show(w: &Workbench, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            if ui
                .add(
                    egui::Button::new("Open…")
                        .shortcut_text(shortcut_text(ui.ctx(), Command::Open)),
                )
                .clicked()
            {
                actions.push(Action::ShowOpenDialog);
            }
            let loaded = w.loaded.is_some();
            if ui
                .add_enabled(loaded, egui::Button::new("Export…"))
                .clicked()
            {
                actions.push(Action::OpenSignoff { sign: false });
            }
            if ui
                .add_enabled(
                    loaded,
                    egui::Button::new("Sign off…")
                        .shortcut_text(shortcut_text(ui.ctx(), Command::SignOff)),
                )
                .clicked()
            {
                actions.push(Action::OpenSignoff { sign: true });
            }
            ui.menu_button("Open recent", |ui| {
                if w.recent.is_empty() {
                    ui.label("Nothing yet");
                }
                for p in &w.recent {
                    if ui.button(p.display().to_string()).clicked() {
                        actions.push(Action::Open(p.clone()));
                    }
                }
            });
        });
        ui.menu_button("Review", |ui| {
            for (label, c) in [
                ("Keep", Command::Keep),
                ("Exclude", Command::Exclude),
                ("Accept suggestion", Command::AcceptSuggestion),
                ("Undo", Command::Undo),
                ("Redo", Command::Redo),
                ("Next", Command::Next),
                ("Previous", Command::Previous),
            ] {
                if ui
                    .add(egui::Button::new(label).shortcut_text(shortcut_text(ui.ctx(), c)))
                    .clicked()
                {
                    actions.push(Action::Command(c));
                }
            }
        });
        ui.menu_button("Help", |ui| {
            if ui
                .add(
                    egui::Button::new("Keys").shortcut_text(shortcut_text(ui.ctx(), Command::Help)),
                )
                .clicked()
            {
                actions.push(Action::Command(Command::Help));
            }
        });
        ui.separator();
        if let Some(l) = &w.loaded {
            ui.label(egui::RichText::new(l.path.display().to_string()).strong());
            ui.label(format!(
                "{} samples · {} classes · {} flagged",
                l.dataset.len(),
                l.dataset.classes.len(),
                l.report.flagged_count()
            ));
        }
        let running = w.tasks.progress();
        for (stage, f) in &running {
            ui.separator();
            ui.add(
                egui::ProgressBar::new(*f)
                    .desired_width(180.0)
                    .text(stage.as_str()),
            );
        }
        if !running.is_empty() && ui.button("Cancel").clicked() {
            actions.push(Action::Cancel);
        }
    });
    if let Some(n) = &w.notice {
        ui.horizontal(|ui| {
            ui.colored_label(ui.visuals().warn_fg_color, n);
            if ui.small_button("OK").clicked() {
                actions.push(Action::DismissNotice);
            }
        });
    }
    if let Some(e) = &w.error {
        ui.horizontal(|ui| {
            ui.colored_label(ui.visuals().error_fg_color, format!("Problem: {e}"));
            if ui.small_button("Dismiss").clicked() {
                actions.push(Action::DismissError);
            }
        });
    }
}
