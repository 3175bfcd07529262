"""Fixed-shape batches over a set of examples, for evaluation and inference (one compile)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def padded_batches(examples, batch_size: int):
  """Yields (batch [batch_size, ...], start, real) over `examples` [N, ...] in order; the last batch
  is zero-padded (its first `real` rows are examples) so consumers compile for one shape only."""
  for start in range(0, examples.shape[0], batch_size):
    chunk = jnp.asarray(examples[start:start + batch_size])
    real = chunk.shape[0]
    if real < batch_size:
      chunk = jnp.concatenate([chunk, jnp.zeros((batch_size - real,) + chunk.shape[1:],
                                                chunk.dtype)])
    yield chunk, start, real


def map_batches(fn, examples, batch_size: int):
  """Applies `fn(batch [batch_size, ...], start)` over `padded_batches` and concatenates its
  outputs (a pytree of arrays [batch_size, ...]) along axis 0, trimmed to N."""
  outputs = [jax.tree.map(lambda x, n=real: x[:n], fn(chunk, start))
             for chunk, start, real in padded_batches(examples, batch_size)]
  return jax.tree.map(lambda *xs: jnp.concatenate(xs), *outputs)
