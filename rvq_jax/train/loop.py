"""`train(config, workdir)`: the RVQ-VAE training loop, resumable from its workdir.

Writes into the workdir: config.json, metrics.jsonl (one line per epoch and split), tb/ (TensorBoard),
checkpoints/ (orbax). Batches are drawn on the device from the prepared spectrograms as a pure
function of the step, so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import functools
import math
import pathlib
import time

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from rvq_jax import audio
from rvq_jax import data as data_lib
from rvq_jax import errors
from rvq_jax.models import rvq
from rvq_jax.train import checkpoints
from rvq_jax.train import parallel as parallel_lib
from rvq_jax.train import rngs
from rvq_jax.train import steps
from rvq_jax.train import validation
from rvq_jax.train import writer as writer_lib


class Preempted(Exception):
  """Training stopped on SIGTERM after saving a checkpoint; run the same command to resume."""


def prepare_spectrograms(waveforms: np.ndarray, audio_config, chunk: int = 256) -> jax.Array:
  """float32 [N, num_samples] -> [N, bins, frames, 2] on the default device, in chunks."""
  convert = jax.jit(lambda w: audio.to_spectrogram(w, audio_config))
  parts = [convert(jnp.asarray(waveforms[i:i + chunk])) for i in range(0, len(waveforms), chunk)]
  return jnp.concatenate(parts) if parts else jnp.zeros((0,) + audio.spectrogram_shape(
      waveforms.shape[-1], audio_config), jnp.float32)


def check_finite(loss: float, finite, step: int, manager, ckpt_dir, advice: str) -> None:
  """Raises DivergedError (after pending saves finish) when the loss or the state (the step's
  'finite' flag) is not finite, naming the last good checkpoint and what to change."""
  if not (math.isfinite(loss) and float(finite) == 1.0):
    manager.wait_until_finished()
    raise errors.DivergedError(
        f"Non-finite loss ({loss}) or parameters at step {step}; stopping without saving this "
        f"state. The last good checkpoint (step {manager.latest_step()}) is in {ckpt_dir}; "
        f"{advice}, and resume.")


def _sum_metrics(total, new):
  return jax.tree.map(jnp.add, total, new)


def open_workdir(config, workdir: pathlib.Path, is_writer: bool) -> dict:
  """Checks a resumed run's config against its saved config.json (before anything is written),
  then writes config.json. Returns the resumable fields that changed ({field: [old, new]})."""
  changes = {}
  if (workdir / checkpoints.WEIGHTS_FILE).exists():
    raise errors.WorkdirError(
        f"{workdir} holds shipped weights ({checkpoints.WEIGHTS_FILE}), not a training run; "
        "train in another --workdir (the weights are read-only here).")
  saved = checkpoints.read_saved_config(workdir)
  if saved is not None and checkpoints.has_checkpoints(workdir):
    changes = checkpoints.check_resume_config(saved, config)
    if changes:
      logging.info("Resuming with changed fields: %s", changes)
  if is_writer:
    checkpoints.write_config(workdir, config)
  return changes


def _epoch_extra(epoch_sum, epoch_steps: int, parallel) -> dict | None:
  """The partial sums of the epoch under way, as JSON for the checkpoint's 'extra' item."""
  if epoch_sum is None:
    return {"epoch_steps": 0}
  totals = jax.tree.map(np.asarray, parallel.local(epoch_sum))
  return {"epoch_steps": epoch_steps,
          "epoch_sum": {k: v.tolist() for k, v in totals.items()},
          "epoch_sum_dtypes": {k: str(v.dtype) for k, v in totals.items()}}


def _restore_epoch_sum(extra: dict | None, parallel):
  """(epoch_sum placed like the step's metrics, epoch_steps) from a checkpoint's 'extra' item."""
  if not extra or not extra.get("epoch_steps"):
    return None, 0
  sums = {k: np.asarray(v, extra["epoch_sum_dtypes"][k]) for k, v in extra["epoch_sum"].items()}
  return jax.device_put(sums, parallel.replicated), int(extra["epoch_steps"])


def train(config, workdir: str):
  """Trains (or resumes) the RVQ-VAE in `workdir`. Returns (state, dataset, spectrograms by split);
  the state is this process's local copy, ready for single-device evaluation."""
  # ------------------------------------------------------------------ set-up and validation
  validation.validate_config(config, parallel_lib.num_devices_for(config.parallel.mode))
  parallel = parallel_lib.Parallel(config)
  workdir = pathlib.Path(workdir)
  is_writer = jax.process_index() == 0
  logging.info("parallel mode %s over %d device(s), %d process(es)", parallel.mode,
               parallel.num_devices, jax.process_count())
  dataset = data_lib.load_dataset(config.data)   # bad data fails before the workdir is touched
  with checkpoints.RunLock(workdir, enabled=is_writer):
    changes = open_workdir(config, workdir, is_writer)
    return _train(config, workdir, parallel, is_writer, changes, dataset)


def _train(config, workdir: pathlib.Path, parallel, is_writer: bool, changes: dict, dataset):
  # ------------------------------------------------------------------ data
  specs = {s: prepare_spectrograms(dataset[s].waveforms, config.audio) for s in data_lib.SPLITS}
  batch_size = config.train.batch_size
  steps_per_epoch = len(dataset["train"]) // batch_size
  if steps_per_epoch == 0:
    raise errors.ConfigError(f"train.batch_size={batch_size} exceeds the {len(dataset['train'])} "
                             "training recordings.")
  total_steps = steps_per_epoch * config.train.num_epochs
  if config.train.num_steps is not None:
    total_steps = min(total_steps, config.train.num_steps)

  # ------------------------------------------------------------------ state, restored if saved
  root_key = np.asarray(rngs.root_key(config.seed))
  data_key = rngs.seed_stream(config.seed, rngs.DATA)
  get_batch = parallel.batch_fn(specs["train"], data_key, batch_size)
  first_batch = np.asarray(parallel_lib.batch_for_step(specs["train"], 0, data_key, batch_size))
  init_fn = functools.partial(steps.create_train_state, config)
  ckpt_dir = (workdir / "checkpoints").absolute()
  manager = checkpoints.open_manager(ckpt_dir, config.train.checkpoint_every_steps,
                                     config.train.keep_checkpoints)
  restored = checkpoints.restore_newest(manager,
                                        parallel.abstract_state(init_fn, root_key, first_batch))
  epoch_sum, epoch_steps = None, 0
  if restored is not None:
    restored_step, state = restored.step, restored.state
    epoch_sum, epoch_steps = _restore_epoch_sum(restored.extra, parallel)
    logging.info("Resumed from %s at step %d", ckpt_dir, restored_step)
    if restored_step % steps_per_epoch and restored.extra is None:
      logging.warning("Checkpoint %d predates saved epoch sums: epoch %d's train means will cover "
                      "only the steps after the resume.", restored_step,
                      restored_step // steps_per_epoch + 1)
  else:
    restored_step = 0
    state = parallel.create_state(init_fn, root_key, first_batch)
  writer = writer_lib.MetricWriter(workdir, enabled=is_writer, truncate_after_step=restored_step)
  if is_writer:
    writer_lib.append_run_info(
        workdir, start_step=restored_step, total_steps=total_steps, parallel_mode=parallel.mode,
        num_devices=parallel.num_devices, config_changes=changes,
        damaged_checkpoints=restored.damaged if restored is not None else [])
  train_step = parallel.train_step(functools.partial(steps.make_train_step, config))
  eval_step = jax.jit(steps.make_eval_step(config))
  sum_metrics = jax.jit(_sum_metrics, donate_argnums=0)

  # ------------------------------------------------------------------ the loop
  step = restored_step
  bar = tqdm.tqdm(total=total_steps * batch_size, initial=step * batch_size, unit="ex",
                  unit_scale=True, disable=not (is_writer and config.train.progress_bar),
                  dynamic_ncols=True)
  # epoch_steps counts the epoch's steps (also those before a resume, whose sums the checkpoint
  # carried); timed_steps only this session's, for the speed.
  timed_steps, epoch_start = 0, time.perf_counter()
  # SIGTERM: finish the step, save, stop (all processes after the same step).
  with parallel_lib.StopRequests(config.train.log_every_steps) as stop:
    while step < total_steps and not stop.should_stop(step):
      with jax.transfer_guard("disallow"):   # explicit transfers only
        state, metrics = train_step(state, get_batch(step))
        epoch_sum = metrics if epoch_sum is None else sum_metrics(epoch_sum, metrics)
      step += 1
      epoch_steps += 1
      timed_steps += 1
      bar.update(batch_size)
      end_of_epoch = step % steps_per_epoch == 0 or step == total_steps
      if step % config.train.log_every_steps == 0 or end_of_epoch or manager.should_save(step):
        shown = parallel.local(metrics)
        loss = float(shown["loss"])
        check_finite(loss, shown["finite"], step, manager, ckpt_dir,
                     "lower optim.learning_rate (or set optim.grad_clip_norm in a new workdir)")
        bar.set_postfix(epoch=f"{(step - 1) // steps_per_epoch + 1}/{config.train.num_epochs}",
                        loss=f"{loss:.4f}", rec=f"{float(shown['reconstruction']):.4f}",
                        commit=f"{float(shown['commitment']):.4f}", refresh=False)
      if end_of_epoch:
        epoch = math.ceil(step / steps_per_epoch)
        totals = parallel.local(epoch_sum)
        means = jax.tree.map(lambda x: np.asarray(x) / epoch_steps,
                             {k: v for k, v in totals.items() if k != "counts"})
        means.update({f"codebook_{k}": np.asarray(v) for k, v in
                      rvq.codebook_metrics(totals["counts"]).items()})
        means["epoch_seconds"] = time.perf_counter() - epoch_start
        means["examples_per_second"] = timed_steps * batch_size / means["epoch_seconds"]
        writer.write(step, "train", epoch, means)
        val = evaluate(eval_step, parallel.local(state), specs["validation"],
                       config.train.eval_batch_size)
        writer.write(step, "validation", epoch, val)
        logging.info("epoch %d step %d: train loss %.5f (rec %.5f, commit %.5f); validation loss "
                     "%.5f (rec %.5f, commit %.5f)", epoch, step, means["loss"],
                     means["reconstruction"], means["commitment"], val["loss"],
                     val["reconstruction"], val["commitment"])
        if step % steps_per_epoch == 0:   # a run stopped by num_steps keeps its partial epoch
          epoch_sum, epoch_steps = None, 0
        timed_steps, epoch_start = 0, time.perf_counter()
      if manager.should_save(step):
        checkpoints.save(manager, step, state, _epoch_extra(epoch_sum, epoch_steps, parallel))
    bar.close()
    preempted = step < total_steps

  # ------------------------------------------------------------------ finish
  if manager.latest_step() != step:
    if step > restored_step and float(parallel.local(metrics)["finite"]) != 1.0:
      manager.wait_until_finished()
      raise errors.DivergedError(f"Non-finite state at step {step}; not saved. The last good "
                                 f"checkpoint (step {manager.latest_step()}) is in {ckpt_dir}.")
    checkpoints.save(manager, step, state, _epoch_extra(epoch_sum, epoch_steps, parallel),
                     force=True)
  manager.wait_until_finished()
  manager.close()
  writer.close()
  if preempted:
    raise Preempted(f"SIGTERM: saved step {step} in {ckpt_dir}; run the same command to resume.")
  return parallel.local(state), dataset, specs


def padded_batches(examples, batch_size: int):
  """Yields (batch [batch_size, ...], start, real) over `examples` [N, ...] in order; the last batch
  is zero-padded (its first `real` rows are examples) so consumers compile for one shape only."""
  for start in range(0, examples.shape[0], batch_size):
    chunk = jnp.asarray(examples[start:start + batch_size])
    real = chunk.shape[0]
    if real < batch_size:
      chunk = jnp.concatenate([chunk, jnp.zeros((batch_size - real,) + chunk.shape[1:],
                                                chunk.dtype)])
    yield chunk, start, real


def map_batches(fn, examples, batch_size: int):
  """Applies `fn(batch [batch_size, ...], start)` over `padded_batches` and concatenates its
  outputs (a pytree of arrays [batch_size, ...]) along axis 0, trimmed to N."""
  outputs = [jax.tree.map(lambda x, n=real: x[:n], fn(chunk, start))
             for chunk, start, real in padded_batches(examples, batch_size)]
  return jax.tree.map(lambda *xs: jnp.concatenate(xs), *outputs)


def saved_vqvae_config(workdir, data_location=None) -> ml_collections.ConfigDict:
  """The config.json of a VQ-VAE workdir (or of shipped weights), with the fields added since it
  was written filled in: how it computes, not what (same parameters, same mathematics). The
  `data_dir` / `cache_dir` set in `data_location` (the command's config.data) replace the saved
  ones: the data may live elsewhere on this machine."""
  saved = checkpoints.read_saved_config(workdir)
  if saved is None:
    raise errors.MissingError(
        f"{workdir} holds no trained VQ-VAE (no config.json). Train one first: python -m "
        f"rvq_jax.main --config=configs/model5.py --workdir={workdir}")
  config = ml_collections.ConfigDict(saved)
  for section, field, value in (("model", "conv_impl", "matmul"),
                                ("model", "compute_dtype", "float32"),
                                ("rvq", "block_rows", 1024),
                                ("rvq", "statistic_groups", 16),
                                ("optim", "schedule", "constant"),
                                ("optim", "decay_steps", 0),
                                ("optim", "final_lr_fraction", 0.0),
                                ("data", "speakers", data_lib.FSDD_SPEAKERS)):
    if field not in config[section]:
      config[section][field] = value
  for field in ("data_dir", "cache_dir"):
    if data_location is not None and data_location.get(field):
      config.data[field] = data_location[field]
  return config


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


def evaluate(eval_step, state, examples: jax.Array, batch_size: int) -> dict:
  """Weighted-mean eval metrics over all `examples` [N, H, W, 2], plus per-level codebook use."""
  batches = []
  for chunk, _, real in padded_batches(examples, batch_size):
    weights = jnp.asarray(np.arange(batch_size) < real, jnp.float32)   # padding has weight 0
    batches.append(jax.device_get(eval_step(state, chunk, weights)))
  out = steps.combine_eval_metrics(batches)
  counts = out.pop("counts")
  out.pop("weight")
  out.update({f"codebook_{k}": np.asarray(v) for k, v in
              rvq.codebook_metrics(jnp.asarray(counts)).items()})
  out["counts"] = counts
  return out
