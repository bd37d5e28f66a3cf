//! The current sample: image (pixel-exact when enlarged), why it was flagged,
//! the suggestion, metadata, neighbours, and the decision buttons.

use super::super::commands::{Command, command_description, shortcut_text};
use super::super::state::{Action, State};
use crate::review::{Decision, describe};

pub fn show(w: &State, own: &mut super::PanelState, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    if !w.selection.is_empty() {
        selection_box(w, &mut own.thumbs, ui, actions);
        ui.separator();
    }
    let Some(i) = w.current() else {
        let scanning = w.loaded.as_ref().is_some_and(|l| l.scan.is_running());
        ui.add(
            egui::Label::new(if scanning {
                "Nothing flagged yet: the scan is running, and flags join the queue as each detector finishes. Click a point in the view to look at any sample."
            } else if w.filter.unflagged {
                "The queue is empty: no sample matches the filter."
            } else {
                "The queue is empty: nothing flagged matches the filter."
            })
            .wrap(),
        );
        if !scanning && !w.filter.unflagged && w.loaded.is_some() {
            let key = shortcut_text(ui.ctx(), Command::ToggleUnflagged);
            if ui
                .add(egui::Button::new("Show unflagged samples too").shortcut_text(key))
                .on_hover_text(command_description(Command::ToggleUnflagged))
                .clicked()
            {
                actions.push(Action::FilterUnflagged(true));
            }
        }
        return;
    };
    let ctx = ui.ctx().clone();
    let Some(l) = &w.loaded else { return };
    let r = &l.report;
    let classes = &l.dataset.classes;
    ui.heading(format!("Sample {}", r.ids[i]));
    ui.label(format!(
        "Label: {}   ·   suspicion {:.2}",
        classes[r.labels[i] as usize], r.score[i]
    ));
    let side = (ui.available_width() - 8.0).clamp(120.0, 300.0);
    if let Some(t) = own.thumbs.as_mut()
        && let Some((rect, size)) = super::image(ui, t.get(&ctx, i), side)
        && w.show_trigger
    {
        super::trigger::overlay(w, ui, i, rect, size);
    }
    // Decision buttons.
    let l = w.loaded.as_ref().expect("checked above");
    let r = &l.report;
    let decision = l.review().decision(i);
    let words = |d: Option<Decision>| match d {
        None => "not reviewed yet".to_string(),
        Some(Decision::Keep) => "keep".to_string(),
        Some(Decision::Exclude) => "exclude".to_string(),
        Some(Decision::Relabel(c)) => format!("relabel to {}", classes[c as usize]),
    };
    match l.saver.pending_for(i) {
        // Not on disk yet: never shown as done.
        Some(d) => ui.label(format!("Decision: {} (saving…)", words(Some(d)))),
        None => ui.label(format!("Decision: {}", words(decision.map(|e| e.decision)))),
    };
    // The decision in force (or on its way to disk) shows on its button.
    let shown = l.saver.pending_for(i).or(decision.map(|e| e.decision));
    ui.horizontal_wrapped(|ui| {
        for (label, c, d) in [
            ("Keep", Command::Keep, Decision::Keep),
            ("Exclude", Command::Exclude, Decision::Exclude),
        ] {
            if ui
                .add(egui::Button::new(label).selected(shown == Some(d)))
                .on_hover_text(shortcut_text(&ctx, c))
                .clicked()
            {
                actions.push(Action::Command(c));
            }
        }
        if let Some(s) = r.suggested_label[i] {
            let text = format!(
                "Relabel to {} ({:.0}%)",
                classes[s as usize],
                r.suggested_confidence[i] * 100.0
            );
            if ui
                .button(text)
                .on_hover_text(shortcut_text(&ctx, Command::AcceptSuggestion))
                .clicked()
            {
                actions.push(Action::Command(Command::AcceptSuggestion));
            }
        }
    });
    ui.horizontal(|ui| {
        super::combo(ui, "Relabel to", "class…", |ui| {
            for (c, name) in classes.iter().enumerate() {
                let key = if c < 10 {
                    format!("{}  ", (c + 1) % 10)
                } else {
                    String::new()
                };
                if ui.selectable_label(false, format!("{key}{name}")).clicked() {
                    actions.push(Action::Command(Command::Relabel(c as u32)));
                }
            }
        });
    });
    ui.horizontal(|ui| {
        let label = ui.label("Reason");
        ui.add(
            egui::TextEdit::singleline(&mut own.reason)
                .hint_text("why (kept with each decision)")
                .desired_width(ui.available_width()),
        )
        .labelled_by(label.id);
    });
    // Once typed, the hint is gone: say the reason goes with every decision
    // from now on, and offer to clear it.
    if !own.reason.trim().is_empty() {
        ui.horizontal(|ui| {
            ui.small("This reason is recorded with every decision until cleared.");
            if ui.small_button("Clear reason").clicked() {
                own.reason.clear();
            }
        });
    }
    let l = w.loaded.as_ref().expect("checked above");
    let r = &l.report;
    ui.separator();
    if r.reasons[i].is_empty() {
        // Reached from a click in the view or the queue's "every sample".
        ui.strong("Not flagged");
        ui.add(
            egui::Label::new(
                "No detector's evidence reached its bar: the detector scores below say how near each came (0.5 is a detector's bar).",
            )
            .wrap(),
        );
    } else {
        ui.strong("Why it was flagged");
    }
    for reason in r.reasons[i].split("; ").filter(|s| !s.is_empty()) {
        ui.label(format!("• {reason}"));
    }
    super::trigger::section(w, ui, actions, i);
    let l = w.loaded.as_ref().expect("checked above");
    let r = &l.report;
    egui::CollapsingHeader::new("Detector scores")
        .default_open(false)
        .show(ui, |ui| {
            egui::Grid::new("scores").show(ui, |ui| {
                for d in &r.detectors {
                    ui.label(d.name);
                    ui.label(format!(
                        "{:.2}{}",
                        d.score[i],
                        if d.flagged[i] { "  flagged" } else { "" }
                    ));
                    ui.end_row();
                }
            });
        });
    if !l.dataset.metadata.is_empty() || l.dataset.paths.is_some() {
        egui::CollapsingHeader::new("Metadata")
            .default_open(true)
            .show(ui, |ui| {
                egui::Grid::new("meta").show(ui, |ui| {
                    if let Some(p) = &l.dataset.paths {
                        ui.label("path");
                        ui.label(&p[i]);
                        ui.end_row();
                    }
                    for m in &l.dataset.metadata {
                        ui.label(&m.name);
                        ui.label(&m.values[i]);
                        ui.end_row();
                    }
                });
            });
    }
    ui.strong("Nearest neighbours");
    if l.report.neighbours.k == 0 {
        ui.weak("Shown when the scan has found them.");
    }
    let nbrs: Vec<usize> = l
        .report
        .neighbours
        .of(i)
        .iter()
        .map(|&j| j as usize)
        .collect();
    let names: Vec<String> = nbrs
        .iter()
        .map(|&j| classes[r.labels[j] as usize].clone())
        .collect();
    ui.horizontal_wrapped(|ui| {
        for (j, name) in nbrs.iter().zip(names) {
            ui.vertical(|ui| {
                ui.set_width(56.0);
                if let Some(t) = own.thumbs.as_mut() {
                    super::image(ui, t.get(&ctx, *j), 56.0);
                }
                let b = egui::Button::new(egui::RichText::new(name).small()).truncate();
                if ui
                    .add_sized([56.0, 16.0], b)
                    .on_hover_text("show this sample")
                    .clicked()
                {
                    actions.push(Action::Select(*j));
                }
            });
        }
    });
}

/// Thumbnails the selection preview draws at most (the rest are counted).
const PREVIEW_THUMBS: usize = 60;
/// Side of a preview thumbnail, in points.
const PREVIEW_SIDE: f32 = 40.0;

/// The selection: what it holds (thumbnails, classes), the batch actions,
/// and — once one is chosen — what it would change, before it applies.
fn selection_box(
    w: &State,
    thumbs: &mut Option<super::super::thumbs::Thumbs>,
    ui: &mut egui::Ui,
    actions: &mut Vec<Action>,
) {
    if w.loaded.is_none() {
        return;
    }
    ui.strong(format!("Selection: {} samples", w.selection.len()));
    class_counts(w, ui);
    // The buttons come before the images, whose loading must not move them.
    match w.batch {
        None => batch_buttons(w, ui, actions),
        Some(d) => batch_confirmation(w, ui, actions, d),
    }
    selection_images(w, thumbs, ui);
    super::trigger::selection_search(w, ui, actions);
}

/// How many of the selection carry each label.
fn class_counts(w: &State, ui: &mut egui::Ui) {
    let Some(l) = &w.loaded else { return };
    let (r, classes) = (&l.report, &l.dataset.classes);
    let text = super::cached(ui, "selection_classes", w.selection_generation, || {
        let mut per_class = vec![0usize; classes.len()];
        for &i in &w.selection {
            per_class[r.labels[i] as usize] += 1;
        }
        let by_class: Vec<String> = per_class
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| format!("{} {n}", classes[c]))
            .collect();
        format!("by label: {}", by_class.join(" · "))
    });
    ui.add(egui::Label::new(text.as_str()).wrap());
}

/// A grid of the selection's images (hover: id, label, decision): the
/// batch is seen before it applies.
fn selection_images(
    w: &State,
    thumbs: &mut Option<super::super::thumbs::Thumbs>,
    ui: &mut egui::Ui,
) {
    let Some(l) = &w.loaded else { return };
    let (r, classes) = (&l.report, &l.dataset.classes);
    let (Some(t), true) = (thumbs.as_mut(), l.dataset.paths.is_some()) else {
        return;
    };
    let ctx = ui.ctx().clone();
    let rows = w.selection.len().min(PREVIEW_THUMBS).div_ceil(6).min(3) as f32;
    egui::ScrollArea::vertical()
        .id_salt("selection_preview")
        .max_height(rows * (PREVIEW_SIDE + 6.0))
        .show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                for &i in w.selection.iter().take(PREVIEW_THUMBS) {
                    let decided = describe(l.review().decision(i).map(|e| e.decision), classes);
                    let hover = format!(
                        "{} · {} · {decided}",
                        r.ids[i], classes[r.labels[i] as usize]
                    );
                    // The square is allocated here, so the row wraps.
                    let square = egui::Vec2::splat(PREVIEW_SIDE);
                    let (rect, response) = ui.allocate_exact_size(square, egui::Sense::hover());
                    let mut cell = ui.new_child(egui::UiBuilder::new().max_rect(rect));
                    super::image(&mut cell, t.get(&ctx, i), PREVIEW_SIDE);
                    response.on_hover_text(hover);
                }
            });
        });
    if w.selection.len() > PREVIEW_THUMBS {
        ui.weak(format!("… and {} more", w.selection.len() - PREVIEW_THUMBS));
    }
}

/// The batch actions; each only proposes (see [`batch_confirmation`]).
fn batch_buttons(w: &State, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    let Some(l) = &w.loaded else { return };
    ui.horizontal_wrapped(|ui| {
        if ui.button("Exclude selection").clicked() {
            actions.push(Action::ProposeBatch(Decision::Exclude));
        }
        if ui.button("Keep selection").clicked() {
            actions.push(Action::ProposeBatch(Decision::Keep));
        }
        super::combo(ui, "Relabel selection", "class…", |ui| {
            for (c, name) in l.dataset.classes.iter().enumerate() {
                if ui.selectable_label(false, name).clicked() {
                    actions.push(Action::ProposeBatch(Decision::Relabel(c as u32)));
                }
            }
        });
        if ui.button("Clear").clicked() {
            actions.push(Action::SelectMany(Vec::new()));
        }
    });
}

/// What the proposed batch would do — how many samples get it, how many
/// earlier decisions it replaces — with Apply and Cancel.
fn batch_confirmation(w: &State, ui: &mut egui::Ui, actions: &mut Vec<Action>, d: Decision) {
    let Some(l) = &w.loaded else { return };
    // Worked out again only when the decisions or the selection change
    // (a selection may hold a million samples).
    let key = (l.review().version(), w.selection_generation, d);
    let e = *super::cached(ui, "batch_effect", key, || {
        l.review().batch_effect(&w.selection, d)
    });
    let n = e.undecided + e.unchanged + e.changed();
    let classes = &l.dataset.classes;
    ui.group(|ui| {
        ui.strong(match d {
            Decision::Keep => format!("Keep {n} samples?"),
            Decision::Exclude => format!("Exclude {n} samples?"),
            Decision::Relabel(c) => format!("Relabel {n} samples to {}?", classes[c as usize]),
        });
        let mut parts = vec![format!("{} without a decision", e.undecided)];
        if e.unchanged > 0 {
            parts.push(format!("{} already so", e.unchanged));
        }
        ui.label(parts.join(" · "));
        if e.changed() > 0 {
            let mut replaced = Vec::new();
            for (k, name) in [
                (e.keeps_changed, "keep"),
                (e.excludes_changed, "exclude"),
                (e.relabels_changed, "relabel"),
            ] {
                if k > 0 {
                    replaced.push(format!("{k} {name}{}", if k == 1 { "" } else { "s" }));
                }
            }
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!(
                    "Replaces {} earlier decisions: {}",
                    e.changed(),
                    replaced.join(", ")
                ),
            );
        }
        ui.horizontal(|ui| {
            if ui.button(format!("Apply to {n} samples")).clicked() {
                actions.push(Action::ConfirmBatch);
            }
            if ui.button("Cancel").clicked() {
                actions.push(Action::CancelBatch);
            }
        });
    });
}
