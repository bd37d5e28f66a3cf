//! OpenSSH Ed25519 keys and SSHSIG signatures: the cleaned record is signed
//! in the very format `ssh-keygen -Y sign` writes, so anyone can check it
//! with `ssh-keygen -Y verify` and no poisonlens installed.

use std::io::Write;
use std::path::{Path, PathBuf};

use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use crate::dataset::files;
use crate::error::{Error, Result};

/// The SSHSIG namespace poisonlens signs in (`-n` for `ssh-keygen -Y`), so a
/// signature made for a cleaned manifest can never pass as one for something
/// else (a git commit, a file) and vice versa.
pub const NAMESPACE: &str = "poisonlens-manifest@poisonlens";

/// Reads an OpenSSH Ed25519 private key, asking `passphrase` only if the key
/// is protected. Errors name the file and say what to do.
pub fn load_private_key(
    path: &Path,
    passphrase: &mut dyn FnMut() -> Result<Option<String>>,
) -> Result<PrivateKey> {
    let text = files::read_text_capped(path, 1 << 20, "a private key")?;
    let key = PrivateKey::from_openssh(text.trim()).map_err(|e| {
        Error::file(
            path,
            format!(
                "not an OpenSSH private key ({e}); expected a file beginning '-----BEGIN OPENSSH PRIVATE KEY-----', e.g. made by `poisonlens keygen` or `ssh-keygen -t ed25519`"
            ),
        )
    })?;
    if key.algorithm() != Algorithm::Ed25519 {
        return Err(Error::file(
            path,
            format!(
                "is an {} key; poisonlens signs with Ed25519 keys (make one with `poisonlens keygen` or `ssh-keygen -t ed25519`)",
                key.algorithm()
            ),
        ));
    }
    if !key.is_encrypted() {
        return Ok(key);
    }
    let Some(pass) = passphrase()? else {
        return Err(Error::file(
            path,
            "the key is passphrase-protected; give the passphrase (--passphrase-file FILE, POISONLENS_PASSPHRASE, or run in a terminal to be asked)",
        ));
    };
    key.decrypt(pass.as_bytes())
        .map_err(|_| Error::file(path, "wrong passphrase for this key"))
}

/// Who a signature is made as: the identity asked for, else the key's
/// comment (what `ssh-keygen -C` or `poisonlens keygen --identity` set, so
/// it is the principal the allowed-signers line names), else the reviewer.
pub fn signer_identity(asked: Option<&str>, key: &PrivateKey, reviewer: &str) -> String {
    asked
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            Some(key.comment().trim()).filter(|c| !c.is_empty() && !c.contains(char::is_whitespace))
        })
        .unwrap_or(reviewer)
        .to_string()
}

/// Signs `msg`; returns the armoured signature (`-----BEGIN SSH SIGNATURE-----`).
pub fn sign(key: &PrivateKey, msg: &[u8]) -> Result<String> {
    key.sign(NAMESPACE, HashAlg::Sha512, msg)
        .and_then(|s| s.to_pem(LineEnding::LF))
        .map_err(|e| Error::Other(format!("signing failed: {e}")))
}

/// Checks an armoured SSHSIG over `msg` in our namespace; returns the key
/// that made it. Says what is wrong in words otherwise.
pub fn verify(msg: &[u8], armoured: &str) -> std::result::Result<PublicKey, String> {
    let sig =
        SshSig::from_pem(armoured.trim()).map_err(|e| format!("not an SSH signature ({e})"))?;
    if sig.namespace() != NAMESPACE {
        return Err(format!(
            "signature is for namespace '{}', not '{NAMESPACE}'",
            sig.namespace()
        ));
    }
    let key = PublicKey::from(sig.public_key().clone());
    key.verify(NAMESPACE, msg, &sig).map_err(|_| {
        "the signature does not match record.json: the record was changed after signing".to_string()
    })?;
    Ok(key)
}

/// `SHA256:…` fingerprint, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// What [`keygen`] wrote.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The private key file (mode 0600).
    pub private: PathBuf,
    /// The public key file (`.pub`).
    pub public: PathBuf,
    /// A line for an `allowed_signers` file naming this reviewer.
    pub allowed_signers_line: String,
    /// The key's fingerprint.
    pub fingerprint: String,
}

/// Makes an Ed25519 key pair for a reviewer who has none: `out` (readable
/// only by its owner, from the moment it exists) and `out.pub`. Refuses to
/// overwrite either, and refuses an empty passphrase (an empty passphrase
/// file is a mistake, not a request for an unprotected key: pass None).
pub fn keygen(out: &Path, identity: &str, passphrase: Option<&str>) -> Result<NewKey> {
    let public_path = PathBuf::from(format!("{}.pub", out.display()));
    for p in [out, public_path.as_path()] {
        if p.exists() {
            return Err(Error::file(p, "already exists; not overwriting a key"));
        }
    }
    let mut rng = ssh_key::rand_core::OsRng;
    let mut key = PrivateKey::random(&mut rng, Algorithm::Ed25519)
        .map_err(|e| Error::Other(format!("key generation failed: {e}")))?;
    key.set_comment(identity);
    let public = key.public_key().clone();
    let stored = match passphrase {
        Some("") => {
            return Err(Error::Other(
                "the passphrase given is empty; no key written (to store the key without one, say so with --no-passphrase)".into(),
            ));
        }
        Some(p) => key
            .encrypt(&mut rng, p.as_bytes())
            .map_err(|e| Error::Other(format!("encrypting the key failed: {e}")))?,
        None => key,
    };
    let pem = stored
        .to_openssh(LineEnding::LF)
        .map_err(|e| Error::Other(format!("encoding the key failed: {e}")))?;
    write_private(out, pem.as_bytes())?;
    let public_line = public
        .to_openssh()
        .map_err(|e| Error::Other(format!("encoding the public key failed: {e}")))?;
    std::fs::write(&public_path, format!("{public_line}\n"))
        .map_err(|e| Error::io(&public_path, e))?;
    let bare = PublicKey::new(public.key_data().clone(), "");
    Ok(NewKey {
        private: out.to_path_buf(),
        public: public_path,
        allowed_signers_line: format!(
            "{identity} namespaces=\"{NAMESPACE}\" {}",
            bare.to_openssh().unwrap_or_default().trim()
        ),
        fingerprint: fingerprint(&public),
    })
}

/// Creates `path` with mode 0600 (never briefly readable by others) and
/// writes `bytes`; removes the file if writing fails.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| Error::io(path, e))?;
    let r = f.write_all(bytes).and_then(|_| f.sync_all());
    if let Err(e) = r {
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(Error::io(path, e));
    }
    Ok(())
}
