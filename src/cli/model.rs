//! `--model` and its preparation flags, shared by `embed`, `scan`, `export`
//! and the workbench; and `poisonlens embed`, which writes the model's
//! activations as a `.npy` anyone (NumPy included) can read.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use poisonlens::Error;
use poisonlens::dataset::model::{self, Model, ModelOptions};
use poisonlens::dataset::{Dataset, OpenOptions, npy};

/// The user's ONNX model and how images are prepared for it.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ModelArgs {
    /// The model trained on this dataset (.onnx): its activations become the
    /// embeddings (computed here, no Python step).
    #[arg(long, value_name = "MODEL.onnx")]
    pub model: Option<PathBuf>,
    /// Node or tensor whose values are the embeddings (default: the input of
    /// the final classification layer).
    #[arg(long, value_name = "NAME", requires = "model")]
    pub layer: Option<String>,
    /// Multiply pixel values (0–255) by this before the model (default 1/255).
    #[arg(long, value_name = "FACTOR", requires = "model")]
    pub scale: Option<f32>,
    /// Per-channel mean subtracted after scaling, comma-separated.
    #[arg(
        long,
        value_name = "M1,M2,M3",
        value_delimiter = ',',
        requires = "model"
    )]
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviation divided by after the mean.
    #[arg(
        long,
        value_name = "S1,S2,S3",
        value_delimiter = ',',
        requires = "model"
    )]
    pub std: Option<Vec<f32>>,
    /// torchvision's ImageNet normalisation (mean 0.485,0.456,0.406, std
    /// 0.229,0.224,0.225).
    #[arg(long, requires = "model", conflicts_with_all = ["mean", "std"])]
    pub imagenet: bool,
}

impl ModelArgs {
    /// The options these flags ask for, if a model was given.
    pub fn options(&self) -> Option<ModelOptions> {
        let path = self.model.clone()?;
        let mut o = ModelOptions::new(path);
        o.layer = self.layer.clone();
        if let Some(s) = self.scale {
            o.scale = s;
        }
        o.mean = self.mean.clone();
        o.std = self.std.clone();
        if self.imagenet {
            o.mean = Some(model::IMAGENET_MEAN.to_vec());
            o.std = Some(model::IMAGENET_STD.to_vec());
        }
        Some(o)
    }

    /// Loads and checks the model for `ds`, saying what was loaded.
    pub fn load(&self, ds: &Dataset) -> Result<Option<Model>, Error> {
        let Some(opts) = self.options() else {
            return Ok(None);
        };
        let m = Model::load(&opts, ds.classes.len())?;
        eprintln!("{}", m.describe());
        Ok(Some(m))
    }
}

/// `poisonlens embed DATASET --model M --out E.npy`.
pub fn embed(dataset: &Path, model: &ModelArgs, out: &Path, quiet: bool) -> Result<(), Error> {
    let t0 = Instant::now();
    let ds = Dataset::open(dataset, &OpenOptions::default())?;
    ds.refuse_as_output(out)?;
    if out.extension().and_then(|e| e.to_str()) != Some("npy") {
        return Err(Error::file(
            out,
            "embeddings are written as .npy; name the file *.npy",
        ));
    }
    let Some(m) = model.load(&ds)? else {
        return Err(Error::Other("embed needs --model MODEL.onnx".into()));
    };
    let n = ds.len();
    let tty = std::io::stderr().is_terminal() && !quiet;
    let progress = |k: usize| {
        if tty {
            eprint!("\r\x1b[2Kembedding {k}/{n}");
        }
    };
    let e = model::embed_all(&ds, &m, None, &progress, &|| false)?;
    if tty {
        eprint!("\r\x1b[2K");
    }
    if let Some((i, why)) = e.unreadable.first() {
        return Err(Error::Other(format!(
            "{} image(s) could not be read, so they have no embedding; nothing written. First: sample '{}' (row {}): {why}",
            e.unreadable.len(),
            ds.ids[*i],
            i + 1
        )));
    }
    npy::write_npy(out, &e.embeddings)?;
    println!(
        "wrote {} ({} samples × {} values, layer '{}') in {:.1}s",
        out.display(),
        n,
        m.dims,
        m.layer,
        t0.elapsed().as_secs_f32()
    );
    Ok(())
}
