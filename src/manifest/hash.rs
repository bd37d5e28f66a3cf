//! SHA-256 of files and of a dataset's identity: what binds a review to the
//! data it was made on and lets anyone re-check a cleaned manifest.

use sha2::{Digest, Sha256};

use crate::dataset::Dataset;
use crate::dataset::files::hex;
/// Hashing of bytes and regular files lives with the hostile-file readers
/// (the dataset layer needs it too, for model files).
pub use crate::dataset::files::{sha256_file, sha256_hex};
use crate::error::Result;

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
