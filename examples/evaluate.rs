//! Prints precision / recall / F1 / FPR of `poisonlens scan` on every dataset
//! folder given (default: ../shared/devsets/* and sample_data), for the README's
//! quality table. Run: `cargo run --release --example evaluate [DIR…]`.

use std::path::PathBuf;
use std::time::Instant;

use poisonlens::dataset::{Dataset, OpenOptions};
use poisonlens::detect::{ScanOptions, scan};
use poisonlens::eval::{iou, quality, read_truth, report_quality, true_trigger_box};

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
        let without = quality(&r.ids, &r.flagged_without("trigger"), &truth);
        let with = quality(&r.ids, &r.flagged, &truth);
        eprintln!(
            "{name}: recall {:.3} with the trigger detector, {:.3} without; flagged {} with, {} without",
            with.recall(),
            without.recall(),
            with.flagged,
            without.flagged
        );
        for t in &r.triggers {
            let iou = match (t.bbox, true_trigger_box(&dir)) {
                (Some(b), Some(tb)) => format!("IoU {:.2} with the true patch {tb:?}", iou(b, tb)),
                (Some(_), None) => "no true box known".into(),
                (None, _) => "no box (blend)".into(),
            };
            eprintln!(
                "{name}: trigger in '{}': {:?} box {:?}, {} carriers; {iou}; {}",
                r.class_names[t.class as usize], t.kind, t.bbox, t.carriers, t.summary
            );
        }
    }
    Ok(())
}
