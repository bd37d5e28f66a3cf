//! `.npy` embeddings: any bytes give a matrix or an error, never a panic,
//! an allocation the file does not back, or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| poisonlens_fuzz::npy(data));
