"""Quality metrics on cases whose answer is known independently."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from rvq_jax.eval import metrics


def _speech(fsdd_dataset, n=6):
  test = fsdd_dataset["test"]
  return jnp.asarray(test.waveforms[:n]), jnp.asarray(test.lengths[:n])


def test_si_sdr_identical_known_snr_and_gain(fsdd_dataset):
  x, lengths = _speech(fsdd_dataset)
  assert float(metrics.si_sdr(x, x, lengths).min()) > 60
  rng = np.random.default_rng(0)
  noise = rng.standard_normal(x.shape).astype(np.float32)
  mask = np.arange(x.shape[1]) < np.asarray(lengths)[:, None]
  noise *= mask
  # Scale the noise to exactly 10 dB below each (zero-mean) signal, orthogonal to it.
  s = np.where(mask, np.asarray(x) - (np.asarray(x) * mask).sum(1, keepdims=True) / lengths[:, None], 0)
  noise = np.where(mask, noise - noise.sum(1, keepdims=True) / np.asarray(lengths)[:, None], 0)
  noise -= (noise * s).sum(1, keepdims=True) / (s * s).sum(1, keepdims=True) * s
  noise *= np.sqrt((s**2).sum(1, keepdims=True) / (noise**2).sum(1, keepdims=True) / 10)
  np.testing.assert_allclose(metrics.si_sdr(x, x + noise, lengths), 10.0, atol=0.01)
  # A constant gain (and an offset, removed as the mean) leaves SI-SDR unchanged.
  np.testing.assert_allclose(metrics.si_sdr(x, 0.3 * (x + noise), lengths), 10.0, atol=0.01)
  # Samples past a recording's length are not scored.
  junk = jnp.where(jnp.asarray(mask), x, 5.0)
  assert float(metrics.si_sdr(x, junk, lengths).min()) > 60


def test_log_spectral_distance_known_cases(fsdd_dataset):
  x, lengths = _speech(fsdd_dataset)
  np.testing.assert_allclose(metrics.log_spectral_distance(x, x, 254, 64, lengths), 0.0, atol=1e-4)
  # A gain g changes every bin's power by g^2: the distance is |20 log10 g| dB.
  np.testing.assert_allclose(metrics.log_spectral_distance(x, 2.0 * x, 254, 64, lengths),
                             20 * np.log10(2.0), rtol=1e-3)


def test_multi_resolution_stft_distance(fsdd_dataset):
  x, _ = _speech(fsdd_dataset)
  np.testing.assert_allclose(metrics.multi_resolution_stft_distance(x, x), 0.0, atol=1e-5)
  near = metrics.multi_resolution_stft_distance(x, x + 0.01 * jnp.roll(x, 1, axis=-1))
  far = metrics.multi_resolution_stft_distance(x, jnp.roll(x, 2000, axis=0))
  assert float(near.max()) < float(far.min())


def test_inception_score_known_cases():
  uniform = jnp.full((50, 10), 0.1)
  np.testing.assert_allclose(metrics.inception_score(uniform), 1.0, atol=1e-5)
  confident = jax.nn.one_hot(jnp.arange(100) % 10, 10)
  np.testing.assert_allclose(metrics.inception_score(confident), 10.0, rtol=1e-4)
  one_class = jax.nn.one_hot(jnp.zeros(100, jnp.int32), 10)
  np.testing.assert_allclose(metrics.inception_score(one_class), 1.0, atol=1e-4)


def test_frechet_distance_against_scipy():
  rng = np.random.default_rng(0)
  a = rng.standard_normal((400, 6)) @ rng.standard_normal((6, 6))
  b = 0.5 + rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6))
  ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  reference = (np.sum((a.mean(0) - b.mean(0))**2) + np.trace(ca) + np.trace(cb)
               - 2 * np.trace(scipy.linalg.sqrtm(ca @ cb).real))
  np.testing.assert_allclose(metrics.frechet_distance(jnp.asarray(a, jnp.float32),
                                                      jnp.asarray(b, jnp.float32)),
                             reference, rtol=1e-3)
  np.testing.assert_allclose(metrics.frechet_distance(jnp.asarray(a), jnp.asarray(a)), 0.0,
                             atol=1e-3)


def test_griffin_lim_recovers_the_magnitude(fsdd_dataset):
  from rvq_jax import audio  # pylint: disable=g-import-not-at-top
  x, _ = _speech(fsdd_dataset, 2)
  target = jnp.abs(audio.stft(x, 254, 64))
  def convergence(wave):
    m = jnp.abs(audio.stft(wave, 254, 64))
    return float(jnp.linalg.norm(m - target) / jnp.linalg.norm(target))
  few = metrics.griffin_lim(target, 254, 64, 2, jax.random.key(0))
  many = metrics.griffin_lim(target, 254, 64, 60, jax.random.key(0))
  assert convergence(many) < 0.5 * convergence(few) and convergence(many) < 0.2


def test_pesq_and_stoi_rank_noise_levels_and_say_what_they_scored(fsdd_dataset):
  """On 40 real test clips: a clip against itself scores PESQ-nb ~4.5 (the scale's top) and STOI
  1; white noise at 30 dB SNR scores below that and at 5 dB SNR far below, per file and over the
  corpus alike; a 0.3 gain (PESQ aligns levels, STOI is scale-free) changes neither."""
  test = fsdd_dataset["test"]
  x, lengths = np.asarray(test.waveforms[:40], np.float64), np.asarray(test.lengths[:40])
  rng = np.random.default_rng(0)
  mask = np.arange(x.shape[1]) < lengths[:, None]
  power = (x**2).sum(1, keepdims=True) / lengths[:, None]
  noise = rng.standard_normal(x.shape) * mask
  scores = {}
  for name, estimate in {"clean": x, "gain": 0.3 * x,
                         "30dB": x + noise * np.sqrt(power / 10**3.0),
                         "5dB": x + noise * np.sqrt(power / 10**0.5)}.items():
    scores[name] = (metrics.pesq_nb(x, estimate, lengths, 8000, 8.0),
                    metrics.stoi(x, estimate, lengths, 8000))
  pesq_clean, stoi_clean = scores["clean"]
  assert pesq_clean["per_file_mean"] > 4.4 and pesq_clean["corpus"] > 4.4
  assert stoi_clean["per_file_mean"] > 0.999 and stoi_clean["corpus"] > 0.999
  # FSDD clips are short: not every one can be scored, and the count says how many were.
  assert 0 < stoi_clean["files_scored"] <= 40 and 0 < pesq_clean["files_scored"] <= 40
  for result in (pesq_clean, stoi_clean):   # per-file scores: one per clip, None where unscored
    scored = [v for v in result["per_file"] if v is not None]
    assert len(result["per_file"]) == 40 and len(scored) == result["files_scored"]
    assert np.mean(scored) == pytest.approx(result["per_file_mean"])
  for key in ("per_file_mean", "corpus"):
    for measure in (0, 1):
      clean, gain = scores["clean"][measure][key], scores["gain"][measure][key]
      assert abs(gain - clean) < 0.05 * abs(clean)
      assert clean > scores["30dB"][measure][key] > scores["5dB"][measure][key] + 0.1


def test_expected_calibration_error_against_a_plain_loop():
  """ECE against the textbook definition computed bin by bin in Python; a classifier whose
  confidence equals its accuracy in every bin has ECE 0."""
  rng = np.random.default_rng(0)
  logits = 3 * rng.normal(size=(500, 10))
  probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  labels = rng.integers(0, 10, 500)
  confidence, correct = probs.max(-1), probs.argmax(-1) == labels
  expected = 0.0
  for b in range(15):
    inside = (confidence >= b / 15) & ((confidence < (b + 1) / 15) | (b == 14))
    if inside.any():
      expected += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
  got = float(metrics.expected_calibration_error(jnp.asarray(probs), jnp.asarray(labels)))
  assert got == pytest.approx(expected, abs=1e-5)
  # Two-class predictions at confidence 0.8 that are right 80% of the time: calibrated.
  p = np.tile([[0.8, 0.2]], (100, 1))
  y = np.array([0] * 80 + [1] * 20)
  assert float(metrics.expected_calibration_error(jnp.asarray(p), jnp.asarray(y))) < 1e-6


def test_temperature_scaling_recovers_the_temperature_the_labels_were_drawn_at():
  """Labels drawn from softmax(z) and logits handed over as 3 z (overconfident by 3x): the fitted
  temperature is about 3, and it lowers the ECE."""
  rng = np.random.default_rng(1)
  z = 2 * rng.normal(size=(20000, 10))
  p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
  labels = np.array([rng.choice(10, p=row) for row in p])
  t = metrics.fit_temperature(3 * z, labels)
  assert t == pytest.approx(3.0, rel=0.05)
  def ece(logits):
    q = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return float(metrics.expected_calibration_error(jnp.asarray(q), jnp.asarray(labels)))
  assert ece(3 * z / t) < 0.02 < ece(3 * z)
