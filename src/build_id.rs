//! Which build of poisonlens is running: a stored scan is reused only by the
//! very build that made it (other detectors, other thresholds give other
//! results).
//!
//! The identity was the SHA-256 of the whole executable, read on every
//! scan that looks for a stored result: 91 MB for the release binary, some
//! 60 ms of a repeat scan's 250. The linker already hashes its output: on
//! Linux (GNU ld, gold, lld and mold with `--build-id`, Debian's default)
//! the executable carries a `.note.gnu.build-id`, a hash of the linked file
//! that changes with any change of code or data. It is read from the
//! executable's program headers — a few hundred bytes — and the whole file
//! is hashed only where there is no such note.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::dataset::files;

/// The running build's identity (32 bytes), computed once per process.
pub fn current() -> Result<[u8; 32], String> {
    static ID: OnceLock<Result<[u8; 32], String>> = OnceLock::new();
    ID.get_or_init(|| {
        let exe = running_executable()?;
        let (f, _) = files::open_regular(&exe).map_err(|e| e.to_string())?;
        let mut h = Sha256::new();
        match gnu_build_id(&f) {
            Some(note) => {
                h.update(b"gnu build-id\0");
                h.update(&note);
            }
            None => {
                h.update(b"executable\0");
                let mut f = f;
                std::io::copy(&mut f, &mut h)
                    .map_err(|e| format!("cannot read {}: {e}", exe.display()))?;
            }
        }
        Ok(h.finalize().into())
    })
    .clone()
}

/// The running binary: `/proc/self/exe` where there is one, which stays the
/// running file even if a rebuild has since replaced the file at its path.
fn running_executable() -> Result<PathBuf, String> {
    let proc_exe = Path::new("/proc/self/exe");
    if proc_exe.exists() {
        return Ok(proc_exe.to_path_buf());
    }
    std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))
}

/// Program headers read at most (executables have a dozen or so).
const MAX_HEADERS: usize = 256;
/// Bytes of one note segment read at most.
const MAX_NOTE_SEGMENT: u64 = 1 << 16;
/// `PT_NOTE`.
const PT_NOTE: u32 = 4;
/// `NT_GNU_BUILD_ID`.
const NT_GNU_BUILD_ID: u32 = 3;

/// The `NT_GNU_BUILD_ID` note's bytes of a 64-bit little-endian ELF file,
/// if it has one of 8 to 64 bytes. Anything unexpected — another format, a
/// header that points outside the file, an implausible size — is None
/// (the caller then hashes the whole file), never a panic.
pub fn gnu_build_id(f: &File) -> Option<Vec<u8>> {
    let header = read_at(f, 0, 64)?;
    if header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return None;
    }
    let phoff = u64_at(&header, 0x20)?;
    let phentsize = usize::from(u16_at(&header, 0x36)?);
    let phnum = usize::from(u16_at(&header, 0x38)?);
    if phentsize < 56 || phnum > MAX_HEADERS {
        return None;
    }
    let table = read_at(f, phoff, phentsize * phnum)?;
    table.chunks_exact(phentsize).find_map(|ph| {
        if u32_at(ph, 0)? != PT_NOTE {
            return None;
        }
        let (offset, size) = (u64_at(ph, 8)?, u64_at(ph, 32)?);
        if size > MAX_NOTE_SEGMENT {
            return None;
        }
        build_id_note(&read_at(f, offset, size as usize)?)
    })
}

/// The GNU build-id among the notes of one `PT_NOTE` segment.
fn build_id_note(mut notes: &[u8]) -> Option<Vec<u8>> {
    let padded = |n: usize| n.checked_add(3).map(|v| v & !3);
    while notes.len() >= 12 {
        let name_len = u32_at(notes, 0)? as usize;
        let desc_len = u32_at(notes, 4)? as usize;
        let kind = u32_at(notes, 8)?;
        let name_end = 12usize.checked_add(padded(name_len)?)?;
        let desc_end = name_end.checked_add(padded(desc_len)?)?;
        if desc_end > notes.len() {
            return None;
        }
        let name = &notes[12..12 + name_len];
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" && (8..=64).contains(&desc_len) {
            return Some(notes[name_end..name_end + desc_len].to_vec());
        }
        notes = &notes[desc_end..];
    }
    None
}

/// `len` bytes at `offset`, or None if the file holds fewer.
fn read_at(f: &File, offset: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        f.read_exact_at(&mut buf, offset).ok()?;
    }
    #[cfg(not(unix))]
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = f;
        f.seek(SeekFrom::Start(offset)).ok()?;
        f.read_exact(&mut buf).ok()?;
    }
    Some(buf)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal 64-bit ELF file: the header, `phnum` program headers
    /// (the first a `PT_NOTE` over `notes`), then the notes.
    fn elf(notes: &[u8], phnum: u16) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&phnum.to_le_bytes());
        let notes_at = 64 + 56 * u64::from(phnum);
        for k in 0..phnum {
            let mut ph = vec![0u8; 56];
            let kind = if k == 0 { PT_NOTE } else { 1 };
            ph[0..4].copy_from_slice(&kind.to_le_bytes());
            ph[8..16].copy_from_slice(&notes_at.to_le_bytes());
            ph[32..40].copy_from_slice(&(notes.len() as u64).to_le_bytes());
            b.extend(ph);
        }
        b.extend_from_slice(notes);
        b
    }

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut n = Vec::new();
        n.extend((name.len() as u32).to_le_bytes());
        n.extend((desc.len() as u32).to_le_bytes());
        n.extend(kind.to_le_bytes());
        n.extend(name);
        n.resize(n.len().div_ceil(4) * 4, 0);
        n.extend(desc);
        n.resize(n.len().div_ceil(4) * 4, 0);
        n
    }

    fn id_of(bytes: &[u8]) -> Option<Vec<u8>> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        gnu_build_id(&f)
    }

    #[test]
    fn the_build_id_note_is_found_after_other_notes() {
        let id: Vec<u8> = (1..=20).collect();
        let mut notes = note(b"GNU\0", 1, &[0; 16]);
        notes.extend(note(b"GNU\0", NT_GNU_BUILD_ID, &id));
        assert_eq!(id_of(&elf(&notes, 3)), Some(id));
    }

    /// Files that lie about their shape give None (the whole file is then
    /// hashed), never a panic or a huge allocation.
    #[test]
    fn lying_headers_give_no_build_id() {
        let good = elf(&note(b"GNU\0", NT_GNU_BUILD_ID, &[7; 20]), 1);
        assert!(id_of(&good).is_some());
        // Not ELF, 32-bit, big-endian, truncated.
        assert_eq!(id_of(b"#!/bin/sh\n"), None);
        for (at, v) in [(0, b'X'), (4, 1), (5, 2)] {
            let mut bad = good.clone();
            bad[at] = v;
            assert_eq!(id_of(&bad), None);
        }
        assert_eq!(id_of(&good[..good.len() - 4]), None);
        // Program headers beyond the file, too many of them, too small.
        let mut far = good.clone();
        far[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(id_of(&far), None);
        let mut many = good.clone();
        many[0x38..0x3a].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(id_of(&many), None);
        let mut small = good.clone();
        small[0x36..0x38].copy_from_slice(&8u16.to_le_bytes());
        assert_eq!(id_of(&small), None);
        // A note segment claiming 2^40 bytes, a note claiming 4 GB.
        let mut huge = good.clone();
        huge[64 + 32..64 + 40].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert_eq!(id_of(&huge), None);
        let mut n = note(b"GNU\0", NT_GNU_BUILD_ID, &[7; 20]);
        n[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(id_of(&elf(&n, 1)), None);
        // Another owner's note, and an id of implausible length.
        assert_eq!(
            id_of(&elf(&note(b"Go\0\0", NT_GNU_BUILD_ID, &[7; 20]), 1)),
            None
        );
        assert_eq!(
            id_of(&elf(&note(b"GNU\0", NT_GNU_BUILD_ID, &[7; 4]), 1)),
            None
        );
    }

    /// A real executable's note is read: this test binary's, linked as the
    /// release binary is (Debian's toolchain passes `--build-id`; a linker
    /// that does not would leave poisonlens hashing the whole file, slower
    /// but as exact — this test says so if it happens).
    #[cfg(target_os = "linux")]
    #[test]
    fn the_running_executable_carries_a_gnu_build_id() {
        let f = File::open("/proc/self/exe").unwrap();
        let id = gnu_build_id(&f).expect("this linker wrote no .note.gnu.build-id");
        assert!(id.len() >= 8 && id.iter().any(|&b| b != 0));
    }

    /// The running test binary has an identity, the same on every call.
    #[test]
    fn the_running_build_has_one_identity() {
        let a = current().expect("an identity");
        assert_eq!(current().unwrap(), a);
        assert_ne!(a, [0; 32]);
    }
}
