//! Keeping every file access inside the dataset folder. A manifest is input
//! from strangers: `../../etc/passwd`, an absolute path elsewhere or a symlink
//! out must never be read, hashed or shown.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Lexical check done when a manifest is opened (cheap, no file system access):
/// the path must be relative and must not climb above the dataset folder.
/// Returns the reason it is refused.
pub fn lexical_problem(rel: &str) -> Option<String> {
    let p = Path::new(rel);
    if p.is_absolute() || rel.starts_with('/') || rel.starts_with('\\') {
        return Some(format!(
            "absolute path '{rel}' is not allowed; paths are relative to the manifest's folder"
        ));
    }
    let mut depth: i64 = 0;
    for c in p.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Some(format!(
                    "path '{rel}' is not relative to the dataset folder"
                ));
            }
        }
        if depth < 0 {
            return Some(format!("path '{rel}' leaves the dataset folder"));
        }
    }
    None
}

/// Resolves `rel` against `root` following symlinks, and refuses the result
/// unless it is still inside `root`.
pub fn resolve_existing(root: &Path, rel: &str) -> Result<PathBuf> {
    let real_root = root.canonicalize().map_err(|e| Error::io(root, e))?;
    resolve_within(root, &real_root, rel)
}

/// [`resolve_existing`] with the root's real path already known
/// (`real_root`, `root` canonicalized): a dataset resolves its folder once,
/// not once per file (resolving it again for each of 20,000 images was 2%
/// of a scan's CPU).
pub fn resolve_within(root: &Path, real_root: &Path, rel: &str) -> Result<PathBuf> {
    if let Some(problem) = lexical_problem(rel) {
        return Err(Error::file(&root.join(rel), problem));
    }
    let joined = root.join(rel);
    let real = joined.canonicalize().map_err(|e| Error::io(&joined, e))?;
    inside(&joined, real, real_root)
}

/// `real` (the real path of `joined`) when it lies inside `real_root`,
/// else the error that names `joined` and where it leads.
fn inside(joined: &Path, real: PathBuf, real_root: &Path) -> Result<PathBuf> {
    if !real.starts_with(real_root) {
        return Err(Error::file(
            joined,
            format!(
                "resolves to {} which is outside the dataset folder (symlink out?)",
                real.display()
            ),
        ));
    }
    Ok(real)
}

/// Most folders a [`FolderResolver`] remembers in one pass.
pub const REMEMBERED_FOLDERS: usize = 4096;

/// [`resolve_within`] for the many files of one pass (reading every image
/// of a scan): each folder's real path is resolved once and remembered for
/// the pass, and a file is checked with one `lstat` — resolved in full only
/// when it is itself a symlink. `canonicalize` walks every component of
/// every path (five `readlink` calls per image of a 20,000-image scan,
/// 100,000 in all). Made afresh for each pass, so a folder swapped for a
/// symlink between passes is seen by the next one; a swap during the pass
/// is caught when the file is opened ([`opened_within`], which
/// [`crate::dataset::folder::FolderFiles`] applies to every file it opens this
/// way; on Linux it first tries the kernel's own check,
/// [`crate::dataset::beneath`], and comes here when that fails).
pub struct FolderResolver<'a> {
    root: &'a Path,
    real_root: &'a Path,
    /// Real path of each folder met in this pass.
    folders: Mutex<HashMap<PathBuf, PathBuf>>,
}

impl<'a> FolderResolver<'a> {
    /// A resolver for files under `root`, whose real path is `real_root`.
    pub fn new(root: &'a Path, real_root: &'a Path) -> Self {
        FolderResolver {
            root,
            real_root,
            folders: Mutex::new(HashMap::new()),
        }
    }

    /// The checked real path of `rel`: the same result and errors as
    /// [`resolve_within`].
    pub fn resolve(&self, rel: &str) -> Result<PathBuf> {
        if let Some(problem) = lexical_problem(rel) {
            return Err(Error::file(&self.root.join(rel), problem));
        }
        let joined = self.root.join(rel);
        let (Some(folder), Some(name)) = (joined.parent(), plain_file_name(rel)) else {
            return resolve_within(self.root, self.real_root, rel);
        };
        match std::fs::symlink_metadata(&joined) {
            Ok(meta) if !meta.file_type().is_symlink() => {}
            // A symlink, or a path that fails: the full walk gives the
            // answer or the error, as for a single file.
            _ => return resolve_within(self.root, self.real_root, rel),
        }
        let real_folder = match self.known(folder) {
            Some(real) => real,
            None => {
                let real = folder.canonicalize().map_err(|e| Error::io(&joined, e))?;
                self.remember(folder, &real);
                real
            }
        };
        inside(&joined, real_folder.join(name), self.real_root)
    }

    fn known(&self, folder: &Path) -> Option<PathBuf> {
        let folders = self.folders.lock().unwrap_or_else(|p| p.into_inner());
        folders.get(folder).cloned()
    }

    /// Remembers a folder's real path, up to [`REMEMBERED_FOLDERS`]: a
    /// dataset with a folder per image would otherwise keep a path per
    /// image for the pass (past the limit each further folder is resolved
    /// per file, as `canonicalize` did).
    fn remember(&self, folder: &Path, real: &Path) {
        let mut folders = self.folders.lock().unwrap_or_else(|p| p.into_inner());
        if folders.len() < REMEMBERED_FOLDERS {
            folders.insert(folder.to_path_buf(), real.to_path_buf());
        }
    }
}

/// Refuses a file opened at a checked path (`path`) that turns out to lie
/// outside `real_root`: a folder on the way swapped for a symlink after the
/// path was checked (the handle's own path, from `/proc/self/fd` on Linux,
/// is where the bytes really come from). Elsewhere, or without `/proc`,
/// the path's check stands alone.
pub fn opened_within(f: &std::fs::File, path: &Path, real_root: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let fd = Path::new("/proc/self/fd").join(f.as_raw_fd().to_string());
        if let Ok(real) = std::fs::read_link(fd)
            && !real.starts_with(real_root)
        {
            return Err(Error::file(
                path,
                format!(
                    "was opened at {}, outside the dataset folder (a folder swapped for a symlink while it was read?)",
                    real.display()
                ),
            ));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (f, path, real_root);
    Ok(())
}

/// The last component of `rel` when it names an entry (not `.` or `..`,
/// nor a path ending in a separator), else None.
fn plain_file_name(rel: &str) -> Option<&std::ffi::OsStr> {
    if rel.ends_with('/') || rel.ends_with('\\') {
        return None;
    }
    match Path::new(rel).components().next_back()? {
        Component::Normal(name) if !rel.ends_with("/.") && rel != "." => Some(name),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_rules() {
        assert!(lexical_problem("images/a.png").is_none());
        assert!(lexical_problem("./a/../b.png").is_none());
        assert!(lexical_problem("../../etc/passwd").is_some());
        assert!(lexical_problem("a/../../b").is_some());
        assert!(lexical_problem("/etc/passwd").is_some());
    }

    /// Files resolved a folder at a time give what the full walk gives:
    /// the same real paths, the same refusals (a symlink out, as a file
    /// or as a folder) and an error for a missing file.
    #[test]
    fn folder_resolver_agrees_with_the_full_walk() {
        let base = std::env::temp_dir().join(format!("pl_resolver_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        for f in ["a/b/x.png", "a/y.png", "top.png"] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        std::fs::write(outside.join("secret.png"), b"s").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(outside.join("secret.png"), root.join("a/out.png")).unwrap();
            std::os::unix::fs::symlink(&outside, root.join("linked")).unwrap();
            std::os::unix::fs::symlink(root.join("a/y.png"), root.join("a/b/in.png")).unwrap();
        }
        let real_root = root.canonicalize().unwrap();
        let r = FolderResolver::new(&root, &real_root);
        let cases = [
            "a/b/x.png",
            "a/y.png",
            "top.png",
            "./a/../a/y.png",
            "a/b/../x.png",
            "a/b/x.png",
            "a/out.png",
            "linked/secret.png",
            "a/b/in.png",
            "a/missing.png",
            "nofolder/x.png",
            "a/b",
            "a/b/",
            "a/.",
            "../root/top.png",
            "/etc/passwd",
        ];
        for rel in cases {
            let want = resolve_within(&root, &real_root, rel);
            let got = r.resolve(rel);
            match (&want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g, "{rel}"),
                (Err(w), Err(g)) => assert_eq!(w.to_string(), g.to_string(), "{rel}"),
                _ => panic!("{rel}: full walk {want:?}, by folder {got:?}"),
            }
        }
        // Past the folders it remembers, each further folder is resolved
        // per file, with the same answers.
        let many = FolderResolver::new(&root, &real_root);
        for k in 0..REMEMBERED_FOLDERS {
            many.remember(&root.join(format!("f{k}")), &real_root);
        }
        for rel in ["a/b/x.png", "a/out.png", "a/y.png"] {
            let want = resolve_within(&root, &real_root, rel).map_err(|e| e.to_string());
            assert_eq!(many.resolve(rel).map_err(|e| e.to_string()), want, "{rel}");
        }
        assert_eq!(many.folders.lock().unwrap().len(), REMEMBERED_FOLDERS);
        // A file opened through the symlinked folder is where it really
        // is: outside, and refused on the open handle.
        #[cfg(target_os = "linux")]
        {
            let through = root.join("linked/secret.png");
            let f = std::fs::File::open(&through).unwrap();
            let e = opened_within(&f, &through, &real_root).unwrap_err();
            assert!(e.to_string().contains("outside the dataset folder"), "{e}");
            let inside = std::fs::File::open(root.join("a/y.png")).unwrap();
            assert!(opened_within(&inside, &root.join("a/y.png"), &real_root).is_ok());
        }
        std::fs::remove_dir_all(&base).unwrap();
    }
}
