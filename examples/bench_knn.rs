//! Times the neighbour search alone (the scan's most expensive step).
//! Run: `cargo run --release --no-default-features --example bench_knn [N D K | FILE.npy K]`
//! (synthetic uniform data, a worst case for the inverted file, or real embeddings).

use std::time::Instant;

use poisonlens::knn::{knn_exact, knn_ivf};
use poisonlens::linalg::{Matrix, XorShift};

fn main() {
    if let Some(path) = std::env::args().nth(1).filter(|a| a.ends_with(".npy")) {
        let x = poisonlens::dataset::npy::read_npy(std::path::Path::new(&path)).expect("read .npy");
        let k = std::env::args()
            .nth(2)
            .and_then(|v| v.parse().ok())
            .unwrap_or(40);
        return compare(&x, k);
    }
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let (n, d, k) = (
        a.first().copied().unwrap_or(20_000),
        a.get(1).copied().unwrap_or(64),
        a.get(2).copied().unwrap_or(40),
    );
    let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15);
    let data: Vec<f32> = (0..n * d).map(|_| rng.uniform()).collect();
    compare(&Matrix::new(n, d, data), k);
}

fn compare(x: &Matrix, k: usize) {
    let (n, d) = (x.rows, x.cols);
    let t = Instant::now();
    let exact = knn_exact(x, k);
    println!("{n}x{d} k={k} exact: {:.3} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let ivf = knn_ivf(x, k);
    println!(
        "{n}x{d} k={k} inverted file: {:.3} s",
        t.elapsed().as_secs_f64()
    );
    let mut hits = 0;
    for i in 0..n {
        let truth = exact.of(i);
        hits += ivf.of(i).iter().filter(|j| truth.contains(j)).count();
    }
    println!(
        "recall of the exact neighbours: {:.3}",
        hits as f64 / (n * k) as f64
    );
}
