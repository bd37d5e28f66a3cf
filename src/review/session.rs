//! A review bound to its durable store: the one door every decision goes
//! through, from the workbench and from `poisonlens review` alike.
//!
//! Each change is written in its own SQLite transaction, which first reads
//! whatever other processes appended since we last looked, so all writers
//! share one linear history and "before" values are never stale. Only after
//! the commit has returned (fsync'd) does the in-memory [`Review`] change, so
//! nothing is shown as done that is not on disk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::Transaction;

use super::location::{self, Location};
use super::store::{self, EventKind, Store, StoredChange, StoredEntry, StoredEvent};
use super::{Action, Change, Decision, Entry, Review, now};
use crate::dataset::Dataset;
use crate::dataset::fingerprint::dataset_fingerprint;
use crate::error::{Error, Result};

/// A dataset's review, loaded from and written through to its store.
pub struct ReviewSession {
    review: Review,
    store: Store,
    path: PathBuf,
    names: Arc<Names>,
    fingerprint: String,
    last_seq: i64,
    data_version: i64,
    /// Where the store is, and why there if not beside the dataset.
    pub location: Location,
    /// What the user should know: the dataset changed since the last
    /// decision, or stored decisions name samples it no longer has.
    pub warnings: Vec<String>,
}

/// Sample ids and class names, to translate between the store's words and
/// the review's indices.
struct Names {
    ids: Vec<String>,
    index: HashMap<String, usize>,
    classes: Vec<String>,
    class_index: HashMap<String, u32>,
}

impl ReviewSession {
    /// Opens the review of `ds` (creating its store if needed), replaying the
    /// whole history so decisions, undo and redo are as they were left.
    pub fn open(ds: &Dataset, state_dir: Option<&Path>) -> Result<ReviewSession> {
        let location = location::locate(ds, state_dir)?;
        let fingerprint = dataset_fingerprint(ds)?;
        Self::open_at(ds, location, fingerprint)
    }

    /// Opens the review of `ds` in the store at `location`.
    pub fn open_at(ds: &Dataset, location: Location, fingerprint: String) -> Result<ReviewSession> {
        let names = Names {
            index: ds
                .ids
                .iter()
                .enumerate()
                .map(|(i, s)| (s.clone(), i))
                .collect(),
            ids: ds.ids.clone(),
            class_index: ds
                .classes
                .iter()
                .enumerate()
                .map(|(i, s)| (s.clone(), i as u32))
                .collect(),
            classes: ds.classes.clone(),
        };
        Self::open_named(
            Arc::new(names),
            location,
            fingerprint,
            &ds.source.to_string_lossy(),
        )
    }

    /// A second session on this one's store, sharing its sample names (a
    /// million ids are not held twice): the window reads through it while
    /// this one writes on a thread of its own.
    pub fn reader(&self) -> Result<ReviewSession> {
        // The store exists by now: nothing to seed it from.
        let location = Location {
            seed: None,
            ..self.location.clone()
        };
        Self::open_named(
            Arc::clone(&self.names),
            location,
            self.fingerprint.clone(),
            "",
        )
    }

    fn open_named(
        names: Arc<Names>,
        location: Location,
        fingerprint: String,
        source: &str,
    ) -> Result<ReviewSession> {
        let mut store = match (&location.read_only, &location.seed) {
            (Some(why), _) => Store::open_read_only(&location.path, why)?,
            (None, Some(from)) => Store::open_seeded(&location.path, from)?,
            (None, None) => Store::open(&location.path)?,
        };
        let path = location.path.clone();
        if location.read_only.is_none() {
            let tx = store.begin()?;
            if store::get_meta(&tx, &path, "dataset_sha256")?.is_none() {
                store::set_meta(&tx, &path, "dataset_sha256", &fingerprint)?;
                store::set_meta(&tx, &path, "dataset_source", source)?;
                store::set_meta(&tx, &path, "created_at", &now().to_string())?;
            }
            tx.commit().map_err(|e| store::db_error(&path, e))?;
        }
        let mut s = ReviewSession {
            review: Review::new(names.ids.len(), names.classes.len()),
            data_version: store.data_version()?,
            store,
            path,
            names,
            fingerprint,
            last_seq: 0,
            location,
            warnings: Vec::new(),
        };
        let events = s.store.events_after(0)?;
        let bound_to = match events.last() {
            Some(e) => Some(e.dataset_sha256.clone()),
            None => s.store.meta("dataset_sha256")?,
        };
        if let Some(b) = bound_to.filter(|b| *b != s.fingerprint) {
            s.warnings.push(format!(
                "the dataset changed since the last decision in this review (fingerprint {} then, {} now); decisions are matched by sample id",
                &b[..b.len().min(12)],
                &s.fingerprint[..12]
            ));
        }
        let unknown = replay(&mut s.review, &s.names, &events, &mut s.last_seq);
        s.warnings.extend(unknown.message());
        Ok(s)
    }

    /// The decisions (read-only; change them through this session).
    pub fn review(&self) -> &Review {
        &self.review
    }

    /// The store file.
    pub fn store_path(&self) -> &Path {
        &self.path
    }

    /// Gives each sample its decision, as one undoable step, durably.
    pub fn decide(
        &mut self,
        decisions: &[(usize, Decision)],
        reason: &str,
        reviewer: &str,
    ) -> Result<&Action> {
        let tx = begin_caught_up(
            &mut self.store,
            &self.path,
            &mut self.review,
            &self.names,
            &mut self.last_seq,
        )?;
        let mut action = self
            .review
            .plan(decisions, reason, reviewer)
            .map_err(|e| Error::Other(e.to_string()))?;
        let changes = action
            .changes
            .iter()
            .map(|c| self.names.change_to_stored(c));
        let event = StoredEvent::new(
            EventKind::Apply,
            None,
            reviewer,
            reason,
            &self.fingerprint,
            changes.collect(),
        );
        let seq = store::append(tx, &self.path, &event)?;
        self.last_seq = seq;
        action.seq = seq;
        Ok(self.review.push(action))
    }

    /// Reverts the newest step in the shared history, durably; Ok(None) when
    /// there is nothing to undo.
    pub fn undo(&mut self, reviewer: &str) -> Result<Option<&Action>> {
        self.undo_redo(EventKind::Undo, reviewer)
    }

    /// Re-applies the newest undone step, durably.
    pub fn redo(&mut self, reviewer: &str) -> Result<Option<&Action>> {
        self.undo_redo(EventKind::Redo, reviewer)
    }

    fn undo_redo(&mut self, kind: EventKind, reviewer: &str) -> Result<Option<&Action>> {
        let tx = begin_caught_up(
            &mut self.store,
            &self.path,
            &mut self.review,
            &self.names,
            &mut self.last_seq,
        )?;
        let top = match kind {
            EventKind::Undo => self.review.peek_undo(),
            _ => self.review.peek_redo(),
        };
        let Some(target) = top.map(|a| a.seq) else {
            return Ok(None);
        };
        let event = StoredEvent::new(
            kind,
            Some(target),
            reviewer,
            "",
            &self.fingerprint,
            Vec::new(),
        );
        let seq = store::append(tx, &self.path, &event)?;
        self.last_seq = seq;
        Ok(match kind {
            EventKind::Undo => self.review.undo(),
            _ => self.review.redo(),
        })
    }

    /// Picks up what other windows or processes wrote since we last looked;
    /// true if anything changed. Cheap when nothing did.
    pub fn refresh(&mut self) -> Result<bool> {
        let v = self.store.data_version()?;
        if v == self.data_version {
            return Ok(false);
        }
        self.data_version = v;
        let events = self.store.events_after(self.last_seq)?;
        replay(&mut self.review, &self.names, &events, &mut self.last_seq);
        Ok(!events.is_empty())
    }

    /// The whole log, oldest first (for `review --list` and the audit trail).
    pub fn history(&self) -> Result<Vec<StoredEvent>> {
        self.store.events_after(0)
    }

    /// The dataset fingerprint this session writes into new events.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Checks the store file's integrity (tests, `review --list`).
    pub fn integrity_check(&self) -> Result<()> {
        self.store.integrity_check()
    }
}

/// Starts a write transaction and, inside it, replays what other writers
/// appended since `last_seq`: the start of every write, so "before" values
/// are never stale.
fn begin_caught_up<'s>(
    store: &'s mut Store,
    path: &Path,
    review: &mut Review,
    names: &Names,
    last_seq: &mut i64,
) -> Result<Transaction<'s>> {
    let tx = store.begin()?;
    let events = store::events_after(&tx, path, *last_seq)?;
    replay(review, names, &events, last_seq);
    Ok(tx)
}

/// Applies stored events in order to the in-memory review, advancing
/// `last_seq`; returns what could not be matched to this dataset.
fn replay(
    review: &mut Review,
    names: &Names,
    events: &[StoredEvent],
    last_seq: &mut i64,
) -> Unknown {
    let mut unknown = Unknown::default();
    for e in events {
        replay_one(review, names, e, &mut unknown);
        *last_seq = e.seq;
    }
    unknown
}

/// Applies one stored event. Changes naming samples or classes the dataset
/// no longer has are skipped (and counted), but the step itself is kept so
/// undo/redo stay aligned with the log.
fn replay_one(review: &mut Review, names: &Names, e: &StoredEvent, unknown: &mut Unknown) {
    match e.kind {
        EventKind::Apply => {
            let changes = e
                .changes
                .iter()
                .filter_map(|c| {
                    let r = names.change_from_stored(c);
                    if r.is_none() {
                        unknown.count += 1;
                        unknown.example.get_or_insert_with(|| c.sample_id.clone());
                    }
                    r
                })
                .collect();
            review.push(Action {
                changes,
                seq: e.seq,
            });
        }
        EventKind::Undo => {
            review.undo();
        }
        EventKind::Redo => {
            review.redo();
        }
    }
}

#[derive(Default)]
struct Unknown {
    count: usize,
    example: Option<String>,
}

impl Unknown {
    fn message(&self) -> Option<String> {
        (self.count > 0).then(|| {
            format!(
                "{} stored decision(s) name samples or classes this dataset does not have (e.g. '{}'); they are kept in the store but not shown",
                self.count,
                self.example.as_deref().unwrap_or("?")
            )
        })
    }
}

impl Names {
    fn change_to_stored(&self, c: &Change) -> StoredChange {
        let conv = |e: &Option<Entry>| {
            e.as_ref().map(|e| {
                let (decision, label) = match e.decision {
                    Decision::Keep => ("keep", None),
                    Decision::Exclude => ("exclude", None),
                    Decision::Relabel(k) => ("relabel", self.classes.get(k as usize).cloned()),
                };
                StoredEntry {
                    decision: decision.into(),
                    label,
                    reason: e.reason.clone(),
                    reviewer: e.reviewer.clone(),
                    at: e.at,
                }
            })
        };
        StoredChange {
            sample_id: self.ids[c.sample].clone(),
            before: conv(&c.before),
            after: conv(&c.after),
        }
    }

    fn change_from_stored(&self, c: &StoredChange) -> Option<Change> {
        let sample = *self.index.get(&c.sample_id)?;
        let conv = |e: &Option<StoredEntry>| -> Option<Option<Entry>> {
            let Some(e) = e else { return Some(None) };
            let decision = match (e.decision.as_str(), &e.label) {
                ("keep", _) => Decision::Keep,
                ("exclude", _) => Decision::Exclude,
                ("relabel", Some(l)) => Decision::Relabel(*self.class_index.get(l)?),
                _ => return None,
            };
            Some(Some(Entry {
                decision,
                reason: e.reason.clone(),
                reviewer: e.reviewer.clone(),
                at: e.at,
            }))
        };
        Some(Change {
            sample,
            before: conv(&c.before)?,
            after: conv(&c.after)?,
        })
    }
}
