//! Review progress, overall and per class, always in view.

use super::super::app::Workbench;

pub fn show(w: &Workbench, ui: &mut egui::Ui) {
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
    ui.horizontal_wrapped(|ui| {
        ui.label(
            egui::RichText::new(format!(
                "Reviewed {} · kept {} · excluded {} · relabelled {}",
                t.reviewed, t.kept, t.excluded, t.relabelled
            ))
            .strong(),
        );
        ui.separator();
        for (c, name) in l.dataset.classes.iter().enumerate() {
            let ct = &per_class[c];
            let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
            ui.painter().rect_filled(rect, 2.0, super::class_color(c));
            ui.label(format!(
                "{name} {}/{}/{}",
                ct.reviewed, ct.excluded, ct.relabelled
            ))
            .on_hover_text("reviewed / excluded / relabelled");
        }
    });
}
