#!/usr/bin/env bash
# Inference (encode, quantize, decode; no gradients) of the project's model1 beside the Keras and
# PyTorch peers' forward pass, in one run, 2 interleaved rounds: the inference companion of
# ../shared/peers/side_by_side.sh (which times the train step), with the same venvs and settings.
# Run it from the project's root:
#   bash benchmarks/side_by_side_inference.sh                 (N=10 bash ... for 10 levels)
# Extra arguments go to benchmarks/train_step.py (e.g. --compute_dtypes=bfloat16).
set -u
peers=${PEERS:-$PWD/../shared/peers}
[ -f benchmarks/train_step.py ] && [ -f "$peers/keras_peer.py" ] || {
  echo "run from the project's root with the peers in $peers (PEERS=...)"; exit 2; }
TF_PY=${TF_PY:-$PWD/../venv-tf/bin/python}
TORCH_PY=${TORCH_PY:-$PWD/../venv-torch/bin/python}
PROJECT_PY=${PROJECT_PY:-$PWD/.venv/bin/python}
N=${N:-5}
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONWARNINGS=ignore
tuned=glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184
out=$(mktemp -d)
for round in 1 2; do
  GLIBC_TUNABLES=$tuned "$PROJECT_PY" benchmarks/train_step.py --configs="model1@$N" \
     --batch_sizes=32 --levels="$N" "$@" 2>/dev/null | grep '"path": "inference"' >>"$out/project"
  (cd "$peers" && "$TF_PY" keras_peer.py --bench -N "$N" -B 32 --malloc tuned 2>/dev/null | tail -1 >>"$out/keras")
  (cd "$peers" && "$TORCH_PY" torch_peer.py --bench -N "$N" -B 32 --malloc tuned --variant own 2>/dev/null | tail -1 >>"$out/torch")
done
python3 - "$out" <<'PY'
import json, os, sys
d = sys.argv[1]
def best(name, key):
    path = os.path.join(d, name)
    vals = [json.loads(l)[key] for l in open(path) if l.startswith("{")] if os.path.exists(path) else []
    return max(vals) if vals else float("nan")
p = best("project", "examples_per_s")
k, t = best("keras", "examples_per_sec_infer"), best("torch", "examples_per_sec_infer")
print(f"inference examples/s, batch 32, best of 2 rounds: project {p:.1f}, keras {k:.1f}, pytorch {t:.1f}; "
      f"project / best peer = {p / max(k, t):.2f}")
PY
