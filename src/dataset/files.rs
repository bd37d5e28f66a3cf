//! Opening files that may be hostile. Every file poisonlens reads — a
//! manifest, embeddings, an image, a signed record, a key — can be a FIFO
//! that never ends, a device that never stops (`/dev/zero`), a folder, or a
//! regular file of any size. So files are opened without blocking, checked
//! to be regular files *on the open handle* (no race between check and
//! read), and read only up to a stated limit or the size their own header
//! announces.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Largest text file read whole (signatures, keys, signer lists, records).
pub const MAX_TEXT_BYTES: u64 = 1 << 30;

/// Opens `path` for reading if, and only if, it is a regular file; returns
/// the handle and its size. A FIFO or device is refused at once, never
/// waited on or read.
pub fn open_regular(path: &Path) -> Result<(File, u64)> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Non-blocking so opening a FIFO with no writer returns at once;
        // no controlling terminal from a tty device.
        opts.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let f = opts.open(path).map_err(|e| Error::io(path, e))?;
    let len = regular_len(&f, path)?;
    Ok((f, len))
}

/// The size of an opened file (`path` names it in messages) if it is a
/// regular file — checked on the handle, so what is read is what was
/// checked.
pub fn regular_len(f: &File, path: &Path) -> Result<u64> {
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::file(
            path,
            format!(
                "is {}, not a regular file; poisonlens reads only regular files",
                kind(&meta)
            ),
        ));
    }
    Ok(meta.len())
}

/// Reads a regular file whole, refusing one larger than `max` bytes
/// (`what` names it in the message, e.g. "a signature").
pub fn read_capped(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let (f, len) = open_regular(path)?;
    read_opened(f, len, path, max, what)
}

/// [`read_capped`] of a file already opened by [`open_regular`] (`len` its
/// size then; `path` names it in messages).
pub fn read_opened(f: File, len: u64, path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    if len > max {
        return Err(too_large(path, len, max, what));
    }
    let mut buf = Vec::with_capacity(len as usize);
    // The file may grow after the size was read: never read past the limit.
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    if buf.len() as u64 > max {
        return Err(too_large(path, buf.len() as u64, max, what));
    }
    Ok(buf)
}

/// [`read_capped`] for UTF-8 text.
pub fn read_text_capped(path: &Path, max: u64, what: &str) -> Result<String> {
    String::from_utf8(read_capped(path, max, what)?).map_err(|e| {
        Error::file(
            path,
            format!("is not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

fn too_large(path: &Path, len: u64, max: u64, what: &str) -> Error {
    Error::file(
        path,
        format!("is {len} bytes, more than poisonlens reads for {what} ({max} bytes)"),
    )
}

/// Runs a third-party parser (polars, the image decoders) on `file` so
/// that a panic inside it — a bug it has on some malformed input, as
/// fuzzing found in polars' Parquet metadata reader — becomes an error
/// naming the file instead of ending the program.
pub fn without_panics<T>(file: &Path, format: &str, parse: impl FnOnce() -> T) -> Result<T> {
    quiet_panics_here();
    CAUGHT_HERE.with(|c| c.set(c.get() + 1));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse));
    CAUGHT_HERE.with(|c| c.set(c.get() - 1));
    r.map_err(|_| {
        Error::file(
            file,
            format!(
                "cannot read {format}: the file is malformed (its {format} reader gave up on it)"
            ),
        )
    })
}

thread_local! {
    /// How many [`without_panics`] calls this thread is inside.
    static CAUGHT_HERE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Installs (once) a panic hook that stays silent for a panic that
/// [`without_panics`] will turn into an error, so the user sees that error
/// and not a panic message; every other panic is reported as before.
fn quiet_panics_here() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAUGHT_HERE.with(|c| c.get()) == 0 {
                previous(info);
            }
        }));
    });
}

/// What a non-regular file is, in words.
fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a plain file"
}

/// Lower-case hex SHA-256 of a byte string.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// Lower-case hex SHA-256 of a regular file's bytes, streamed (files can be
/// large); a FIFO or device is refused, never read.
pub fn sha256_file(path: &Path) -> Result<String> {
    let (f, _) = open_regular(path)?;
    sha256_opened(f, path)
}

/// [`sha256_file`] of a file already opened by [`open_regular`].
pub fn sha256_opened(mut f: File, path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Bytes as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_devices_folders_and_oversize() {
        let dir = tempfile::tempdir().unwrap();
        let e = open_regular(dir.path()).unwrap_err().to_string();
        assert!(e.contains("a folder"), "{e}");
        #[cfg(unix)]
        {
            let e = read_capped(Path::new("/dev/zero"), 10, "a test").unwrap_err();
            assert!(e.to_string().contains("character device"), "{e}");
        }
        let p = dir.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read_capped(&p, 10, "a test").unwrap().len(), 10);
        let e = read_capped(&p, 9, "a test").unwrap_err().to_string();
        assert!(e.contains("10 bytes") && e.contains("a test"), "{e}");
    }
}
