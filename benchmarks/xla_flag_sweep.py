"""The train step under each XLA:CPU option this jax offers, interleaved rounds, one table.

COMMAND (from the repository root, on an idle machine; results go to benchmarks/RESULTS.md by hand):
  python benchmarks/xla_flag_sweep.py --rounds=2

Each setting is one process of `benchmarks/train_step.py` (model1, batch 32, train path only) with
XLA_FLAGS set to it, the glibc allocator setting of launch/cpu_smoke.sh, and the settings taken
in turn within each round, so that drift of the machine hits all of them alike. Reports the best
round's examples/s, the ratio to the baseline (no flags) of the same round, and the process's CPU
time over its wall time (how many of the cores the whole benchmark kept busy, compile included).
"""

import json
import os
import resource
import subprocess
import sys
import time

from absl import app
from absl import flags

_ROUNDS = flags.DEFINE_integer("rounds", 2, "Interleaved rounds.")
_CONFIG = flags.DEFINE_string("config", "model1", "Config (file@levels) to time.")
_DTYPE = flags.DEFINE_string("compute_dtype", "float32", "model.compute_dtype.")

# Options read from this jaxlib's flag table; each is one thing a user could set in XLA_FLAGS.
SETTINGS = {
    "baseline": "",
    "vector_width_512": "--xla_cpu_prefer_vector_width=512",
    "fast_min_max": "--xla_cpu_enable_fast_min_max=true",
    "fast_math": "--xla_cpu_enable_fast_math=true",
    "concurrency_scheduler": "--xla_cpu_enable_concurrency_optimized_scheduler=true",
    "no_xnnpack": "--xla_cpu_use_xnnpack=false",
    "parallel_codegen_8": "--xla_cpu_parallel_codegen_split_count=8",
}
_TUNED = ("glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:"
          "glibc.malloc.trim_threshold=17179869184")


def run_one(xla_flags: str) -> dict:
  """One benchmark process; its train line plus CPU seconds per wall second."""
  env = dict(os.environ, XLA_FLAGS=xla_flags, GLIBC_TUNABLES=_TUNED)
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.perf_counter()
  out = subprocess.run(
      [sys.executable, "benchmarks/train_step.py", f"--configs={_CONFIG.value}",
       "--batch_sizes=32", f"--levels={_CONFIG.value.partition('@')[2] or 5}",
       "--inference=false", f"--compute_dtypes={_DTYPE.value}"],
      env=env, capture_output=True, text=True, check=False)
  wall = time.perf_counter() - start
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
  lines = [json.loads(l) for l in out.stdout.splitlines() if '"path": "train"' in l]
  if not lines:
    return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1]}
  return {"examples_per_s": lines[0]["examples_per_s"], "cores_busy": cpu / wall}


def main(argv):
  del argv
  results = {name: [] for name in SETTINGS}
  for _ in range(_ROUNDS.value):
    for name, xla_flags in SETTINGS.items():
      results[name].append(run_one(xla_flags))
      print(name, json.dumps(results[name][-1]), flush=True)
  base = [r.get("examples_per_s", float("nan")) for r in results["baseline"]]
  print(f"\n{_CONFIG.value}, batch 32, {_DTYPE.value}, best of {_ROUNDS.value} rounds")
  print("| setting | XLA_FLAGS | examples/s | / baseline (same round, best) | cores busy |")
  print("|---|---|---|---|---|")
  for name, rows in results.items():
    rates = [r.get("examples_per_s", float("nan")) for r in rows]
    ratios = [r / b for r, b in zip(rates, base)]
    busy = max(r.get("cores_busy", float("nan")) for r in rows)
    error = next((r["error"] for r in rows if "error" in r), "")
    print(f"| {name} | `{SETTINGS[name] or '-'}` | {max(rates):.1f} | {max(ratios):.2f} | "
          f"{busy:.2f} | {error}".rstrip(" |") + " |")


if __name__ == "__main__":
  app.run(main)
