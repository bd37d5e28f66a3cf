//! Every keyboard command, defined once. Menus, shortcuts and the `?` help
//! all read this table, so a key can never do one thing and be documented as
//! another.

use egui::{Key, KeyboardShortcut, Modifiers};

/// Something the user can ask the workbench to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Next sample in the queue.
    Next,
    /// Previous sample in the queue.
    Previous,
    /// Keep the current sample (or selection) as labelled.
    Keep,
    /// Exclude it from the cleaned dataset.
    Exclude,
    /// Relabel to the suggested label.
    AcceptSuggestion,
    /// Relabel to class number n (0-based).
    Relabel(u32),
    /// Open the type-ahead class picker.
    RelabelPicker,
    /// Undo the last decision.
    Undo,
    /// Redo the last undone decision.
    Redo,
    /// Show or hide the list of keys.
    Help,
    /// Open a dataset.
    Open,
    /// Open the Sign-off / export dialog.
    SignOff,
    /// Show or hide the suspected trigger box over the image.
    ToggleTrigger,
    /// Show samples no detector flagged in the queue too, or only flagged ones.
    ToggleUnflagged,
    /// Close the window (decisions on their way to disk are finished
    /// first: the writer thread is joined).
    Quit,
}

impl Command {
    /// Whether it records a decision on the current sample (so it must
    /// not fire on a sample the user has not seen).
    pub fn decides(self) -> bool {
        matches!(
            self,
            Command::Keep | Command::Exclude | Command::AcceptSuggestion | Command::Relabel(_)
        )
    }
}

/// The menus of the window's menu bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Menu {
    /// Opening and exporting.
    File,
    /// Decisions and moving through the queue.
    Review,
    /// What the window shows.
    View,
    /// Help.
    Help,
}

/// A command with its keys, its menu entry and its description: the one
/// place each of them is written (menus, the key list and tooltips read it).
pub struct Binding {
    /// The command.
    pub command: Command,
    /// Keys that trigger it (first one is shown in menus).
    pub keys: Vec<KeyboardShortcut>,
    /// Its menu entry's text.
    pub label: &'static str,
    /// The menu it is in (None: the relabel digits, which have their own
    /// submenu naming each class).
    pub menu: Option<Menu>,
    /// What it does, for the key list and tooltips.
    pub description: &'static str,
}

const NUMBER_KEYS: [Key; 10] = [
    Key::Num1,
    Key::Num2,
    Key::Num3,
    Key::Num4,
    Key::Num5,
    Key::Num6,
    Key::Num7,
    Key::Num8,
    Key::Num9,
    Key::Num0,
];

fn plain(key: Key) -> KeyboardShortcut {
    KeyboardShortcut::new(Modifiers::NONE, key)
}

/// The command table. Order matters for matching: Redo (Ctrl+Shift+Z) comes
/// before Undo (Ctrl+Z) so the longer shortcut wins.
pub fn bindings() -> Vec<Binding> {
    let mut b = vec![
        Binding {
            command: Command::Next,
            keys: vec![plain(Key::J), plain(Key::ArrowDown)],
            label: "Next",
            menu: Some(Menu::Review),
            description: "Next sample in the queue",
        },
        Binding {
            command: Command::Previous,
            keys: vec![plain(Key::K), plain(Key::ArrowUp)],
            label: "Previous",
            menu: Some(Menu::Review),
            description: "Previous sample in the queue",
        },
        Binding {
            command: Command::Keep,
            keys: vec![plain(Key::Space)],
            label: "Keep",
            menu: Some(Menu::Review),
            description: "Keep as labelled",
        },
        Binding {
            command: Command::Exclude,
            keys: vec![plain(Key::X), plain(Key::Delete)],
            label: "Exclude",
            menu: Some(Menu::Review),
            description: "Exclude from the cleaned dataset",
        },
        Binding {
            command: Command::AcceptSuggestion,
            keys: vec![plain(Key::A)],
            label: "Accept suggestion",
            menu: Some(Menu::Review),
            description: "Accept the suggested label",
        },
        Binding {
            command: Command::RelabelPicker,
            keys: vec![plain(Key::R)],
            label: "Relabel…",
            menu: Some(Menu::Review),
            description: "Relabel: type to find a class, Enter to apply",
        },
        Binding {
            command: Command::Redo,
            keys: vec![
                KeyboardShortcut::new(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z),
                KeyboardShortcut::new(Modifiers::COMMAND, Key::Y),
            ],
            label: "Redo",
            menu: Some(Menu::Review),
            description: "Redo",
        },
        Binding {
            command: Command::Undo,
            keys: vec![KeyboardShortcut::new(Modifiers::COMMAND, Key::Z)],
            label: "Undo",
            menu: Some(Menu::Review),
            description: "Undo",
        },
        Binding {
            command: Command::Open,
            keys: vec![KeyboardShortcut::new(Modifiers::COMMAND, Key::O)],
            label: "Open…",
            menu: Some(Menu::File),
            description: "Open a dataset",
        },
        Binding {
            command: Command::ToggleTrigger,
            keys: vec![plain(Key::T)],
            label: "Trigger box over images",
            menu: Some(Menu::View),
            description: "Show or hide the suspected trigger over the image",
        },
        Binding {
            command: Command::ToggleUnflagged,
            keys: vec![plain(Key::U)],
            label: "Unflagged samples in the queue",
            menu: Some(Menu::View),
            description: "Queue every sample the filter holds, flagged or not, most suspicious first (past the false-flag budget: most unflagged ones are clean), or only the flagged ones",
        },
        Binding {
            command: Command::SignOff,
            keys: vec![KeyboardShortcut::new(Modifiers::COMMAND, Key::E)],
            label: "Sign off…",
            menu: Some(Menu::File),
            description: "Sign off: export the cleaned manifest, signed",
        },
        Binding {
            command: Command::Quit,
            keys: vec![KeyboardShortcut::new(Modifiers::COMMAND, Key::Q)],
            label: "Quit",
            menu: Some(Menu::File),
            description: "Close the window (a decision still being written is finished first)",
        },
        Binding {
            command: Command::Help,
            // "?" is Shift+/ on most layouts (a key of its own on some).
            keys: vec![
                plain(Key::Questionmark),
                KeyboardShortcut::new(Modifiers::SHIFT, Key::Questionmark),
                plain(Key::F1),
            ],
            label: "Keys",
            menu: Some(Menu::Help),
            description: "Show or hide the keys",
        },
    ];
    for (n, key) in NUMBER_KEYS.iter().enumerate() {
        b.push(Binding {
            command: Command::Relabel(n as u32),
            keys: vec![plain(*key)],
            label: "Relabel to class n",
            menu: None,
            description: "Relabel to class n (1–9, 0 = 10th)",
        });
    }
    b
}

/// Consumes this frame's key presses that match the table, in table order.
/// Nothing fires while a text field has the keyboard, and a key fires only
/// with exactly its modifiers: Shift+1 (typing "!") or Ctrl+1 must never
/// relabel a sample as 1 does.
pub fn pressed(ctx: &egui::Context) -> Vec<Command> {
    if ctx.egui_wants_keyboard_input() {
        return Vec::new();
    }
    let mut out = Vec::new();
    ctx.input_mut(|i| {
        for b in bindings() {
            for k in &b.keys {
                out.extend(std::iter::repeat_n(b.command, consume_exact(i, k)));
            }
        }
    });
    out
}

/// Removes this frame's presses of `shortcut`'s key made with exactly its
/// modifiers (egui's own `consume_shortcut` ignores extra Shift and Alt)
/// and returns how many there were.
fn consume_exact(input: &mut egui::InputState, shortcut: &KeyboardShortcut) -> usize {
    let before = input.events.len();
    input.events.retain(|event| {
        !matches!(
            event,
            egui::Event::Key { key, modifiers, pressed: true, .. }
                if *key == shortcut.logical_key && modifiers.matches_exact(shortcut.modifiers)
        )
    });
    before - input.events.len()
}

/// The bindings in `menu`, in table order.
pub fn in_menu(menu: Menu) -> impl Iterator<Item = Binding> {
    bindings().into_iter().filter(move |b| b.menu == Some(menu))
}

/// A menu button for `b` (its label, first shortcut and description);
/// true when clicked.
pub fn menu_button(ui: &mut egui::Ui, b: &Binding) -> bool {
    let shortcut = b
        .keys
        .first()
        .map(|k| key_text(ui.ctx(), k))
        .unwrap_or_default();
    ui.add(egui::Button::new(b.label).shortcut_text(shortcut))
        .on_hover_text(b.description)
        .clicked()
}

/// The table's row for `command`.
fn binding_of(command: Command) -> Option<Binding> {
    bindings().into_iter().find(|b| b.command == command)
}

/// A command's description, for tooltips of the controls that do the same.
pub fn command_description(command: Command) -> &'static str {
    binding_of(command).map_or("", |b| b.description)
}

/// Text of a command's first shortcut, e.g. "Ctrl+Z".
pub fn shortcut_text(ctx: &egui::Context, command: Command) -> String {
    binding_of(command)
        .and_then(|b| b.keys.first().map(|k| key_text(ctx, k)))
        .unwrap_or_default()
}

/// How a shortcut is written for people ("?" rather than egui's "Questionmark").
pub fn key_text(ctx: &egui::Context, k: &KeyboardShortcut) -> String {
    if k.logical_key == Key::Questionmark
        && (k.modifiers.is_none() || k.modifiers == Modifiers::SHIFT)
    {
        "?".to_string()
    } else {
        ctx.format_shortcut(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_commands_share_a_shortcut() {
        let all: Vec<(Command, KeyboardShortcut)> = bindings()
            .into_iter()
            .flat_map(|b| b.keys.into_iter().map(move |k| (b.command, k)))
            .collect();
        for (i, (c, k)) in all.iter().enumerate() {
            for (d, l) in &all[i + 1..] {
                assert!(k != l, "{c:?} and {d:?} share {k:?}");
            }
        }
    }

    #[test]
    fn every_command_but_the_digits_is_in_a_menu() {
        for b in bindings() {
            assert_eq!(
                b.menu.is_some(),
                !matches!(b.command, Command::Relabel(_)),
                "{:?}",
                b.command
            );
            assert!(!b.label.is_empty() && !b.description.is_empty());
        }
    }
}
