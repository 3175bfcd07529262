"""Throughput, compile time and memory of the RVQ-VAE train step and inference path.

COMMAND (from the repository root; results go to benchmarks/RESULTS.md by hand, with the device):
  python benchmarks/train_step.py --configs=model1,model1@10,model5 --batch_sizes=32,128 \
      --levels=5,10,20,40

A config is a file in configs/, optionally with @L to time it at L RVQ levels (model1@10).

For each config and batch size: the first call (compile + one step) is timed apart, `--warmup`
steps follow, then `--windows` timed windows of `--steps_per_window` steps; the median window gives
examples/s. Compile time is `lower().compile()` of the train step for each level count in --levels
(model5's other settings). Memory: XLA's buffer analysis of the compiled step (arguments, outputs,
temporaries) and the process's peak resident set size.
"""

import importlib
import itertools
import json
import os
import platform
import resource
import statistics
import sys
import time

from absl import app
from absl import flags
import jax

sys.path.insert(0, ".")
from rvq_jax.train import steps  # noqa: E402  pylint: disable=g-import-not-at-top

_CONFIGS = flags.DEFINE_list("configs", ["model1", "model5"], "Configs in configs/ to time.")
_BATCHES = flags.DEFINE_list("batch_sizes", ["32", "128"], "Global batch sizes.")
_LEVELS = flags.DEFINE_list("levels", ["5", "10", "20", "40"], "Level counts for compile time.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed steps after the first.")
_WINDOWS = flags.DEFINE_integer("windows", 5, "Timed windows.")
_PER_WINDOW = flags.DEFINE_integer("steps_per_window", 3, "Steps per timed window.")
_INFERENCE = flags.DEFINE_bool("inference", True, "Also time encode-quantize-decode.")
_SEARCHES = flags.DEFINE_list("nearest_searches", ["exact"],
                              "rvq.nearest_search values to time ('exact', 'packed').")
_DTYPES = flags.DEFINE_list("compute_dtypes", ["float32"],
                            "model.compute_dtype values to time ('float32', 'bfloat16').")
_CONV = flags.DEFINE_string("conv_impl", None, "Override model.conv_impl.")


def _setup(config, batch_size):
  x = jax.random.normal(jax.random.key(0), (batch_size, 128, 128, 2))
  state = steps.create_train_state(config, jax.random.key_data(jax.random.key(1)), x)
  return state, x


def _time_windows(run, state, x):
  """Median, min and max examples/s of `state = run(state, x)` over the timed windows."""
  for _ in range(_WARMUP.value):
    state = run(state, x)
  jax.block_until_ready(state)
  rates = []
  for _ in range(_WINDOWS.value):
    start = time.perf_counter()
    for _ in range(_PER_WINDOW.value):
      state = run(state, x)
    jax.block_until_ready(state)
    rates.append(_PER_WINDOW.value * x.shape[0] / (time.perf_counter() - start))
  return statistics.median(rates), min(rates), max(rates)


def bench_train(config, batch_size):
  state, x = _setup(config, batch_size)
  step = jax.jit(steps.make_vqvae_train_step(config), donate_argnums=0)
  start = time.perf_counter()
  compiled = step.lower(state, x).compile()
  compile_s = time.perf_counter() - start
  memory = compiled.memory_analysis()
  start = time.perf_counter()
  state, _ = compiled(state, x)
  jax.block_until_ready(state)
  first_s = time.perf_counter() - start
  median, low, high = _time_windows(lambda s, b: compiled(s, b)[0], state, x)
  return {"compile_s": compile_s, "first_step_s": first_s, "examples_per_s": median,
          "examples_per_s_range": [low, high],
          "temp_mib": memory.temp_size_in_bytes / 2**20 if memory else None,
          "argument_mib": memory.argument_size_in_bytes / 2**20 if memory else None}


def bench_inference(config, batch_size):
  from rvq_jax.models import vqvae  # pylint: disable=g-import-not-at-top
  state, x = _setup(config, batch_size)
  model = vqvae.make_model(config)
  infer = jax.jit(lambda p, e, b: vqvae.reconstruct(model, p, e, b, config))
  jax.block_until_ready(infer(state.params, state.codebook.embed, x))
  # The carry is the last output, so block_until_ready waits for the work itself.
  median, low, high = _time_windows(
      lambda _, b: infer(state.params, state.codebook.embed, b), x, x)
  return {"examples_per_s": median, "examples_per_s_range": [low, high]}


def compile_time(config, levels):
  config.rvq.levels = levels
  state, x = _setup(config, 32)
  start = time.perf_counter()
  jax.jit(steps.make_vqvae_train_step(config)).lower(state, x).compile()
  return time.perf_counter() - start


def _config(name: str):
  """configs/<file>.py's config; 'file@L' sets rvq.levels = L."""
  file, _, levels = name.partition("@")
  config = importlib.import_module(f"rvq_jax.configs.{file}").get_config()
  if levels:
    config.rvq.levels = int(levels)
  return config


def main(argv):
  del argv
  print(json.dumps({"device": str(jax.devices()[0].device_kind), "platform": jax.default_backend(),
                    "jax": jax.__version__, "python": platform.python_version(),
                    "cpus": os.cpu_count(), "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
                    "xla_flags": os.environ.get("XLA_FLAGS")}))
  for name in _CONFIGS.value:
    for dtype, search in itertools.product(_DTYPES.value, _SEARCHES.value):
      for batch in map(int, _BATCHES.value):
        config = _config(name)
        config.model.compute_dtype = dtype
        config.rvq.nearest_search = search
        if _CONV.value:
          config.model.conv_impl = _CONV.value
        common = {"config": name, "batch": batch, "levels": config.rvq.levels,
                  "compute_dtype": dtype, "nearest_search": search,
                  "conv_impl": config.model.conv_impl}
        print(json.dumps({**common, "path": "train", **bench_train(config, batch)}), flush=True)
        if _INFERENCE.value:
          print(json.dumps({**common, "path": "inference", **bench_inference(config, batch)}),
                flush=True)
  base = _CONFIGS.value[-1]
  for levels in map(int, _LEVELS.value):
    config = _config(base)
    print(json.dumps({"config": base, "levels": levels, "compile_s": compile_time(config, levels)}),
          flush=True)
  print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
  app.run(main)
