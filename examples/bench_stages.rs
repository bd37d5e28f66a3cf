//! Where a whole scan of a real dataset spends its time: opens DATASET as
//! `poisonlens scan` does (manifest, embeddings, images), scans it with
//! images and prints when each stage began, then the total.
//! Run: `cargo run --release --no-default-features --example bench_stages DATASET`

mod common;

use std::path::PathBuf;
use std::time::Instant;

use poisonlens::dataset::{Dataset, OpenOptions};
use poisonlens::detect::{ScanOptions, scan};

fn main() {
    let Some(path) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: bench_stages DATASET");
        std::process::exit(2);
    };
    let t = Instant::now();
    let ds = Dataset::open(&path, &OpenOptions { embeddings: None }).expect("dataset opens");
    let opened = t.elapsed().as_secs_f64();
    let stages = std::sync::Mutex::new(Vec::<(String, f64)>::new());
    let opts = ScanOptions {
        use_images: true,
        ..ScanOptions::default()
    };
    let r = scan(&ds, &opts, &|stage, _| {
        let mut s = stages.lock().unwrap();
        if s.last().is_none_or(|l| l.0 != stage) {
            s.push((stage.to_string(), t.elapsed().as_secs_f64()));
        }
    })
    .expect("scan");
    let total = t.elapsed().as_secs_f64();
    println!("{:>7.2} s  opened ({} samples)", opened, ds.len());
    let s = stages.into_inner().unwrap();
    for (k, (stage, at)) in s.iter().enumerate() {
        let end = s.get(k + 1).map_or(total, |n| n.1);
        println!("{at:>7.2} s  {stage} ({:.2} s)", end - at);
    }
    println!(
        "{total:>7.2} s  done: {} flagged, peak RSS {:.0} MB",
        r.flagged_count(),
        common::peak_rss_mb()
    );
}
