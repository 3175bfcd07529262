"""Digit classifier (Flax CNN) used to score reconstructions and samples.

Input: the project's spectrogram images in any representation; the classifier sees only the
log-magnitude, standardised per recording (so overall loudness does not matter and phase, which
carries no digit information, is ignored).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rvq_jax import audio


def classifier_input(spectrograms: jax.Array, audio_config, log_eps: float) -> jax.Array:
  """[B, bins, frames, 2] spectrogram images -> [B, bins, frames, 1] standardised log |X|."""
  log_mag = jnp.log(audio.magnitude(spectrograms, audio_config) + log_eps)
  mean = log_mag.mean(axis=(-2, -1), keepdims=True)
  std = log_mag.std(axis=(-2, -1), keepdims=True)
  return ((log_mag - mean) / (std + 1e-6))[..., None]


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


def make_classifier(config) -> DigitClassifier:
  c = config.classifier
  return DigitClassifier(tuple(c.features), c.embedding_dim, 10, c.dropout)


def make_predict_fn(config):
  """Jitted `predict(params, spectrograms [B, bins, frames, 2]) -> (probabilities [B, 10],
  embeddings [B, embedding_dim])` for spectrograms in `config.audio`'s representation."""
  model = make_classifier(config)

  @jax.jit
  def predict(params, specs):
    logits, embedding = model.apply(params, classifier_input(specs, config.audio,
                                                             config.classifier.log_eps))
    return jax.nn.softmax(logits), embedding

  return predict
