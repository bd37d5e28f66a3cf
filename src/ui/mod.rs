//! The desktop workbench (eframe/egui). The [`Workbench`] owns what the
//! window shows and turns user intents ([`Action`]s) into calls on the core;
//! panels only read state and emit actions, and nothing heavy runs on the UI
//! thread.

mod app;
pub mod commands;
pub mod dialogs;
mod loaded;
mod panels;
pub mod pool;
pub mod saver;
pub mod scatter_view;
mod signoff;
mod state;
mod tasks;
mod thumbs;
pub mod views;

pub use app::Workbench;
pub use loaded::{Loaded, ScanState, Scanned, Stage};
pub use panels::PanelState;
pub use signoff::SignoffForm;
pub use state::{
    Action, CentralView, ColorBy, DecisionFilter, QueueFilter, Settings, State, TriggerRef,
};
pub use tasks::{BackgroundTasks, ScanTask};

use std::path::PathBuf;

/// Opens the workbench window on `dataset` (or the bundled sample).
pub fn run(dataset: PathBuf, settings: Settings) -> Result<(), String> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("poisonlens")
            .with_inner_size([1400.0, 860.0])
            // First launch fills the screen, whatever its size (it had
            // opened at 1400×860 on large screens); after that eframe
            // restores the size and place the window was left at.
            .with_maximized(true)
            .with_min_inner_size([900.0, 560.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "poisonlens",
        options,
        Box::new(move |cc| {
            let recent = cc
                .storage
                .and_then(|s| eframe::get_value::<Vec<PathBuf>>(s, app::RECENT_KEY))
                .unwrap_or_default();
            let mut settings = settings;
            settings.views = cc
                .storage
                .and_then(|s| eframe::get_value::<views::SavedViews>(s, views::VIEWS_KEY))
                .unwrap_or_default();
            settings.signing_key = cc
                .storage
                .and_then(|s| eframe::get_value::<Option<PathBuf>>(s, app::SIGNING_KEY))
                .flatten();
            Ok(Box::new(Workbench::new(dataset, recent, settings)))
        }),
    )
    .map_err(|e| e.to_string())
}
