//! Passphrases for keys: from a file, the environment, or asked on the
//! terminal (never echoed, never on the command line where `ps` shows it).

use std::io::IsTerminal;
use std::path::Path;

use poisonlens::Error;
use poisonlens::dataset::files;

/// Environment variable holding a key passphrase, for unattended signing.
pub const PASSPHRASE_ENV: &str = "POISONLENS_PASSPHRASE";

/// The passphrase from `file` (first line), else [`PASSPHRASE_ENV`], else
/// asked on the terminal with `prompt`; None when there is no way to ask.
pub fn passphrase(file: Option<&Path>, prompt: &str) -> Result<Option<String>, Error> {
    if let Some(f) = file {
        let text = files::read_text_capped(f, 1 << 16, "a passphrase file")?;
        return Ok(Some(text.lines().next().unwrap_or("").to_string()));
    }
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return Ok(Some(p));
    }
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    Ok(rpassword::prompt_password(prompt).ok())
}
