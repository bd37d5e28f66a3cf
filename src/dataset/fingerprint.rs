//! A dataset's identity (its fingerprint): what binds a review and a stored
//! scan to the data they were made on. It lives with the dataset, below the
//! review and the manifest that both use it.

use sha2::{Digest, Sha256};

use crate::dataset::Dataset;
use crate::dataset::files::{hex, sha256_file};
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
    use crate::dataset::files::sha256_hex;

    #[test]
    fn known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
