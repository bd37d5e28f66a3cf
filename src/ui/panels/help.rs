//! The `?` window: every key, straight from the command table.

use super::super::app::{Action, Workbench};
use super::super::commands::{Command, bindings, key_text};

pub fn show(w: &Workbench, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
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
                    let keys: Vec<String> = b.keys.iter().map(|k| key_text(ui.ctx(), k)).collect();
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
        });
    if !open {
        actions.push(Action::Command(Command::Help));
    }
}
