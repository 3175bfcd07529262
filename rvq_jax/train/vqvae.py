"""The RVQ-VAE's part of training: its `trainer.Task` (init, pure step, per-epoch validation) and
`train(config, workdir)`; loading a trained run (`load_trained`, `restore_state`; its config is
`run_config.saved_config`) and its held-out metrics (`evaluate`).

Writes into the workdir (through `trainer.fit`): config.json, metrics.jsonl (one line per epoch
and split), tb/ (TensorBoard), checkpoints/ (orbax), run_info.json.
"""

from __future__ import annotations

import functools
import math

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rvq_jax import audio
from rvq_jax import data as data_lib
from rvq_jax import errors
from rvq_jax import run_config
from rvq_jax.models import rvq
from rvq_jax.train import checkpoints
from rvq_jax.train import parallel as parallel_lib
from rvq_jax.train import rngs
from rvq_jax.train import steps
from rvq_jax.train import trainer


def summarize_epoch(totals: dict, num_steps: int) -> dict:
  """Epoch train metrics: means of the summed step metrics, and codebook use from the summed code
  counts [L, K]."""
  means = trainer.mean_metrics({k: v for k, v in totals.items() if k != "counts"}, num_steps)
  means.update({f"codebook_{k}": np.asarray(v) for k, v in
                rvq.codebook_metrics(jnp.asarray(totals["counts"])).items()})
  return means


def make_task(config, train_specs, validation_specs) -> trainer.Task:
  """The VQ-VAE as a `trainer.Task`: spectrograms [N, H, W, 2] to train on and to validate with."""
  eval_step = jax.jit(steps.make_eval_step(config))
  return trainer.Task(
      name="vqvae",
      init_fn=functools.partial(steps.create_train_state, config),
      make_step=functools.partial(steps.make_vqvae_train_step, config),
      examples=train_specs,
      evaluate=lambda state: {"validation": evaluate(eval_step, state, validation_specs,
                                                     config.train.eval_batch_size)},
      summarize=summarize_epoch,
      shown={"reconstruction": "rec", "commitment": "commit"})


def train(config, workdir: str):
  """Trains (or resumes) the RVQ-VAE in `workdir`. Returns (state, dataset, spectrograms by split);
  the state is this process's local copy, ready for single-device evaluation."""
  parallel = parallel_lib.Parallel(config)
  logging.info("parallel mode %s over %d device(s), %d process(es)", parallel.mode,
               parallel.num_devices, jax.process_count())
  dataset = data_lib.load_training_dataset(config.data)   # bad data fails before the workdir is touched
  with trainer.open_run(config, workdir) as changes:
    specs = {s: audio.prepare_spectrograms(dataset[s].waveforms, config.audio)
             for s in data_lib.SPLITS}
    task = make_task(config, specs["train"], specs["validation"])
    state = trainer.fit(task, trainer.Schedule.from_config(config.train), workdir, parallel,
                        config.seed, changes)
  return state, dataset, specs


def restore_state(config, workdir) -> steps.TrainState:
  """The latest checkpointed `TrainState` of the run in `workdir`, on the default device (creates
  nothing in the workdir)."""
  bins, frames, channels = audio.spectrogram_shape(config.data.max_samples, config.audio)
  example = jnp.zeros((config.train.batch_size, bins, frames, channels))
  abstract = jax.eval_shape(functools.partial(steps.create_train_state, config),
                            rngs.root_key(0), example)
  return checkpoints.restore_for_reading(
      workdir, abstract, "train the model first (python -m rvq_jax.main --config=... "
      "--workdir=...)")


def load_trained(workdir, data_location=None) -> tuple[ml_collections.ConfigDict, steps.TrainState,
                                                      float]:
  """(config, state, data scale) of the VQ-VAE in `workdir` (a training run or shipped weights).
  The scale (the training split's waveform std, PCM units: the model sees waveforms / scale) comes
  from the weights' metadata; only a training workdir, which has none, loads its data for it."""
  config = run_config.with_data_location(run_config.saved_config(workdir), data_location)
  if config.task != "vqvae":
    raise errors.ConfigError(f"{workdir} holds a {config.task} run, not a VQ-VAE.")
  state = restore_state(config, workdir)
  scale = (checkpoints.read_weights_metadata(workdir) or {}).get("data_scale")
  if scale is None:
    scale = data_lib.load_dataset(config.data).scale
  if not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
    raise errors.WorkdirError(f"{workdir}: the data scale {scale!r} in its weights' metadata must "
                              "be a positive number (the waveform std the model was trained on); "
                              "download or export it again.")
  return config, state, float(scale)


def evaluate(eval_step, state, examples: jax.Array, batch_size: int) -> dict:
  """Weighted-mean eval metrics over all `examples` [N, H, W, 2], plus per-level codebook use."""
  batches = []
  for chunk, _, real in data_lib.padded_batches(examples, batch_size):
    weights = jnp.asarray(np.arange(batch_size) < real, jnp.float32)   # padding has weight 0
    batches.append(jax.device_get(eval_step(state, chunk, weights)))
  out = steps.combine_eval_metrics(batches)
  counts = out.pop("counts")
  out.pop("weight")
  out.update({f"codebook_{k}": np.asarray(v) for k, v in
              rvq.codebook_metrics(jnp.asarray(counts)).items()})
  out["counts"] = counts
  return out
