//! Speed and memory of embedding a dataset with the user's ONNX model, as
//! `poisonlens embed` does it: load and check the model, decode every
//! image, prepare it and run the model in batches on all cores.
//! Run: `cargo run --release --no-default-features --example bench_embed DATASET [MODEL.onnx…]`
//! Default models: sample_data/model.onnx (MLP 784-128-64-10) and
//! tests/data/lenet.onnx (LeNet-5, 32×32 RGB input). Prints, per model,
//! the whole time and its parts (load, decode + prepare + run) and the
//! process's peak RSS.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::peak_rss_mb;
use poisonlens::dataset::model::{Model, ModelOptions, embed_all};
use poisonlens::dataset::{Dataset, OpenOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let dataset = PathBuf::from(
        args.next()
            .expect("usage: bench_embed DATASET [MODEL.onnx…]"),
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut models: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if models.is_empty() {
        models = vec![
            root.join("sample_data/model.onnx"),
            root.join("tests/data/lenet.onnx"),
        ];
    }
    let t = Instant::now();
    let ds = Dataset::open(&dataset, &OpenOptions::default()).expect("open dataset");
    println!(
        "opened {} ({} samples) in {:.2}s",
        dataset.display(),
        ds.len(),
        t.elapsed().as_secs_f64()
    );
    for path in models {
        let whole = Instant::now();
        let mut opts = ModelOptions::new(&path);
        // LeNet's classifier has the sample's 10 classes; name its last
        // hidden layer so the bench also runs on datasets of other classes.
        if path.ends_with("lenet.onnx") {
            opts.layer = Some("relu_fc2".into());
        }
        let m = Model::load(&opts, ds.classes.len()).expect("load model");
        let loaded = whole.elapsed().as_secs_f64();
        let t = Instant::now();
        let e = embed_all(&ds, &m, None, &|_| {}, &|| false).expect("embed");
        let ran = t.elapsed().as_secs_f64();
        println!(
            "{}: {} × {} in {:.2}s (load {:.2}s, decode + prepare + run {:.2}s, {:.0} images/s), batch {}, peak RSS {:.0} MB",
            path.file_name().unwrap().to_string_lossy(),
            e.embeddings.rows,
            e.embeddings.cols,
            whole.elapsed().as_secs_f64(),
            loaded,
            ran,
            ds.len() as f64 / ran,
            m.batch(),
            peak_rss_mb()
        );
    }
}
