"""Metrics as JSON lines (`metrics.jsonl`) and TensorBoard scalars (tensorboardX, no TensorFlow)."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform

import numpy as np


def _jsonable(value):
  value = np.asarray(value)
  return value.item() if value.ndim == 0 else value.tolist()


class MetricWriter:
  """Appends one JSON line per (step, split); mirrors scalars (and per-level values) to TensorBoard.

  On resume, lines with step > `truncate_after_step` (logged after the restored checkpoint by a run
  that was then interrupted) are dropped, so the file never holds two histories.
  """

  def __init__(self, workdir: pathlib.Path, enabled: bool = True, truncate_after_step: int = 0):
    self.enabled = enabled
    self.path = pathlib.Path(workdir) / "metrics.jsonl"
    self._tb = None
    if not enabled:
      return
    if self.path.exists():
      lines = [line for line in self.path.read_text().splitlines() if line.strip()]
      kept = [line for line in lines if json.loads(line)["step"] <= truncate_after_step]
      self.path.write_text("".join(line + "\n" for line in kept))
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self._tb = SummaryWriter(str(pathlib.Path(workdir) / "tb"))

  def write(self, step: int, split: str, epoch: int, metrics: dict) -> None:
    if not self.enabled:
      return
    record = {"step": int(step), "split": split, "epoch": int(epoch)}
    record.update({k: _jsonable(v) for k, v in metrics.items() if k != "counts"})
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    for key, value in record.items():
      if key in ("step", "split", "epoch"):
        continue
      value = np.asarray(value, np.float64)
      if value.ndim == 0:
        self._tb.add_scalar(f"{split}/{key}", float(value), step)
      elif value.ndim == 1:
        for level, v in enumerate(value):
          self._tb.add_scalar(f"{split}/{key}/level_{level}", float(v), step)
    self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir) -> list[dict]:
  """The records of `<workdir>/metrics.jsonl` in order."""
  path = pathlib.Path(workdir) / "metrics.jsonl"
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_run_info(workdir, **fields) -> None:
  """Appends one session's facts (date, device, versions, and `fields`) to run_info.json."""
  import jax  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(workdir) / "run_info.json"
  sessions = json.loads(path.read_text()) if path.exists() else []
  sessions.append(dict(
      started=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      device=f"{jax.devices()[0].platform}: {jax.devices()[0].device_kind}",
      cpu_count=os.cpu_count(), process_count=jax.process_count(), jax=jax.__version__,
      python=platform.python_version(), **fields))
  path.write_text(json.dumps(sessions, indent=2) + "\n")
