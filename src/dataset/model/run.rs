//! Embedding a whole dataset: images decoded once (and digested for the
//! scan in the same pass when asked), prepared, and run through the model in
//! batches on all cores, a bounded chunk of prepared images at a time so a
//! large model input never holds the whole dataset in memory.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::Model;
use super::prepare::prepare_into;
use crate::dataset::images::{self, ImageDigest};
use crate::dataset::{Dataset, SampleFiles};
use crate::error::{Error, Result};
use crate::linalg::Matrix;

/// Most prepared input values held at once (64 MiB of floats; larger
/// chunks measured no faster).
const CHUNK_VALUES: usize = 1 << 24;

/// What embedding a dataset produced.
pub struct Embedded {
    /// One row per sample: the layer's values. A sample whose image could
    /// not be read holds the mean row (and is listed in `unreadable`).
    pub embeddings: Matrix,
    /// The classifier's scores per sample, when the model has one of the
    /// dataset's class count.
    pub logits: Option<Matrix>,
    /// The scan's digest of every image, when asked for (else empty).
    pub digests: Vec<Result<ImageDigest, String>>,
    /// Samples whose image could not be read, with the reason.
    pub unreadable: Vec<(usize, String)>,
}

/// One decoded image's share of the pass.
struct Decoded {
    digest: Option<Result<ImageDigest, String>>,
    prepared: Result<Vec<f32>, String>,
}

/// Embeds every sample of `ds` with `model`; with `digest_side` the scan's
/// image digests come from the same decode. `progress` gets the number of
/// samples done; `cancelled` is checked between batches.
pub fn embed_all(
    ds: &Dataset,
    model: &Model,
    digest_side: Option<u32>,
    progress: &(dyn Fn(usize) + Sync),
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<Embedded> {
    if ds.paths.is_none() {
        return Err(Error::file(
            &ds.source,
            "the dataset names no image files, so the model has nothing to embed",
        ));
    }
    let n = ds.len();
    let per_image = model.input.values_per_image();
    let chunk =
        (CHUNK_VALUES / per_image.max(1) / model.batch() * model.batch()).max(model.batch());
    let classes = model.classifier.as_ref().map(|(_, c)| *c);
    let mut emb = vec![0f32; n * model.dims];
    let mut logits = classes.map(|c| vec![0f32; n * c]);
    let mut digests = Vec::new();
    let mut unreadable = Vec::new();
    let done = AtomicUsize::new(0);
    let files = ds.files();
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let decoded: Vec<Decoded> = (start..end)
            .into_par_iter()
            .map(|i| decode(&files, i, model, digest_side))
            .collect();
        let ok: Vec<usize> = (start..end)
            .filter(|&i| decoded[i - start].prepared.is_ok())
            .collect();
        let batches: Vec<(Vec<f32>, Option<Vec<f32>>)> = ok
            .par_chunks(model.batch())
            .map(|members| {
                if cancelled() {
                    return Err(Error::Cancelled);
                }
                let mut values = Vec::with_capacity(model.batch() * per_image);
                for &i in members {
                    if let Ok(v) = &decoded[i - start].prepared {
                        values.extend_from_slice(v);
                    }
                }
                values.resize(model.batch() * per_image, 0.0);
                let out = model.run_batch(values)?;
                progress(done.fetch_add(members.len(), Ordering::Relaxed) + members.len());
                Ok(out)
            })
            .collect::<Result<_>>()?;
        for (members, (e, l)) in ok.chunks(model.batch()).zip(batches) {
            for (row, &i) in members.iter().enumerate() {
                let d = model.dims;
                emb[i * d..(i + 1) * d].copy_from_slice(&e[row * d..(row + 1) * d]);
                if let (Some(all), Some(l), Some(c)) = (logits.as_mut(), l.as_ref(), classes) {
                    all[i * c..(i + 1) * c].copy_from_slice(&l[row * c..(row + 1) * c]);
                }
            }
        }
        for (k, d) in decoded.into_iter().enumerate() {
            if let Err(why) = d.prepared {
                unreadable.push((start + k, why));
            }
            digests.extend(d.digest);
        }
    }
    check_finite(model, ds, &emb)?;
    let unread: Vec<usize> = unreadable.iter().map(|(i, _)| *i).collect();
    let mut embeddings = Matrix::new(n, model.dims, emb);
    embeddings.fill_rows_with_mean(&unread);
    let mut logits = logits.zip(classes).map(|(l, c)| Matrix::new(n, c, l));
    if let Some(l) = logits.as_mut() {
        l.fill_rows_with_mean(&unread);
    }
    Ok(Embedded {
        embeddings,
        logits,
        digests,
        unreadable,
    })
}

/// Decodes sample `i` once: its digest (when asked) and the model's input.
fn decode(files: &SampleFiles, i: usize, model: &Model, digest_side: Option<u32>) -> Decoded {
    match images::decode_sample(files, i) {
        Ok(img) => {
            let mut prepared = Vec::with_capacity(model.input.values_per_image());
            prepare_into(&img, &model.input, &model.options, &mut prepared);
            Decoded {
                digest: digest_side.map(|side| Ok(images::digest(&img, side))),
                prepared: Ok(prepared),
            }
        }
        Err(e) => Decoded {
            digest: digest_side.map(|_| Err(e.to_string())),
            prepared: Err(e.to_string()),
        },
    }
}

/// A model that produces NaN or infinity (a hostile or broken one) is
/// refused, naming the first sample it happened on.
fn check_finite(model: &Model, ds: &Dataset, emb: &[f32]) -> Result<()> {
    match emb.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(p) => {
            let i = p / model.dims.max(1);
            Err(Error::file(
                model.path(),
                format!(
                    "layer '{}' gave a value that is not a finite number ({}) for sample '{}' (row {})",
                    model.layer,
                    emb[p],
                    ds.ids[i],
                    i + 1
                ),
            ))
        }
    }
}
