"""Two processes on loopback (4 simulated CPU devices each) train like one process with 8 devices."""

import json
import os
import re
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from rvq_jax.train import vqvae as vqvae_train
from tests.conftest import REPO


def multihost_config(fsdd_dir, cache_dir, num_steps: int):
  """The tiny RVQ-VAE of test_train, 'sharded' over every device of every process."""
  from tests.test_train import tiny_config  # pylint: disable=g-import-not-at-top
  config = tiny_config(fsdd_dir, cache_dir)
  config.parallel.mode = "sharded"
  config.rvq.dropout = True           # levels drawn identically on every process
  config.rvq.dead_code_steps = 2      # restart candidates gathered across processes
  config.train.num_steps = num_steps
  config.train.log_every_steps = 2
  config.train.checkpoint_every_steps = 3
  return config


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start_workers(workdir, fsdd_dir, cache_dir, num_steps, sigterm_at=(-1, -1)):
  address, num_processes = f"127.0.0.1:{_free_port()}", len(sigterm_at)
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=4",
             PYTHONPATH=str(REPO))
  return [subprocess.Popen(
      [sys.executable, str(REPO / "tests" / "multihost_worker.py"), str(i), str(num_processes),
       address, str(workdir), str(fsdd_dir), str(cache_dir), str(num_steps), str(sigterm_at[i])],
      env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for i in range(num_processes)]


def _finish(workers):
  logs = [w.communicate(timeout=600)[0] for w in workers]
  for i, (w, log) in enumerate(zip(workers, logs)):
    assert w.returncode == 0, f"process {i} failed:\n{log[-4000:]}"
  return logs


@pytest.mark.slow
def test_two_processes_end_like_one_process_with_eight_devices(fsdd_recordings, tmp_path):
  """Both processes end with the reference state, also through a SIGTERM sent to one of them:
  they agree to stop after the same step, save together, and the restarted pair resumes."""
  assert jax.device_count() == 8
  cache = tmp_path / "cache"
  num_steps = 8
  config = multihost_config(fsdd_recordings, cache, num_steps)
  reference, _, _ = vqvae_train.train(config, str(tmp_path / "one_process"))
  expected = [np.asarray(x) for x in
              jax.tree.leaves((reference.params, reference.opt_state, reference.codebook))]

  workdir = tmp_path / "two_processes"
  # Process 1 gets SIGTERM during step 5 (0-based); stop requests are agreed every
  # log_every_steps=2 steps, so both processes finish step 6, save it and exit cleanly.
  logs = _finish(_start_workers(workdir, fsdd_recordings, cache, num_steps, sigterm_at=(-1, 5)))
  saved = [re.search(r"PREEMPTED SIGTERM: saved step (\d+)", log) for log in logs]
  assert all(saved), logs
  assert [int(m.group(1)) for m in saved] == [6, 6]
  assert (workdir / "checkpoints" / "6").is_dir()
  assert not (workdir / "state_0.npz").exists()

  _finish(_start_workers(workdir, fsdd_recordings, cache, num_steps))   # the same command again
  finals = []
  for i in range(2):
    with np.load(workdir / f"state_{i}.npz") as state:
      assert int(state["devices"]) == 8 and int(state["processes"]) == 2
      finals.append([state[f"arr_{k}"] for k in range(len(expected))])
  for a, b in zip(*finals):
    np.testing.assert_array_equal(a, b)     # the processes hold one replicated state
  # A few steps only: all-reduces sum in another order across processes, and with code
  # reassignments and restarts such float differences grow chaotically after ~10 steps (also
  # between one-process modes).
  for a, b in zip(expected, finals[0]):
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
  # One writer: run_info once per start, not once per process.
  runs = json.loads((workdir / "run_info.json").read_text())
  assert [(r["process_count"], r["num_devices"]) for r in runs] == [(2, 8), (2, 8)], runs
  assert runs[1]["start_step"] == 6
