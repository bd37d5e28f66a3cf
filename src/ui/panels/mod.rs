//! The window's panels. Each reads the window's [`State`] (read-only) and
//! pushes [`Action`]s; what a panel keeps for itself (text being typed, the
//! sign-off form, decoded images) is its part of [`PanelState`]. No panel
//! changes the state itself, and none depends on the workbench that owns it.

mod clusters;
mod help;
mod picker;
mod queue;
mod sample;
mod scatter;
mod signoff;
mod tally;
mod top_bar;
mod trigger;

use super::signoff::SignoffForm;
use super::state::{Action, CentralView, State};
use super::thumbs::Thumbs;

/// What the panels keep for themselves: UI state that is nobody's truth.
/// The workbench owns it (a command opens the picker or the sign-off form,
/// a decision takes the reason) but only the panels edit it.
#[derive(Default)]
pub struct PanelState {
    /// The type-ahead class picker's text, while it is open.
    pub picker: Option<String>,
    /// Reason attached to the next decision (the sample panel's field).
    pub reason: String,
    /// The Sign-off / export dialog, while open.
    pub signoff: Option<SignoffForm>,
    /// Sample images decoded for the window (sample panel and the
    /// scatter's hover), one cache per dataset.
    pub thumbs: Option<Thumbs>,
}

/// Lays out the whole window.
pub fn window(w: &State, own: &mut PanelState, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
    egui::Panel::top("top_bar").show(ui, |ui| top_bar::show(w, ui, actions));
    if w.loaded.is_some() {
        egui::Panel::bottom("tally").show(ui, |ui| tally::show(w, ui));
        egui::Panel::left("queue")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| queue::show(w, ui, actions));
        egui::Panel::right("sample")
            .resizable(true)
            .default_size(360.0)
            .show(ui, |ui| {
                // Image, decision, reasons, trigger, scores, metadata,
                // neighbours and a selection do not fit a laptop screen:
                // the panel scrolls, so every part can be reached.
                egui::ScrollArea::vertical()
                    .id_salt("sample_panel")
                    .auto_shrink([false, false])
                    .show(ui, |ui| sample::show(w, own, ui, actions));
            });
        egui::CentralPanel::default().show(ui, |ui| {
            ui.horizontal(|ui| {
                for (v, name) in [
                    (CentralView::Embedding, "Embedding"),
                    (CentralView::ClusterMap, "Cluster map"),
                ] {
                    if ui.selectable_label(w.view == v, name).clicked() {
                        actions.push(Action::ShowView(v));
                    }
                }
                if let Some((c, g)) = w.filter.cluster {
                    let l = w.loaded.as_ref().expect("loaded");
                    ui.separator();
                    ui.label(format!(
                        "Showing {} · {} group",
                        l.dataset.classes[c as usize],
                        crate::detect::cluster_map::row_name(g)
                    ));
                    if ui.small_button("Show all").clicked() {
                        actions.push(Action::FilterCluster(None));
                    }
                }
            });
            ui.separator();
            match w.view {
                CentralView::Embedding => scatter::show(w, &mut own.thumbs, ui, actions),
                CentralView::ClusterMap => clusters::show(w, ui, actions),
            }
        });
    } else {
        egui::CentralPanel::default().show(ui, |ui| {
            ui.centered_and_justified(|ui| {
                ui.label(if w.is_busy() {
                    "Opening the dataset…"
                } else {
                    "Open a dataset: File > Open, or drop a manifest onto this window."
                });
            });
        });
    }
    help::show(w, ui, actions);
    picker::show(w, &mut own.picker, ui, actions);
    signoff::show(w, &mut own.signoff, ui, actions);
}

/// A drop-down with its label *before* it, on one line: egui's
/// `ComboBox::from_label` puts the label after, so "[PCA ▾] Projection
/// [given label ▾] Colour by" read backwards. The label also names the
/// drop-down for screen readers (and tests). Returns the drop-down's
/// response.
pub fn combo<R>(
    ui: &mut egui::Ui,
    label: &str,
    selected: impl Into<egui::WidgetText>,
    add: impl FnOnce(&mut egui::Ui) -> R,
) -> egui::Response {
    ui.horizontal(|ui| labelled_combo(ui, label, selected, add))
        .inner
}

/// A label and the drop-down it names, laid out by the caller.
fn labelled_combo<R>(
    ui: &mut egui::Ui,
    label: &str,
    selected: impl Into<egui::WidgetText>,
    add: impl FnOnce(&mut egui::Ui) -> R,
) -> egui::Response {
    let name = ui.label(label);
    egui::ComboBox::from_id_salt(label)
        .selected_text(selected)
        .show_ui(ui, add)
        .response
        .labelled_by(name.id)
}

/// [`combo`] as one row of a two-column [`egui::Grid`]: the label in the
/// first column, the drop-down in the second, so a panel's drop-downs line
/// up however long their labels are.
pub fn combo_row<R>(
    ui: &mut egui::Ui,
    label: &str,
    selected: impl Into<egui::WidgetText>,
    add: impl FnOnce(&mut egui::Ui) -> R,
) -> egui::Response {
    let r = labelled_combo(ui, label, selected, add);
    ui.end_row();
    r
}

/// Distinct, readable colours for up to 20 classes (Tableau 20 order).
pub fn class_color(c: usize) -> egui::Color32 {
    const P: [(u8, u8, u8); 20] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
        (174, 199, 232),
        (255, 187, 120),
        (152, 223, 138),
        (255, 152, 150),
        (197, 176, 213),
        (196, 156, 148),
        (247, 182, 210),
        (199, 199, 199),
        (219, 219, 141),
        (158, 218, 229),
    ];
    let (r, g, b) = P[c % P.len()];
    egui::Color32::from_rgb(r, g, b)
}

/// Draws a sample image in a `side`×`side` square, pixel-exact; a spinner
/// while it decodes, the reason when it cannot be read. The square is the
/// same in every state, so nothing below it jumps when an image arrives.
/// Returns where the image landed and its size in pixels, for overlays.
pub(super) fn image(
    ui: &mut egui::Ui,
    thumb: &super::thumbs::Thumb,
    side: f32,
) -> Option<(egui::Rect, [u32; 2])> {
    let square = egui::vec2(side, side);
    match thumb {
        super::thumbs::Thumb::Ready(tex, [w, h]) => {
            let (rect, _) = ui.allocate_exact_size(square, egui::Sense::hover());
            let scale = side / (*w.max(h) as f32);
            let size = egui::vec2(*w as f32 * scale, *h as f32 * scale);
            let at = egui::Rect::from_center_size(rect.center(), size);
            egui::Image::from_texture((tex.id(), size))
                .texture_options(egui::TextureOptions::NEAREST)
                .paint_at(ui, at);
            return Some((at, [*w as u32, *h as u32]));
        }
        super::thumbs::Thumb::Loading => {
            let (rect, _) = ui.allocate_exact_size(square, egui::Sense::hover());
            egui::Spinner::new().paint_at(
                ui,
                egui::Rect::from_center_size(rect.center(), egui::vec2(16.0, 16.0)),
            );
        }
        super::thumbs::Thumb::Failed(e) => {
            ui.add_sized(
                square,
                egui::Label::new(format!("image unavailable: {e}")).wrap(),
            );
        }
    }
    None
}

/// Recomputes `f` only when `key` changes (kept in egui's temporary memory),
/// so per-frame drawing does not redo O(samples) work on a million samples.
pub(super) fn cached<K, T>(
    ui: &egui::Ui,
    name: &str,
    key: K,
    f: impl FnOnce() -> T,
) -> std::sync::Arc<T>
where
    K: PartialEq + Clone + Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    let id = ui.scope_id().with(name);
    if let Some((k, v)) = ui.ctx().data(|d| d.get_temp::<(K, std::sync::Arc<T>)>(id))
        && k == key
    {
        return v;
    }
    let v = std::sync::Arc::new(f());
    ui.ctx().data_mut(|d| d.insert_temp(id, (key, v.clone())));
    v
}
