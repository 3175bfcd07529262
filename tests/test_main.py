"""The command-line front door, run as a user runs it."""

import os
import subprocess
import sys

from tests.conftest import REPO


def test_spectrogram_figure_mode_writes_png(fsdd_recordings, tmp_path):
  env = dict(os.environ, FSDD_DIR=str(fsdd_recordings), RVQ_JAX_CACHE=str(tmp_path / "cache"))
  result = subprocess.run(
      [sys.executable, "-m", "rvq_jax.main", "--config=configs/default.py",
       f"--workdir={tmp_path / 'run'}", "--mode=spectrogram_figure",
       "--config.figures.example_recording=9_theo_2"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  png = tmp_path / "run" / "figures" / "spectrogram_9_theo_2.png"
  assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_config_typo_fails_naming_the_field(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "rvq_jax.main", "--config=configs/default.py",
       f"--workdir={tmp_path}", "--config.audio.hop_lenght=32"],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode != 0
  assert "hop_lenght" in result.stderr and "hop_length" in result.stderr
