//! SHA-256 of files and of a dataset's identity: what binds a review to the
//! data it was made on and lets anyone re-check a cleaned manifest.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::dataset::{Dataset, files};
use crate::error::{Error, Result};

/// Lower-case hex SHA-256 of a byte string.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex SHA-256 of a regular file's bytes, streamed (files can be
/// large); a FIFO or device is refused, never read.
pub fn sha256_file(path: &Path) -> Result<String> {
    let (mut f, _) = files::open_regular(path)?;
    let mut h = Sha256::new();
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

/// The dataset's identity: the manifest file's SHA-256, or for an ImageFolder
/// (which has no manifest) the SHA-256 of its sorted `id<TAB>label` list.
/// A review stores it so reopening can tell when the data changed under it.
pub fn dataset_fingerprint(ds: &Dataset) -> Result<String> {
    if let Some(m) = &ds.manifest {
        return sha256_file(m);
    }
    let mut h = Sha256::new();
    for (i, id) in ds.ids.iter().enumerate() {
        h.update(id.as_bytes());
        h.update(b"\t");
        h.update(ds.label_name(i).as_bytes());
        h.update(b"\n");
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
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
    fn known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
