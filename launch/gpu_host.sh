#!/usr/bin/env bash
# One GPU host: one process drives every local GPU ('sharded' over them when there are several).
#
# Usage: launch/gpu_host.sh [--dry-run] [setup] [-- extra rvq_jax.main flags]
#   setup: create .venv with CUDA jax and the project (once per host).
# Env:   CONFIG (configs/model5.py)  WORKDIR (runs/model5)  PYTHON (python3)  CUDA_VISIBLE_DEVICES
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=launch/lib.sh
source launch/lib.sh
parse_dry_run "$@"
set -- "${ARGS[@]+"${ARGS[@]}"}"

CONFIG="${CONFIG:-configs/model5.py}"
WORKDIR="${WORKDIR:-runs/model5}"
PYTHON="${PYTHON:-python3}"

if [[ "${1:-}" == setup ]]; then
  run "${PYTHON}" -m venv .venv
  run .venv/bin/pip install --upgrade pip
  run .venv/bin/pip install "jax[cuda12]" -e .
  exit 0
fi
[[ "${1:-}" == -- ]] && shift
[[ $# -eq 0 || "${1}" == --* ]] || die "unknown argument $1 (see the header of $0)"
run nvidia-smi --query-gpu=name,memory.total --format=csv
# No preallocation of 75% of GPU memory: the model is small and the inference path shares the GPU.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
run "${PYTHON}" -m rvq_jax.main "--config=${CONFIG}" "--workdir=${WORKDIR}" "$@"
