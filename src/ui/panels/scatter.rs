//! The embedding view: every sample at its 2-D projection, coloured by label,
//! suggestion, cluster, suspicion or decision. Click selects a sample;
//! Shift+drag selects a box of samples for batch actions.

use egui_plot::{Corner, Legend, MarkerShape, Plot, PlotPoint, Points, Polygon};

use super::super::app::{Action, ColorBy, Workbench};
use super::class_color;
use crate::review::Decision;

/// Pixels within which a click picks a point.
const PICK_RADIUS: f32 = 8.0;

pub fn show(w: &Workbench, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    let Some(l) = &w.loaded else { return };
    let pts = &l.projection.points;
    let r = &l.report;
    let classes = &l.dataset.classes;
    ui.horizontal(|ui| {
        ui.heading(format!("Embedding ({})", l.projection.method));
        ui.separator();
        egui::ComboBox::from_label("Colour by")
            .selected_text(w.color_by.name())
            .show_ui(ui, |ui| {
                for c in ColorBy::ALL {
                    if ui.selectable_label(w.color_by == c, c.name()).clicked() {
                        actions.push(Action::ColorBy(c));
                    }
                }
            });
    });
    ui.weak("Click a point to show it · Shift+drag to select a box · drag to pan · scroll to zoom · double-click to reset");
    // Group samples by colour key so each group is one legend entry.
    let (keys, names, colors) = groups(w);
    let mut by_key: Vec<Vec<[f64; 2]>> = vec![Vec::new(); names.len()];
    let mut others: Vec<[f64; 2]> = Vec::new();
    for (i, p) in pts.iter().enumerate() {
        let shown = w
            .filter
            .cluster
            .is_none_or(|(c, g)| r.labels[i] == c && r.cluster_of[i] == g);
        if shown {
            by_key[keys[i]].push([p[0] as f64, p[1] as f64]);
        } else {
            others.push([p[0] as f64, p[1] as f64]);
        }
    }
    let current = w.current();
    let selection: Vec<[f64; 2]> = w
        .selection
        .iter()
        .map(|&i| [pts[i][0] as f64, pts[i][1] as f64])
        .collect();
    let shift = ui.input(|i| i.modifiers.shift);
    let drag_id = ui.scope_id().with("box_select_start");
    let radius = if pts.len() > 50_000 {
        1.0
    } else if pts.len() > 5_000 {
        1.5
    } else {
        2.5
    };
    let resp = Plot::new("embedding")
        .legend(
            Legend::default()
                .position(Corner::LeftTop)
                .background_alpha(0.85),
        )
        .data_aspect(1.0)
        .allow_drag(!shift)
        .allow_boxed_zoom(false)
        .show_axes(false)
        .show(ui, |plot| {
            if !others.is_empty() {
                plot.points(
                    Points::new("other samples", others)
                        .color(egui::Color32::from_gray(70))
                        .radius(radius),
                );
            }
            for ((group, name), color) in by_key.into_iter().zip(&names).zip(&colors) {
                plot.points(
                    Points::new(name.clone(), group)
                        .color(*color)
                        .radius(radius)
                        .filled(true),
                );
            }
            if !selection.is_empty() {
                plot.points(
                    Points::new("selection", selection)
                        .color(egui::Color32::BLACK)
                        .shape(MarkerShape::Circle)
                        .filled(false)
                        .radius(radius + 2.0),
                );
            }
            if let Some(c) = current {
                plot.points(
                    Points::new("current sample", vec![[pts[c][0] as f64, pts[c][1] as f64]])
                        .color(egui::Color32::from_rgb(220, 0, 0))
                        .shape(MarkerShape::Diamond)
                        .radius(7.0),
                );
            }
            // Box being dragged.
            let start: Option<PlotPoint> = plot.ctx().data(|d| d.get_temp(drag_id));
            if let (Some(a), Some(b)) = (start, plot.pointer_coordinate()) {
                plot.add(Polygon::new(
                    "box",
                    vec![[a.x, a.y], [b.x, a.y], [b.x, b.y], [a.x, b.y]],
                ));
            }
            plot.pointer_coordinate()
        });
    let pointer = resp.inner;
    let response = &resp.response;
    // Box selection with Shift+drag.
    if shift
        && response.drag_started()
        && let Some(p) = pointer
    {
        ui.ctx().data_mut(|d| d.insert_temp(drag_id, p));
    }
    if response.drag_stopped() {
        let start: Option<PlotPoint> = ui.ctx().data_mut(|d| {
            let s = d.get_temp(drag_id);
            d.remove::<PlotPoint>(drag_id);
            s
        });
        if let (Some(a), Some(b)) = (start, pointer) {
            let (x0, x1) = (a.x.min(b.x), a.x.max(b.x));
            let (y0, y1) = (a.y.min(b.y), a.y.max(b.y));
            let inside: Vec<usize> = (0..pts.len())
                .filter(|&i| {
                    let (x, y) = (pts[i][0] as f64, pts[i][1] as f64);
                    x >= x0 && x <= x1 && y >= y0 && y <= y1
                })
                .collect();
            actions.push(Action::SelectMany(inside));
        }
    }
    // Hover and click: nearest point within a few pixels.
    if let Some(hover) = response.hover_pos() {
        let mut best = (f32::INFINITY, usize::MAX);
        for (i, p) in pts.iter().enumerate() {
            let s = resp
                .transform
                .position_from_point(&PlotPoint::new(p[0] as f64, p[1] as f64));
            let d = s.distance_sq(hover);
            if d < best.0 {
                best = (d, i);
            }
        }
        if best.0 <= PICK_RADIUS * PICK_RADIUS {
            let i = best.1;
            response.clone().on_hover_ui_at_pointer(|ui| {
                ui.label(format!("{} · {}", r.ids[i], classes[r.labels[i] as usize]));
                if let Some(s) = r.suggested_label[i] {
                    ui.label(format!("suggested: {}", classes[s as usize]));
                }
                ui.label(format!("suspicion {:.2}", r.score[i]));
            });
            if response.clicked() {
                actions.push(Action::Select(i));
            }
        }
    }
}

/// Colour group of every sample, and each group's name and colour.
fn groups(w: &Workbench) -> (Vec<usize>, Vec<String>, Vec<egui::Color32>) {
    let l = w.loaded.as_ref().expect("shown only when loaded");
    let r = &l.report;
    let classes = &l.dataset.classes;
    let n = r.ids.len();
    match w.color_by {
        ColorBy::Label | ColorBy::Suggested => {
            let keys = (0..n)
                .map(|i| match w.color_by {
                    ColorBy::Suggested => r.suggested_label[i].unwrap_or(r.labels[i]) as usize,
                    _ => r.labels[i] as usize,
                })
                .collect();
            (
                keys,
                classes.clone(),
                (0..classes.len()).map(class_color).collect(),
            )
        }
        ColorBy::Cluster => (
            (0..n).map(|i| r.cluster_of[i] as usize).collect(),
            vec!["main group".into(), "minority group".into()],
            vec![
                egui::Color32::from_gray(170),
                egui::Color32::from_rgb(214, 39, 40),
            ],
        ),
        ColorBy::Score => {
            let bins = [0.25f32, 0.5, 0.75];
            (
                (0..n)
                    .map(|i| bins.iter().filter(|&&b| r.score[i] >= b).count())
                    .collect(),
                vec![
                    "< 0.25".into(),
                    "0.25–0.5".into(),
                    "0.5–0.75 (flagged)".into(),
                    ">= 0.75 (flagged)".into(),
                ],
                vec![
                    egui::Color32::from_rgb(198, 219, 239),
                    egui::Color32::from_rgb(107, 174, 214),
                    egui::Color32::from_rgb(253, 141, 60),
                    egui::Color32::from_rgb(189, 0, 38),
                ],
            )
        }
        ColorBy::Decision => (
            (0..n)
                .map(|i| match l.review.decision(i).map(|e| e.decision) {
                    None => 0,
                    Some(Decision::Keep) => 1,
                    Some(Decision::Exclude) => 2,
                    Some(Decision::Relabel(_)) => 3,
                })
                .collect(),
            vec![
                "undecided".into(),
                "kept".into(),
                "excluded".into(),
                "relabelled".into(),
            ],
            vec![
                egui::Color32::from_gray(190),
                egui::Color32::from_rgb(44, 160, 44),
                egui::Color32::from_rgb(214, 39, 40),
                egui::Color32::from_rgb(31, 119, 180),
            ],
        ),
    }
}
