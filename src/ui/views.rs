//! What the window showed of each dataset — the colouring, the projection,
//! the sample on screen — kept between sessions (in eframe's storage), so
//! reopening a dataset puts the analyst back where they were.

use std::collections::HashMap;

use super::app::{Action, ColorBy, Workbench};

/// Where the window keeps the views (eframe storage key).
pub const VIEWS_KEY: &str = "poisonlens.views";
/// Datasets whose views are kept (the most recently shown).
pub const MAX_VIEWS: usize = 50;

/// One dataset's view.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedView {
    /// The colouring's name ([`ColorBy::name`]).
    pub color_by: String,
    /// Whether the t-SNE projection was shown (else PCA).
    pub tsne: bool,
    /// The id of the sample on screen.
    pub sample: Option<String>,
    /// When it was saved (seconds since 1970), to keep the newest.
    pub at: u64,
}

/// Views by dataset path.
pub type SavedViews = HashMap<String, SavedView>;

/// Notes what the window shows of the open dataset in `w.settings.views`.
pub fn remember(w: &mut Workbench) {
    let Some(l) = &w.loaded else { return };
    let view = SavedView {
        color_by: w.color_by.name().to_string(),
        tsne: w.tsne_wanted(),
        sample: w.current().map(|i| l.dataset.ids[i].clone()),
        at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    w.settings.views.insert(l.path.display().to_string(), view);
    if w.settings.views.len() > MAX_VIEWS {
        let oldest = w
            .settings
            .views
            .iter()
            .min_by_key(|(_, v)| v.at)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            w.settings.views.remove(&k);
        }
    }
}

/// Puts back the saved view of the dataset just opened, if there is one.
pub fn restore(w: &mut Workbench) {
    let Some(l) = &w.loaded else { return };
    let Some(view) = w.settings.views.get(&l.path.display().to_string()).cloned() else {
        return;
    };
    if let Some(c) = ColorBy::ALL.iter().find(|c| c.name() == view.color_by) {
        w.color_by = *c;
    }
    let sample = view
        .sample
        .as_ref()
        .and_then(|id| l.dataset.ids.iter().position(|s| s == id));
    if view.tsne && l.has_view() {
        w.apply(Action::UseTsne);
    }
    if let Some(i) = sample {
        w.apply(Action::Select(i));
    }
}
