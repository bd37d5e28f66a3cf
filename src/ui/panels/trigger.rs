//! Triggers in the sample panel: the suspected patch drawn over the image
//! (`t` toggles it), the consistency map as a heatmap, "select all with this
//! trigger", and the search for a trigger shared by a selection.

use super::super::commands::{Command, shortcut_text};
use super::super::state::{Action, State, TriggerRef};
use crate::detect::trigger::TriggerKind;

/// Where sample `i`'s trigger is, in its own pixels: from the scan, or from
/// the last search in a selection.
fn box_of(w: &State, i: usize) -> Option<[u32; 4]> {
    let l = w.loaded.as_ref()?;
    l.report.trigger_box[i].or_else(|| {
        let f = w.found.as_ref()?;
        let k = f.carriers.binary_search(&i).ok()?;
        f.boxes[k]
    })
}

/// Draws the trigger box over the sample image at `rect` (`size` = pixels).
pub fn overlay(w: &State, ui: &egui::Ui, i: usize, rect: egui::Rect, size: [u32; 2]) {
    let Some([x0, y0, x1, y1]) = box_of(w, i) else {
        return;
    };
    let sx = rect.width() / size[0].max(1) as f32;
    let sy = rect.height() / size[1].max(1) as f32;
    let r = egui::Rect::from_min_max(
        rect.min + egui::vec2(x0 as f32 * sx, y0 as f32 * sy),
        rect.min + egui::vec2((x1 + 1) as f32 * sx, (y1 + 1) as f32 * sy),
    )
    .expand(1.5);
    ui.painter().rect_stroke(
        r,
        0.0,
        egui::Stroke::new(2.0, egui::Color32::from_rgb(255, 60, 60)),
        egui::StrokeKind::Outside,
    );
}

/// The "Trigger" section for the current sample, when it carries one.
pub fn section(w: &State, ui: &mut egui::Ui, actions: &mut Vec<Action>, i: usize) {
    let Some(l) = &w.loaded else { return };
    let r = &l.report;
    let Some(k) = r.trigger_of[i] else { return };
    let t = &r.triggers[k];
    ui.separator();
    ui.horizontal(|ui| {
        ui.strong(t.heading());
        let key = shortcut_text(ui.ctx(), Command::ToggleTrigger);
        let shown = if w.show_trigger { "shown" } else { "hidden" };
        if t.kind == TriggerKind::Patch && r.trigger_box[i].is_some() {
            ui.label(format!("box {shown} ({key} toggles)"));
        } else if t.kind == TriggerKind::Patch {
            // Joined by the fixed-pattern search: its exact steps, no box.
            ui.label("no box: the fixed-pattern search matched its exact steps");
        }
    });
    ui.label(&t.summary);
    ui.horizontal(|ui| {
        heatmap(ui, ("report", k), &t.map, t.width, t.height, t.bbox, 96.0);
        if let Some(p) = &t.pattern {
            pattern(ui, ("report", k), p, 64.0);
        }
        ui.vertical(|ui| {
            ui.label(t.map_caption());
            if ui
                .button(format!("Select all {} with this trigger", t.carriers))
                .clicked()
            {
                actions.push(Action::SelectTriggerCarriers(TriggerRef::Scan(k)));
            }
        });
    });
}

/// In the selection box: search the selection for a shared trigger, and show
/// what was found.
pub fn selection_search(w: &State, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    let Some(l) = &w.loaded else { return };
    if l.report.images.is_none() {
        ui.label("No images were read, so no trigger search.");
        return;
    }
    ui.horizontal(|ui| {
        let busy = w.tasks.trigger.is_some();
        if ui
            .add_enabled(!busy, egui::Button::new("Find trigger in selection"))
            .on_hover_text(
                "Compare the selected images with the rest of their class, pixel by pixel",
            )
            .clicked()
        {
            actions.push(Action::FindTrigger);
        }
        if busy {
            ui.spinner();
        }
    });
    let Some(f) = &w.found else { return };
    ui.label(&f.message);
    ui.horizontal(|ui| {
        let bbox = f.trigger.as_ref().and_then(|t| t.bbox);
        heatmap(
            ui,
            ("found", w.found_generation),
            &f.map,
            f.width,
            f.height,
            bbox,
            96.0,
        );
        if let Some(p) = f.trigger.as_ref().and_then(|t| t.pattern.as_ref()) {
            pattern(ui, ("found", w.found_generation), p, 64.0);
        }
        if f.trigger.is_some()
            && ui
                .button(format!("Select all {} with this trigger", f.carriers.len()))
                .clicked()
        {
            actions.push(Action::SelectTriggerCarriers(TriggerRef::Found));
        }
    });
}

/// A 0..1 map drawn in a heat colour scale (black → red → yellow → white),
/// pixel-exact, with the box (if any) outlined.
fn heatmap(
    ui: &mut egui::Ui,
    key: (&'static str, usize),
    map: &[f32],
    width: usize,
    height: usize,
    bbox: Option<[u32; 4]>,
    side: f32,
) {
    let ctx = ui.ctx().clone();
    let top = map.iter().copied().fold(0.0f32, f32::max).max(1e-6);
    let tex = super::cached(ui, "trigger_heatmap", key, || {
        let pixels: Vec<egui::Color32> = map.iter().map(|&v| heat(v / top)).collect();
        let img = egui::ColorImage::new([width, height], pixels);
        ctx.load_texture("trigger heatmap", img, egui::TextureOptions::NEAREST)
    });
    let scale = side / width.max(height) as f32;
    let size = egui::vec2(width as f32 * scale, height as f32 * scale);
    let resp = ui
        .add(egui::Image::from_texture((tex.id(), size)))
        .on_hover_text("Trigger map: bright = images of the group agree here, the rest do not");
    if let Some([x0, y0, x1, y1]) = bbox {
        let r = egui::Rect::from_min_max(
            resp.rect.min + egui::vec2(x0 as f32 * scale, y0 as f32 * scale),
            resp.rect.min + egui::vec2((x1 + 1) as f32 * scale, (y1 + 1) as f32 * scale),
        );
        ui.painter().rect_stroke(
            r.expand(1.0),
            0.0,
            egui::Stroke::new(1.5, egui::Color32::from_rgb(90, 200, 255)),
            egui::StrokeKind::Outside,
        );
    }
}

/// The stamp itself, enlarged pixel-exact; pixels outside it are dimmed.
fn pattern(
    ui: &mut egui::Ui,
    key: (&'static str, usize),
    p: &crate::detect::trigger::Pattern,
    side: f32,
) {
    let ctx = ui.ctx().clone();
    let tex = super::cached(ui, "trigger_pattern", key, || {
        let pixels: Vec<egui::Color32> = (0..p.width * p.height)
            .map(|j| {
                let v = &p.pixels[j * p.channels..(j + 1) * p.channels];
                let (r, g, b) = if p.channels == 3 {
                    (v[0], v[1], v[2])
                } else {
                    (v[0], v[0], v[0])
                };
                let a = if p.mask[j] { 255 } else { 60 };
                egui::Color32::from_rgba_unmultiplied(r, g, b, a)
            })
            .collect();
        let img = egui::ColorImage::new([p.width, p.height], pixels);
        ctx.load_texture("trigger pattern", img, egui::TextureOptions::NEAREST)
    });
    let scale = side / p.width.max(p.height) as f32;
    let size = egui::vec2(p.width as f32 * scale, p.height as f32 * scale);
    ui.add(egui::Image::from_texture((tex.id(), size)))
        .on_hover_text("The trigger pattern: the group's typical pixels inside the box");
}

fn heat(v: f32) -> egui::Color32 {
    let v = v.clamp(0.0, 1.0);
    let r = (v * 3.0).min(1.0);
    let g = (v * 3.0 - 1.0).clamp(0.0, 1.0);
    let b = (v * 3.0 - 2.0).clamp(0.0, 1.0);
    egui::Color32::from_rgb((r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8)
}
