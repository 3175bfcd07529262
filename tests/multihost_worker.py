"""One process of the two-process test (tests/test_multihost.py); not a test itself.

argv: process_id, num_processes, coordinator address, workdir, FSDD dir, cache dir, steps, and
the step before which this process sends itself SIGTERM (-1: never; a preemption notice that
reaches one host at a known step, so the test is deterministic).
Initialises jax.distributed the way `python -m rvq_jax.main --distributed` does, trains the tiny
config in 'sharded' mode over all processes' devices and writes this process's final parameters,
optimizer state and codebooks to <workdir>/state_<process_id>.npz; on SIGTERM it prints
"PREEMPTED ..." and exits 0 like the CLI.
"""

import os
import signal
import sys

os.environ["JAX_PLATFORMS"] = "cpu"

def main():
  process_id, num_processes, address, workdir, fsdd, cache, num_steps, sigterm_at = sys.argv[1:9]
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from rvq_jax.train import parallel  # pylint: disable=g-import-not-at-top
  parallel.initialize_distributed(True, address, int(num_processes), int(process_id))
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from rvq_jax.train import trainer  # pylint: disable=g-import-not-at-top
  from rvq_jax.train import vqvae as vqvae_train  # pylint: disable=g-import-not-at-top
  from tests.test_multihost import multihost_config  # pylint: disable=g-import-not-at-top
  config = multihost_config(fsdd, cache, int(num_steps))
  if int(sigterm_at) >= 0:
    make_batch_fn = parallel.Parallel.batch_fn

    def batch_fn(self, *args, **kwargs):
      get_batch = make_batch_fn(self, *args, **kwargs)

      def get_batch_or_terminate(step):
        if step == int(sigterm_at):
          os.kill(os.getpid(), signal.SIGTERM)
        return get_batch(step)
      return get_batch_or_terminate
    parallel.Parallel.batch_fn = batch_fn
  try:
    state, _, _ = vqvae_train.train(config, workdir)
  except trainer.Preempted as e:   # what rvq_jax.main does: the checkpoint is saved, exit cleanly
    print("PREEMPTED", e, flush=True)
    return
  leaves = jax.tree.leaves((state.params, state.opt_state, state.codebook))
  np.savez(os.path.join(workdir, f"state_{process_id}.npz"),
           *[np.asarray(x) for x in leaves], devices=jax.device_count(),
           processes=jax.process_count())


if __name__ == "__main__":
  main()
