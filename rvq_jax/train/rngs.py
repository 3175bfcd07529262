"""Named random streams: every random draw of a run comes from one root key by `fold_in(root, TAG)`.

Why tags and not `split`: with `jax_threefry_partitionable` (the default in jax >= 0.5),
`split(k, n)[i] == fold_in(k, i)`, so a key split into three at one place and `fold_in(k, 1)` at
another are the *same* key: the codebook initialisation once drew from the data-shuffle key, and the
prior's noise from its data key. Each stream below has its own tag, and tests check that no two
streams (nor any per-step key) coincide.

A step's own draws fold the step into the STEP stream and then a per-purpose tag:
`step_key(state.rng, state.step, LEVELS)`, so a resumed run draws the same noise again.
"""

from __future__ import annotations

import jax
import numpy as np

# Streams of a run, all from jax.random.key(config.seed). Distinct and never reused for another
# purpose (a new draw gets a new tag, so old runs keep their numbers).
PARAMS = 101          # network initialisation (VQ-VAE, prior, classifier)
CODEBOOK = 102        # codebook initialisation (uniform / Glorot / k-means starts)
STEP = 103            # the state's rng: per-step draws (fold in the step, then a tag below)
DATA = 104            # the order of training examples (one permutation per epoch)
INIT_NOISE = 105      # the prior's dequantization noise of the batch that initialises actnorm
HELD_OUT_NOISE = 106  # the prior's fixed dequantization noise of validation / test (fold in split)
SAMPLES = 107         # the prior's samples (fold in the setting)
EVAL = 108            # evaluation draws: Gaussian-decoder samples, Griffin-Lim's start phase

# Per-step purposes, folded into step_key(state.rng, step, ...).
LEVELS = 1            # quantizer dropout: how many levels this step
CANDIDATES = 2        # which latent positions are offered to dead-code restarts
RESTART = 3           # which candidate a restarted code takes
NOISE = 4             # the prior's dequantization noise; the classifier's augmentation
DROPOUT = 5           # the model's own draws in a step (dropout: the classifier, any forward_fn)

ROOT_STREAMS = {"PARAMS": PARAMS, "CODEBOOK": CODEBOOK, "STEP": STEP, "DATA": DATA,
                "INIT_NOISE": INIT_NOISE, "HELD_OUT_NOISE": HELD_OUT_NOISE, "SAMPLES": SAMPLES,
                "EVAL": EVAL}
STEP_PURPOSES = {"LEVELS": LEVELS, "CANDIDATES": CANDIDATES, "RESTART": RESTART, "NOISE": NOISE,
                 "DROPOUT": DROPOUT}


def root_key(seed: int) -> jax.Array:
  """Raw uint32 [2] key data of the run's root key."""
  return jax.random.key_data(jax.random.key(seed))


def stream(root: jax.Array, tag: int) -> jax.Array:
  """Raw key data of stream `tag` of `root` (raw key data, as stored in states and checkpoints)."""
  return jax.random.key_data(jax.random.fold_in(jax.random.wrap_key_data(root), tag))


def seed_stream(seed: int, tag: int) -> np.ndarray:
  """`stream(root_key(seed), tag)` as a host array (for loops that pass keys into jit)."""
  return np.asarray(stream(root_key(seed), tag))


def step_key(state_rng: jax.Array, step: jax.Array, purpose: int) -> jax.Array:
  """The typed key for `purpose` at training step `step` of a state whose rng is `state_rng`."""
  key = jax.random.fold_in(jax.random.wrap_key_data(state_rng), step)
  return jax.random.fold_in(key, purpose)
