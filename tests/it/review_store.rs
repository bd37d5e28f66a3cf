//! Durable review state: decisions survive reopening, `kill -9` and a second
//! writer; the review knows when its dataset changed; `poisonlens review`
//! writes to the same store as the workbench.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use common::{fails, ok, s, sample_copy};
use poisonlens::Dataset;
use poisonlens::review::store::EventKind;
use poisonlens::review::{Decision, ReviewSession};

fn open(data: &Path) -> (Dataset, ReviewSession) {
    let ds = Dataset::open(data, &Default::default()).unwrap();
    let r = ReviewSession::open(&ds, None).unwrap();
    (ds, r)
}

fn id(ds: &Dataset, i: usize) -> &str {
    &ds.ids[i]
}

#[test]
fn reopening_restores_decisions_and_undo_redo_history() {
    let tmp = tempfile::tempdir().unwrap();
    let data = sample_copy(tmp.path());
    {
        let (_, mut r) = open(&data);
        r.decide(
            &[(1, Decision::Exclude), (2, Decision::Exclude)],
            "patch",
            "ana",
        )
        .unwrap();
        r.decide(&[(3, Decision::Relabel(4))], "", "ana").unwrap();
        r.decide(&[(4, Decision::Keep)], "", "bob").unwrap();
        r.undo("bob").unwrap().unwrap();
    }
    assert!(
        data.join("manifest.review.sqlite").exists(),
        "kept beside the dataset"
    );
    let (_, mut r) = open(&data);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let d = |r: &ReviewSession, i| r.review().decision(i).map(|e| e.decision);
    assert_eq!(d(&r, 1), Some(Decision::Exclude));
    assert_eq!(r.review().decision(2).unwrap().reason, "patch");
    assert_eq!(d(&r, 3), Some(Decision::Relabel(4)));
    assert_eq!(d(&r, 4), None, "the undone step stays undone");
    // Redo and undo continue the history from where it was left.
    r.redo("bob").unwrap().unwrap();
    assert_eq!(d(&r, 4), Some(Decision::Keep));
    r.undo("bob").unwrap();
    r.undo("bob").unwrap();
    assert_eq!(d(&r, 3), None);
    let h = r.history().unwrap();
    let kinds: Vec<EventKind> = h.iter().map(|e| e.kind).collect();
    use EventKind::*;
    assert_eq!(kinds, vec![Apply, Apply, Apply, Undo, Redo, Undo, Undo]);
    assert_eq!(h[3].target, Some(h[2].seq));
    // Every change carries who, when, why and the previous value.
    assert_eq!(h[0].changes.len(), 2);
    assert_eq!(h[0].changes[0].after.as_ref().unwrap().reason, "patch");
    assert!(h[0].changes[0].before.is_none());
    r.integrity_check().unwrap();
}

#[test]
fn a_changed_dataset_is_warned_about_and_decisions_follow_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let data = sample_copy(tmp.path());
    let (ds, mut r) = open(&data);
    let kept_id = id(&ds, 5).to_string();
    r.decide(&[(5, Decision::Exclude), (2999, Decision::Keep)], "", "ana")
        .unwrap();
    drop(r);
    // Re-export the manifest in another order, without the last row.
    let text = std::fs::read_to_string(data.join("manifest.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines.remove(0);
    lines.pop();
    lines.reverse();
    std::fs::write(
        data.join("manifest.csv"),
        format!("{header}\n{}\n", lines.join("\n")),
    )
    .unwrap();
    std::fs::remove_file(data.join("embeddings.npy")).unwrap();
    let (ds2, r2) = open(&data);
    let w = r2.warnings.join("\n");
    assert!(w.contains("the dataset changed"), "{w}");
    assert!(w.contains("1 stored decision(s) name samples"), "{w}");
    let i = ds2.ids.iter().position(|x| *x == kept_id).unwrap();
    assert_eq!(r2.review().decision(i).unwrap().decision, Decision::Exclude);
}

#[test]
fn cli_review_writes_the_store_the_library_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let data = sample_copy(tmp.path());
    let d = s(&data);
    let out = ok(&[
        "review",
        d,
        "--exclude",
        "000001",
        "000002",
        "--relabel",
        "000003=Bag",
        "--reason",
        "cli",
        "--reviewer",
        "script",
    ]);
    assert!(out.contains("recorded 3 decision(s) as step #1"), "{out}");
    let (ds, r) = open(&data);
    let bag = ds.classes.iter().position(|c| c == "Bag").unwrap() as u32;
    assert_eq!(
        r.review().decision(3).unwrap().decision,
        Decision::Relabel(bag)
    );
    assert_eq!(r.review().decision(1).unwrap().reviewer, "script");
    drop(r);
    ok(&["review", d, "--undo"]);
    let list = ok(&["review", d, "--list"]);
    assert!(list.contains("Decisions (0 of 3000 samples)"), "{list}");
    assert!(list.contains("undo of step #1"), "{list}");
    assert!(list.contains("000003 undecided -> relabel:Bag"), "{list}");
    // Bad ids and labels are named; nothing is written.
    let e = fails(&["review", d, "--exclude", "nope"]);
    assert!(e.contains("no sample with id 'nope'"), "{e}");
    let e = fails(&["review", d, "--relabel", "000004=Cat"]);
    assert!(e.contains("no class 'Cat'") && e.contains("Sneaker"), "{e}");
    let (_, r) = open(&data);
    assert_eq!(r.history().unwrap().len(), 2);
    // --state-dir keeps the store elsewhere.
    let state = tmp.path().join("state");
    ok(&["review", d, "--exclude", "000009", "--state-dir", s(&state)]);
    let files: Vec<_> = std::fs::read_dir(&state).unwrap().collect();
    assert_eq!(files.len(), 1, "one store in the state folder");
}

/// A `poisonlens review --stdin` child with its pipes.
struct Writer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn writer(data: &Path, reviewer: &str) -> Writer {
    let mut child = Command::new(env!("CARGO_BIN_EXE_poisonlens"))
        .args(["review", s(data), "--stdin", "--reviewer", reviewer])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    Writer {
        child,
        stdin,
        stdout,
    }
}

impl Writer {
    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }
    fn ack(&mut self) -> String {
        let mut l = String::new();
        self.stdout.read_line(&mut l).unwrap();
        l.trim().to_string()
    }
}

#[test]
fn kill_9_mid_review_loses_nothing_that_was_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let data = sample_copy(tmp.path());
    let ds = Dataset::open(&data, &Default::default()).unwrap();
    let mut w = writer(&data, "crash");
    let mut acked = Vec::new();
    for i in 0..60 {
        w.send(&format!("exclude {}", id(&ds, i)));
        let a = w.ack();
        assert!(a.starts_with("ok "), "{a}");
        acked.push(i);
    }
    // More decisions in flight, then SIGKILL without waiting for them.
    for i in 60..200 {
        w.send(&format!("relabel {}=Bag", id(&ds, i)));
    }
    w.child.kill().unwrap(); // SIGKILL on Unix
    w.child.wait().unwrap();

    let (_, mut r) = open(&data);
    r.integrity_check().unwrap();
    for &i in &acked {
        assert_eq!(
            r.review().decision(i).map(|e| e.decision),
            Some(Decision::Exclude),
            "acknowledged decision {i} lost"
        );
    }
    let n = r.history().unwrap().len();
    assert!((60..=200).contains(&n), "{n} events");
    // Work goes on after the crash.
    r.decide(&[(2000, Decision::Keep)], "", "after").unwrap();
    assert_eq!(r.history().unwrap().len(), n + 1);
}

#[test]
fn two_writers_at_once_share_one_consistent_history() {
    let tmp = tempfile::tempdir().unwrap();
    let data = sample_copy(tmp.path());
    let ds = Dataset::open(&data, &Default::default()).unwrap();
    let run = |who: &'static str, offset: usize, data: std::path::PathBuf, ids: Vec<String>| {
        std::thread::spawn(move || {
            let mut w = writer(&data, who);
            let mut oks = 0;
            for k in 0..120 {
                // Half on samples of its own, half on samples both touch.
                let i = if k % 2 == 0 {
                    offset + k
                } else {
                    2500 + k % 20
                };
                let verb = if who == "a" { "exclude" } else { "keep" };
                w.send(&format!("{verb} {}", ids[i]));
                if w.ack().starts_with("ok ") {
                    oks += 1;
                }
            }
            drop(w.stdin);
            assert!(w.child.wait().unwrap().success());
            oks
        })
    };
    let a = run("a", 0, data.clone(), ds.ids.clone());
    let b = run("b", 1000, data.clone(), ds.ids.clone());
    assert_eq!(
        a.join().unwrap() + b.join().unwrap(),
        240,
        "every decision acknowledged"
    );

    let (_, r) = open(&data);
    r.integrity_check().unwrap();
    let h = r.history().unwrap();
    assert_eq!(h.len(), 240);
    assert!(h.windows(2).all(|p| p[0].seq < p[1].seq));
    // Each decision's "before" is what the previous event on that sample left.
    let mut last: std::collections::HashMap<&str, Option<String>> = Default::default();
    for e in &h {
        for c in &e.changes {
            let before = c.before.as_ref().map(|b| b.decision.clone());
            let expect = last.get(c.sample_id.as_str()).cloned().flatten();
            assert_eq!(before, expect, "event {} sample {}", e.seq, c.sample_id);
            last.insert(&c.sample_id, c.after.as_ref().map(|a| a.decision.clone()));
        }
    }
    for k in (0..120).step_by(2) {
        assert_eq!(r.review().decision(k).unwrap().decision, Decision::Exclude);
        assert_eq!(
            r.review().decision(1000 + k).unwrap().decision,
            Decision::Keep
        );
    }
}

#[test]
fn a_reader_session_sees_what_its_writer_committed_once_it_looks() {
    let tmp = tempfile::tempdir().unwrap();
    let data = sample_copy(tmp.path());
    let (_, mut w) = open(&data);
    w.decide(&[(7, Decision::Keep)], "", "ana").unwrap();
    let mut r = w.reader().unwrap();
    assert_eq!(r.store_path(), w.store_path());
    assert_eq!(
        r.review().decision(7).map(|e| e.decision),
        Some(Decision::Keep)
    );
    w.decide(&[(8, Decision::Exclude)], "", "ana").unwrap();
    w.undo("ana").unwrap();
    w.undo("ana").unwrap();
    assert!(r.refresh().unwrap(), "the writer's commits are seen");
    assert_eq!(r.review().decision(7), None);
    assert_eq!(r.review().decision(8), None);
    assert!(r.review().can_redo());
}
