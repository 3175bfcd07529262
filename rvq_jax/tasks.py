"""What each task offers per `--mode`, in one table, and `run`, the one dispatcher.

A config names its task (`config.task`, rvq_jax.run_config); `TASKS[task][mode]` is the function
that runs it, always called as `fn(config, workdir, command)`. Modes in `READ_MODES` read a trained
run: they get the run's own config (`run_config.saved_config`: config.json over the defaults, the
command's read sections), so they need no `--config` at all, and write only to `--output`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from rvq_jax import codec
from rvq_jax import errors
from rvq_jax import export
from rvq_jax import run_config
from rvq_jax.eval import code_prior_report
from rvq_jax.eval import prior_report
from rvq_jax.eval import quality
from rvq_jax.eval import report
from rvq_jax.eval import spectrogram_figure
from rvq_jax.train import classifier as classifier_train
from rvq_jax.train import code_prior as code_prior_train
from rvq_jax.train import parallel
from rvq_jax.train import prior as prior_train
from rvq_jax.train import validation
from rvq_jax.train import vqvae as vqvae_train


@dataclasses.dataclass(frozen=True)
class Command:
  """The command line's files: --input, --output, export's --weights, and --overwrite (export and
  sample: replace a non-empty --output folder whole)."""
  input: str | None = None
  output: str | None = None
  weights: bool = True
  overwrite: bool = False


def _files(fn):   # codec modes: (config, workdir, input, output)
  return lambda config, workdir, command: fn(config, workdir, command.input, command.output)


def _plain(fn):   # (config, workdir)
  return lambda config, workdir, command: fn(config, workdir)


def _to_output(fn):   # (config, workdir, output)
  return lambda config, workdir, command: fn(config, workdir, command.output)


def _to_new_folder(fn):   # (config, workdir, output, overwrite)
  return lambda config, workdir, command: fn(config, workdir, command.output, command.overwrite)


def _export(config, workdir, command):
  return export.export(config, workdir, command.output, command.weights, command.overwrite)


# ---- --mode=train of each task: train (or resume) in the workdir, then report there
def train_vqvae(config, workdir: str) -> dict:
  """The RVQ-VAE: train, then eval.json, WAVs and figures (eval/report.py)."""
  state, dataset, specs = vqvae_train.train(config, workdir)
  return report.write_report(config, workdir, state, dataset, specs)


def train_prior(config, workdir: str) -> dict:
  """The RealNVP prior: train, then sample and score it (prior_eval.json, WAVs, figures)."""
  classifier_train.check_trained(config.eval.classifier_workdir)   # before, not after, training
  state, targets, run = prior_train.train_prior(config, workdir)
  return prior_report.evaluate_prior(config, workdir, state, targets, run)


def train_code_prior(config, workdir: str) -> dict:
  """The autoregressive anchor: train, then sample and score it like the flow (prior_eval.json)."""
  classifier_train.check_trained(config.eval.classifier_workdir)
  state, splits, run = code_prior_train.train_code_prior(config, workdir)
  return code_prior_report.evaluate_code_prior(config, workdir, state, splits, run)


def train_classifier(config, workdir: str) -> dict:
  """The digit classifier: train, then calibrate and report it (classifier_eval.json)."""
  _, dataset, specs = classifier_train.train_classifier(config, workdir)
  return quality.write_classifier_report(config, workdir, None, dataset, specs)


TASKS: dict[str, dict[str, Callable]] = {
    "vqvae": {
        "train": _plain(train_vqvae),
        "evaluate": _to_output(quality.evaluate_vqvae),
        "export": _export,
        "reconstruct": _files(codec.reconstruct_mode),
        "encode": _files(codec.encode_mode),
        "decode": _files(codec.decode_mode),
        "entropy_model": _to_output(codec.entropy_model_mode),
        "spectrogram_figure": _plain(spectrogram_figure.write_spectrogram_figure),
    },
    "prior": {
        "train": _plain(train_prior),
        "evaluate": _to_output(prior_report.evaluate),
        "sample": _to_new_folder(prior_report.sample),
        "export": _export,
    },
    "code_prior": {
        "train": _plain(train_code_prior),
        "evaluate": _to_output(code_prior_report.evaluate),
        "sample": _to_new_folder(code_prior_report.sample),
        "export": _export,
    },
    "classifier": {
        "train": _plain(train_classifier),
        "train_classifier": _plain(train_classifier),   # its older name
        "evaluate": _to_output(quality.evaluate_classifier),
        "export": _export,
    },
}
READ_MODES = ("evaluate", "export", "reconstruct", "encode", "decode", "sample", "entropy_model")
TRAIN_MODES = ("train", "train_classifier")
ALL_MODES = tuple(sorted({m for modes in TASKS.values() for m in modes}))


def resolve_config(config, workdir: str, mode: str):
  """The config `mode` runs with: for a read mode the run's own (`saved_config`; `config` may be
  None), else `config` itself (which must then be given)."""
  if mode in READ_MODES:
    return run_config.saved_config(workdir, config)
  if config is None:
    raise errors.ConfigError(f"--mode={mode} needs --config=configs/<name>.py.")
  return config


def run(config, workdir: str, mode: str, command: Command = Command()):
  """Runs `mode` of `config.task` in `workdir`: resolves the config, validates it once, calls the
  task's function and returns what it returns."""
  if mode not in ALL_MODES:
    raise errors.ConfigError(f"--mode={mode} is unknown; choose one of {ALL_MODES}.")
  config = resolve_config(config, workdir, mode)
  modes = TASKS[config.get("task")] if config.get("task") in TASKS else {}
  if mode not in modes:
    raise errors.ConfigError(
        f"--mode={mode} does not apply to a {config.get('task')} config (task="
        f"{config.get('task')!r}); choose one of {sorted(modes) or run_config.TASKS}.")
  validation.validate_config(
      config, parallel.num_devices_for(config.parallel.mode) if mode in TRAIN_MODES else 1)
  return modes[mode](config, workdir, command)
