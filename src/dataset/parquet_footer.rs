//! A check of a Parquet file's footer before polars reads it. The footer
//! is Thrift (compact protocol) metadata, and a reader that trusts the
//! element counts it declares reserves memory for them: fuzzing found a
//! 200-byte file whose footer declares a list of billions of row groups,
//! on which polars asks for 167 GB and the process is aborted (an
//! allocation failure cannot be caught). Here the footer is walked without
//! allocating: every list, set, map and string must fit in the bytes that
//! remain, nesting is bounded, and the walk must end exactly at the
//! footer's end — so whatever polars then reserves is bounded by the
//! footer's real size.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Error, Result};

/// Deepest nesting of structs and containers accepted (Parquet's own
/// metadata nests a handful of levels).
const MAX_DEPTH: usize = 64;

/// Largest footer read (Parquet writers keep metadata far smaller).
const MAX_FOOTER: u64 = 256 << 20;

/// Checks the footer of the Parquet file `f` (of `len` bytes).
pub fn check(path: &Path, f: &mut std::fs::File, len: u64) -> Result<()> {
    let bad = |m: String| Error::file(path, format!("not a valid Parquet file: {m}"));
    if len < 12 {
        return Err(bad(format!("{len} bytes is too short")));
    }
    let mut tail = [0u8; 8];
    f.seek(SeekFrom::End(-8))
        .and_then(|_| f.read_exact(&mut tail))
        .map_err(|e| Error::io(path, e))?;
    if &tail[4..] != b"PAR1" {
        return Err(bad("it does not end with 'PAR1'".into()));
    }
    let meta_len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if meta_len + 12 > len || meta_len > MAX_FOOTER {
        return Err(bad(format!(
            "its footer claims {meta_len} bytes in a file of {len}"
        )));
    }
    let mut meta = vec![0u8; meta_len as usize];
    f.seek(SeekFrom::End(-8 - meta_len as i64))
        .and_then(|_| f.read_exact(&mut meta))
        .map_err(|e| Error::io(path, e))?;
    f.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
    let mut w = Walker { b: &meta, at: 0 };
    w.value(STRUCT, 0)
        .map_err(|m| bad(format!("its footer metadata {m} (at byte {})", w.at)))?;
    if w.at != meta.len() {
        return Err(bad(format!(
            "its footer metadata ends at byte {} of {}",
            w.at,
            meta.len()
        )));
    }
    Ok(())
}

const BOOL_TRUE: u8 = 1;
const BOOL_FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;

/// A cursor over compact-protocol bytes that only skips.
struct Walker<'a> {
    b: &'a [u8],
    at: usize,
}

type Walk = std::result::Result<(), String>;

impl Walker<'_> {
    fn left(&self) -> usize {
        self.b.len() - self.at
    }

    fn byte(&mut self) -> std::result::Result<u8, String> {
        let v = *self.b.get(self.at).ok_or("is cut short")?;
        self.at += 1;
        Ok(v)
    }

    fn varint(&mut self) -> std::result::Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("has a number longer than 64 bits".into())
    }

    fn skip(&mut self, n: u64) -> Walk {
        if n > self.left() as u64 {
            return Err(format!("declares {n} bytes where {} remain", self.left()));
        }
        self.at += n as usize;
        Ok(())
    }

    /// A count of elements, each taking at least one byte.
    fn count(&mut self, n: u64) -> std::result::Result<u64, String> {
        if n > self.left() as u64 {
            return Err(format!(
                "declares {n} elements where {} bytes remain",
                self.left()
            ));
        }
        Ok(n)
    }

    /// Skips one value of compact type `t`.
    fn value(&mut self, t: u8, depth: usize) -> Walk {
        if depth > MAX_DEPTH {
            return Err(format!("nests deeper than {MAX_DEPTH} levels"));
        }
        match t {
            BOOL_TRUE | BOOL_FALSE | BYTE => self.skip(1),
            I16 | I32 | I64 => self.varint().map(|_| ()),
            DOUBLE => self.skip(8),
            BINARY => {
                let n = self.varint()?;
                self.skip(n)
            }
            LIST | SET => {
                let h = self.byte()?;
                let n = match h >> 4 {
                    15 => self.varint()?,
                    small => u64::from(small),
                };
                let n = self.count(n)?;
                let elem = h & 0x0f;
                for _ in 0..n {
                    // Booleans in a list take a byte each.
                    let t = if elem == BOOL_FALSE { BOOL_TRUE } else { elem };
                    self.value(t, depth + 1)?;
                }
                Ok(())
            }
            MAP => {
                let n = self.varint()?;
                if n == 0 {
                    return Ok(());
                }
                let n = self.count(n)?;
                let kv = self.byte()?;
                for _ in 0..n {
                    self.value(kv >> 4, depth + 1)?;
                    self.value(kv & 0x0f, depth + 1)?;
                }
                Ok(())
            }
            STRUCT => loop {
                let h = self.byte()?;
                if h == 0 {
                    return Ok(());
                }
                if h >> 4 == 0 {
                    self.varint()?; // the field id, written out in full
                }
                match h & 0x0f {
                    BOOL_TRUE | BOOL_FALSE => {} // the value is the type
                    t => self.value(t, depth + 1)?,
                }
            },
            other => Err(format!("has an unknown value type {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(b: &[u8]) -> Walk {
        let mut w = Walker { b, at: 0 };
        w.value(STRUCT, 0)?;
        if w.at == b.len() {
            Ok(())
        } else {
            Err("trailing bytes".into())
        }
    }

    #[test]
    fn accepts_well_formed_and_refuses_lying_counts() {
        // struct { 1: i32 = 5, 2: list<i64> [1, 2], 3: binary "ab" } STOP
        assert!(
            walk(&[
                0x15, 0x0a, 0x19, 0x26, 0x02, 0x04, 0x18, 0x02, b'a', b'b', 0x00
            ])
            .is_ok()
        );
        // A list declaring 2^33 elements in a dozen bytes.
        let e = walk(&[0x19, 0xf6, 0x80, 0x80, 0x80, 0x80, 0x20, 0x00]).unwrap_err();
        assert!(e.contains("elements"), "{e}");
        // A string longer than the rest.
        assert!(walk(&[0x18, 0x7f, b'a', 0x00]).is_err());
        // Nesting without end.
        assert!(walk(&[0x1c; 200]).is_err());
    }
}
