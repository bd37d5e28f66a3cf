//! `poisonlens review`: decisions from scripts, into the same durable store
//! the workbench uses, and `--list` to read them and their history back.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use poisonlens::Error;
use poisonlens::dataset::{Dataset, OpenOptions};
use poisonlens::manifest::record::rfc3339;
use poisonlens::review::store::{EventKind, StoredEntry};
use poisonlens::review::{Decision, ReviewSession, describe};

/// What `review` was asked to do.
pub struct ReviewArgs {
    pub dataset: PathBuf,
    pub exclude: Vec<String>,
    pub keep: Vec<String>,
    pub relabel: Vec<String>,
    pub reason: String,
    pub reviewer: String,
    pub undo: bool,
    pub redo: bool,
    pub list: bool,
    pub stdin: bool,
    pub state_dir: Option<PathBuf>,
}

/// Opens the dataset's review and reports where it is kept and any warning.
pub fn open_session(
    dataset: &Path,
    state_dir: Option<&Path>,
) -> Result<(Dataset, ReviewSession), Error> {
    let ds = Dataset::open(dataset, &OpenOptions::default())?;
    let session = ReviewSession::open(&ds, state_dir)?;
    if let Some(n) = &session.location.note {
        eprintln!("note: {n}");
    }
    for w in &session.warnings {
        eprintln!("warning: {w}");
    }
    Ok((ds, session))
}

/// Runs the command.
pub fn run(a: ReviewArgs) -> Result<(), Error> {
    let (ds, mut session) = open_session(&a.dataset, a.state_dir.as_deref())?;
    let mut decisions = Vec::new();
    for id in &a.keep {
        decisions.push((sample(&ds, id)?, Decision::Keep));
    }
    for id in &a.exclude {
        decisions.push((sample(&ds, id)?, Decision::Exclude));
    }
    for spec in &a.relabel {
        decisions.push(relabel(&ds, spec)?);
    }
    if !decisions.is_empty() {
        let (n, seq) = session
            .decide(&decisions, &a.reason, &a.reviewer)
            .map(|x| (x.changes.len(), x.seq))?;
        println!(
            "recorded {n} decision(s) as step #{seq} in {}",
            session.store_path().display()
        );
    }
    if a.undo {
        match session.undo(&a.reviewer)? {
            Some(x) => println!("undid step #{} ({} sample(s))", x.seq, x.changes.len()),
            None => println!("nothing to undo"),
        }
    }
    if a.redo {
        match session.redo(&a.reviewer)? {
            Some(x) => println!("redid step #{} ({} sample(s))", x.seq, x.changes.len()),
            None => println!("nothing to redo"),
        }
    }
    if a.stdin {
        run_stdin(&ds, &mut session, &a.reason, &a.reviewer)?;
    }
    if a.list {
        list(&ds, &session)?;
    }
    if decisions.is_empty() && !a.undo && !a.redo && !a.stdin && !a.list {
        return Err(Error::Other(
            "nothing to do: give --exclude/--keep/--relabel, --undo/--redo, --stdin or --list"
                .into(),
        ));
    }
    Ok(())
}

fn sample(ds: &Dataset, id: &str) -> Result<usize, Error> {
    ds.ids.iter().position(|x| x == id).ok_or_else(|| {
        Error::Other(format!(
            "no sample with id '{id}' in {}",
            ds.source.display()
        ))
    })
}

fn relabel(ds: &Dataset, spec: &str) -> Result<(usize, Decision), Error> {
    let (id, label) = spec
        .rsplit_once('=')
        .ok_or_else(|| Error::Other(format!("--relabel wants ID=LABEL, got '{spec}'")))?;
    let class = ds.classes.iter().position(|c| c == label).ok_or_else(|| {
        Error::Other(format!(
            "no class '{label}' (for sample '{id}'); classes are: {}",
            ds.classes.join(", ")
        ))
    })?;
    Ok((sample(ds, id)?, Decision::Relabel(class as u32)))
}

/// One decision per line, acknowledged with `ok <step>` once it is on disk:
/// `keep ID`, `exclude ID`, `relabel ID=LABEL`, `undo`, `redo`. A bad line
/// gets `error: …` and the rest go on.
fn run_stdin(
    ds: &Dataset,
    session: &mut ReviewSession,
    reason: &str,
    reviewer: &str,
) -> Result<(), Error> {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = line.map_err(|e| Error::Other(format!("reading stdin: {e}")))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (verb, arg) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let arg = arg.trim();
        let result: Result<Option<i64>, Error> = match verb {
            "keep" | "exclude" => sample(ds, arg).and_then(|i| {
                let d = if verb == "keep" {
                    Decision::Keep
                } else {
                    Decision::Exclude
                };
                session
                    .decide(&[(i, d)], reason, reviewer)
                    .map(|a| Some(a.seq))
            }),
            "relabel" => relabel(ds, arg)
                .and_then(|p| session.decide(&[p], reason, reviewer).map(|a| Some(a.seq))),
            "undo" => session.undo(reviewer).map(|a| a.map(|a| a.seq)),
            "redo" => session.redo(reviewer).map(|a| a.map(|a| a.seq)),
            _ => Err(Error::Other(format!(
                "line {}: unknown command '{verb}' (keep, exclude, relabel, undo, redo)",
                n + 1
            ))),
        };
        let reply = match result {
            Ok(Some(seq)) => format!("ok {seq}"),
            Ok(None) => "ok nothing".to_string(),
            Err(e) => format!("error: {e}"),
        };
        writeln!(out, "{reply}")
            .and_then(|_| out.flush())
            .map_err(|e| Error::Other(format!("writing stdout: {e}")))?;
    }
    Ok(())
}

fn list(ds: &Dataset, session: &ReviewSession) -> Result<(), Error> {
    let review = session.review();
    println!(
        "Review of {} — store {}",
        ds.source.display(),
        session.store_path().display()
    );
    let decided: Vec<usize> = (0..ds.len())
        .filter(|&i| review.decision(i).is_some())
        .collect();
    println!("\nDecisions ({} of {} samples):", decided.len(), ds.len());
    let w = decided
        .iter()
        .map(|&i| ds.ids[i].len())
        .max()
        .unwrap_or(2)
        .max(2);
    println!(
        "{:<w$}  {:<12}  {:<20}  {:<12}  {:<20}  reason",
        "id", "given", "decision", "reviewer", "at"
    );
    for i in decided {
        let e = review.decision(i).expect("decided");
        println!(
            "{:<w$}  {:<12}  {:<20}  {:<12}  {:<20}  {}",
            plain(&ds.ids[i]),
            plain(ds.label_name(i)),
            plain(&describe(Some(e.decision), &ds.classes)),
            plain(&e.reviewer),
            rfc3339(e.at),
            plain(&e.reason)
        );
    }
    let history = session.history()?;
    println!("\nHistory ({} steps):", history.len());
    for e in &history {
        let what = match e.kind {
            EventKind::Apply => {
                let first: Vec<String> = e
                    .changes
                    .iter()
                    .take(3)
                    .map(|c| {
                        format!(
                            "{} {} -> {}",
                            plain(&c.sample_id),
                            plain(&word(&c.before)),
                            plain(&word(&c.after))
                        )
                    })
                    .collect();
                let more = e.changes.len().saturating_sub(3);
                format!(
                    "{} sample(s): {}{}{}",
                    e.changes.len(),
                    first.join(", "),
                    if more > 0 {
                        format!(", … {more} more")
                    } else {
                        String::new()
                    },
                    if e.reason.is_empty() {
                        String::new()
                    } else {
                        format!("  reason: {}", plain(&e.reason))
                    }
                )
            }
            EventKind::Undo => format!("undo of step #{}", e.target.unwrap_or(0)),
            EventKind::Redo => format!("redo of step #{}", e.target.unwrap_or(0)),
        };
        println!(
            "#{:<5} {}  {:<12}  {what}",
            e.seq,
            rfc3339(e.at),
            plain(&e.reviewer)
        );
    }
    Ok(())
}

fn word(e: &Option<StoredEntry>) -> String {
    match e {
        None => "undecided".into(),
        Some(e) => match &e.label {
            Some(l) => format!("{}:{l}", e.decision),
            None => e.decision.clone(),
        },
    }
}

/// Text from the store as it may be printed on a terminal: control
/// characters (newlines, escape sequences) and bidirectional overrides are
/// shown escaped, so a reviewer name or reason cannot fake history lines or
/// recolour the screen.
fn plain(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(unsafe_char) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if unsafe_char(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}
