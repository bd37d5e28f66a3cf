//! The `allowed_signers` file of `ssh-keygen -Y verify` (see ssh-keygen(1),
//! "ALLOWED SIGNERS"): who may sign, with which key, in which namespaces.
//! poisonlens reads the same file so one list of reviewers serves both tools.

use std::path::Path;

use ssh_key::PublicKey;

use crate::error::{Error, Result};

/// One usable line of the file.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    /// Principal patterns (`*` and `?` wildcards), comma-separated in the file.
    pub principals: Vec<String>,
    /// Namespaces the key may sign in (None = any).
    pub namespaces: Option<Vec<String>>,
    /// The key.
    pub key: PublicKey,
    /// 1-based line number, for messages.
    pub line: usize,
}

/// Reads the file; lines whose key this build cannot parse (RSA, ECDSA,
/// certificates) are skipped, as they could never match an Ed25519 signature.
pub fn read(path: &Path) -> Result<Vec<AllowedSigner>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let tokens = tokenize(line);
        if tokens.len() < 3 {
            return Err(Error::file(
                path,
                format!(
                    "line {}: expected 'PRINCIPALS [OPTIONS] KEYTYPE KEY', got '{line}'",
                    n + 1
                ),
            ));
        }
        let principals: Vec<String> = tokens[0]
            .trim_matches('"')
            .split(',')
            .map(str::to_string)
            .collect();
        let (options, rest) = if is_key_type(&tokens[1]) {
            (None, &tokens[1..])
        } else {
            (Some(tokens[1].as_str()), &tokens[2..])
        };
        if rest.len() < 2 {
            return Err(Error::file(path, format!("line {}: no key", n + 1)));
        }
        let mut namespaces = None;
        let mut cert_authority = false;
        for opt in options.map(split_options).unwrap_or_default() {
            let lower = opt.to_ascii_lowercase();
            if lower == "cert-authority" {
                cert_authority = true;
            } else if let Some(v) = lower.strip_prefix("namespaces=") {
                namespaces = Some(
                    v.trim_matches('"')
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .collect(),
                );
            }
        }
        if cert_authority {
            continue;
        }
        let Ok(key) = PublicKey::from_openssh(&format!("{} {}", rest[0], rest[1])) else {
            continue;
        };
        out.push(AllowedSigner {
            principals,
            namespaces,
            key,
            line: n + 1,
        });
    }
    Ok(out)
}

/// Whether `identity` may sign in `namespace` with `key`.
pub fn permits(list: &[AllowedSigner], identity: &str, namespace: &str, key: &PublicKey) -> bool {
    list.iter().any(|s| {
        s.key.key_data() == key.key_data()
            && s.principals.iter().any(|p| glob(p, identity))
            && s.namespaces
                .as_ref()
                .is_none_or(|ns| ns.iter().any(|n| glob(n, namespace)))
    })
}

fn is_key_type(t: &str) -> bool {
    t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-")
}

/// Splits on whitespace outside double quotes.
fn tokenize(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in line.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                cur.push(ch);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Splits an options field on commas outside double quotes.
fn split_options(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in s.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                cur.push(ch);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// OpenSSH-style pattern match: `*` any run, `?` one character.
fn glob(pattern: &str, s: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|k| go(rest, &s[k..])),
            Some(('?', rest)) => !s.is_empty() && go(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    go(&p, &s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_options() {
        assert!(glob("*@example.com", "ana@example.com"));
        assert!(glob("an?", "ana") && !glob("an?", "anna"));
        assert_eq!(
            split_options("cert-authority,namespaces=\"a,b\""),
            vec!["cert-authority", "namespaces=\"a,b\""]
        );
        assert_eq!(
            tokenize("ana namespaces=\"x y\" ssh-ed25519 AAAA c"),
            vec!["ana", "namespaces=\"x y\"", "ssh-ed25519", "AAAA", "c"]
        );
    }
}
