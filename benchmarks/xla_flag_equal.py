"""Does an XLA option change what the train step computes? (issue 33: a speed flag is kept only if
the results are unchanged.)

COMMAND: python benchmarks/xla_flag_equal.py \
           --flags=--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY

Runs `--steps` train steps of `--config` from one initial state on one batch of real FSDD
spectrograms twice, in two fresh processes (XLA reads XLA_FLAGS once per process): with the
environment's XLA_FLAGS, and with `--flags` added. Prints the largest relative difference of
every output (each step's metrics, the final parameters and codebooks) and whether all are within
float32 tolerance (`--rtol`).
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

from absl import app
from absl import flags
import numpy as np

_FLAGS = flags.DEFINE_string(
    "flags", "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY",
    "XLA options to compare against the default build.")
_CONFIG = flags.DEFINE_string("config", "model1", "Config in configs/.")
_STEPS = flags.DEFINE_integer("steps", 3, "Train steps from the same state.")
_RTOL = flags.DEFINE_float("rtol", 1e-4, "Relative tolerance (of each array's largest value).")
_OUT = flags.DEFINE_string("out", None, "Internal: the worker's output file.")


def worker(out: str) -> None:
  """Runs the steps in this process and saves every output as an .npz."""
  import importlib  # pylint: disable=g-import-not-at-top

  import jax  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, ".")
  from rvq_jax import audio  # pylint: disable=g-import-not-at-top
  from rvq_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  from rvq_jax.train import steps  # pylint: disable=g-import-not-at-top
  config = importlib.import_module(f"rvq_jax.configs.{_CONFIG.value}").get_config()
  dataset = data_lib.load_dataset(config.data)
  x = audio.prepare_spectrograms(dataset["train"].waveforms[:config.train.batch_size],
                                 config.audio)
  state = steps.create_train_state(config, jax.random.key_data(jax.random.key(0)), x)
  step = jax.jit(steps.make_vqvae_train_step(config))
  arrays = {}
  for i in range(_STEPS.value):
    state, metrics = step(state, x)
    for path, value in jax.tree_util.tree_flatten_with_path(metrics)[0]:
      arrays[f"step{i}/{jax.tree_util.keystr(path)}"] = np.asarray(value)
  for path, leaf in jax.tree_util.tree_flatten_with_path((state.params, state.codebook))[0]:
    arrays[f"state/{jax.tree_util.keystr(path)}"] = np.asarray(leaf)
  np.savez(out, **arrays)


def main(argv):
  del argv
  if _OUT.value:
    worker(_OUT.value)
    return
  base = os.environ.get("XLA_FLAGS", "")
  results = []
  with tempfile.TemporaryDirectory() as tmp:
    for name, xla_flags in (("default", base), ("flags", f"{base} {_FLAGS.value}".strip())):
      out = pathlib.Path(tmp) / f"{name}.npz"
      subprocess.run([sys.executable, __file__, f"--out={out}", f"--config={_CONFIG.value}",
                      f"--steps={_STEPS.value}"], check=True,
                     env=dict(os.environ, XLA_FLAGS=xla_flags))
      results.append(dict(np.load(out)))
  default, flagged = results
  worst, report = 0.0, {}
  for key in default:
    a, b = default[key].astype(np.float64), flagged[key].astype(np.float64)
    diff = float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-30))
    report[key], worst = diff, max(worst, diff)
  print(json.dumps({"flags": _FLAGS.value, "config": _CONFIG.value, "steps": _STEPS.value,
                    "largest_relative_difference": worst, "within_tolerance": worst <= _RTOL.value,
                    "outputs": len(report),
                    "largest": sorted(report.items(), key=lambda kv: -kv[1])[:8]}, indent=1))


if __name__ == "__main__":
  app.run(main)
