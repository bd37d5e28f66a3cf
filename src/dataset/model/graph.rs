//! Reading what a model expects and offers from its ONNX graph alone —
//! before any inference — so a wrong input, a missing layer or a model of
//! another task is refused with the node named, and nothing is computed.

use std::collections::HashMap;
use std::path::Path;

use tract_onnx::pb;

use crate::error::{Error, Result};

/// How the image tensor is laid out, read from the graph's input shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Batch, channels, height, width (PyTorch's export).
    Nchw,
    /// Batch, height, width, channels (TensorFlow/Keras's export).
    Nhwc,
    /// Batch, height, width: one grey channel without a channel axis.
    Nhw,
    /// Batch, values: the image flattened channel by channel (`x.view(N, -1)`).
    Flat,
}

impl Layout {
    /// The layout's name as written in reports.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Nchw => "NCHW",
            Layout::Nhwc => "NHWC",
            Layout::Nhw => "NHW",
            Layout::Flat => "flat",
        }
    }
}

/// The image input a model declares: what every image is turned into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// The graph input's name.
    pub name: String,
    /// Tensor layout.
    pub layout: Layout,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Image height the model takes.
    pub height: usize,
    /// Image width the model takes.
    pub width: usize,
    /// The batch size fixed in the graph, or `None` when it is free.
    pub fixed_batch: Option<usize>,
}

impl InputSpec {
    /// Values in one image's tensor.
    pub fn values_per_image(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The input's shape for a batch of `b` images.
    pub fn shape(&self, b: usize) -> Vec<usize> {
        let (c, h, w) = (self.channels, self.height, self.width);
        match self.layout {
            Layout::Nchw => vec![b, c, h, w],
            Layout::Nhwc => vec![b, h, w, c],
            Layout::Nhw => vec![b, h, w],
            Layout::Flat => vec![b, c * h * w],
        }
    }
}

/// The tensors of a graph a user can ask for, and who makes them.
pub struct GraphInfo<'a> {
    graph: &'a pb::GraphProto,
    producer: HashMap<&'a str, &'a pb::NodeProto>,
}

/// Ops that only rescale a classifier's scores: the logits are their input.
const SCORE_OPS: [&str; 5] = ["Softmax", "LogSoftmax", "Sigmoid", "Identity", "Dropout"];

impl<'a> GraphInfo<'a> {
    /// Indexes `model`'s graph; refuses a model without one.
    pub fn new(file: &Path, model: &'a pb::ModelProto) -> Result<Self> {
        let graph = model
            .graph
            .as_ref()
            .ok_or_else(|| Error::file(file, "the ONNX model holds no graph"))?;
        let producer = graph
            .node
            .iter()
            .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
            .collect();
        Ok(GraphInfo { graph, producer })
    }

    /// The one image input (graph inputs that are not weights).
    pub fn input(&self, file: &Path) -> Result<InputSpec> {
        let weights: std::collections::HashSet<&str> = self
            .graph
            .initializer
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        let inputs: Vec<&pb::ValueInfoProto> = self
            .graph
            .input
            .iter()
            .filter(|i| !weights.contains(i.name.as_str()))
            .collect();
        let [input] = inputs.as_slice() else {
            let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(Error::file(
                file,
                format!(
                    "poisonlens feeds a model one image input, this one has {} ({})",
                    names.len(),
                    names.join(", ")
                ),
            ));
        };
        input_spec(file, input)
    }

    /// The tensor the scores come from when the graph ends in a classifier:
    /// the graph's first output with any softmax-like step undone.
    pub fn logits(&self) -> Option<&'a str> {
        let mut name = self.graph.output.first()?.name.as_str();
        for _ in 0..self.graph.node.len() {
            let node = self.producer.get(name)?;
            if !SCORE_OPS.contains(&node.op_type.as_str()) {
                return Some(name);
            }
            name = node.input.first()?.as_str();
        }
        None
    }

    /// The input of the final classification layer (the penultimate
    /// activations): what activation clustering and spectral signatures are
    /// defined on. `None` when the graph does not end in a Gemm or MatMul.
    pub fn penultimate(&self) -> Option<&'a str> {
        let node = self.producer.get(self.logits()?)?;
        let dense = match node.op_type.as_str() {
            "Gemm" | "MatMul" => node,
            // MatMul then Add (a bias added separately).
            "Add" => node
                .input
                .iter()
                .filter_map(|i| self.producer.get(i.as_str()))
                .find(|n| n.op_type == "MatMul")?,
            _ => return None,
        };
        dense.input.first().map(|s| s.as_str())
    }

    /// What makes the logits, in words, for messages ("Conv 'head'").
    pub fn describe_end(&self) -> String {
        match self.logits().and_then(|l| self.producer.get(l)) {
            Some(n) => format!("{} '{}'", n.op_type, n.name),
            None => "no operator".into(),
        }
    }

    /// The tensor a `--layer` names: a tensor name, or a node name (its
    /// first output). Lists the candidates when there is no such thing.
    pub fn resolve_layer(&self, file: &Path, layer: &str) -> Result<String> {
        if self.producer.contains_key(layer) {
            return Ok(layer.to_string());
        }
        if let Some(out) = self
            .graph
            .node
            .iter()
            .find(|n| n.name == layer)
            .and_then(|n| n.output.first())
        {
            return Ok(out.clone());
        }
        Err(Error::file(
            file,
            format!(
                "the model has no node or tensor named '{layer}'; its layers are: {}",
                self.candidates().join(", ")
            ),
        ))
    }

    /// Every node, as "node → tensor (Op)", in graph order: what `--layer`
    /// accepts.
    pub fn candidates(&self) -> Vec<String> {
        self.graph
            .node
            .iter()
            .filter_map(|n| {
                let out = n.output.first()?;
                Some(if n.name.is_empty() || &n.name == out {
                    format!("{out} ({})", n.op_type)
                } else {
                    format!("{} → {out} ({})", n.name, n.op_type)
                })
            })
            .collect()
    }

    /// Operators tract cannot run, by node, for a message naming them.
    pub fn unsupported(&self, known: impl Fn(&str) -> bool) -> Vec<String> {
        self.graph
            .node
            .iter()
            .filter(|n| !known(&n.op_type))
            .map(|n| format!("{} (node '{}')", n.op_type, n.name))
            .collect()
    }
}

/// Most values a flattened image input may take (an 8192² RGB image).
const MAX_FLAT_VALUES: i64 = 3 * 8192 * 8192;

/// Reads one dimension: its size, or `None` when it is symbolic.
fn dim(d: &pb::tensor_shape_proto::Dimension) -> Option<i64> {
    match d.value {
        Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) => Some(v),
        _ => None,
    }
}

/// The layout, channels and size of an image input from its declared type.
fn input_spec(file: &Path, input: &pb::ValueInfoProto) -> Result<InputSpec> {
    let name = input.name.clone();
    let refuse = |why: String| Error::file(file, format!("input '{name}': {why}"));
    let Some(pb::type_proto::Value::TensorType(t)) =
        input.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(refuse("is not a tensor".into()));
    };
    if t.elem_type != pb::tensor_proto::DataType::Float as i32 {
        return Err(refuse(format!(
            "takes elements of ONNX type {}; poisonlens feeds images as 32-bit floats",
            t.elem_type
        )));
    }
    let dims: Vec<Option<i64>> = t
        .shape
        .as_ref()
        .map(|s| s.dim.iter().map(dim).collect())
        .unwrap_or_default();
    let fixed_batch = match dims.first() {
        Some(Some(b)) if *b >= 1 => Some(*b as usize),
        Some(None) => None,
        _ => {
            return Err(refuse(format!(
                "has shape {dims:?}, which cannot take a batch of images"
            )));
        }
    };
    let size = |d: &Option<i64>| {
        match d {
        Some(v) if (1..=8192).contains(v) => Ok(*v as usize),
        Some(v) => Err(refuse(format!("declares an image side of {v}"))),
        None => Err(refuse(
            "leaves the image size free; poisonlens needs a fixed size to resize images to (export the model with one)".into(),
        )),
    }
    };
    let channels = |d: &Option<i64>| matches!(d, Some(1) | Some(3));
    let (layout, c, h, w) = match dims.as_slice() {
        [_, c, h, w] if channels(c) => (Layout::Nchw, size(c)?, size(h)?, size(w)?),
        [_, h, w, c] if channels(c) => (Layout::Nhwc, size(c)?, size(h)?, size(w)?),
        [_, h, w] => (Layout::Nhw, 1, size(h)?, size(w)?),
        [_, Some(f)] if (1..=MAX_FLAT_VALUES).contains(f) => {
            let f = *f as usize;
            let side = |v: usize| {
                let s = (v as f64).sqrt().round() as usize;
                (s * s == v).then_some(s)
            };
            match (side(f), f.is_multiple_of(3).then(|| side(f / 3)).flatten()) {
                (Some(s), _) => (Layout::Flat, 1, s, s),
                (None, Some(s)) => (Layout::Flat, 3, s, s),
                _ => {
                    return Err(refuse(format!(
                        "takes {f} values per sample, which is no square grey or RGB image"
                    )));
                }
            }
        }
        _ => {
            return Err(refuse(format!(
                "has shape {dims:?}; poisonlens feeds images as NCHW, NHWC, NHW or flattened tensors with 1 or 3 channels"
            )));
        }
    };
    Ok(InputSpec {
        name,
        layout,
        channels: c,
        height: h,
        width: w,
        fixed_batch,
    })
}
