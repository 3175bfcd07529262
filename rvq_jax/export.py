"""`--mode=export --workdir=runs/<name> --output=pretrained/<name>`: shipped weights of a run.

Writes the run's weights (parameters and codebooks, or a prior's parameters and target-space
constants; no optimizer state: a few MB) as `weights.msgpack`, with the data scale the model was
trained at in its metadata, and copies the run's record beside it: config.json, eval.json /
classifier_eval.json / prior_eval.json, report.md, metrics.jsonl and run_info.json. The folder then
works as a `--workdir` for every mode that only reads (evaluate, reconstruct, encode, decode,
sample; a prior's `vqvae_workdir`; `eval.classifier_workdir`), and
`python -m rvq_jax.eval.results --root=pretrained` rebuilds the results page from it.

The exported config.json is the run's as trained, read as the export command says: with a
`--config`, its read sections (`run_config.READ_SECTIONS`: how to sample, which scorers) replace
the run's (e.g. the sampling setting a prior ships with, `--config.sample.temperature=0.7`); what
was trained is never changed, so the config digest sealed in the weights still holds.

With `--weights=false` only the record is copied (no weights): how the ablation rows of the
results page are kept (docs/ablation/<row>), since only finished, useful models ship weights.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import shutil

from absl import logging

from rvq_jax import bitstream
from rvq_jax import codec
from rvq_jax import data as data_lib
from rvq_jax import errors
from rvq_jax import files
from rvq_jax import run_config
from rvq_jax.train import checkpoints
from rvq_jax.train import classifier as classifier_train
from rvq_jax.train import code_prior as code_prior_train
from rvq_jax.train import prior as prior_train
from rvq_jax.train import prior_targets
from rvq_jax.train import vqvae as vqvae_train

RECORD_FILES = ("config.json", "eval.json", "classifier_eval.json", "prior_eval.json", "report.md",
                "metrics.jsonl", "run_info.json")


def export(config, workdir: str, output: str | None, weights: bool = True,
           overwrite: bool = False) -> pathlib.Path:
  """Exports the run trained in `workdir` (a VQ-VAE, the classifier, the RealNVP prior or the
  autoregressive anchor: its saved config's task; `config`, the command's, may be None) to the
  folder `output`, which must be new or empty unless `overwrite` (then it is replaced whole, in
  one rename: `files.new_folder`); returns the weights file (the output folder when `weights` is
  False: then only the run's record is copied, e.g. an ablation row kept for the results page)."""
  if not output:
    raise errors.ConfigError("--mode=export needs --output=<folder> (e.g. pretrained/model5).")
  workdir, output = pathlib.Path(workdir), pathlib.Path(output)
  if output.resolve() == workdir.resolve():
    raise errors.ConfigError(f"--output={output} is the workdir itself; export to another folder.")
  if not weights:
    if not (workdir / "metrics.jsonl").exists():
      raise errors.MissingError(f"{workdir} holds no run record (metrics.jsonl); train it first.")
    with files.new_folder(output, overwrite) as staging:
      copied = _copy_record(workdir, staging)
    logging.info("Exported the record of %s to %s: %s", workdir, output, ", ".join(copied))
    return output
  command, config = config, run_config.saved_config(workdir, config)
  if config.task == "classifier":
    state = classifier_train.restore_classifier_state(workdir)
    metadata = {}
  elif config.task in ("prior", "code_prior"):
    run = prior_targets.load_vqvae(config, with_data=False)
    prior_targets.check_vqvae(workdir, config, run)
    restore = (prior_train.restore_prior if config.task == "prior"
               else code_prior_train.restore_code_prior)
    state = restore(config, workdir, run.config)
    metadata = {"vqvae_workdir": config.vqvae_workdir,
                "vqvae_sha256": prior_targets.vqvae_fingerprint(run)}
  else:
    state = vqvae_train.restore_state(config, workdir)
    metadata = {"data_scale": float(data_lib.load_dataset(config.data).scale)}
  metadata.update(step=int(state.step), source=str(workdir),
                  exported=datetime.date.today().isoformat(),
                  config_sha256=run_config.function_digest(
                      json.loads((workdir / "config.json").read_text())))
  with files.new_folder(output, overwrite) as staging:
    checkpoints.write_weights(staging, state, metadata)
    _copy_record(workdir, staging)
    if command is not None:
      files.write_text(staging / "config.json", json.dumps(
          run_config.with_read_sections(json.loads((workdir / "config.json").read_text()),
                                        config), indent=2) + "\n")
    if config.task == "vqvae":   # what the codec's bitstream is coded with
      bitstream.save_entropy_model(staging, codec.fit_training_entropy_model(
          codec.load_codec(config, staging), codec.codec_settings(config)))
  path = output / checkpoints.WEIGHTS_FILE
  logging.info("Exported step %d of %s to %s (%.1f MB)", metadata["step"], workdir, path,
               path.stat().st_size / 1e6)
  return path


def _copy_record(workdir: pathlib.Path, output: pathlib.Path) -> list[str]:
  copied = [name for name in RECORD_FILES if (workdir / name).exists()]
  for name in copied:
    shutil.copyfile(workdir / name, output / name)
  return copied
