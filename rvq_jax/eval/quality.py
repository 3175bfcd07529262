"""Quality in numbers: the classifier's own report, and `--mode=evaluate` on a VQ-VAE workdir.

`--mode=train` with configs/classifier.py (task 'classifier'; `rvq_jax.tasks`) trains the digit
classifier, then `write_classifier_report` writes <workdir>/classifier_eval.json (also
`--mode=evaluate` on a classifier's workdir): its calibration (temperature fitted on the
validation split; expected calibration error before and after), test and validation accuracy
(overall, per speaker), accuracy after the reference degradations, and the sample-metric
references: real held-out data (what "good" is) and white noise and frame-shuffled
spectrograms (lower bounds).

`--mode=evaluate` (a VQ-VAE workdir, read as saved): reconstructs the test split and writes
<workdir>/eval.json and <workdir>/report.md with figures: losses and spectrogram MSE, SI-SDR,
log-spectral distance, multi-resolution STFT distance, classifier accuracy on originals and
reconstructions, per-level codebook use, the rate-distortion curve over the number of levels
decoded, and the baselines (STFT round trip, Griffin-Lim from the true magnitude).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from rvq_jax import audio
from rvq_jax import data as data_lib
from rvq_jax import files
from rvq_jax import run_config
from rvq_jax.data import augment
from rvq_jax.eval import figures
from rvq_jax.eval import judge
from rvq_jax.eval import metrics
from rvq_jax.eval import record
from rvq_jax.eval import render
from rvq_jax.eval import report
from rvq_jax.models import rvq
from rvq_jax.models import vqvae
from rvq_jax.train import classifier as classifier_train
from rvq_jax.train import rngs
from rvq_jax.train import vqvae as vqvae_train


def sample_quality(classifier, spectrograms, reference_embeddings: np.ndarray) -> dict:
  """`judge.sample_scores` of spectrograms [N, H, W, 2] in the classifier's representation."""
  return judge.sample_scores(*classifier.predict(spectrograms), reference_embeddings)


def sample_metric_references(config, classifier, specs, scored: dict | None = None) -> dict:
  """Sample metrics of real held-out data and of two lower bounds, all against the test set.
  `scored`: the classifier's (probabilities, embeddings) of specs["test"] and
  specs["validation"] by split name, when the caller has them (each set is scored once)."""
  scored = dict(scored or {})
  for split in ("test", "validation"):
    if split not in scored:
      scored[split] = classifier.predict(specs[split])
  test_embeddings = scored["test"][1]
  rng = np.random.default_rng(config.seed)
  noise = rng.standard_normal((config.classifier.noise_examples, config.data.max_samples))
  noise_specs = audio.prepare_spectrograms(noise.astype(np.float32), config.audio)
  test = np.asarray(specs["test"])
  shuffled = np.stack([s[:, rng.permutation(s.shape[1])] for s in test])   # frames permuted
  return {
      "real_test": judge.sample_scores(*scored["test"], test_embeddings),
      "real_validation": judge.sample_scores(*scored["validation"], test_embeddings),
      "white_noise": sample_quality(classifier, noise_specs, test_embeddings),
      "shuffled_frames": sample_quality(classifier, shuffled, test_embeddings),
  }


def degraded_test_waveforms(config, dataset, test_specs) -> dict:
  """The test recordings [N, samples] (scaled, as the dataset holds them) through each reference
  degradation, by name: the STFT round trip, Griffin-Lim from the true magnitude, mu-law at
  `eval.mu_law_bits` bits (each recording at its own peak) and white noise at `eval.noise_snr_db`
  dB SNR."""
  e, a = config.eval, config.audio
  test = dataset["test"]
  waves, lengths = jnp.asarray(test.waveforms), jnp.asarray(test.lengths)
  key = jax.random.wrap_key_data(rngs.seed_stream(config.seed, rngs.EVAL))
  gl = metrics.griffin_lim(audio.magnitude(test_specs, a), a.frame_length, a.hop_length,
                           e.griffin_lim_iterations, key)
  snr = jnp.full(lengths.shape, e.noise_snr_db, jnp.float32)
  return {
      "stft_round_trip": audio.to_waveform(test_specs, a),
      f"griffin_lim_{e.griffin_lim_iterations}_iterations": gl,
      f"mu_law_{e.mu_law_bits}_bit": augment.mu_law_round_trip(waves, e.mu_law_bits),
      f"white_noise_{e.noise_snr_db:g}_db_snr": augment.add_noise_at_snr(
          jax.random.fold_in(key, 1), waves, lengths, snr),
  }


def predicted_digits(classifier, spectrograms, audio_config=None) -> np.ndarray:
  """The classifier's digit [N] for spectrograms [N, H, W, 2] in `audio_config`'s representation
  (None: the classifier's own)."""
  return np.asarray(classifier.predict(spectrograms, audio_config)[0].argmax(-1))


def robustness_report(config, classifier, dataset, specs, degraded: dict | None = None) -> dict:
  """Test accuracy on the originals and after each degradation of `degraded_test_waveforms`
  (`degraded`: those waveforms when the caller has them): an intelligibility judge must keep the
  label of audio a listener still understands."""
  labels = dataset["test"].digits
  degraded = degraded or degraded_test_waveforms(config, dataset, specs["test"])

  def accuracy(spectrograms):
    return float((predicted_digits(classifier, spectrograms) == labels).mean())

  result = {"originals": accuracy(specs["test"])}
  for name, waves in degraded.items():
    result[name] = accuracy(audio.to_spectrogram(waves, config.audio))
  return result


def classifier_report(config, workdir, dataset, specs) -> dict:
  """classifier_eval.json of the classifier trained in `workdir`: its temperature fitted on the
  validation split and its calibration error, accuracy (overall, per speaker, after the reference
  degradations) and the sample-metric references, all with the calibrated probabilities.

  Each set (validation, test, every degradation of `degraded_test_waveforms`) goes through the
  classifier once: the temperature changes the probabilities, never the predicted digit, so the
  uncalibrated and calibrated scores share the same logits."""
  raw = judge.load_classifier(workdir, calibrated=False)
  degraded = degraded_test_waveforms(config, dataset, specs["test"])
  sets = {"validation": specs["validation"], "test": specs["test"]}
  sets.update({name: audio.to_spectrogram(waves, config.audio)
               for name, waves in degraded.items()})
  labels = {name: dataset["validation" if name == "validation" else "test"].digits
            for name in sets}
  logits = {name: raw.logits(x) for name, x in sets.items()}   # (logits [N, 10], embeddings)
  temperature = metrics.fit_temperature(logits["validation"][0], labels["validation"])
  classifier = dataclasses.replace(raw, temperature=temperature)

  def probabilities(name, t):
    return judge.probabilities(logits[name][0], t)

  def ece(name, t):
    return float(metrics.expected_calibration_error(jnp.asarray(probabilities(name, t)),
                                                     jnp.asarray(labels[name])))

  def accuracy(name):
    return float((logits[name][0].argmax(-1) == labels[name]).mean())

  scored = {split: (probabilities(split, temperature), logits[split][1])
            for split in ("test", "validation")}
  return {
      "calibration": {
          "temperature": temperature, "fitted_on": "validation",
          "expected_calibration_error": {
              name: {"before": ece(name, 1.0), "after": ece(name, temperature)} for name in sets}},
      "test": judge.accuracy_of(scored["test"][0], dataset["test"], dataset.speaker_names),
      "validation": judge.accuracy_of(scored["validation"][0], dataset["validation"],
                                      dataset.speaker_names),
      "robustness": {"originals": accuracy("test"), **{name: accuracy(name) for name in degraded}},
      "sample_metric_references": sample_metric_references(config, classifier, specs, scored),
  }


def write_classifier_report(config, workdir, output=None, dataset=None, specs=None) -> dict:
  """Writes `classifier_report` as <output or workdir>/classifier_eval.json and returns it;
  `dataset` and `specs` are loaded from `config` when not given."""
  if dataset is None:
    dataset = data_lib.load_dataset(config.data)
    specs = {s: audio.prepare_spectrograms(dataset[s].waveforms, config.audio)
             for s in data_lib.SPLITS}
  result = classifier_report(config, workdir, dataset, specs)
  out = pathlib.Path(output or workdir)
  out.mkdir(parents=True, exist_ok=True)
  files.write_text(out / judge.CALIBRATION_RECORD, json.dumps(result, indent=2) + "\n")
  c = result["calibration"]
  logging.info("classifier: test accuracy %.4f (per speaker %s); temperature %.3f, validation "
               "ECE %.4f -> %.4f; after degradations %s", result["test"]["accuracy"],
               result["test"]["per_speaker"], c["temperature"],
               c["expected_calibration_error"]["validation"]["before"],
               c["expected_calibration_error"]["validation"]["after"], result["robustness"])
  return result


def evaluate_classifier(config, workdir: str, output: str | None = None) -> dict:
  """`--mode=evaluate` on a classifier's workdir (read as saved there): its classifier_eval.json,
  calibration included, written to `output` (default: a training workdir itself;
  `run_config.record_folder`)."""
  config = run_config.saved_config(workdir, config)
  return write_classifier_report(config, workdir, run_config.record_folder(workdir, output))


def waveform_metrics(config, reference: jax.Array, estimate: jax.Array, lengths,
                     per_file: bool = False) -> dict:
  """Mean SI-SDR (dB), log-spectral distance (dB), multi-resolution STFT distance, and
  narrow-band PESQ and STOI (per-file mean, files scored, corpus value) of the first
  `eval.perceptual_examples` recordings (all when unset); with `per_file`, also each file's PESQ
  and STOI (None where it cannot be scored) as 'per_file': {'pesq_nb': [N], 'stoi': [N]}."""
  a = config.audio
  n = config.eval.perceptual_examples or len(reference)
  host = [np.asarray(v)[:n] for v in (reference, estimate, lengths)]
  pesq = metrics.pesq_nb(*host, config.data.sample_rate, config.eval.pesq_segment_seconds)
  stoi = metrics.stoi(*host, config.data.sample_rate)
  row = {
      "si_sdr_db": float(jnp.mean(metrics.si_sdr(reference, estimate, lengths))),
      "log_spectral_distance_db": float(jnp.mean(metrics.log_spectral_distance(
          reference, estimate, a.frame_length, a.hop_length, lengths))),
      "mr_stft_distance": float(jnp.mean(metrics.multi_resolution_stft_distance(
          reference, estimate))),
      "pesq_nb": pesq["per_file_mean"], "pesq_nb_corpus": pesq["corpus"],
      "pesq_nb_files": pesq["files_scored"],
      "stoi": stoi["per_file_mean"], "stoi_corpus": stoi["corpus"],
      "stoi_files": stoi["files_scored"], "perceptual_examples": n,
  }
  if per_file:
    row["per_file"] = {"pesq_nb": pesq["per_file"], "stoi": stoi["per_file"]}
  return row


def _reconstruct_all(config, fn, state, specs, num_levels: int):
  """Reconstructions [N, H, W, 2] decoding the first `num_levels` levels with `fn` from
  `_reconstruct_fn` (num_levels is traced: one compilation serves every level count)."""
  return data_lib.map_batches(lambda x, _: fn(state.params, state.codebook.embed, x, num_levels),
                          specs, config.train.eval_batch_size)


def _reconstruct_fn(config):
  model = vqvae.make_model(config)
  return jax.jit(lambda p, e, x, n: vqvae.reconstruct(model, p, e, x, config, num_levels=n))


def speech_codebook_metrics(config, state, spectrograms: jax.Array, lengths) -> dict:
  """{'perplexity' [L], 'usage' [L], 'position_fraction'} of the test codes at the latent positions that cover the
  recording, leaving out the zero padding after it (over half of FSDD's 1.024 s frames): a
  silent position takes one code, so the whole-grid perplexity is capped by the padding share.

  spectrograms: [N, H, W, 2]; lengths: [N] samples. A latent column w covers frames
  f*w .. f*w + f - 1 (f = 2^len(encoder_features)); it counts when its first frame starts before
  the recording ends.
  """
  model = vqvae.make_model(config)
  encode = jax.jit(lambda p, e, x: vqvae.encode_codes(model, p, e, x,
                                                       block_rows=config.rvq.block_rows))
  codes = np.asarray(data_lib.map_batches(lambda x, _: encode(state.params, state.codebook.embed, x),
                                      spectrograms, config.train.eval_batch_size))   # [N, h, w, L]
  columns = -(-np.asarray(lengths) // (config.audio.hop_length * vqvae.downsampling(config)))          # ceil
  speech = np.arange(codes.shape[2])[None, :] < columns[:, None]                   # [N, w]
  kept = codes.transpose(0, 2, 1, 3)[speech].reshape(-1, codes.shape[-1])          # [M, L]
  counts = np.stack([np.bincount(kept[:, level], minlength=config.rvq.codes)
                     for level in range(codes.shape[-1])]).astype(np.float32)
  m = rvq.codebook_metrics(jnp.asarray(counts))
  return {"perplexity": np.asarray(m["perplexity"]).tolist(),
          "usage": np.asarray(m["usage"]).tolist(),
          "position_fraction": float(speech.mean())}


def evaluate_vqvae(config, workdir: str, output: str | None = None) -> dict:
  """`--mode=evaluate` on the VQ-VAE trained in `workdir`, as saved there (its config.json; the
  command's `config` supplies only how to read: `run_config.READ_SECTIONS`): writes eval.json,
  report.md and figures to `output` (default: a training workdir itself; a folder of shipped
  weights only when named: `run_config.record_folder`)."""
  config = run_config.saved_config(workdir, config)
  classifier_train.check_trained(config.eval.classifier_workdir)
  state = vqvae_train.restore_state(config, workdir)
  workdir = run_config.record_folder(workdir, output)
  workdir.mkdir(parents=True, exist_ok=True)
  classifier = judge.load_classifier(config.eval.classifier_workdir)
  dataset = data_lib.load_dataset(config.data)
  specs = {s: audio.prepare_spectrograms(dataset[s].waveforms, config.audio)
           for s in data_lib.SPLITS}
  test = dataset["test"]
  waves = jnp.asarray(test.waveforms)
  lengths = jnp.asarray(test.lengths)
  labels = test.digits

  def accuracy(spectrograms):   # in this VQ-VAE's representation
    return float((predicted_digits(classifier, spectrograms, config.audio) == labels).mean())

  result = report.test_metrics(config, state, dataset, specs)
  result["codebook"]["speech"] = speech_codebook_metrics(config, state, specs["test"],
                                                         test.lengths)
  rate_distortion = []
  reconstruct = _reconstruct_fn(config)
  for n in range(1, config.rvq.levels + 1):
    recon = _reconstruct_all(config, reconstruct, state, specs["test"], n)
    recon_waves = audio.to_waveform(recon, config.audio)
    digits = predicted_digits(classifier, recon, config.audio)
    row = {"levels": n, "nominal_bits_per_second": report.bits_per_second(
        config)["nominal_bits_per_second"] * n / config.rvq.levels,
           "spectrogram_mse": float(jnp.mean((recon - specs["test"])**2)),
           "classifier_accuracy": float((digits == labels).mean())}
    full_rate = n == config.rvq.levels   # its per-file scores let a shipped model be re-checked
    row.update(waveform_metrics(config, waves, recon_waves, lengths, per_file=full_rate))
    if full_rate:
      row["per_file"]["predicted_digit"] = digits.tolist()
    rate_distortion.append(row)
  result["quality"] = {
      "reconstruction": rate_distortion[-1],
      "original_classifier_accuracy": accuracy(specs["test"]),
      "baselines": {
          name: dict(waveform_metrics(config, waves, degraded, lengths),
                     classifier_accuracy=accuracy(audio.to_spectrogram(degraded, config.audio)))
          for name, degraded in degraded_test_waveforms(config, dataset, specs["test"]).items()}}
  result["rate_distortion"] = rate_distortion
  record.write(workdir / "eval.json", result)
  figures.save(figures.codebook_usage_figure(result), workdir / "figures" / "codebook_usage.png")
  figures.save(figures.rate_distortion_figure(rate_distortion),
               workdir / "figures" / "rate_distortion.png")
  files.write_text(workdir / "report.md", render.report_page(workdir.name, result))
  q = result["quality"]
  logging.info("evaluate: SI-SDR %.2f dB, accuracy %.3f on reconstructions (%.3f on originals)",
               q["reconstruction"]["si_sdr_db"], q["reconstruction"]["classifier_accuracy"],
               q["original_classifier_accuracy"])
  return result
