//! `poisonlens export` and `poisonlens verify`: the cleaned, signed manifest
//! and its check.

use std::path::PathBuf;
use std::process::ExitCode;

use poisonlens::Error;
use poisonlens::manifest::export::{self, Signer};
use poisonlens::manifest::record::{self, ModelRef, SIGNATURE_FILE};
use poisonlens::manifest::sign::{self, NAMESPACE};
use poisonlens::manifest::verify::{self, VerifyOptions};

use super::{review::open_session, secret};

/// What `export` was asked to do.
pub struct ExportArgs {
    pub dataset: PathBuf,
    pub out: PathBuf,
    pub sign: Option<PathBuf>,
    /// `--identity`, if given (else the key's comment, else the reviewer).
    pub identity: Option<String>,
    pub reviewer: String,
    pub passphrase_file: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// The model the review's scan used, named (with its hash) in the record.
    pub model: super::model::ModelArgs,
}

/// Writes the export (key first, so a wrong passphrase writes nothing).
pub fn run(a: ExportArgs) -> Result<(), Error> {
    let key = match &a.sign {
        Some(path) => Some(sign::load_private_key(path, &mut || {
            secret::passphrase(
                a.passphrase_file.as_deref(),
                &format!("Passphrase for {}: ", path.display()),
            )
        })?),
        None => None,
    };
    let (ds, session) = open_session(&a.dataset, a.state_dir.as_deref())?;
    let model = a.model.load(&ds)?;
    let identity = key
        .as_ref()
        .map(|k| sign::signer_identity(a.identity.as_deref(), k, &a.reviewer))
        .unwrap_or_default();
    let signer = key.as_ref().map(|k| Signer {
        key: k,
        identity: &identity,
    });
    let done = export::export(
        &ds,
        session.review(),
        session.fingerprint(),
        &a.out,
        signer,
        model.as_ref().map(ModelRef::of),
        &|_| {},
    )?;
    print!(
        "{}",
        record::summary_text(&record::Summary {
            counts: done.record.counts.clone(),
            reviewers: done.record.reviewers.clone(),
        })
    );
    for f in &done.files {
        println!("wrote {}", f.display());
    }
    if let Some(k) = &key {
        println!(
            "signed as '{}' with {}; check with\n  poisonlens verify {} --allowed-signers FILE\n  ssh-keygen -Y verify -f FILE -I {} -n {NAMESPACE} -s {} < {}",
            identity,
            sign::fingerprint(k.public_key()),
            a.out.display(),
            identity,
            a.out.join(SIGNATURE_FILE).display(),
            a.out.join(record::RECORD_FILE).display()
        );
    } else {
        println!("not signed (give --sign KEY to sign)");
    }
    Ok(())
}

/// Checks an export; exit 1 with every problem listed when anything is off.
pub fn verify(dir: PathBuf, opts: VerifyOptions) -> ExitCode {
    let v = verify::verify(&dir, &opts);
    for n in &v.notes {
        eprintln!("note: {n}");
    }
    if v.ok() {
        println!("OK {}", v.summary);
        ExitCode::SUCCESS
    } else {
        for p in &v.problems {
            eprintln!("FAIL {p}");
        }
        eprintln!(
            "verification failed: {} problem(s) in {}",
            v.total,
            dir.display()
        );
        ExitCode::FAILURE
    }
}
