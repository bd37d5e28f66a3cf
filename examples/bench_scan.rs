//! Speed and memory benchmark of a full scan on synthetic embeddings shaped
//! like real ones (class clusters plus a planted backdoor cluster and flips).
//! Run: `cargo run --release --no-default-features --example bench_scan [N D]…`
//! Default: 20000×64 and 70000×512. Prints seconds and peak RSS.

mod common;

use common::peak_rss_mb;

use poisonlens::dataset::Dataset;
use poisonlens::detect::{ScanOptions, scan};
use poisonlens::linalg::XorShift;

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
        for &c in &centres[centre][..d] {
            let g: f32 = (0..4).map(|_| rnd()).sum::<f32>() - 2.0;
            data.push(c + g);
        }
    }
    common::in_memory(n, d, classes, labels, data)
}

fn main() {
    let sizes = common::sizes_from_args(&[(20_000, 64), (70_000, 512)]);
    for (n, d) in sizes {
        let ds = synthetic(n, d, 10);
        let before = peak_rss_mb();
        let mut best = f64::INFINITY;
        let mut flagged = 0;
        for _ in 0..3 {
            let stages = common::Stages::start();
            let r = scan(&ds, &ScanOptions::default(), &|stage, _| {
                stages.record(stage)
            })
            .expect("scan");
            if std::env::var_os("BENCH_STAGES").is_some() {
                stages.print(stages.elapsed());
            }
            best = best.min(stages.elapsed());
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
