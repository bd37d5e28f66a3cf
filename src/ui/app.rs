//! The workbench: it owns the window's [`State`] and the panels' own
//! state, draws the panels, and is the one dispatcher that changes the state
//! ([`Workbench::apply`]).

use std::path::PathBuf;
use std::sync::Arc;

use super::commands::{self, Command};
use super::loaded::{self, Loaded, ScanState};
use super::panels;
use super::saver::{Saved, Write};
use super::state::{
    Action, CentralView, ColorBy, DecisionFilter, QueueFilter, Settings, State, TriggerRef,
};
use super::thumbs::Thumbs;
use crate::jobs::Job;
use crate::review::Decision;

/// Storage key of the recent-datasets list.
pub const RECENT_KEY: &str = "poisonlens.recent";
/// Where the window keeps the key the last signed export used.
pub const SIGNING_KEY: &str = "poisonlens.signing_key";
const MAX_RECENT: usize = 8;
/// How often the window looks for decisions written by other processes.
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// What a file dropped on the window asks for: an `.onnx` is the model to
/// scan with, anything else a dataset to open.
fn dropped_action(p: PathBuf) -> Action {
    let onnx = p
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    if onnx {
        Action::UseModel(Some(p))
    } else {
        Action::Open(p)
    }
}

/// The workbench: one dataset at a time, its review, and the UI's own
/// state. What the panels read is [`State`] (handed to them read-only), and
/// every change to it goes through [`Workbench::apply`]; what each panel
/// keeps for itself is [`panels::PanelState`], which only that panel edits
/// (a command may open or clear it: the picker, the sign-off form).
pub struct Workbench {
    /// What the window shows: read by the panels, changed only here.
    pub state: State,
    /// The panels' own UI state (text being typed, the sign-off form, the
    /// image cache).
    pub panels: panels::PanelState,
    last_refresh: std::time::Instant,
    /// Datasets replaced by another whose decisions are still being
    /// written; each is let go once its writes are on disk.
    closing: Vec<Loaded>,
}

/// Reading a workbench reads its state (tests, benchmarks and the window's
/// own code); changing it goes through [`Workbench::apply`].
impl std::ops::Deref for Workbench {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl Workbench {
    /// A workbench that starts opening `dataset` at once.
    pub fn new(dataset: PathBuf, recent: Vec<PathBuf>, settings: Settings) -> Self {
        let mut w = Workbench {
            state: State {
                loaded: None,
                tasks: Default::default(),
                found: None,
                found_generation: 0,
                report_generation: 0,
                show_trigger: true,
                error: None,
                notice: None,
                key_hint: None,
                quit: false,
                queue: Vec::new(),
                cursor: 0,
                filter: QueueFilter::default(),
                color_by: ColorBy::Label,
                show_help: false,
                view: CentralView::Embedding,
                reviewer: if settings.reviewer.trim().is_empty() {
                    crate::review::default_reviewer()
                } else {
                    settings.reviewer.clone()
                },
                settings,
                selection: Vec::new(),
                batch: None,
                selection_generation: 0,
                recent,
                navigated: false,
            },
            panels: panels::PanelState::default(),
            last_refresh: std::time::Instant::now(),
            closing: Vec::new(),
        };
        w.open(dataset);
        w
    }

    /// Blocks until the dataset being opened is shown (its scan then runs
    /// behind: what a user sees first; tests and the first-picture bench).
    pub fn wait_for_open(&mut self) {
        if let Some(job) = self.state.tasks.open.take() {
            let r = job.wait();
            self.finish_job(r);
        }
    }

    /// Blocks until every running job (opening, then the scan it starts,
    /// and any other) has finished and its result is applied, stage by
    /// stage as the window would (tests and headless use).
    pub fn wait_for_job(&mut self) {
        if let Some(job) = self.state.tasks.projection.take() {
            let cancelled = job.is_cancelled();
            let r = job.wait();
            self.finish_projection(r, cancelled);
        }
        if let Some(job) = self.state.tasks.open.take() {
            let r = job.wait();
            self.finish_job(r);
        }
        if let Some(task) = self.state.tasks.scan.take() {
            let r = task.job.wait();
            self.take_stages(&task.stages);
            self.finish_scan(r);
        }
        if let Some(job) = self.state.tasks.export.take() {
            let r = job.wait();
            self.finish_export(r);
        }
        if let Some(job) = self.state.tasks.trigger.take() {
            let r = job.wait();
            self.finish_trigger(r);
        }
        self.wait_for_saves();
    }

    /// Starts opening `path` in the background; the open dataset stays until
    /// the new one has opened (its scan, if running, stops).
    pub fn open(&mut self, path: PathBuf) {
        if let Some(job) = &self.state.tasks.open {
            job.cancel();
        }
        // A model belongs to the dataset it was chosen for: another
        // dataset opens with its own embeddings.
        if self.state.loaded.as_ref().is_some_and(|l| l.path != path) {
            self.state.settings.model = None;
        }
        let p = path.clone();
        let state_dir = self.state.settings.state_dir.clone();
        let fdr = self.state.settings.fdr;
        let model = self.state.settings.model.clone();
        self.state.tasks.open = Some(Job::spawn(
            format!("Opening {}", path.display()),
            move |s| loaded::open(p, state_dir, fdr, model, s),
        ));
    }

    /// Uses the model at `path` (or, with `None`, the dataset's own
    /// embeddings again): the open dataset is opened again with it, and
    /// scanned on the model's activations. Its review is untouched.
    pub fn use_model(&mut self, path: Option<PathBuf>) {
        self.state.settings.model = path.map(crate::dataset::model::ModelOptions::new);
        if let Some(l) = &self.state.loaded {
            let p = l.path.clone();
            self.open(p);
        }
    }

    /// Starts scanning the open dataset in the background (a running scan
    /// stops first). The first scan of a dataset shows each detector's
    /// flags as it finishes; a rescan keeps the report shown until the new
    /// one is whole.
    pub fn start_scan(&mut self) {
        if let Some(t) = self.state.tasks.scan.take() {
            t.job.cancel();
        }
        let Some(l) = &mut self.state.loaded else {
            return;
        };
        let stage_by_stage = !matches!(l.scan, ScanState::Done(_));
        if stage_by_stage {
            // Flags of a stopped scan are incomplete: start from none.
            let (features, source) = (
                Arc::clone(&l.report.features),
                l.report.feature_source.clone(),
            );
            l.report = crate::detect::Report::pending(
                &l.dataset,
                features,
                source,
                self.state.settings.fdr,
            );
            l.cluster_rows.clear();
        }
        l.scan = ScanState::starting(stage_by_stage);
        let ds = Arc::clone(&l.dataset);
        let store = l.session.location.path.clone();
        let options = crate::detect::ScanOptions {
            fdr: self.state.settings.fdr,
            model: l.model.clone(),
            ..Default::default()
        };
        let (send, stages) = std::sync::mpsc::channel();
        let job = Job::spawn(format!("Scanning {}", l.path.display()), move |s| {
            loaded::scan(ds, store, options, send, s)
        });
        self.state.tasks.scan = Some(super::tasks::ScanTask { job, stages });
        self.rebuild_queue();
    }

    /// Sets the false-flag budget; the open dataset is scanned again with it
    /// (its review is untouched: decisions live in the review store).
    pub fn set_fdr(&mut self, fdr: f64) {
        if !crate::detect::fdr_is_valid(fdr) || fdr == self.state.settings.fdr {
            return;
        }
        self.state.settings.fdr = fdr;
        self.start_scan();
    }

    /// Shows every detector that has finished since the last frame.
    fn take_stages(&mut self, stages: &std::sync::mpsc::Receiver<loaded::Stage>) {
        let Some(l) = &mut self.state.loaded else {
            return;
        };
        let mut any = false;
        while let Ok(stage) = stages.try_recv() {
            l.take_stage(stage);
            any = true;
        }
        if any {
            self.state.report_generation += 1;
            self.rebuild_queue_as_it_grows();
        }
    }

    fn finish_scan(&mut self, r: Result<Result<loaded::Scanned, String>, String>) {
        let Some(l) = &mut self.state.loaded else {
            return;
        };
        let r = r.and_then(|x| x);
        if let Err(e) = &r
            && e != "cancelled"
        {
            self.state.error = Some(format!("The scan stopped: {e}"));
        }
        l.take_scan(r);
        // What the scan could not do (no images, unreadable files) is said
        // once it is in, beside any note from opening — once per dataset.
        let news: Vec<String> = l
            .report
            .warnings
            .iter()
            .filter(|w| l.warned.insert(w.to_string()))
            .cloned()
            .collect();
        if !news.is_empty() {
            let news = news.join("\n");
            self.state.notice = Some(match self.state.notice.take() {
                Some(said) => format!("{said}\n{news}"),
                None => news,
            });
        }
        self.state.report_generation += 1;
        self.rebuild_queue_as_it_grows();
    }

    /// Polls the background jobs; call once per frame.
    pub fn poll(&mut self) {
        if let Some((r, cancelled)) = take_finished(&mut self.state.tasks.projection) {
            self.finish_projection(r, cancelled);
        }
        if let Some((r, _)) = take_finished(&mut self.state.tasks.open) {
            self.finish_job(r);
        }
        if let Some(mut task) = self.state.tasks.scan.take() {
            self.take_stages(&task.stages);
            match task.job.try_take() {
                Some(r) => {
                    self.take_stages(&task.stages);
                    self.finish_scan(r);
                }
                None => self.state.tasks.scan = Some(task),
            }
        }
        if let Some((r, _)) = take_finished(&mut self.state.tasks.export) {
            self.finish_export(r);
        }
        if let Some((r, cancelled)) = take_finished(&mut self.state.tasks.trigger)
            && !cancelled
        {
            self.finish_trigger(r);
        }
        self.show_saved(false);
        self.closing.retain_mut(|l| {
            for s in l.saver.take_saved() {
                if let Err(e) = s.result {
                    self.state.error = Some(format!("Not saved (in {}): {e}", l.path.display()));
                }
            }
            l.saver.is_saving()
        });
        if self.last_refresh.elapsed() >= REFRESH_EVERY {
            self.refresh_review();
        }
    }

    fn finish_projection(
        &mut self,
        r: Result<crate::project2d::Projection, String>,
        cancelled: bool,
    ) {
        match (r, &mut self.state.loaded) {
            (Ok(p), Some(l)) if !cancelled => {
                l.tsne = Some(p.clone());
                l.projection = p;
            }
            (Err(e), _) => self.state.error = Some(format!("t-SNE failed: {e}")),
            _ => {}
        }
    }

    /// Picks up decisions other windows or `poisonlens review` wrote.
    pub fn refresh_review(&mut self) {
        self.last_refresh = std::time::Instant::now();
        let Some(l) = &mut self.state.loaded else {
            return;
        };
        match l.session.refresh() {
            Ok(true) => self.rebuild_queue(),
            Ok(false) => {}
            Err(e) => self.state.error = Some(format!("Reading the review store failed: {e}")),
        }
    }

    fn finish_trigger(&mut self, r: Result<Result<crate::detect::trigger::Found, String>, String>) {
        match r.and_then(|x| x) {
            Ok(f) => {
                self.state.found = Some(f);
                self.state.found_generation += 1;
            }
            Err(e) => self.state.error = Some(format!("Trigger search: {e}")),
        }
    }

    fn finish_export(&mut self, r: Result<Result<super::signoff::ExportDone, String>, String>) {
        match r.and_then(|x| x) {
            Ok(done) => {
                self.panels.signoff = None;
                self.state.notice = Some(done.message);
                if done.key.is_some() {
                    self.state.settings.signing_key = done.key;
                }
            }
            Err(e) => match &mut self.panels.signoff {
                Some(f) => f.status = Some(e),
                None => self.state.error = Some(e),
            },
        }
    }

    fn finish_job(&mut self, r: Result<Result<Loaded, String>, String>) {
        match r.and_then(|x| x) {
            Ok(l) => {
                let notes: Vec<String> = l
                    .session
                    .location
                    .note
                    .iter()
                    .chain(&l.session.warnings)
                    .cloned()
                    .collect();
                self.state.notice = (!notes.is_empty()).then(|| notes.join("\n"));
                self.panels.signoff = None;
                self.state.found = None;
                self.state.tasks.trigger = None;
                self.state.recent.retain(|p| p != &l.path);
                self.state.recent.insert(0, l.path.clone());
                self.state.recent.truncate(MAX_RECENT);
                // A dataset without image files has nothing to decode or show.
                self.panels.thumbs = l
                    .dataset
                    .paths
                    .is_some()
                    .then(|| Thumbs::new(Arc::clone(&l.dataset)));
                self.state.tasks.projection = None;
                self.state.remember_view();
                // The dataset being closed may still have decisions on their
                // way to disk: it is kept until they are written, so neither
                // they are lost nor the window waits for them.
                if let Some(old) = self.state.loaded.replace(l) {
                    self.closing.push(old);
                }
                self.state.filter = QueueFilter::default();
                self.select(Vec::new());
                self.state.error = None;
                self.rebuild_queue();
                self.state.cursor = 0;
                self.state.navigated = false;
                self.state.color_by = ColorBy::Label;
                self.start_scan();
                for a in self.state.restore_view() {
                    self.apply(a);
                }
            }
            Err(e) if e == "cancelled" => {}
            Err(e) => {
                // The model asked for is not in use: the one the open
                // dataset was scanned with (if any) stays the one used.
                self.state.settings.model = self
                    .state
                    .loaded
                    .as_ref()
                    .and_then(|l| l.model.as_ref())
                    .map(|m| m.options.clone());
                self.state.error = Some(if self.state.loaded.is_some() {
                    format!("{e}\nThe dataset that was open stays open.")
                } else {
                    e
                })
            }
        }
    }

    /// [`Workbench::rebuild_queue`] when the scan's results change the
    /// queue: until the user has moved or decided, the most suspicious
    /// sample so far is the one shown (not whichever led when the first
    /// detector came in); afterwards their sample stays theirs. A key
    /// pressed in the frame the shown sample changed decides nothing (see
    /// [`Workbench::show`]).
    fn rebuild_queue_as_it_grows(&mut self) {
        let shown = self.current();
        self.rebuild_queue();
        if !self.state.navigated {
            self.state.cursor = 0;
        } else if let Some(i) = shown
            && self.current() != Some(i)
        {
            // A sample the user went to (a click in the view, the restored
            // view) stays on screen while the scan's flags arrive.
            self.state.cursor = self.state.cursor.min(self.state.queue.len());
            self.state.queue.insert(self.state.cursor, i);
        }
    }

    /// Recomputes the queue from the report and the filter, keeping the
    /// current sample selected when it is still in the queue.
    pub fn rebuild_queue(&mut self) {
        let current = self.current();
        let Some(l) = &self.state.loaded else {
            self.state.queue.clear();
            return;
        };
        let r = &l.report;
        // A detector that has not finished yet flags nothing (so far), and
        // has no scores to rank unflagged samples by.
        let det = self.state.filter.detector.map(|d| r.detector(d));
        let unflagged = self.state.filter.unflagged;
        let mut q: Vec<usize> = (0..r.ids.len())
            .filter(|&i| match det {
                Some(Some(d)) => unflagged || d.flagged[i],
                Some(None) => false,
                None => unflagged || r.flagged[i],
            })
            .filter(|&i| self.state.filter.class.is_none_or(|c| r.labels[i] == c))
            .filter(|&i| {
                self.state
                    .filter
                    .cluster
                    .is_none_or(|row| crate::detect::cluster_map::in_row(r, i, row))
            })
            .filter(|&i| {
                let decision = self.state.filter.decision;
                // "any" needs no lookup (a million of them when every
                // sample is queued).
                decision == DecisionFilter::Any
                    || decision.accepts(l.review().decision(i).map(|e| e.decision))
                    || Some(i) == current
            })
            .collect();
        // Flagged samples first; with unflagged ones shown and a detector
        // chosen, ranked by that detector's own score.
        let rank = |i: usize| match det {
            Some(Some(d)) if unflagged => (d.flagged[i], d.score[i]),
            _ => (r.flagged[i] || !unflagged, r.score[i]),
        };
        sort_queue(&mut q, rank);
        self.state.queue = q;
        self.state.cursor = current
            .and_then(|c| self.state.queue.iter().position(|&i| i == c))
            .unwrap_or(0);
    }

    /// Carries out one action. Every decision goes through the review model.
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Command(c) => self.command(c),
            Action::Select(i) => {
                self.state.navigated = true;
                if let Some(p) = self.state.queue.iter().position(|&q| q == i) {
                    self.state.cursor = p;
                } else {
                    // Not in the queue (e.g. clicked in the scatter): show it anyway.
                    self.state
                        .queue
                        .insert(self.state.cursor.min(self.state.queue.len()), i);
                }
            }
            Action::Open(p) => self.open(p),
            Action::SetFdr(q) => self.set_fdr(q),
            Action::Rescan => self.start_scan(),
            Action::ShowOpenDialog => {
                use super::dialogs::{self, Picked};
                let dialog = || {
                    rfd::FileDialog::new()
                        .set_title("Open a manifest (CSV/Parquet)")
                        .add_filter("manifest", &["csv", "parquet"])
                        .pick_file()
                };
                match dialogs::pick(dialog) {
                    Picked::Path(p) => self.open(p),
                    Picked::Cancelled => {}
                    Picked::Unavailable => {
                        self.state.error = Some(dialogs::OPEN_ANOTHER_WAY.into())
                    }
                }
            }
            Action::ShowOpenModelDialog => {
                use super::dialogs::{self, Picked};
                let dialog = || {
                    rfd::FileDialog::new()
                        .set_title("Open the model trained on this dataset (ONNX)")
                        .add_filter("ONNX model", &["onnx"])
                        .pick_file()
                };
                match dialogs::pick(dialog) {
                    Picked::Path(p) => self.use_model(Some(p)),
                    Picked::Cancelled => {}
                    Picked::Unavailable => {
                        self.state.error = Some(dialogs::MODEL_ANOTHER_WAY.into())
                    }
                }
            }
            Action::UseModel(p) => self.use_model(p),
            Action::Cancel => {
                self.state.tasks.cancel_all();
                // t-SNE and the trigger search cannot stop mid-way; they
                // end in the background and their results are dropped.
                self.state.tasks.projection = None;
                self.state.tasks.trigger = None;
            }
            Action::UsePca => {
                if let Some(l) = &mut self.state.loaded {
                    l.projection = l.pca.clone();
                }
            }
            Action::UseTsne => {
                let Some(l) = &mut self.state.loaded else {
                    return;
                };
                if let Some(t) = &l.tsne {
                    l.projection = t.clone();
                } else if !l.has_view() {
                    self.state.error = Some("t-SNE needs features: it can start once the scan has computed them from the images.".into());
                } else if self.state.tasks.projection.is_none() {
                    let features = std::sync::Arc::clone(&l.report.features);
                    let pca = l.pca.clone();
                    self.state.tasks.projection = Some(Job::spawn("Computing t-SNE", move |s| {
                        loaded::tsne(features, pca, s)
                    }));
                }
            }
            Action::FilterDetector(d) => {
                self.state.filter.detector = d;
                self.rebuild_queue();
            }
            Action::FilterClass(c) => {
                self.state.filter.class = c;
                self.rebuild_queue();
            }
            Action::FilterDecision(d) => {
                self.state.filter.decision = d;
                self.rebuild_queue();
            }
            Action::FilterUnflagged(u) => {
                self.state.filter.unflagged = u;
                self.rebuild_queue();
            }
            Action::ColorBy(c) => self.state.color_by = c,
            Action::Batch(samples, d) => self.decide(&samples, d, false),
            Action::ProposeBatch(d) => self.state.batch = Some(d),
            Action::ConfirmBatch => {
                if let Some(d) = self.state.batch.take() {
                    let samples = self.state.selection.clone();
                    self.decide(&samples, d, false);
                }
            }
            Action::CancelBatch => self.state.batch = None,
            Action::SelectMany(s) => self.select(s),
            Action::DismissError => self.state.error = None,
            Action::FilterCluster(c) => {
                self.state.filter.cluster = c;
                self.rebuild_queue();
            }
            Action::ShowView(v) => self.state.view = v,
            Action::OpenSignoff { sign } => {
                if let Some(l) = &self.state.loaded {
                    let key = self.state.settings.signing_key.as_deref();
                    self.panels.signoff = Some(super::signoff::SignoffForm::new(
                        l,
                        &self.state.reviewer,
                        sign,
                        key,
                    ));
                }
            }
            Action::CloseSignoff => {
                if self.state.tasks.export.is_none() {
                    self.panels.signoff = None;
                }
            }
            Action::StartExport => self.start_export(),
            Action::DismissNotice => self.state.notice = None,
            Action::FindTrigger => self.find_trigger(),
            Action::SelectTriggerCarriers(t) => {
                let Some(l) = &self.state.loaded else { return };
                let carriers = match t {
                    TriggerRef::Scan(k) => (0..l.report.ids.len())
                        .filter(|&i| l.report.trigger_of[i] == Some(k))
                        .collect(),
                    TriggerRef::Found => self
                        .state
                        .found
                        .as_ref()
                        .map(|f| f.carriers.clone())
                        .unwrap_or_default(),
                };
                self.select(carriers);
            }
        }
    }

    /// Makes `samples` the selection; a batch proposed for the old one is
    /// dropped. The one place the selection changes.
    fn select(&mut self, samples: Vec<usize>) {
        self.state.selection = samples;
        self.state.batch = None;
        self.state.selection_generation += 1;
    }

    /// Searches the selection for a shared trigger, off the UI thread.
    fn find_trigger(&mut self) {
        let Some(l) = &self.state.loaded else { return };
        let Some(stack) = l.report.images.clone() else {
            self.state.error =
                Some("No images were read for this dataset, so there is nothing to search.".into());
            return;
        };
        if self.state.tasks.trigger.is_some() {
            return;
        }
        let labels = l.report.labels.clone();
        let names = l.report.class_names.clone();
        let selection = self.state.selection.clone();
        self.state.tasks.trigger =
            Some(Job::spawn("Finding a trigger in the selection", move |s| {
                s.report("comparing images", 0.0);
                crate::detect::trigger::find_in_selection(&stack, &labels, &names, &selection)
            }));
    }

    /// Runs the export the dialog describes as a job: hashing thousands of
    /// files and deriving a key from a passphrase must not freeze the window.
    fn start_export(&mut self) {
        let (Some(l), Some(form)) = (&self.state.loaded, &mut self.panels.signoff) else {
            return;
        };
        // Never sign while a decision is still being written: it would be
        // missing from the signed record though the window showed it.
        if self.state.tasks.export.is_some() || l.saver.is_saving() {
            return;
        }
        match form.request(l) {
            Ok(req) => {
                form.status = None;
                form.passphrase.clear();
                self.state.tasks.export = Some(Job::spawn("Exporting", move |s| req.run(s)));
            }
            Err(e) => form.status = Some(e),
        }
    }

    fn command(&mut self, c: Command) {
        self.state.key_hint = None;
        if matches!(c, Command::Next | Command::Previous) || c.decides() {
            self.state.navigated = true;
        }
        match c {
            Command::Next => {
                self.state.cursor =
                    (self.state.cursor + 1).min(self.state.queue.len().saturating_sub(1))
            }
            Command::Previous => self.state.cursor = self.state.cursor.saturating_sub(1),
            Command::Keep => self.decide_current(Decision::Keep),
            Command::Exclude => self.decide_current(Decision::Exclude),
            Command::AcceptSuggestion => {
                let sug = self.current().and_then(|i| {
                    self.state
                        .loaded
                        .as_ref()
                        .and_then(|l| l.report.suggested_label[i])
                });
                match sug {
                    Some(s) => self.decide_current(Decision::Relabel(s)),
                    None => {
                        self.state.key_hint = Some(
                            "This sample has no suggested label: relabel it with a digit or r."
                                .into(),
                        )
                    }
                }
            }
            Command::Relabel(n) => {
                self.panels.picker = None;
                if self
                    .state
                    .loaded
                    .as_ref()
                    .is_some_and(|l| (n as usize) < l.dataset.classes.len())
                {
                    self.decide_current(Decision::Relabel(n));
                }
            }
            Command::Undo | Command::Redo => {
                let reviewer = self.state.reviewer.clone();
                if let Some(l) = &mut self.state.loaded {
                    l.saver.submit(if c == Command::Undo {
                        Write::Undo { reviewer }
                    } else {
                        Write::Redo { reviewer }
                    });
                }
            }
            Command::SignOff => self.apply(Action::OpenSignoff { sign: true }),
            Command::ToggleTrigger => self.state.show_trigger = !self.state.show_trigger,
            Command::ToggleUnflagged => {
                self.apply(Action::FilterUnflagged(!self.state.filter.unflagged));
            }
            Command::Help => self.state.show_help = !self.state.show_help,
            Command::RelabelPicker => {
                self.panels.picker = match self.panels.picker {
                    Some(_) => None,
                    None if self.current().is_some() => Some(String::new()),
                    None => None,
                }
            }
            Command::Open => self.apply(Action::ShowOpenDialog),
            Command::Quit => self.state.quit = true,
        }
    }

    fn decide_current(&mut self, d: Decision) {
        if let Some(i) = self.current() {
            self.decide(&[i], d, true);
        }
    }

    /// Sends the decision to the writer thread; the window shows it as
    /// "saving…" until it is on disk (see [`Workbench::take_saved`]).
    fn decide(&mut self, samples: &[usize], d: Decision, advance: bool) {
        let Some(l) = &mut self.state.loaded else {
            return;
        };
        let pairs: Vec<(usize, Decision)> = samples.iter().map(|&i| (i, d)).collect();
        l.saver.submit(Write::Decide {
            pairs,
            reason: self.panels.reason.trim().to_string(),
            reviewer: self.state.reviewer.clone(),
        });
        if advance {
            self.command(Command::Next);
        }
    }

    /// Shows what the writer thread has committed: read back from the
    /// store, so what the window shows is what is on disk. Undo and redo
    /// then jump to the sample they changed when it is in the queue; a failed
    /// write says so.
    fn take_saved(&mut self, saved: Vec<Saved>) {
        if saved.is_empty() {
            return;
        }
        self.refresh_review();
        for s in saved {
            match (s.result, &s.write) {
                // Jump to the sample only where the queue has it: a batch
                // from a box selection is mostly outside the queue, and
                // undoing it must not add one of its samples there.
                (Ok(Some(i)), Write::Undo { .. } | Write::Redo { .. })
                    if self.state.queue.contains(&i) =>
                {
                    self.apply(Action::Select(i))
                }
                (Ok(_), _) => {}
                // Nothing is shown as done that is not on disk.
                (Err(e), _) => self.state.error = Some(format!("Not saved: {e}")),
            }
        }
    }

    /// Whether sample images are still being decoded for the window (what
    /// a snapshot or a benchmark waits for before it reads the screen).
    pub fn images_pending(&self) -> bool {
        self.panels.thumbs.as_ref().is_some_and(Thumbs::busy)
    }

    /// Blocks until every decision asked for is on disk and shown (tests
    /// and headless use).
    pub fn wait_for_saves(&mut self) {
        self.show_saved(true);
        for l in &mut self.closing {
            l.saver.wait_saved();
        }
        self.closing.clear();
    }

    /// Shows the writes finished so far (`wait`: all asked for).
    fn show_saved(&mut self, wait: bool) {
        let saved = self
            .state
            .loaded
            .as_mut()
            .map(|l| {
                if wait {
                    l.saver.wait_saved()
                } else {
                    l.saver.take_saved()
                }
            })
            .unwrap_or_default();
        self.take_saved(saved);
    }

    /// Draws the whole window and carries out what the user asked for.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let before = self.current();
        self.poll();
        // The scan's results (or another window's decisions) changed the
        // sample under the user between frames: a decision key pressed now
        // was meant for the sample they saw, so it does nothing.
        let moved_under_user = self.current() != before;
        let mut actions: Vec<Action> = commands::pressed(ui.ctx())
            .into_iter()
            .map(Action::Command)
            .collect();
        let dropped: Vec<PathBuf> = ui.ctx().input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        actions.extend(dropped.into_iter().take(1).map(dropped_action));
        panels::window(&self.state, &mut self.panels, ui, &mut actions);
        for a in actions {
            if moved_under_user && matches!(a, Action::Command(c) if c.decides()) {
                self.state.key_hint = Some(
                    "The sample shown changed as new results came in, so that key decided nothing. Look again, then decide."
                        .into(),
                );
                continue;
            }
            self.apply(a);
        }
        if self.state.quit {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
        let saving = self
            .state
            .loaded
            .as_ref()
            .is_some_and(|l| l.saver.is_saving());
        if self.is_busy() || saving || self.panels.thumbs.as_ref().is_some_and(Thumbs::busy) {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(50));
        } else if self.state.loaded.is_some() {
            // Wake up now and then to show other writers' decisions.
            ui.ctx().request_repaint_after(REFRESH_EVERY);
        }
    }
}

/// A finished job's result and whether it had been cancelled, emptying
/// its slot; None while it runs (or when there is none).
fn take_finished<T: Send + 'static>(
    slot: &mut Option<Job<T>>,
) -> Option<(Result<T, String>, bool)> {
    let r = slot.as_mut()?.try_take()?;
    let cancelled = slot.take().is_some_and(|j| j.is_cancelled());
    Some((r, cancelled))
}

impl eframe::App for Workbench {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, RECENT_KEY, &self.state.recent);
        eframe::set_value(storage, SIGNING_KEY, &self.state.settings.signing_key);
        self.state.remember_view();
        eframe::set_value(storage, super::views::VIEWS_KEY, &self.state.settings.views);
    }
}

/// Sorts the queue `q` flagged first, then by score, highest first, then
/// by sample index — `rank(i)` gives sample `i`'s (flagged, score). It
/// runs on the window's thread whenever a filter changes or a detector's
/// flags arrive, so each sample's order is packed into one integer and
/// those are sorted (a million in a fraction of what comparing through
/// the report takes).
pub(crate) fn sort_queue(q: &mut Vec<usize>, rank: impl Fn(usize) -> (bool, f32)) {
    const INDEX_BITS: u32 = 31;
    if q.iter().any(|&i| i >> INDEX_BITS != 0) {
        q.sort_by(|&a, &b| {
            let ((fa, sa), (fb, sb)) = (rank(a), rank(b));
            fb.cmp(&fa).then(sb.total_cmp(&sa)).then(a.cmp(&b))
        });
        return;
    }
    let mut keys: Vec<u64> = q
        .iter()
        .map(|&i| {
            let (flagged, score) = rank(i);
            // f32::total_cmp's order as an unsigned integer, highest last.
            let bits = score.to_bits();
            let ordered = if bits >> 31 == 1 {
                !bits
            } else {
                bits | 1 << 31
            };
            (u64::from(!flagged) << 63) | (u64::from(!ordered) << INDEX_BITS) | i as u64
        })
        .collect();
    keys.sort_unstable();
    q.clear();
    q.extend(keys.iter().map(|k| (k & ((1 << INDEX_BITS) - 1)) as usize));
}

#[cfg(test)]
mod tests {
    use super::sort_queue;

    #[test]
    fn the_packed_queue_order_is_flagged_first_then_score_then_index() {
        // Ties, equal scores either side of the flag, and scores only
        // total_cmp orders (negative zero, NaN) included.
        let scores = [0.5, 0.499, 0.5, 1.0, 0.0, -0.0, 0.25, f32::NAN, 0.25, 0.75];
        let n = 600;
        let rank = |i: usize| (i.is_multiple_of(3), scores[(i * 7) % scores.len()]);
        let mut packed: Vec<usize> = (0..n).rev().collect();
        sort_queue(&mut packed, rank);
        let mut compared: Vec<usize> = (0..n).collect();
        compared.sort_by(|&a, &b| {
            let ((fa, sa), (fb, sb)) = (rank(a), rank(b));
            fb.cmp(&fa).then(sb.total_cmp(&sa)).then(a.cmp(&b))
        });
        assert_eq!(packed, compared);
        assert!(rank(packed[0]).0 && !rank(packed[n - 1]).0);
    }
}
