"""The digit classifier and --mode=evaluate, on the real FSDD with tiny models."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rvq_jax.eval import quality
from tests.conftest import REPO
from tests.conftest import SHIPPED_CLASSIFIER
from tests.conftest import tiny_classifier_config


def test_classifier_learns_digits_on_augmented_audio_and_reports(classifier_dir):
  workdir, result = classifier_dir
  saved = json.loads((workdir / "classifier_eval.json").read_text())
  assert saved["test"]["accuracy"] == result["test"]["accuracy"]
  # 10 classes: chance is 0.1 (standard error 0.017 on the 298 test clips); 3 epochs of a tiny
  # CNN reached 0.332 (2026-12-06); 4 epochs reached 0.258 with the 2026-12-03 install.
  assert result["test"]["accuracy"] > 0.2
  assert set(result["test"]["per_speaker"]) == {"george", "jackson", "lucas", "nicolas", "theo",
                                                "yweweler"}
  # Robustness rows: the originals are the test accuracy; the STFT round trip changes nothing a
  # classifier can see; every degradation of the config is scored.
  rob = result["robustness"]
  assert rob["originals"] == result["test"]["accuracy"]
  assert rob["stft_round_trip"] == pytest.approx(rob["originals"], abs=0.01)
  assert set(rob) == {"originals", "stft_round_trip", "griffin_lim_8_iterations", "mu_law_4_bit",
                      "white_noise_20_db_snr"}
  refs = result["sample_metric_references"]
  assert refs["real_test"]["frechet_distance"] == pytest.approx(0.0, abs=1e-2)
  np.testing.assert_allclose(sum(refs["real_test"]["class_histogram"]), 1.0)
  # Calibration: the temperature fitted on the validation split is recorded and read back by the
  # judge; the calibration error is reported for every set the robustness rows score.
  from rvq_jax.eval import judge as judge_lib  # pylint: disable=g-import-not-at-top
  c = result["calibration"]
  assert saved["calibration"]["temperature"] == c["temperature"] > 0
  assert judge_lib.load_classifier(workdir).temperature == c["temperature"]
  assert set(c["expected_calibration_error"]) == {"validation", "test"} | set(rob) - {"originals"}
  assert all(0 <= e["after"] <= 1 for e in c["expected_calibration_error"].values())


def test_the_shipped_classifier_reproduces_its_report_and_survives_degradations(fsdd_dataset):
  """pretrained/classifier, every evaluation's judge: on this machine it scores the real test
  split as its classifier_eval.json says, keeps >= 95% on audio degraded but intelligible, and
  ranks real audio far above noise and frame-shuffled spectrograms."""
  from rvq_jax import audio  # pylint: disable=g-import-not-at-top
  from rvq_jax.data import augment  # pylint: disable=g-import-not-at-top
  from rvq_jax.eval import judge as judge_lib  # pylint: disable=g-import-not-at-top
  saved = json.loads((SHIPPED_CLASSIFIER / "classifier_eval.json").read_text())
  judge = judge_lib.load_classifier(SHIPPED_CLASSIFIER)
  config = judge.config
  test = fsdd_dataset["test"]
  specs = {s: audio.prepare_spectrograms(fsdd_dataset[s].waveforms, config.audio)
           for s in ("test", "validation")}

  def accuracy(waves):
    spectrograms = audio.to_spectrogram(jnp.asarray(waves), config.audio)
    return float((judge.predict(spectrograms)[0].argmax(-1) == test.digits).mean())

  one_clip = 1.01 / len(test)
  report = judge_lib.accuracy_report(judge, specs["test"], test, fsdd_dataset.speaker_names)
  assert report["accuracy"] == pytest.approx(saved["test"]["accuracy"], abs=one_clip)
  assert report["accuracy"] >= 0.98
  noisy = augment.add_noise_at_snr(jax.random.key(7), jnp.asarray(test.waveforms),
                                   jnp.asarray(test.lengths), jnp.full(len(test), 20.0))
  mu_law = augment.mu_law_round_trip(jnp.asarray(test.waveforms), 4)
  for waves, name in ((noisy, "white_noise_20_db_snr"), (mu_law, "mu_law_4_bit")):
    acc = accuracy(waves)
    assert acc >= 0.95, name
    assert acc == pytest.approx(saved["robustness"][name], abs=5 * one_clip), name
  # Calibrated: the recorded temperature is the one this machine fits on the validation split,
  # and it brings the expected calibration error within 0.03 there and on the test split.
  refit = judge_lib.calibrate(judge, specs["validation"], fsdd_dataset["validation"].digits)
  assert refit.temperature == pytest.approx(judge.temperature, rel=0.02)
  for split in ("validation", "test"):
    ece = judge_lib.calibration_error(judge, specs[split], fsdd_dataset[split].digits)
    assert ece <= 0.03 and ece == pytest.approx(
        saved["calibration"]["expected_calibration_error"][split]["after"], abs=0.005), split
  refs = quality.sample_metric_references(config, judge, specs)
  assert refs["real_validation"]["inception_score"] > 8.0
  for bound in ("white_noise", "shuffled_frames"):
    assert refs["real_validation"]["inception_score"] > 2 * refs[bound]["inception_score"]
    assert refs["real_validation"]["frechet_distance"] < refs[bound]["frechet_distance"] / 10


def test_the_judge_reads_spectrograms_of_any_representation(fsdd_dataset):
  """A log-magnitude VQ-VAE's test spectrograms, passed with that VQ-VAE's audio config, are
  scored as the judge scores its own (the bug this guards: read as magnitudes, logmag inputs
  scored at chance)."""
  from rvq_jax import audio  # pylint: disable=g-import-not-at-top
  from rvq_jax.eval import judge as judge_lib  # pylint: disable=g-import-not-at-top
  judge = judge_lib.load_classifier(SHIPPED_CLASSIFIER)
  waves = jnp.asarray(fsdd_dataset["test"].waveforms[:64])
  own = judge.predict(audio.to_spectrogram(waves, judge.config.audio))[0]
  logmag = judge.config.audio.copy_and_resolve_references()
  logmag.representation, logmag.log_eps = "logmag_phase", 1e-5
  read = judge.predict(audio.to_spectrogram(waves, logmag), logmag)[0]
  np.testing.assert_allclose(read, own, atol=2e-3)
  assert (own.argmax(-1) == fsdd_dataset["test"].digits[:64]).mean() > 0.95


def test_a_retrained_classifier_is_loaded_not_retrained(classifier_dir, fsdd_recordings, tmp_path):
  from rvq_jax.eval import judge as judge_lib  # pylint: disable=g-import-not-at-top
  from rvq_jax.train import classifier as classifier_train  # pylint: disable=g-import-not-at-top
  workdir, result = classifier_dir
  steps = sorted(p.name for p in (workdir / "checkpoints").iterdir())
  config = tiny_classifier_config(fsdd_recordings, tmp_path)
  _, dataset, specs = classifier_train.train_classifier(config, str(workdir))
  judge = judge_lib.load_classifier(workdir)
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == steps   # nothing trained
  again = judge_lib.accuracy_report(judge, specs["test"], dataset["test"],
                                           dataset.speaker_names)
  assert again == result["test"]


def test_evaluate_mode_on_a_vqvae_workdir(tiny_vqvae_run):
  config, workdir = tiny_vqvae_run
  config = config.copy_and_resolve_references()
  config.eval.classifier_workdir = str(SHIPPED_CLASSIFIER)
  result = quality.evaluate_vqvae(config, str(workdir))
  assert json.loads((workdir / "eval.json").read_text())["rate_distortion"] == \
      result["rate_distortion"]
  assert [r["levels"] for r in result["rate_distortion"]] == [1, 2, 3]
  rates = [r["nominal_bits_per_second"] for r in result["rate_distortion"]]
  assert rates == [4000.0, 8000.0, 12000.0]
  base, rec = result["quality"]["baselines"], result["quality"]["reconstruction"]
  assert base["stft_round_trip"]["si_sdr_db"] > 60          # the codec's upper bound
  assert base["stft_round_trip"]["classifier_accuracy"] == pytest.approx(
      result["quality"]["original_classifier_accuracy"], abs=0.01)
  assert rec["si_sdr_db"] < base["stft_round_trip"]["si_sdr_db"]
  # PESQ-nb and STOI: the STFT round trip is transparent; a 4-step model is far from it.
  assert base["stft_round_trip"]["pesq_nb_corpus"] > 4.4 and base["stft_round_trip"]["stoi"] > 0.99
  for key in ("pesq_nb", "pesq_nb_corpus", "stoi", "stoi_corpus"):
    assert rec[key] < base["stft_round_trip"][key]
  assert rec["perceptual_examples"] == 40
  # The reference codecs sit between the two: 4-bit mu-law and 20 dB SNR noise are intelligible.
  for name in ("mu_law_4_bit", "white_noise_20_db_snr"):
    assert rec["stoi"] < base[name]["stoi"] < base["stft_round_trip"]["stoi"]
    assert base[name]["classifier_accuracy"] > 0.9
  text = (workdir / "report.md").read_text()
  assert "| reconstructions |" in text and "griffin_lim_8_iterations" in text
  for name in ("rate_distortion.png", "codebook_usage.png"):
    assert (workdir / "figures" / name).stat().st_size > 10_000
  # The run's config.json is the model: another model's config (another representation, latent,
  # quantizer) evaluates the same run to the same record, written to --output.
  wrong = config.copy_and_resolve_references()
  wrong.audio.representation = "mag_phase" if config.audio.representation != "mag_phase" else \
      "real_imag"
  wrong.model.latent_dim, wrong.rvq.levels = 2 * config.model.latent_dim, 5
  saved_bytes = (workdir / "eval.json").read_bytes()
  other = workdir.parent / "evaluated_with_another_config"
  quality.evaluate_vqvae(wrong, str(workdir), str(other))
  assert (workdir / "eval.json").read_bytes() == saved_bytes
  assert json.loads((other / "eval.json").read_text()) == json.loads(saved_bytes)


def test_speech_codebook_metrics_count_only_the_recorded_columns(tiny_vqvae_run, fsdd_dataset):
  """Against a plain loop over clips and latent columns; with every column counted they equal
  the whole-grid perplexity of the eval step (report.test_metrics), a separate path."""
  from rvq_jax import audio  # pylint: disable=g-import-not-at-top
  from rvq_jax.eval import report  # pylint: disable=g-import-not-at-top
  from rvq_jax.models import vqvae  # pylint: disable=g-import-not-at-top
  from rvq_jax.train import vqvae as vqvae_train  # pylint: disable=g-import-not-at-top
  config, workdir = tiny_vqvae_run
  state = vqvae_train.restore_state(config, workdir)
  test = fsdd_dataset["test"]
  specs = audio.prepare_spectrograms(test.waveforms[:64], config.audio)
  lengths = np.asarray(test.lengths[:64])
  got = quality.speech_codebook_metrics(config, state, specs, lengths)
  codes = np.asarray(vqvae.encode_codes(vqvae.make_model(config), state.params,
                                        state.codebook.embed, specs))          # [N, h, w, L]
  counts = np.zeros((config.rvq.levels, config.rvq.codes))
  kept = 0
  for clip in range(len(specs)):
    for column in range(codes.shape[2]):
      if column * 4 * config.audio.hop_length < lengths[clip]:   # 2 stride-2 layers: 4 frames
        kept += 1
        for level in range(config.rvq.levels):
          np.add.at(counts[level], codes[clip, :, column, level], 1)
  p = counts / counts.sum(-1, keepdims=True)
  perplexity = np.exp(-np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), -1))
  np.testing.assert_allclose(got["perplexity"], perplexity, rtol=1e-5)
  np.testing.assert_allclose(got["usage"], (counts > 0).mean(-1))
  assert got["position_fraction"] == pytest.approx(kept / (len(specs) * codes.shape[2]))
  assert 0.2 < got["position_fraction"] < 0.8          # FSDD clips are mostly padding
  full = quality.speech_codebook_metrics(config, state, specs, np.full(64, 8192))
  whole = report.test_metrics(config, state, {"test": test}, {"test": specs})
  np.testing.assert_allclose(full["perplexity"], whole["codebook"]["perplexity"],
                             rtol=1e-4)


def test_evaluate_without_classifier_says_how_to_train_one(fsdd_recordings, tmp_path):
  from rvq_jax.eval import judge as judge_lib  # pylint: disable=g-import-not-at-top
  with pytest.raises(FileNotFoundError, match="--mode=train_classifier"):
    judge_lib.load_classifier(tmp_path / "none")


def _shipped_vqvaes():
  """Shipped VQ-VAE weights whose eval.json keeps per-file scores (evaluated since they exist)."""
  found = []
  for folder in sorted((REPO / "pretrained").iterdir()):
    path = folder / "eval.json"
    if path.exists() and "per_file" in json.loads(path.read_text()).get("quality", {}).get(
        "reconstruction", {}):
      found.append(folder.name)
  return found


@pytest.mark.parametrize("name", _shipped_vqvaes())
def test_a_shipped_vqvae_reproduces_its_eval_json_on_20_test_clips(name, fsdd_recordings,
                                                                    fsdd_dataset):
  """pretrained/<name> straight from the checkout: the first 20 test clips reconstructed at the
  full bit rate score the PESQ-nb and digits its eval.json recorded for them (per file), and
  their mean is the record's own scale of quality."""
  from rvq_jax import audio  # pylint: disable=g-import-not-at-top
  from rvq_jax import run_config  # pylint: disable=g-import-not-at-top
  from rvq_jax.eval import judge as judge_lib  # pylint: disable=g-import-not-at-top
  from rvq_jax.eval import metrics  # pylint: disable=g-import-not-at-top
  from rvq_jax.train import vqvae as vqvae_train  # pylint: disable=g-import-not-at-top
  folder = REPO / "pretrained" / name
  saved = json.loads((folder / "eval.json").read_text())["quality"]["reconstruction"]
  config = run_config.with_data_location(run_config.saved_config(folder),
                                         {"data_dir": str(fsdd_recordings)})
  state = vqvae_train.restore_state(config, folder)
  test = fsdd_dataset["test"]
  n = 20
  specs = audio.prepare_spectrograms(test.waveforms[:n], config.audio)
  recon = quality._reconstruct_fn(config)(state.params, state.codebook.embed, specs,  # pylint: disable=protected-access
                                          config.rvq.levels)
  waves = audio.to_waveform(recon, config.audio)
  pesq = metrics.pesq_nb(np.asarray(test.waveforms[:n]), np.asarray(waves),
                         np.asarray(test.lengths[:n]), 8000, config.eval.pesq_segment_seconds)
  expected = saved["per_file"]["pesq_nb"][:n]
  scored = [(got, want) for got, want in zip(pesq["per_file"], expected) if want is not None]
  assert len(scored) >= 10 and all(got is not None for got, _ in scored)
  np.testing.assert_allclose([g for g, _ in scored], [w for _, w in scored], atol=0.05)
  judge = judge_lib.load_classifier(SHIPPED_CLASSIFIER)
  digits = np.asarray(judge.predict(recon, config.audio)[0].argmax(-1))   # its representation
  assert (digits == np.asarray(saved["per_file"]["predicted_digit"][:n])).mean() >= 0.95
  accuracy = (digits == test.digits[:n]).mean()
  assert accuracy >= saved["classifier_accuracy"] - 0.15       # 20 clips of the 298 recorded
  assert pesq["per_file_mean"] == pytest.approx(saved["pesq_nb"], abs=0.4)


def test_the_shipped_second_scorer_reproduces_its_report(fsdd_dataset):
  """pretrained/classifier_mel, the independently built scorer of the prior's samples (log-mel
  front end, temporal CNN, label smoothing, its own seed): on this machine it scores the real test
  split as its classifier_eval.json says, its recorded temperature is the one this machine fits,
  and with it the calibration error is within 0.03 on validation and test."""
  from rvq_jax import audio  # pylint: disable=g-import-not-at-top
  from rvq_jax.eval import judge as judge_lib  # pylint: disable=g-import-not-at-top
  folder = REPO / "pretrained" / "classifier_mel"
  saved = json.loads((folder / "classifier_eval.json").read_text())
  judge = judge_lib.load_classifier(folder)
  assert judge.config.classifier.front_end == "log_mel"
  assert judge.config.classifier.architecture == "temporal"
  specs = {s: audio.prepare_spectrograms(fsdd_dataset[s].waveforms, judge.config.audio)
           for s in ("test", "validation")}
  report = judge_lib.accuracy_report(judge, specs["test"], fsdd_dataset["test"],
                                     fsdd_dataset.speaker_names)
  assert report["accuracy"] == pytest.approx(saved["test"]["accuracy"], abs=1.01 / 298)
  assert report["accuracy"] >= 0.98
  refit = judge_lib.calibrate(judge, specs["validation"], fsdd_dataset["validation"].digits)
  assert refit.temperature == pytest.approx(judge.temperature, rel=0.02)
  for split in ("validation", "test"):
    assert judge_lib.calibration_error(judge, specs[split], fsdd_dataset[split].digits) <= 0.03



def test_a_report_without_audio_or_figures(tiny_vqvae_run, fsdd_dataset, tmp_path):
  """eval.num_audio=0 and eval.num_figures=0 (a sweep that keeps only the numbers) write the
  report and no WAVs (it failed inside map_batches on an empty batch list)."""
  from rvq_jax import audio  # pylint: disable=g-import-not-at-top
  from rvq_jax.eval import report  # pylint: disable=g-import-not-at-top
  from rvq_jax.train import vqvae as vqvae_train  # pylint: disable=g-import-not-at-top
  config, workdir = tiny_vqvae_run
  config = config.copy_and_resolve_references()
  config.eval.num_audio = config.eval.num_figures = 0
  state = vqvae_train.restore_state(config, workdir)
  specs = {"test": audio.prepare_spectrograms(fsdd_dataset["test"].waveforms, config.audio)}
  result = report.write_report(config, tmp_path, state, fsdd_dataset, specs)
  assert json.loads((tmp_path / "eval.json").read_text())["step"] == result["step"] == 4
  assert not (tmp_path / "audio").exists()
