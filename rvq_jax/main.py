"""Command-line front door: `python -m rvq_jax.main --config=configs/<name>.py --workdir=<dir>`.

Each --mode calls one library function taking (config, workdir). Multi-host runs start the same
command on every host with --distributed (see launch/README.md). A config with a `prior` section
(configs/realnvp.py) selects the RealNVP prior's functions instead of the VQ-VAE's.
"""

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from rvq_jax.eval import prior as prior_eval
from rvq_jax.eval import quality
from rvq_jax.eval import report
from rvq_jax.eval import spectrogram_figure

MODES = {
    "train": report.train_and_report,
    "evaluate": quality.evaluate_vqvae,
    "train_classifier": quality.train_classifier_and_report,
    "spectrogram_figure": spectrogram_figure.write_spectrogram_figure,
}
PRIOR_MODES = {
    "train": prior_eval.train_and_evaluate,
    "evaluate": prior_eval.evaluate,
    "sample": prior_eval.sample,
}

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Everything the run writes goes here.")
_MODE = flags.DEFINE_enum("mode", "train", sorted(set(MODES) | set(PRIOR_MODES)), "What to run.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", None, "Multi-host: call jax.distributed.initialize() first (default: "
    "$RVQ_JAX_DISTRIBUTED=1). Without the three flags below JAX detects the cluster (Cloud TPU, "
    "SLURM, Open MPI).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "host:port of process 0 (multi-host without cluster detection).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, 0..num_processes-1.")
flags.mark_flags_as_required(["config", "workdir"])


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
  from rvq_jax.train import loop  # pylint: disable=g-import-not-at-top
  modes = PRIOR_MODES if "prior" in _CONFIG.value else MODES
  if _MODE.value not in modes:
    raise app.UsageError(f"--mode={_MODE.value} does not apply to this config; choose one of "
                         f"{sorted(modes)}.")
  try:
    modes[_MODE.value](_CONFIG.value, _WORKDIR.value)
  except loop.Preempted as e:  # SIGTERM: checkpoint saved, exit cleanly for the scheduler
    logging.warning("%s", e)


if __name__ == "__main__":
  app.run(main)
