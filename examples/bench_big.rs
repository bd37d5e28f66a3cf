//! The big-data benchmark (issue #11): generates N × D embeddings shaped
//! like a model's (10 classes, each a few sub-styles on a 16-dimensional
//! manifold mapped non-linearly into D dimensions, plus noise; 3% planted
//! backdoor, 3% flips), runs the whole scan on them as the workbench and
//! `scan` do, and reports its time, the process's peak memory, and the
//! neighbour search's recall against exact search on sample queries.
//!
//! Run: `cargo run --release --no-default-features --example bench_big [N D]…`
//! (default 1,000,000 × 64). `BENCH_STAGES=1` prints when each stage began.

mod common;

use std::time::Instant;

use common::peak_rss_mb;

use poisonlens::dataset::Dataset;
use poisonlens::detect::{ScanOptions, scan};
use poisonlens::knn::{knn, knn_exact};
use poisonlens::linalg::{Matrix, XorShift};

const LATENT: usize = 16;
const CLASSES: usize = 10;
const STYLES: usize = 4;

/// Embeddings with the low intrinsic dimension real ones have (isotropic
/// noise in all D dimensions would be a worst case no model produces).
fn synthetic(n: usize, d: usize) -> Dataset {
    let mut rng = XorShift::new(0x5DEE_CE66_D1CE_4E5B);
    let map: Vec<f32> = (0..d * LATENT)
        .map(|_| rng.normal() / (LATENT as f32).sqrt())
        .collect();
    let centre = |rng: &mut XorShift, scale: f32| -> Vec<f32> {
        (0..LATENT).map(|_| rng.normal() * scale).collect()
    };
    let classes: Vec<Vec<f32>> = (0..CLASSES + 1).map(|_| centre(&mut rng, 3.0)).collect();
    let styles: Vec<Vec<f32>> = (0..(CLASSES + 1) * STYLES)
        .map(|_| centre(&mut rng, 1.2))
        .collect();
    let mut labels = Vec::with_capacity(n);
    let mut data = Vec::with_capacity(n * d);
    let mut z = vec![0f32; LATENT];
    for i in 0..n {
        let c = i % CLASSES;
        // 3% backdoor (its own cluster, labelled 0), 3% flips.
        let (source, label) = match i % 33 {
            1 => (CLASSES, 0),
            2 => (c, (c + 1) % CLASSES),
            _ => (c, c),
        };
        labels.push(label as u32);
        let style = &styles[source * STYLES + (i / CLASSES) % STYLES];
        for (j, v) in z.iter_mut().enumerate() {
            *v = classes[source][j] + style[j] + 0.6 * rng.normal();
        }
        for r in 0..d {
            let row = &map[r * LATENT..(r + 1) * LATENT];
            let lin: f32 = row.iter().zip(&z).map(|(a, b)| a * b).sum();
            data.push((0.3 * lin).tanh() * 3.0 + 0.05 * rng.normal());
        }
    }
    common::in_memory(n, d, CLASSES, labels, data)
}

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
    let ds = synthetic(n, d);
    println!(
        "{n}x{d}: generated in {:.1} s ({:.0} MB of embeddings, peak RSS {:.0} MB)",
        t.elapsed().as_secs_f64(),
        (n * d * 4) as f64 / 1e6,
        peak_rss_mb()
    );
    if std::env::var_os("BENCH_KNN_ONLY").is_some() {
        let x = ds.embeddings.as_ref().expect("embeddings");
        let (r, secs) = recall(x, 40, 1000);
        println!("neighbour search alone {secs:.1} s; recall {r:.3}");
        return;
    }
    let t = Instant::now();
    let stages = std::sync::Mutex::new(Vec::<(String, f64)>::new());
    let report = scan(&ds, &ScanOptions::default(), &|stage, _| {
        let mut s = stages.lock().unwrap();
        if s.last().is_none_or(|l| l.0 != stage) {
            s.push((stage.to_string(), t.elapsed().as_secs_f64()));
        }
    })
    .expect("scan");
    let scan_secs = t.elapsed().as_secs_f64();
    if std::env::var_os("BENCH_STAGES").is_some() {
        for (s, at) in stages.lock().unwrap().iter() {
            eprintln!("  {at:>7.2} s  {s}");
        }
    }
    println!(
        "{n}x{d}: whole scan {scan_secs:.1} s, flagged {}, peak RSS {:.0} MB (embeddings {:.0} MB)",
        report.flagged_count(),
        peak_rss_mb(),
        (n * d * 4) as f64 / 1e6
    );
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
