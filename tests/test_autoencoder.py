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
  default_config.model.conv_impl = "xla"    # sub-pixel against nn.ConvTranspose
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


def _grads(module, params, x, weights):
  return jax.grad(lambda p, x: jnp.sum(module.apply(p, x) * weights), argnums=(0, 1))(params, x)


@pytest.mark.parametrize("kernel,stride,shape,features,side", [
    ((3, 3), (2, 2), (2, 16, 16, 2), 8, "input"),      # the encoder's strided layers
    ((3, 3), (2, 2), (1, 7, 6, 3), 4, "input"),        # odd sizes: asymmetric SAME padding
    ((1, 1), (1, 1), (2, 4, 4, 8), 16, "input"),       # the 1x1 latent projection
    ((3, 3), (1, 1), (2, 8, 8, 8), 2, "output"),       # the decoder's last layer
    ((5, 3), (1, 1), (1, 6, 7, 4), 3, "output"),
    ((3, 3), (1, 1), (1, 6, 6, 3), 5, "input")])
def test_matmul_conv_equals_nn_conv(kernel, stride, shape, features, side):
  """Forward and gradients (parameters and input) of the matmul forms against flax's nn.Conv."""
  x = jax.random.normal(jax.random.key(1), shape)
  plain = nn.Conv(features, kernel, strides=stride, padding="SAME")
  params = plain.init(jax.random.key(0), x)
  params = jax.tree.map(lambda p: p + 0.1, params)          # a non-zero bias too
  fast = autoencoder.Conv(features, kernel, stride, impl="matmul", side=side)
  assert jax.tree.map(jnp.shape, fast.init(jax.random.key(0), x)) == jax.tree.map(jnp.shape, params)
  y = plain.apply(params, x)
  np.testing.assert_allclose(fast.apply(params, x), y, atol=1e-5)
  w = jax.random.normal(jax.random.key(2), y.shape)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4),
               _grads(plain, params, x, w), _grads(fast, params, x, w))


@pytest.mark.parametrize("kernel,stride,shape", [
    ((3, 3), (2, 2), (2, 16, 16, 3)), ((4, 4), (2, 2), (1, 6, 6, 2)),
    ((3, 3), (3, 3), (1, 5, 5, 2)), ((5, 3), (2, 2), (1, 7, 6, 2)), ((2, 2), (2, 2), (1, 4, 3, 2))])
def test_matmul_conv_transpose_equals_nn_conv_transpose(kernel, stride, shape):
  x = jax.random.normal(jax.random.key(1), shape)
  plain = nn.ConvTranspose(4, kernel, strides=stride, padding="SAME")
  params = jax.tree.map(lambda p: p + 0.1, plain.init(jax.random.key(0), x))
  fast = autoencoder.MatmulConvTranspose(4, kernel, stride)
  y = plain.apply(params, x)
  np.testing.assert_allclose(fast.apply(params, x), y, atol=1e-5)
  w = jax.random.normal(jax.random.key(2), y.shape)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4),
               _grads(plain, params, x, w), _grads(fast, params, x, w))


def test_conv_impls_give_the_same_model(default_config):
  """conv_impl='matmul' and 'xla' (with the plain nn.ConvTranspose decoder): same parameter tree,
  same reconstructions and the same gradients, so either can train or resume any checkpoint."""
  x = jax.random.normal(jax.random.key(0), (2, 128, 128, 2))
  default_config.model.conv_impl = "matmul"
  fast = vqvae.make_model(default_config)
  params = fast.init(jax.random.key(1), x)
  default_config.model.conv_impl, default_config.model.subpixel_decoder = "xla", False
  plain = vqvae.make_model(default_config)
  assert jax.tree.map(jnp.shape, plain.init(jax.random.key(1), x)) == \
      jax.tree.map(jnp.shape, params)
  np.testing.assert_allclose(fast.apply(params, x), plain.apply(params, x), atol=1e-4)
  loss = lambda m: jax.grad(lambda p: jnp.mean((m.apply(p, x) - x)**2))(params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6),
               loss(plain), loss(fast))
