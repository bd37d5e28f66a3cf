//! Image files: any bytes decode or give an error — within the pixel limit,
//! never a panic or an allocation beyond it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = poisonlens::dataset::images::decode_bytes(Path::new("fuzz.img"), data);
});
