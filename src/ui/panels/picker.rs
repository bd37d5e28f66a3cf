//! Type-ahead relabelling (`r`): type part of a class name, Enter applies the
//! first match, Esc closes. Faster than a list when there are many classes.

use super::super::commands::Command;
use super::super::state::{Action, State};

/// Classes whose name contains the query (case-insensitive), in class order.
pub fn matches(classes: &[String], query: &str) -> Vec<u32> {
    let q = query.trim().to_lowercase();
    (0..classes.len() as u32)
        .filter(|&c| classes[c as usize].to_lowercase().contains(&q))
        .collect()
}

pub fn show(w: &State, picker: &mut Option<String>, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    let (Some(query), Some(l)) = (picker.as_mut(), w.loaded.as_ref()) else {
        return;
    };
    let classes = &l.dataset.classes;
    let mut close = false;
    egui::Window::new("Relabel to")
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_TOP, [0.0, 80.0])
        .show(ui.ctx(), |ui| {
            let label = ui.label("Class");
            let edit = ui
                .add(
                    egui::TextEdit::singleline(query)
                        .hint_text("type to filter")
                        .desired_width(240.0),
                )
                .labelled_by(label.id);
            edit.request_focus();
            let found = matches(classes, query);
            for (k, &c) in found.iter().enumerate().take(12) {
                let text = if k == 0 {
                    format!("> {}", classes[c as usize])
                } else {
                    classes[c as usize].clone()
                };
                if ui.selectable_label(k == 0, text).clicked() {
                    actions.push(Action::Command(Command::Relabel(c)));
                }
            }
            if found.is_empty() {
                ui.weak("no class matches");
            }
            let (enter, esc) = ui.input(|i| {
                (
                    i.key_pressed(egui::Key::Enter),
                    i.key_pressed(egui::Key::Escape),
                )
            });
            if enter && let Some(&c) = found.first() {
                actions.push(Action::Command(Command::Relabel(c)));
            }
            close = esc;
        });
    if close {
        actions.push(Action::Command(Command::RelabelPicker));
    }
}
