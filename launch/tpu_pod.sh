#!/usr/bin/env bash
# A Cloud TPU VM pod slice: every worker runs the same command; jax.distributed.initialize()
# (RVQ_JAX_DISTRIBUTED=1) finds the other workers itself. WORKDIR must be the same shared folder on
# every worker: here a Cloud Storage bucket mounted with gcsfuse at /mnt/rvq_jax.
#
# Usage: launch/tpu_pod.sh [--dry-run] <create|setup|run|tail|stop|delete> [-- extra main flags]
#   create  make the slice            setup  clone, install jax[tpu] + rvq_jax, mount the bucket
#   run     start training everywhere tail   follow worker 0's log
#   stop    SIGTERM everywhere: rvq_jax saves a checkpoint and exits; `run` again resumes
#   delete  delete the slice
# Env: TPU_NAME (rvq-jax)  ZONE (us-central2-b)  ACCELERATOR (v4-32)  TPU_VERSION
#      (tpu-ubuntu2204-base)  PROJECT (gcloud's default)  BUCKET (required for setup)
#      REPO_URL (this checkout's origin)  BRANCH (main)  CONFIG (configs/model5.py)  RUN_NAME (model5)  SPOT (0; 1: spot VMs)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=launch/lib.sh
source launch/lib.sh
parse_dry_run "$@"
set -- "${ARGS[@]+"${ARGS[@]}"}"

[[ $# -ge 1 ]] || die "which step? create|setup|run|tail|stop|delete (see the header of $0)"
STEP="$1"
shift
[[ "${1:-}" == -- ]] && shift
TPU_NAME="${TPU_NAME:-rvq-jax}"
ZONE="${ZONE:-us-central2-b}"
ACCELERATOR="${ACCELERATOR:-v4-32}"
TPU_VERSION="${TPU_VERSION:-tpu-ubuntu2204-base}"
REPO_URL="${REPO_URL:-$(git remote get-url origin 2>/dev/null || true)}"
BRANCH="${BRANCH:-main}"
CONFIG="${CONFIG:-configs/model5.py}"
RUN_NAME="${RUN_NAME:-model5}"
MOUNT=/mnt/rvq_jax
LOG="\$HOME/rvq_jax_${RUN_NAME}.log"
GCLOUD=(gcloud)
[[ -n "${PROJECT:-}" ]] && GCLOUD+=("--project=${PROJECT}")
TPU=("${GCLOUD[@]}" compute tpus tpu-vm)

on_workers() {  # on_workers WORKER COMMAND: the command on one worker or on all
  run "${TPU[@]}" ssh "${TPU_NAME}" "--zone=${ZONE}" "--worker=$1" "--command=$2"
}

case "${STEP}" in
  create)
    args=("${TPU[@]}" create "${TPU_NAME}" "--zone=${ZONE}" "--accelerator-type=${ACCELERATOR}"
          "--version=${TPU_VERSION}")
    [[ "${SPOT:-0}" == 1 ]] && args+=(--spot)
    run "${args[@]}"
    ;;
  setup)
    [[ -n "${BUCKET:-}" ]] || die "set BUCKET to a Cloud Storage bucket for the shared workdir"
    [[ -n "${REPO_URL}" ]] || die "set REPO_URL to the git URL the workers clone (your fork)"
    on_workers all "set -e; sudo apt-get -qq update && sudo apt-get -qq install -y gcsfuse git python3-venv; \
if [ -d rvq_jax ]; then git -C rvq_jax pull --ff-only; else git clone --branch ${BRANCH} ${REPO_URL} rvq_jax; fi; \
cd rvq_jax && python3 -m venv .venv && .venv/bin/pip install -q 'jax[tpu]' -e .; \
sudo mkdir -p ${MOUNT} && sudo chown \$USER ${MOUNT}; mountpoint -q ${MOUNT} || gcsfuse --implicit-dirs ${BUCKET} ${MOUNT}"
    ;;
  run)
    extra="$(printf ' %q' "$@")"
    on_workers all "cd rvq_jax && RVQ_JAX_DISTRIBUTED=1 nohup .venv/bin/python -m rvq_jax.main \
--config=${CONFIG} --workdir=${MOUNT}/${RUN_NAME}${extra% } > ${LOG} 2>&1 &"
    ;;
  tail)
    on_workers 0 "tail -n 200 -f ${LOG}"
    ;;
  stop)
    on_workers all "pkill -TERM -f rvq_jax.main || true"
    ;;
  delete)
    run "${TPU[@]}" delete "${TPU_NAME}" "--zone=${ZONE}" --quiet
    ;;
  *)
    die "unknown step ${STEP}; choose create|setup|run|tail|stop|delete"
    ;;
esac
