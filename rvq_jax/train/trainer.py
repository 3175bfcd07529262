"""The one training driver, used by the VQ-VAE, the RealNVP prior and the digit classifier.

A model supplies a `Task`: how to create its state, its pure step, its training examples and its
held-out evaluation. `fit(task, schedule, workdir, parallel, seed)` does everything else, once:

  - restore-or-create the state (the newest checkpoint that restores, falling back past damaged
    ones; `checkpoints.restore_newest`), placed for `config.parallel.mode` (jit / sharded / pmap,
    one or many hosts: `parallel.Parallel` feeds each process the rows of its own devices);
  - the loop: batches drawn as a pure function of the step (a resumed run sees exactly the batches
    an uninterrupted one would), a progress bar, per-epoch means of the step's metrics (their
    partial sums are saved with every checkpoint, so a resumed epoch's means cover all its steps),
    held-out evaluation at every epoch end, metrics.jsonl + TensorBoard, run_info.json;
  - checkpoints every `schedule.checkpoint_every_steps` and at the end, never of a non-finite
    state (the step's 'finite' metric): a divergence stops with the last good checkpoint named;
  - SIGTERM (preemption): finish the step, save, raise `Preempted` (all processes alike).

`open_run(config, workdir)` holds the workdir's lock and checks a resumed run's config against its
saved config.json before anything is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import pathlib
import time
from typing import Any, Callable

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from rvq_jax import errors
from rvq_jax.train import checkpoints
from rvq_jax.train import parallel as parallel_lib
from rvq_jax.train import rngs
from rvq_jax.train import writer as writer_lib


class Preempted(Exception):
  """Training stopped on SIGTERM after saving a checkpoint; run the same command to resume."""


@dataclasses.dataclass(frozen=True)
class Schedule:
  """How long and how often: the fields of a config's `train` section that the driver reads."""
  batch_size: int
  num_epochs: int
  num_steps: int | None = None          # stop early at this step
  log_every_steps: int = 10             # progress-bar refresh and finite check (one host sync)
  checkpoint_every_steps: int = 500
  keep_checkpoints: int = 2
  progress_bar: bool = True

  @classmethod
  def from_config(cls, train) -> "Schedule":
    return cls(train.batch_size, train.num_epochs, train.num_steps, train.log_every_steps,
               train.checkpoint_every_steps, train.keep_checkpoints, train.progress_bar)


def mean_metrics(totals: dict, steps: int) -> dict:
  """The default epoch summary: each summed step metric divided by the epoch's steps."""
  return {k: np.asarray(v) / steps for k, v in totals.items()}


@dataclasses.dataclass(frozen=True)
class Task:
  """What one model supplies to `fit`.

  Attributes:
    name: shown by the progress bar and the log ('vqvae', 'prior', 'classifier').
    init_fn: `(rng, first_batch) -> state`, rng the run's root key data uint32 [2]
      (`rngs.root_key(seed)`), first_batch the batch of step 0 (a pytree of host arrays).
    make_step: `(axis_name: str | None) -> step`, the pure `step(state, batch) -> (state,
      metrics)`; metrics are reduced over `axis_name` under pmap and hold `loss_key` and 'finite'
      (1.0 when the loss and the new state are finite).
    examples: the training examples, a pytree of arrays [N, ...] (host or device).
    evaluate: `(state) -> {split: metrics}`, held-out metrics at every epoch end on a
      process-local state (e.g. {'validation': {...}}); None: no evaluation.
    summarize: `(summed metrics, steps) -> epoch metrics` (default: means).
    loss_key: the metric checked for finiteness and shown as the loss.
    shown: further metrics on the progress bar, {metric: bar label}.
    divergence_advice: what to change when the loss stops being finite.
    run_info: extra facts for run_info.json (JSON-able).
  """
  name: str
  init_fn: Callable
  make_step: Callable
  examples: Any
  evaluate: Callable[[Any], dict] | None = None
  summarize: Callable[[dict, int], dict] = mean_metrics
  loss_key: str = "loss"
  shown: dict = dataclasses.field(default_factory=dict)
  divergence_advice: str = "lower optim.learning_rate (or set optim.grad_clip_norm in a new workdir)"
  run_info: dict = dataclasses.field(default_factory=dict)


@contextlib.contextmanager
def open_run(config, workdir, is_writer: bool | None = None):
  """Holds `<workdir>/LOCK` (process 0) and checks a resumed run's config against its config.json
  before writing it; yields the resumable fields that changed ({field: [old, new]})."""
  is_writer = jax.process_index() == 0 if is_writer is None else is_writer
  workdir = pathlib.Path(workdir)
  with checkpoints.RunLock(workdir, enabled=is_writer):
    yield checkpoints.open_workdir(config, workdir, is_writer)


def check_finite(loss: float, finite, step: int, manager, ckpt_dir, advice: str) -> None:
  """Raises DivergedError (after pending saves finish) when the loss or the state (the step's
  'finite' flag) is not finite, naming the last good checkpoint and what to change."""
  if not (math.isfinite(loss) and float(finite) == 1.0):
    manager.wait_until_finished()
    raise errors.DivergedError(
        f"Non-finite loss ({loss}) or parameters at step {step}; stopping without saving this "
        f"state. The last good checkpoint (step {manager.latest_step()}) is in {ckpt_dir}; "
        f"{advice}, and resume.")


def total_steps(schedule: Schedule, num_examples: int) -> tuple[int, int]:
  """(steps per epoch, total steps) of a run over `num_examples` training examples."""
  steps_per_epoch = num_examples // schedule.batch_size
  if steps_per_epoch == 0:
    raise errors.ConfigError(f"The batch size {schedule.batch_size} exceeds the {num_examples} "
                             "training examples; lower it.")
  total = steps_per_epoch * schedule.num_epochs
  if schedule.num_steps is not None:
    total = min(total, schedule.num_steps)
  return steps_per_epoch, total


def _sum_metrics(total, new):
  return jax.tree.map(jnp.add, total, new)


def _epoch_extra(epoch_sum, epoch_steps: int, parallel) -> dict:
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


def _log_line(task: Task, epoch: int, step: int, results: dict) -> str:
  keys = (task.loss_key,) + tuple(k for k in task.shown if k != task.loss_key)
  parts = [f"{split} " + ", ".join(f"{k} {float(np.asarray(m[k])):.5f}" for k in keys if k in m)
           for split, m in results.items()]
  return f"{task.name} epoch {epoch} step {step}: " + "; ".join(parts)


def fit(task: Task, schedule: Schedule, workdir, parallel: parallel_lib.Parallel, seed: int,
        changes: dict | None = None):
  """Trains (or resumes) `task` in `workdir` (call inside `open_run`). Returns the final state as
  this process's local copy (ready for single-device evaluation).

  Raises:
    Preempted: SIGTERM arrived; the state was saved.
    DivergedError: the loss or the state stopped being finite; nothing non-finite was saved.
  """
  workdir = pathlib.Path(workdir)
  is_writer = jax.process_index() == 0
  num_examples = jax.tree.leaves(task.examples)[0].shape[0]
  steps_per_epoch, last_step = total_steps(schedule, num_examples)
  batch_size = schedule.batch_size

  # ------------------------------------------------------------------ state, restored if saved
  root_key = np.asarray(rngs.root_key(seed))
  data_key = rngs.seed_stream(seed, rngs.DATA)
  first_batch = jax.tree.map(np.asarray, parallel_lib.batch_for_step(task.examples, 0, data_key,
                                                                     batch_size))
  ckpt_dir = (workdir / "checkpoints").absolute()
  manager = checkpoints.open_manager(ckpt_dir, schedule.checkpoint_every_steps,
                                     schedule.keep_checkpoints)
  restored = checkpoints.restore_newest(
      manager, parallel.abstract_state(task.init_fn, root_key, first_batch))
  epoch_sum, epoch_steps = None, 0
  if restored is not None:
    start, state = restored.step, restored.state
    epoch_sum, epoch_steps = _restore_epoch_sum(restored.extra, parallel)
    logging.info("Resumed from %s at step %d (%s)", ckpt_dir, start, task.name)
    if start % steps_per_epoch and restored.extra is None:
      logging.warning("Checkpoint %d predates saved epoch sums: epoch %d's train means will cover "
                      "only the steps after the resume.", start, start // steps_per_epoch + 1)
  else:
    start = 0
    state = parallel.create_state(task.init_fn, root_key, first_batch)
  writer = writer_lib.MetricWriter(workdir, enabled=is_writer, truncate_after_step=start)
  if is_writer:
    writer_lib.append_run_info(
        workdir, start_step=start, total_steps=last_step, parallel_mode=parallel.mode,
        num_devices=parallel.num_devices, config_changes=changes or {},
        damaged_checkpoints=restored.damaged if restored is not None else [], **task.run_info)
  train_step = parallel.train_step(task.make_step)
  get_batch = parallel.batch_fn(task.examples, data_key, batch_size)
  sum_metrics = jax.jit(_sum_metrics, donate_argnums=0)

  # ------------------------------------------------------------------ the loop
  step, metrics = start, None
  bar = tqdm.tqdm(total=last_step * batch_size, initial=step * batch_size, unit="ex",
                  unit_scale=True, desc=task.name, dynamic_ncols=True,
                  disable=not (is_writer and schedule.progress_bar))
  # epoch_steps counts the epoch's steps (also those before a resume, whose sums the checkpoint
  # carried); timed_steps only this session's, for the speed.
  timed_steps, epoch_start = 0, time.perf_counter()
  with parallel_lib.StopRequests(schedule.log_every_steps) as stop:
    while step < last_step and not stop.should_stop(step):
      with jax.transfer_guard("disallow"):   # explicit transfers only
        state, metrics = train_step(state, get_batch(step))
        epoch_sum = metrics if epoch_sum is None else sum_metrics(epoch_sum, metrics)
      step += 1
      epoch_steps += 1
      timed_steps += 1
      bar.update(batch_size)
      end_of_epoch = step % steps_per_epoch == 0 or step == last_step
      if step % schedule.log_every_steps == 0 or end_of_epoch or manager.should_save(step):
        shown = parallel.local(metrics)
        loss = float(shown[task.loss_key])
        check_finite(loss, shown["finite"], step, manager, ckpt_dir, task.divergence_advice)
        bar.set_postfix(epoch=f"{(step - 1) // steps_per_epoch + 1}/{schedule.num_epochs}",
                        loss=f"{loss:.4f}", refresh=False,
                        **{label: f"{float(shown[k]):.4f}" for k, label in task.shown.items()})
      if end_of_epoch:
        epoch = math.ceil(step / steps_per_epoch)
        means = task.summarize(jax.tree.map(np.asarray, parallel.local(epoch_sum)), epoch_steps)
        means["epoch_seconds"] = time.perf_counter() - epoch_start
        means["examples_per_second"] = timed_steps * batch_size / means["epoch_seconds"]
        results = {"train": means}
        if task.evaluate is not None:
          results.update(task.evaluate(parallel.local(state)))
        for split, values in results.items():
          writer.write(step, split, epoch, values)
        logging.info("%s", _log_line(task, epoch, step, results))
        if step % steps_per_epoch == 0:   # a run stopped by num_steps keeps its partial epoch
          epoch_sum, epoch_steps = None, 0
        timed_steps, epoch_start = 0, time.perf_counter()
      if manager.should_save(step):
        checkpoints.save(manager, step, state, _epoch_extra(epoch_sum, epoch_steps, parallel))
    bar.close()
    preempted = step < last_step

  # ------------------------------------------------------------------ finish
  if manager.latest_step() != step:
    if metrics is not None and float(parallel.local(metrics)["finite"]) != 1.0:
      manager.wait_until_finished()
      raise errors.DivergedError(f"Non-finite {task.name} state at step {step}; not saved. The "
                                 f"last good checkpoint (step {manager.latest_step()}) is in "
                                 f"{ckpt_dir}.")
    checkpoints.save(manager, step, state, _epoch_extra(epoch_sum, epoch_steps, parallel),
                     force=True)
  manager.wait_until_finished()
  manager.close()
  writer.close()
  if preempted:
    raise Preempted(f"SIGTERM: saved step {step} in {ckpt_dir}; run the same command to resume.")
  return parallel.local(state)
