//! The user's own ONNX model as an input (issue #13): embeddings equal the
//! exporting framework's (onnxruntime's, stored by
//! `sample_data/make_model.py`), the CLI writes them, the scan uses them,
//! and a hostile or mismatched model is refused with the file and node named
//! and nothing written.

use crate::common;

use std::path::{Path, PathBuf};

use common::{ok, poisonlens, sample, sample_copy};
use poisonlens::dataset::model::{Layout, Model, ModelOptions, embed_all};
use poisonlens::dataset::npy::read_npy;
use poisonlens::dataset::{Dataset, OpenOptions};
use poisonlens::linalg::Matrix;
use prost::Message;
use tract_onnx::pb;

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn sample_model() -> PathBuf {
    sample().join("model.onnx")
}

/// Largest absolute difference between `ours` and the first rows of `reference`.
fn max_diff(ours: &Matrix, reference: &Matrix) -> f32 {
    assert_eq!(ours.cols, reference.cols);
    (0..reference.rows)
        .flat_map(|r| {
            ours.row(r)
                .iter()
                .zip(reference.row(r))
                .map(|(a, b)| (a - b).abs())
        })
        .fold(0.0, f32::max)
}

fn embed_sample(opts: &ModelOptions) -> (Model, poisonlens::dataset::model::Embedded) {
    let ds = Dataset::open(&sample(), &OpenOptions::default()).unwrap();
    let m = Model::load(opts, ds.classes.len()).unwrap();
    let e = embed_all(&ds, &m, None, &|_| {}, &|| false).unwrap();
    (m, e)
}

/// The sample model's penultimate activations and logits equal
/// onnxruntime's to 1e-4; the layer is found without being named.
#[test]
fn sample_model_embeddings_equal_onnxruntime() {
    let (m, e) = embed_sample(&ModelOptions::new(sample_model()));
    assert_eq!(m.layer, "penultimate");
    assert!(m.layer_is_default());
    assert_eq!(m.input.layout, Layout::Nchw);
    assert_eq!(
        (m.input.channels, m.input.height, m.input.width),
        (1, 28, 28)
    );
    assert_eq!(e.embeddings.rows, 3000);
    let reference = read_npy(&testdata("model_reference.npy")).unwrap();
    let d = max_diff(&e.embeddings, &reference);
    assert!(d <= 1e-4, "max abs difference {d}");
    let logits = e
        .logits
        .expect("the model classifies into the dataset's 10 classes");
    let d = max_diff(&logits, &read_npy(&testdata("model_logits.npy")).unwrap());
    assert!(d <= 1e-4, "logits differ by {d}");
    assert!(e.unreadable.is_empty());
}

/// A CNN taking NHWC 32×32 RGB (as a TensorFlow export would): the 28×28
/// grey images are resized and repeated into three channels, and the named
/// layer's values match onnxruntime's on the same preparation (PIL's
/// bilinear resize; the image crate's rounds a few pixels one level apart,
/// so the bound is looser than for the sample model).
#[test]
fn nhwc_cnn_takes_resized_rgb_images() {
    let mut opts = ModelOptions::new(testdata("lenet.onnx"));
    opts.layer = Some("relu_fc2".into());
    let (m, e) = embed_sample(&opts);
    assert_eq!(m.input.layout, Layout::Nhwc);
    assert_eq!(
        (m.input.channels, m.input.height, m.input.width),
        (3, 32, 32)
    );
    assert_eq!(m.layer, "f2r", "a node name resolves to its output tensor");
    assert_eq!(m.dims, 84);
    let reference = read_npy(&testdata("lenet_reference.npy")).unwrap();
    let d = max_diff(&e.embeddings, &reference);
    let scale = reference.data.iter().fold(0f32, |a, v| a.max(v.abs()));
    assert!(
        d <= 0.02 * scale,
        "max abs difference {d} (values up to {scale})"
    );
}

/// The CLI writes the same embeddings as a .npy, and a scan with `--model`
/// equals a scan given that file as `--embeddings`.
#[test]
fn embed_then_scan_equals_scan_with_model() {
    let dir = tempfile::tempdir().unwrap();
    let e = dir.path().join("e.npy");
    let model = sample_model();
    let out = ok(&[
        "embed",
        sample().to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--out",
        e.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.contains("3000 samples × 64 values"), "{out}");
    let written = read_npy(&e).unwrap();
    let reference = read_npy(&testdata("model_reference.npy")).unwrap();
    assert!(max_diff(&written, &reference) <= 1e-4);

    let data = sample();
    let scan = |extra: &[&str], name: &str| {
        let report = dir.path().join(name);
        let mut args = vec!["scan", "--quiet", "--no-cache", data.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", report.to_str().unwrap()]);
        ok(&args);
        let csv = std::fs::read_to_string(&report).unwrap();
        let flagged: Vec<String> = csv
            .lines()
            .skip(1)
            .filter(|l| l.contains(",true,"))
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect();
        flagged
    };
    let with_model = scan(&["--model", model.to_str().unwrap()], "m.csv");
    let with_file = scan(&["--embeddings", e.to_str().unwrap()], "f.csv");
    assert!(!with_model.is_empty());
    assert_eq!(with_model, with_file);
}

/// Writes `model` (the sample model, changed by `edit`) to `dir/name`.
fn edited_model(dir: &Path, name: &str, edit: impl FnOnce(&mut pb::ModelProto)) -> PathBuf {
    let bytes = std::fs::read(sample_model()).unwrap();
    let mut model = pb::ModelProto::decode(&bytes[..]).unwrap();
    edit(&mut model);
    let p = dir.join(name);
    std::fs::write(&p, model.encode_to_vec()).unwrap();
    p
}

/// Runs `embed` with `model` (and `extra` flags) and insists it fails,
/// writes nothing, and says everything in `expect`.
fn refused(dataset: &Path, model: &Path, extra: &[&str], expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.npy");
    let mut args = vec![
        "embed",
        dataset.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = poisonlens(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "accepted {model:?}: {err}");
    assert!(!out.exists(), "wrote embeddings for {model:?}");
    assert!(!err.contains("panicked"), "{err}");
    for e in expect {
        assert!(err.contains(e), "message lacks '{e}': {err}");
    }
}

/// Hostile and mismatched models: refused with the file (and node) named.
#[test]
fn bad_models_are_refused_with_the_node_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let name = |p: &Path| p.display().to_string();
    // Not ONNX at all.
    let csv = sample().join("manifest.csv");
    refused(&sample(), &csv, &[], &[&name(&csv), "not an ONNX model"]);
    // A FIFO: refused at once, never waited on.
    let fifo = d.join("fifo.onnx");
    mkfifo(&fifo);
    refused(&sample(), &fifo, &[], &["not a regular file"]);
    // An operator tract does not know.
    let weird = edited_model(d, "weird.onnx", |m| {
        m.graph.as_mut().unwrap().node[2].op_type = "FancyActivation".into();
    });
    refused(
        &sample(),
        &weird,
        &[],
        &["FancyActivation", "relu1", "not support"],
    );
    // A layer that does not exist: the candidates are listed.
    refused(
        &sample(),
        &sample_model(),
        &["--layer", "nope"],
        &[
            "no node or tensor named 'nope'",
            "penultimate",
            "classifier",
        ],
    );
    // An input no image fits: two channels.
    let two = edited_model(d, "two.onnx", |m| {
        let dims = input_dims(m);
        dims[1].value = Some(pb::tensor_shape_proto::dimension::Value::DimValue(2));
    });
    refused(&sample(), &two, &[], &["input 'image'", "1 or 3 channels"]);
    // A free image size.
    let free = edited_model(d, "free.onnx", |m| {
        let dims = input_dims(m);
        dims[2].value = Some(pb::tensor_shape_proto::dimension::Value::DimParam(
            "h".into(),
        ));
    });
    refused(&sample(), &free, &[], &["leaves the image size free"]);
    // Normalisation for three channels on a grey model.
    refused(
        &sample(),
        &sample_model(),
        &["--imagenet"],
        &["1 channel(s)", "--mean gives 3"],
    );
    // A dataset with other classes than the model's.
    let three = three_class_copy(d);
    refused(
        &three,
        &sample_model(),
        &[],
        &["classifies into 10 classes", "has 3", "--layer"],
    );
    // Truncated protobuf.
    let cut = d.join("cut.onnx");
    let bytes = std::fs::read(sample_model()).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    refused(&sample(), &cut, &[], &[&name(&cut)]);
}

/// The same classes-mismatched model is accepted for a named layer.
#[test]
fn a_named_layer_of_another_task_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let three = three_class_copy(dir.path());
    let ds = Dataset::open(&three, &OpenOptions::default()).unwrap();
    let mut opts = ModelOptions::new(sample_model());
    opts.layer = Some("relu2".into());
    let m = Model::load(&opts, ds.classes.len()).unwrap();
    assert!(
        m.classifier.is_none(),
        "10 scores are no predictions for 3 classes"
    );
    let e = embed_all(&ds, &m, None, &|_| {}, &|| false).unwrap();
    assert_eq!((e.embeddings.rows, e.embeddings.cols), (ds.len(), 64));
    assert!(e.logits.is_none());
}

fn input_dims(m: &mut pb::ModelProto) -> &mut Vec<pb::tensor_shape_proto::Dimension> {
    let input = &mut m.graph.as_mut().unwrap().input[0];
    let Some(pb::type_proto::Value::TensorType(t)) = input.r#type.as_mut().unwrap().value.as_mut()
    else {
        panic!("tensor input")
    };
    &mut t.shape.as_mut().unwrap().dim
}

/// A copy of the sample holding only its first 30 rows of three classes.
fn three_class_copy(dir: &Path) -> PathBuf {
    let data = sample_copy(dir);
    let text = std::fs::read_to_string(data.join("manifest.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let keep: Vec<&str> = lines
        .filter(|l| {
            ["Bag", "Coat", "Sneaker"]
                .iter()
                .any(|c| l.contains(&format!(",{c},")))
        })
        .take(30)
        .collect();
    std::fs::write(
        data.join("manifest.csv"),
        format!("{header}\n{}\n", keep.join("\n")),
    )
    .unwrap();
    std::fs::remove_file(data.join("embeddings.npy")).unwrap();
    data
}

/// An ONNX node, built by hand.
fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// A float input or output `name` of `dims` (`None`: a free batch).
fn tensor_info(name: &str, dims: &[Option<i64>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(v) => Value::DimValue(*v),
                None => Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A graph that looks harmless but repeats each 28×28 image 300 × 300
/// times (4.5 billion values a batch) before averaging it away: refused
/// before anything runs, with the node named.
#[test]
fn a_graph_that_would_exhaust_memory_is_refused_before_running() {
    let weights = |name: &str, dims: Vec<i64>, f: Vec<f32>, i: Vec<i64>| pb::TensorProto {
        name: name.into(),
        dims,
        data_type: if i.is_empty() {
            pb::tensor_proto::DataType::Float as i32
        } else {
            pb::tensor_proto::DataType::Int64 as i32
        },
        float_data: f,
        int64_data: i,
        ..Default::default()
    };
    let mut gemm = node("Gemm", "classifier", &["flat", "w", "b"], &["logits"]);
    gemm.attribute.push(pb::AttributeProto {
        name: "transB".into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: 1,
        ..Default::default()
    });
    let graph = pb::GraphProto {
        name: "tiles".into(),
        node: vec![
            node("Tile", "tile", &["image", "reps"], &["big"]),
            node("GlobalAveragePool", "pool", &["big"], &["pooled"]),
            node("Flatten", "flatten", &["pooled"], &["flat"]),
            gemm,
        ],
        initializer: vec![
            weights("reps", vec![4], vec![], vec![1, 1, 300, 300]),
            weights("w", vec![10, 1], vec![1.0; 10], vec![]),
            weights("b", vec![10], vec![0.0; 10], vec![]),
        ],
        input: vec![tensor_info("image", &[None, Some(1), Some(28), Some(28)])],
        output: vec![tensor_info("logits", &[None, Some(10)])],
        ..Default::default()
    };
    let model = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(graph),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tiles.onnx");
    std::fs::write(&p, model.encode_to_vec()).unwrap();
    refused(&sample(), &p, &[], &["node 'tile'", "too large to run"]);
}

/// A model whose layer gives NaN is refused, naming the first sample.
#[test]
fn a_layer_that_gives_nan_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let nan = edited_model(dir.path(), "nan.onnx", |m| {
        let g = m.graph.as_mut().unwrap();
        let bias = g
            .initializer
            .iter_mut()
            .find(|t| t.name == "fc2.bias")
            .unwrap();
        bias.raw_data = f32::NAN.to_le_bytes().repeat(64);
    });
    refused(
        &sample(),
        &nan,
        &["--layer", "fc2"],
        &["not a finite number", "row 1"],
    );
}

/// Labels changed after the model was trained: the model's own verdict
/// flags those samples and suggests the label it was trained with.
#[test]
fn the_models_own_verdict_flags_labels_changed_since_training() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample_copy(dir.path());
    let text = std::fs::read_to_string(data.join("manifest.csv")).unwrap();
    let mut changed = Vec::new();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(row, l)| {
            if row > 0 && l.contains(",Trouser,") && changed.len() < 20 {
                changed.push(row - 1);
                l.replace(",Trouser,", ",Bag,")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(data.join("manifest.csv"), lines.join("\n") + "\n").unwrap();
    let ds = Dataset::open(&data, &OpenOptions::default()).unwrap();
    let model = Model::load(&ModelOptions::new(sample_model()), ds.classes.len()).unwrap();
    // Without the images' own look (no input view) only the model's
    // neighbourhoods judge the labels, and twenty changed labels side by
    // side shield each other there: what the model's verdict adds shows.
    // (With images the flip-group test finds all twenty itself.)
    let opts = poisonlens::detect::ScanOptions {
        model: Some(std::sync::Arc::new(model)),
        use_images: false,
        ..Default::default()
    };
    let r = poisonlens::detect::scan(&ds, &opts, &|_, _| {}).unwrap();
    assert!(
        r.feature_source.contains("layer 'penultimate'"),
        "{}",
        r.feature_source
    );
    let d = r.detector("model_prediction").unwrap();
    let flagged: Vec<usize> = (0..ds.len()).filter(|&i| d.flagged[i]).collect();
    let trouser = ds.classes.iter().position(|c| c == "Trouser").unwrap() as u32;
    let caught = changed.iter().filter(|&&i| d.flagged[i]).count();
    assert!(caught >= 18, "{caught} of 20 changed labels flagged");
    assert!(flagged.len() <= caught + 5, "{} flagged", flagged.len());
    for &i in &changed {
        if d.flagged[i] {
            assert_eq!(d.suggestion(i), Some(trouser));
            assert!(d.reason(i).unwrap().contains("'Trouser'"));
        }
    }
    // It corroborates: its reason joins the other detectors' flags, and it
    // flags nothing they did not.
    for &i in &changed {
        if r.flagged[i] && d.flagged[i] {
            assert!(
                r.reasons[i].contains("the model itself puts"),
                "{}",
                r.reasons[i]
            );
        }
    }
    let alone: Vec<usize> = (0..ds.len())
        .filter(|&i| {
            d.flagged[i]
                && !r
                    .detectors
                    .iter()
                    .any(|s| s.name != "model_prediction" && s.flagged[i])
        })
        .collect();
    assert!(!alone.is_empty(), "some of its marks are its own");
    assert!(alone.iter().all(|&i| !r.flagged[i]), "it flagged alone");
    // With the images, the twenty are a group of bags that look like
    // trousers, spread as trousers are: labels flipped in bulk.
    let with_images = poisonlens::detect::ScanOptions {
        use_images: true,
        ..opts
    };
    let r = poisonlens::detect::scan(&ds, &with_images, &|_, _| {}).unwrap();
    let found = changed.iter().filter(|&&i| r.flagged[i]).count();
    assert_eq!(
        found,
        changed.len(),
        "{found} of the changed labels flagged"
    );
}

/// The signed record names the model (file, SHA-256, layer, preparation);
/// `verify` says so, and notices when the file now holds another model.
#[test]
fn the_signed_record_names_the_model_and_verify_reports_it() {
    let t = common::signed::signed();
    let model = t.dir.join("model.onnx");
    std::fs::copy(sample_model(), &model).unwrap();
    let out = t.dir.join("export_with_model");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    ok(&[
        "export",
        &s(&t.data),
        "--out",
        &s(&out),
        "--sign",
        &s(&t.key),
        "--identity",
        "ana@example.org",
        "--model",
        &s(&model),
    ]);
    let record: poisonlens::manifest::record::Record =
        serde_json::from_slice(&std::fs::read(out.join("record.json")).unwrap()).unwrap();
    let m = record.model.expect("the record names the model");
    let bytes = std::fs::read(&model).unwrap();
    use sha2::Digest;
    assert_eq!(m.sha256, format!("{:x}", sha2::Sha256::digest(&bytes)));
    assert_eq!(m.layer, "penultimate");
    assert!(
        m.preparation.contains("NCHW 1×28×28, pixels × 1/255"),
        "{}",
        m.preparation
    );
    let verify = |expect: &str| {
        let o = poisonlens(&["verify", &s(&out), "--allowed-signers", &s(&t.allowed)]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert!(err.contains(&format!("sha256 {}", m.sha256)), "{err}");
        assert!(err.contains(expect), "{err}");
    };
    verify("the file there still holds it");
    std::fs::copy(testdata("lenet.onnx"), &model).unwrap();
    verify("the file there now holds another model");
    // A FIFO where the record says the model is: noted at once, never read.
    std::fs::remove_file(&model).unwrap();
    mkfifo(&model);
    verify("cannot be checked here");
    verify("not a regular file");
    // Records without a model (every earlier one) still read and verify.
    assert!(common::signed::record(&t).model.is_none());
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// `--out` naming a FIFO: the embeddings are written beside it and renamed
/// over it, never written into it (which would wait for a reader forever).
#[test]
fn embeddings_written_over_a_fifo_replace_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.npy");
    mkfifo(&out);
    let model = sample_model();
    ok(&[
        "embed",
        sample().to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(std::fs::metadata(&out).unwrap().is_file());
    assert_eq!(read_npy(&out).unwrap().rows, 3000);
}
