"""Makes sample_data/model.onnx: a small classifier trained on sample_data,
as a user would export their own model — plus the reference outputs the
tests compare poisonlens's pure-Rust inference against.

The model is trained on the *given* (poisoned) labels, as the model being
audited would have been, so it has learned the backdoor and the flips.

    python -m venv venv && venv/bin/pip install numpy onnx onnxruntime scikit-learn pillow
    venv/bin/python sample_data/make_model.py
    venv/bin/python sample_data/make_model.py DATASET_DIR OUT.onnx [256,64 [EPOCHS [SEED]]]

Writes (all deterministic for the seed):
  sample_data/model.onnx            MLP 784-128-64-C: Flatten, Gemm, Relu, Gemm, Relu, Gemm
  tests/data/model_reference.npy    onnxruntime's 64-d penultimate activations, first 256 samples
  tests/data/model_logits.npy       onnxruntime's logits for the same samples
  tests/data/lenet.onnx             a LeNet-size CNN (random weights) taking NHWC 32x32 RGB
  tests/data/lenet_reference.npy    its penultimate activations for the first 64 samples,
                                    images resized (bilinear, as poisonlens does) and grey→RGB
"""

import csv
import os
import sys

# One BLAS thread: multi-threaded sums round differently run to run, and
# the model must come out the same each time.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402 (after the thread setting)
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from sklearn.neural_network import MLPClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TESTDATA = os.path.join(ROOT, "tests", "data")


def load_sample_data(folder=HERE):
    with open(os.path.join(folder, "manifest.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    classes = sorted({r["label"] for r in rows})
    x = np.stack(
        [np.asarray(Image.open(os.path.join(folder, r["path"])).convert("L"), dtype=np.float32) for r in rows]
    )
    y = np.array([classes.index(r["label"]) for r in rows])
    return x, y, classes


def gemm(name, inp, out, w, b):
    """A Gemm node as torch.nn.Linear exports it (weights stored out×in, transB=1)."""
    inits = [
        numpy_helper.from_array(w.astype(np.float32), f"{name}.weight"),
        numpy_helper.from_array(b.astype(np.float32), f"{name}.bias"),
    ]
    node = helper.make_node("Gemm", [inp, f"{name}.weight", f"{name}.bias"], [out], name=name, transB=1)
    return node, inits


def model_of(nodes, inits, name, inp, out):
    """A float-in, float-out model of opset 13 (what torch.onnx.export writes by default)."""
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(inp[0], TensorProto.FLOAT, inp[1])],
        [helper.make_tensor_value_info(out[0], TensorProto.FLOAT, out[1])],
        inits,
    )
    model = helper.make_model(graph, producer_name="poisonlens make_model.py", opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def save(model, path):
    onnx.checker.check_model(model)
    onnx.save(model, path)
    print("wrote", path, os.path.getsize(path), "bytes")


def make_mlp(x, y, n_classes, hidden=(128, 64), epochs=300, seed=0):
    clf = MLPClassifier(hidden_layer_sizes=hidden, random_state=seed, max_iter=epochs)
    clf.fit(x.reshape(len(x), -1) / 255.0, y)
    print("train accuracy on the given labels:", clf.score(x.reshape(len(x), -1) / 255.0, y))
    (w1, w2, w3), (b1, b2, b3) = clf.coefs_, clf.intercepts_
    nodes, inits = [helper.make_node("Flatten", ["image"], ["flat"], name="flatten")], []
    for name, inp, out, w, b in [
        ("fc1", "flat", "fc1_out", w1, b1),
        ("fc2", "relu1_out", "fc2_out", w2, b2),
        ("classifier", "penultimate", "logits", w3, b3),
    ]:
        node, ini = gemm(name, inp, out, w.T, b)
        nodes.append(node)
        inits += ini
        if name == "fc1":
            nodes.append(helper.make_node("Relu", ["fc1_out"], ["relu1_out"], name="relu1"))
        if name == "fc2":
            nodes.append(helper.make_node("Relu", ["fc2_out"], ["penultimate"], name="relu2"))
    return model_of(nodes, inits, "sample_mlp", ("image", ["batch", 1, 28, 28]), ("logits", ["batch", n_classes]))


def make_lenet(n_classes, rng):
    """LeNet-5 shaped, NHWC 32×32×3 input (as a TensorFlow export would be)."""
    def w(*shape):
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    inits = [
        numpy_helper.from_array(w(6, 3, 5, 5), "conv1.weight"),
        numpy_helper.from_array(np.zeros(6, np.float32) + 0.01, "conv1.bias"),
        numpy_helper.from_array(w(16, 6, 5, 5), "conv2.weight"),
        numpy_helper.from_array(np.zeros(16, np.float32) + 0.01, "conv2.bias"),
    ]
    nodes = [
        helper.make_node("Transpose", ["input"], ["nchw"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "conv1.weight", "conv1.bias"], ["c1"], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.weight", "conv2.bias"], ["c2"], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["flat"], name="flatten"),
    ]
    for name, inp, out, shape in [
        ("fc1", "flat", "f1", (120, 400)),
        ("fc2", "f1r", "f2", (84, 120)),
        ("fc3", "f2r", "logits", (n_classes, 84)),
    ]:
        node, ini = gemm(name, inp, out, w(*shape), np.zeros(shape[0]))
        nodes.append(node)
        inits += ini
        if name != "fc3":
            nodes.append(helper.make_node("Relu", [out], [out + "r"], name="relu_" + name))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1))
    return model_of(nodes, inits, "lenet_nhwc", ("input", ["N", 32, 32, 3]), ("probabilities", ["N", n_classes]))


def run(model, feed_name, batch, output):
    """Runs `model` under onnxruntime and returns the tensor named `output`."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    model.graph.output.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run([output], {feed_name: batch})[0]


def main():
    if len(sys.argv) > 1:
        return other_dataset(sys.argv[1:])
    os.makedirs(TESTDATA, exist_ok=True)
    x, y, classes = load_sample_data()
    mlp = make_mlp(x, y, len(classes))
    save(mlp, os.path.join(HERE, "model.onnx"))
    head = (x[:256] / 255.0)[:, None, :, :].astype(np.float32)
    np.save(os.path.join(TESTDATA, "model_reference.npy"), run(mlp, "image", head, "penultimate"))
    np.save(os.path.join(TESTDATA, "model_logits.npy"), run(mlp, "image", head, "logits"))

    lenet = make_lenet(len(classes), np.random.default_rng(0))
    save(lenet, os.path.join(TESTDATA, "lenet.onnx"))
    imgs = [Image.fromarray(a.astype(np.uint8)).convert("RGB").resize((32, 32), Image.BILINEAR) for a in x[:64]]
    nhwc = np.stack([np.asarray(i, dtype=np.float32) / 255.0 for i in imgs])
    np.save(os.path.join(TESTDATA, "lenet_reference.npy"), run(lenet, "input", nhwc, "f2r"))
    return 0


def other_dataset(args):
    """`make_model.py DATASET_DIR OUT.onnx [HIDDEN1,HIDDEN2 [EPOCHS [SEED]]]`: the same
    kind of model trained on another dataset's given labels (README's
    *Your own model* figures use it on ../shared/devsets)."""
    folder, out = args[0], args[1]
    hidden = tuple(int(v) for v in args[2].split(",")) if len(args) > 2 else (256, 64)
    epochs = int(args[3]) if len(args) > 3 else 25
    seed = int(args[4]) if len(args) > 4 else 7
    x, y, classes = load_sample_data(folder)
    save(make_mlp(x, y, len(classes), hidden, epochs, seed), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
