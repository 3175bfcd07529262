"""The command-line front door, run as a user runs it."""

import os
import subprocess
import sys

import numpy as np

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


def _main(args, fsdd_recordings, tmp_path):
  env = dict(os.environ, FSDD_DIR=str(fsdd_recordings), RVQ_JAX_CACHE=str(tmp_path / "cache"),
             JAX_PLATFORMS="cpu", XLA_FLAGS="")
  return subprocess.run([sys.executable, "-m", "rvq_jax.main", "--alsologtostderr"] + args,
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_quick_training_writes_every_output_and_resumes(fsdd_recordings, tmp_path):
  import json  # pylint: disable=g-import-not-at-top

  import soundfile as sf  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / "quick"
  common = ["--config=configs/quick.py", f"--workdir={workdir}", "--config.eval.num_audio=4",
            "--config.eval.num_figures=1", "--config.train.checkpoint_every_steps=3",
            "--config.train.progress_bar=False"]
  first = _main(common + ["--config.train.num_steps=6"], fsdd_recordings, tmp_path)
  assert first.returncode == 0, first.stderr[-3000:]
  result = json.loads((workdir / "eval.json").read_text())
  assert result["step"] == 6 and result["examples"] == 298
  assert len(result["codebook"]["perplexity"]) == 3
  assert result["codebook"]["nominal_bits_per_second"] == 18000
  for folder in ("original", "reconstruction"):
    wavs = sorted((workdir / "audio" / folder).glob("*.wav"))
    assert len(wavs) == 4
    info = sf.info(wavs[0])
    assert info.samplerate == 8000 and info.channels == 1
  original, _ = sf.read(workdir / "audio" / "original" / "0_george_0.wav")
  raw, _ = sf.read(fsdd_recordings / "0_george_0.wav")
  np.testing.assert_allclose(original, raw, atol=1 / 32768)   # scaling undone, length kept
  for name in ("loss_curves.png", "reconstruction_0_george_0.png"):
    assert (workdir / "figures" / name).stat().st_size > 10_000
  assert json.loads((workdir / "config.json").read_text())["rvq"]["levels"] == 3
  assert list((workdir / "tb").iterdir())

  second = _main(common + ["--config.train.num_steps=9"], fsdd_recordings, tmp_path)
  assert second.returncode == 0, second.stderr[-3000:]
  assert "Resumed from" in second.stderr and "at step 6" in second.stderr
  assert json.loads((workdir / "eval.json").read_text())["step"] == 9
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [(r["step"], r["split"]) for r in records] == [
      (6, "train"), (6, "validation"), (9, "train"), (9, "validation")]


def test_bad_config_fails_before_compiling(fsdd_recordings, tmp_path):
  result = _main(["--config=configs/quick.py", f"--workdir={tmp_path / 'bad'}",
                  "--config.rvq.levels=0"], fsdd_recordings, tmp_path)
  assert result.returncode != 0 and "rvq.levels=0 must be at least 1" in result.stderr
  assert not (tmp_path / "bad" / "checkpoints").exists()
