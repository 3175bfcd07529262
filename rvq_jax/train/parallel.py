"""How a pure step runs on one device, many devices and many hosts.

`Parallel(config)` places the state, the batches and the step for `config.parallel.mode`:

  'jit'      one device (the first local one);
  'sharded'  `jit` over a 1-D mesh ('batch', Auto axis) of every device: state replicated, batch
             split along axis 0, the compiler inserts the reductions;
  'pmap'     `jax.pmap` with axis name 'batch': the step reduces explicitly (`axis_name`).
  'auto'     'sharded' when there is more than one device, else 'jit'.

State is created already placed (`jit` of the init function with replicated `out_shardings`) and
donated to every step, in all modes; checkpoints hold the same pytree whatever the mode, so a run
may resume in another mode or on another number of devices.

Multi-host (`initialize_distributed`): every process holds the whole (small) dataset on the host,
computes the same global batch indices from the step, gathers only the rows of its own devices and
assembles the global batch with `jax.make_array_from_process_local_data`. Only process 0 writes
files; every process takes part in orbax saves and restores.
"""

from __future__ import annotations

import functools
import os
import signal
import threading

from absl import logging
import jax
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from rvq_jax import errors

MODES = ("auto", "jit", "sharded", "pmap")
AXIS = "batch"
DISTRIBUTED_ENV = "RVQ_JAX_DISTRIBUTED"


def initialize_distributed(enabled: bool | None = None, coordinator_address: str | None = None,
                           num_processes: int | None = None, process_id: int | None = None):
  """Calls `jax.distributed.initialize` only when asked: `enabled`, else $RVQ_JAX_DISTRIBUTED=1.

  With no address / counts JAX detects the cluster itself (Cloud TPU, SLURM, Open MPI, k8s);
  otherwise they are passed through (e.g. two processes on one machine). Call before any other
  JAX call. Returns True when initialised.
  """
  if enabled is None:
    enabled = os.environ.get(DISTRIBUTED_ENV, "0").lower() in ("1", "true", "yes")
  if not enabled:
    return False
  kwargs = {k: v for k, v in dict(coordinator_address=coordinator_address,
                                  num_processes=num_processes, process_id=process_id).items()
            if v is not None}
  try:
    jax.distributed.initialize(**kwargs)
  except (ValueError, RuntimeError) as e:
    raise errors.SetupError(
        f"jax.distributed.initialize({kwargs or ''}) failed: {e}. Multi-host runs need a cluster "
        "JAX can detect (Cloud TPU VM, SLURM, Open MPI) or --coordinator_address, "
        f"--num_processes and --process_id; on a single machine leave {DISTRIBUTED_ENV} unset and "
        "do not pass --distributed.") from e
  logging.info("jax.distributed: process %d of %d, %d local / %d global devices",
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count())
  return True


def batch_indices(num_examples: int, step: jax.Array, key: jax.Array, batch_size: int) -> jax.Array:
  """int32 [batch_size]: the examples of training step `step`.

  Epoch e = step // steps_per_epoch is a fresh permutation drawn from fold_in(key, e); the last
  partial batch of an epoch is dropped. A pure function of the step, so resumes repeat it exactly.
  """
  steps_per_epoch = num_examples // batch_size
  perm = jax.random.permutation(jax.random.fold_in(key, step // steps_per_epoch), num_examples)
  return jax.lax.dynamic_slice(perm, ((step % steps_per_epoch) * batch_size,), (batch_size,))


def batch_for_step(examples, step: jax.Array, key: jax.Array, batch_size: int):
  """The training batch of `step` from `examples` (an array [N, ...] or a pytree of them)."""
  n = jax.tree.leaves(examples)[0].shape[0]
  idx = batch_indices(n, step, key, batch_size)
  return jax.tree.map(lambda a: a[idx], examples)


def num_devices_for(mode: str) -> int:
  """Devices a mode runs on (for config validation, before anything is placed)."""
  return 1 if mode == "jit" else jax.device_count()


def check_mode(mode: str) -> None:
  """Raises ValueError for an unknown mode or 'jit' on several processes."""
  if mode not in MODES:
    raise errors.ConfigError(f"Invalid config: parallel.mode={mode!r} is unknown; choose one of {MODES}.")
  if mode == "jit" and jax.process_count() > 1:
    raise errors.ConfigError(f"Invalid config: parallel.mode='jit' runs on one device, but this is a "
                     f"{jax.process_count()}-process run; use 'sharded' or 'pmap' (or 'auto').")


class Parallel:
  """Placement of state, batches and steps for `config.parallel.mode` (see the module doc)."""

  def __init__(self, config):
    mode = config.parallel.mode
    check_mode(mode)
    if mode == "auto":
      mode = "sharded" if jax.device_count() > 1 else "jit"
    self.mode = mode
    if mode == "jit":
      devices = jax.local_devices()[:1]
    else:   # process-major order, so each process's devices hold one contiguous part of a batch
      devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    self.mesh = jax.sharding.Mesh(np.asarray(devices), (AXIS,),
                                  axis_types=(jax.sharding.AxisType.Auto,))
    self.num_devices = len(devices)
    self.replicated = NamedSharding(self.mesh, P())
    # 'sharded': [B, ...] split along B. 'pmap': [devices, B / devices, ...], one row per device.
    self.batch_sharding = NamedSharding(self.mesh, P(AXIS)) if mode != "jit" else self.replicated
    self.multi_process = jax.process_count() > 1

  # ---------------------------------------------------------------- state
  def create_state(self, init_fn, *args):
    """`init_fn(*args)` compiled to write its output replicated on every device. Pass host (numpy)
    or uncommitted arguments: on several processes they must be equal everywhere."""
    return jax.jit(init_fn, out_shardings=self.replicated)(*args)

  def abstract_state(self, init_fn, *args):
    """ShapeDtypeStructs of `init_fn(*args)` with the replicated sharding (for orbax restores)."""
    shapes = jax.eval_shape(init_fn, *args)
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=self.replicated),
                        shapes)

  @staticmethod
  def local(tree):
    """A process-local copy (on its first device) of replicated arrays: for evaluation, host
    reads and single-device code, which must not mix with arrays spanning other processes."""
    return jax.tree.map(lambda x: x.addressable_data(0) if isinstance(x, jax.Array) else x, tree)

  # ---------------------------------------------------------------- batches
  def _layout(self, batch):
    """[B, ...] -> the mode's batch layout (pmap: [devices, B / devices, ...])."""
    if self.mode != "pmap":
      return batch
    return jax.tree.map(lambda b: b.reshape((self.num_devices, -1) + b.shape[1:]), batch)

  def shard_batch(self, batch):
    """A global batch (pytree of host or single-device arrays [B, ...], equal on every process)
    placed in the mode's layout. For tests and for data that fits in one host."""
    local_rows = self._process_rows(jax.tree.leaves(batch)[0].shape[0])
    return self._assemble(jax.tree.map(lambda b: np.asarray(b)[local_rows], batch),
                          jax.tree.leaves(batch)[0].shape[0])

  def _process_rows(self, batch_size: int) -> slice:
    per_process = batch_size // jax.process_count()
    return slice(jax.process_index() * per_process, (jax.process_index() + 1) * per_process)

  def _assemble(self, local_batch, batch_size: int):
    """This process's rows [B / processes, ...] -> the global batch in the mode's layout."""
    def one(rows):
      rows = np.asarray(rows)
      if self.mode == "pmap":
        rows = rows.reshape((jax.local_device_count(), -1) + rows.shape[1:])
        global_shape = (self.num_devices,) + rows.shape[1:]
      else:
        global_shape = (batch_size,) + rows.shape[1:]
      return jax.make_array_from_process_local_data(self.batch_sharding, rows, global_shape)
    return jax.tree.map(one, local_batch)

  def batch_fn(self, examples, key: jax.Array, batch_size: int):
    """`get_batch(step: int)` -> the global training batch of that step, placed for the mode.

    examples: pytree of arrays [N, ...] (device or host). One process: the batch is gathered on
    the devices by one compiled call (no host traffic). Several processes: each computes the same
    indices, gathers the rows of its own devices from its host copy and the global array is
    assembled from the processes' parts.
    """
    if not self.multi_process:
      gather = jax.jit(lambda ex, step, k: self._layout(batch_for_step(ex, step, k, batch_size)),
                       in_shardings=self.replicated, out_shardings=self.batch_sharding)
      examples = jax.device_put(examples, self.replicated)
      key = jax.device_put(key, self.replicated)
      return lambda step: gather(examples, jax.device_put(np.int32(step), self.replicated), key)

    host_examples = jax.tree.map(np.asarray, examples)
    n = jax.tree.leaves(host_examples)[0].shape[0]
    indices = jax.jit(functools.partial(batch_indices, n, batch_size=batch_size))
    rows = self._process_rows(batch_size)
    device = jax.local_devices()[0]
    key = jax.device_put(np.asarray(key), device)

    def get_batch(step):
      with jax.transfer_guard("allow"):   # the indices come to the host by design
        idx = np.asarray(indices(jax.device_put(np.int32(step), device), key))[rows]
        return self._assemble(jax.tree.map(lambda a: a[idx], host_examples), batch_size)
    return get_batch

  # ---------------------------------------------------------------- steps
  def train_step(self, make_step):
    """Compiles `make_step(axis_name=...)` (a pure `(state, batch) -> (state, metrics)` whose
    metrics are reduced over the axis) for this mode. The state is donated."""
    if self.mode == "pmap":
      return jax.pmap(make_step(axis_name=AXIS), axis_name=AXIS, in_axes=(None, 0),
                      out_axes=(None, None), devices=list(self.mesh.devices.flat),
                      donate_argnums=0)
    return jax.jit(make_step(axis_name=None), in_shardings=(self.replicated, self.batch_sharding),
                   out_shardings=(self.replicated, self.replicated), donate_argnums=0)


class StopRequests:
  """SIGTERM (preemption) handling agreed by every process.

  Use as a context manager; `should_stop(step)` turns True once SIGTERM arrived. On several
  processes the flags are combined every `sync_every` steps (a tiny all-gather), so all processes
  stop after the same step and take part in the same final checkpoint.
  """

  def __init__(self, sync_every: int = 1):
    self.received = False
    self.sync_every = max(1, sync_every)
    self._previous = None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, *_):
    logging.warning("SIGTERM received: finishing the step, saving a checkpoint, then stopping.")
    self.received = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
    return False

  def should_stop(self, step: int) -> bool:
    if jax.process_count() == 1:
      return self.received
    if step % self.sync_every:
      return False
    flags = multihost_utils.process_allgather(np.asarray(self.received, np.int32))
    return bool(np.any(flags))

