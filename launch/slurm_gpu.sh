#!/usr/bin/env bash
# Multi-node GPU training under SLURM. One process per GPU (default) or one per node driving all
# of its GPUs; JAX's own SLURM detection sets up jax.distributed. WORKDIR must be on a filesystem
# every node sees (checkpoints are written by all processes together, logs by process 0).
#
# Usage: launch/slurm_gpu.sh [--dry-run] [--per-node] [-- extra rvq_jax.main flags]
# Env:   NODES (2)  GPUS_PER_NODE (8)  PARTITION  TIME (04:00:00)  CONFIG (configs/model5.py)
#        WORKDIR (runs/model5_slurm)  PYTHON (python)
# Then:  squeue -u "$USER"; tail -f slurm-<job>.out; scancel --signal=TERM <job> (checkpoint, stop)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=launch/lib.sh
source launch/lib.sh
parse_dry_run "$@"
set -- "${ARGS[@]+"${ARGS[@]}"}"

PER_NODE=0
EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --per-node) PER_NODE=1 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
  esac
  shift
done
NODES="${NODES:-2}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
TIME="${TIME:-04:00:00}"
export CONFIG="${CONFIG:-configs/model5.py}"
export WORKDIR="${WORKDIR:-runs/model5_slurm}"
export PYTHON="${PYTHON:-python}"
LAUNCH_DIR="$(pwd)/launch"
export LAUNCH_DIR
export EXTRA_ARGS="${EXTRA[*]+"${EXTRA[*]}"}"
if (( PER_NODE )); then
  TASKS_PER_NODE=1; GPUS_PER_TASK="${GPUS_PER_NODE}"
else
  TASKS_PER_NODE="${GPUS_PER_NODE}"; GPUS_PER_TASK=1
fi
SBATCH=(sbatch "--nodes=${NODES}" "--ntasks-per-node=${TASKS_PER_NODE}"
        "--gpus-per-node=${GPUS_PER_NODE}" "--gpus-per-task=${GPUS_PER_TASK}" "--time=${TIME}"
        --export=ALL)
[[ -n "${PARTITION:-}" ]] && SBATCH+=("--partition=${PARTITION}")
run "${SBATCH[@]}" launch/slurm_gpu.sbatch
if [[ "${DRY_RUN}" == 1 ]]; then
  echo "# each job then runs:"
  DRY_RUN=1 bash launch/slurm_gpu.sbatch
fi
