//! The cleaned manifest end to end: review, export, sign, verify — every
//! tamper case the verifier must catch, and interop with the real
//! `ssh-keygen` in both directions.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::signed::{Signed, record, signed, verify_args};
use common::{fails, ok, s};
use poisonlens::manifest::sign::NAMESPACE;

#[test]
fn round_trip_review_export_sign_verify() {
    let t = signed();
    let out = ok(&verify_args(&t));
    assert!(out.starts_with("OK "), "{out}");
    assert!(
        out.contains("an allowed signer") && out.contains("2998 kept"),
        "{out}"
    );

    let r = record(&t);
    assert_eq!(r.signer.as_deref(), Some("ana@example.org"));
    assert_eq!(r.poisonlens_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        r.dataset.manifest_sha256,
        poisonlens::dataset::files::sha256_file(&t.data.join("manifest.csv")).unwrap()
    );
    assert_eq!(r.reviewers, vec!["ana", "bob"]);
    assert_eq!(
        (r.counts.kept, r.counts.excluded, r.counts.relabelled),
        (2998, 2, 1)
    );
    let ex: Vec<(&str, &str, &str)> = r
        .excluded
        .iter()
        .map(|e| (e.id.as_str(), e.reason.as_str(), e.reviewer.as_str()))
        .collect();
    assert_eq!(
        ex,
        vec![
            ("000010", "trigger patch", "ana"),
            ("000011", "trigger patch", "ana")
        ]
    );
    let relabelled = r.kept.iter().find(|k| k.id == "000012").unwrap();
    assert_eq!(relabelled.label, "Bag");
    assert!(
        relabelled.original_label.is_some() && relabelled.original_label.as_deref() != Some("Bag")
    );
    let k = r.kept.iter().find(|k| k.id == "000013").unwrap();
    assert_eq!(k.decision, "keep");
    assert_eq!(
        k.sha256.as_deref().unwrap(),
        poisonlens::dataset::files::sha256_file(&t.data.join("images/000013.png")).unwrap()
    );
    // Before/after counts agree with the kept list.
    assert_eq!(r.counts.after.values().sum::<usize>(), r.kept.len());
    assert_eq!(r.counts.before.values().sum::<usize>(), 3000);

    // The CSV is what a pipeline reads: kept samples, final labels, metadata.
    let csv = std::fs::read_to_string(t.out.join("cleaned.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), "id,path,label,source_index");
    assert_eq!(csv.lines().count(), 2999);
    assert!(!csv.contains("\n000010,"));
    assert!(csv.contains("\n000012,images/000012.png,Bag,"));
}

/// Copies the export, breaks it with `tamper`, and returns verify's complaint.
fn tampered(t: &Signed, tamper: impl FnOnce(&Path)) -> String {
    tamper(&t.out);
    let msg = fails(&verify_args(t));
    assert!(msg.contains("verification failed"), "{msg}");
    msg
}

fn edit(path: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, f(text)).unwrap();
}

#[test]
fn a_label_edited_in_the_csv_is_named() {
    let t = signed();
    let msg = tampered(&t, |o| {
        edit(&o.join("cleaned.csv"), |c| {
            c.replace(
                "\n000012,images/000012.png,Bag,",
                "\n000012,images/000012.png,Coat,",
            )
        })
    });
    assert!(
        msg.contains("row 11 (id '000012'): label 'Coat' but the signed record says 'Bag'"),
        "{msg}"
    );
}

#[test]
fn a_sample_added_to_or_removed_from_the_csv_is_named() {
    let t = signed();
    let msg = tampered(&t, |o| {
        edit(&o.join("cleaned.csv"), |c| {
            c.replace("\n000020,", "\nnot-a-sample,").to_string()
                + "000010,images/000010.png,Bag,1\n"
        })
    });
    assert!(
        msg.contains("id '000010'): not in the signed record (sample added)"),
        "{msg}"
    );
    assert!(
        msg.contains("id 'not-a-sample'): not in the signed record"),
        "{msg}"
    );
    assert!(
        msg.contains("sample '000020' of the signed record is missing (sample removed)"),
        "{msg}"
    );
}

#[test]
fn a_changed_parquet_file_is_caught() {
    let t = signed();
    let msg = tampered(&t, |o| {
        let p = o.join("cleaned.parquet");
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.extend_from_slice(b"junk");
        std::fs::write(&p, bytes).unwrap();
    });
    assert!(
        msg.contains("cleaned.parquet: changed after signing"),
        "{msg}"
    );
}

#[test]
fn an_edited_record_fails_the_signature() {
    let t = signed();
    let msg = tampered(&t, |o| {
        edit(&o.join("record.json"), |c| {
            c.replacen("\"label\": \"Bag\"", "\"label\": \"Coat\"", 1)
        })
    });
    assert!(
        msg.contains("the record was changed after signing"),
        "{msg}"
    );
}

#[test]
fn a_modified_or_missing_sample_file_is_named() {
    let t = signed();
    let msg = tampered(&t, |_| {
        let img = t.data.join("images/000030.png");
        let mut bytes = std::fs::read(&img).unwrap();
        bytes[60] ^= 0xff;
        std::fs::write(&img, bytes).unwrap();
        std::fs::remove_file(t.data.join("images/000031.png")).unwrap();
    });
    assert!(
        msg.contains("sample '000030': file images/000030.png was modified after signing"),
        "{msg}"
    );
    assert!(
        msg.contains("sample '000031': file images/000031.png is missing"),
        "{msg}"
    );
}

/// Kept files that turned hostile after signing: a FIFO (refused at once,
/// never waited on), and a symlink out of the data folder to a copy of the
/// signed bytes — the hash would match, but a file outside the folder is
/// not the dataset's, so it is reported missing.
#[cfg(unix)]
#[test]
fn a_kept_file_turned_fifo_or_symlinked_out_is_named() {
    let t = signed();
    let outside = t.dir.join("elsewhere.png");
    let msg = tampered(&t, |_| {
        let pipe = t.data.join("images/000032.png");
        std::fs::remove_file(&pipe).unwrap();
        let c = std::ffi::CString::new(pipe.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let linked = t.data.join("images/000033.png");
        std::fs::rename(&linked, &outside).unwrap();
        std::os::unix::fs::symlink(&outside, &linked).unwrap();
    });
    assert!(
        msg.contains("sample '000032'") && msg.contains("FIFO"),
        "{msg}"
    );
    assert!(
        msg.contains("sample '000033': file images/000033.png is missing"),
        "{msg}"
    );
}

#[test]
fn a_signer_not_in_allowed_signers_or_no_signature_fails() {
    let t = signed();
    let other = t.dir.join("other_allowed");
    std::fs::write(
        &other,
        "bob@example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJsJaJW/x5LEKtzHONz4GVdNnrNLmU91Gau7iOS+sVEA\n",
    )
    .unwrap();
    let msg = fails(&["verify", s(&t.out), "--allowed-signers", s(&other)]);
    assert!(
        msg.contains("signer 'ana@example.org'") && msg.contains("is not allowed"),
        "{msg}"
    );
    // The right key but the wrong identity is refused too.
    let msg = fails(&[
        "verify",
        s(&t.out),
        "--allowed-signers",
        s(&t.allowed),
        "--identity",
        "mallory",
    ]);
    assert!(msg.contains("signer 'mallory'"), "{msg}");
    std::fs::remove_file(t.out.join("record.json.sig")).unwrap();
    let msg = fails(&verify_args(&t));
    assert!(msg.contains("the record is not signed"), "{msg}");
}

#[test]
fn moved_data_is_checked_with_data_root() {
    let t = signed();
    let moved = t.dir.join("moved");
    std::fs::rename(&t.data, &moved).unwrap();
    let msg = fails(&verify_args(&t));
    assert!(msg.contains("is missing"), "{msg}");
    let mut args = verify_args(&t);
    args.extend(["--data-root", s(&moved)]);
    assert!(ok(&args).starts_with("OK "));
}

#[test]
fn wrong_passphrase_or_bad_key_leaves_the_earlier_export_intact() {
    let t = signed();
    let before: Vec<Vec<u8>> = [
        "cleaned.csv",
        "cleaned.parquet",
        "record.json",
        "record.json.sig",
    ]
    .iter()
    .map(|f| std::fs::read(t.out.join(f)).unwrap())
    .collect();
    ok(&["review", s(&t.data), "--exclude", "000040"]);
    let locked = t.dir.join("locked");
    ok(&[
        "keygen",
        "--out",
        s(&locked),
        "--identity",
        "ana@example.org",
        "--passphrase-file",
        s(&write(&t.dir, "pw", "right one\n")),
    ]);
    let wrong = write(&t.dir, "wrong", "wrong one\n");
    let msg = fails(&[
        "export",
        s(&t.data),
        "--out",
        s(&t.out),
        "--sign",
        s(&locked),
        "--passphrase-file",
        s(&wrong),
    ]);
    assert!(msg.contains("wrong passphrase"), "{msg}");
    let garbage = write(&t.dir, "garbage_key", "not a key\n");
    let msg = fails(&[
        "export",
        s(&t.data),
        "--out",
        s(&t.out),
        "--sign",
        s(&garbage),
    ]);
    assert!(msg.contains("not an OpenSSH private key"), "{msg}");
    let msg = fails(&[
        "export",
        s(&t.data),
        "--out",
        s(&t.out),
        "--sign",
        s(&t.dir.join("no_such_key")),
    ]);
    assert!(msg.contains("no_such_key"), "{msg}");
    // A passphrase-protected key with no way to ask for the passphrase.
    let o = Command::new(env!("CARGO_BIN_EXE_poisonlens"))
        .args([
            "export",
            s(&t.data),
            "--out",
            s(&t.out),
            "--sign",
            s(&locked),
        ])
        .env_remove("POISONLENS_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    // The export folder is exactly as before every failed attempt.
    for (f, b) in [
        "cleaned.csv",
        "cleaned.parquet",
        "record.json",
        "record.json.sig",
    ]
    .iter()
    .zip(&before)
    {
        assert_eq!(&std::fs::read(t.out.join(f)).unwrap(), b, "{f} changed");
    }
    assert!(ok(&verify_args(&t)).starts_with("OK "));
}

#[test]
fn a_failed_write_leaves_the_earlier_export_intact() {
    let t = signed();
    let before = std::fs::read(t.out.join("record.json")).unwrap();
    ok(&["review", s(&t.data), "--exclude", "000041"]);
    // Something in the way of one temporary file (as a full disk or a
    // read-only folder would be): the whole export must fail cleanly.
    std::fs::create_dir(t.out.join(".record.json.tmp")).unwrap();
    let msg = fails(&[
        "export",
        s(&t.data),
        "--out",
        s(&t.out),
        "--sign",
        s(&t.key),
        "--identity",
        "ana@example.org",
    ]);
    assert!(msg.contains(".record.json.tmp"), "{msg}");
    assert_eq!(std::fs::read(t.out.join("record.json")).unwrap(), before);
    assert!(
        !t.out.join(".cleaned.csv.tmp").exists(),
        "temporary files are removed"
    );
    assert!(ok(&verify_args(&t)).starts_with("OK "));
    // An export folder that is a file is refused with its name.
    let file = write(&t.dir, "a_file", "x");
    let msg = fails(&["export", s(&t.data), "--out", s(&file.join("sub"))]);
    assert!(msg.contains("a_file"), "{msg}");
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let t = signed();
    let mode = std::fs::metadata(&t.key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let msg = fails(&["keygen", "--out", s(&t.key), "--no-passphrase"]);
    assert!(msg.contains("already exists"), "{msg}");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn ssh_keygen(args: &[&str], stdin: Option<&Path>) -> std::process::Output {
    let mut c = Command::new("ssh-keygen");
    c.args(args);
    if let Some(p) = stdin {
        c.stdin(std::fs::File::open(p).unwrap());
    }
    c.output().expect("ssh-keygen")
}

/// `ssh-keygen -Y verify` of the export, as a verifier without poisonlens runs it.
fn ssh_verify(t: &Signed) -> std::process::Output {
    let sig = t.out.join("record.json.sig");
    ssh_keygen(
        &[
            "-Y",
            "verify",
            "-f",
            s(&t.allowed),
            "-I",
            "ana@example.org",
            "-n",
            NAMESPACE,
            "-s",
            s(&sig),
        ],
        Some(&t.out.join("record.json")),
    )
}

#[test]
fn ssh_keygen_verifies_what_poisonlens_signed() {
    assert!(
        common::have_ssh_keygen(),
        "ssh-keygen is needed (.ci/run installs openssh-client)"
    );
    let t = signed();
    let o = ssh_verify(&t);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("Good"),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // ...and rejects a changed record.
    edit(&t.out.join("record.json"), |c| c.replacen("Bag", "Coat", 1));
    let o = ssh_verify(&t);
    assert!(!o.status.success());
}

#[test]
fn poisonlens_uses_ssh_keygen_keys_and_verifies_ssh_keygen_signatures() {
    assert!(
        common::have_ssh_keygen(),
        "ssh-keygen is needed (.ci/run installs openssh-client)"
    );
    let t = signed();
    // A passphrase-protected key made by ssh-keygen signs an export.
    let bob = t.dir.join("bob_ed25519");
    let o = ssh_keygen(
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "bob's passphrase",
            "-C",
            "bob",
            "-f",
            s(&bob),
        ],
        None,
    );
    assert!(o.status.success());
    let pass = write(&t.dir, "bob_pass", "bob's passphrase\n");
    let out2 = t.dir.join("export_bob");
    ok(&[
        "export",
        s(&t.data),
        "--out",
        s(&out2),
        "--sign",
        s(&bob),
        "--identity",
        "bob",
        "--passphrase-file",
        s(&pass),
    ]);
    let pubkey = std::fs::read_to_string(format!("{}.pub", bob.display())).unwrap();
    let allowed = write(&t.dir, "allowed_bob", &format!("bob {}\n", pubkey.trim()));
    assert!(ok(&["verify", s(&out2), "--allowed-signers", s(&allowed)]).starts_with("OK "));

    // A signature made by ssh-keygen itself over our record is accepted.
    std::fs::remove_file(t.out.join("record.json.sig")).unwrap();
    let o = ssh_keygen(
        &[
            "-Y",
            "sign",
            "-f",
            s(&t.key),
            "-n",
            NAMESPACE,
            s(&t.out.join("record.json")),
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(ok(&verify_args(&t)).starts_with("OK "));
    // One made in another namespace is not.
    std::fs::remove_file(t.out.join("record.json.sig")).unwrap();
    let o = ssh_keygen(
        &[
            "-Y",
            "sign",
            "-f",
            s(&t.key),
            "-n",
            "git",
            s(&t.out.join("record.json")),
        ],
        None,
    );
    assert!(o.status.success());
    let msg = fails(&verify_args(&t));
    assert!(msg.contains("namespace 'git'"), "{msg}");

    // ssh-keygen reads a passphrase-protected key that poisonlens made.
    let locked = t.dir.join("locked");
    ok(&[
        "keygen",
        "--out",
        s(&locked),
        "--identity",
        "ana",
        "--passphrase-file",
        s(&write(&t.dir, "p", "pw pw\n")),
    ]);
    let o = ssh_keygen(&["-y", "-P", "pw pw", "-f", s(&locked)], None);
    let derived = String::from_utf8_lossy(&o.stdout);
    let written = std::fs::read_to_string(format!("{}.pub", locked.display())).unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        derived.split_whitespace().nth(1),
        written.split_whitespace().nth(1),
        "same public key"
    );
}
