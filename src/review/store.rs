//! The durable review store: an SQLite database in WAL mode with
//! `synchronous=FULL`, so a decision is on disk before the caller shows it,
//! a `kill -9` loses nothing committed, and several processes can write at
//! once (SQLite's locking serialises them; no one sees half a batch).
//!
//! The store is an append-only event log. Decisions are keyed by sample id
//! and relabels by class name, not by row number or class index, so the log
//! stays meaningful if the dataset is re-exported in another order.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::error::{Error, Result};

/// Schema version written into `meta`; a store from a newer poisonlens is
/// refused rather than misread.
pub const SCHEMA_VERSION: i64 = 1;

/// How long a writer waits for another process's transaction to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// A decision as stored: words and class names, not indices.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredEntry {
    /// `keep`, `exclude` or `relabel`.
    pub decision: String,
    /// The new class name for `relabel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// Who.
    pub reviewer: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

/// One sample's decision before and after an event.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChange {
    /// The sample's id.
    pub sample_id: String,
    /// Decision before (None = undecided).
    pub before: Option<StoredEntry>,
    /// Decision after.
    pub after: Option<StoredEntry>,
}

/// What an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// New decisions (one or a batch).
    Apply,
    /// Reverted the event named by `target`.
    Undo,
    /// Re-applied the event named by `target`.
    Redo,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            EventKind::Apply => "apply",
            EventKind::Undo => "undo",
            EventKind::Redo => "redo",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "apply" => EventKind::Apply,
            "undo" => EventKind::Undo,
            "redo" => EventKind::Redo,
            _ => return None,
        })
    }
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Position in the log (assigned by the store, increasing).
    pub seq: i64,
    /// What it did.
    pub kind: EventKind,
    /// For undo/redo: the apply event concerned.
    pub target: Option<i64>,
    /// Who did it.
    pub reviewer: String,
    /// When (seconds since the Unix epoch).
    pub at: u64,
    /// The reason given (apply events).
    pub reason: String,
    /// Fingerprint of the dataset it was made on.
    pub dataset_sha256: String,
    /// Per-sample changes (apply events only; undo/redo refer to `target`).
    pub changes: Vec<StoredChange>,
}

impl StoredEvent {
    /// An event to append, stamped now (the store assigns `seq`).
    pub fn new(
        kind: EventKind,
        target: Option<i64>,
        reviewer: &str,
        reason: &str,
        dataset_sha256: &str,
        changes: Vec<StoredChange>,
    ) -> Self {
        StoredEvent {
            seq: 0,
            kind,
            target,
            reviewer: reviewer.to_string(),
            at: super::now(),
            reason: reason.to_string(),
            dataset_sha256: dataset_sha256.to_string(),
            changes,
        }
    }
}

/// An open store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Why nothing may be written, when the store is read-only.
    read_only: Option<String>,
}

impl Store {
    /// Opens (creating if needed) the store at `path` for reading and
    /// writing. Refuses an SQLite file that is not a poisonlens review
    /// rather than adding tables to it. Several processes opening a new
    /// store at once wait for each other instead of failing "locked".
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let err = |e: rusqlite::Error| db_error(path, e);
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        refuse_foreign(&conn, path)?;
        let mode =
            retry_busy(|| conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)))
                .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::file(
                path,
                format!("the review store cannot use write-ahead logging (journal mode {mode})"),
            ));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            read_only: None,
        };
        store.create_schema()?;
        Ok(store)
    }

    /// Opens the store at `path` without writing anything, for a review
    /// that cannot be written (`why` says so in every refusal). A store
    /// that does not exist reads as empty.
    pub fn open_read_only(path: &Path, why: &str) -> Result<Store> {
        let err = |e: rusqlite::Error| db_error(path, e);
        let conn = if path.exists() {
            read_only_connection(path)?
        } else {
            Connection::open_in_memory().map_err(err)?
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            read_only: None,
        };
        if path.exists() {
            refuse_foreign(&store.conn, path)?;
            store.check_version()?;
        } else {
            store.create_schema()?;
        }
        store.read_only = Some(why.to_string());
        Ok(store)
    }

    /// Creates the store at `path` as a copy of the store at `from` (read
    /// only, never changed), then opens it for writing.
    pub fn open_seeded(path: &Path, from: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let source = Store::open_read_only(from, "")?;
        let tmp = path.with_extension(format!("seeding-{}", std::process::id()));
        source
            .conn
            .execute("VACUUM INTO ?1", [tmp.to_string_lossy()])
            .map_err(|e| db_error(from, e))?;
        drop(source);
        // Another process may have created it meanwhile: keep theirs.
        if let Err(e) = std::fs::hard_link(&tmp, path)
            && e.kind() != std::io::ErrorKind::AlreadyExists
        {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io(path, e));
        }
        let _ = std::fs::remove_file(&tmp);
        Store::open(path)
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn create_schema(&mut self) -> Result<()> {
        let path = self.path.clone();
        let tx = self.begin()?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS events(
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 kind TEXT NOT NULL CHECK (kind IN ('apply','undo','redo')),
                 target INTEGER REFERENCES events(seq),
                 reviewer TEXT NOT NULL,
                 at INTEGER NOT NULL,
                 reason TEXT NOT NULL DEFAULT '',
                 dataset_sha256 TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS changes(
                 event INTEGER NOT NULL REFERENCES events(seq),
                 ord INTEGER NOT NULL,
                 sample_id TEXT NOT NULL,
                 before TEXT,
                 after TEXT,
                 PRIMARY KEY (event, ord)) WITHOUT ROWID;",
        )
        .map_err(|e| db_error(&path, e))?;
        if schema_version(&tx, &path)?.is_none() {
            set_meta(&tx, &path, "schema_version", &SCHEMA_VERSION.to_string())?;
        }
        tx.commit().map_err(|e| db_error(&path, e))
    }

    /// Refuses a store written by a newer poisonlens.
    fn check_version(&self) -> Result<()> {
        schema_version(&self.conn, &self.path).map(|_| ())
    }

    /// Starts a write transaction that holds the write lock from the start,
    /// so reading new events and appending ours happen with no writer between.
    /// A read-only store refuses, saying why and what to do.
    pub fn begin(&mut self) -> Result<Transaction<'_>> {
        let path = self.path.clone();
        if let Some(why) = &self.read_only {
            return Err(Error::file(
                &path,
                format!(
                    "{why}; the review is read-only, so this decision was not recorded (give --state-dir DIR to record decisions there)"
                ),
            ));
        }
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_error(&path, e))
    }

    /// A value from the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        get_meta(&self.conn, &self.path, key)
    }

    /// Changes whenever another connection commits: a cheap check for "did
    /// someone else write?" that a window can run every second.
    pub fn data_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| db_error(&self.path, e))
    }

    /// Every event after `seq`, oldest first.
    pub fn events_after(&self, seq: i64) -> Result<Vec<StoredEvent>> {
        events_after(&self.conn, &self.path, seq)
    }

    /// Checks the database file's own consistency (SQLite `integrity_check`).
    pub fn integrity_check(&self) -> Result<()> {
        let r: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| db_error(&self.path, e))?;
        if r == "ok" {
            Ok(())
        } else {
            Err(Error::file(
                &self.path,
                format!("review store damaged: {r}"),
            ))
        }
    }
}

/// The store's schema version (None for a new store); an error for one
/// newer than this poisonlens understands.
fn schema_version(conn: &Connection, path: &Path) -> Result<Option<i64>> {
    let version: Option<String> = get_meta(conn, path, "schema_version")?;
    match version.as_deref().map(str::parse::<i64>) {
        None => Ok(None),
        Some(Ok(v)) if v <= SCHEMA_VERSION => Ok(Some(v)),
        Some(v) => Err(Error::file(
            path,
            format!(
                "review store schema {} is newer than this poisonlens understands ({SCHEMA_VERSION}); upgrade poisonlens",
                v.map_or_else(|_| "?".into(), |v| v.to_string())
            ),
        )),
    }
}

/// Refuses a database that already holds tables but is not a poisonlens
/// review (no `meta` table with a schema version): poisonlens must never
/// add its tables to someone else's file.
fn refuse_foreign(conn: &Connection, path: &Path) -> Result<()> {
    let err = |e: rusqlite::Error| db_error(path, e);
    let tables: i64 = retry_busy(|| {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
    })
    .map_err(err)?;
    if tables == 0 {
        return Ok(());
    }
    let ours: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    let versioned = ours == 1
        && conn
            .query_row(
                "SELECT count(*) FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_or(0)
            == 1;
    if versioned {
        Ok(())
    } else {
        Err(Error::file(
            path,
            "is an SQLite database but not a poisonlens review store; poisonlens will not add its tables to it (move it away or give --state-dir DIR)",
        ))
    }
}

/// Opens an existing store without writing: read-only when its folder lets
/// SQLite keep its shared-memory index, else as an immutable file — safe
/// only when no write-ahead log holds decisions not yet in the main file.
fn read_only_connection(path: &Path) -> Result<Connection> {
    use rusqlite::OpenFlags as F;
    let flags = F::SQLITE_OPEN_READ_ONLY | F::SQLITE_OPEN_URI | F::SQLITE_OPEN_NO_MUTEX;
    let uri = |q: &str| format!("file:{}?{q}", uri_path(path));
    let readable = |c: &Connection| {
        c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
    };
    if let Ok(c) = Connection::open_with_flags(uri("mode=ro"), flags)
        && readable(&c).is_ok()
    {
        return Ok(c);
    }
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(Error::file(
            path,
            format!(
                "holds decisions in its write-ahead log {} that cannot be read without write access to the folder; open it once where it can be written",
                wal.display()
            ),
        ));
    }
    let c =
        Connection::open_with_flags(uri("immutable=1"), flags).map_err(|e| db_error(path, e))?;
    readable(&c).map_err(|e| db_error(path, e))?;
    Ok(c)
}

/// A path for an SQLite `file:` URI (percent-encoding what URIs reserve).
fn uri_path(path: &Path) -> String {
    let raw = path.to_string_lossy();
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Retries a statement while another connection holds a lock SQLite's busy
/// handler does not wait on (setting up a new database's journal mode).
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    use rusqlite::ErrorCode as C;
    let start = std::time::Instant::now();
    loop {
        match f() {
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(C::DatabaseBusy | C::DatabaseLocked)
                ) && start.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

/// Reads a `meta` value inside or outside a transaction.
pub fn get_meta(conn: &Connection, path: &Path, key: &str) -> Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(|e| db_error(path, e))
}

/// Writes a `meta` value.
pub fn set_meta(conn: &Connection, path: &Path, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map(|_| ())
    .map_err(|e| db_error(path, e))
}

/// Every event after `seq`, oldest first, with its changes.
pub fn events_after(conn: &Connection, path: &Path, seq: i64) -> Result<Vec<StoredEvent>> {
    let err = |e: rusqlite::Error| db_error(path, e);
    let mut stmt = conn
        .prepare(
            "SELECT seq, kind, target, reviewer, at, reason, dataset_sha256
             FROM events WHERE seq > ?1 ORDER BY seq",
        )
        .map_err(err)?;
    let rows = stmt
        .query_map([seq], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })
        .map_err(err)?;
    let mut events = Vec::new();
    let mut by_seq = std::collections::HashMap::new();
    for row in rows {
        let (seq, kind, target, reviewer, at, reason, dataset_sha256) = row.map_err(err)?;
        let kind = EventKind::parse(&kind)
            .ok_or_else(|| Error::file(path, format!("event {seq}: unknown kind '{kind}'")))?;
        by_seq.insert(seq, events.len());
        events.push(StoredEvent {
            seq,
            kind,
            target,
            reviewer,
            at: at.max(0) as u64,
            reason,
            dataset_sha256,
            changes: Vec::new(),
        });
    }
    let mut stmt = conn
        .prepare(
            "SELECT event, sample_id, before, after FROM changes
             WHERE event > ?1 ORDER BY event, ord",
        )
        .map_err(err)?;
    let rows = stmt
        .query_map([seq], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .map_err(err)?;
    for row in rows {
        let (event, sample_id, before, after) = row.map_err(err)?;
        let parse = |s: Option<String>| -> Result<Option<StoredEntry>> {
            s.map(|s| {
                serde_json::from_str(&s).map_err(|e| {
                    Error::file(
                        path,
                        format!("event {event}, sample '{sample_id}': unreadable decision: {e}"),
                    )
                })
            })
            .transpose()
        };
        let change = StoredChange {
            before: parse(before)?,
            after: parse(after)?,
            sample_id,
        };
        if let Some(&i) = by_seq.get(&event) {
            events[i].changes.push(change);
        }
    }
    Ok(events)
}

/// Appends an event and commits: when this returns, the event is on disk.
pub fn append(tx: Transaction<'_>, path: &Path, e: &StoredEvent) -> Result<i64> {
    let seq = insert_event(&tx, path, e)?;
    tx.commit().map_err(|e| db_error(path, e))?;
    Ok(seq)
}

/// Appends an event (its `seq` is ignored and assigned); returns the new seq.
pub fn insert_event(tx: &Transaction<'_>, path: &Path, e: &StoredEvent) -> Result<i64> {
    let err = |e: rusqlite::Error| db_error(path, e);
    tx.execute(
        "INSERT INTO events(kind, target, reviewer, at, reason, dataset_sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            e.kind.as_str(),
            e.target,
            e.reviewer,
            e.at as i64,
            e.reason,
            e.dataset_sha256
        ],
    )
    .map_err(err)?;
    let seq = tx.last_insert_rowid();
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO changes(event, ord, sample_id, before, after) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(err)?;
    let json = |x: &Option<StoredEntry>| {
        x.as_ref()
            .map(|x| serde_json::to_string(x).unwrap_or_default())
    };
    for (ord, c) in e.changes.iter().enumerate() {
        stmt.execute(params![
            seq,
            ord as i64,
            c.sample_id,
            json(&c.before),
            json(&c.after)
        ])
        .map_err(err)?;
    }
    Ok(seq)
}

/// Turns an SQLite failure into an error naming the store file, with a hint
/// for the failures users can fix.
pub fn db_error(path: &Path, e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    let hint = match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked) => {
            " (another poisonlens is writing and did not finish in time; try again)"
        }
        Some(C::ReadOnly | C::CannotOpen | C::PermissionDenied) => {
            " (the folder or file is not writable; use --state-dir to keep the review elsewhere)"
        }
        Some(C::DiskFull) => " (the disk is full)",
        Some(C::NotADatabase | C::DatabaseCorrupt) => {
            " (this file is not a poisonlens review store)"
        }
        _ => "",
    };
    Error::file(path, format!("review store: {e}{hint}"))
}
