//! Helpers the benchmark examples share.
#![allow(dead_code)]

use poisonlens::dataset::Dataset;
use poisonlens::linalg::Matrix;

/// Peak resident memory of this process so far (VmHWM), in MB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// An in-memory dataset of `n` rows, ids `0…n-1`, classes `class0…`.
pub fn in_memory(n: usize, d: usize, classes: usize, labels: Vec<u32>, data: Vec<f32>) -> Dataset {
    Dataset::in_memory(
        (0..n).map(|i| i.to_string()).collect(),
        labels,
        (0..classes).map(|c| format!("class{c}")).collect(),
        Matrix::new(n, d, data),
    )
}

/// `N D` pairs from the command line, else `default`.
pub fn sizes_from_args(default: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if args.len() >= 2 {
        args.chunks(2).map(|c| (c[0], c[1])).collect()
    } else {
        default.to_vec()
    }
}
