"""The prior's bits/dim is an upper bound on the entropy of discrete latents (uniform cell
dequantization, `realnvp.discrete_bits_per_dim`): checked where the answer is known, a discrete
distribution whose entropy is computed exactly, and in any units."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rvq_jax.configs import realnvp as realnvp_config
from rvq_jax.train import prior_steps
from rvq_jax.train import prior_targets

SHAPE = (4, 4, 2)
VALUES = np.array([0.0, 1.0, 2.0])       # on the grid of cell width 1
PROBS = np.array([0.5, 0.3, 0.2])        # independent per dimension


def _sample(rng, n, scale=1.0):
  x = VALUES[rng.choice(len(VALUES), size=(n,) + SHAPE, p=PROBS)] * scale
  return x.astype(np.float32), rng.integers(0, 10, n).astype(np.int32)


def _config():
  config = realnvp_config.get_config()
  config.prior.num_scales, config.prior.hidden, config.prior.res_blocks = 1, 16, 1
  config.prior.checkerboard_couplings = config.prior.channel_couplings = 2
  config.prior.final_couplings = 2
  config.prior.base = "mixture"          # per-dimension mixture: can fit a 3-step marginal
  config.prior.label_conditioning, config.prior.label_dropout = False, 0.0   # unconditional
  config.sample.guidance, config.sample.guidances = 0.0, (0.0,)
  config.optim.learning_rate, config.optim.warmup_steps = 1e-2, 20
  config.target.dequantization_noise = "uniform"
  return config


def _stats(x, cell_width):
  return {"mean": x.reshape(-1, SHAPE[-1]).mean(0), "std": x.reshape(-1, SHAPE[-1]).std(0),
          "noise_std": np.float32(cell_width / prior_targets.UNIFORM_WIDTH_PER_STD),
          "cell_width": np.float32(cell_width)}


def _bound(config, state, x, labels, cell_width, seed):
  noisy = x + np.asarray(prior_targets.dequantization_noise(
      jax.random.key(seed), x.shape, "uniform", {"cell_width": np.float32(cell_width)}))
  eval_step = jax.jit(prior_steps.make_prior_eval_step(config, SHAPE))
  return prior_steps.evaluate_bits_per_dim(eval_step, state, noisy, labels, 256)


def test_bound_is_above_a_known_entropy_and_approaches_it_as_the_flow_trains():
  entropy = float(-(PROBS * np.log2(PROBS)).sum())              # bits per dimension, 1.485
  rng = np.random.default_rng(0)
  train_x, train_labels = _sample(rng, 4096)
  test_x, test_labels = _sample(rng, 2048)
  config = _config()
  stats = _stats(train_x, 1.0)
  state = prior_steps.create_prior_state(config, jax.random.key_data(jax.random.key(0)), stats,
                                         (jnp.asarray(train_x[:128]), jnp.asarray(train_labels[:128])))
  initial = _bound(config, state, test_x, test_labels, 1.0, seed=1)
  step = jax.jit(prior_steps.make_prior_train_step(config, SHAPE))
  bounds = []
  for i in range(800):
    rows = rng.choice(len(train_x), 128, replace=False)
    state, metrics = step(state, (jnp.asarray(train_x[rows]), jnp.asarray(train_labels[rows])))
    if (i + 1) % 200 == 0:
      bounds.append(_bound(config, state, test_x, test_labels, 1.0, seed=1))
  assert np.isfinite(float(metrics["bits_per_dim"]))
  trained = bounds[-1]
  # A bound: above the entropy (up to the test set's sampling error, ~0.01 bit/dim at 2,048 x 32
  # dimensions), and it tightens towards it as the flow learns the three-step marginal
  # (here 1.84 at init, 1.60 after 200 steps, 1.55 after 800, entropy 1.485).
  assert all(b >= entropy - 0.03 for b in bounds), (bounds, entropy)
  assert initial > entropy + 0.3, (initial, entropy)
  assert bounds[-1] < bounds[0] and trained < entropy + 0.1, (bounds, entropy)

  # Units do not matter: the same flow on the data and grid scaled by 10 (its standardisation
  # scaled with them) gives the same bound, while the differential bits/dim moves by log2(10).
  scaled = state.replace(stats={**stats, "mean": stats["mean"] * 10, "std": stats["std"] * 10,
                                "noise_std": stats["noise_std"] * 10, "cell_width": np.float32(10.0)})
  assert _bound(config, scaled, test_x * 10, test_labels, 10.0, seed=1) == pytest.approx(trained,
                                                                                        abs=1e-4)


def test_targets_are_snapped_to_the_grid_and_distinct_cells_counts_merged_vectors():
  x = np.array([[0.0, 0.0], [0.26, 0.0], [0.74, 0.0], [3.0, 3.0], [3.0, 3.0]], np.float32)
  snapped = prior_targets.snap_to_grid(x, 0.5)
  np.testing.assert_allclose(snapped, [[0, 0], [0.5, 0], [0.5, 0], [3, 3], [3, 3]])
  # Four distinct vectors; 0.26 and 0.74 share a cell of width 0.5, none shares one of width 0.25.
  assert prior_targets.distinct_cells(x, 0.5, 100, seed=0) == pytest.approx(2 / 4)
  assert prior_targets.distinct_cells(x, 0.2, 100, seed=0) == 1.0


def test_denoising_step_is_tweedies_formula_for_a_gaussian():
  """With every coupling at its zero-initialised identity, no actnorm and a N(0, I) base, the flow
  is the standardisation alone: p(x) = N(mean, std^2) per channel, so one score step
  x + sigma^2 grad log p(x), sigma = a * std, is x - a^2 (x - mean), checked in closed form."""
  from rvq_jax.eval import prior_report
  rng = np.random.default_rng(0)
  x, labels = _sample(rng, 8)
  config = _config()
  config.prior.base, config.prior.actnorm = "gaussian", False
  config.target.noise_augmentation = 0.3
  stats = {"mean": np.array([0.5, -1.0], np.float32), "std": np.array([2.0, 0.5], np.float32),
           "noise_std": np.float32(0.1), "cell_width": np.float32(0.35)}
  state = prior_steps.create_prior_state(config, jax.random.key_data(jax.random.key(0)), stats,
                                         (jnp.asarray(x), jnp.asarray(labels)))
  denoised = prior_report.make_denoiser(config, SHAPE)(state, jnp.asarray(x), jnp.asarray(labels))
  np.testing.assert_allclose(np.asarray(denoised), x - 0.3 ** 2 * (x - stats["mean"]),
                             rtol=1e-5, atol=1e-5)
  config.target.noise_augmentation = 0.0
  np.testing.assert_array_equal(
      np.asarray(prior_report.make_denoiser(config, SHAPE)(state, jnp.asarray(x),
                                                           jnp.asarray(labels))), x)
