//! CSV and Parquet manifests, read with polars.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::{
    Dataset, EmbeddingSource, MetaColumn, OpenOptions, check_embedding_values, check_ids, files,
    index_labels, npy, parquet_footer, paths,
};
use crate::error::{Error, Result};
use crate::linalg::Matrix;

/// Reads a manifest file (format from its extension) into a [`Dataset`].
pub fn open(file: &Path, opts: &OpenOptions) -> Result<Dataset> {
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let df = match ext.as_str() {
        "csv" => read_csv(file)?,
        "parquet" | "pq" => read_parquet(file)?,
        _ => {
            return Err(Error::file(
                file,
                "unknown manifest type: expected a .csv or .parquet file, a folder holding manifest.csv/manifest.parquet, or an ImageFolder tree",
            ));
        }
    };
    from_frame(file, df, opts)
}

pub(crate) fn read_csv(file: &Path) -> Result<DataFrame> {
    // Every column as text: ids like "000123" must keep their zeros, and numeric
    // columns are parsed by us so errors can name the row.
    let reader = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .into_reader_with_file_handle(files::open_regular(file)?.0);
    files::without_panics(file, "CSV", || reader.finish())?
        .map_err(|e| Error::file(file, format!("cannot read CSV: {e}")))
}

pub(crate) fn read_parquet(file: &Path) -> Result<DataFrame> {
    let (mut f, len) = files::open_regular(file)?;
    parquet_footer::check(file, &mut f, len)?;
    files::without_panics(file, "Parquet", || ParquetReader::new(f).finish())?
        .map_err(|e| Error::file(file, format!("cannot read Parquet: {e}")))
}

pub(crate) fn strings(file: &Path, df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let col = df
        .column(name)
        .map_err(|e| Error::file(file, e.to_string()))?;
    let col = col
        .cast(&DataType::String)
        .map_err(|e| Error::file(file, format!("column '{name}' cannot be read as text: {e}")))?;
    let ca = col.str().map_err(|e| Error::file(file, e.to_string()))?;
    Ok(ca.iter().map(|v| v.map(str::to_string)).collect())
}

fn required_strings(file: &Path, df: &DataFrame, name: &str) -> Result<Vec<String>> {
    strings(file, df, name)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(Error::cell(file, i + 1, name, format!("missing {name}"))),
        })
        .collect()
}

fn floats(file: &Path, df: &DataFrame, name: &str) -> Result<Vec<f32>> {
    let col = df
        .column(name)
        .map_err(|e| Error::file(file, e.to_string()))?;
    if col.dtype() == &DataType::String {
        let ca = col.str().map_err(|e| Error::file(file, e.to_string()))?;
        ca.iter()
            .enumerate()
            .map(|(i, v)| {
                let s =
                    v.ok_or_else(|| Error::cell(file, i + 1, name, "missing embedding value"))?;
                s.trim()
                    .parse::<f32>()
                    .map_err(|_| Error::cell(file, i + 1, name, format!("'{s}' is not a number")))
            })
            .collect()
    } else {
        let c = col
            .cast(&DataType::Float32)
            .map_err(|e| Error::file(file, format!("column '{name}' is not numeric: {e}")))?;
        let ca = c.f32().map_err(|e| Error::file(file, e.to_string()))?;
        ca.iter()
            .enumerate()
            .map(|(i, v)| {
                v.ok_or_else(|| Error::cell(file, i + 1, name, "missing embedding value"))
            })
            .collect()
    }
}

fn list_embeddings(file: &Path, df: &DataFrame) -> Result<Matrix> {
    let col = df
        .column("embedding")
        .map_err(|e| Error::file(file, e.to_string()))?;
    let list = col.list().map_err(|_| {
        Error::file(
            file,
            format!(
                "column 'embedding' must be a list of floats, found {}",
                col.dtype()
            ),
        )
    })?;
    let mut data = Vec::new();
    let mut dim: Option<usize> = None;
    for (i, item) in list.amortized_iter().enumerate() {
        let s = item.ok_or_else(|| Error::cell(file, i + 1, "embedding", "missing embedding"))?;
        let s = s
            .as_ref()
            .cast(&DataType::Float32)
            .map_err(|e| Error::cell(file, i + 1, "embedding", format!("not numeric: {e}")))?;
        let ca = s
            .f32()
            .map_err(|e| Error::cell(file, i + 1, "embedding", e.to_string()))?;
        match dim {
            None => dim = Some(ca.len()),
            Some(d) if d != ca.len() => {
                return Err(Error::cell(
                    file,
                    i + 1,
                    "embedding",
                    format!("has {} values but earlier rows have {d}", ca.len()),
                ));
            }
            _ => {}
        }
        for (j, v) in ca.iter().enumerate() {
            data.push(v.ok_or_else(|| {
                Error::cell(file, i + 1, "embedding", format!("value {j} is missing"))
            })?);
        }
    }
    let d = dim.unwrap_or(0);
    let m = Matrix::new(list.len(), d, data);
    check_embedding_values(file, &m, |c| format!("embedding[{c}]"))?;
    Ok(m)
}

fn emb_columns(df: &DataFrame) -> Vec<String> {
    let mut cols: Vec<(usize, String)> = df
        .get_column_names()
        .iter()
        .filter_map(|n| {
            n.strip_prefix("emb_")
                .and_then(|k| k.parse::<usize>().ok())
                .map(|k| (k, n.to_string()))
        })
        .collect();
    cols.sort();
    cols.into_iter().map(|(_, n)| n).collect()
}

/// Loads embeddings from an explicit `.npy`, checking they match the sample count.
pub(super) fn npy_embeddings(npy_path: &Path, n: usize, against: &Path) -> Result<Matrix> {
    let m = npy::read_npy(npy_path)?;
    if m.rows != n {
        return Err(Error::file(
            npy_path,
            format!(
                "has {} rows but {} has {n} samples; row i must belong to sample i",
                m.rows,
                against.display()
            ),
        ));
    }
    check_embedding_values(npy_path, &m, |c| format!("dimension {c}"))?;
    Ok(m)
}

fn from_frame(file: &Path, df: DataFrame, opts: &OpenOptions) -> Result<Dataset> {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    for req in ["id", "label"] {
        if !names.iter().any(|n| n == req) {
            return Err(Error::file(
                file,
                format!(
                    "no '{req}' column (columns found: {}); a manifest needs 'id' and 'label'",
                    names.join(", ")
                ),
            ));
        }
    }
    if df.height() == 0 {
        return Err(Error::file(
            file,
            "the manifest has no rows: nothing to open",
        ));
    }
    let ids = required_strings(file, &df, "id")?;
    check_ids(file, "id", &ids)?;
    let raw_labels = required_strings(file, &df, "label")?;
    let (classes, labels) = index_labels(&raw_labels);
    let paths = if names.iter().any(|n| n == "path") {
        let p: Vec<String> = strings(file, &df, "path")?
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        for (i, rel) in p.iter().enumerate() {
            if !rel.is_empty()
                && let Some(problem) = paths::lexical_problem(rel)
            {
                return Err(Error::cell(file, i + 1, "path", problem));
            }
        }
        Some(p)
    } else {
        None
    };
    let root: PathBuf = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let root = if root.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        root
    };
    let emb_cols = emb_columns(&df);
    let sidecar = root.join("embeddings.npy");
    let n = ids.len();
    let (embeddings, embedding_source) = if let Some(p) = &opts.embeddings {
        (
            Some(npy_embeddings(p, n, file)?),
            EmbeddingSource::Npy(p.clone()),
        )
    } else if sidecar.is_file() {
        (
            Some(npy_embeddings(&sidecar, n, file)?),
            EmbeddingSource::Npy(sidecar),
        )
    } else if names.iter().any(|n| n == "embedding") {
        (
            Some(list_embeddings(file, &df)?),
            EmbeddingSource::ParquetColumn,
        )
    } else if !emb_cols.is_empty() {
        for (k, c) in emb_cols.iter().enumerate() {
            if *c != format!("emb_{k}") {
                return Err(Error::file(
                    file,
                    format!("embedding columns must be emb_0 … emb_{{D-1}}; emb_{k} is missing"),
                ));
            }
        }
        let cols: Vec<Vec<f32>> = emb_cols
            .iter()
            .map(|c| floats(file, &df, c))
            .collect::<Result<_>>()?;
        let mut data = Vec::with_capacity(n * cols.len());
        for i in 0..n {
            for c in &cols {
                data.push(c[i]);
            }
        }
        let m = Matrix::new(n, cols.len(), data);
        check_embedding_values(file, &m, |c| format!("emb_{c}"))?;
        (Some(m), EmbeddingSource::Columns(cols.len()))
    } else {
        (None, EmbeddingSource::None)
    };
    let skip = |n: &str| {
        matches!(n, "id" | "label" | "path" | "embedding") || emb_cols.iter().any(|c| c == n)
    };
    let mut metadata = Vec::new();
    for name in names.iter().filter(|n| !skip(n)) {
        let values = strings(file, &df, name)?
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        metadata.push(MetaColumn {
            name: name.clone(),
            values,
        });
    }
    Ok(Dataset {
        source: file.to_path_buf(),
        root,
        real_root: None,
        manifest: Some(file.to_path_buf()),
        ids,
        labels,
        classes,
        paths,
        metadata,
        embeddings: embeddings.map(std::sync::Arc::new),
        embedding_source,
        warnings: Vec::new(),
    })
}
