//! Opening a dataset's files with the kernel's own promise that they lie
//! inside the dataset folder (Linux 5.6+: `openat2` with `RESOLVE_BENEATH`).
//!
//! The checked route ([`super::paths::FolderResolver`], then
//! [`super::paths::opened_within`]) costs an `lstat` before each open and a
//! `readlink` of `/proc/self/fd/N` after it, where the kernel writes out the
//! file's whole path — 7% of the CPU of a first scan of 20,000 images, which
//! opens each image twice (the stored-result key and the image pass).
//! `openat2` resolves the path from the folder's own handle and fails
//! if any step — `..`, an absolute symlink, a symlink out — would leave it,
//! in the one call that opens the file, so nothing can be swapped between a
//! check and the open. Any failure (a missing file, a symlink out, a kernel
//! without `openat2`, a sandbox that forbids it) gives None, and the caller
//! takes the checked route, which either opens the file or says exactly why
//! not.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// A dataset folder held open for one pass over its files.
pub struct Beneath {
    dir: File,
    /// False once the kernel said it has no `openat2` (or may not use it).
    usable: AtomicBool,
}

impl Beneath {
    /// Holds `real_root` open (as a path handle: nothing is read through
    /// it) for a pass over the files of the dataset at `root`; None if it
    /// cannot be opened as a folder, or if `root` no longer leads to it (a
    /// dataset opened through a symlink since pointed elsewhere serves no
    /// files, as the checked route says).
    pub fn new(root: &Path, real_root: &Path) -> Option<Beneath> {
        use std::os::unix::fs::MetadataExt;
        let beneath = Beneath::open_folder(real_root)?;
        let (held, named) = (beneath.dir.metadata().ok()?, std::fs::metadata(root).ok()?);
        (held.dev() == named.dev() && held.ino() == named.ino()).then_some(beneath)
    }

    fn open_folder(real_root: &Path) -> Option<Beneath> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(real_root)
            .ok()?;
        Some(Beneath {
            dir,
            usable: AtomicBool::new(true),
        })
    }

    /// `rel` opened for reading (without blocking on a FIFO, never as a
    /// controlling terminal) if the kernel finds it inside the folder
    /// without leaving it at any step; None otherwise.
    pub fn open(&self, rel: &str) -> Option<File> {
        if !self.usable.load(Ordering::Relaxed) {
            return None;
        }
        let path = CString::new(rel).ok()?;
        // SAFETY: `open_how` is plain integers, for which zero is valid
        // (and the kernel's value for every field not set here).
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC) as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: `path` and `how` outlive the call, and the size passed is
        // `how`'s own.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error();
            if matches!(errno, Some(libc::ENOSYS) | Some(libc::EPERM)) {
                self.usable.store(false, Ordering::Relaxed);
            }
            return None;
        }
        // SAFETY: the call returned a new descriptor that nothing else owns.
        Some(unsafe { File::from_raw_fd(fd as i32) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn contents(f: Option<File>) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        f?.read_to_end(&mut out).ok()?;
        Some(out)
    }

    /// Files inside open, whatever way the path takes inside; anything that
    /// leaves the folder at any step does not — a symlink out as a file or
    /// a folder, `..`, an absolute path or symlink, a `/proc` magic link.
    #[test]
    fn only_files_found_without_leaving_the_folder_open() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        let outside = base.path().join("outside");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("a/b/x.png"), b"x").unwrap();
        std::fs::write(root.join("top.png"), b"t").unwrap();
        std::fs::write(outside.join("secret.png"), b"s").unwrap();
        let link = |to: &Path, at: &str| std::os::unix::fs::symlink(to, root.join(at)).unwrap();
        link(&outside.join("secret.png"), "a/out.png");
        link(&outside, "linked");
        link(Path::new("b/x.png"), "a/in.png");
        link(&root.join("top.png"), "absolute_in.png");
        link(Path::new("/proc/self/root/etc/hostname"), "magic.png");
        let b = Beneath::new(&root, &root.canonicalize().unwrap()).expect("the folder opens");
        if b.open("top.png").is_none() && !b.usable.load(Ordering::Relaxed) {
            // A kernel before 5.6, or a sandbox that forbids openat2: every
            // file takes the checked route, which its own tests cover.
            eprintln!("openat2 is not available here; nothing to test");
            return;
        }
        for (rel, want) in [
            ("a/b/x.png", Some(&b"x"[..])),
            ("./a/../a/b/x.png", Some(b"x")),
            ("a/in.png", Some(b"x")),
            ("top.png", Some(b"t")),
            ("a/out.png", None),
            ("linked/secret.png", None),
            ("../outside/secret.png", None),
            ("/etc/hostname", None),
            ("absolute_in.png", None),
            ("magic.png", None),
            ("a/missing.png", None),
            ("a/b/x.png\0", None),
        ] {
            assert_eq!(contents(b.open(rel)).as_deref(), want, "{rel}");
        }
        // A dataset named through a symlink: held while the link leads to
        // its folder, refused once it leads elsewhere.
        let via = base.path().join("via");
        std::os::unix::fs::symlink(&root, &via).unwrap();
        let real = root.canonicalize().unwrap();
        assert!(Beneath::new(&via, &real).is_some());
        std::fs::remove_file(&via).unwrap();
        std::os::unix::fs::symlink(&outside, &via).unwrap();
        assert!(Beneath::new(&via, &real).is_none());
        assert!(Beneath::new(&base.path().join("nothing"), &real).is_none());
    }
}
