//! Scan once: a scan's [`Report`] is stored beside the review state, keyed
//! by everything that decides it — the manifest, the embeddings' values, the
//! bytes of every image, the options and this very build of poisonlens — so
//! reopening data that has not changed shows its result at once, and any
//! change (one image rewritten, another false-flag budget, a new build)
//! scans again.
//!
//! The stored result decides what an analyst is shown as clean, and it sits
//! in the dataset's folder, which others may write. So it is sealed with an
//! HMAC under a secret only this user can read (`scan-cache.key` in the
//! user's config folder): a result written or edited by anyone else — say,
//! one claiming a poisoned set is clean — is not believed; the data is
//! scanned again. The seal is checked over the whole file before anything
//! in it is parsed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use std::sync::Arc;

use super::{Report, ScanOptions};
use crate::dataset::fingerprint::dataset_fingerprint;
use crate::dataset::{Dataset, files};
use crate::linalg::Matrix;

type Seal = Hmac<Sha256>;

/// First bytes of a stored result; the last byte is the format's version.
const MAGIC: &[u8; 16] = b"poisonlens-scan\x02";
/// Magic, key and payload length. The seal covers magic and key, the
/// payload, then the length (written last, so the payload can be streamed).
const HEADER: usize = 16 + 32 + 8;
/// Magic and key: the part of the header sealed before the payload.
const LEAD: usize = 16 + 32;
/// The HMAC at the end.
const SEAL: usize = 32;

/// Where one dataset's stored result lives and the secret that seals it.
pub struct ScanCache {
    path: PathBuf,
    secret: [u8; 32],
}

/// What a lookup found.
pub enum Lookup {
    /// The stored result of exactly this data, these options and this build.
    Hit(Box<Report>),
    /// Nothing usable, and why in words ("none stored", "the data changed", …).
    Miss(String),
}

impl ScanCache {
    /// The stored result beside the review store at `store` (the review's
    /// [`crate::review::location::Location::path`]), sealed with this user's
    /// secret. None, with the reason, when the user has no config folder to
    /// keep a secret in (then every open scans).
    pub fn beside(store: &Path) -> Result<ScanCache, String> {
        Ok(ScanCache {
            path: store.with_extension("scan"),
            secret: user_secret()?,
        })
    }

    /// A cache at `path` with an explicit secret (tests; other users).
    pub fn with_secret(path: PathBuf, secret: [u8; 32]) -> ScanCache {
        ScanCache { path, secret }
    }

    /// The file the result is kept in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored result for `key`, if it is there, sealed by this user and
    /// readable. Never fails: anything wrong is a miss with its reason.
    pub fn load(&self, key: &[u8; 32], n: usize) -> Lookup {
        match self.try_load(key, n) {
            Ok(r) => Lookup::Hit(Box::new(r)),
            Err(why) => Lookup::Miss(why),
        }
    }

    fn try_load(&self, key: &[u8; 32], n: usize) -> Result<Report, String> {
        if !self.path.exists() {
            return Err("no stored scan".into());
        }
        let (mut f, len) = files::open_regular(&self.path).map_err(|e| e.to_string())?;
        let mut header = [0u8; HEADER];
        f.read_exact(&mut header)
            .map_err(|_| "the stored scan is truncated".to_string())?;
        if &header[..16] != MAGIC {
            return Err("the stored scan is from another format".into());
        }
        if header[16..48] != key[..] {
            return Err("the data, options or build changed since the stored scan".into());
        }
        let payload = u64::from_le_bytes(header[48..56].try_into().expect("8 bytes"));
        if Some(len) != payload.checked_add((HEADER + SEAL) as u64) {
            return Err("the stored scan is truncated".into());
        }
        // First pass: the seal, streamed, before anything is parsed or kept.
        let mut mac = self.seal();
        mac.update(&header[..LEAD]);
        stream(&mut f, payload, |chunk| mac.update(chunk))?;
        mac.update(&header[LEAD..]);
        let mut tag = [0u8; SEAL];
        f.read_exact(&mut tag)
            .map_err(|_| "the stored scan is truncated".to_string())?;
        mac.verify_slice(&tag)
            .map_err(|_| "the stored scan was not written by this user's poisonlens".to_string())?;
        // Second pass: read what was sealed and check it is still what was read.
        f.seek(SeekFrom::Start(HEADER as u64))
            .map_err(|e| e.to_string())?;
        let mut bytes = Vec::with_capacity(payload as usize);
        (&mut f)
            .take(payload)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        let mut again = self.seal();
        again.update(&header[..LEAD]);
        again.update(&bytes);
        again.update(&header[LEAD..]);
        again
            .verify_slice(&tag)
            .map_err(|_| "the stored scan changed while it was read".to_string())?;
        let report: Report = rmp_serde::from_slice(&bytes)
            .map_err(|e| format!("the stored scan is unreadable: {e}"))?;
        check_shapes(&report, n)?;
        Ok(report)
    }

    /// Stores `report` under `key`, replacing what was there (written to a
    /// temporary file and renamed, so a reader never sees half of it).
    pub fn store(&self, key: &[u8; 32], report: &Report) -> Result<(), String> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let name = self
            .path
            .file_name()
            .map_or_else(|| "scan".into(), |s| s.to_string_lossy().to_string());
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nth = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}-{nth}.tmp", std::process::id()));
        let written = (|| -> Result<(), String> {
            // A --state-dir that does not exist yet is made, as the review
            // store makes it (a scan is often the first thing run there).
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            let mut f = File::create(&tmp).map_err(|e| e.to_string())?;
            let mut lead = [0u8; HEADER];
            lead[..16].copy_from_slice(MAGIC);
            lead[16..LEAD].copy_from_slice(key);
            f.write_all(&lead).map_err(|e| e.to_string())?;
            // The payload is streamed through the seal into the file (a
            // million samples' result is ~450 MB: never held twice).
            let mut out = SealedWriter {
                inner: std::io::BufWriter::with_capacity(1 << 20, f),
                mac: self.seal(),
                written: 0,
            };
            out.mac.update(&lead[..LEAD]);
            rmp_serde::encode::write(&mut out, report).map_err(|e| e.to_string())?;
            let len = out.written.to_le_bytes();
            out.mac.update(&len);
            let tag = out.mac.finalize().into_bytes();
            let mut f = out.inner.into_inner().map_err(|e| e.to_string())?;
            f.write_all(&tag).map_err(|e| e.to_string())?;
            f.seek(SeekFrom::Start(LEAD as u64))
                .map_err(|e| e.to_string())?;
            f.write_all(&len).map_err(|e| e.to_string())?;
            f.flush().map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, &self.path).map_err(|e| e.to_string())
        })();
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("could not store the scan in {}: {e}", self.path.display())
        })
    }

    fn seal(&self) -> Seal {
        <Seal as Mac>::new_from_slice(&self.secret).expect("HMAC takes any key length")
    }
}

/// Writes through to a file while sealing and counting what passes.
struct SealedWriter {
    inner: std::io::BufWriter<File>,
    mac: Seal,
    written: u64,
}

impl Write for SealedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.mac.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn stream(f: &mut File, mut left: u64, mut each: impl FnMut(&[u8])) -> Result<(), String> {
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = buf.len().min(left as usize);
        f.read_exact(&mut buf[..want])
            .map_err(|_| "the stored scan is truncated".to_string())?;
        each(&buf[..want]);
        left -= want as u64;
    }
    Ok(())
}

/// Every per-sample vector of a stored report has one entry per sample.
fn check_shapes(r: &Report, n: usize) -> Result<(), String> {
    let lens = [
        r.ids.len(),
        r.labels.len(),
        r.score.len(),
        r.flagged.len(),
        r.reasons.len(),
        r.suggested_label.len(),
        r.suggested_confidence.len(),
        r.cluster_of.len(),
        // 0: stored without the dataset's embeddings (see `without_embeddings`).
        if r.features.rows == 0 {
            n
        } else {
            r.features.rows
        },
        r.trigger_box.len(),
        r.trigger_of.len(),
        r.neighbours.rows(),
    ];
    let detectors_ok = r.detectors.iter().all(|d| {
        d.score.len() == n && d.flagged.len() == n && d.reasons.fits(n) && d.suggested.fits(n)
    });
    let neighbours_ok = r.neighbours.idx.iter().all(|&j| (j as usize) < n);
    if lens.iter().all(|&l| l == n) && detectors_ok && neighbours_ok {
        Ok(())
    } else {
        Err("the stored scan does not match the dataset's size".into())
    }
}

/// The key a result is stored under: SHA-256 over this build's executable,
/// the options, the dataset's fingerprint (its manifest's bytes, or an
/// ImageFolder's ids and labels), the class names, the values of the
/// embeddings the scan will use and, when images are read, every image
/// file's path and bytes. Reading the images costs a fraction of decoding
/// them; an unreadable one enters the key as unreadable.
pub fn key(ds: &Dataset, opts: &ScanOptions) -> Result<[u8; 32], String> {
    let mut h = Sha256::new();
    h.update(b"poisonlens scan cache\0");
    h.update(crate::build_id::current()?);
    h.update(opts.seed.to_le_bytes());
    h.update([opts.use_images as u8]);
    h.update(opts.fdr.to_bits().to_le_bytes());
    h.update(dataset_fingerprint(ds).map_err(|e| e.to_string())?);
    for c in &ds.classes {
        h.update((c.len() as u64).to_le_bytes());
        h.update(c.as_bytes());
    }
    match (&opts.model, &ds.embeddings) {
        (Some(model), _) => {
            h.update(b"model");
            h.update(model.identity().as_bytes());
        }
        (None, Some(m)) => {
            h.update(b"embeddings");
            h.update((m.rows as u64).to_le_bytes());
            h.update((m.cols as u64).to_le_bytes());
            for chunk in m.data.chunks(1 << 16) {
                let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
                h.update(&bytes);
            }
        }
        (None, None) => h.update(b"no embeddings"),
    }
    if let (true, Some(paths)) = (opts.use_images || opts.model.is_some(), &ds.paths) {
        let files = ds.files();
        let digests: Vec<String> = (0..paths.len())
            .into_par_iter()
            .map(|i| {
                files
                    .sha256(i)
                    .unwrap_or_else(|e| format!("unreadable: {e}"))
            })
            .collect();
        for (p, d) in paths.iter().zip(&digests) {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
            h.update(d.as_bytes());
        }
    }
    Ok(h.finalize().into())
}

/// This user's secret for sealing stored scans, created (mode 0600) on first
/// use in `$XDG_CONFIG_HOME/poisonlens/` or `~/.config/poisonlens/`.
fn user_secret() -> Result<[u8; 32], String> {
    let dir = config_dir().ok_or("no HOME or XDG_CONFIG_HOME to keep a secret in")?;
    let path = dir.join("scan-cache.key");
    if !path.exists() {
        create_secret(&dir, &path)?;
    }
    let bytes = files::read_capped(&path, 64, "a scan-cache key").map_err(|e| e.to_string())?;
    refuse_shared(&path)?;
    bytes
        .try_into()
        .map_err(|_| format!("{} is not a 32-byte key", path.display()))
}

fn config_dir() -> Option<PathBuf> {
    let nonempty = |v: &str| {
        std::env::var_os(v)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    nonempty("XDG_CONFIG_HOME")
        .or_else(|| nonempty("HOME").map(|h| h.join(".config")))
        .map(|d| d.join("poisonlens"))
}

fn create_secret(dir: &Path, path: &Path) -> Result<(), String> {
    use ssh_key::rand_core::{OsRng, RngCore};
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => f
            .write_all(&secret)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        // Another poisonlens created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

/// A key others can read or write seals nothing.
fn refuse_shared(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).map_err(|e| e.to_string())?;
        if m.mode() & 0o077 != 0 || m.uid() != unsafe { libc::geteuid() } {
            return Err(format!(
                "{} is readable or writable by others (or not yours); stored scans are not used",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Where a report came from, in one sentence for people.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// Read back from the stored result of the same data, options and build.
    Stored(PathBuf),
    /// Scanned now; `note` says whether it was stored for next time.
    Scanned {
        /// What happened to the stored copy.
        note: String,
    },
}

impl Origin {
    /// A few words for the window's queue panel (the sentence is its hover).
    pub fn short(&self) -> &'static str {
        match self {
            Origin::Stored(_) => "Stored scan reused: data, options and build unchanged",
            Origin::Scanned { .. } => "Scanned when opened",
        }
    }

    /// The sentence shown in the window and printed by `scan`.
    pub fn describe(&self) -> String {
        match self {
            Origin::Stored(p) => format!(
                "reused the stored scan in {} (same data, options and build)",
                p.display()
            ),
            Origin::Scanned { note } => note.clone(),
        }
    }
}

/// A report whose features are the dataset's embeddings as given is stored
/// without them (an empty matrix in their place: the key already holds
/// their values), saving their size on disk and in memory when read back;
/// reading points them back at the dataset's copy.
fn without_embeddings(ds: &Dataset, r: &mut Report) -> Option<Arc<Matrix>> {
    let e = ds.embeddings.as_ref()?;
    Arc::ptr_eq(e, &r.features).then(|| {
        std::mem::replace(
            &mut r.features,
            Arc::new(Matrix::new(0, e.cols, Vec::new())),
        )
    })
}

/// The stored report's features: the dataset's embeddings when it was
/// stored without them; None if it says so but the dataset has none that fit.
fn with_embeddings(ds: &Dataset, mut r: Report) -> Option<Report> {
    if r.features.rows == 0 {
        let e = ds.embeddings.as_ref().filter(|e| e.rows == ds.len())?;
        r.features = Arc::clone(e);
    }
    Some(r)
}

/// Scans `ds`, or reads the stored result of the same scan from `cache`;
/// a new result is stored there for next time. Without a cache (none wanted,
/// or no secret to seal it with) this is [`super::scan_watched`].
pub fn scan_cached(
    ds: &Dataset,
    opts: &ScanOptions,
    cache: Result<&ScanCache, String>,
    watch: &super::ScanWatch,
) -> crate::Result<(Report, Origin)> {
    let cache = match cache {
        Ok(c) => c,
        Err(why) => {
            let report = super::scan_watched(ds, opts, watch)?;
            let note = format!("scanned; not stored for next time ({why})");
            return Ok((report, Origin::Scanned { note }));
        }
    };
    (watch.progress)("looking for a stored scan", 0.0);
    let key = key(ds, opts);
    let missed = match &key {
        Ok(k) => match cache.load(k, ds.len()) {
            Lookup::Hit(r) => match with_embeddings(ds, *r) {
                Some(r) => return Ok((r, Origin::Stored(cache.path().to_path_buf()))),
                None => "the stored scan does not match the dataset's embeddings".into(),
            },
            Lookup::Miss(why) => why,
        },
        Err(why) => why.clone(),
    };
    let mut report = super::scan_watched(ds, opts, watch)?;
    let taken = without_embeddings(ds, &mut report);
    let stored = key.and_then(|k| cache.store(&k, &report));
    if let Some(features) = taken {
        report.features = features;
    }
    let note = match stored {
        Ok(()) => format!(
            "scanned ({missed}); stored in {} for next time",
            cache.path().display()
        ),
        Err(why) => format!("scanned ({missed}); {why}"),
    };
    Ok((report, Origin::Scanned { note }))
}
