"""`--mode=export --workdir=runs/<name> --output=pretrained/<name>`: shipped weights of a run.

Writes the run's weights (parameters and codebooks; no optimizer state: a few MB) as
`weights.msgpack`, with the data scale the model was trained at in its metadata, and copies the
run's record beside it: config.json, eval.json / classifier_eval.json, report.md, metrics.jsonl and
run_info.json. The folder then works as a `--workdir` for every mode that only reads (evaluate,
reconstruct, encode, decode; a prior's `vqvae_workdir`; `eval.classifier_workdir`), and
`python -m rvq_jax.eval.results --root=pretrained` rebuilds the results page from it.
"""

from __future__ import annotations

import datetime
import pathlib
import shutil

from absl import logging

from rvq_jax import data as data_lib
from rvq_jax import errors
from rvq_jax.train import checkpoints
from rvq_jax.train import classifier as classifier_train
from rvq_jax.train import loop

RECORD_FILES = ("config.json", "eval.json", "classifier_eval.json", "report.md", "metrics.jsonl",
                "run_info.json")


def export(config, workdir: str, output: str | None) -> pathlib.Path:
  """Exports the VQ-VAE (or, for a config with a `classifier` section, the classifier) trained in
  `workdir` to the folder `output`; returns the weights file."""
  if not output:
    raise errors.ConfigError("--mode=export needs --output=<folder> (e.g. pretrained/model5).")
  workdir, output = pathlib.Path(workdir), pathlib.Path(output)
  if output.resolve() == workdir.resolve():
    raise errors.ConfigError(f"--output={output} is the workdir itself; export to another folder.")
  if "classifier" in config:
    state = classifier_train.restore_classifier_state(workdir)
    metadata = {}
  else:
    saved = loop.saved_vqvae_config(workdir, config.data)
    state = loop.restore_state(saved, workdir)
    metadata = {"data_scale": float(data_lib.load_dataset(saved.data).scale)}
  metadata.update(step=int(state.step), source=str(workdir),
                  exported=datetime.date.today().isoformat())
  output.mkdir(parents=True, exist_ok=True)
  path = checkpoints.write_weights(output, state, metadata)
  for name in RECORD_FILES:
    if (workdir / name).exists():
      shutil.copyfile(workdir / name, output / name)
  logging.info("Exported step %d of %s to %s (%.1f MB)", metadata["step"], workdir, path,
               path.stat().st_size / 1e6)
  return path
