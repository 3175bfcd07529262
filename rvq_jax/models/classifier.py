"""Digit classifiers (Flax) used to score reconstructions and samples.

Input: the project's spectrogram images in any representation; a classifier sees only the
magnitude, as a front end (`classifier.front_end`) turns it: 'log_magnitude' (every STFT bin) or
'log_mel' (`classifier.mel_bands` triangular mel bands), in the log domain and standardised per
recording (so overall loudness does not matter and phase, which carries no digit information, is
ignored). Two architectures (`classifier.architecture`): 'conv2d' (`DigitClassifier`, the project's
judge) and 'temporal' (`TemporalClassifier`, 1-D convolutions over time; the second,
independently built scorer of the prior's samples).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rvq_jax import audio


def classifier_input(spectrograms: jax.Array, audio_config, log_eps: float) -> jax.Array:
  """[B, bins, frames, 2] spectrogram images -> [B, bins, frames, 1] standardised log |X|."""
  log_mag = jnp.log(audio.magnitude(spectrograms, audio_config) + log_eps)
  mean = log_mag.mean(axis=(-2, -1), keepdims=True)
  std = log_mag.std(axis=(-2, -1), keepdims=True)
  return ((log_mag - mean) / (std + 1e-6))[..., None]


def mel_filterbank(num_bins: int, sample_rate: int, num_bands: int) -> np.ndarray:
  """Triangular filters [num_bins, num_bands] on the HTK mel scale (mel = 2595 log10(1 + f/700)),
  their edges evenly spaced in mel from 0 Hz to the Nyquist frequency, each peaking at 1; bins
  are the STFT's, evenly spaced over 0..sample_rate / 2."""
  mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)   # noqa: E731
  hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)   # noqa: E731
  freqs = np.linspace(0.0, sample_rate / 2, num_bins)
  edges = hz(np.linspace(0.0, mel(sample_rate / 2), num_bands + 2))
  lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
  rising = (freqs[:, None] - lower) / (centre - lower)
  falling = (upper - freqs[:, None]) / (upper - centre)
  return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def log_mel_input(spectrograms: jax.Array, audio_config, sample_rate: int, num_bands: int,
                  log_eps: float) -> jax.Array:
  """[B, bins, frames, 2] spectrogram images -> [B, frames, num_bands] standardised log mel
  energies (power summed through `mel_filterbank`)."""
  power = audio.magnitude(spectrograms, audio_config) ** 2               # [B, bins, frames]
  bank = jnp.asarray(mel_filterbank(power.shape[-2], sample_rate, num_bands))
  log_mel = jnp.log(jnp.einsum("bft,fm->btm", power, bank) + log_eps)
  mean = log_mel.mean(axis=(-2, -1), keepdims=True)
  std = log_mel.std(axis=(-2, -1), keepdims=True)
  return (log_mel - mean) / (std + 1e-6)


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """`nn.max_pool(x, (2, 2), strides=(2, 2))` of [B, H, W, C] with even H, W, as a reshape and a
  max: the same values, and a gradient XLA:CPU computes many times faster than the
  select-and-scatter of `max_pool`'s (equal where the maximum of each window is unique)."""
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class DigitClassifier(nn.Module):
  """Conv(3x3)-ReLU-MaxPool(2) blocks, an average over time (frequency rows kept: where the energy
  sits in frequency tells digits apart), a dense embedding, 10 logits.

  `__call__` returns (logits [B, classes], embedding [B, embedding_dim]); the embedding feeds the
  Fréchet distance.
  """
  features: Sequence[int]
  embedding_dim: int
  num_classes: int = 10
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False):
    for width in self.features:
      x = nn.relu(nn.Conv(width, (3, 3), padding="SAME")(x))
      x = max_pool_2x2(x) if x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0 else nn.max_pool(
          x, (2, 2), strides=(2, 2))
    x = x.mean(axis=2).reshape(x.shape[0], -1)   # [B, F', T', C] -> [B, F' * C]
    embedding = nn.relu(nn.Dense(self.embedding_dim)(x))
    hidden = nn.Dropout(self.dropout, deterministic=not train)(embedding)
    return nn.Dense(self.num_classes)(hidden), embedding


class TemporalClassifier(nn.Module):
  """1-D convolutions over time on [B, frames, bands] (Conv(k)-ReLU-MaxPool(2) per width), then the
  mean and the maximum over time side by side, a dense embedding, 10 logits; a different view of
  the audio than `DigitClassifier`'s 2-D one. Returns (logits [B, classes], embedding [B, E])."""
  features: Sequence[int]
  embedding_dim: int
  num_classes: int = 10
  dropout: float = 0.0
  kernel_size: int = 5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False):
    for width in self.features:
      x = nn.relu(nn.Conv(width, (self.kernel_size,), padding="SAME")(x))
      x = x.reshape(x.shape[0], x.shape[1] // 2, 2, x.shape[2]).max(axis=2)   # pool 2 in time
    x = jnp.concatenate([x.mean(axis=1), x.max(axis=1)], axis=-1)
    embedding = nn.relu(nn.Dense(self.embedding_dim)(x))
    hidden = nn.Dropout(self.dropout, deterministic=not train)(embedding)
    return nn.Dense(self.num_classes)(hidden), embedding


def make_classifier(config) -> nn.Module:
  c = config.classifier
  if c.architecture == "temporal":
    return TemporalClassifier(tuple(c.features), c.embedding_dim, 10, c.dropout)
  return DigitClassifier(tuple(c.features), c.embedding_dim, 10, c.dropout)


def model_input(spectrograms: jax.Array, config) -> jax.Array:
  """What `make_classifier(config)` reads: the front end of `config.classifier.front_end`."""
  c = config.classifier
  if c.front_end == "log_mel":
    return log_mel_input(spectrograms, config.audio, config.data.sample_rate, c.mel_bands,
                         c.log_eps)
  return classifier_input(spectrograms, config.audio, c.log_eps)


def make_logits_fn(config):
  """Jitted `logits(params, spectrograms [B, bins, frames, 2]) -> (logits [B, 10], embeddings
  [B, embedding_dim])` for spectrograms in `config.audio`'s representation."""
  model = make_classifier(config)

  @jax.jit
  def logits(params, specs):
    return model.apply(params, model_input(specs, config))

  return logits


def make_predict_fn(config, temperature: float = 1.0):
  """Jitted `predict(params, spectrograms) -> (probabilities [B, 10], embeddings)`: softmax of
  `make_logits_fn`'s logits / `temperature` (1: as trained; a fitted one calibrates)."""
  logits_fn = make_logits_fn(config)

  @jax.jit
  def predict(params, specs):
    logits, embedding = logits_fn(params, specs)
    return jax.nn.softmax(logits / temperature), embedding

  return predict
