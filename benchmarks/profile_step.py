"""Top XLA operations of the RVQ-VAE train step on this machine, from a jax.profiler trace.

COMMAND: python benchmarks/profile_step.py --config=model1 --batch=32 [--top=15]

Runs the compiled step a few times under `jax.profiler.trace`, reads the Perfetto trace it writes
and prints the operations with the most total time per step (name, ms per step, share).
"""

import collections
import importlib
import pathlib
import sys
import tempfile

from absl import app
from absl import flags
import jax

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
# pylint: disable=g-import-not-at-top
from trace_ops import describe  # noqa: E402
from trace_ops import top_ops  # noqa: E402

from rvq_jax.train import steps  # noqa: E402

_CONFIG = flags.DEFINE_string("config", "model1", "Config in configs/.")
_BATCH = flags.DEFINE_integer("batch", 32, "Global batch size.")
_STEPS = flags.DEFINE_integer("steps", 3, "Profiled steps.")
_TOP = flags.DEFINE_integer("top", 15, "Operations listed.")
_LEVELS = flags.DEFINE_integer("levels", None, "Override rvq.levels.")
_CONV = flags.DEFINE_string("conv_impl", None, "Override model.conv_impl ('xla' | 'matmul').")
_DTYPE = flags.DEFINE_string("compute_dtype", None, "Override model.compute_dtype.")


def main(argv):
  del argv
  config = importlib.import_module(f"rvq_jax.configs.{_CONFIG.value}").get_config()
  if _LEVELS.value:
    config.rvq.levels = _LEVELS.value
  if _CONV.value:
    config.model.conv_impl = _CONV.value
  if _DTYPE.value:
    config.model.compute_dtype = _DTYPE.value
  x = jax.random.normal(jax.random.key(0), (_BATCH.value, 128, 128, 2))
  state = steps.create_train_state(config, jax.random.key_data(jax.random.key(1)), x)
  step = jax.jit(steps.make_vqvae_train_step(config), donate_argnums=0)
  names = describe(step.lower(state, x).compile().as_text())
  for _ in range(2):
    state, _ = step(state, x)
  jax.block_until_ready(state)
  with tempfile.TemporaryDirectory() as tmp:
    with jax.profiler.trace(tmp, create_perfetto_trace=True):
      for _ in range(_STEPS.value):
        state, _ = step(state, x)
      jax.block_until_ready(state)
    ops = top_ops(pathlib.Path(tmp), _STEPS.value)
  step_ms = ops.pop("ThunkExecutor::Execute (wait for completion)", max(ops.values()))
  xla_ops = {k: v for k, v in ops.items() if k in names}
  by_kind = collections.Counter()
  for k, v in xla_ops.items():
    by_kind[names[k].split(" ")[1]] += v
  print(f"{_CONFIG.value} batch {_BATCH.value}: {step_ms:.0f} ms per step; XLA operations "
        f"{sum(xla_ops.values()):.0f} ms: " + ", ".join(f"{k} {v:.0f}" for k, v in
                                                     by_kind.most_common()))
  ops = collections.Counter(xla_ops)
  for name, ms in ops.most_common(_TOP.value):
    print(f"{ms:9.1f} ms  {100 * ms / step_ms:5.1f}%  {name}: {names.get(name, '')}")


if __name__ == "__main__":
  app.run(main)
