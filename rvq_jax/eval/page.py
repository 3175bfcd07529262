"""What every part of the results page reads records with: workdirs found in a list of roots,
JSON records, validation curves, training time, figures kept beside the page, percentages, and
`changed_fields`, the "change" column of an ablation row computed from its saved config."""

from __future__ import annotations

import json
import pathlib
import shutil

from rvq_jax import run_config
from rvq_jax.eval import compare
from rvq_jax.train import checkpoints

find = compare.find_workdir   # (roots, name, file) -> the first <root>/<name> holding the file


def load_json(path: pathlib.Path):
  """The JSON at `path`, or None when it does not exist."""
  return json.loads(path.read_text()) if path.exists() else None


def validation_records(records: list[dict]) -> list[dict]:
  """The validation rows of metrics.jsonl records, in order."""
  return [r for r in records if r["split"] == "validation"]


def wall_seconds(records: list[dict], batch_size: int) -> float:
  """Training time summed over logged epochs (epoch_seconds, or steps * batch / examples/s)."""
  total, previous = 0.0, 0
  for r in (r for r in records if r["split"] == "train"):
    total += r.get("epoch_seconds") or (r["step"] - previous) * batch_size / r["examples_per_second"]
    previous = r["step"]
  return total


def kept_figure(source: pathlib.Path, target: pathlib.Path) -> bool:
  """Copies a run's figure to the page's folder; True when the page has it, copied now or kept
  from an earlier rendering (exported records carry no figures, so a page regenerated from
  pretrained/ keeps the ones its runs drew)."""
  if source.exists():
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
  return target.exists()


def fraction(x) -> str:
  return f"{100 * x:.1f}%"


def histogram_range(histogram) -> str:
  return f"{fraction(min(histogram))}-{fraction(max(histogram))}"


# Fields that say how long, how often, where, or how a run computes (not what it is), and the
# sampling and scoring sections: never part of an ablation row's change.
_NOT_A_CHANGE = checkpoints.RESUMABLE_FIELDS + ("train.num_steps", "train.num_epochs", "sample",
                                                "eval", "data", "task")


def changed_fields(config, base) -> str:
  """The fields in which `config` (a ConfigDict, or a workdir whose config.json is read as saved,
  over the defaults) differs from the config `base`, as `field=value, ...`; '(none: the base)'.
  How long, how often, where and how it computes, sampling and scoring are not changes."""
  if isinstance(config, (str, pathlib.Path)):
    config = run_config.saved_config(config)
  saved = checkpoints.flatten(json.loads(config.to_json_best_effort()))
  reference = checkpoints.flatten(json.loads(base.to_json_best_effort()))
  changes = []
  for name in sorted(set(saved) & set(reference)):
    if any(name == f or name.startswith(f + ".") for f in _NOT_A_CHANGE):
      continue
    value = json.loads(json.dumps(saved[name]))
    if value != reference[name]:
      changes.append(f"{name}={json.dumps(value).replace(' ', '')}")
  return ", ".join(changes) or "(none: the base)"
