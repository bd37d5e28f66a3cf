//! Manifests: any CSV (or, when the bytes start with `PAR1`, Parquet) opens
//! as a dataset or gives an error naming the file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// One private folder per fuzzing process, in memory when /dev/shm exists.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("poisonlens-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("fuzz folder");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    quiet_caught_panics();
    poisonlens_fuzz::manifest(dir(), data);
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
