//! Scans every dataset folder given and prints precision / recall / F1 / FPR
//! per set, the recall per poison kind, the best reference detector's F1 from
//! a `baselines.json` beside the sets (devzoo layout), and over the whole
//! distribution the **worst** poisoned set, the mean F1 and the flagged share
//! on clean sets — the figures README's quality table quotes.
//!
//! Run: `cargo run --release --no-default-features --example evaluate [--reports DIR] [--fdr Q] [--no-images] [--no-embeddings] [DIR…]`
//! (default: ../shared/devsets/*, every set in ../shared/devzoo/sets and
//! sample_data). A folder holding set folders (e.g. a fresh `make_zoo.py`
//! draw) may be given instead of each set. `--reports DIR` writes one
//! `<set>.csv` per set (`id,flagged,score`) for `score_zoo.py`. `--no-images`
//! scans the embeddings alone, as for a manifest without images;
//! `--no-embeddings` the images alone, as for an image folder without
//! embeddings (the scan's own pixel features).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use poisonlens::dataset::{Dataset, OpenOptions};
use poisonlens::detect::{ScanOptions, scan};
use poisonlens::eval::{
    quality, read_truth_kinds, read_truth_sources, recall_by_kind, suggestion_quality,
};

struct Row {
    name: String,
    poisoned: usize,
    f1: f64,
    fpr: f64,
    flagged_share: f64,
    best_ref: Option<(f64, String)>,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut dirs = Vec::new();
    let mut reports: Option<PathBuf> = None;
    let mut opts = ScanOptions::default();
    let mut use_embeddings = true;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reports" => reports = args.next().map(PathBuf::from),
            "--no-images" => opts.use_images = false,
            "--no-embeddings" => use_embeddings = false,
            "--fdr" => {
                opts.fdr = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| anyhow::anyhow!("--fdr needs a number"))?
            }
            _ => dirs.extend(expand(Path::new(&a))),
        }
    }
    if dirs.is_empty() {
        for name in ["badnets", "blend", "flip", "clean"] {
            dirs.push(PathBuf::from("../shared/devsets").join(name));
        }
        dirs.extend(expand(Path::new("../shared/devzoo/sets")));
        dirs.push(PathBuf::from("sample_data"));
    }
    if let Some(r) = &reports {
        std::fs::create_dir_all(r)?;
    }
    println!(
        "| set | N | poisoned | flagged | precision | recall | F1 | best reference F1 | FPR | recall by kind | s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    let mut suggestions = Vec::new();
    for dir in dirs {
        let mut ds = Dataset::open(&dir, &OpenOptions::default())?;
        if !use_embeddings {
            ds.embeddings = None;
            ds.embedding_source = poisonlens::dataset::EmbeddingSource::None;
        }
        let truth = read_truth_kinds(&dir.join("truth.csv"))?;
        let poisoned: HashMap<String, bool> =
            truth.iter().map(|(k, (p, _))| (k.clone(), *p)).collect();
        let t = Instant::now();
        let r = scan(&ds, &opts, &|_, _| {})?;
        let secs = t.elapsed().as_secs_f64();
        let name = dir
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if let Some(out) = &reports {
            write_report_csv(
                &out.join(format!("{name}.csv")),
                &r.ids,
                &r.flagged,
                &r.score,
            )?;
        }
        let q = quality(&r.ids, &r.flagged, &poisoned);
        let kinds = recall_by_kind(&r.ids, &r.flagged, &truth)
            .into_iter()
            .map(|(k, hit, all)| format!("{k} {hit}/{all}"))
            .collect::<Vec<_>>()
            .join(", ");
        let best_ref = best_reference(&dir, &name);
        let fmt = |v: f64| {
            if v.is_nan() {
                "–".to_string()
            } else {
                format!("{v:.2}")
            }
        };
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {:.4} | {kinds} | {secs:.2} |",
            r.ids.len(),
            q.poisoned,
            q.flagged,
            fmt(q.precision()),
            fmt(q.recall()),
            if q.poisoned == 0 {
                "–".into()
            } else {
                format!("**{:.2}**", q.f1())
            },
            best_ref
                .as_ref()
                .map_or("–".into(), |(f, m)| format!("{f:.2} ({m})")),
            q.fpr()
        );
        let per_detector = r
            .detectors
            .iter()
            .map(|d| {
                let q = quality(&r.ids, &d.flagged, &poisoned);
                format!("{} {}/{}", d.name, q.true_positives, q.flagged)
            })
            .collect::<Vec<_>>()
            .join(", ");
        eprintln!("{name}: true/flagged per detector: {per_detector}");
        let sq = suggestion_quality(&r, &read_truth_sources(&dir.join("truth.csv"))?);
        eprintln!(
            "{name}: suggestions: {} of {} flagged relabelled samples suggested, {} restore the original label; {} flagged unchanged samples given a relabel",
            sq.suggested, sq.relabelled, sq.restored, sq.wrong_on_unchanged
        );
        suggestions.push(sq);
        for t in &r.triggers {
            eprintln!(
                "{name}: trigger in '{}': {:?} box {:?}, {} carriers; {}",
                r.class_names[t.class as usize], t.kind, t.bbox, t.carriers, t.summary
            );
        }
        rows.push(Row {
            name,
            poisoned: q.poisoned,
            f1: q.f1(),
            fpr: q.fpr(),
            flagged_share: q.flagged as f64 / r.ids.len().max(1) as f64,
            best_ref,
        });
    }
    summarize(&rows);
    summarize_suggestions(&suggestions);
    Ok(())
}

/// A set folder (has a manifest) is itself; any other folder stands for the
/// set folders inside it, sorted by name.
fn expand(dir: &Path) -> Vec<PathBuf> {
    let is_set = |d: &Path| d.join("truth.csv").is_file();
    if is_set(dir) {
        return vec![dir.to_path_buf()];
    }
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_set(p))
        .collect();
    sets.sort();
    sets
}

/// Best F1 among the reference defaults in `baselines.json` beside the set's
/// folder (devzoo layout), with the method's name.
fn best_reference(dir: &Path, name: &str) -> Option<(f64, String)> {
    let parent = dir.parent()?;
    let candidates = [
        parent.join("baselines.json"),
        parent.parent()?.join("baselines.json"),
    ];
    let text = candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let results = v["sets"][name]["results"].as_array()?;
    results
        .iter()
        .filter(|r| r["reference_default"].as_bool() == Some(true))
        .filter_map(|r| Some((r["f1"].as_f64()?, r["method"].as_str()?.to_string())))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

fn write_report_csv(
    path: &Path,
    ids: &[String],
    flagged: &[bool],
    score: &[f32],
) -> anyhow::Result<()> {
    let mut s = String::from("id,flagged,score\n");
    for ((id, f), sc) in ids.iter().zip(flagged).zip(score) {
        s.push_str(&format!("{id},{},{sc}\n", u8::from(*f)));
    }
    std::fs::write(path, s)?;
    Ok(())
}

fn summarize(rows: &[Row]) {
    let poisoned: Vec<&Row> = rows.iter().filter(|r| r.poisoned > 0).collect();
    let clean: Vec<&Row> = rows.iter().filter(|r| r.poisoned == 0).collect();
    println!();
    if let Some(worst) = poisoned.iter().min_by(|a, b| a.f1.total_cmp(&b.f1)) {
        let mean = poisoned.iter().map(|r| r.f1).sum::<f64>() / poisoned.len() as f64;
        let mean_fpr = poisoned.iter().map(|r| r.fpr).sum::<f64>() / poisoned.len() as f64;
        let worst_fpr = poisoned
            .iter()
            .max_by(|a, b| a.fpr.total_cmp(&b.fpr))
            .expect("non-empty");
        println!(
            "{} poisoned sets: worst F1 **{:.2}** ({}), mean F1 **{mean:.2}**; FPR on their clean samples mean {mean_fpr:.4}, worst {:.4} ({})",
            poisoned.len(),
            worst.f1,
            worst.name,
            worst_fpr.fpr,
            worst_fpr.name
        );
        let below: Vec<String> = poisoned
            .iter()
            .filter_map(|r| {
                let (f, m) = r.best_ref.as_ref()?;
                (r.f1 < *f).then(|| format!("{} ({:.2} < {f:.2} {m})", r.name, r.f1))
            })
            .collect();
        let compared = poisoned.iter().filter(|r| r.best_ref.is_some()).count();
        if compared > 0 {
            println!(
                "below the best reference on {} of {compared} sets{}{}",
                below.len(),
                if below.is_empty() { "" } else { ": " },
                below.join(", ")
            );
        }
    }
    if let Some(worst) = clean
        .iter()
        .max_by(|a, b| a.flagged_share.total_cmp(&b.flagged_share))
    {
        let mean = clean.iter().map(|r| r.flagged_share).sum::<f64>() / clean.len() as f64;
        println!(
            "{} clean sets: flagged share mean {:.4}, worst {:.4} ({})",
            clean.len(),
            mean,
            worst.flagged_share,
            worst.name
        );
    }
}

fn summarize_suggestions(all: &[poisonlens::eval::SuggestionQuality]) {
    let sum =
        |f: fn(&poisonlens::eval::SuggestionQuality) -> usize| all.iter().map(f).sum::<usize>();
    let (rel, sug, res, wrong) = (
        sum(|q| q.relabelled),
        sum(|q| q.suggested),
        sum(|q| q.restored),
        sum(|q| q.wrong_on_unchanged),
    );
    println!(
        "suggested labels: {sug} of {rel} flagged relabelled samples have one, {res} restore the original label ({:.1}%); {wrong} flagged samples whose label is right were offered a relabel",
        100.0 * res as f64 / rel.max(1) as f64
    );
}
