//! Reading NumPy `.npy` embeddings. Written here (not via a crate) so that a
//! wrong dtype, shape or memory order gets an error that says exactly which,
//! instead of a generic parse failure.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::linalg::Matrix;

/// Reads a 2-D float32/float64 C-order `.npy` file into an N×D f32 matrix.
pub fn read_npy(path: &Path) -> Result<Matrix> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    parse_npy(path, &bytes)
}

/// Parses `.npy` bytes; `path` is used in messages only.
pub fn parse_npy(path: &Path, bytes: &[u8]) -> Result<Matrix> {
    let bad = |m: String| Error::file(path, m);
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a NumPy .npy file (magic bytes missing)".into()));
    }
    let major = bytes[6];
    let (hlen, hstart) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("truncated .npy header".into()));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(bad(format!("unsupported .npy format version {v}"))),
    };
    let header = bytes
        .get(hstart..hstart + hlen)
        .ok_or_else(|| bad("truncated .npy header".into()))?;
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
    let (rows, cols) = (dims[0], dims[1]);
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
    let data = &bytes[hstart + hlen..];
    let need = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(width))
        .ok_or_else(|| bad("shape too large".into()))?;
    if data.len() != need {
        return Err(bad(format!(
            "data holds {} bytes but shape ({rows}, {cols}) of {descr} needs {need}",
            data.len()
        )));
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

/// Writes an N×D float32 `.npy` file (used by tests and the sample-data tools).
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
    std::fs::write(path, out).map_err(|e| Error::io(path, e))
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
