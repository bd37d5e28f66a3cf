//! Menu, the running job's progress with Cancel, and errors in plain words.

use super::super::commands::{self, Command, Menu};
use super::super::state::{Action, State};

pub fn show(w: &State, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| file_menu(w, ui, actions));
        ui.menu_button("Review", |ui| {
            commands_of(Menu::Review, ui, actions);
            relabel_menu(w, ui, actions);
        });
        ui.menu_button("View", |ui| commands_of(Menu::View, ui, actions));
        ui.menu_button("Help", |ui| commands_of(Menu::Help, ui, actions));
        ui.separator();
        if let Some(l) = &w.loaded {
            ui.label(egui::RichText::new(l.path.display().to_string()).strong());
            ui.label(format!(
                "{} samples · {} classes · {} flagged",
                l.dataset.len(),
                l.dataset.classes.len(),
                l.report.flagged_count()
            ))
            .on_hover_text(format!("Features: {}", l.report.feature_source));
            if let Some(m) = &l.model {
                let name = m.path().file_name().unwrap_or_default().to_string_lossy();
                ui.label(format!("· model {name}, layer '{}'", m.layer))
                    .on_hover_text(m.describe());
            }
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
    // The button comes first and the text wraps after it: a long message
    // (what a scan without images could not do) is read whole and can
    // always be dismissed.
    if let Some(n) = &w.notice {
        ui.horizontal_wrapped(|ui| {
            if ui.small_button("OK").clicked() {
                actions.push(Action::DismissNotice);
            }
            // Not a failure: news (an export written, where the review is
            // kept) or what the scan could not do.
            ui.add(egui::Label::new(egui::RichText::new(n).strong()).wrap());
        });
    }
    if let Some(e) = &w.error {
        ui.horizontal_wrapped(|ui| {
            if ui.small_button("Dismiss").clicked() {
                actions.push(Action::DismissError);
            }
            let text =
                egui::RichText::new(format!("Problem: {e}")).color(ui.visuals().error_fg_color);
            ui.add(egui::Label::new(text).wrap());
        });
    }
}

/// Every command of `menu` in the table, as buttons.
fn commands_of(menu: Menu, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    let all: Vec<_> = commands::in_menu(menu).collect();
    buttons(&all, ui, actions);
}

/// A menu button per binding.
fn buttons(bindings: &[commands::Binding], ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    for b in bindings {
        if commands::menu_button(ui, b) {
            actions.push(Action::Command(b.command));
        }
    }
}

/// Opening, the recent list, export and sign-off; Quit last.
fn file_menu(w: &State, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    let (quit, rest): (Vec<_>, Vec<_>) =
        commands::in_menu(Menu::File).partition(|b| b.command == Command::Quit);
    buttons(&rest, ui, actions);
    if ui
        .add_enabled(w.loaded.is_some(), egui::Button::new("Export…"))
        .on_hover_text("Write the cleaned manifest without signing it")
        .clicked()
    {
        actions.push(Action::OpenSignoff { sign: false });
    }
    model_items(w, ui, actions);
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
    ui.separator();
    buttons(&quit, ui, actions);
}

/// Choosing the model whose activations the scan uses, and going back to
/// the dataset's own embeddings.
fn model_items(w: &State, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    if ui
        .button("Open model…")
        .on_hover_text(
            "Scan with the activations of the model trained on this dataset (ONNX), computed here",
        )
        .clicked()
    {
        actions.push(Action::ShowOpenModelDialog);
    }
    if let Some(m) = &w.settings.model {
        let name = m.path.file_name().unwrap_or_default().to_string_lossy();
        if ui
            .button(format!("Stop using model {name}"))
            .on_hover_text("Scan with the dataset's own embeddings again")
            .clicked()
        {
            actions.push(Action::UseModel(None));
        }
    }
}

/// "Relabel to" with each class and the digit that picks it (the digit
/// keys' menu entries).
fn relabel_menu(w: &State, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    let Some(l) = &w.loaded else { return };
    ui.menu_button("Relabel to class", |ui| {
        let keys = commands::bindings();
        for (c, name) in l.dataset.classes.iter().enumerate() {
            let key = keys
                .iter()
                .find(|b| b.command == Command::Relabel(c as u32))
                .and_then(|b| b.keys.first())
                .map(|k| commands::key_text(ui.ctx(), k))
                .unwrap_or_default();
            if ui.add(egui::Button::new(name).shortcut_text(key)).clicked() {
                actions.push(Action::Command(Command::Relabel(c as u32)));
            }
        }
    });
}
