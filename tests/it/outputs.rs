//! What poisonlens writes never replaces what it reads, and what it prints
//! from a review cannot be forged by the text stored in it.

use crate::common;

use common::signed::signed;
use common::{fails, ok, s, sample_copy};

#[test]
fn no_output_may_replace_an_input() {
    let tmp = tempfile::tempdir().unwrap();
    let data = sample_copy(tmp.path());
    let d = s(&data);
    let manifest = data.join("manifest.csv");
    let before = std::fs::read(&manifest).unwrap();
    for target in [
        manifest.clone(),
        data.join("embeddings.npy"),
        data.join("images/000001.png"),
        data.join("manifest.review.sqlite"),
    ] {
        let e = fails(&["scan", d, "--out", s(&target), "--quiet"]);
        assert!(e.contains("of the dataset being read"), "{target:?}: {e}");
    }
    // Through a symlink too.
    let link = tmp.path().join("report.csv");
    std::os::unix::fs::symlink(&manifest, &link).unwrap();
    let e = fails(&["scan", d, "--out", s(&link), "--quiet"]);
    assert!(e.contains("the manifest"), "{e}");
    assert_eq!(std::fs::read(&manifest).unwrap(), before);
    // An export opened from its own cleaned.csv cannot be exported onto itself.
    let t = signed();
    let cleaned = t.out.join("cleaned.csv");
    let before = std::fs::read(&cleaned).unwrap();
    let e = fails(&["export", s(&cleaned), "--out", s(&t.out)]);
    assert!(
        e.contains("cleaned.csv") && e.contains("the manifest"),
        "{e}"
    );
    assert_eq!(std::fs::read(&cleaned).unwrap(), before);
}

#[test]
fn stored_names_and_reasons_cannot_fake_lines_on_the_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let data = sample_copy(tmp.path());
    let d = s(&data);
    let fake =
        "eve\n#9     2026-01-01T00:00:00Z  ana           1 sample(s): 000001 undecided -> keep";
    ok(&[
        "review",
        d,
        "--exclude",
        "000002",
        "--reviewer",
        fake,
        "--reason",
        "\x1b[2Jcleared\u{202e}",
    ]);
    let list = ok(&["review", d, "--list"]);
    assert!(
        !list.contains('\x1b') && !list.contains('\u{202e}'),
        "{list:?}"
    );
    assert!(list.contains("eve\\u{a}#9"), "{list}");
    assert!(
        !list.lines().any(|l| l.starts_with("#9 ")),
        "a forged history line: {list}"
    );
}
