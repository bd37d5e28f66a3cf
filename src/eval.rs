//! Measuring detection quality against a `truth.csv` (`id, poisoned, …`), as
//! shipped with the devsets and `sample_data/`. Shared by the evaluation
//! example and the quality tests so both count the same way.

use std::collections::HashMap;
use std::path::Path;

use crate::detect::Report;
use crate::error::{Error, Result};

/// Precision, recall, F1 and false-positive rate of a set of flags.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quality {
    /// Samples flagged.
    pub flagged: usize,
    /// Poisoned samples in the dataset.
    pub poisoned: usize,
    /// Poisoned and flagged.
    pub true_positives: usize,
    /// Clean but flagged.
    pub false_positives: usize,
    /// Clean samples.
    pub clean: usize,
}

impl Quality {
    /// Precision (NaN when nothing is flagged).
    pub fn precision(&self) -> f64 {
        self.true_positives as f64 / self.flagged as f64
    }
    /// Recall (NaN when nothing is poisoned).
    pub fn recall(&self) -> f64 {
        self.true_positives as f64 / self.poisoned as f64
    }
    /// Harmonic mean of precision and recall (0 when either is undefined or 0).
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p.is_nan() || r.is_nan() || p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
    /// Share of clean samples flagged.
    pub fn fpr(&self) -> f64 {
        self.false_positives as f64 / self.clean.max(1) as f64
    }
}

/// Reads `truth.csv` into id → poisoned.
pub fn read_truth(path: &Path) -> Result<HashMap<String, bool>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = |n: &str| {
        header
            .iter()
            .position(|h| *h == n)
            .ok_or_else(|| Error::file(path, format!("no '{n}' column")))
    };
    let (ci, cp) = (col("id")?, col("poisoned")?);
    let mut out = HashMap::new();
    for (row, line) in lines.enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        let id = f
            .get(ci)
            .ok_or_else(|| Error::cell(path, row + 1, "id", "missing"))?;
        let p = f
            .get(cp)
            .ok_or_else(|| Error::cell(path, row + 1, "poisoned", "missing"))?;
        out.insert(id.to_string(), *p == "1" || p.eq_ignore_ascii_case("true"));
    }
    Ok(out)
}

/// Reads `truth.csv` into id → (poisoned, kind); the kind is `"poisoned"` or
/// `"clean"` when the file has no `kind` column.
pub fn read_truth_kinds(path: &Path) -> Result<HashMap<String, (bool, String)>> {
    let poisoned = read_truth(path)?;
    let Some(kinds) = read_truth_column(path, "kind")? else {
        return Ok(poisoned
            .into_iter()
            .map(|(id, p)| {
                let kind = if p { "poisoned" } else { "clean" };
                (id, (p, kind.to_string()))
            })
            .collect());
    };
    Ok(kinds
        .into_iter()
        .map(|(id, kind)| {
            let p = poisoned.get(&id).copied().unwrap_or(false);
            (id, (p, kind))
        })
        .collect())
}

/// Reads the `original_label` column of `truth.csv` into id → class name
/// (empty when the file has no such column).
pub fn read_truth_sources(path: &Path) -> Result<HashMap<String, String>> {
    Ok(read_truth_column(path, "original_label")?.unwrap_or_default())
}

/// One optional column of `truth.csv` as id → value; None when the file
/// has no such column (rows too short for it are skipped).
fn read_truth_column(path: &Path, name: &str) -> Result<Option<HashMap<String, String>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let (Some(ci), Some(cv)) = (
        header.iter().position(|h| *h == "id"),
        header.iter().position(|h| *h == name),
    ) else {
        return Ok(None);
    };
    Ok(Some(
        lines
            .filter_map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                Some((f.get(ci)?.to_string(), f.get(cv)?.to_string()))
            })
            .collect(),
    ))
}

/// How well a report's suggested labels would serve an annotator.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SuggestionQuality {
    /// Flagged poisoned samples whose label was changed by the attack.
    pub relabelled: usize,
    /// Of those, how many have a suggestion.
    pub suggested: usize,
    /// Of those, how many suggest the label the attack replaced.
    pub restored: usize,
    /// Flagged clean samples (and clean-label poison) given a suggestion:
    /// a relabel that would be wrong.
    pub wrong_on_unchanged: usize,
}

/// Scores the report's suggestions against each sample's original label.
pub fn suggestion_quality(r: &Report, sources: &HashMap<String, String>) -> SuggestionQuality {
    let mut q = SuggestionQuality::default();
    for i in 0..r.ids.len() {
        if !r.flagged[i] {
            continue;
        }
        let given = &r.class_names[r.labels[i] as usize];
        let Some(original) = sources.get(&r.ids[i]) else {
            continue;
        };
        let suggested = r.suggested_label[i].map(|l| &r.class_names[l as usize]);
        if original != given {
            q.relabelled += 1;
            q.suggested += usize::from(suggested.is_some());
            q.restored += usize::from(suggested == Some(original));
        } else if suggested.is_some() {
            q.wrong_on_unchanged += 1;
        }
    }
    q
}

/// Per poison kind (sorted): flagged and total poisoned samples of that kind.
pub fn recall_by_kind(
    ids: &[String],
    flags: &[bool],
    truth: &HashMap<String, (bool, String)>,
) -> Vec<(String, usize, usize)> {
    let mut by: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for (id, &f) in ids.iter().zip(flags) {
        if let Some((true, kind)) = truth.get(id) {
            let e = by.entry(kind.clone()).or_default();
            e.0 += usize::from(f);
            e.1 += 1;
        }
    }
    by.into_iter().map(|(k, (h, a))| (k, h, a)).collect()
}

/// Scores `flags` against the truth.
pub fn quality(ids: &[String], flags: &[bool], truth: &HashMap<String, bool>) -> Quality {
    let mut q = Quality::default();
    for (id, &f) in ids.iter().zip(flags) {
        let p = truth.get(id).copied().unwrap_or(false);
        q.flagged += usize::from(f);
        q.poisoned += usize::from(p);
        q.clean += usize::from(!p);
        q.true_positives += usize::from(f && p);
        q.false_positives += usize::from(f && !p);
    }
    q
}

/// Quality of the combined verdict and of each detector alone.
pub fn report_quality(r: &Report, truth: &HashMap<String, bool>) -> Vec<(String, Quality)> {
    let mut out = vec![("combined".to_string(), quality(&r.ids, &r.flagged, truth))];
    for d in &r.detectors {
        out.push((d.name.to_string(), quality(&r.ids, &d.flagged, truth)));
    }
    out
}

/// The true trigger patch of a devset, from its `meta.json` trigger text
/// ("… rows A..B, cols C..D"), as x0, y0, x1, y1 inclusive; None when the
/// attack has no box (a blend) or the text says no place.
pub fn true_trigger_box(dir: &Path) -> Option<[u32; 4]> {
    let meta = std::fs::read_to_string(dir.join("meta.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&meta).ok()?;
    let text = v["params"]["trigger"].as_str().or(v["trigger"].as_str())?;
    let range = |key: &str| -> Option<(u32, u32)> {
        let rest = &text[text.find(key)? + key.len()..];
        let mut it = rest
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty());
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    let (y0, y1) = range("rows")?;
    let (x0, x1) = range("cols")?;
    Some([x0, y0, x1, y1])
}

/// Intersection over union of two inclusive pixel boxes (x0, y0, x1, y1).
pub fn iou(a: [u32; 4], b: [u32; 4]) -> f64 {
    let area = |r: [u32; 4]| ((r[2] + 1 - r[0]) * (r[3] + 1 - r[1])) as f64;
    let ix = (a[2].min(b[2]) + 1).saturating_sub(a[0].max(b[0]));
    let iy = (a[3].min(b[3]) + 1).saturating_sub(a[1].max(b[1]));
    let inter = (ix * iy) as f64;
    inter / (area(a) + area(b) - inter)
}
