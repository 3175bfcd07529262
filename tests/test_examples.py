"""examples/: code outside the package that reuses the step and the quantizer with its own model."""

import importlib.util

import numpy as np

from tests.conftest import REPO


def _load(name):
  spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_waveform_codec_learns_with_the_projects_step_and_quantizer(fsdd_recordings):
  """A 1-D codec on raw FSDD waveforms (no spectrograms) trained by `steps.make_train_step`: the
  loss falls, the codebooks stay finite and every further level decoded lowers the error."""
  example = _load("waveform_codec")
  state, losses, snr = example.train(num_steps=40, batch_size=8, levels=3, codes=64, test_clips=16,
                                     data_dir=str(fsdd_recordings))
  assert np.all(np.isfinite(losses))
  assert losses[-5:].mean() < 0.6 * losses[:5].mean(), losses
  assert np.isfinite(np.asarray(state.codebook.embed)).all()
  assert int(state.step) == 40
  assert snr[0] > 1.0, snr                       # decodes something like the input
  assert snr[-1] > snr[0], snr                   # the residual levels add detail


def test_digits_vqvae_with_dropout_and_batchnorm_uses_the_generic_step():
  """An image VQ-VAE on scikit-learn's 8x8 digits whose forward pass draws dropout and updates
  BatchNorm's running statistics, trained by `steps.make_train_step(forward_fn, ...)`: one step
  stores the running mean that the momentum rule gives from the batch (computed here apart), the
  key of the step drives the dropout, and training learns images better than their mean."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  from rvq_jax.models import rvq  # pylint: disable=g-import-not-at-top
  from rvq_jax.train import steps  # pylint: disable=g-import-not-at-top
  example = _load("digits_vqvae")
  train_x, test_x = example.load_digits()
  model = example.DigitsVQVAE()
  variables = model.init(jax.random.key(0), jnp.asarray(train_x[:8]))
  batch = jnp.asarray(train_x[:32])
  codebook = rvq.init_codebooks(jax.random.key(1), 2, 8, model.latent_dim, "uniform")
  state = steps.init_state(variables, optax.sgd(0.0), codebook,
                           jax.random.key_data(jax.random.key(2)))
  step = jax.jit(steps.make_train_step(example.make_forward(model), optax.sgd(0.0),
                                       steps.QuantizerSettings(levels=2, codes=8)))
  new, _ = step(state, batch)
  conv = model.apply(variables, batch, method=lambda m, x: m.enc_conv(x))
  expected = 0.01 * np.asarray(conv).mean(axis=(0, 1, 2))   # momentum 0.99 from a zero mean
  np.testing.assert_allclose(new.params["batch_stats"]["enc_bn"]["mean"], expected, rtol=1e-4,
                             atol=1e-6)
  again, _ = step(state.replace(rng=jax.random.key_data(jax.random.key(3))), batch)
  # Another step key, another dropout mask: other latents reach the codebooks' EMA.
  assert not np.allclose(np.asarray(again.codebook.embed), np.asarray(new.codebook.embed))

  state, losses, mse, initial = example.train(num_steps=300)
  assert int(state.step) == 300 and np.all(np.isfinite(losses))
  assert losses[-10:].mean() < 0.2 * losses[:10].mean(), losses
  mean_image_mse = float(((test_x - train_x.mean(0)) ** 2).mean())
  assert mse[-1] < 0.5 * mean_image_mse and mse[-1] <= mse[0], (mse, mean_image_mse)
  moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()),
                       state.params["batch_stats"], initial["batch_stats"])
  assert min(jax.tree.leaves(moved)) > 1e-3
