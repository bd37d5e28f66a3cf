//! The files a manifest names under one folder, opened so that none of
//! them can lie outside it: the one mechanism behind a scan's image pass,
//! the stored-result key, the export's hashes ([`super::SampleFiles`]) and
//! `verify`'s check of a signed record's files.
//!
//! On Linux the kernel opens each file from the folder's own handle,
//! refusing any step out of it ([`super::beneath::Beneath`]); where that
//! fails — or elsewhere — the path is checked
//! ([`paths::FolderResolver`]), opened, and the open handle checked too
//! ([`paths::opened_within`]): a folder on the path may have been swapped
//! since the check. Only regular files are opened (checked on the handle).

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{files, paths};
use crate::error::Result;

/// Files under one folder, for one pass over them (folders resolved in the
/// pass are remembered for it); make one per pass, not one to keep.
pub struct FolderFiles<'a> {
    root: &'a Path,
    /// `root`'s real path, when it could be resolved.
    real_root: Option<&'a Path>,
    resolver: Option<paths::FolderResolver<'a>>,
    /// The folder held open, for opening its files in one call.
    #[cfg(target_os = "linux")]
    beneath: Option<super::beneath::Beneath>,
}

impl<'a> FolderFiles<'a> {
    /// Files under `root`, whose real path is `real_root` (None: each path
    /// is resolved whole, the root with it).
    pub fn new(root: &'a Path, real_root: Option<&'a Path>) -> FolderFiles<'a> {
        FolderFiles {
            root,
            real_root,
            resolver: real_root.map(|real| paths::FolderResolver::new(root, real)),
            #[cfg(target_os = "linux")]
            beneath: real_root.and_then(|real| super::beneath::Beneath::new(root, real)),
        }
    }

    /// Absolute, checked path of `rel`.
    pub fn path(&self, rel: &str) -> Result<PathBuf> {
        match &self.resolver {
            Some(r) => r.resolve(rel),
            None => paths::resolve_existing(self.root, rel),
        }
    }

    /// Opens `rel` (see the module documentation), with the path that names
    /// it in messages and its size.
    pub fn open(&self, rel: &str) -> Result<(PathBuf, File, u64)> {
        #[cfg(target_os = "linux")]
        if let Some(opened) = self.open_beneath(rel) {
            return opened;
        }
        let path = self.path(rel)?;
        let (f, len) = files::open_regular(&path)?;
        if let Some(real_root) = self.real_root {
            paths::opened_within(&f, &path, real_root)?;
        }
        Ok((path, f, len))
    }

    /// `rel` opened in one call beneath the folder; None when that cannot
    /// be done (the checked route then opens it or says why not).
    #[cfg(target_os = "linux")]
    fn open_beneath(&self, rel: &str) -> Option<Result<(PathBuf, File, u64)>> {
        if paths::lexical_problem(rel).is_some() {
            return None;
        }
        let f = self.beneath.as_ref()?.open(rel)?;
        let path = self.root.join(rel);
        Some(files::regular_len(&f, &path).map(|len| (path, f, len)))
    }

    /// `rel` whole, at most `max` bytes (`what` names it in messages), with
    /// its path.
    pub fn read(&self, rel: &str, max: u64, what: &str) -> Result<(PathBuf, Vec<u8>)> {
        let (path, f, len) = self.open(rel)?;
        let bytes = files::read_opened(f, len, &path, max, what)?;
        Ok((path, bytes))
    }

    /// SHA-256 (hex) of `rel`.
    pub fn sha256(&self, rel: &str) -> Result<String> {
        let (path, f, _) = self.open(rel)?;
        files::sha256_opened(f, &path)
    }
}
