"""Random streams: every draw of a run comes from its own fold_in tag of one root key."""

import itertools

import jax
import numpy as np

from rvq_jax.models import rvq
from rvq_jax.train import rngs
from rvq_jax.train import steps


def _data(key):
  return tuple(np.asarray(jax.random.key_data(key)).ravel().tolist())


def test_no_two_streams_coincide():
  for seed in (0, 1, 12345):
    root = rngs.root_key(seed)
    keys = {("root", name): tuple(np.asarray(rngs.stream(root, tag)).tolist())
            for name, tag in rngs.ROOT_STREAMS.items()}
    state_rng = rngs.stream(root, rngs.STEP)
    for step, (name, purpose) in itertools.product(range(200), rngs.STEP_PURPOSES.items()):
      keys[(step, name)] = _data(rngs.step_key(state_rng, step, purpose))
    # What the loops derive from these: epoch permutations of the data, held-out noise per split.
    data = jax.random.wrap_key_data(rngs.stream(root, rngs.DATA))
    for epoch in range(200):
      keys[("epoch", epoch)] = _data(jax.random.fold_in(data, epoch))
    assert len(set(keys.values())) == len(keys), seed
  assert len(set(rngs.ROOT_STREAMS.values())) == len(rngs.ROOT_STREAMS)
  assert len(set(rngs.STEP_PURPOSES.values())) == len(rngs.STEP_PURPOSES)


def test_codebooks_are_not_drawn_from_the_data_shuffle_key():
  """The bug this module fixes: split(k, 3)[1] == fold_in(k, 1) made the codebook initialisation
  key equal the data-shuffle key."""
  from tests.test_train import tiny_config  # pylint: disable=g-import-not-at-top
  config = tiny_config()
  config.rvq.init = "glorot_normal"
  root = rngs.root_key(config.seed)
  batch = np.zeros((2, 128, 128, 2), np.float32)
  state = steps.create_train_state(config, root, batch)
  r = config.rvq
  expected = rvq.init_codebooks(jax.random.wrap_key_data(rngs.stream(root, rngs.CODEBOOK)),
                                r.levels, r.codes, config.model.latent_dim, r.init)
  np.testing.assert_array_equal(state.codebook.embed, expected.embed)
  from_data = rvq.init_codebooks(jax.random.wrap_key_data(rngs.stream(root, rngs.DATA)),
                                 r.levels, r.codes, config.model.latent_dim, r.init)
  assert not np.allclose(state.codebook.embed, from_data.embed)
  np.testing.assert_array_equal(state.rng, rngs.stream(root, rngs.STEP))
