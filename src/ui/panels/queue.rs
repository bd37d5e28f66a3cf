//! The triage queue: flagged samples, most suspicious first, with filters.

use super::super::ScanState;
use super::super::state::{Action, DecisionFilter, State};
use crate::review::Decision;

use crate::detect::{detector_info, detector_infos};

pub fn show(w: &State, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    let Some(l) = &w.loaded else { return };
    ui.heading("Triage queue");
    // The filters' drop-downs line up in one column.
    egui::Grid::new("queue_filters")
        .num_columns(2)
        .show(ui, |ui| {
            let current = w
                .filter
                .detector
                .and_then(|d| detector_info(d).map(|x| x.title))
                .unwrap_or("any (combined)");
            super::combo_row(ui, "Detector", current, |ui| {
                if ui
                    .selectable_label(w.filter.detector.is_none(), "any (combined)")
                    .clicked()
                {
                    actions.push(Action::FilterDetector(None));
                }
                for d in detector_infos() {
                    if ui
                        .selectable_label(w.filter.detector == Some(d.name), d.title)
                        .on_hover_text(d.finds)
                        .clicked()
                    {
                        actions.push(Action::FilterDetector(Some(d.name)));
                    }
                }
            });
            let current = w
                .filter
                .class
                .map_or("all", |c| l.dataset.classes[c as usize].as_str());
            super::combo_row(ui, "Class", current, |ui| {
                if ui
                    .selectable_label(w.filter.class.is_none(), "all")
                    .clicked()
                {
                    actions.push(Action::FilterClass(None));
                }
                for (c, name) in l.dataset.classes.iter().enumerate() {
                    if ui
                        .selectable_label(w.filter.class == Some(c as u32), name)
                        .clicked()
                    {
                        actions.push(Action::FilterClass(Some(c as u32)));
                    }
                }
            });
            super::combo_row(ui, "Decision", w.filter.decision.name(), |ui| {
                for d in DecisionFilter::ALL {
                    if ui
                        .selectable_label(w.filter.decision == d, d.name())
                        .clicked()
                    {
                        actions.push(Action::FilterDecision(d));
                    }
                }
            });
            budget(w, ui, actions);
        });
    ui.label(egui::RichText::new(&l.budget_note).small());
    scan_line(w, ui, actions);
    ui.label(format!(
        "{} in queue · {} of {}",
        w.queue.len(),
        (w.cursor + 1).min(w.queue.len()),
        w.queue.len()
    ));
    ui.separator();
    let row_h = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show_rows(ui, row_h, w.queue.len(), |ui, range| {
            for pos in range {
                let i = w.queue[pos];
                let r = &l.report;
                let decided = l.review().decision(i).map(|e| e.decision);
                let mark = match decided {
                    _ if l.saver.pending_for(i).is_some() => "…  ",
                    None => "   ",
                    Some(Decision::Keep) => "K  ",
                    Some(Decision::Exclude) => "X  ",
                    Some(Decision::Relabel(_)) => "R  ",
                };
                // A relabelled sample reads with the label it now has.
                let label = match decided {
                    Some(Decision::Relabel(c)) => format!("→{}", l.dataset.classes[c as usize]),
                    _ => l.dataset.classes[r.labels[i] as usize].clone(),
                };
                let text = format!("{mark}{:<10} {label:<12} {:.2}", r.ids[i], r.score[i]);
                let resp =
                    ui.selectable_label(pos == w.cursor, egui::RichText::new(text).monospace());
                if pos == w.cursor
                    && ui.ctx().input(|inp| {
                        inp.events
                            .iter()
                            .any(|e| matches!(e, egui::Event::Key { .. }))
                    })
                {
                    resp.scroll_to_me(None);
                }
                if resp.clicked() {
                    actions.push(Action::Select(i));
                }
            }
        });
}

/// Budgets offered for the calibrated tests.
const BUDGETS: [f64; 5] = [0.01, 0.02, 0.05, 0.10, 0.20];

/// The false-flag budget selector (a row of the filters' grid; what it
/// promises about this queue is said under the grid).
fn budget(w: &State, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    let pct = |q: f64| format!("{:.0}%", q * 100.0);
    super::combo_row(ui, "False-flag budget", pct(w.settings.fdr), |ui| {
            for q in BUDGETS {
                if ui
                    .selectable_label(w.settings.fdr == q, pct(q))
                    .clicked()
                {
                    actions.push(Action::SetFdr(q));
                }
            }
        })
        .on_hover_text("How much evidence the calibrated tests (near-copies, triggers) need before they flag; changing it scans the dataset again (decisions are kept)");
}

/// Where the scan stands: which detectors are still running, or how the
/// report was got; a stopped scan can be started again.
fn scan_line(w: &State, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    let Some(l) = &w.loaded else { return };
    ui.horizontal_wrapped(|ui| {
        let text = egui::RichText::new(l.scan.short()).small();
        let text = if l.scan.is_running() {
            text
        } else {
            text.weak()
        };
        ui.label(text).on_hover_text(l.scan.describe());
        if matches!(l.scan, ScanState::Stopped(_)) && ui.small_button("Scan again").clicked() {
            actions.push(Action::Rescan);
        }
    });
}
