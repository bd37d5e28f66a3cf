#!/usr/bin/env bash
# Draws zoo-style poisoned sets larger than ../shared/devzoo/make_zoo.py allows,
# for timing a realistic whole scan (README, Performance): the same generator
# and attack draws, but images from Fashion-MNIST's training split (60,000;
# the zoo uses the 10,000 test images, at most 900 a class) and a 64-d model.
#
# Usage: tools/make_big_zoo_set.sh OUT [make_zoo.py options...]
#   e.g. tools/make_big_zoo_set.sh /tmp/big --seeds 2200,2202 --n-per-class 2000 --family patch
# Needs the zoo's Python environment (pip install -r ../shared/devzoo/requirements.txt).
# Run from the repository root. The generator is patched in a temporary
# copy; ../shared is left as it is.
set -euo pipefail
out=${1:?usage: tools/make_big_zoo_set.sh OUT [make_zoo.py options...]}
shift
zoo=${ZOO_DIR:-../shared/devzoo}
python=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$zoo"/*.py "$tmp/"
sed -e 's/T10K = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")/T10K = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")/' \
    -e 's/^HIDDEN_CHOICES = .*/HIDDEN_CHOICES = ((256, 64),)/' \
    -e 's/<= 900:/<= 5900:/' \
    "$zoo/make_zoo.py" > "$tmp/make_zoo.py"
for edit in 'train-images-idx3-ubyte.gz' 'HIDDEN_CHOICES = ((256, 64),)' '<= 5900:'; do
  grep -qF "$edit" "$tmp/make_zoo.py" || { echo "make_zoo.py changed: could not apply '$edit'" >&2; exit 1; }
done
"$python" "$tmp/make_zoo.py" --out "$out" "$@"
