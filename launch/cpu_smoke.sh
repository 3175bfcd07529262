#!/usr/bin/env bash
# A CPU smoke run of the multi-device / multi-host code paths on one machine, no accelerator:
# N processes on loopback, each with DEVICES/N simulated CPU devices, training a small config for a
# few steps ('sharded' mode over all DEVICES devices).
#
# Usage: launch/cpu_smoke.sh [--dry-run] [--processes=N] [-- extra rvq_jax.main flags]
# Env:   DEVICES (8)  CONFIG (configs/quick.py)  WORKDIR (/tmp/rvq_jax_smoke)  STEPS (4)
#        PYTHON (python)  PORT (free port chosen by the script)
#        GLIBC_TUNABLES (default: the CPU training setting of benchmarks/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=launch/lib.sh
source launch/lib.sh
parse_dry_run "$@"
set -- "${ARGS[@]+"${ARGS[@]}"}"

PROCESSES=1
EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --processes=*) PROCESSES="${1#*=}" ;;
    --) shift; EXTRA=("$@"); break ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
  esac
  shift
done
DEVICES="${DEVICES:-8}"
CONFIG="${CONFIG:-configs/quick.py}"
WORKDIR="${WORKDIR:-/tmp/rvq_jax_smoke}"
STEPS="${STEPS:-4}"
PYTHON="${PYTHON:-python}"
(( PROCESSES >= 1 && DEVICES % PROCESSES == 0 )) || die "DEVICES=${DEVICES} must be a multiple of --processes=${PROCESSES}"
PER_PROCESS=$(( DEVICES / PROCESSES ))
PORT="${PORT:-$("${PYTHON}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"

COMMON=("${PYTHON}" -m rvq_jax.main "--config=${CONFIG}" "--workdir=${WORKDIR}"
        "--config.train.num_steps=${STEPS}" --config.parallel.mode=sharded
        --config.train.progress_bar=False --config.eval.num_audio=2 --config.eval.num_figures=1)
export JAX_PLATFORMS=cpu
# Large XLA buffers from the heap, in transparent huge pages, kept between steps: no page faults
# on every step's fresh temporaries (1.2-1.4x on the CPU train step, benchmarks/RESULTS.md).
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184}"
export XLA_FLAGS="--xla_force_host_platform_device_count=${PER_PROCESS}"
echo "# ${PROCESSES} process(es) x ${PER_PROCESS} simulated CPU devices, XLA_FLAGS=${XLA_FLAGS}"
if (( PROCESSES == 1 )); then
  run "${COMMON[@]}" "${EXTRA[@]+"${EXTRA[@]}"}"
  exit 0
fi
pids=()
for (( i = 0; i < PROCESSES; i++ )); do
  run "${COMMON[@]}" --distributed "--coordinator_address=127.0.0.1:${PORT}" \
    "--num_processes=${PROCESSES}" "--process_id=${i}" "${EXTRA[@]+"${EXTRA[@]}"}" &
  pids+=("$!")
done
status=0
for pid in "${pids[@]}"; do
  wait "${pid}" || status=$?
done
exit "${status}"
