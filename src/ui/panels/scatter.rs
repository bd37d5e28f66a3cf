//! The embedding view: every sample at its 2-D projection, coloured by label,
//! suggestion, cluster, suspicion or decision. Click selects a sample;
//! Shift+drag selects a box, Ctrl+drag a lasso, of samples for batch actions.

use super::super::scatter_view::{self, ScatterInput};
use super::super::state::{Action, ColorBy, State};
use super::class_color;
use crate::review::Decision;

/// Width "Colour by" and its drop-down take in the header, in points.
const COLOUR_BY_WIDTH: f32 = 230.0;

pub fn show(
    w: &State,
    thumbs: &mut Option<super::super::thumbs::Thumbs>,
    ui: &mut egui::Ui,
    actions: &mut Vec<Action>,
) {
    let generation = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let version = w
            .loaded
            .as_ref()
            .map(|l| (l.path.clone(), l.review().version()));
        (
            w.color_by as u8,
            w.filter.cluster,
            version,
            w.report_generation,
        )
            .hash(&mut h);
        h.finish()
    };
    // Colour groups change only with the colouring, filter or decisions.
    let colouring = super::cached(ui, "scatter_groups", generation, || {
        let (keys, names, colors) = groups(w);
        let r = &w.loaded.as_ref().expect("shown only when loaded").report;
        let group: Vec<u16> = keys
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                let shown = w
                    .filter
                    .cluster
                    .is_none_or(|row| crate::detect::cluster_map::in_row(r, i, row));
                if shown { k as u16 } else { u16::MAX }
            })
            .collect();
        (group, names, colors)
    });
    let (group, names, colors) = &*colouring;
    let current = w.current();
    let ctx = ui.ctx().clone();
    let Some(l) = &w.loaded else { return };
    let r = &l.report;
    let classes = &l.dataset.classes;
    let has_images = l.dataset.paths.is_some();
    // Wraps rather than clips "Colour by" on a narrow centre (1280 px).
    ui.horizontal_wrapped(|ui| {
        ui.heading("Embedding");
        ui.separator();
        let busy = w.tasks.projection.is_some();
        let method = if busy {
            "t-SNE (computing…)"
        } else {
            l.projection.method
        };
        super::combo(ui, "Projection", method, |ui| {
            if ui
                .selectable_label(l.projection.method == "PCA", "PCA")
                .clicked()
            {
                actions.push(Action::UsePca);
            }
            let label = if l.tsne.is_some() {
                "t-SNE"
            } else {
                "t-SNE (compute in background)"
            };
            if ui
                .selectable_label(l.projection.method == "t-SNE", label)
                .clicked()
            {
                actions.push(Action::UseTsne);
            }
        });
        // A drop-down group does not wrap by itself: start a new row when
        // "Colour by" and its drop-down would not fit.
        // (In a wrapping row the available width is the whole row's.)
        let left_in_row = ui.max_rect().right() - ui.cursor().left();
        if left_in_row < COLOUR_BY_WIDTH {
            ui.end_row();
        } else {
            ui.add_space(12.0);
        }
        super::combo(ui, "Colour by", w.color_by.name(), |ui| {
            for c in ColorBy::ALL {
                if ui.selectable_label(w.color_by == c, c.name()).clicked() {
                    actions.push(Action::ColorBy(c));
                }
            }
        });
    });
    if !l.has_view() {
        ui.centered_and_justified(|ui| {
            ui.label("No embeddings were given: the view appears when the scan has computed features from the images.");
        });
        return;
    }
    ui.weak("Click a point to show it · Shift+drag: box select · Ctrl+drag: lasso · drag to pan · wheel to zoom · double-click to reset");
    let input = ScatterInput {
        points: &l.projection.points,
        group,
        names,
        colors,
        highlight: current,
        selection: &w.selection,
        generation,
    };
    let out = scatter_view::show(ui, "embedding", &input, |ui, i| {
        ui.label(format!("{} · {}", r.ids[i], classes[r.labels[i] as usize]));
        if let Some(s) = r.suggested_label[i] {
            ui.label(format!("suggested: {}", classes[s as usize]));
        }
        ui.label(format!("suspicion {:.2}", r.score[i]));
        if let Some(t) = thumbs.as_mut().filter(|_| has_images) {
            super::image(ui, t.get(&ctx, i), 96.0);
        }
    });
    if let Some(i) = out.clicked {
        actions.push(Action::Select(i));
    }
    if let Some(sel) = out.box_selected {
        actions.push(Action::SelectMany(sel));
    }
}

/// Colour group of every sample, and each group's name and colour.
fn groups(w: &State) -> (Vec<usize>, Vec<String>, Vec<egui::Color32>) {
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
                .map(|i| match l.review().decision(i).map(|e| e.decision) {
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
