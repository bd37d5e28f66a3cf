//! Native file dialogs, and what to say when none can be shown.
//!
//! A dialog returns nothing both when the user cancels it and when it could
//! not be shown at all (no XDG desktop portal, no display server): the
//! second returns at once, sooner than a person can cancel a dialog, and
//! the window then says so and points to a way that needs no dialog.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A dialog that returns empty-handed sooner than this was never shown.
pub const NO_DIALOG_WITHIN: Duration = Duration::from_millis(300);

/// What a file dialog gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Picked {
    /// The user chose this path.
    Path(PathBuf),
    /// The user cancelled.
    Cancelled,
    /// No dialog could be shown.
    Unavailable,
}

/// Runs `dialog` (an `rfd` call) and tells a cancel from a dialog that
/// could not be shown ([`NO_DIALOG_WITHIN`]).
pub fn pick(dialog: impl FnOnce() -> Option<PathBuf>) -> Picked {
    let started = Instant::now();
    match dialog() {
        Some(p) => Picked::Path(p),
        None if started.elapsed() < NO_DIALOG_WITHIN => Picked::Unavailable,
        None => Picked::Cancelled,
    }
}

/// Said when no dialog could be shown where a path can be typed instead.
pub const TYPE_THE_PATH: &str =
    "No file dialog could be opened here (no desktop portal?): type the path into the field.";

/// Said when no dialog could be shown for File > Open.
pub const OPEN_ANOTHER_WAY: &str = "No file dialog could be opened here (no desktop portal?). Drop a manifest or image folder on the window, use File > Open recent, or start the workbench as `poisonlens PATH`.";

/// Said when no dialog could be shown for File > Open model.
pub const MODEL_ANOTHER_WAY: &str = "No file dialog could be opened here (no desktop portal?). Drop the .onnx file on the window, or start the workbench as `poisonlens DATASET --model MODEL.onnx`.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_empty_answer_is_no_dialog_and_a_slow_one_a_cancel() {
        assert_eq!(pick(|| None), Picked::Unavailable);
        let slow = || {
            std::thread::sleep(NO_DIALOG_WITHIN + Duration::from_millis(50));
            None
        };
        assert_eq!(pick(slow), Picked::Cancelled);
        let chosen = PathBuf::from("/data/manifest.csv");
        assert_eq!(pick(|| Some(chosen.clone())), Picked::Path(chosen));
    }
}
