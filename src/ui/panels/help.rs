//! The `?` window: every key, straight from the command table.

use super::super::commands::{Command, bindings, key_text};
use super::super::state::{Action, State};

pub fn show(w: &State, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    if !w.show_help {
        return;
    }
    let mut open = true;
    egui::Window::new("Keys")
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .show(ui.ctx(), |ui| {
            egui::Grid::new("keys").striped(true).show(ui, |ui| {
                for b in bindings() {
                    if matches!(b.command, Command::Relabel(n) if n > 0) {
                        continue;
                    }
                    let mut keys: Vec<String> =
                        b.keys.iter().map(|k| key_text(ui.ctx(), k)).collect();
                    // "?" and Shift+"?" read the same.
                    keys.dedup();
                    let keys = if matches!(b.command, Command::Relabel(_)) {
                        "1 … 9, 0".to_string()
                    } else {
                        keys.join(" / ")
                    };
                    ui.monospace(keys);
                    ui.label(b.description);
                    ui.end_row();
                }
            });
            digits(w, ui);
        });
    if !open {
        actions.push(Action::Command(Command::Help));
    }
}

/// Which digit picks which class of the open dataset (the first ten; the
/// others through `r`, the picker).
fn digits(w: &State, ui: &mut egui::Ui) {
    let Some(l) = &w.loaded else { return };
    ui.separator();
    ui.label("Relabel keys for this dataset:");
    egui::Grid::new("digits").show(ui, |ui| {
        for (c, name) in l.dataset.classes.iter().take(10).enumerate() {
            ui.monospace(format!("{}  {name}", (c + 1) % 10));
            if c % 2 == 1 {
                ui.end_row();
            }
        }
    });
    if l.dataset.classes.len() > 10 {
        ui.label(format!(
            "The other {} classes: press r and type part of the name.",
            l.dataset.classes.len() - 10
        ));
    }
}
