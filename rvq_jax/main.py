"""Command-line front door: `python -m rvq_jax.main --config=configs/<name>.py --workdir=<dir>`.

Each --mode calls one library function taking (config, workdir). Multi-host runs start the same
command on every host with --distributed (see launch/README.md). A config with a `prior` section
(configs/realnvp.py) selects the RealNVP prior's functions instead of the VQ-VAE's.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from rvq_jax import codec
from rvq_jax import errors
from rvq_jax import export
from rvq_jax.eval import prior_report
from rvq_jax.eval import quality
from rvq_jax.eval import report
from rvq_jax.eval import spectrogram_figure

MODES = {
    "train": report.train_and_report,
    "evaluate": quality.evaluate_vqvae,
    "train_classifier": quality.train_classifier_and_report,
    "spectrogram_figure": spectrogram_figure.write_spectrogram_figure,
}
FILE_MODES = codec.MODES   # (config, workdir, --input, --output)
PRIOR_MODES = {
    "train": prior_report.train_and_evaluate,
    "evaluate": prior_report.evaluate,
    "sample": prior_report.sample,
    "export": export.export,
}

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Everything the run writes goes here.")
_MODE = flags.DEFINE_enum("mode", "train",
                          sorted(set(MODES) | set(PRIOR_MODES) | set(FILE_MODES) | {"export"}),
                          "What to run.")
_INPUT = flags.DEFINE_string("input", None, "reconstruct / encode: a WAV; decode: a codes .npz.")
_OUTPUT = flags.DEFINE_string("output", None, "reconstruct / decode: the WAV to write; encode: the "
                              "codes .npz; export: the folder for the weights (pretrained/<name>).")
_WEIGHTS = flags.DEFINE_bool("weights", True, "export: write the weights (false: only the run's "
                             "record: config, eval.json, metrics; e.g. an ablation row).")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", None, "Multi-host: call jax.distributed.initialize() first (default: "
    "$RVQ_JAX_DISTRIBUTED=1). Without the three flags below JAX detects the cluster (Cloud TPU, "
    "SLURM, Open MPI).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "host:port of process 0 (multi-host without cluster detection).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, 0..num_processes-1.")
flags.mark_flags_as_required(["config", "workdir"])
TRACEBACK_ENV = "RVQ_JAX_TRACEBACK"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  import jax  # pylint: disable=g-import-not-at-top
  from rvq_jax.train import parallel  # pylint: disable=g-import-not-at-top
  parallel.initialize_distributed(_DISTRIBUTED.value, _COORDINATOR.value, _NUM_PROCESSES.value,
                                  _PROCESS_ID.value)
  # Orbax logs every checkpoint phase at INFO; keep the log to what a user reads.
  logging.get_absl_handler().addFilter(lambda record: "orbax" not in record.pathname)
  logging.info("process %d/%d, devices %s", jax.process_index(), jax.process_count(),
               jax.local_devices())
  from rvq_jax.train import trainer  # pylint: disable=g-import-not-at-top
  config, workdir, mode = _CONFIG.value, _WORKDIR.value, _MODE.value
  modes = PRIOR_MODES if "prior" in config else dict(MODES, **FILE_MODES, export=export.export)
  if mode not in modes:
    raise app.UsageError(f"--mode={mode} does not apply to this config; choose one of "
                         f"{sorted(modes)}.")
  from rvq_jax.train import validation  # pylint: disable=g-import-not-at-top
  try:
    # Every mode checks the whole config first; only training splits batches over devices.
    validation.validate_config(
        config, parallel.num_devices_for(config.parallel.mode) if mode == "train" else 1)
    if mode in FILE_MODES:
      FILE_MODES[mode](config, workdir, _INPUT.value, _OUTPUT.value)
    elif mode == "export":
      export.export(config, workdir, _OUTPUT.value, _WEIGHTS.value)
    else:
      modes[mode](config, workdir)
  except trainer.Preempted as e:  # SIGTERM: checkpoint saved, exit cleanly for the scheduler
    logging.warning("%s", e)


def _show_tracebacks() -> bool:
  return (os.environ.get(TRACEBACK_ENV, "0").lower() in ("1", "true", "yes")
          or (flags.FLAGS.is_parsed() and flags.FLAGS.verbosity >= 1))


def plain_message(error: BaseException) -> str:
  """The readable text of an error, on one line: unwraps exceptions wrapped as arguments (as
  ml_collections wraps a KeyError in an AttributeError, whose str() is an escaped repr)."""
  message = error
  while isinstance(message, BaseException) and message.args:
    message = message.args[0]
  text = message if isinstance(message, str) else str(error)
  if isinstance(error, (AttributeError, KeyError)) and text.startswith("'"):
    text = "no field " + text   # ml_collections: "'level'\nDid you mean "levels" ...?"
  return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _parse_flags(argv):
  """absl's parser, with config-override errors (a misspelt or mistyped --config.field) printed as
  one readable line instead of a traceback."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(f"FATAL Flags parsing error: {plain_message(e)}\n"
             "Pass --helpshort or --helpfull to see help on flags.")
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    if os.environ.get(TRACEBACK_ENV):
      raise
    sys.exit(f"error: a --config override does not apply: {plain_message(e)}")


def run():
  """`python -m rvq_jax.main`: the project's own errors (rvq_jax.errors) print as one line
  `error: ...` and exit with status 1; the traceback with --verbosity=1 or RVQ_JAX_TRACEBACK=1."""
  try:
    app.run(main, flags_parser=_parse_flags)
  except errors.UserError as e:
    if _show_tracebacks():
      raise
    sys.exit(f"error: {plain_message(e)}")


if __name__ == "__main__":
  run()
