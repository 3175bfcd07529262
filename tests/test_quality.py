"""The digit classifier and --mode=evaluate, on the real FSDD with tiny models."""

import json

import numpy as np
import pytest

from rvq_jax.eval import quality
from rvq_jax.eval import report
from tests.conftest import tiny_classifier_config
from tests.test_train import tiny_config


def test_classifier_learns_digits_and_reports_references(classifier_dir):
  workdir, result = classifier_dir
  saved = json.loads((workdir / "classifier_eval.json").read_text())
  assert saved["test"]["accuracy"] == result["test"]["accuracy"]
  assert result["test"]["accuracy"] > 0.5     # 10 classes: chance is 0.1
  assert set(result["test"]["per_speaker"]) == {"george", "jackson", "lucas", "nicolas", "theo",
                                                "yweweler"}
  refs = result["sample_metric_references"]
  assert refs["real_test"]["frechet_distance"] == pytest.approx(0.0, abs=1e-2)
  np.testing.assert_allclose(sum(refs["real_test"]["class_histogram"]), 1.0)
  # Real held-out data scores better than the lower bounds on both sample metrics.
  for bound in ("white_noise", "shuffled_frames"):
    assert refs["real_validation"]["inception_score"] > refs[bound]["inception_score"]
    assert refs["real_validation"]["frechet_distance"] < refs[bound]["frechet_distance"]


def test_a_retrained_classifier_is_loaded_not_retrained(classifier_dir, fsdd_recordings, tmp_path):
  workdir, result = classifier_dir
  config = tiny_classifier_config(fsdd_recordings, tmp_path)
  again = quality.train_classifier_and_report(config, str(workdir))
  assert again["test"] == result["test"]


def test_evaluate_mode_on_a_vqvae_workdir(classifier_dir, fsdd_recordings, tmp_path):
  config = tiny_config(fsdd_recordings, tmp_path / "cache")
  config.train.num_steps = 4
  config.eval.num_audio = 2
  config.eval.num_figures = 0
  config.eval.griffin_lim_iterations = 8
  config.eval.perceptual_examples = 40
  config.eval.classifier_workdir = str(classifier_dir[0])
  workdir = tmp_path / "vq"
  report.train_and_report(config, str(workdir))
  result = quality.evaluate_vqvae(config, str(workdir))
  assert json.loads((workdir / "eval.json").read_text())["rate_distortion"] == \
      result["rate_distortion"]
  assert [r["levels"] for r in result["rate_distortion"]] == [1, 2, 3]
  rates = [r["nominal_bits_per_second"] for r in result["rate_distortion"]]
  assert rates == [4000.0, 8000.0, 12000.0]
  base = result["baselines"]
  assert base["stft_round_trip"]["si_sdr_db"] > 60          # the codec's upper bound
  assert base["stft_round_trip"]["classifier_accuracy"] == pytest.approx(
      result["classifier_accuracy_original"], abs=0.01)
  assert result["reconstruction"]["si_sdr_db"] < base["stft_round_trip"]["si_sdr_db"]
  # PESQ-nb and STOI: the STFT round trip is transparent; a 4-step model is far from it.
  assert base["stft_round_trip"]["pesq_nb_corpus"] > 4.4 and base["stft_round_trip"]["stoi"] > 0.99
  for key in ("pesq_nb", "pesq_nb_corpus", "stoi", "stoi_corpus"):
    assert result["reconstruction"][key] < base["stft_round_trip"][key]
  assert result["reconstruction"]["perceptual_examples"] == 40
  text = (workdir / "report.md").read_text()
  assert "| reconstructions |" in text and "griffin_lim_8_iterations" in text
  for name in ("rate_distortion.png", "codebook_usage.png"):
    assert (workdir / "figures" / name).stat().st_size > 10_000


def test_evaluate_without_classifier_says_how_to_train_one(fsdd_recordings, tmp_path):
  from rvq_jax.train import classifier  # pylint: disable=g-import-not-at-top
  with pytest.raises(FileNotFoundError, match="--mode=train_classifier"):
    classifier.load_classifier(tmp_path / "none")
