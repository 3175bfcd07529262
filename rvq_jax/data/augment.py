"""Waveform augmentation and degradation, pure `jax.numpy` on batches [B, N] (N samples each).

The digit classifier trains on augmented recordings so that audio that is degraded but still
intelligible keeps its label: it then scores codecs and priors by what a listener would hear, not
by how closely they copy the training artefacts. Every draw is explicit (a key in, arrays out), so
the classifier's step stays a pure function of its state and batch.

  `resample_and_shift`  speed and pitch changed together (as a tape played faster or slower) and a
                        shift in time, by one linear-interpolation gather; zeros where the source
                        has no samples.
  `add_noise_at_snr`    white Gaussian noise at a given signal-to-noise ratio (dB), the signal's
                        power taken over its unpadded samples.
  `mu_law_round_trip`   `bits`-bit mu-law companding and back (G.711's idea at fewer bits; at 4
                        bits, 32 kbit/s at 8 kHz, a reference codec for the results).
  `augment`             the classifier's training augmentation (configs/classifier.py, `augment`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def resample_and_shift(waveforms: jax.Array, speed: jax.Array, shift: jax.Array) -> jax.Array:
  """y[n] = x((n - shift) * speed), linearly interpolated, 0 outside the source.

  Args:
    waveforms: float [B, N].
    speed: float [B]; > 1 plays faster and higher (a recording of length L lasts L / speed).
    shift: float [B], samples; > 0 delays the recording.

  Returns:
    float [B, N], the input's dtype.
  """
  n = waveforms.shape[-1]
  positions = (jnp.arange(n, dtype=jnp.float32)[None] - shift[:, None]) * speed[:, None]
  left = jnp.floor(positions)
  frac = positions - left
  left = left.astype(jnp.int32)

  def tap(index):
    inside = (index >= 0) & (index < n)
    values = jnp.take_along_axis(waveforms, jnp.clip(index, 0, n - 1), axis=-1)
    return jnp.where(inside, values, 0.0)

  return ((1.0 - frac) * tap(left) + frac * tap(left + 1)).astype(waveforms.dtype)


def signal_power(waveforms: jax.Array, lengths: jax.Array) -> jax.Array:
  """Mean square [B] over each recording's first `lengths` [B] samples (its unpadded part)."""
  mask = jnp.arange(waveforms.shape[-1])[None] < lengths[:, None]
  return jnp.sum(jnp.where(mask, waveforms**2, 0.0), -1) / jnp.maximum(lengths, 1)


def add_noise_at_snr(key: jax.Array, waveforms: jax.Array, lengths: jax.Array,
                     snr_db: jax.Array) -> jax.Array:
  """waveforms [B, N] plus white Gaussian noise over all N samples whose power is the signal's
  (over its `lengths` [B] unpadded samples) divided by 10^(snr_db [B] / 10)."""
  noise_power = signal_power(waveforms, lengths) / 10.0**(snr_db / 10.0)
  noise = jax.random.normal(key, waveforms.shape, waveforms.dtype)
  return waveforms + noise * jnp.sqrt(noise_power)[:, None]


def mu_law_round_trip(waveforms: jax.Array, bits: int) -> jax.Array:
  """`bits`-bit mu-law (mu = 2^bits - 1) of each recording [..., N] and back, each scaled to its own
  peak first (as a codec with gain control would: FSDD's speakers differ in level by 30 dB, and at
  a fixed full scale the quiet ones would lose everything).

  Compress: c = sign(x) ln(1 + mu |x|) / ln(1 + mu) in [-1, 1]; quantise c mid-tread to the
  2^bits - 1 levels k / (2^(bits-1) - 1), so silence stays exactly silent; expand; rescale.
  """
  mu = 2.0**bits - 1.0
  steps = 2.0**(bits - 1) - 1.0                 # levels on each side of 0
  peak = jnp.max(jnp.abs(waveforms), axis=-1, keepdims=True)
  peak = jnp.where(peak > 0, peak, 1.0)
  x = waveforms / peak
  compressed = jnp.sign(x) * jnp.log1p(mu * jnp.abs(x)) / jnp.log1p(mu)
  quantised = jnp.round(compressed * steps) / steps
  return jnp.sign(quantised) * jnp.expm1(jnp.abs(quantised) * jnp.log1p(mu)) / mu * peak


def augment(key: jax.Array, waveforms: jax.Array, lengths: jax.Array, augment_config) -> jax.Array:
  """The classifier's training augmentation of a batch [B, N] with `lengths` [B].

  Per recording: speed factor uniform in 1 +- `speed_range`; shift uniform in +-`max_shift_samples`;
  gain uniform in +-`gain_db`; with probability `noise_probability`, white noise at an SNR uniform
  in `snr_db` (low, high). Recordings start at 0 and are zero-padded at the end, so a shift rarely
  pushes speech out of the window.
  """
  c = augment_config
  b = waveforms.shape[0]
  k_speed, k_shift, k_gain, k_use, k_snr, k_noise = jax.random.split(key, 6)
  speed = 1.0 + jax.random.uniform(k_speed, (b,), minval=-c.speed_range, maxval=c.speed_range)
  shift = jax.random.uniform(k_shift, (b,), minval=-c.max_shift_samples,
                             maxval=c.max_shift_samples)
  gain = 10.0**(jax.random.uniform(k_gain, (b,), minval=-c.gain_db, maxval=c.gain_db) / 20.0)
  low, high = c.snr_db
  snr = jax.random.uniform(k_snr, (b,), minval=low, maxval=high)
  out = resample_and_shift(waveforms, speed, shift) * gain[:, None]
  new_lengths = jnp.clip(jnp.ceil(lengths / speed + shift), 1,
                         waveforms.shape[-1]).astype(jnp.int32)
  noisy = add_noise_at_snr(k_noise, out, new_lengths, snr)
  use_noise = jax.random.uniform(k_use, (b,)) < c.noise_probability
  return jnp.where(use_noise[:, None], noisy, out)
