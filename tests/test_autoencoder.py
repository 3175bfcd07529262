"""Encoder/decoder shapes and the sub-pixel transposed convolution against nn.ConvTranspose."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rvq_jax.models import autoencoder
from rvq_jax.models import vqvae


@pytest.mark.parametrize("kernel,stride,shape", [
    ((3, 3), (2, 2), (2, 16, 16, 3)), ((4, 4), (2, 2), (1, 6, 6, 2)),
    ((3, 3), (3, 3), (1, 5, 5, 2)), ((5, 3), (2, 2), (1, 7, 6, 2)), ((3, 3), (1, 1), (1, 4, 4, 2))])
def test_subpixel_equals_conv_transpose(kernel, stride, shape):
  x = jax.random.normal(jax.random.key(1), shape)
  plain = nn.ConvTranspose(4, kernel, strides=stride, padding="SAME")
  params = plain.init(jax.random.key(0), x)
  sub = autoencoder.SubpixelConvTranspose(4, kernel, stride)
  assert (jax.tree.map(jnp.shape, sub.init(jax.random.key(0), x)) ==
          jax.tree.map(jnp.shape, params))
  np.testing.assert_allclose(sub.apply(params, x), plain.apply(params, x), atol=1e-5)
  w = jax.random.normal(jax.random.key(2), plain.apply(params, x).shape)
  grads = [jax.grad(lambda p, m=m: jnp.sum(m.apply(p, x) * w))(params) for m in (plain, sub)]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4), *grads)


def test_autoencoder_shapes_and_decoder_forms_agree(default_config):
  x = jax.random.normal(jax.random.key(0), (2, 128, 128, 2))
  model = vqvae.make_model(default_config)
  params = model.init(jax.random.key(1), x)
  z = model.apply(params, x, method=vqvae.VQVAE.encode)
  assert z.shape == (2, 32, 32, 128)
  y = model.apply(params, z, method=vqvae.VQVAE.decode)
  assert y.shape == (2, 128, 128, 2)
  default_config.model.subpixel_decoder = False
  plain = vqvae.make_model(default_config)
  assert (jax.tree.map(jnp.shape, plain.init(jax.random.key(1), x)) ==
          jax.tree.map(jnp.shape, params))
  np.testing.assert_allclose(plain.apply(params, z, method=vqvae.VQVAE.decode), y, atol=1e-4)


def test_gaussian_decoder_outputs_mean_and_floored_log_scale(default_config):
  default_config.model.decoder = "gaussian"
  x = jax.random.normal(jax.random.key(0), (1, 128, 128, 2))
  model = vqvae.make_model(default_config)
  params = model.init(jax.random.key(1), x)
  from rvq_jax.models import rvq  # pylint: disable=g-import-not-at-top
  embed = rvq.init_codebooks(jax.random.key(2), 2, 8, 128, "glorot_normal").embed
  out = vqvae.forward(model, params, embed, x, default_config)
  assert out.mean.shape == x.shape and out.log_scale.shape == x.shape
  assert float(out.log_scale.min()) > default_config.model.min_log_scale
