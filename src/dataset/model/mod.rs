//! The user's own model as an input: an ONNX file whose activations become
//! the dataset's embeddings, computed in pure Rust (tract) — so the people
//! auditing a training set can scan it with the model trained on it, with
//! no Python step. Activation clustering and spectral signatures are defined
//! on exactly these activations.
//!
//! Everything about the model is checked before an image is read: the file
//! is a regular file of bounded size, it parses, every operator is one tract
//! runs, the image input has a shape images can take, the layer exists, and
//! no tensor the graph makes is absurdly large. A hostile file gets an error
//! naming it (and the node); tract panics are caught and reported the same.

mod graph;
mod prepare;
mod run;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;

pub use graph::{InputSpec, Layout};
pub use run::{Embedded, embed_all};

use crate::dataset::files;
use crate::error::{Error, Result};

/// Largest model file read (protobuf itself cannot describe more than 2 GiB).
pub const MAX_MODEL_BYTES: u64 = 2 << 30;

/// Most values any one tensor of a batch may hold (1 GiB of floats): a
/// graph that would make more is refused before running, not left to
/// exhaust memory.
pub const MAX_TENSOR_VALUES: usize = 1 << 28;

/// Widest embedding kept per sample; a wider layer (an early convolution's
/// whole feature map) would not fit in memory for a large dataset.
pub const MAX_EMBEDDING_DIMS: usize = 1 << 16;

/// torchvision's ImageNet channel means (`--imagenet`).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// torchvision's ImageNet channel standard deviations (`--imagenet`).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// What the user asked for: the file, the layer, and how pixel values are
/// scaled before the model sees them (`value * scale`, then
/// `(value - mean[c]) / std[c]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOptions {
    /// The `.onnx` file.
    pub path: PathBuf,
    /// A node or tensor name; `None` takes the input of the final
    /// classification layer.
    pub layer: Option<String>,
    /// Multiplies every pixel value (0–255) first.
    pub scale: f32,
    /// Per-channel mean subtracted after scaling (one value per model channel).
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviation divided by after the mean.
    pub std: Option<Vec<f32>>,
}

impl ModelOptions {
    /// Default preparation for `path`: the penultimate layer, pixels / 255.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ModelOptions {
            path: path.into(),
            layer: None,
            scale: 1.0 / 255.0,
            mean: None,
            std: None,
        }
    }
}

/// A loaded, checked and optimised model, ready to embed images on all cores.
pub struct Model {
    /// SHA-256 of the file, hex: named in reports and signed records.
    pub sha256: String,
    /// The image input it takes.
    pub input: InputSpec,
    /// The tensor whose values are the embeddings.
    pub layer: String,
    /// Values per sample in `layer`.
    pub dims: usize,
    /// The classifier's output tensor and class count, when the graph ends
    /// in one whose count equals the dataset's: the model's own predictions.
    pub classifier: Option<(String, usize)>,
    /// How pixels were prepared.
    pub options: ModelOptions,
    batch: usize,
    plan: Arc<TypedRunnableModel>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Model {
    /// Reads and checks `opts.path` for a dataset of `n_classes` classes.
    pub fn load(opts: &ModelOptions, n_classes: usize) -> Result<Model> {
        let file = opts.path.as_path();
        let bytes = files::read_capped(file, MAX_MODEL_BYTES, "an ONNX model")?;
        let sha256 = files::sha256_hex(&bytes);
        let onnx = tract_onnx::onnx();
        let proto = files::without_panics(file, "an ONNX model", || {
            onnx.proto_model_for_read(&mut &bytes[..])
        })?
        .map_err(|e| Error::file(file, format!("is not an ONNX model: {e:#}")))?;
        drop(bytes);
        let info = graph::GraphInfo::new(file, &proto)?;
        let unsupported = info.unsupported(|op| onnx.op_register.0.contains_key(op));
        if !unsupported.is_empty() {
            return Err(Error::file(
                file,
                format!(
                    "uses operators poisonlens's ONNX runtime (tract) does not support: {}",
                    unsupported.join(", ")
                ),
            ));
        }
        let input = info.input(file)?;
        check_preparation(file, opts, &input)?;
        let (layer, layer_is_default) = match &opts.layer {
            Some(l) => (info.resolve_layer(file, l)?, false),
            None => (default_layer(file, &info)?, true),
        };
        let logits = info.logits().map(str::to_string);
        let batch = input.fixed_batch.unwrap_or_else(|| batch_size(&input));
        let mut outputs = vec![layer.clone()];
        if let Some(l) = logits.as_ref().filter(|l| **l != layer) {
            outputs.push(l.clone());
        }
        let typed = guarded(file, "preparing", || {
            onnx.model_for_proto_model(&proto)?
                .with_input_fact(0, f32::fact(input.shape(batch)).into())?
                .with_outputs_by_name(&outputs)?
                .into_optimized()
        })?;
        check_tensor_sizes(file, &typed)?;
        let dims = per_sample(file, &typed, 0, batch, &layer)?;
        let classes = match logits.as_ref() {
            Some(l) if *l == layer => Some(dims),
            // Scores that are not one row of floats per image (a label
            // output, say) are no predictions; the layer is still usable.
            Some(l) => per_sample(file, &typed, 1, batch, l).ok(),
            None => None,
        };
        if layer_is_default && classes.is_some_and(|c| c != n_classes) {
            return Err(Error::file(
                file,
                format!(
                    "classifies into {} classes but the dataset has {n_classes}: is this the model trained on it? Name a layer with --layer to use its activations anyway",
                    classes.unwrap_or(0)
                ),
            ));
        }
        let classifier = logits.zip(classes).filter(|(_, c)| *c == n_classes);
        let plan = guarded(file, "preparing", || typed.into_runnable())?;
        Ok(Model {
            sha256,
            input,
            layer,
            dims,
            classifier,
            options: opts.clone(),
            batch,
            plan,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.options.path
    }

    /// True when the layer was found as the classifier's input (no
    /// `--layer` given).
    pub fn layer_is_default(&self) -> bool {
        self.options.layer.is_none()
    }

    /// One line for reports and the window: file, hash, layer, input and
    /// preparation.
    pub fn describe(&self) -> String {
        format!(
            "model {} (sha256 {}), layer '{}'{} ({}-d), input '{}' {}",
            self.path().display(),
            &self.sha256[..12],
            self.layer,
            if self.layer_is_default() {
                " (the classifier's input)"
            } else {
                ""
            },
            self.dims,
            self.input.name,
            self.preparation()
        )
    }

    /// How images are prepared, in words: layout and size, then the value
    /// scaling ("NCHW 1×28×28, pixels × 1/255").
    pub fn preparation(&self) -> String {
        let i = &self.input;
        let o = &self.options;
        let scale = if (o.scale * 255.0 - 1.0).abs() < 1e-6 {
            "1/255".to_string()
        } else {
            o.scale.to_string()
        };
        let mut s = format!(
            "{} {}×{}×{}, pixels × {scale}",
            i.layout.name(),
            i.channels,
            i.height,
            i.width
        );
        if let Some(v) = &o.mean {
            s.push_str(&format!(", mean {v:?}"));
        }
        if let Some(v) = &o.std {
            s.push_str(&format!(", std {v:?}"));
        }
        s
    }

    /// Everything that decides the embeddings (file contents, layer, pixel
    /// preparation), as text: equal identities give equal embeddings, so a
    /// stored scan is reused only for the same model used the same way.
    pub fn identity(&self) -> String {
        let o = &self.options;
        format!(
            "onnx sha256 {} layer {} scale {:08x} mean {:?} std {:?}",
            self.sha256,
            self.layer,
            o.scale.to_bits(),
            o.mean,
            o.std
        )
    }

    /// Images per inference call.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Runs one batch (`values` holds `batch()` images' prepared values;
    /// unused slots are zero) and returns the layer's and classifier's
    /// values, one row per image.
    fn run_batch(&self, values: Vec<f32>) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        let file = self.path();
        let shape = self.input.shape(self.batch);
        let out = guarded(file, "running", || {
            let t = Tensor::from_shape(&shape, &values)?;
            self.plan.run(tvec!(t.into()))
        })?;
        let floats = |ix: usize| -> Result<Vec<f32>> {
            let t = out[ix]
                .to_plain_array_view::<f32>()
                .map_err(|e| Error::file(file, format!("output is not float: {e}")))?;
            Ok(t.iter().copied().collect())
        };
        let emb = floats(0)?;
        let logits = match (&self.classifier, out.len()) {
            (Some(_), 2) => Some(floats(1)?),
            (Some(_), _) => Some(emb.clone()),
            (None, _) => None,
        };
        Ok((emb, logits))
    }
}

/// Runs tract, turning its errors and panics into an error naming the file.
fn guarded<T>(file: &Path, doing: &str, f: impl FnOnce() -> TractResult<T>) -> Result<T> {
    files::without_panics(file, "an ONNX model", f)?
        .map_err(|e| Error::file(file, format!("{doing} the model failed: {e:#}")))
}

/// The classifier's input, or an error listing the layers to choose from.
fn default_layer(file: &Path, info: &graph::GraphInfo) -> Result<String> {
    info.penultimate().map(str::to_string).ok_or_else(|| {
        Error::file(
            file,
            format!(
                "cannot find a final classification layer (the graph ends with {}); name the layer to embed with --layer, one of: {}",
                info.describe_end(),
                info.candidates().join(", ")
            ),
        )
    })
}

/// Mean and std must give one finite value per model channel, std > 0.
fn check_preparation(file: &Path, opts: &ModelOptions, input: &InputSpec) -> Result<()> {
    if !(opts.scale.is_finite() && opts.scale > 0.0) {
        return Err(Error::Other(format!(
            "--scale must be a positive number, not {}",
            opts.scale
        )));
    }
    for (what, v) in [("--mean", &opts.mean), ("--std", &opts.std)] {
        let Some(v) = v else { continue };
        if v.len() != input.channels {
            return Err(Error::file(
                file,
                format!(
                    "input '{}' has {} channel(s) but {what} gives {} value(s)",
                    input.name,
                    input.channels,
                    v.len()
                ),
            ));
        }
        if v.iter()
            .any(|x| !x.is_finite() || (what == "--std" && *x <= 0.0))
        {
            return Err(Error::Other(format!(
                "{what} values must be finite (and --std positive): {v:?}"
            )));
        }
    }
    Ok(())
}

/// Images per call: up to 64, fewer when images are large (a batch's input
/// stays under 16 MiB of floats).
fn batch_size(input: &InputSpec) -> usize {
    ((1 << 22) / input.values_per_image().max(1)).clamp(1, 64)
}

/// Refuses a graph that would make a tensor too large for memory.
fn check_tensor_sizes(file: &Path, model: &TypedModel) -> Result<()> {
    for node in model.nodes() {
        for out in &node.outputs {
            let size = out
                .fact
                .shape
                .as_concrete()
                .map(|s| s.iter().try_fold(1usize, |a, &d| a.checked_mul(d)));
            match size {
                Some(Some(n)) if n <= MAX_TENSOR_VALUES => {}
                _ => {
                    return Err(Error::file(
                        file,
                        format!(
                            "node '{}' would make a tensor of shape {:?}, too large to run",
                            node.name, out.fact.shape
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Values per image in output `ix`, checking it has one row per image.
fn per_sample(
    file: &Path,
    model: &TypedModel,
    ix: usize,
    batch: usize,
    name: &str,
) -> Result<usize> {
    let fact = model
        .output_fact(ix)
        .map_err(|e| Error::file(file, format!("tensor '{name}': {e}")))?;
    let shape = fact.shape.as_concrete().unwrap_or(&[]).to_vec();
    let ok = fact.datum_type == f32::datum_type() && shape.first() == Some(&batch);
    let dims = shape.iter().skip(1).product::<usize>();
    if !ok || dims == 0 {
        return Err(Error::file(
            file,
            format!(
                "tensor '{name}' has shape {shape:?} ({:?}), not one row of floats per image",
                fact.datum_type
            ),
        ));
    }
    if dims > MAX_EMBEDDING_DIMS {
        return Err(Error::file(
            file,
            format!(
                "tensor '{name}' holds {dims} values per image, more than {MAX_EMBEDDING_DIMS}; choose a later (pooled or dense) layer"
            ),
        ));
    }
    Ok(dims)
}

/// Shared handle: a model is loaded once and used by the scan's image pass,
/// `embed` and the window.
pub type SharedModel = Arc<Model>;
