//! What `verify` reads before trusting anything: the signature, the
//! allowed-signers file and the record. The input is split at its first
//! 0xFF byte into signature/signers text and record bytes; every parser
//! answers with a value or an error, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use poisonlens::manifest::{allowed_signers, record::Record, sign};

fuzz_target!(|data: &[u8]| {
    let (text, record) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(text);
    let list = allowed_signers::parse(&text);
    let _ = sign::verify(record, &text);
    if let Ok(r) = serde_json::from_slice::<Record>(record) {
        let _ = r.kept.len();
    }
    if let Some(s) = list.signers.first() {
        let _ = list.check("ana@example.org", sign::NAMESPACE, &s.key, 1_700_000_000);
    }
});
