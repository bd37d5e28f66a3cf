//! How fast durable review is: the latency of one decision committed to the
//! store (fsync'd, as the window does before showing it), a batch, reopening
//! a long history, and a signed export + verify of a dataset.
//!
//! `cargo run --release --no-default-features --example bench_review [DATASET]`
//! (default: the bundled sample). Works on a copy in a temporary folder next
//! to `target/`, so the disk is the project's.

use std::path::{Path, PathBuf};
use std::time::Instant;

use poisonlens::Dataset;
use poisonlens::manifest::{export, sign, verify};
use poisonlens::review::{Decision, ReviewSession};

fn main() {
    let src = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sample_data"));
    let tmp = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("temp dir");
    let data = tmp.path().join("data");
    copy_dir(&src, &data);
    let _ = std::fs::remove_file(data.join("manifest.review.sqlite"));
    let ds = Dataset::open(&data, &Default::default()).expect("open");
    let n = ds.len();
    println!(
        "dataset {} ({n} samples), store on {}",
        src.display(),
        tmp.path().display()
    );

    let mut s = ReviewSession::open(&ds, None).expect("session");
    let singles = 1000.min(n);
    let mut lat = Vec::with_capacity(singles);
    for i in 0..singles {
        let t = Instant::now();
        s.decide(&[(i, Decision::Exclude)], "bench", "bench")
            .expect("decide");
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    let mean = lat.iter().sum::<f64>() / lat.len() as f64;
    println!(
        "one decision, committed: mean {mean:.2} ms, median {:.2} ms, p99 {:.2} ms ({singles} decisions)",
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100]
    );
    let all: Vec<(usize, Decision)> = (0..n).map(|i| (i, Decision::Keep)).collect();
    let t = Instant::now();
    s.decide(&all, "bench", "bench").expect("batch");
    println!(
        "batch of {n} decisions: {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    s.undo("bench").expect("undo");
    drop(s);

    let t = Instant::now();
    let s = ReviewSession::open(&ds, None).expect("reopen");
    println!(
        "reopen with {} steps of history: {:.0} ms",
        s.history().expect("history").len(),
        t.elapsed().as_secs_f64() * 1e3
    );

    let key = sign::keygen(&tmp.path().join("key"), "bench", None).expect("keygen");
    let pk = sign::load_private_key(&key.private, &mut || Ok(None)).expect("key");
    let out = tmp.path().join("export");
    let t = Instant::now();
    let done = export::export(
        &ds,
        s.review(),
        s.fingerprint(),
        &out,
        Some(export::Signer {
            key: &pk,
            identity: "bench",
        }),
        None,
        &|_| {},
    )
    .expect("export");
    println!(
        "signed export ({} kept files hashed): {:.0} ms",
        done.record.kept.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let allowed = tmp.path().join("allowed");
    std::fs::write(&allowed, format!("{}\n", key.allowed_signers_line)).expect("write");
    let t = Instant::now();
    let v = verify::verify(
        &out,
        &verify::VerifyOptions {
            allowed_signers: Some(allowed),
            ..Default::default()
        },
    );
    assert!(v.ok(), "{:?}", v.problems);
    println!("verify: {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}
