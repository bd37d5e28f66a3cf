#!/usr/bin/env python3
"""Regenerates sample_data/: a small, real, poisoned Fashion-MNIST dataset.

Needs Debian's dataset-fashion-mnist package and numpy, scikit-learn, pillow
(`pip install numpy scikit-learn pillow`). Deterministic for a given --seed.

What it makes (in sample_data/):
  images/NNNNNN.png   28x28 grayscale images
  manifest.csv        id, path, label, source_index (metadata kept by poisonlens)
  embeddings.npy      N x 64 float32: last hidden layer of an MLP trained on
                      the poisoned data (what a real pipeline would export)
  truth.csv           id, poisoned, kind, original_label (for evaluation only)
"""
import argparse, gzip, json, os
import numpy as np
from PIL import Image
from sklearn.neural_network import MLPClassifier

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SRC = "/usr/share/datasets/fashion-mnist"


def read_idx(name):
    with gzip.open(os.path.join(SRC, name)) as f:
        data = f.read()
    if name.endswith("images-idx3-ubyte.gz"):
        return np.frombuffer(data, np.uint8, offset=16).reshape(-1, 28, 28)
    return np.frombuffer(data, np.uint8, offset=8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "sample_data"))
    ap.add_argument("--per-class", type=int, default=300)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--target", default="Bag")
    ap.add_argument("--backdoor-rate", type=float, default=0.05)
    ap.add_argument("--flip-rate", type=float, default=0.04)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    x, y = read_idx("train-images-idx3-ubyte.gz"), read_idx("train-labels-idx1-ubyte.gz")
    idx = np.concatenate([rng.choice(np.where(y == c)[0], a.per_class, replace=False) for c in range(10)])
    rng.shuffle(idx)
    imgs = x[idx].copy()
    labels = y[idx].astype(int).copy()
    orig = labels.copy()
    kind = np.array(["clean"] * len(idx), dtype=object)
    target = CLASSES.index(a.target)
    # Backdoor: a 3x3 white patch in the bottom-right corner, relabelled to target.
    non_target = np.where(labels != target)[0]
    bd = rng.choice(non_target, int(round(a.backdoor_rate * len(non_target))), replace=False)
    imgs[bd, 23:26, 23:26] = 255
    labels[bd] = target
    kind[bd] = "backdoor"
    # Random label flips among the rest, to a uniformly chosen other class.
    rest = np.setdiff1d(np.arange(len(idx)), bd)
    fl = rng.choice(rest, int(round(a.flip_rate * len(idx))), replace=False)
    for i in fl:
        labels[i] = rng.choice([c for c in range(10) if c != labels[i]])
    kind[fl] = "flip"
    # Train the model on the poisoned data and export its penultimate layer.
    clf = MLPClassifier(hidden_layer_sizes=(256, 64), max_iter=25, batch_size=200,
                        random_state=a.seed)
    X = imgs.reshape(len(idx), -1) / 255.0
    clf.fit(X, labels)
    h = X
    for W, b in zip(clf.coefs_[:-1], clf.intercepts_[:-1]):
        h = np.maximum(h @ W + b, 0)
    emb = h.astype(np.float32)
    os.makedirs(os.path.join(a.out, "images"), exist_ok=True)
    ids = [f"{i:06d}" for i in range(len(idx))]
    for i, im in enumerate(imgs):
        Image.fromarray(im, mode="L").save(os.path.join(a.out, "images", ids[i] + ".png"), optimize=True)
    with open(os.path.join(a.out, "manifest.csv"), "w") as f:
        f.write("id,path,label,source_index\n")
        for i in range(len(idx)):
            f.write(f"{ids[i]},images/{ids[i]}.png,{CLASSES[labels[i]]},{idx[i]}\n")
    with open(os.path.join(a.out, "truth.csv"), "w") as f:
        f.write("id,poisoned,kind,original_label\n")
        for i in range(len(idx)):
            f.write(f"{ids[i]},{int(kind[i] != 'clean')},{kind[i]},{CLASSES[orig[i]]}\n")
    np.save(os.path.join(a.out, "embeddings.npy"), emb)
    meta = {"seed": a.seed, "per_class": a.per_class, "target": a.target,
            "trigger": "3x3 value 255 at rows 23..25, cols 23..25",
            "backdoor": int(len(bd)), "flip": int(len(fl)),
            "train_acc_on_given_labels": float(clf.score(X, labels)),
            "source": "Fashion-MNIST train set, Debian package dataset-fashion-mnist"}
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
