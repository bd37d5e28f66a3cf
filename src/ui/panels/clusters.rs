//! The cluster map: per class, its activation groups (sizes, how many
//! flagged, the split statistics) and a class × "looks like" heatmap. A group
//! of class A whose members look like other classes stands out off the
//! diagonal. Clicking a row shows only that group in the queue and the plot.
//!
//! The row labels stay put while the heatmap scrolls sideways (wide class
//! lists), cells shrink to fit the panel down to a readable minimum, and
//! column headers are written upright in full.

use super::super::state::{Action, CentralView, State};
use crate::detect::cluster_map::{self, ClusterRow};

/// Height of a row (label and cells).
const ROW_H: f32 = 24.0;
/// Narrowest cell before the heatmap scrolls instead.
const MIN_CELL: f32 = 26.0;
/// Widest cell.
const MAX_CELL: f32 = 44.0;

pub fn show(w: &State, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    let Some(l) = &w.loaded else { return };
    let classes = &l.dataset.classes;
    legend(ui);
    if l.cluster_rows.is_empty() {
        ui.label("The map appears when the scan has split each class into its activation groups.");
        return;
    }
    let font = egui::FontId::proportional(12.0);
    let header_h = classes
        .iter()
        .map(|c| text_width(ui, c, &font))
        .fold(0.0, f32::max)
        + 8.0;
    let label_w = 260.0f32.min(ui.available_width() * 0.45);
    let cell = ((ui.available_width() - label_w - 24.0) / classes.len().max(1) as f32)
        .clamp(MIN_CELL, MAX_CELL);
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            ui.horizontal_top(|ui| {
                ui.vertical(|ui| {
                    ui.set_width(label_w);
                    // The same height as the headers, so rows line up.
                    ui.allocate_exact_size(egui::vec2(label_w, header_h), egui::Sense::hover());
                    for row in &l.cluster_rows {
                        row_label(w, row, label_w, ui, actions);
                    }
                });
                egui::ScrollArea::horizontal()
                    .id_salt("cluster_map_cells")
                    .show(ui, |ui| {
                        ui.vertical(|ui| {
                            headers(classes, cell, header_h, &font, ui);
                            for row in &l.cluster_rows {
                                cells(row, classes, cell, ui);
                            }
                        });
                    });
            });
        });
}

/// What the numbers and colours mean.
fn legend(ui: &mut egui::Ui) {
    ui.horizontal_wrapped(|ui| {
        ui.weak("Rows: each class's main and minority activation group and its samples carrying a found trigger (flagged/size; \"suspect\": most of it flagged). Cells: % of the group's members nearest to that column's class centre —");
        ui.colored_label(egui::Color32::from_rgb(90, 160, 220), "blue: its own class,");
        ui.colored_label(egui::Color32::from_rgb(230, 90, 90), "red: another class");
        ui.weak("(a minority group mostly red looks like another class: a backdoor or flipped labels). Click a row to filter the queue and the view to it.");
    });
}

/// The class names, written upright and in full.
fn headers(classes: &[String], cell: f32, h: f32, font: &egui::FontId, ui: &mut egui::Ui) {
    let (rect, _) = ui.allocate_exact_size(
        egui::vec2(cell * classes.len() as f32, h),
        egui::Sense::hover(),
    );
    let color = ui.visuals().text_color();
    for (k, name) in classes.iter().enumerate() {
        let galley = ui
            .painter()
            .layout_no_wrap(name.clone(), font.clone(), color);
        let x = rect.left() + cell * (k as f32 + 0.5) - galley.size().y / 2.0;
        let at = egui::pos2(x, rect.bottom() - 4.0);
        ui.painter().add(
            egui::epaint::TextShape::new(at, galley, color)
                .with_angle(-std::f32::consts::FRAC_PI_2),
        );
    }
}

/// A row's button: class, group, flagged of its size. A row the scan's evidence
/// says is poison (most of it flagged) stands out, whichever detector found
/// it; "split" marks the minority of a split judged real.
fn row_label(
    w: &State,
    row: &ClusterRow,
    width: f32,
    ui: &mut egui::Ui,
    actions: &mut Vec<Action>,
) {
    let Some(l) = &w.loaded else { return };
    let classes = &l.dataset.classes;
    let split = row.split && row.cluster == cluster_map::MINORITY;
    // Short enough that class, group and counts fit a 1280-px screen.
    let text = format!(
        "{} {}: {}/{} flagged{}{}",
        classes[row.class as usize],
        cluster_map::row_name(row.cluster),
        row.flagged,
        row.members.len(),
        if split { " · split" } else { "" },
        if row.suspect { " · suspect" } else { "" }
    );
    let selected = w.filter.cluster == Some((row.class, row.cluster));
    let label = if row.suspect {
        egui::RichText::new(text)
            .strong()
            .color(ui.visuals().warn_fg_color)
    } else {
        egui::RichText::new(text)
    };
    let resp = ui.add_sized(
        [width, ROW_H - 2.0],
        egui::Button::selectable(selected, label).truncate(),
    );
    let resp = match l.report.clusters.iter().find(|c| c.class == row.class) {
        _ if row.cluster == cluster_map::CARRIERS => {
            let mut which: Vec<usize> = row
                .members
                .iter()
                .filter_map(|&i| l.report.trigger_of[i])
                .collect();
            which.sort_unstable();
            which.dedup();
            let found: Vec<&str> = which
                .iter()
                .filter_map(|&t| l.report.triggers.get(t))
                .map(|t| t.summary.as_str())
                .collect();
            resp.on_hover_text(format!(
                "Carry the trigger found here: {}",
                found.join("; ")
            ))
        }
        Some(i) => resp.on_hover_text(format!(
            "split {} · gain {:.2} nats/sample · separation {:.1} SD · graph conductance {:.3}",
            if i.flagged {
                "judged real"
            } else {
                "judged natural"
            },
            i.gain,
            i.separation,
            i.conductance
        )),
        None => resp,
    };
    ui.add_space(2.0);
    if resp.clicked() {
        actions.push(Action::FilterCluster(if selected {
            None
        } else {
            Some((row.class, row.cluster))
        }));
        // The group becomes the selection, ready for a batch decision.
        actions.push(Action::SelectMany(if selected {
            Vec::new()
        } else {
            row.members.clone()
        }));
        actions.push(Action::ShowView(CentralView::Embedding));
    }
}

/// One row of the heatmap.
fn cells(row: &ClusterRow, classes: &[String], cell: f32, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 0.0;
        for (k, name) in classes.iter().enumerate() {
            let v = row.share_looking_like(k as u32);
            let (rect, resp) =
                ui.allocate_exact_size(egui::vec2(cell, ROW_H - 2.0), egui::Sense::hover());
            let base = if k as u32 != row.class {
                egui::Color32::from_rgb(214, 39, 40)
            } else {
                egui::Color32::from_rgb(31, 119, 180)
            };
            let fill = egui::Color32::from_rgba_unmultiplied(
                base.r(),
                base.g(),
                base.b(),
                (v * 255.0) as u8,
            );
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
            let says = format!("{:.0}% look like {name}", v * 100.0);
            resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, says.clone()));
            resp.on_hover_text(says);
        }
    });
    ui.add_space(2.0);
}

fn text_width(ui: &egui::Ui, text: &str, font: &egui::FontId) -> f32 {
    ui.painter()
        .layout_no_wrap(text.to_string(), font.clone(), egui::Color32::WHITE)
        .size()
        .x
}
