"""A run's checkpoints and workdir, in one place, for the VQ-VAE, the prior and the classifier.

- `RunLock`: one training run per workdir (a lock file with pid and host; stale locks of dead
  processes on this host are taken over).
- `check_resume_config`: before a run resumes, its config is compared with the saved config.json;
  a field that changes shapes or the model's meaning is an error naming the field and the saved
  value, before anything is written. Fields that may change on resume (`RESUMABLE_FIELDS`) are
  returned, so the caller records them in run_info.json.
- `open_manager` / `save` / `restore_newest`: orbax checkpoints of the state pytree (item
  'default') plus an optional JSON item ('extra': e.g. the partial sums of the epoch under way).
  `restore_newest` falls back past a damaged checkpoint to the newest one that restores, moving the
  damaged one aside (never deleting it) and saying so.
- `restore_for_reading`: the latest state for modes that only read (evaluate, sample); it creates
  nothing in the workdir. A folder with no checkpoints but a `weights.msgpack` (shipped weights,
  `pretrained/<name>/`) restores from that file.
- `write_weights` / `read_weights`: a state's inference fields (step, params, codebook) and a
  little JSON metadata in one small msgpack file, with no optimizer state; sealed with digests of
  the weights and of the config that defines their function, checked on every load.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import pathlib
import shutil
import socket
from typing import Any

from absl import logging
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from rvq_jax import errors
from rvq_jax import files
from rvq_jax.train import writer

STATE, EXTRA = "default", "extra"
WEIGHTS_FILE = "weights.msgpack"
# What inference needs of any state (a prior's `stats` are the constants of its target space).
WEIGHT_FIELDS = ("step", "params", "codebook", "stats")
DAMAGED_DIR = "damaged_checkpoints"
LOCK_FILE = "LOCK"

# Config fields (or whole sections) a resumed run may change: how long, how often, where the data
# is, how it computes (same function), what is evaluated. Everything else must match the saved run.
RESUMABLE_FIELDS = (
    "train.num_epochs", "train.num_steps", "train.log_every_steps",
    "train.checkpoint_every_steps", "train.keep_checkpoints", "train.eval_batch_size",
    "train.progress_bar", "eval", "figures", "sample", "parallel", "codec",
    "optim.learning_rate",   # the advice after a divergence: lower it and resume
    "data.data_dir", "data.cache_dir", "data.use_cache", "data.download_url",
    "model.conv_impl", "model.compute_dtype", "rvq.block_rows", "rvq.statistic_groups",
    "rvq.nearest_search",
    "classifier.eval_batch_size",
    "classifier.noise_examples")


# ------------------------------------------------------------------ the lock
def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:   # exists, owned by someone else
    return True
  return True


class RunLock:
  """Context manager holding `<workdir>/LOCK` for one run (process 0 of a multi-host run).

  The file holds {"pid", "host", "started"}. A second run on the workdir raises `WorkdirError`
  naming the holder. A lock left by a dead process on this host is stale and taken over with a
  warning; a lock from another host cannot be checked and is respected (the message says how to
  remove it).
  """

  def __init__(self, workdir, enabled: bool = True):
    self.path = pathlib.Path(workdir) / LOCK_FILE
    self.enabled = enabled
    self._held = False

  def __enter__(self) -> "RunLock":
    if not self.enabled:
      return self
    self.path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    for _ in range(2):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        self._handle_existing()
        continue
      with os.fdopen(fd, "w") as f:
        f.write(json.dumps(me) + "\n")
      self._held = True
      return self
    raise errors.WorkdirError(f"Could not take the lock {self.path}; another run is starting on "
                              "this workdir.")

  def _handle_existing(self) -> None:
    try:
      holder = json.loads(self.path.read_text())
      pid, host = int(holder["pid"]), str(holder["host"])
    except (OSError, ValueError, KeyError, TypeError):
      logging.warning("Replacing the unreadable lock file %s.", self.path)
      self.path.unlink(missing_ok=True)
      return
    if host == socket.gethostname() and not _pid_alive(pid):
      logging.warning("Taking over the stale lock %s of process %d (no longer running).",
                      self.path, pid)
      self.path.unlink(missing_ok=True)
      return
    raise errors.WorkdirError(
        f"{self.path.parent} is in use by process {pid} on host {host} (since "
        f"{holder.get('started', '?')}); wait for it to finish or stop it, or use another "
        f"--workdir. If that process is gone, delete {self.path}.")

  def __exit__(self, *exc) -> None:
    if self._held:
      self.path.unlink(missing_ok=True)
      self._held = False


# ------------------------------------------------------------------ the config of a resumed run
def flatten(tree, prefix="") -> dict[str, Any]:
  """A nested config dict as {'section.field': value}."""
  out = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      out.update(flatten(value, name + "."))
    else:
      out[name] = value
  return out


def _resumable(name: str) -> bool:
  return any(name == f or name.startswith(f + ".") for f in RESUMABLE_FIELDS)


def check_resume_config(saved: dict, config) -> dict[str, list]:
  """Compares `config` with the `saved` config.json (a dict) of the run it resumes.

  Returns:
    {field: [saved value, new value]} for the resumable fields that changed.
  Raises:
    ConfigError: a field that changes shapes or the model's meaning differs; it names the field,
      both values and what to do.
  """
  new = flatten(json.loads(config.to_json_best_effort()))
  old = flatten(saved)
  changed, fixed = {}, []
  for name in sorted(set(new) & set(old)):
    if new[name] == old[name]:
      continue
    if _resumable(name):
      changed[name] = [old[name], new[name]]
    else:
      fixed.append(name)
  if fixed:
    name = fixed[0]
    others = f" (and {', '.join(fixed[1:])})" if len(fixed) > 1 else ""
    raise errors.ConfigError(
        f"Cannot resume: --config.{name}={json.dumps(new[name])} differs from the saved run's "
        f"{json.dumps(old[name])}{others}. Resume with the saved value, or train the new config in "
        "another --workdir.")
  return changed


def read_saved_config(workdir) -> dict | None:
  """The workdir's config.json as a dict; None when absent. An unreadable file is an error."""
  path = pathlib.Path(workdir) / "config.json"
  if not path.exists():
    return None
  try:
    return json.loads(path.read_text())
  except (OSError, ValueError) as e:
    raise errors.WorkdirError(f"{path} is unreadable ({e}); restore it from a backup, or move the "
                              "workdir aside and train again.") from e


def write_config(workdir, config) -> None:
  """config.json, written atomically."""
  writer.write_text_atomically(pathlib.Path(workdir) / "config.json",
                               config.to_json_best_effort(indent=2) + "\n")


def open_workdir(config, workdir, is_writer: bool = True) -> dict:
  """Checks a resumed run's config against its saved config.json (before anything is written),
  then writes config.json. Returns the resumable fields that changed ({field: [old, new]})."""
  workdir = pathlib.Path(workdir)
  if (workdir / WEIGHTS_FILE).exists():
    raise errors.WorkdirError(
        f"{workdir} holds shipped weights ({WEIGHTS_FILE}), not a training run; train in another "
        "--workdir (the weights are read-only here).")
  changes = {}
  saved = read_saved_config(workdir)
  if saved is not None and has_checkpoints(workdir):
    changes = check_resume_config(saved, config)
    if changes:
      logging.info("Resuming with changed fields: %s", changes)
  if is_writer:
    write_config(workdir, config)
  return changes


# ------------------------------------------------------------------ saving and restoring
def has_checkpoints(workdir) -> bool:
  """Whether `<workdir>/checkpoints` holds at least one step folder."""
  ckpt_dir = pathlib.Path(workdir) / "checkpoints"
  return ckpt_dir.is_dir() and any(p.name.isdigit() for p in ckpt_dir.iterdir())


def has_trained_state(workdir) -> bool:
  """Whether a reading mode finds a state in `workdir`: checkpoints or shipped weights."""
  return has_checkpoints(workdir) or (pathlib.Path(workdir) / WEIGHTS_FILE).exists()


def open_manager(ckpt_dir, every: int = 1, keep: int | None = None) -> ocp.CheckpointManager:
  """An orbax manager for the state (item 'default') and an optional JSON item ('extra').

  Checkpoints written before the 'extra' item existed (state only) restore through it too.
  """
  return ocp.CheckpointManager(
      pathlib.Path(ckpt_dir).absolute(), item_names=(STATE, EXTRA),
      options=ocp.CheckpointManagerOptions(save_interval_steps=every, max_to_keep=keep))


def save(manager: ocp.CheckpointManager, step: int, state, extra: dict | None = None,
         force: bool = False) -> bool:
  """Saves `state` (and the JSON-able dict `extra`) at `step` when the manager's interval says so
  (or `force`). Returns whether a save was started."""
  items = {STATE: ocp.args.StandardSave(state)}
  if extra is not None:
    items[EXTRA] = ocp.args.JsonSave(extra)
  return manager.save(step, args=ocp.args.Composite(**items), force=force)


@dataclasses.dataclass
class Restored:
  step: int
  state: Any
  extra: dict | None
  damaged: list[str]          # damaged checkpoints moved aside, 'step: moved to path (reason)'


def _move_aside(ckpt_dir: pathlib.Path, step: int) -> pathlib.Path:
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  target = ckpt_dir.parent / DAMAGED_DIR / f"{step}-{stamp}"
  target.parent.mkdir(parents=True, exist_ok=True)
  shutil.move(str(ckpt_dir / str(step)), str(target))
  return target


def _newest_that_restores(manager: ocp.CheckpointManager, abstract, move_aside: bool):
  """The one fall-back loop: tries the checkpoints newest first and returns (step, state, extra
  or None, damaged) for the first that restores into `abstract`, or None when none does. A
  damaged one gets a warning and, with `move_aside` (training, process 0), is moved to
  `<workdir>/damaged_checkpoints/`; a reading mode leaves it where it is."""
  ckpt_dir = pathlib.Path(manager.directory)
  damaged = []
  for step in sorted(manager.all_steps(), reverse=True):
    items = {STATE: ocp.args.StandardRestore(abstract)}
    has_extra = (ckpt_dir / str(step) / EXTRA).exists()
    if has_extra:
      items[EXTRA] = ocp.args.JsonRestore()
    try:
      restored = manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as e:  # pylint: disable=broad-except  (orbax raises many kinds)
      reason = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
      where = "left in place"
      if move_aside and jax.process_index() == 0:
        where = f"moved to {_move_aside(ckpt_dir, step)}"
      logging.warning("Checkpoint %s/%d does not restore (%s); %s. Trying an older one.",
                      ckpt_dir, step, reason, where)
      damaged.append(f"{step}: {where} ({reason})")
      if move_aside:
        manager.reload()
      continue
    return step, restored[STATE], restored[EXTRA] if has_extra else None, damaged
  return None, None, None, damaged


def restore_newest(manager: ocp.CheckpointManager, abstract) -> Restored | None:
  """The newest checkpoint that restores into `abstract` (a pytree of ShapeDtypeStructs, placed as
  the state will be), with its 'extra' item when it has one; None when there is no checkpoint.

  A checkpoint that fails to restore is moved to `<workdir>/damaged_checkpoints/` (by process 0)
  with a warning naming it, and the next older one is tried.

  Raises:
    WorkdirError: checkpoints exist but none restores (all of them were moved aside).
  """
  step, state, extra, damaged = _newest_that_restores(manager, abstract, move_aside=True)
  if step is not None:
    return Restored(step, state, extra, damaged)
  if damaged:
    ckpt_dir = pathlib.Path(manager.directory)
    raise errors.WorkdirError(
        f"No checkpoint in {ckpt_dir} restores; the damaged ones were moved to "
        f"{ckpt_dir.parent / DAMAGED_DIR}. Run again to train from step 0.")
  return None


def restore_for_reading(workdir, abstract, how_to_train: str):
  """The latest checkpointed state in `<workdir>/checkpoints` for a mode that only reads (falling
  back past damaged checkpoints, which stay where they are). Creates nothing in the workdir.

  Raises:
    MissingError: no checkpoint (the message says `how_to_train`).
    WorkdirError: checkpoints exist but none restores.
  """
  ckpt_dir = (pathlib.Path(workdir) / "checkpoints").absolute()
  if not ckpt_dir.is_dir() and (pathlib.Path(workdir) / WEIGHTS_FILE).exists():
    return read_weights(workdir, abstract)[0]
  if not ckpt_dir.is_dir():
    raise errors.MissingError(f"No checkpoint in {ckpt_dir}: {how_to_train}.")
  manager = ocp.CheckpointManager(ckpt_dir, item_names=(STATE, EXTRA),
                                  options=ocp.CheckpointManagerOptions(read_only=True))
  with manager:
    if not manager.all_steps():
      raise errors.MissingError(f"No checkpoint in {ckpt_dir}: {how_to_train}.")
    step, state, _, _ = _newest_that_restores(manager, abstract, move_aside=False)
  if step is None:
    raise errors.WorkdirError(f"No checkpoint in {ckpt_dir} restores; train again (the same "
                              "command with --mode=train moves the damaged ones aside).")
  return state


# ------------------------------------------------------------------ shipped weights
# Fields whose absence from a weights file is an error (a step may be missing: it is only shown).
REQUIRED_WEIGHT_FIELDS = ("params", "codebook", "stats")
CONFIG_FILE = "config.json"


def weights_digest(tree: dict) -> str:
  """sha256 (hex) of a weights tree {field: nested dict of arrays}: every array's path, dtype,
  shape and bytes, in sorted path order ('step' and 'metadata' left out), so the same weights
  give the same digest from a run's state or from the file they were exported to."""
  digest = hashlib.sha256()
  flat = flatten({k: v for k, v in tree.items() if k not in ("step", "metadata")})
  for key in sorted(flat):
    value = np.ascontiguousarray(np.asarray(flat[key]))
    digest.update(f"{key}|{value.dtype.str}|{value.shape}|".encode())
    digest.update(value.tobytes())
  return digest.hexdigest()


def state_weights_tree(state) -> dict:
  """{field: nested dict of numpy arrays} of a state's WEIGHT_FIELDS (those it has)."""
  return {f: jax.tree.map(np.asarray, flax.serialization.to_state_dict(getattr(state, f)))
          for f in WEIGHT_FIELDS if hasattr(state, f)}


def config_digest(config: dict) -> str:
  """sha256 (hex) of a config.json dict, keys sorted: what defines the exported function
  (representation, hop, sample rate, shapes, ...). The sections a read command may set (the
  data's location, evaluation settings) are left out by the caller (`run_config`)."""
  return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def write_weights(directory, state, metadata: dict) -> pathlib.Path:
  """Writes `<directory>/weights.msgpack`: the fields of `state` named in WEIGHT_FIELDS (those it
  has) as NumPy arrays, and `metadata` (JSON-able: e.g. the data scale, the config's digest)
  with the weights' own digest ('weights_sha256', `weights_digest`), atomically."""
  tree = state_weights_tree(state)
  tree["metadata"] = json.dumps({**metadata, "weights_sha256": weights_digest(tree)},
                                sort_keys=True)
  path = pathlib.Path(directory) / WEIGHTS_FILE
  files.write_bytes(path, flax.serialization.msgpack_serialize(tree))
  return path


def _shapes(name: str, tree) -> dict:
  return {k: (tuple(v.shape), str(v.dtype)) for k, v in flatten({name: tree}).items()}


def check_weights(path: pathlib.Path, raw: dict, metadata: dict, expected_fields) -> None:
  """Refuses a weights file that could only give garbage: a field the model needs missing
  (`expected_fields` of REQUIRED_WEIGHT_FIELDS), a non-finite number, or bytes that no longer
  match the digest written at export (a flipped byte, an edit). Raises WorkdirError."""
  again = "download or export it again"
  missing = [f for f in expected_fields if f in REQUIRED_WEIGHT_FIELDS and f not in raw]
  if missing:
    raise errors.WorkdirError(f"{path} lacks {', '.join(missing)} (the model cannot run without "
                              f"it); {again}.")
  for key, value in flatten({k: v for k, v in raw.items() if k != "step"}).items():
    value = np.asarray(value)
    if np.issubdtype(value.dtype, np.inexact) and not np.all(np.isfinite(value)):
      raise errors.WorkdirError(f"{path}: {key} holds NaN or infinite values; {again}.")
  saved = metadata.get("weights_sha256")
  if saved is not None and saved != weights_digest(raw):
    raise errors.WorkdirError(f"{path} fails its checksum (its arrays changed since export: a "
                              f"damaged or edited file); {again}.")


def check_config_digest(directory, metadata: dict, digest_of) -> None:
  """Refuses `<directory>/config.json` when it no longer matches the digest recorded at export
  (`metadata['config_sha256']`, computed by `digest_of(config dict)`): an edited config would
  build another function around the same weights (another sample rate, hop, shapes)."""
  saved = metadata.get("config_sha256")
  path = pathlib.Path(directory) / CONFIG_FILE
  if saved is None or not path.exists():
    return
  if digest_of(json.loads(path.read_text())) != saved:
    raise errors.WorkdirError(
        f"{path} was changed after its weights were exported (its model-defining fields no "
        "longer match the checksum in weights.msgpack); restore the original config.json or "
        "export the run again.")


def read_weights(directory, abstract):
  """(state, metadata) from `<directory>/weights.msgpack`: `abstract` (a state of ShapeDtypeStructs,
  e.g. from `jax.eval_shape`) with the saved fields filled in and the rest (optimizer state, rng)
  zeros. The file is checked first (`check_weights`).

  Raises:
    WorkdirError: the file is unreadable, damaged, incomplete, non-finite, or its arrays do not
      fit the config's shapes.
  """
  path = pathlib.Path(directory) / WEIGHTS_FILE
  try:
    raw = flax.serialization.msgpack_restore(path.read_bytes())
    metadata = json.loads(raw.pop("metadata", "{}"))
  except (OSError, ValueError, TypeError, KeyError) as e:
    raise errors.WorkdirError(f"{path} is unreadable ({type(e).__name__}: {e}); download or "
                              "export it again.") from e
  names = [f.name for f in dataclasses.fields(abstract)] if dataclasses.is_dataclass(abstract) else []
  check_weights(path, raw, metadata, names)
  fields = {}
  for name in names:
    target = getattr(abstract, name)
    if name in raw:
      saved = flax.serialization.from_state_dict(target, raw[name])
      want, got = (_shapes(name, flax.serialization.to_state_dict(t))
                   for t in (target, saved))
      if want != got:
        diff = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))[:3]
        raise errors.WorkdirError(
            f"{path} does not fit the config: {', '.join(diff)} is saved as "
            f"{[got.get(k) for k in diff]}, the config builds {[want.get(k) for k in diff]}; use "
            f"the config.json saved beside it (--config=... must describe the same model).")
      fields[name] = jax.tree.map(jnp.asarray, saved)
    else:
      fields[name] = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), target)
  return type(abstract)(**fields), metadata


def read_weights_metadata(directory) -> dict | None:
  """The metadata of `<directory>/weights.msgpack`, or None when there is no such file."""
  path = pathlib.Path(directory) / WEIGHTS_FILE
  if not path.exists():
    return None
  try:
    return json.loads(flax.serialization.msgpack_restore(path.read_bytes()).get("metadata", "{}"))
  except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
    raise errors.WorkdirError(f"{path} is unreadable ({type(e).__name__}: {e}); download or "
                              "export it again.") from e
