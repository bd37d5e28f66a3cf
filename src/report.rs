//! Writing scan reports (CSV, Parquet or JSON by extension) and the per-class
//! summary printed by `poisonlens scan`.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use polars::prelude::*;

use crate::detect::Report;
use crate::error::{Error, Result};

/// Report columns besides the per-detector `score_<name>` ones, in order.
pub const BASE_COLUMNS: [&str; 10] = [
    "id",
    "label",
    "score",
    "flagged",
    "reasons",
    "suggested_label",
    "suggested_confidence",
    "cluster",
    "flagged_by",
    "trigger_box",
];

/// Builds the report table.
pub fn to_frame(r: &Report) -> Result<DataFrame> {
    let n = r.ids.len();
    let name = |l: u32| r.class_names[l as usize].clone();
    let flagged_by: Vec<String> = (0..n)
        .map(|i| {
            r.detectors
                .iter()
                .filter(|d| d.flagged[i])
                .map(|d| d.name)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let mut cols: Vec<Column> = vec![
        Column::new("id".into(), r.ids.clone()),
        Column::new(
            "label".into(),
            r.labels.iter().map(|&l| name(l)).collect::<Vec<_>>(),
        ),
        Column::new("score".into(), r.score.clone()),
        Column::new("flagged".into(), r.flagged.clone()),
        Column::new("reasons".into(), r.reasons.clone()),
        Column::new(
            "suggested_label".into(),
            r.suggested_label
                .iter()
                .map(|s| s.map(name))
                .collect::<Vec<Option<String>>>(),
        ),
        Column::new(
            "suggested_confidence".into(),
            r.suggested_confidence.clone(),
        ),
        Column::new(
            "cluster".into(),
            r.cluster_of.iter().map(|&c| c as u32).collect::<Vec<_>>(),
        ),
        Column::new("flagged_by".into(), flagged_by),
        Column::new(
            "trigger_box".into(),
            r.trigger_box
                .iter()
                .map(|b| b.map(box_text))
                .collect::<Vec<Option<String>>>(),
        ),
    ];
    for d in &r.detectors {
        cols.push(Column::new(
            format!("score_{}", d.name).into(),
            d.score.clone(),
        ));
    }
    DataFrame::new_infer_height(cols)
        .map_err(|e| Error::Other(format!("building report table: {e}")))
}

/// A trigger box as `x0 y0 x1 y1` (inclusive pixel corners).
pub fn box_text(b: [u32; 4]) -> String {
    format!("{} {} {} {}", b[0], b[1], b[2], b[3])
}

/// Writes the report; the format follows the extension (.csv, .parquet, .json).
/// Written to a temporary file first, so an earlier report is never half-overwritten.
pub fn write(r: &Report, out: &Path) -> Result<()> {
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let tmp = out.with_extension(format!("{ext}.tmp"));
    let write_err = |e: String| Error::file(out, format!("cannot write report: {e}"));
    {
        let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        match ext.as_str() {
            "csv" => {
                let mut df = to_frame(r)?;
                CsvWriter::new(&mut file)
                    .finish(&mut df)
                    .map_err(|e| write_err(e.to_string()))?;
            }
            "parquet" => {
                let mut df = to_frame(r)?;
                ParquetWriter::new(&mut file)
                    .finish(&mut df)
                    .map_err(|e| write_err(e.to_string()))?;
            }
            "json" => {
                let v = to_json(r);
                // Buffered: serde_json writes token by token, and unbuffered
                // that was a system call each (1.8 s of a 20,000-sample
                // report's 14.7 MB).
                let mut out = std::io::BufWriter::new(&mut file);
                serde_json::to_writer_pretty(&mut out, &v).map_err(|e| write_err(e.to_string()))?;
                out.write_all(b"\n").map_err(|e| Error::io(&tmp, e))?;
                out.flush().map_err(|e| Error::io(&tmp, e))?;
            }
            _ => {
                drop(file);
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::file(
                    out,
                    "report type must be .csv, .parquet or .json",
                ));
            }
        }
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))
}

fn to_json(r: &Report) -> serde_json::Value {
    let samples: Vec<serde_json::Value> = (0..r.ids.len())
        .map(|i| {
            let mut scores = serde_json::Map::new();
            for d in &r.detectors {
                scores.insert(d.name.to_string(), serde_json::json!(d.score[i]));
            }
            serde_json::json!({
                "id": r.ids[i],
                "label": r.class_names[r.labels[i] as usize],
                "score": r.score[i],
                "flagged": r.flagged[i],
                "reasons": r.reasons[i],
                "suggested_label": r.suggested_label[i].map(|l| r.class_names[l as usize].clone()),
                "suggested_confidence": r.suggested_confidence[i],
                "cluster": r.cluster_of[i],
                "flagged_by": r.detectors.iter().filter(|d| d.flagged[i]).map(|d| d.name).collect::<Vec<_>>(),
                "trigger_box": r.trigger_box[i],
                "scores": scores,
            })
        })
        .collect();
    serde_json::json!({
        "poisonlens_version": env!("CARGO_PKG_VERSION"),
        "features": r.feature_source,
        "warnings": r.warnings,
        "fdr": r.fdr,
        "false_flag_note": r.budget_note(),
        "classes": r.class_names,
        "clusters": r.clusters,
        "triggers": r.triggers.iter().map(|t| serde_json::json!({
            "class": r.class_names[t.class as usize],
            "kind": t.kind,
            "box_at_common_size": t.bbox,
            "common_size": [t.width, t.height],
            "group_size": t.group_size,
            "carriers": t.carriers,
            "summary": t.summary,
            "pattern": t.pattern,
        })).collect::<Vec<_>>(),
        "samples": samples,
    })
}

/// The per-class table printed after a scan.
pub fn summary_table(r: &Report) -> String {
    let mut out = String::new();
    let width = r
        .class_names
        .iter()
        .map(|c| c.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let names: Vec<&str> = r.detectors.iter().map(|d| d.name).collect();
    let _ = write!(
        out,
        "{:<width$}  {:>7}  {:>7}",
        "class", "samples", "flagged"
    );
    for n in &names {
        let _ = write!(out, "  {:>w$}", n, w = n.len().max(6));
    }
    let _ = writeln!(out, "  {:>10}", "split gain");
    for (c, name) in r.class_names.iter().enumerate() {
        let members: Vec<usize> = (0..r.ids.len())
            .filter(|&i| r.labels[i] as usize == c)
            .collect();
        let flagged = members.iter().filter(|&&i| r.flagged[i]).count();
        let _ = write!(
            out,
            "{:<width$}  {:>7}  {:>7}",
            name,
            members.len(),
            flagged
        );
        for d in &r.detectors {
            let k = members.iter().filter(|&&i| d.flagged[i]).count();
            let _ = write!(out, "  {:>w$}", k, w = d.name.len().max(6));
        }
        let gain = r.clusters.iter().find(|k| k.class as usize == c);
        let _ = match gain {
            Some(g) if g.size > 0 => writeln!(
                out,
                "  {:>9.2}{}",
                g.gain,
                if g.flagged { "*" } else { " " }
            ),
            _ => writeln!(out, "  {:>10}", "-"),
        };
    }
    let total = r.flagged_count();
    let _ = write!(out, "{:<width$}  {:>7}  {:>7}", "total", r.ids.len(), total);
    for d in &r.detectors {
        let k = d.flagged.iter().filter(|&&f| f).count();
        let _ = write!(out, "  {:>w$}", k, w = d.name.len().max(6));
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "* = class splits into two real groups (activation clusters); its smaller group is flagged.\nspectral, outlier and model disagrees never flag in the total on their own: they add their reasons to samples others flag."
    );
    for t in &r.triggers {
        let _ = writeln!(
            out,
            "trigger in '{}': {}; {} images carry it",
            r.class_names[t.class as usize], t.summary, t.carriers
        );
    }
    out
}
