//! What the window shows and the words panels use to ask for changes.
//!
//! [`State`] is what every panel reads (read-only: panels get `&State`);
//! [`Action`] is what they send back. Both live here, apart from the
//! [`super::Workbench`] that owns the state and carries out actions, so the
//! panels depend on this module and not on the workbench (no cycle).

use std::path::PathBuf;

use super::commands::Command;
use super::loaded::Loaded;
use crate::review::Decision;

/// What the scatter plot colours points by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorBy {
    /// The given label.
    Label,
    /// The suggested label (given label where there is none).
    Suggested,
    /// Activation cluster within the class (main / minority).
    Cluster,
    /// Combined suspicion score.
    Score,
    /// Review decision.
    Decision,
}

impl ColorBy {
    /// All choices, for the selector.
    pub const ALL: [ColorBy; 5] = [
        ColorBy::Label,
        ColorBy::Suggested,
        ColorBy::Cluster,
        ColorBy::Score,
        ColorBy::Decision,
    ];
    /// Name shown in the selector.
    pub fn name(self) -> &'static str {
        match self {
            ColorBy::Label => "given label",
            ColorBy::Suggested => "suggested label",
            ColorBy::Cluster => "cluster",
            ColorBy::Score => "suspicion",
            ColorBy::Decision => "decision",
        }
    }
}

/// Everything a panel can ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A keyboard/menu command.
    Command(Command),
    /// Make this sample the current one.
    Select(usize),
    /// Open a dataset (file dialog result, drop, recent list).
    Open(PathBuf),
    /// Show the file dialog.
    ShowOpenDialog,
    /// Ask for a model file (File > Open model…).
    ShowOpenModelDialog,
    /// Use this model for the open and later datasets (`None`: stop using one).
    UseModel(Option<PathBuf>),
    /// Stop the running job.
    Cancel,
    /// Only show samples flagged by this detector (None = all).
    FilterDetector(Option<&'static str>),
    /// Only show samples of this class (None = all).
    FilterClass(Option<u32>),
    /// Only show samples with this decision state.
    FilterDecision(DecisionFilter),
    /// Show samples no detector flagged in the queue too (or only flagged ones).
    FilterUnflagged(bool),
    /// Change the scatter colouring.
    ColorBy(ColorBy),
    /// Apply a decision to many samples at once (one undo step).
    Batch(Vec<usize>, Decision),
    /// Propose a decision for the whole selection: shown with what it would
    /// change, applied only by [`Action::ConfirmBatch`].
    ProposeBatch(Decision),
    /// Apply the proposed batch to the selection.
    ConfirmBatch,
    /// Drop the proposed batch.
    CancelBatch,
    /// Remember a set of samples selected in the scatter plot.
    SelectMany(Vec<usize>),
    /// Dismiss the error banner.
    DismissError,
    /// Only show one activation group of one class (None = all).
    FilterCluster(Option<(u32, u8)>),
    /// Switch the central view.
    ShowView(CentralView),
    /// Show the PCA view.
    UsePca,
    /// Show the t-SNE view, computing it in the background first if needed.
    UseTsne,
    /// Open the Sign-off / export dialog (signing ticked or not).
    OpenSignoff {
        /// Whether "sign" starts ticked.
        sign: bool,
    },
    /// Close the dialog.
    CloseSignoff,
    /// Start the export (and signature) the dialog describes.
    StartExport,
    /// Dismiss the notice banner.
    DismissNotice,
    /// Search the selection for a shared trigger (in the background).
    FindTrigger,
    /// Select every sample carrying this trigger.
    SelectTriggerCarriers(TriggerRef),
    /// Set the false-flag budget and rescan the open dataset with it.
    SetFdr(f64),
    /// Scan the open dataset again (after a stopped scan).
    Rescan,
}

/// Which trigger an action means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerRef {
    /// One the scan found (index into the report's triggers).
    Scan(usize),
    /// The one the last selection search found.
    Found,
}

/// Choices the window keeps for every dataset it opens (from the command
/// line, and the false-flag budget from the queue's selector).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Keep review stores here instead of beside each dataset.
    pub state_dir: Option<PathBuf>,
    /// Who is reviewing.
    pub reviewer: String,
    /// The scan's false-flag budget ([`crate::detect::ScanOptions::fdr`]).
    pub fdr: f64,
    /// The key the last signed export used (offered at the next sign-off;
    /// kept between sessions).
    pub signing_key: Option<PathBuf>,
    /// What the window showed of each dataset last time (kept between
    /// sessions; [`super::views`]).
    pub views: super::views::SavedViews,
    /// The user's model (`--model`, File > Open model…): its activations
    /// are the scan's features for the dataset it was chosen for (opening
    /// another dataset lets it go).
    pub model: Option<crate::dataset::model::ModelOptions>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            state_dir: None,
            reviewer: String::new(),
            fdr: crate::detect::DEFAULT_FDR,
            signing_key: None,
            views: Default::default(),
            model: None,
        }
    }
}

/// What the central area shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CentralView {
    /// The scatter plot.
    Embedding,
    /// The class × cluster map.
    ClusterMap,
}

/// Decision states the queue can be limited to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DecisionFilter {
    /// Every sample.
    #[default]
    Any,
    /// Not decided yet.
    Undecided,
    /// Kept.
    Kept,
    /// Excluded.
    Excluded,
    /// Relabelled.
    Relabelled,
}

impl DecisionFilter {
    /// All choices, for the selector.
    pub const ALL: [DecisionFilter; 5] = [
        Self::Any,
        Self::Undecided,
        Self::Kept,
        Self::Excluded,
        Self::Relabelled,
    ];
    /// Name in the selector.
    pub fn name(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::Undecided => "undecided",
            Self::Kept => "kept",
            Self::Excluded => "excluded",
            Self::Relabelled => "relabelled",
        }
    }
    /// Whether a sample with this decision passes.
    pub fn accepts(self, d: Option<Decision>) -> bool {
        match self {
            Self::Any => true,
            Self::Undecided => d.is_none(),
            Self::Kept => d == Some(Decision::Keep),
            Self::Excluded => d == Some(Decision::Exclude),
            Self::Relabelled => matches!(d, Some(Decision::Relabel(_))),
        }
    }
}

/// Which samples the triage queue shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueFilter {
    /// Flagged by this detector.
    pub detector: Option<&'static str>,
    /// Given label.
    pub class: Option<u32>,
    /// Which decision states to show.
    pub decision: DecisionFilter,
    /// Only this (class, activation group).
    pub cluster: Option<(u32, u8)>,
    /// Samples no detector flagged too, most suspicious first: a class or a
    /// cluster-map group stepped through whole, past the false-flag budget
    /// (`u`).
    pub unflagged: bool,
}

/// What the window shows: the open dataset and its review, the queue and
/// its filter, the view's choices, messages and background work. Panels
/// read it; only [`super::Workbench::apply`] and the jobs it starts change it.
pub struct State {
    /// The open dataset, if any.
    pub loaded: Option<Loaded>,
    /// Every background job, in one list (progress, Cancel, wait).
    pub tasks: super::BackgroundTasks,
    /// What the last "find trigger in selection" found.
    pub found: Option<crate::detect::trigger::Found>,
    /// Changes with every search, so its heatmap is redrawn.
    pub found_generation: usize,
    /// Changes whenever the report shown changes (a detector finished, the
    /// scan ended), so colourings made from it are redrawn.
    pub report_generation: u64,
    /// Whether the trigger box is drawn over sample images (`t`).
    pub show_trigger: bool,
    /// The last failure, shown in plain words until dismissed.
    pub error: Option<String>,
    /// Something to know that is not a failure (where the review is kept,
    /// the dataset changed under the review, an export finished, what the
    /// scan could not do).
    pub notice: Option<String>,
    /// What the last key did not do (no suggestion to accept; the sample
    /// changed under the user): shown in the status line until the next
    /// command, so it never outlives the key it is about nor moves the
    /// layout.
    pub key_hint: Option<String>,
    /// Quit was asked for: the window closes at the end of the frame.
    pub quit: bool,
    /// Command-line settings.
    pub settings: Settings,
    /// Samples in the triage queue, most suspicious first.
    pub queue: Vec<usize>,
    /// Index into `queue` of the current sample.
    pub cursor: usize,
    /// The queue's filter.
    pub filter: QueueFilter,
    /// Scatter colouring.
    pub color_by: ColorBy,
    /// Whether the key list is open.
    pub show_help: bool,
    /// What the central area shows.
    pub view: CentralView,
    /// Who is reviewing.
    pub reviewer: String,
    /// Samples selected in the scatter plot (for batch actions).
    pub selection: Vec<usize>,
    /// A decision proposed for the whole selection, shown with what it
    /// would change until the user applies or cancels it.
    pub batch: Option<Decision>,
    /// Counts changes of the selection ([`Workbench::select`]), so what is
    /// worked out from it is redone only when it changes.
    pub selection_generation: u64,
    /// Recently opened datasets, newest first.
    pub recent: Vec<PathBuf>,
    /// Whether the user has moved through the queue or decided since the
    /// dataset opened; until then a growing queue keeps its top shown.
    pub navigated: bool,
}

impl State {
    /// True while a background job runs.
    pub fn is_busy(&self) -> bool {
        self.tasks.is_busy()
    }

    /// The sample the queue points at.
    pub fn current(&self) -> Option<usize> {
        self.queue.get(self.cursor).copied()
    }

    /// Whether the t-SNE view is shown or being computed (it is shown when
    /// it is ready): what the dataset's saved view keeps.
    pub fn tsne_wanted(&self) -> bool {
        self.tasks.projection.is_some()
            || self
                .loaded
                .as_ref()
                .is_some_and(|l| l.projection.method == "t-SNE")
    }

    /// Notes what the window shows of the open dataset in `settings.views`.
    pub fn remember_view(&mut self) {
        let w = self;
        let Some(l) = &w.loaded else { return };
        let view = super::views::SavedView {
            color_by: w.color_by.name().to_string(),
            tsne: w.tsne_wanted(),
            sample: w.current().map(|i| l.dataset.ids[i].clone()),
            at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        w.settings.views.insert(l.path.display().to_string(), view);
        if w.settings.views.len() > super::views::MAX_VIEWS {
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

    /// What puts back the saved view of the dataset just opened, if there is
    /// one: the actions the workbench then carries out (colouring, projection,
    /// sample), so restoring a view changes nothing a user could not.
    pub fn restore_view(&self) -> Vec<Action> {
        let w = self;
        let Some(l) = &w.loaded else {
            return Vec::new();
        };
        let Some(view) = w.settings.views.get(&l.path.display().to_string()) else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        if let Some(c) = ColorBy::ALL.iter().find(|c| c.name() == view.color_by) {
            actions.push(Action::ColorBy(*c));
        }
        if view.tsne && l.has_view() {
            actions.push(Action::UseTsne);
        }
        let sample = view
            .sample
            .as_ref()
            .and_then(|id| l.dataset.ids.iter().position(|s| s == id));
        if let Some(i) = sample {
            actions.push(Action::Select(i));
        }
        actions
    }
}
