//! The big-data benchmark (issue #11): generates N × D embeddings shaped
//! like a model's (10 classes, each a few sub-styles on a 16-dimensional
//! manifold mapped non-linearly into D dimensions, plus noise; 3% planted
//! backdoor, 3% flips), runs the whole scan on them as the workbench and
//! `scan` do, and reports its time, the process's peak memory, and the
//! neighbour search's recall against exact search on sample queries.
//!
//! Run: `cargo run --release --no-default-features --example bench_big [N D]…`
//! (default 1,000,000 × 64). `BENCH_STAGES=1` prints when each stage began
//! and the peak memory by then; `BENCH_WRITE=DIR` only writes the dataset
//! to DIR (`manifest.csv`, `embeddings.npy`), for timing the whole
//! `poisonlens scan DIR` process on it.

mod common;

use std::time::Instant;

use common::peak_rss_mb;

use poisonlens::detect::{ScanOptions, scan};
use poisonlens::knn::{knn, knn_exact};
use poisonlens::linalg::Matrix;

/// Recall of `knn` against exact search on `m` evenly spaced queries.
fn recall(x: &Matrix, k: usize, m: usize) -> (f64, f64) {
    let t = Instant::now();
    let approx = knn(x, k);
    let secs = t.elapsed().as_secs_f64();
    let queries = poisonlens::knn::sample_rows(x.rows, m);
    // Exact neighbours of the queries: search the queries' rows against all
    // rows by brute force, one query at a time (m is small).
    let mut hits = 0;
    for &q in &queries {
        let mut d: Vec<(f32, u32)> = (0..x.rows)
            .filter(|&j| j != q)
            .map(|j| {
                let s: f32 = x
                    .row(q)
                    .iter()
                    .zip(x.row(j))
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                (s, j as u32)
            })
            .collect();
        d.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let truth: Vec<u32> = d[..k].iter().map(|e| e.1).collect();
        hits += approx.of(q).iter().filter(|j| truth.contains(j)).count();
    }
    (hits as f64 / (m * k) as f64, secs)
}

fn main() {
    let sizes = common::sizes_from_args(&[(1_000_000, 64)]);
    // Only one size per process gives a meaningful peak memory.
    let (n, d) = sizes[0];
    let t = Instant::now();
    let ds = common::synthetic(n, d);
    println!(
        "{n}x{d}: generated in {:.1} s ({:.0} MB of embeddings, peak RSS {:.0} MB)",
        t.elapsed().as_secs_f64(),
        (n * d * 4) as f64 / 1e6,
        peak_rss_mb()
    );
    if let Some(dir) = std::env::var_os("BENCH_WRITE") {
        common::write_to_disk(&ds, std::path::Path::new(&dir)).expect("write the dataset");
        println!("wrote it to {}", dir.to_string_lossy());
        return;
    }
    if std::env::var_os("BENCH_KNN_ONLY").is_some() {
        let x = ds.embeddings.as_ref().expect("embeddings");
        let (r, secs) = recall(x, 40, 1000);
        println!("neighbour search alone {secs:.1} s; recall {r:.3}");
        return;
    }
    let stages = common::Stages::start();
    let report = scan(&ds, &ScanOptions::default(), &|stage, _| {
        stages.record(stage)
    })
    .expect("scan");
    let scan_secs = stages.elapsed();
    if std::env::var_os("BENCH_STAGES").is_some() {
        stages.print(scan_secs);
    }
    println!(
        "{n}x{d}: whole scan {scan_secs:.1} s, flagged {}, peak RSS {:.0} MB (embeddings {:.0} MB)",
        report.flagged_count(),
        peak_rss_mb(),
        (n * d * 4) as f64 / 1e6
    );
    for d in &report.detectors {
        println!(
            "  {}: {} flagged",
            d.name,
            d.flagged.iter().filter(|&&f| f).count()
        );
    }
    let features = report.features.clone();
    drop(report);
    drop(ds);
    if features.rows <= 20_000 {
        let exact = knn_exact(&features, 40);
        let approx = knn(&features, 40);
        let hits: usize = (0..features.rows)
            .map(|i| {
                approx
                    .of(i)
                    .iter()
                    .filter(|j| exact.of(i).contains(j))
                    .count()
            })
            .sum();
        println!(
            "neighbour recall (all queries): {:.3}",
            hits as f64 / (features.rows * 40) as f64
        );
    } else {
        let (r, secs) = recall(&features, 40, 1000);
        println!(
            "neighbour search alone {secs:.1} s; recall of the exact 40 neighbours on 1,000 random queries: {r:.3}"
        );
    }
}
