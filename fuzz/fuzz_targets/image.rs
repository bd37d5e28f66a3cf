//! Image files: any bytes decode or give an error — within the pixel limit,
//! never a panic or an allocation beyond it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quiet_caught_panics();
    poisonlens_fuzz::image(data);
});

/// poisonlens turns a panic inside a third-party parser into an error
/// (`files::without_panics`), and its own hook keeps such panics quiet — but
/// only on the calling thread; polars panics on its worker threads too,
/// where libfuzzer-sys's hook would abort before the panic reaches the
/// caller. A panic nobody catches still reaches libfuzzer-sys and is a crash.
fn quiet_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}
