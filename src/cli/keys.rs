//! `poisonlens keygen`: a signing key for a reviewer who has none.

use std::io::IsTerminal;
use std::path::PathBuf;

use poisonlens::Error;
use poisonlens::manifest::sign::{self, NAMESPACE};

use super::secret;

/// Makes the key pair and prints what to do with it.
pub fn keygen(
    out: Option<PathBuf>,
    identity: String,
    passphrase_file: Option<PathBuf>,
    no_passphrase: bool,
) -> Result<(), Error> {
    let out = match out {
        Some(p) => p,
        None => {
            let home = std::env::var_os("HOME")
                .ok_or_else(|| Error::Other("HOME is not set; give --out FILE".into()))?;
            let ssh = PathBuf::from(home).join(".ssh");
            create_private_dir(&ssh)?;
            ssh.join("poisonlens_ed25519")
        }
    };
    let pass = if no_passphrase {
        None
    } else if passphrase_file.is_some() || std::env::var(secret::PASSPHRASE_ENV).is_ok() {
        secret::passphrase(passphrase_file.as_deref(), "")?
    } else if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password("Passphrase for the new key (empty for none): ")
            .map_err(|e| Error::Other(format!("cannot read the passphrase: {e}")))?;
        let b = rpassword::prompt_password("Same passphrase again: ")
            .map_err(|e| Error::Other(format!("cannot read the passphrase: {e}")))?;
        if a != b {
            return Err(Error::Other(
                "the passphrases differ; no key written".into(),
            ));
        }
        // Typed at the prompt, an empty answer is a deliberate "none".
        Some(a).filter(|a| !a.is_empty())
    } else {
        return Err(Error::Other(
            "not in a terminal, so no passphrase can be asked: give --passphrase-file FILE or --no-passphrase".into(),
        ));
    };
    let k = sign::keygen(&out, &identity, pass.as_deref())?;
    println!(
        "private key: {} (readable only by you)",
        k.private.display()
    );
    println!("public key:  {}", k.public.display());
    println!("fingerprint: {}", k.fingerprint);
    println!();
    println!("Add this line to the allowed_signers file verifiers use:");
    println!("{}", k.allowed_signers_line);
    println!();
    println!(
        "Sign an export with `poisonlens export DATASET --out DIR --sign {} --identity {identity}`; anyone can check it with\n  ssh-keygen -Y verify -f allowed_signers -I {identity} -n {NAMESPACE} -s DIR/record.json.sig < DIR/record.json",
        k.private.display()
    );
    Ok(())
}

fn create_private_dir(dir: &std::path::Path) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| Error::io(dir, e))
}
