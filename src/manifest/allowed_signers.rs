//! The `allowed_signers` file of `ssh-keygen -Y verify` (see ssh-keygen(1),
//! "ALLOWED SIGNERS"): who may sign, with which key, in which namespaces,
//! and when. poisonlens reads the same file so one list of reviewers serves
//! both tools — and it must never accept a signer `ssh-keygen` would refuse.
//! So the rules are OpenSSH's own (`sshsig.c`, `match.c`, `misc.c`):
//!
//! - a line is `PRINCIPALS [OPTIONS] KEYTYPE KEY [COMMENT]`; a line that
//!   cannot be read (unknown or repeated option, unquoted value, bad time,
//!   `valid-before` not after `valid-after`, unreadable key) is skipped, not
//!   fatal, and the rest of the file still counts;
//! - principals and `namespaces=` are comma-separated pattern lists with
//!   `*`, `?` and negation: a list matches when some pattern matches and no
//!   `!pattern` does (case-sensitive);
//! - `valid-after="YYYYMMDD[HHMM[SS]][Z|UTC]"` and `valid-before=…` bound
//!   when the key may be trusted (without `Z`/`UTC`: local time, as
//!   `mktime(3)` reads it), checked against the time of verification;
//! - `cert-authority` lines trust certificates signed by that key; a
//!   poisonlens signature is always made by a plain key, so such a line
//!   never vouches for one (neither does ssh-keygen: a CA line matches only
//!   certificate signatures).

use std::path::Path;

use ssh_key::PublicKey;

use crate::dataset::files;
use crate::error::Result;

/// Largest allowed-signers file read.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// One readable line of the file.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    /// The principals pattern list, as written (quotes removed).
    pub principals: String,
    /// The `namespaces=` pattern list (None = any namespace).
    pub namespaces: Option<String>,
    /// `valid-after`, seconds since the epoch (None = no lower bound).
    pub valid_after: Option<u64>,
    /// `valid-before`, seconds since the epoch (None = no upper bound).
    pub valid_before: Option<u64>,
    /// A `cert-authority` line (trusts certificates, never a plain key).
    pub cert_authority: bool,
    /// The key.
    pub key: PublicKey,
    /// 1-based line number, for messages.
    pub line: usize,
}

/// The readable lines of a file and why the others were skipped.
#[derive(Debug, Clone, Default)]
pub struct SignerList {
    /// Lines that can vouch for a signer.
    pub signers: Vec<AllowedSigner>,
    /// One message per skipped line ("line 3: unknown option …").
    pub skipped: Vec<String>,
}

/// Reads the file (a regular file of at most 16 MB).
pub fn read(path: &Path) -> Result<SignerList> {
    Ok(parse(&files::read_text_capped(
        path,
        MAX_FILE_BYTES,
        "an allowed-signers file",
    )?))
}

/// Parses the file's text; never fails — unreadable lines are skipped and
/// listed, as `ssh-keygen` skips them.
pub fn parse(text: &str) -> SignerList {
    let mut list = SignerList::default();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_start_matches([' ', '\t']);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line, n + 1) {
            Ok(s) => list.signers.push(s),
            Err(why) => list.skipped.push(format!("line {}: {why}", n + 1)),
        }
    }
    list
}

impl SignerList {
    /// Whether `identity` may have made a signature with `key` in
    /// `namespace` at time `now` (seconds since the epoch): Ok with the
    /// line that allows it, or Err saying why not.
    pub fn check(
        &self,
        identity: &str,
        namespace: &str,
        key: &PublicKey,
        now: u64,
    ) -> std::result::Result<usize, String> {
        let mut reasons = Vec::new();
        for s in &self.signers {
            if match_pattern_list(identity, &s.principals) != Match::Yes
                || s.cert_authority
                || s.key.key_data() != key.key_data()
            {
                continue;
            }
            match s.refusal(namespace, now) {
                None => return Ok(s.line),
                Some(why) => reasons.push(format!("line {}: {why}", s.line)),
            }
        }
        if reasons.is_empty() {
            Err(format!("no line lists '{identity}' with this key"))
        } else {
            Err(reasons.join("; "))
        }
    }
}

impl AllowedSigner {
    /// Why this line's options preclude the signature, if they do.
    fn refusal(&self, namespace: &str, now: u64) -> Option<String> {
        if let Some(ns) = &self.namespaces
            && match_pattern_list(namespace, ns) != Match::Yes
        {
            return Some(format!("key is not permitted in namespace '{namespace}'"));
        }
        if self.valid_after.is_some_and(|t| now < t) {
            return Some("key is not yet valid (valid-after is in the future)".into());
        }
        if self.valid_before.is_some_and(|t| now > t) {
            return Some("key has expired (valid-before is in the past)".into());
        }
        None
    }
}

/// Reads one non-blank, non-comment line.
fn parse_line(line: &str, number: usize) -> std::result::Result<AllowedSigner, String> {
    let (principals, rest) = next_field(line).ok_or("no key after the principals")?;
    let principals = principals.replace('"', "");
    let (first, after_first) = next_field(rest).ok_or("no key after the principals")?;
    let (options, key_text) = if is_key_type(&first) {
        (None, rest)
    } else {
        (Some(first), after_first)
    };
    let mut key_tokens = key_text.split_whitespace();
    let (Some(kind), Some(body)) = (key_tokens.next(), key_tokens.next()) else {
        return Err("missing key".into());
    };
    let key = PublicKey::from_openssh(&format!("{kind} {body}"))
        .map_err(|_| format!("'{kind}' key cannot be read"))?;
    let mut s = AllowedSigner {
        principals,
        namespaces: None,
        valid_after: None,
        valid_before: None,
        cert_authority: false,
        key,
        line: number,
    };
    if let Some(opts) = options {
        apply_options(&mut s, &opts)?;
    }
    Ok(s)
}

/// Parses the options field into `s`, refusing what sshsig.c refuses.
fn apply_options(s: &mut AllowedSigner, opts: &str) -> std::result::Result<(), String> {
    for opt in split_options(opts)? {
        let lower = opt.to_ascii_lowercase();
        if lower == "cert-authority" {
            s.cert_authority = true;
            continue;
        }
        let (name, value) = opt
            .split_once('=')
            .ok_or(format!("unknown option '{opt}'"))?;
        let value = dequote(value).ok_or(format!("option '{name}' needs a quoted value"))?;
        let slot_taken = match name.to_ascii_lowercase().as_str() {
            "namespaces" => s.namespaces.replace(value).is_some(),
            "valid-after" => s.valid_after.replace(parse_time(&value)?).is_some(),
            "valid-before" => s.valid_before.replace(parse_time(&value)?).is_some(),
            _ => return Err(format!("unknown option '{name}'")),
        };
        if slot_taken {
            return Err(format!("option '{name}' given twice"));
        }
    }
    if let (Some(a), Some(b)) = (s.valid_after, s.valid_before)
        && b <= a
    {
        return Err("valid-before is not after valid-after".into());
    }
    Ok(())
}

/// The first whitespace-delimited field (double quotes protect spaces)
/// and the rest of the line after it.
fn next_field(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start_matches([' ', '\t']);
    let mut quoted = false;
    for (i, ch) in s.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return Some((s[..i].to_string(), &s[i..])),
            _ => {}
        }
    }
    (!s.is_empty()).then(|| (s.to_string(), ""))
}

fn is_key_type(t: &str) -> bool {
    t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-")
}

/// Splits an options field on commas outside double quotes; an empty
/// option (a trailing comma) is an error, as in sshsig.c.
fn split_options(s: &str) -> std::result::Result<Vec<String>, String> {
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
    if quoted {
        return Err("unterminated quote in options".into());
    }
    out.push(cur);
    if out.iter().any(String::is_empty) {
        return Err("empty option".into());
    }
    Ok(out)
}

/// A value in double quotes, without them; None if not quoted.
fn dequote(v: &str) -> Option<String> {
    let inner = v.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('"')).then(|| inner.to_string())
}

/// OpenSSH's `parse_absolute_time`: YYYYMMDD, YYYYMMDDHHMM or
/// YYYYMMDDHHMMSS, UTC with a `Z`/`UTC` suffix, else local time.
fn parse_time(v: &str) -> std::result::Result<u64, String> {
    let bad = || format!("invalid time '{v}'");
    let upper = v.to_ascii_uppercase();
    let (digits, utc) = if let Some(d) = upper.strip_suffix("UTC").filter(|d| !d.is_empty()) {
        (d, true)
    } else if let Some(d) = upper.strip_suffix('Z').filter(|d| !d.is_empty()) {
        (d, true)
    } else {
        (upper.as_str(), false)
    };
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |a: usize, b: usize| {
        digits
            .get(a..b)
            .map_or(0, |s| s.parse::<i64>().unwrap_or(-1))
    };
    let (y, mo, d) = (num(0, 4), num(4, 6), num(6, 8));
    let (h, mi, s) = (num(8, 10), num(10, 12), num(12, 14));
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    let t = if utc {
        Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
    } else {
        local_time(y, mo, d, h, mi, s)
    };
    match t {
        Some(t) if t > 0 => Ok(t as u64),
        _ => Err(bad()),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm); out-of-range days roll over as `timegm` rolls them.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Local time as `mktime` reads a zeroed `struct tm` (standard time).
#[cfg(unix)]
fn local_time(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    // SAFETY: `tm` is a plain C struct, fully initialised (zeroed, then the
    // fields set); mktime only reads and normalises it.
    let t = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tm.tm_year = (y - 1900) as libc::c_int;
        tm.tm_mon = (mo - 1) as libc::c_int;
        tm.tm_mday = d as libc::c_int;
        tm.tm_hour = h as libc::c_int;
        tm.tm_min = mi as libc::c_int;
        tm.tm_sec = s as libc::c_int;
        libc::mktime(&mut tm)
    };
    (t >= 0).then_some(t as i64)
}

#[cfg(not(unix))]
fn local_time(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Result of matching a string against a pattern list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    /// Some positive pattern matched and no negated one.
    Yes,
    /// No pattern matched.
    No,
    /// A negated pattern matched: refused whatever else matches.
    Negated,
}

/// OpenSSH's `match_pattern_list` (case-sensitive).
fn match_pattern_list(s: &str, list: &str) -> Match {
    let mut positive = false;
    for sub in list.split(',') {
        let (negated, pat) = match sub.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, sub),
        };
        if pat.len() >= 1023 {
            return Match::No;
        }
        if glob(pat, s) {
            if negated {
                return Match::Negated;
            }
            positive = true;
        }
    }
    if positive { Match::Yes } else { Match::No }
}

/// OpenSSH-style pattern match: `*` any run, `?` one character.
fn glob(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    // Iterative matching with one backtrack point: linear-ish, never
    // exponential on hostile patterns like "*a*a*a*a*b".
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_negation_and_options() {
        assert!(glob("*@example.com", "ana@example.com"));
        assert!(glob("an?", "ana") && !glob("an?", "anna"));
        assert!(!glob("*a*a*a*a*a*a*a*a*a*b", &"a".repeat(200)));
        assert_eq!(match_pattern_list("ana@x", "!ana@x,*"), Match::Negated);
        assert_eq!(match_pattern_list("bo@x", "!ana@x,*"), Match::Yes);
        assert_eq!(match_pattern_list("Ana@x", "ana@x"), Match::No);
        assert_eq!(
            split_options("cert-authority,namespaces=\"a,b\"").unwrap(),
            vec!["cert-authority", "namespaces=\"a,b\""]
        );
        assert!(split_options("namespaces=\"a\",").is_err());
        assert_eq!(
            next_field("\"a b\",c rest").unwrap(),
            ("\"a b\",c".to_string(), " rest")
        );
    }

    #[test]
    fn times_as_openssh_reads_them() {
        assert_eq!(parse_time("19700102Z").unwrap(), 86_400);
        assert_eq!(parse_time("20240229123456UTC").unwrap(), 1_709_210_096);
        assert_eq!(parse_time("202402291234z").unwrap(), 1_709_210_040);
        for bad in [
            "2024",
            "2024022",
            "20241301Z",
            "2024-01-01",
            "Z",
            "19700101Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
