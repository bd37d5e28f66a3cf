//! Speed and memory benchmark of a full scan on synthetic embeddings shaped
//! like real ones (class clusters plus a planted backdoor cluster and flips).
//! Run: `cargo run --release --no-default-features --example bench_scan [N D]…`
//! Default: 20000×64 and 70000×512. Prints seconds and peak RSS.

use std::time::Instant;

use poisonlens::dataset::Dataset;
use poisonlens::detect::{ScanOptions, scan};
use poisonlens::linalg::{Matrix, XorShift};

fn synthetic(n: usize, d: usize, classes: usize) -> Dataset {
    let mut rng = XorShift::new(0x2545_F491_4F6C_DD1D);
    let mut rnd = move || rng.uniform();
    let centres: Vec<Vec<f32>> = (0..classes + 1)
        .map(|_| (0..d).map(|_| rnd() * 4.0).collect())
        .collect();
    let mut labels = Vec::with_capacity(n);
    let mut data = Vec::with_capacity(n * d);
    for i in 0..n {
        let c = i % classes;
        // 3% backdoor: trigger centre, labelled 0; 3% flips.
        let (centre, label) = if i % 33 == 1 {
            (classes, 0)
        } else if i % 33 == 2 {
            (c, (c + 1) % classes)
        } else {
            (c, c)
        };
        labels.push(label as u32);
        for j in 0..d {
            let g: f32 = (0..4).map(|_| rnd()).sum::<f32>() - 2.0;
            data.push(centres[centre][j] + g);
        }
    }
    Dataset::in_memory(
        (0..n).map(|i| i.to_string()).collect(),
        labels,
        (0..classes).map(|c| format!("class{c}")).collect(),
        Matrix::new(n, d, data),
    )
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.to_string())
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes: Vec<(usize, usize)> = if args.len() >= 2 {
        args.chunks(2).map(|c| (c[0], c[1])).collect()
    } else {
        vec![(20_000, 64), (70_000, 512)]
    };
    for (n, d) in sizes {
        let ds = synthetic(n, d, 10);
        let before = peak_rss_mb();
        let mut best = f64::INFINITY;
        let mut flagged = 0;
        for _ in 0..3 {
            let t = Instant::now();
            let stages = std::sync::Mutex::new(Vec::<(String, f64)>::new());
            let r = scan(&ds, &ScanOptions::default(), &|stage, _| {
                let mut s = stages.lock().unwrap();
                if s.last()
                    .map(|l: &(String, f64)| l.0 != stage)
                    .unwrap_or(true)
                {
                    s.push((stage.to_string(), t.elapsed().as_secs_f64()));
                }
            })
            .expect("scan");
            if std::env::var_os("BENCH_STAGES").is_some() {
                eprintln!("{:?}", stages.lock().unwrap());
            }
            best = best.min(t.elapsed().as_secs_f64());
            flagged = r.flagged_count();
        }
        println!(
            "{n}x{d}: best of 3 = {best:.2} s, flagged {flagged}, embeddings {:.0} MB, peak RSS {:.0} MB (before scan {:.0} MB)",
            (n * d * 4) as f64 / 1e6,
            peak_rss_mb(),
            before
        );
    }
}
