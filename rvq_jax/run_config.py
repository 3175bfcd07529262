"""A run's config, in one place: which task a config is, its defaults, and `saved_config`, the
config a trained run was made with, for every mode that reads a run.

Every config names its task (`config.task`: 'vqvae', 'prior', 'classifier' or 'code_prior', the
autoregressive anchor); `rvq_jax.tasks` dispatches on it. A mode that reads a trained run
(evaluate, export, reconstruct / encode / decode, sample, a prior's VQ-VAE, the judge classifier)
builds the model from the run's own `config.json`, never from the command's `--config`: the saved
file over the task's defaults (the fields added since it was written, which take the value that
reproduces the old behaviour), and from the command only the sections `READ_SECTIONS` that say how
to read, not what was trained.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from absl import logging
import ml_collections

from rvq_jax import errors
from rvq_jax.train import checkpoints

TASKS = ("vqvae", "prior", "classifier", "code_prior")

# What a read-only command may set (the rest is the trained run's): whole sections, or
# 'section.field' for single fields (the data's location, not how it was prepared).
DATA_LOCATION = ("data.data_dir", "data.cache_dir", "data.use_cache", "data.download_url")
READ_SECTIONS = {
    "vqvae": ("eval", "codec", "figures", "parallel", "train.eval_batch_size",
              "train.progress_bar") + DATA_LOCATION,
    "prior": ("sample", "eval", "parallel", "train.eval_batch_size") + DATA_LOCATION[:2],
    "classifier": ("eval", "parallel", "classifier.eval_batch_size") + DATA_LOCATION,
    "code_prior": ("sample", "eval", "parallel", "train.eval_batch_size") + DATA_LOCATION[:2],
}


def default_config(task: str) -> ml_collections.ConfigDict:
  """The task's documented defaults (configs/default.py, realnvp.py, classifier.py,
  code_transformer.py)."""
  from rvq_jax.configs import classifier  # pylint: disable=g-import-not-at-top
  from rvq_jax.configs import code_transformer  # pylint: disable=g-import-not-at-top
  from rvq_jax.configs import default  # pylint: disable=g-import-not-at-top
  from rvq_jax.configs import realnvp  # pylint: disable=g-import-not-at-top
  if task not in TASKS:
    raise errors.ConfigError(f"task={task!r} is unknown; choose one of {TASKS}.")
  return {"vqvae": default, "prior": realnvp, "classifier": classifier,
          "code_prior": code_transformer}[task].get_config()


def legacy_task(saved: dict) -> str:
  """The task of a config.json written before configs named theirs (its sections tell)."""
  if "prior" in saved:
    return "prior"
  if "classifier" in saved:
    return "classifier"
  return "vqvae"


# The classifier's config once carried the VQ-VAE's sections and its own loop length; now its
# `train` section is its loop.
_LEGACY_CLASSIFIER_MOVES = {"classifier.num_epochs": "train.num_epochs",
                            "classifier.batch_size": "train.batch_size"}
_LEGACY_CLASSIFIER_DROPPED = ("model", "rvq", "loss", "optim", "codec", "figures")


# Fields added after runs were recorded, whose default is no longer what the code did before they
# existed: an older config.json without them means this value (off), not today's default (the
# shipped prior's recipe turned guidance on, 2026-12-06).
_ADDED_FIELDS = {"prior": {"prior.label_conditioning": False, "prior.label_dropout": 0.0,
                           "sample.guidance": 0.0, "sample.guidances": [0.0]}}


def _with_added_fields(saved: dict) -> dict:
  for name, value in _ADDED_FIELDS.get(saved["task"], {}).items():
    section, field = name.split(".")
    if section in saved and field not in saved[section]:
      saved[section][field] = value
  return saved


def migrate(saved: dict) -> dict:
  """A config.json dict in today's layout: `task` added (`legacy_task`) and, for a classifier,
  its loop fields moved into `train` and the VQ-VAE's sections it never read dropped; fields
  added since it was written set to what the code did before them (`_ADDED_FIELDS`). A current
  file comes back unchanged."""
  saved = json.loads(json.dumps(saved))
  if "task" in saved:
    return _with_added_fields(saved)
  task = legacy_task(saved)
  if task == "classifier":
    for old, new in _LEGACY_CLASSIFIER_MOVES.items():
      (os, of), (ns, nf) = old.split("."), new.split(".")
      if of in saved.get(os, {}):
        saved.setdefault(ns, {})[nf] = saved[os].pop(of)
    for section in _LEGACY_CLASSIFIER_DROPPED:
      saved.pop(section, None)
  return _with_added_fields({"task": task, **saved})


def _assign(config: ml_collections.ConfigDict, key: str, value: Any) -> None:
  """config[key] = value (JSON lists become tuples where the default is a tuple)."""
  current = config.get(key)
  if isinstance(value, dict) and isinstance(current, ml_collections.ConfigDict):
    for k, v in value.items():
      _assign(current, k, v)
    return
  if isinstance(value, list) and (current is None or isinstance(current, tuple)):
    value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
  if key in config:
    config[key] = value
  else:   # a field this code no longer has: kept, so the record stays whole
    config[key] = ml_collections.ConfigDict(value) if isinstance(value, dict) else value


def _get(config, dotted: str):
  node = config
  for part in dotted.split("."):
    if part not in node:
      return None
    node = node[part]
  return node


def _set(config, dotted: str, value) -> None:
  *path, last = dotted.split(".")
  node = config
  for part in path:
    node = node[part]
  node[last] = value


def _is_read_field(task: str, name: str) -> bool:
  return any(name == f or name.startswith(f + ".") for f in READ_SECTIONS[task])


def function_digest(saved: dict) -> str:
  """The digest of what a config.json dict defines (`checkpoints.config_digest`): every field but
  those a read command may set (`READ_SECTIONS`: the data's location, evaluation settings).
  Export records it in the weights; `saved_config` checks it."""
  saved = migrate(saved)
  return checkpoints.config_digest({k: v for k, v in checkpoints.flatten(saved).items()
                                    if not _is_read_field(saved["task"], k)})


PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[1]   # the checkout: configs/, pretrained/


def project_path(path) -> pathlib.Path:
  """A folder a config names (`eval.classifier_workdir`, a prior's `vqvae_workdir`): as given when
  it exists or is absolute, else the same relative path inside the project's checkout, so the
  defaults ('pretrained/classifier') work from any working directory. A path found in neither
  place is returned as given, for the caller's error to name."""
  path = pathlib.Path(path)
  if path.is_absolute() or path.exists():
    return path
  inside = PROJECT_ROOT / path
  return inside if inside.exists() else path


def with_data_location(config: ml_collections.ConfigDict, location) -> ml_collections.ConfigDict:
  """`config` with the data location fields that `location` (a config's `data` section, a dict or
  None) sets; the data may live elsewhere on this machine than where the run was trained."""
  for name in DATA_LOCATION:
    field = name.split(".")[1]
    if location is not None and location.get(field) is not None and field in config.data:
      config.data[field] = location[field]
  return config


def saved_config(workdir, command: ml_collections.ConfigDict | None = None
                 ) -> ml_collections.ConfigDict:
  """The config of the run trained in `workdir` (a training workdir or shipped weights).

  `<workdir>/config.json` over its task's defaults; from `command` (the command line's config,
  if any) only the fields of `READ_SECTIONS[task]` (data location fields only when set). Fields
  of `command` that differ from the saved run are ignored with a warning naming them.

  Raises:
    MissingError: `workdir` holds no config.json.
    ConfigError: `command` is a config of another task.
  """
  path = pathlib.Path(workdir) / "config.json"
  if not path.exists():
    raise errors.MissingError(
        f"{workdir} holds no trained run (no config.json); train one there first, or point "
        "--workdir at a run or at shipped weights (pretrained/<name>).")
  try:
    saved = json.loads(path.read_text())
  except (OSError, ValueError) as e:
    raise errors.WorkdirError(f"{path} is unreadable ({e}); restore it from a backup, or move the "
                              "workdir aside and train again.") from e
  if not isinstance(saved, dict):
    raise errors.WorkdirError(f"{path} is not a config (a JSON object); restore it from a backup.")
  if (path.parent / checkpoints.WEIGHTS_FILE).exists():   # shipped: sealed at export
    checkpoints.check_config_digest(path.parent, checkpoints.read_weights_metadata(path.parent),
                                    function_digest)
  saved = migrate(saved)
  task = saved["task"]
  config = default_config(task)
  for key, value in saved.items():
    _assign(config, key, value)
  if command is None:
    return config
  command_task = command.get("task")
  if command_task != task:
    raise errors.ConfigError(
        f"--config is a {command_task} config (task={command_task!r}) but {workdir} holds a "
        f"{task} run; use a {task} config, or leave --config out to read the run as saved.")
  old = checkpoints.flatten(saved)
  new = checkpoints.flatten(json.loads(command.to_json_best_effort()))
  ignored = [n for n in sorted(set(old) & set(new))
             if old[n] != new[n] and not _is_read_field(task, n)]
  if ignored:
    logging.warning("%s is read as it was trained (its config.json); the command's %s ignored.",
                    workdir, ", ".join(f"{n}={json.dumps(_get(command, n))}" for n in ignored[:6])
                    + (f" and {len(ignored) - 6} more are" if len(ignored) > 6 else
                       " is" if len(ignored) == 1 else " are"))
  for name in READ_SECTIONS[task]:
    value = _get(command, name)
    if name in DATA_LOCATION:
      continue
    if isinstance(value, ml_collections.ConfigDict):
      _assign(config, name, value.to_dict())
    elif _get(command, name) is not None or _get(config, name) is not None:
      _set(config, name, value)
  return with_data_location(config, command.get("data"))


def with_read_sections(saved: dict, config: ml_collections.ConfigDict) -> dict:
  """`saved` (a run's config.json) with the fields of `READ_SECTIONS` (but the data's location)
  taken from `config` (e.g. `saved_config(workdir, command)`): how the run is read, never what
  was trained, so `function_digest` is unchanged."""
  read = json.loads(config.to_json_best_effort())
  out = migrate(saved)
  for name in READ_SECTIONS[out["task"]]:
    if name in DATA_LOCATION:
      continue
    value = _get(read, name)
    *path, last = name.split(".")
    node = out
    for part in path:
      node = node.setdefault(part, {})
    if value is None:
      node.pop(last, None)
    else:
      node[last] = value
  return out


def record_folder(workdir, output: str | None) -> pathlib.Path:
  """Where a mode that reads the run in `workdir` writes its record (eval.json and the like):
  `output` when given; else the workdir when it is a training run. A folder of shipped weights
  (weights.msgpack, no checkpoints) is never written unasked: name it as --output to regenerate
  its record on purpose.

  Raises:
    ConfigError: no `output` for a folder of shipped weights.
  """
  workdir = pathlib.Path(workdir)
  if output:
    return pathlib.Path(output)
  if (workdir / "weights.msgpack").exists() and not (workdir / "checkpoints").is_dir():
    raise errors.ConfigError(
        f"{workdir} holds shipped weights, which a read mode leaves as they are; write the record "
        f"elsewhere with --output=<folder> (or --output={workdir} to regenerate it on purpose).")
  return workdir
