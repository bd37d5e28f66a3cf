//! Prints precision / recall / F1 / FPR of `poisonlens scan` on every dataset
//! folder given (default: ../shared/devsets/* and sample_data), for the README's
//! quality table. Run: `cargo run --release --example evaluate [DIR…]`.

use std::path::PathBuf;
use std::time::Instant;

use poisonlens::dataset::{Dataset, OpenOptions};
use poisonlens::detect::{ScanOptions, scan};
use poisonlens::eval::{read_truth, report_quality};

fn main() -> anyhow::Result<()> {
    let mut dirs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        for name in ["badnets", "blend", "flip", "clean"] {
            dirs.push(PathBuf::from("../shared/devsets").join(name));
        }
        dirs.push(PathBuf::from("sample_data"));
    }
    println!("| dataset | detector | flagged | precision | recall | F1 | FPR | seconds |");
    println!("|---|---|---|---|---|---|---|---|");
    for dir in dirs {
        let ds = Dataset::open(&dir, &OpenOptions::default())?;
        let truth = read_truth(&dir.join("truth.csv"))?;
        let t = Instant::now();
        let r = scan(&ds, &ScanOptions::default(), &|_, _| {})?;
        let secs = t.elapsed().as_secs_f64();
        let name = dir
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        for (det, q) in report_quality(&r, &truth) {
            let fmt = |v: f64| {
                if v.is_nan() {
                    "n/a".to_string()
                } else {
                    format!("{v:.3}")
                }
            };
            println!(
                "| {name} | {det} | {} | {} | {} | {} | {:.4} | {} |",
                q.flagged,
                fmt(q.precision()),
                fmt(q.recall()),
                if q.poisoned == 0 {
                    "n/a".into()
                } else {
                    format!("{:.3}", q.f1())
                },
                q.fpr(),
                if det == "combined" {
                    format!("{secs:.2}")
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}
