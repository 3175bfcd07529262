"""Front door: `python -m rvq_jax.main --config=configs/<name>.py --workdir=<dir> [--mode=...]`.

The config's `task` (vqvae / prior / classifier) picks the functions; `rvq_jax.tasks.TASKS` lists
what each offers per mode. A mode that reads a trained run needs no --config: the run's own
config.json is the model. Multi-host runs start the same command on every host with --distributed
(launch/README.md).
"""

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from rvq_jax import cli
from rvq_jax import errors

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file (configs/*.py); optional for modes that read a trained run.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The run's folder: what training writes, what "
                               "the read modes read.")
_MODE = flags.DEFINE_string("mode", "train", "What to run: one of the modes that the config's task "
                            "offers (rvq_jax.tasks.TASKS), e.g. train, evaluate, sample, export.")
_INPUT = flags.DEFINE_string("input", None, "reconstruct / encode: a WAV; decode: a bitstream "
                             "(.rvqc) or codes .npz; or a folder of them.")
_OUTPUT = flags.DEFINE_string("output", None, "reconstruct / decode: the WAV to write; encode: the "
                              "bitstream (a folder for a folder --input); export: the folder for "
                              "the weights; sample: the folder for WAVs, figures and "
                              "samples.json; evaluate: the record's folder (default: the "
                              "workdir); entropy_model: its folder (default: the workdir).")
_WEIGHTS = flags.DEFINE_bool("weights", True, "export: write the weights (false: only the run's "
                             "record: config, eval.json, metrics; e.g. an ablation row).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "export / sample: replace a non-empty --output "
                               "folder whole (without it such a folder is refused).")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", None, "Multi-host: call jax.distributed.initialize() first (default: "
    "$RVQ_JAX_DISTRIBUTED=1). Without the three flags below JAX detects the cluster.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  import jax  # pylint: disable=g-import-not-at-top

  from rvq_jax import tasks  # pylint: disable=g-import-not-at-top
  from rvq_jax.train import parallel  # pylint: disable=g-import-not-at-top
  from rvq_jax.train import trainer  # pylint: disable=g-import-not-at-top
  parallel.initialize_distributed(_DISTRIBUTED.value, _COORDINATOR.value, _NUM_PROCESSES.value,
                                  _PROCESS_ID.value)
  # Orbax logs every checkpoint phase at INFO; keep the log to what a user reads.
  logging.get_absl_handler().addFilter(lambda record: "orbax" not in record.pathname)
  logging.info("process %d/%d, devices %s", jax.process_index(), jax.process_count(),
               jax.local_devices())
  try:
    config = _CONFIG.value
    if config is not None:
      config.get("task")   # a config file that failed to load raises on first use
  except OSError as e:   # ml_collections: the file is missing or failed to load
    reason = str(e).strip().splitlines()[-1].strip()
    raise errors.ConfigError(f"--config could not be loaded: {reason} (give a configs/*.py "
                             "file, e.g. --config=configs/model5.py).") from e
  try:
    tasks.run(config, _WORKDIR.value, _MODE.value,
              tasks.Command(_INPUT.value, _OUTPUT.value, _WEIGHTS.value, _OVERWRITE.value))
  except trainer.Preempted as e:  # SIGTERM: checkpoint saved, exit cleanly for the scheduler
    logging.warning("%s", e)


if __name__ == "__main__":
  cli.run(main)
