"""The RealNVP prior's train step (issue 33, item 3): examples/s, compile time, what a 1,000-step
ablation row costs, and where the time goes (top XLA operations of a jax.profiler trace).

COMMAND (from the repository root, on a quiet machine):
  python benchmarks/flow_step.py --hidden=32,128 [--profile=true]

The step is the one training runs (`prior_steps.make_prior_train_step`) for configs/realnvp.py on
model6's target shape (32 x 32 x 16), with the classifier-free-guidance recipe's label
conditioning, on random targets of that shape (a step's cost does not depend on the values).
`--hidden` overrides prior.hidden (the conditioner's width; 32 is the shipped recipe's). Prints
one JSON line per width; with --profile, the operations with the most time per step.
"""

import collections
import json
import pathlib
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
# pylint: disable=g-import-not-at-top
from trace_ops import describe  # noqa: E402
from trace_ops import top_ops  # noqa: E402

from rvq_jax.configs import realnvp  # noqa: E402
from rvq_jax.train import prior_steps  # noqa: E402

_HIDDEN = flags.DEFINE_list("hidden", ["32", "128"], "Conditioner widths (prior.hidden).")
_BATCH = flags.DEFINE_integer("batch", 32, "Batch size (configs/realnvp.py's).")
_WINDOWS = flags.DEFINE_integer("windows", 5, "Timed windows.")
_PER_WINDOW = flags.DEFINE_integer("steps_per_window", 5, "Steps per timed window.")
_PROFILE = flags.DEFINE_bool("profile", True, "Also list the top XLA operations per step.")
_TOP = flags.DEFINE_integer("top", 12, "Operations listed.")

SHAPE = (32, 32, 16)   # model6's latent grid, PCA-16 (prior_targets.target_shape)


def setup(hidden: int):
  config = realnvp.get_config()
  config.prior.hidden = hidden
  config.prior.label_conditioning, config.prior.label_dropout = True, 0.1
  x = jax.random.normal(jax.random.key(0), (_BATCH.value,) + SHAPE)
  labels = jnp.arange(_BATCH.value) % 10
  stats = {"mean": np.zeros(SHAPE[-1], np.float32), "std": np.ones(SHAPE[-1], np.float32),
           "noise_std": np.float32(0.05), "cell_width": np.float32(0.19)}
  state = prior_steps.create_prior_state(config, jax.random.key_data(jax.random.key(1)), stats,
                                         (x, labels))
  step = jax.jit(prior_steps.make_prior_train_step(config, SHAPE), donate_argnums=0)
  return config, state, step, (x, labels)


def bench(hidden: int) -> dict:
  config, state, step, batch = setup(hidden)
  start = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  state, _ = compiled(state, batch)
  jax.block_until_ready(state)
  rates = []
  for _ in range(_WINDOWS.value):
    start = time.perf_counter()
    for _ in range(_PER_WINDOW.value):
      state, _ = compiled(state, batch)
    jax.block_until_ready(state)
    rates.append(_PER_WINDOW.value * _BATCH.value / (time.perf_counter() - start))
  rate = float(np.median(rates))
  params = sum(np.size(p) for p in jax.tree.leaves(state.params))
  out = {"hidden": hidden, "batch": _BATCH.value, "parameters": int(params),
         "compile_s": round(compile_s, 1), "examples_per_s": round(rate, 1),
         "examples_per_s_range": [round(min(rates), 1), round(max(rates), 1)],
         "minutes_per_1000_steps": round(1000 * _BATCH.value / rate / 60, 1)}
  if _PROFILE.value:
    out["top_ops"] = profile(compiled, state, batch)
  return out


def profile(compiled, state, batch) -> dict:
  """{kind: ms per step} and the top operations of a traced run of the compiled step."""
  names = describe(compiled.as_text())
  steps = 3
  with tempfile.TemporaryDirectory() as tmp:
    with jax.profiler.trace(tmp, create_perfetto_trace=True):
      for _ in range(steps):
        state, _ = compiled(state, batch)
      jax.block_until_ready(state)
    ops = top_ops(pathlib.Path(tmp), steps)
  step_ms = ops.pop("ThunkExecutor::Execute (wait for completion)", max(ops.values()))
  xla_ops = collections.Counter({k: v for k, v in ops.items() if k in names})
  by_kind = collections.Counter()
  for k, v in xla_ops.items():
    by_kind[names[k].split(" ")[1]] += v
  return {"step_ms": round(step_ms, 1),
          "by_kind_ms": {k: round(v, 1) for k, v in by_kind.most_common()},
          "top": [f"{ms:.1f} ms {100 * ms / step_ms:.0f}% {names[k]}"
                  for k, ms in xla_ops.most_common(_TOP.value)]}


def main(argv):
  del argv
  print(json.dumps({"device": str(jax.devices()[0].device_kind), "jax": jax.__version__}))
  for hidden in map(int, _HIDDEN.value):
    print(json.dumps(bench(hidden), indent=1), flush=True)


if __name__ == "__main__":
  app.run(main)
