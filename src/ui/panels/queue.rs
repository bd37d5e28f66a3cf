//! The triage queue: flagged samples, most suspicious first, with filters
//! (and, asked for, the samples no detector flagged after them).

use super::super::ScanState;
use super::super::commands::{Command, command_description};
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
            let shown = if w.filter.unflagged {
                "every sample"
            } else {
                "flagged"
            };
            super::combo_row(ui, "Show", shown, |ui| {
                for (unflagged, name) in [(false, "flagged"), (true, "every sample")] {
                    if ui
                        .selectable_label(w.filter.unflagged == unflagged, name)
                        .on_hover_text(command_description(Command::ToggleUnflagged))
                        .clicked()
                    {
                        actions.push(Action::FilterUnflagged(unflagged));
                    }
                }
            });
            budget(w, ui, actions);
        });
    ui.label(egui::RichText::new(&l.budget_note).small());
    scan_line(w, ui, actions);
    // Flagged as the queue means it: by the chosen detector, or at all.
    let chosen = w.filter.detector.and_then(|d| l.report.detector(d));
    let is_flagged = |i: usize| chosen.map_or(l.report.flagged[i], |d| d.flagged[i]);
    let flagged = if w.filter.unflagged {
        // The queue is sorted flagged first (`sort_queue`): no count over
        // a million rows each frame.
        let n = w.queue.partition_point(|&i| is_flagged(i));
        format!(" ({n} flagged; dim rows: not flagged)")
    } else {
        String::new()
    };
    ui.label(format!(
        "{} in queue{flagged} · {} of {}",
        w.queue.len(),
        (w.cursor + 1).min(w.queue.len()),
        w.queue.len()
    ));
    ui.separator();
    let row_h = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
    let follow = FollowCursor::new(ui, row_h);
    let mut area = egui::ScrollArea::vertical().auto_shrink([false, false]);
    if let Some(offset) = follow.offset(w.cursor) {
        area = area.vertical_scroll_offset(offset);
    }
    area.show_rows(ui, row_h, w.queue.len(), |ui, range| {
        follow.remember(ui, w.cursor, range.clone());
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
            // Samples not flagged (shown with "every sample") read dim.
            let text = egui::RichText::new(text).monospace();
            let text = if is_flagged(i) { text } else { text.weak() };
            let resp = ui.selectable_label(pos == w.cursor, text);
            if resp.clicked() {
                actions.push(Action::Select(i));
            }
        }
    });
}

/// Keeps the queue's current row in view when the cursor moves (keys, a
/// click in the plot, a decision moving on), and only then: scrolling the
/// list by hand away from the cursor is left alone.
///
/// Only the rows in view are laid out, so a row cannot scroll itself into
/// view once the cursor has jumped past them (several key presses in one
/// frame, a held key, a pick in the plot); the offset is set from the
/// rows shown last frame instead.
struct FollowCursor {
    id: egui::Id,
    /// Row height with the spacing between rows.
    row: f32,
    /// Height the list has to show rows in.
    view: f32,
    /// The cursor and the rows in view at the last frame.
    last: Option<(usize, std::ops::Range<usize>)>,
}

impl FollowCursor {
    fn new(ui: &egui::Ui, row_h: f32) -> FollowCursor {
        let id = ui.make_persistent_id("queue rows in view");
        FollowCursor {
            id,
            row: row_h + ui.spacing().item_spacing.y,
            view: ui.available_height(),
            last: ui.ctx().data(|d| d.get_temp(id)),
        }
    }

    /// The scroll offset that brings `cursor` into view, when it moved
    /// since the last frame and out of the rows shown then.
    fn offset(&self, cursor: usize) -> Option<f32> {
        let (before, shown) = self.last.as_ref()?;
        // The last row laid out may be only partly in view.
        let fully = shown.start..shown.end.saturating_sub(1);
        if *before == cursor || fully.contains(&cursor) {
            return None;
        }
        let top = cursor as f32 * self.row;
        Some(if cursor < fully.start {
            top
        } else {
            (top + self.row - self.view).max(0.0)
        })
    }

    /// Notes the cursor and the rows laid out this frame.
    fn remember(&self, ui: &egui::Ui, cursor: usize, shown: std::ops::Range<usize>) {
        ui.ctx()
            .data_mut(|d| d.insert_temp(self.id, (cursor, shown)));
    }
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
