"""Waveform augmentation and degradations (rvq_jax.data.augment) against plain NumPy references."""

import jax
import jax.numpy as jnp
from ml_collections import config_dict
import numpy as np
import pytest

from rvq_jax.data import augment


def test_resample_and_shift_matches_a_per_row_numpy_interpolation(fsdd_dataset):
  waves = fsdd_dataset["test"].waveforms[:4, :2048]
  speed = np.array([0.88, 1.0, 1.07, 1.12], np.float32)
  shift = np.array([0.0, 37.5, -200.25, 512.0], np.float32)
  out = np.asarray(augment.resample_and_shift(jnp.asarray(waves), jnp.asarray(speed),
                                              jnp.asarray(shift)))
  n = np.arange(waves.shape[1])
  for row, s, d, got in zip(waves, speed, shift, out):
    # zeros outside the recording, linear in between (also across its edges)
    want = np.interp((n - d) * s, np.r_[-1, n, len(n)], np.r_[0.0, row, 0.0], left=0.0, right=0.0)
    np.testing.assert_allclose(got, want, atol=1e-3 * np.abs(row).max())  # float32 positions


def test_a_speed_change_moves_a_tone_by_the_factor():
  rate, f0, n = 8000, 500.0, 8192
  tone = np.sin(2 * np.pi * f0 * np.arange(n) / rate).astype(np.float32)[None]
  for s in (0.9, 1.1):
    out = np.asarray(augment.resample_and_shift(jnp.asarray(tone), jnp.array([s]),
                                                jnp.zeros(1)))[0]
    valid = out[:int(n / s) - 1] if s > 1 else out
    spectrum = np.abs(np.fft.rfft(valid * np.hanning(len(valid))))
    peak_hz = np.argmax(spectrum) * rate / len(valid)
    assert abs(peak_hz - f0 * s) < 2.0, (s, peak_hz)


def test_noise_is_added_at_the_requested_snr_over_the_unpadded_samples(fsdd_dataset):
  test = fsdd_dataset["test"]
  waves, lengths = test.waveforms[:16], test.lengths[:16]
  snr = np.linspace(10, 40, 16).astype(np.float32)
  noisy = np.asarray(augment.add_noise_at_snr(jax.random.key(0), jnp.asarray(waves),
                                              jnp.asarray(lengths), jnp.asarray(snr)))
  noise = noisy - waves
  for x, e, length, target in zip(waves, noise, lengths, snr):
    measured = 10 * np.log10(np.mean(x[:length]**2) / np.mean(e**2))
    assert abs(measured - target) < 0.3, (measured, target)


def test_mu_law_keeps_silence_silent_and_uses_its_levels_at_each_recordings_peak():
  peak = 2.0
  x = jnp.linspace(-peak, peak, 10001)
  out = np.asarray(augment.mu_law_round_trip(x, 4))
  assert len(np.unique(out)) == 2**4 - 1 and out.max() == pytest.approx(peak)
  np.testing.assert_array_equal(augment.mu_law_round_trip(jnp.zeros((2, 3)), 4), 0.0)
  assert np.all(np.diff(out) >= 0)                         # monotone
  np.testing.assert_allclose(np.asarray(augment.mu_law_round_trip(jnp.asarray(out), 4)),
                             out, rtol=1e-5, atol=1e-6)   # the levels are fixed points
  # mu-law: small amplitudes are resolved finely, large ones coarsely
  small, large = np.abs(out - x)[np.abs(x) < 0.05 * peak], np.abs(out - x)[np.abs(x) > 0.5 * peak]
  assert small.max() < 0.2 * large.max()
  fine = np.asarray(augment.mu_law_round_trip(x, 8))
  assert np.abs(fine - x).max() < np.abs(out - x).max() / 8
  # each row at its own peak: a recording 30 dB quieter is quantised to the same relative levels
  rows = jnp.stack([x, x * 10**(-30 / 20)])
  both = np.asarray(augment.mu_law_round_trip(rows, 4))
  np.testing.assert_allclose(both[1], both[0] * 10**(-30 / 20), rtol=1e-5, atol=1e-7)


def _augment_config(**overrides):
  c = config_dict.ConfigDict(dict(speed_range=0.12, max_shift_samples=1024, gain_db=6.0,
                                  noise_probability=0.5, snr_db=(15.0, 45.0)))
  c.update(overrides)
  return c


def test_augment_is_a_pure_function_of_its_key_and_off_when_its_ranges_are_zero(fsdd_dataset):
  test = fsdd_dataset["test"]
  waves, lengths = jnp.asarray(test.waveforms[:8]), jnp.asarray(test.lengths[:8])
  c = _augment_config()
  a = augment.augment(jax.random.key(1), waves, lengths, c)
  np.testing.assert_array_equal(a, augment.augment(jax.random.key(1), waves, lengths, c))
  assert not np.allclose(a, augment.augment(jax.random.key(2), waves, lengths, c))
  off = _augment_config(speed_range=0.0, max_shift_samples=0, gain_db=0.0, noise_probability=0.0)
  np.testing.assert_allclose(augment.augment(jax.random.key(1), waves, lengths, off), waves,
                             atol=1e-6)
