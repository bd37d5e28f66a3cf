//! Where a whole scan of a real dataset spends its time: opens DATASET as
//! `poisonlens scan` does (manifest, embeddings, images), scans it with
//! images and prints when each stage began, then the total.
//! Run: `cargo run --release --no-default-features --example bench_stages DATASET`

mod common;

use std::path::PathBuf;

use poisonlens::dataset::{Dataset, OpenOptions};
use poisonlens::detect::{ScanOptions, scan};

fn main() {
    let Some(path) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: bench_stages DATASET");
        std::process::exit(2);
    };
    let stages = common::Stages::start();
    let ds = Dataset::open(&path, &OpenOptions { embeddings: None }).expect("dataset opens");
    let opened = stages.elapsed();
    let opts = ScanOptions {
        use_images: true,
        ..ScanOptions::default()
    };
    let r = scan(&ds, &opts, &|stage, _| stages.record(stage)).expect("scan");
    let total = stages.elapsed();
    println!("{:>7.2} s  opened ({} samples)", opened, ds.len());
    stages.print(total);
    println!(
        "{total:>7.2} s  done: {} flagged, peak RSS {:.0} MB",
        r.flagged_count(),
        common::peak_rss_mb()
    );
}
