//! The cluster map: per class, its activation groups (sizes, how many
//! flagged, the split statistics) and a class × "looks like" heatmap. A group
//! of class A whose members look like other classes stands out off the
//! diagonal. Clicking a row shows only that group in the queue and the plot.

use super::super::app::{Action, CentralView, Workbench};

pub fn show(w: &Workbench, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    let Some(l) = &w.loaded else { return };
    let classes = &l.dataset.classes;
    ui.weak("Rows: each class's main and minority activation group. Columns: the class whose centre its members are nearest to. Click a row to filter the queue and the embedding to it.");
    let cell = 30.0f32;
    egui::ScrollArea::both().show(ui, |ui| {
        egui::Grid::new("cluster_map").spacing([2.0, 2.0]).show(ui, |ui| {
            ui.label("");
            for name in classes {
                let short: String = name.chars().take(5).collect();
                ui.add_sized([cell, 16.0], egui::Label::new(egui::RichText::new(short).small()))
                    .on_hover_text(name);
            }
            ui.end_row();
            for row in &l.cluster_rows {
                let info = l.report.clusters.iter().find(|c| c.class == row.class);
                let split = row.split && row.cluster == 1;
                let text = format!(
                    "{} · {} · {} · {} flagged{}",
                    classes[row.class as usize],
                    if row.cluster == 0 { "main" } else { "minority" },
                    row.members.len(),
                    row.flagged,
                    if split { " · split" } else { "" }
                );
                let selected = w.filter.cluster == Some((row.class, row.cluster));
                let label = if split { egui::RichText::new(text).strong().color(ui.visuals().warn_fg_color) } else { egui::RichText::new(text) };
                let resp = ui.add(egui::Button::selectable(selected, label));
                let resp = match info {
                    Some(i) => resp.on_hover_text(format!(
                        "split gain {:.2} nats/sample · separation {:.1} SD · graph conductance {:.3}",
                        i.gain, i.separation, i.conductance
                    )),
                    None => resp,
                };
                if resp.clicked() {
                    actions.push(Action::FilterCluster(if selected { None } else { Some((row.class, row.cluster)) }));
                    // The group becomes the selection, ready for a batch decision.
                    actions.push(Action::SelectMany(if selected { Vec::new() } else { row.members.clone() }));
                    actions.push(Action::ShowView(CentralView::Embedding));
                }
                for k in 0..classes.len() {
                    let v = row.share_looking_like(k as u32);
                    let (rect, resp) = ui.allocate_exact_size(egui::vec2(cell, cell - 6.0), egui::Sense::hover());
                    let base = if k as u32 != row.class { egui::Color32::from_rgb(214, 39, 40) } else { egui::Color32::from_rgb(31, 119, 180) };
                    let fill = egui::Color32::from_rgba_unmultiplied(base.r(), base.g(), base.b(), (v * 255.0) as u8);
                    ui.painter().rect_filled(rect.shrink(1.0), 2.0, fill);
                    if v >= 0.05 {
                        ui.painter().text(
                            rect.center(),
                            egui::Align2::CENTER_CENTER,
                            format!("{:.0}", v * 100.0),
                            egui::FontId::proportional(11.0),
                            ui.visuals().strong_text_color(),
                        );
                    }
                    resp.on_hover_text(format!("{:.0}% look like {}", v * 100.0, classes[k]));
                }
                ui.end_row();
            }
        });
    });
}
