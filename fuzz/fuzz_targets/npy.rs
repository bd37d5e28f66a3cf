//! `.npy` embeddings: any bytes give a matrix or an error, never a panic,
//! an allocation the file does not back, or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = poisonlens::dataset::npy::parse_npy(Path::new("fuzz.npy"), data);
});
