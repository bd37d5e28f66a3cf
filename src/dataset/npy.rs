//! Reading NumPy `.npy` embeddings. Written here (not via a crate) so that a
//! wrong dtype, shape or memory order gets an error that says exactly which,
//! instead of a generic parse failure.

use std::io::Read;
use std::path::Path;

use super::files;
use crate::error::{Error, Result};
use crate::linalg::Matrix;

/// Longest `.npy` header read (NumPy writes a few hundred bytes).
const MAX_HEADER: usize = 1 << 16;

/// Reads a 2-D float32/float64 C-order `.npy` file into an N×D f32 matrix.
/// Only a regular file is read, and only as many bytes as its own header
/// announces: a wrong magic, an oversized header or a size that disagrees
/// with the shape is refused before the data is read.
pub fn read_npy(path: &Path) -> Result<Matrix> {
    let (f, len) = files::open_regular(path)?;
    let mut f = std::io::BufReader::new(f);
    let mut head = vec![0u8; 12.min(len as usize)];
    f.read_exact(&mut head).map_err(|e| Error::io(path, e))?;
    let (hlen, hstart) = header_span(path, &head)?;
    if hlen > MAX_HEADER {
        return Err(Error::file(
            path,
            format!(
                "header of {hlen} bytes is larger than a .npy header can sensibly be ({MAX_HEADER})"
            ),
        ));
    }
    let header_end = (hstart + hlen) as u64;
    if header_end > len {
        return Err(Error::file(path, "truncated .npy header"));
    }
    let mut bytes = head;
    bytes.resize(hstart + hlen, 0);
    f.read_exact(&mut bytes[12.min(hstart + hlen)..])
        .map_err(|e| Error::io(path, e))?;
    let (rows, cols, width) = parse_header(path, &bytes[hstart..])?;
    let need = data_bytes(path, rows, cols, width)?;
    if len - header_end != need as u64 {
        return Err(size_mismatch(path, len - header_end, rows, cols, need));
    }
    bytes.reserve_exact(need);
    f.take(need as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    parse_npy(path, &bytes)
}

/// Parses `.npy` bytes; `path` is used in messages only.
pub fn parse_npy(path: &Path, bytes: &[u8]) -> Result<Matrix> {
    let (hlen, hstart) = header_span(path, bytes)?;
    let header = bytes
        .get(hstart..hstart + hlen)
        .ok_or_else(|| Error::file(path, "truncated .npy header"))?;
    let (rows, cols, width) = parse_header(path, header)?;
    let data = &bytes[hstart + hlen..];
    let need = data_bytes(path, rows, cols, width)?;
    if data.len() != need {
        return Err(size_mismatch(path, data.len() as u64, rows, cols, need));
    }
    let values: Vec<f32> = if width == 4 {
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        data.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
            .collect()
    };
    Ok(Matrix::new(rows, cols, values))
}

/// The header's length and where it starts, from the magic and version.
fn header_span(path: &Path, bytes: &[u8]) -> Result<(usize, usize)> {
    let bad = |m: &str| Error::file(path, m.to_string());
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a NumPy .npy file (magic bytes missing)"));
    }
    match bytes[6] {
        1 => Ok((u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)),
        2 | 3 if bytes.len() >= 12 => Ok((
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )),
        2 | 3 => Err(bad("truncated .npy header")),
        v => Err(bad(&format!("unsupported .npy format version {v}"))),
    }
}

/// Rows, columns and bytes per value from the header text; refuses what
/// poisonlens cannot use (other dtypes, Fortran order, not 2-D, no columns).
fn parse_header(path: &Path, header: &[u8]) -> Result<(usize, usize, usize)> {
    let bad = |m: String| Error::file(path, m);
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text".into()))?;
    let descr = dict_value(header, "descr").ok_or_else(|| bad("header has no 'descr'".into()))?;
    let fortran = dict_value(header, "fortran_order")
        .ok_or_else(|| bad("header has no 'fortran_order'".into()))?;
    let shape = dict_value(header, "shape").ok_or_else(|| bad("header has no 'shape'".into()))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    if fortran.trim() != "False" {
        return Err(bad(
            "array is in Fortran (column-major) order; save it in C order (np.ascontiguousarray)"
                .into(),
        ));
    }
    let dims: Vec<usize> = shape
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad(format!("cannot read shape {shape}")))?;
    if dims.len() != 2 {
        return Err(bad(format!(
            "embeddings must be 2-D (N×D), this array has shape {shape}"
        )));
    }
    if dims[1] == 0 {
        return Err(bad(format!(
            "embeddings have shape {shape}: zero dimensions per sample"
        )));
    }
    let width = match descr {
        "<f4" | "=f4" | "|f4" => 4,
        "<f8" | "=f8" | "|f8" => 8,
        ">f4" | ">f8" => {
            return Err(bad(format!(
                "big-endian dtype '{descr}' is not supported; use little-endian float32"
            )));
        }
        other => {
            return Err(bad(format!(
                "dtype '{other}' is not supported; embeddings must be float32 or float64"
            )));
        }
    };
    Ok((dims[0], dims[1], width))
}

/// Bytes the data of a `rows`×`cols` array of `width`-byte values takes.
fn data_bytes(path: &Path, rows: usize, cols: usize, width: usize) -> Result<usize> {
    rows.checked_mul(cols)
        .and_then(|n| n.checked_mul(width))
        .ok_or_else(|| Error::file(path, "shape too large"))
}

fn size_mismatch(path: &Path, have: u64, rows: usize, cols: usize, need: usize) -> Error {
    Error::file(
        path,
        format!("data holds {have} bytes but shape ({rows}, {cols}) needs {need}"),
    )
}

/// Writes an N×D float32 `.npy` file (`poisonlens embed`, tests). Written
/// beside it first and renamed into place, so an earlier file is never half
/// overwritten and a FIFO at `path` is replaced, never written into.
pub fn write_npy(path: &Path, m: &Matrix) -> Result<()> {
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        m.rows, m.cols
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + m.data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in &m.data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, out).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let k1 = format!("'{key}'");
    let start = header.find(&k1)? + k1.len();
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find(',').unwrap_or(rest.len())
    };
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.npy");
        let m = Matrix::new(2, 3, vec![1., 2., 3., 4., 5., 6.]);
        write_npy(&p, &m).unwrap();
        let r = read_npy(&p).unwrap();
        assert_eq!((r.rows, r.cols), (2, 3));
        assert_eq!(r.data, m.data);
    }

    #[test]
    fn rejects_wrong_dtype_order_shape() {
        let p = Path::new("x.npy");
        let mk = |h: &str, data: &[u8]| {
            let mut b = b"\x93NUMPY\x01\x00".to_vec();
            b.extend_from_slice(&(h.len() as u16).to_le_bytes());
            b.extend_from_slice(h.as_bytes());
            b.extend_from_slice(data);
            b
        };
        let e = parse_npy(
            p,
            &mk(
                "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 1), }",
                &[0; 8],
            ),
        )
        .unwrap_err();
        assert!(e.to_string().contains("float32 or float64"), "{e}");
        let e = parse_npy(
            p,
            &mk(
                "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 1), }",
                &[0; 4],
            ),
        )
        .unwrap_err();
        assert!(e.to_string().contains("Fortran"), "{e}");
        let e = parse_npy(
            p,
            &mk(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
                &[0; 16],
            ),
        )
        .unwrap_err();
        assert!(e.to_string().contains("2-D"), "{e}");
        let e = parse_npy(
            p,
            &mk(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
                &[0; 8],
            ),
        )
        .unwrap_err();
        assert!(e.to_string().contains("needs 16"), "{e}");
    }
}
