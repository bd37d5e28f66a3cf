//! Scan once (issue #11): a scan's result is stored beside the review state
//! and reused only for the same data, options and build, sealed so that a
//! result written by anyone else is never believed.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use poisonlens::dataset::{Dataset, OpenOptions};
use poisonlens::detect::cache::{Lookup, ScanCache, key};
use poisonlens::detect::{ScanOptions, scan};

/// Runs `poisonlens scan` with its own HOME (so its own sealing secret).
fn scan_cli(home: &Path, data: &Path, out: &Path, extra: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_poisonlens"))
        .args([
            "scan",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(extra)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("run poisonlens");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = common::sample_copy(dir.path());
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    (dir, data, home)
}

/// A private copy of the sample, scanned once (its result stored), and the
/// report path to scan into again.
fn scanned_once() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let (dir, data, home) = setup();
    let out = dir.path().join("r.csv");
    scan_cli(&home, &data, &out, &[]);
    (dir, data, home, out)
}

#[test]
fn an_unchanged_dataset_reuses_its_scan_and_any_change_scans_again() {
    let (dir, data, home) = setup();
    let out = |n: &str| dir.path().join(n);
    let first = scan_cli(&home, &data, &out("1.csv"), &[]);
    assert!(stderr(&first).contains("stored in"), "{}", stderr(&first));
    assert!(data.join("manifest.review.scan").is_file());
    let key_file = home.join(".config/poisonlens/scan-cache.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the sealing secret is private");
    }

    let second = scan_cli(&home, &data, &out("2.csv"), &[]);
    assert!(
        stderr(&second).contains("reused the stored scan"),
        "{}",
        stderr(&second)
    );
    assert_eq!(
        std::fs::read(out("1.csv")).unwrap(),
        std::fs::read(out("2.csv")).unwrap(),
        "the reused result is the same report"
    );
    let summary = |o: &Output, name: &str| String::from_utf8_lossy(&o.stdout).replace(name, "OUT");
    assert_eq!(
        summary(&first, "1.csv"),
        summary(&second, "2.csv"),
        "and the same summary"
    );

    // Another budget is another scan.
    let other = scan_cli(&home, &data, &out("3.csv"), &["--fdr", "0.1"]);
    assert!(
        stderr(&other).contains("changed since the stored scan"),
        "{}",
        stderr(&other)
    );

    // One image's bytes rewritten (same name, same size): scanned again.
    let img = std::fs::read_dir(data.join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_file() || p.is_dir())
        .unwrap();
    let img = if img.is_dir() {
        std::fs::read_dir(&img)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    } else {
        img
    };
    scan_cli(&home, &data, &out("4.csv"), &[]);
    let mut decoded = image::open(&img).unwrap().to_luma8();
    let p = decoded.get_pixel_mut(0, 0);
    p.0[0] ^= 0x40;
    decoded.save(&img).unwrap();
    let after = scan_cli(&home, &data, &out("5.csv"), &[]);
    assert!(
        stderr(&after).contains("changed since the stored scan"),
        "{}",
        stderr(&after)
    );

    // --no-cache neither reads nor writes it.
    let before = std::fs::read(data.join("manifest.review.scan")).unwrap();
    let fresh = scan_cli(&home, &data, &out("6.csv"), &["--no-cache"]);
    assert!(
        stderr(&fresh).contains("not stored for next time (--no-cache)"),
        "{}",
        stderr(&fresh)
    );
    assert_eq!(
        before,
        std::fs::read(data.join("manifest.review.scan")).unwrap()
    );
}

/// `--state-dir` naming a folder that does not exist yet: the scan makes
/// it and stores its result there (it was left unstored, said in a note),
/// and the next scan with it reuses the result.
#[test]
fn a_new_state_dir_is_made_and_holds_the_stored_scan() {
    let (dir, data, home) = setup();
    let state = dir.path().join("not/yet/there");
    let args = ["--state-dir", state.to_str().unwrap()];
    let first = scan_cli(&home, &data, &dir.path().join("1.csv"), &args);
    assert!(stderr(&first).contains("stored in"), "{}", stderr(&first));
    assert!(state.is_dir());
    let again = scan_cli(&home, &data, &dir.path().join("2.csv"), &args);
    assert!(
        stderr(&again).contains("reused the stored scan"),
        "{}",
        stderr(&again)
    );
    assert!(!data.join("manifest.review.scan").exists());
}

/// A `--state-dir` that cannot be made (its path runs through a regular
/// file): the scan still succeeds and its report is written, and it says
/// the result was not stored, naming where.
#[test]
fn a_state_dir_that_cannot_be_made_leaves_the_scan_unstored_and_says_so() {
    let (dir, data, home) = setup();
    let blocker = dir.path().join("a_file");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let state = blocker.join("state");
    let out = dir.path().join("1.csv");
    let o = scan_cli(
        &home,
        &data,
        &out,
        &["--state-dir", state.to_str().unwrap()],
    );
    let e = stderr(&o);
    assert!(
        e.contains("could not store the scan") && e.contains("a_file"),
        "{e}"
    );
    assert!(out.is_file());
}

#[test]
fn a_stored_result_written_or_edited_by_anyone_else_is_not_believed() {
    let (dir, data, home, out) = scanned_once();
    let stored = data.join("manifest.review.scan");

    // Another user (another secret) finds it but does not use it.
    let other_home = dir.path().join("other");
    std::fs::create_dir(&other_home).unwrap();
    let o = scan_cli(&other_home, &data, &out, &[]);
    assert!(
        stderr(&o).contains("not written by this user"),
        "{}",
        stderr(&o)
    );

    // The owner's result, one byte changed in the middle: not believed.
    scan_cli(&home, &data, &out, &[]);
    let mut bytes = std::fs::read(&stored).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&stored, &bytes).unwrap();
    let o = scan_cli(&home, &data, &out, &[]);
    assert!(
        stderr(&o).contains("not written by this user"),
        "{}",
        stderr(&o)
    );

    // Cut short: a miss, not an error.
    std::fs::write(&stored, &bytes[..100]).unwrap();
    let o = scan_cli(&home, &data, &out, &[]);
    assert!(stderr(&o).contains("truncated"), "{}", stderr(&o));
}

#[cfg(unix)]
#[test]
fn a_fifo_where_the_result_goes_is_refused_at_once() {
    let (dir, data, home) = setup();
    let stored = data.join("manifest.review.scan");
    let c = std::ffi::CString::new(stored.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let o = scan_cli(&home, &data, &dir.path().join("r.csv"), &[]);
    let e = stderr(&o);
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn the_stored_report_is_the_report() {
    let ds = Dataset::open(&common::sample(), &OpenOptions::default()).unwrap();
    let opts = ScanOptions::default();
    let report = scan(&ds, &opts, &|_, _| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = ScanCache::with_secret(dir.path().join("s.scan"), [7; 32]);
    let k = key(&ds, &opts).unwrap();
    cache.store(&k, &report).unwrap();
    let Lookup::Hit(back) = cache.load(&k, ds.len()) else {
        panic!("stored result not found");
    };
    assert_eq!(back.ids, report.ids);
    assert_eq!(back.flagged, report.flagged);
    assert_eq!(back.score, report.score);
    assert_eq!(back.reasons, report.reasons);
    assert_eq!(back.suggested_label, report.suggested_label);
    assert_eq!(back.features, report.features);
    assert_eq!(back.neighbours, report.neighbours);
    assert_eq!(back.trigger_box, report.trigger_box);
    assert_eq!(back.triggers.len(), report.triggers.len());
    assert!(!report.triggers.is_empty(), "the sample has a backdoor");
    assert_eq!(
        back.images.as_ref().map(|s| s.data.len()),
        report.images.as_ref().map(|s| s.data.len())
    );
    for (a, b) in back.detectors.iter().zip(&report.detectors) {
        assert_eq!(
            (a.name, &a.flagged, &a.score, &a.reasons, &a.suggested),
            (b.name, &b.flagged, &b.score, &b.reasons, &b.suggested)
        );
    }
    // A stored trigger still finds its carriers.
    let t = &back.triggers[0];
    let stack = back.images.as_ref().unwrap();
    let hits = |t: &poisonlens::detect::trigger::Trigger, s| -> Vec<bool> {
        t.score(s, &report.labels)
            .iter()
            .map(|h| h.score >= 0.5)
            .collect()
    };
    assert_eq!(
        hits(t, stack),
        hits(&report.triggers[0], report.images.as_ref().unwrap())
    );
    assert!(hits(t, stack).iter().any(|&h| h));

    // Another key, another secret or a dataset of another size: a miss.
    assert!(matches!(cache.load(&[0; 32], ds.len()), Lookup::Miss(_)));
    let stranger = ScanCache::with_secret(dir.path().join("s.scan"), [8; 32]);
    assert!(matches!(stranger.load(&k, ds.len()), Lookup::Miss(_)));
    assert!(matches!(cache.load(&k, ds.len() + 1), Lookup::Miss(_)));

    // A detector's reason for a sample the dataset does not have: a miss,
    // however well sealed.
    let mut lying = report.clone();
    let mut d = (*lying.detectors[0]).clone();
    d.reasons.set(ds.len(), "no such sample".into());
    lying.detectors[0] = d.into();
    cache.store(&k, &lying).unwrap();
    let Lookup::Miss(why) = cache.load(&k, ds.len()) else {
        panic!("a reason beyond the dataset was believed");
    };
    assert!(why.contains("size"), "{why}");
}

#[cfg(unix)]
#[test]
fn a_sealing_key_others_can_read_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, data, home, out) = scanned_once();
    let key = home.join(".config/poisonlens/scan-cache.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = scan_cli(&home, &data, &out, &[]);
    let e = stderr(&o);
    assert!(e.contains("readable or writable by others"), "{e}");
    assert!(!e.contains("reused"), "{e}");
}

#[test]
fn a_stored_scan_whose_header_lies_about_its_length_is_a_miss() {
    let (_dir, data, home, out) = scanned_once();
    let stored = data.join("manifest.review.scan");
    let mut bytes = std::fs::read(&stored).unwrap();
    // Bytes 48..56 hold the payload length: claim 1 TB.
    bytes[48..56].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&stored, &bytes).unwrap();
    let o = scan_cli(&home, &data, &out, &[]);
    let e = stderr(&o);
    assert!(e.contains("truncated"), "{e}");
    assert!(!e.contains("reused"), "{e}");
}

#[cfg(unix)]
#[test]
fn a_fifo_as_the_sealing_key_is_refused_at_once() {
    let (dir, data, home) = setup();
    let key_dir = home.join(".config/poisonlens");
    std::fs::create_dir_all(&key_dir).unwrap();
    let key = key_dir.join("scan-cache.key");
    let c = std::ffi::CString::new(key.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let o = scan_cli(&home, &data, &dir.path().join("r.csv"), &[]);
    let e = stderr(&o);
    assert!(e.contains("not a regular file"), "{e}");
    assert!(e.contains("not stored for next time"), "{e}");
}
