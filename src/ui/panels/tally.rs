//! Review progress, overall and per class, always in view.

use super::super::app::Workbench;

pub fn show(w: &Workbench, ui: &mut egui::Ui) {
    let Some(l) = &w.loaded else { return };
    let t = l.review.tally(0..l.dataset.len());
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
            let members = (0..l.dataset.len()).filter(|&i| l.dataset.labels[i] as usize == c);
            let ct = l.review.tally(members);
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
