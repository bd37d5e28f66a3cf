//! `verify` fails closed: nothing a record names is read before its
//! signature and signer are trusted; the allowed-signers file means exactly
//! what it means to `ssh-keygen -Y verify`; a record that lies about itself
//! is caught; and every problem is counted.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::signed::{Signed, record, signed, verify_args};
use common::{fails, have_ssh_keygen, ok, s};
use poisonlens::manifest::record::Record;
use poisonlens::manifest::sign::{self, NAMESPACE};

/// Runs poisonlens and kills it if it has not finished in `secs`: a verify
/// that hangs on a hostile record fails the test instead of hanging it.
fn run_within(args: &[&str], secs: u64) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_poisonlens"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run poisonlens");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            panic!("poisonlens {args:?} still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    )
}

/// Writes `r` as the export's record and signs it with the key at `key`.
fn write_signed(out: &Path, r: &Record, key: &Path) {
    let bytes = serde_json::to_vec_pretty(r).unwrap();
    std::fs::write(out.join("record.json"), &bytes).unwrap();
    let k = sign::load_private_key(key, &mut || Ok(None)).unwrap();
    std::fs::write(out.join("record.json.sig"), sign::sign(&k, &bytes).unwrap()).unwrap();
}

/// A second key, not in anyone's allowed_signers.
fn mallory_key(t: &Signed) -> PathBuf {
    let key = t.dir.join("mallory_key");
    ok(&[
        "keygen",
        "--out",
        s(&key),
        "--identity",
        "mallory",
        "--no-passphrase",
    ]);
    key
}

/// A record whose first kept file is `/dev/zero` (root `/dev`, path `zero`).
fn pointing_at_dev_zero(t: &Signed) -> Record {
    let mut r = record(t);
    r.dataset.root = "/dev".into();
    r.kept[0].path = Some("zero".into());
    r.kept[0].sha256 = Some("0".repeat(64));
    r
}

#[test]
fn an_unsigned_or_untrusted_record_is_never_followed_to_its_files() {
    let t = signed();
    let r = pointing_at_dev_zero(&t);
    // Unsigned: stops at the signature.
    std::fs::write(t.out.join("record.json"), serde_json::to_vec(&r).unwrap()).unwrap();
    std::fs::remove_file(t.out.join("record.json.sig")).unwrap();
    let o = run_within(&verify_args(&t), 60);
    let msg = text(&o);
    assert!(!o.status.success(), "{msg}");
    assert!(
        msg.contains("not signed") && msg.contains("stopped before reading"),
        "{msg}"
    );
    // Signed by a key nobody trusts: stops at the signer, reads nothing.
    let mallory = mallory_key(&t);
    write_signed(&t.out, &r, &mallory);
    let o = run_within(&verify_args(&t), 60);
    let msg = text(&o);
    assert!(!o.status.success(), "{msg}");
    assert!(
        msg.contains("is not allowed") && msg.contains("stopped before reading"),
        "{msg}"
    );
    assert!(!msg.contains("zero") && !msg.contains("SHA-256"), "{msg}");
}

#[test]
fn without_a_signers_file_the_signer_is_unverified_and_verify_fails() {
    let t = signed();
    let msg = fails(&["verify", s(&t.out)]);
    assert!(
        msg.contains("nothing says whom to trust") && msg.contains("--allowed-signers"),
        "{msg}"
    );
    let out = ok(&["verify", s(&t.out), "--accept-any-signer"]);
    assert!(
        out.starts_with("OK ") && out.contains("NOT verified"),
        "{out}"
    );
    // Even when any signer is accepted, only regular files are read.
    let mallory = mallory_key(&t);
    write_signed(&t.out, &pointing_at_dev_zero(&t), &mallory);
    let o = run_within(&["verify", s(&t.out), "--accept-any-signer"], 60);
    let msg = text(&o);
    assert!(!o.status.success(), "{msg}");
    assert!(msg.contains("character device"), "{msg}");
}

#[test]
fn a_record_listing_samples_twice_or_miscounting_fails() {
    let t = signed();
    let mut r = record(&t);
    let kept = r.kept.clone();
    r.kept.extend(kept.iter().cloned());
    r.kept.extend(kept.iter().cloned());
    r.counts.kept = r.kept.len();
    r.dataset.samples = r.kept.len() + r.excluded.len();
    write_signed(&t.out, &r, &t.key);
    let msg = fails(&verify_args(&t));
    assert!(msg.contains("is listed 3 time(s) as kept"), "{msg}");
    let total: usize = msg
        .lines()
        .find_map(|l| l.strip_prefix("verification failed: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a problem count");
    assert!(total >= kept.len(), "{total} problems counted: {msg}");
    // Counts that do not add up.
    let mut r = record(&t);
    r.kept.pop();
    write_signed(&t.out, &r, &t.key);
    let msg = fails(&verify_args(&t));
    assert!(msg.contains("counts do not add up"), "{msg}");
}

/// One allowed_signers variant: the line's text (KEY stands for the
/// signer's public key) and whether ssh-keygen accepts the signature.
const VARIANTS: &[(&str, bool)] = &[
    ("ana@example.org KEY", true),
    ("*@example.org KEY", true),
    ("ANA@example.org KEY", false),
    ("!ana@example.org,* KEY", false),
    ("ana@example.org namespaces=\"NS\" KEY", true),
    ("ana@example.org NAMESPACES=\"NS\" KEY", true),
    ("ana@example.org namespaces=\"git\" KEY", false),
    ("ana@example.org namespaces=\"!NS,*\" KEY", false),
    ("ana@example.org namespaces=NS KEY", false),
    ("ana@example.org valid-before=\"20000101\" KEY", false),
    ("ana@example.org valid-after=\"29990101\" KEY", false),
    (
        "ana@example.org valid-after=\"20000101Z\",valid-before=\"29990101Z\" KEY",
        true,
    ),
    (
        "ana@example.org valid-after=\"29990101Z\",valid-before=\"20000101Z\" KEY",
        false,
    ),
    ("ana@example.org valid-before=\"2000-01-01\" KEY", false),
    ("ana@example.org cert-authority KEY", false),
    ("ana@example.org unknown-option=\"x\" KEY", false),
    (
        "ana@example.org namespaces=\"NS\",namespaces=\"NS\" KEY",
        false,
    ),
    ("this line is not readable\nana@example.org KEY", true),
    (
        "ana@example.org ssh-ed25519 not-base64\nana@example.org KEY",
        true,
    ),
];

#[test]
fn allowed_signers_mean_what_they_mean_to_ssh_keygen() {
    let t = signed();
    let line = std::fs::read_to_string(&t.allowed).unwrap();
    let key = line
        .split_whitespace()
        .skip_while(|w| !w.starts_with("ssh-ed25519"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let file = t.dir.join("variant_signers");
    for (variant, accepted) in VARIANTS {
        // NS first: a random key's base64 may itself hold "NS".
        let text = variant.replace("NS", NAMESPACE).replace("KEY", &key);
        std::fs::write(&file, format!("{text}\n")).unwrap();
        let o = common::poisonlens(&["verify", s(&t.out), "--allowed-signers", s(&file)]);
        assert_eq!(
            o.status.success(),
            *accepted,
            "poisonlens on {variant:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        if have_ssh_keygen() {
            let ssh = ssh_keygen_verify(&t, &file);
            assert_eq!(ssh, *accepted, "ssh-keygen on {variant:?}");
        }
    }
}

fn ssh_keygen_verify(t: &Signed, allowed: &Path) -> bool {
    let stdin = std::fs::File::open(t.out.join("record.json")).unwrap();
    Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f", s(allowed), "-I", "ana@example.org"])
        .args(["-n", NAMESPACE, "-s", s(&t.out.join("record.json.sig"))])
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run ssh-keygen")
        .success()
}

#[test]
fn the_signer_defaults_to_the_keys_comment() {
    let t = signed();
    let out = t.dir.join("export2");
    let o = Command::new(env!("CARGO_BIN_EXE_poisonlens"))
        .args(["export", s(&t.data), "--out", s(&out), "--sign", s(&t.key)])
        .env_remove("USER")
        .env_remove("LOGNAME")
        .env_remove("POISONLENS_REVIEWER")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Record =
        serde_json::from_slice(&std::fs::read(out.join("record.json")).unwrap()).unwrap();
    assert_eq!(r.signer.as_deref(), Some("ana@example.org"));
    ok(&["verify", s(&out), "--allowed-signers", s(&t.allowed)]);
}

#[test]
fn keygen_refuses_an_empty_passphrase_file() {
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("empty");
    std::fs::write(&pass, "").unwrap();
    let key = dir.path().join("k");
    let msg = fails(&[
        "keygen",
        "--out",
        s(&key),
        "--identity",
        "ana",
        "--passphrase-file",
        s(&pass),
    ]);
    assert!(msg.contains("empty"), "{msg}");
    assert!(!key.exists() && !dir.path().join("k.pub").exists());
}
