"""Metrics as JSON lines (`metrics.jsonl`) and TensorBoard scalars (tensorboardX, no TensorFlow)."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform

from absl import logging
import numpy as np

from rvq_jax import files


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
      kept = [json.dumps(r) for r in read_metrics(workdir) if r["step"] <= truncate_after_step]
      write_text_atomically(self.path, "".join(line + "\n" for line in kept))
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


def write_text_atomically(path: pathlib.Path, text: str) -> None:
  """`files.write_text`: readers see the old file or the new one, never half of one."""
  files.write_text(path, text)


def read_metrics(workdir) -> list[dict]:
  """The records of `<workdir>/metrics.jsonl` in order.

  A line that does not parse (a run killed while appending it leaves a torn last line) is skipped
  with a warning naming the file and line, so a damaged log never blocks a resume.
  """
  path = pathlib.Path(workdir) / "metrics.jsonl"
  if not path.exists():
    return []
  records = []
  for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
      if not isinstance(record, dict) or not isinstance(record.get("step"), int):
        raise ValueError("not a metrics record")
    except ValueError as e:
      logging.warning("Skipping line %d of %s, which does not parse (%s): %r", number, path, e,
                      line[:80])
      continue
    records.append(record)
  return records


def read_run_info(workdir) -> list[dict]:
  """The sessions recorded in run_info.json; an unreadable file is moved aside with a warning."""
  path = pathlib.Path(workdir) / "run_info.json"
  if not path.exists():
    return []
  try:
    sessions = json.loads(path.read_text())
    if not isinstance(sessions, list):
      raise ValueError("not a list of sessions")
    return sessions
  except ValueError as e:
    aside = path.with_name(f"run_info.damaged-{os.getpid()}.json")
    os.replace(path, aside)
    logging.warning("%s does not parse (%s); moved it to %s and starting a new one.", path, e,
                    aside)
    return []


def append_run_info(workdir, **fields) -> None:
  """Appends one session's facts (date, device, versions, and `fields`) to run_info.json (written
  atomically: a kill mid-write leaves the previous version)."""
  import jax  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(workdir) / "run_info.json"
  sessions = read_run_info(workdir)
  sessions.append(dict(
      started=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      device=f"{jax.devices()[0].platform}: {jax.devices()[0].device_kind}",
      cpu_count=os.cpu_count(), process_count=jax.process_count(), jax=jax.__version__,
      python=platform.python_version(), **fields))
  write_text_atomically(path, json.dumps(sessions, indent=2) + "\n")
