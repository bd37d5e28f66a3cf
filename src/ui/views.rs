//! What the window showed of each dataset — the colouring, the projection,
//! the sample on screen — kept between sessions (in eframe's storage), so
//! reopening a dataset puts the analyst back where they were. Noting and
//! restoring them is [`super::State::remember_view`] and
//! [`super::State::restore_view`].

use std::collections::HashMap;

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
