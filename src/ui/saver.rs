//! Decision writes off the UI thread. A write waits for SQLite's lock when
//! another window or `poisonlens review` is writing (up to the store's busy
//! timeout); on the UI thread that froze the window. Here a thread of its
//! own owns the writing [`ReviewSession`] and carries out writes in the
//! order they were asked for; the window shows each as "saving…" until the
//! thread reports it committed (fsync'd), then reads it back from the store
//! through its own session — so nothing is shown as done before it is on
//! disk, and nothing is lost when the window closes (dropping the saver
//! finishes every write first).

use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use crate::review::{Decision, ReviewSession};

/// A write the window asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Give each sample its decision, as one undoable step.
    Decide {
        /// Samples and their decisions.
        pairs: Vec<(usize, Decision)>,
        /// The reason recorded with them.
        reason: String,
        /// Who decided.
        reviewer: String,
    },
    /// Undo the newest step.
    Undo {
        /// Who undid it.
        reviewer: String,
    },
    /// Redo the newest undone step.
    Redo {
        /// Who redid it.
        reviewer: String,
    },
}

/// What became of a write.
#[derive(Debug)]
pub struct Saved {
    /// The write.
    pub write: Write,
    /// Ok with the first sample the step changed (None: nothing to undo or
    /// redo), or why it was not saved.
    pub result: Result<Option<usize>, String>,
}

/// The writer thread and the writes still on their way to disk.
pub struct Saver {
    send: Option<Sender<Write>>,
    saved: Receiver<Saved>,
    pending: Vec<Write>,
    thread: Option<JoinHandle<()>>,
}

impl Saver {
    /// Starts the writer thread, which owns `session` from now on.
    pub fn start(mut session: ReviewSession) -> Saver {
        let (send, todo) = channel::<Write>();
        let (done, saved) = channel();
        let thread = std::thread::Builder::new()
            .name("poisonlens-saver".into())
            .spawn(move || {
                for write in todo {
                    let result = carry_out(&mut session, &write);
                    if done.send(Saved { write, result }).is_err() {
                        // The window is gone; keep writing what it asked.
                        continue;
                    }
                }
            })
            .expect("spawn the saver thread");
        Saver {
            send: Some(send),
            saved,
            pending: Vec::new(),
            thread: Some(thread),
        }
    }

    /// Queues a write; it is pending until [`Saver::take_saved`] returns it.
    pub fn submit(&mut self, write: Write) {
        let Some(send) = &self.send else { return };
        if send.send(write.clone()).is_ok() {
            self.pending.push(write);
        }
    }

    /// Writes finished since the last call, in the order they were asked.
    pub fn take_saved(&mut self) -> Vec<Saved> {
        let mut saved: Vec<Saved> = Vec::new();
        loop {
            match self.saved.try_recv() {
                Ok(s) => saved.push(s),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    // The writer died (a bug): what it had not done is
                    // reported as not saved rather than left "saving…".
                    let undone = self.pending.split_off(saved.len().min(self.pending.len()));
                    saved.extend(undone.into_iter().map(|write| Saved {
                        write,
                        result: Err("the decision writer stopped unexpectedly".into()),
                    }));
                    self.send = None;
                    break;
                }
            }
        }
        self.pending.drain(..saved.len().min(self.pending.len()));
        saved
    }

    /// Blocks until every queued write has finished (tests, headless).
    pub fn wait_saved(&mut self) -> Vec<Saved> {
        let mut all = Vec::new();
        while all.len() < self.pending.len() {
            match self.saved.recv() {
                Ok(s) => all.push(s),
                Err(_) => break,
            }
        }
        self.pending.drain(..all.len().min(self.pending.len()));
        all
    }

    /// Whether any write is still on its way to disk.
    pub fn is_saving(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The decision a pending write will give sample `i` (the newest), if any.
    pub fn pending_for(&self, i: usize) -> Option<Decision> {
        self.pending.iter().rev().find_map(|w| match w {
            Write::Decide { pairs, .. } => pairs.iter().find(|p| p.0 == i).map(|p| p.1),
            _ => None,
        })
    }
}

impl Drop for Saver {
    /// Finishes every queued write before the window lets go of the review.
    fn drop(&mut self) {
        self.send = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn carry_out(session: &mut ReviewSession, write: &Write) -> Result<Option<usize>, String> {
    let first =
        |a: Option<&crate::review::Action>| a.and_then(|a| a.changes.first().map(|c| c.sample));
    match write {
        Write::Decide {
            pairs,
            reason,
            reviewer,
        } => session
            .decide(pairs, reason, reviewer)
            .map(|a| first(Some(a))),
        Write::Undo { reviewer } => session.undo(reviewer).map(first),
        Write::Redo { reviewer } => session.redo(reviewer).map(first),
    }
    .map_err(|e| e.to_string())
}
