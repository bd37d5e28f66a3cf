//! Review progress, overall and per class, always in view.

use super::super::state::State;

/// Draws the status line: the key hint, the overall tally, then each
/// class's (its numbers explained before them).
pub fn show(w: &State, ui: &mut egui::Ui) {
    let Some(l) = &w.loaded else { return };
    let key = (l.path.clone(), l.review().version());
    let counts = super::cached(ui, "tally", key, || {
        l.review()
            .tally_by_class(&l.dataset.labels, l.dataset.classes.len())
    });
    let (t, per_class) = &*counts;
    if let Some(hint) = &w.key_hint {
        ui.colored_label(ui.visuals().warn_fg_color, hint);
    }
    ui.horizontal(|ui| {
        ui.label(
            egui::RichText::new(format!(
                "Reviewed {} · kept {} · excluded {} · relabelled {}",
                t.reviewed, t.kept, t.excluded, t.relabelled
            ))
            .strong(),
        );
        ui.separator();
        ui.weak(PER_CLASS);
        // One line at any width: the classes scroll sideways rather than
        // wrap and push the window's panels up.
        egui::ScrollArea::horizontal()
            .id_salt("tally_classes")
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    for (c, name) in l.dataset.classes.iter().enumerate() {
                        let ct = &per_class[c];
                        let size = egui::vec2(10.0, 10.0);
                        let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
                        ui.painter().rect_filled(rect, 2.0, super::class_color(c));
                        ui.label(format!(
                            "{name} {}/{}/{}",
                            ct.reviewed, ct.excluded, ct.relabelled
                        ))
                        .on_hover_text(PER_CLASS);
                    }
                });
            });
    });
}

/// What the per-class numbers are, said before them.
pub const PER_CLASS: &str = "per class, reviewed/excluded/relabelled:";
