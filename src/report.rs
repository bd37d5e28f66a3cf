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
                let v = JsonReport(r);
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

/// The JSON report, serialized as it is written: the samples one at a
/// time, never the whole document as a `serde_json::Value` tree (a million
/// samples took gigabytes that way, and building the tree was a tenth of a
/// 20,000-sample scan). Keys come in alphabetical order, as the tree wrote
/// them; the small nested parts (clusters, triggers) still go through a
/// `Value`, which sorts their keys the same way.
struct JsonReport<'a>(&'a Report);

impl serde::Serialize for JsonReport<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap};
        let r = self.0;
        let value = |v: std::result::Result<serde_json::Value, serde_json::Error>| {
            v.map_err(S::Error::custom)
        };
        let triggers: Vec<serde_json::Value> = r
            .triggers
            .iter()
            .map(|t| {
                serde_json::json!({
                    "class": r.class_names[t.class as usize],
                    "kind": t.kind,
                    "box_at_common_size": t.bbox,
                    "common_size": [t.width, t.height],
                    "group_size": t.group_size,
                    "carriers": t.carriers,
                    "summary": t.summary,
                    "pattern": t.pattern,
                })
            })
            .collect();
        let mut m = s.serialize_map(Some(9))?;
        m.serialize_entry("classes", &r.class_names)?;
        m.serialize_entry("clusters", &value(serde_json::to_value(&r.clusters))?)?;
        m.serialize_entry("false_flag_note", &r.budget_note())?;
        m.serialize_entry("fdr", &r.fdr)?;
        m.serialize_entry("features", &r.feature_source)?;
        m.serialize_entry("poisonlens_version", env!("CARGO_PKG_VERSION"))?;
        m.serialize_entry("samples", &JsonSamples(r))?;
        m.serialize_entry("triggers", &triggers)?;
        m.serialize_entry("warnings", &r.warnings)?;
        m.end()
    }
}

/// Every sample of a [`JsonReport`], in order.
struct JsonSamples<'a>(&'a Report);

impl serde::Serialize for JsonSamples<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let r = self.0;
        // The per-detector scores by detector name (a sorted map).
        let mut by_name: Vec<usize> = (0..r.detectors.len()).collect();
        by_name.sort_by_key(|&k| r.detectors[k].name);
        let mut seq = s.serialize_seq(Some(r.ids.len()))?;
        for i in 0..r.ids.len() {
            seq.serialize_element(&JsonSample {
                r,
                i,
                by_name: &by_name,
            })?;
        }
        seq.end()
    }
}

/// One sample of a [`JsonReport`]: its fields in alphabetical order, its
/// scores as the numbers the tree held (f32 widened to f64).
struct JsonSample<'a> {
    r: &'a Report,
    i: usize,
    by_name: &'a [usize],
}

impl serde::Serialize for JsonSample<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (r, i) = (self.r, self.i);
        let flagged_by: Vec<&str> = r
            .detectors
            .iter()
            .filter(|d| d.flagged[i])
            .map(|d| d.name)
            .collect();
        let mut m = s.serialize_map(Some(11))?;
        m.serialize_entry("cluster", &r.cluster_of[i])?;
        m.serialize_entry("flagged", &r.flagged[i])?;
        m.serialize_entry("flagged_by", &flagged_by)?;
        m.serialize_entry("id", &r.ids[i])?;
        m.serialize_entry("label", &r.class_names[r.labels[i] as usize])?;
        m.serialize_entry("reasons", &r.reasons[i])?;
        m.serialize_entry("score", &f64::from(r.score[i]))?;
        m.serialize_entry("scores", &JsonScores(self))?;
        m.serialize_entry(
            "suggested_confidence",
            &f64::from(r.suggested_confidence[i]),
        )?;
        m.serialize_entry(
            "suggested_label",
            &r.suggested_label[i].map(|l| &r.class_names[l as usize]),
        )?;
        m.serialize_entry("trigger_box", &r.trigger_box[i])?;
        m.end()
    }
}

/// A [`JsonSample`]'s score from each detector, by detector name.
struct JsonScores<'a>(&'a JsonSample<'a>);

impl serde::Serialize for JsonScores<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let JsonSample { r, i, by_name } = *self.0;
        let mut m = s.serialize_map(Some(by_name.len()))?;
        for &k in by_name {
            let d = &r.detectors[k];
            m.serialize_entry(d.name, &f64::from(d.score[i]))?;
        }
        m.end()
    }
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
        "* = class splits into two real groups (activation clusters); its suspect group (the one least like its class, or holding a found trigger) is flagged.\nspectral, outlier and model disagrees never flag in the total on their own: they add their reasons to samples others flag."
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
