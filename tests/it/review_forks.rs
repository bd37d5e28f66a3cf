//! The review never forks and never lands somewhere unasked: a store that
//! cannot be written is read (and exported) read-only, `--state-dir`
//! continues from a copy, something that is not a store where the store goes
//! is refused, and several writers on a new store all succeed.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{fails, ok, s, sample_copy};
use poisonlens::manifest::record::Record;

/// Runs poisonlens as a user who cannot write the dataset: `nobody` when
/// the tests run as root (root ignores file modes), else the current user
/// after the dataset was made read-only.
fn as_reader(args: &[&str], home: &Path) -> Output {
    let bin = env!("CARGO_BIN_EXE_poisonlens");
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            bin,
        ]);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args)
        .env("HOME", home)
        .env_remove("XDG_STATE_HOME")
        .output()
        .expect("run poisonlens")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    )
}

/// A world-readable temporary folder another user can enter.
fn open_tmp() -> tempfile::TempDir {
    let t = tempfile::Builder::new().tempdir_in("/tmp").unwrap();
    chmod(t.path(), "a+rwx");
    t
}

fn chmod(p: &Path, mode: &str) {
    let st = Command::new("chmod")
        .args(["-R", mode])
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn a_store_that_cannot_be_written_is_read_and_exported_not_forked() {
    let tmp = open_tmp();
    let data = sample_copy(tmp.path());
    let d = s(&data);
    ok(&["review", d, "--exclude", "000010", "--reason", "trigger"]);
    chmod(&data, "a+rX,a-w");
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    chmod(&home, "a+rwx");
    // The existing decisions are read.
    let o = as_reader(&["review", d, "--list"], &home);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("000010") && t.contains("read-only"), "{t}");
    // A new decision is refused, saying what to do; nothing lands elsewhere.
    let o = as_reader(&["review", d, "--exclude", "000011"], &home);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("--state-dir"), "{t}");
    assert_eq!(
        std::fs::read_dir(&home).unwrap().count(),
        0,
        "nothing written under HOME"
    );
    // An export carries the recorded exclusion.
    let out = home.join("export");
    let o = as_reader(&["export", d, "--out", s(&out)], &home);
    assert!(o.status.success(), "{}", text(&o));
    let r: Record =
        serde_json::from_slice(&std::fs::read(out.join("record.json")).unwrap()).unwrap();
    assert!(
        r.excluded.iter().any(|e| e.id == "000010"),
        "the exclusion is exported"
    );
    assert!(r.kept.iter().all(|k| k.id != "000010"));
    // Explicitly elsewhere: continues from a copy of the decisions.
    let state = home.join("state");
    let o = as_reader(
        &["review", d, "--exclude", "000011", "--state-dir", s(&state)],
        &home,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = as_reader(&["review", d, "--list", "--state-dir", s(&state)], &home);
    let t = text(&o);
    assert!(t.contains("000010") && t.contains("000011"), "{t}");
    chmod(&data, "u+w");
}

#[test]
fn a_read_only_folder_without_a_store_opens_an_empty_read_only_review() {
    let tmp = open_tmp();
    let data = sample_copy(tmp.path());
    let d = s(&data);
    chmod(&data, "a+rX,a-w");
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    chmod(&home, "a+rwx");
    let o = as_reader(&["review", d, "--list"], &home);
    let t = text(&o);
    assert!(o.status.success() && t.contains("Decisions (0 of"), "{t}");
    assert!(t.contains("read-only"), "{t}");
    let o = as_reader(&["review", d, "--exclude", "000011"], &home);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("--state-dir"), "{t}");
    assert!(
        !data.join("manifest.review.sqlite").exists(),
        "no store was created"
    );
    assert_eq!(
        std::fs::read_dir(&home).unwrap().count(),
        0,
        "nothing written under HOME"
    );
    chmod(&data, "u+w");
}

#[test]
fn something_else_where_the_store_goes_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let data = sample_copy(tmp.path());
    let d = s(&data);
    let store = data.join("manifest.review.sqlite");
    std::fs::create_dir(&store).unwrap();
    let e = fails(&["review", d, "--exclude", "000001"]);
    assert!(
        e.contains("manifest.review.sqlite") && e.contains("not a regular file"),
        "{e}"
    );
    std::fs::remove_dir(&store).unwrap();
    // An unrelated SQLite database gets no tables added.
    let c = rusqlite::Connection::open(&store).unwrap();
    c.execute_batch("CREATE TABLE accounts(name TEXT); INSERT INTO accounts VALUES ('x');")
        .unwrap();
    drop(c);
    let before = std::fs::read(&store).unwrap();
    let e = fails(&["review", d, "--exclude", "000001"]);
    assert!(e.contains("not a poisonlens review store"), "{e}");
    assert_eq!(
        std::fs::read(&store).unwrap(),
        before,
        "the file is untouched"
    );
}

#[test]
fn four_writers_on_a_new_store_all_succeed() {
    for trial in 0..6 {
        let tmp = tempfile::tempdir().unwrap();
        let data: PathBuf = sample_copy(tmp.path());
        let children: Vec<_> = (0..4)
            .map(|w| {
                Command::new(env!("CARGO_BIN_EXE_poisonlens"))
                    .args(["review", s(&data), "--exclude", &format!("00002{w}")])
                    .args(["--reviewer", &format!("w{w}")])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "trial {trial}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let list = ok(&["review", s(&data), "--list"]);
        for w in 0..4 {
            assert!(list.contains(&format!("00002{w}")), "trial {trial}: {list}");
        }
    }
}

#[test]
fn a_reader_of_read_only_data_neither_trusts_nor_writes_the_stored_scan() {
    let tmp = open_tmp();
    let data = sample_copy(tmp.path());
    let d = s(&data);
    let owner_out = tmp.path().join("owner.csv");
    ok(&["scan", d, "--out", s(&owner_out)]);
    let stored = data.join("manifest.review.scan");
    let before = std::fs::read(&stored).unwrap();
    chmod(&data, "a+rX,a-w");
    let home = tmp.path().join("reader");
    std::fs::create_dir(&home).unwrap();
    chmod(&home, "a+rwx");
    let out = home.join("r.csv");
    let o = as_reader(&["scan", d, "--out", s(&out)], &home);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    // Sealed by another user's secret: scanned again, not believed ...
    assert!(t.contains("not written by this user"), "{t}");
    // ... and the read-only folder is left as it was.
    assert!(t.contains("could not store the scan"), "{t}");
    assert_eq!(std::fs::read(&stored).unwrap(), before);
    chmod(&data, "u+w");
}
