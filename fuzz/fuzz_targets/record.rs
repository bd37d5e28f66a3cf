//! What `verify` reads before trusting anything: the signature, the
//! allowed-signers file and the record (see `poisonlens_fuzz::record`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| poisonlens_fuzz::record(data));
