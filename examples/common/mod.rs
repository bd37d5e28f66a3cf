//! Helpers the benchmark examples share.
#![allow(dead_code)]

use poisonlens::dataset::Dataset;
use poisonlens::linalg::{Matrix, XorShift};

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

/// When each stage of a scan began, in seconds since the clock started,
/// and the process's peak memory by then (so the stage that set the peak
/// is the one before the jump): `record` is what the scan's progress
/// callback calls.
pub struct Stages {
    start: std::time::Instant,
    seen: std::sync::Mutex<Vec<Stage>>,
}

/// One stage noted by [`Stages`].
#[derive(Clone)]
pub struct Stage {
    /// The scan's name for it.
    pub name: String,
    /// Seconds since the clock started when it began.
    pub at: f64,
    /// Peak resident memory (MB) of the process when it began.
    pub peak_mb: f64,
}

impl Stages {
    /// A clock starting now.
    pub fn start() -> Self {
        Stages {
            start: std::time::Instant::now(),
            seen: Default::default(),
        }
    }
    /// Notes `stage` when it differs from the last one noted.
    pub fn record(&self, stage: &str) {
        let mut s = self.seen.lock().unwrap();
        if s.last().is_none_or(|l| l.name != stage) {
            s.push(Stage {
                name: stage.to_string(),
                at: self.start.elapsed().as_secs_f64(),
                peak_mb: peak_rss_mb(),
            });
        }
    }
    /// Seconds since the clock started.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
    /// The stages noted, in order.
    pub fn seen(&self) -> Vec<Stage> {
        self.seen.lock().unwrap().clone()
    }
    /// Prints each stage noted: when it began, how long it took (until the
    /// next one, or `end` seconds for the last) and the peak memory when
    /// it began.
    pub fn print(&self, end: f64) {
        let s = self.seen();
        for (k, stage) in s.iter().enumerate() {
            let until = s.get(k + 1).map_or(end, |n| n.at);
            println!(
                "{:>7.2} s  {} ({:.2} s; peak {:.0} MB when it began)",
                stage.at,
                stage.name,
                until - stage.at,
                stage.peak_mb
            );
        }
    }
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

const LATENT: usize = 16;
const CLASSES: usize = 10;
const STYLES: usize = 4;

/// Embeddings with the low intrinsic dimension real ones have (isotropic
/// noise in all D dimensions would be a worst case no model produces).
pub fn synthetic(n: usize, d: usize) -> Dataset {
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
    in_memory(n, d, CLASSES, labels, data)
}

/// Writes `ds` as a user would have it: `embeddings.npy` and a
/// `manifest.csv` (id, label, a metadata column) in `dir`.
pub fn write_to_disk(ds: &Dataset, dir: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let m = ds.embeddings.as_ref().expect("embeddings");
    poisonlens::dataset::npy::write_npy(&dir.join("embeddings.npy"), m)
        .map_err(std::io::Error::other)?;
    let mut csv = std::io::BufWriter::new(std::fs::File::create(dir.join("manifest.csv"))?);
    writeln!(csv, "id,label,source")?;
    for (id, &l) in ds.ids.iter().zip(&ds.labels) {
        writeln!(csv, "{id},{},gen", ds.classes[l as usize])?;
    }
    csv.flush()
}
