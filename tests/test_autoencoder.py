"""Encoder/decoder shapes and the sub-pixel transposed convolution against nn.ConvTranspose."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rvq_jax.eval import report
from rvq_jax.models import autoencoder
from rvq_jax.models import vqvae


@pytest.mark.parametrize("kernel,stride,shape", [
    ((3, 3), (2, 2), (2, 16, 16, 3)), ((4, 4), (2, 2), (1, 6, 6, 2)),
    ((3, 3), (3, 3), (1, 5, 5, 2)), ((5, 3), (2, 2), (1, 7, 6, 2)), ((3, 3), (1, 1), (1, 4, 4, 2))])
def test_subpixel_equals_conv_transpose(kernel, stride, shape):
  x = jax.random.normal(jax.random.key(1), shape)
  plain = nn.ConvTranspose(4, kernel, strides=stride, padding="SAME")
  params = plain.init(jax.random.key(0), x)
  sub = autoencoder.ConvTranspose(4, kernel, stride, impl="xla", subpixel=True)
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
  fast = autoencoder.ConvTranspose(4, kernel, stride, impl="matmul")
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


def _rel_err(a, b):
  """max |a - b| / max |b|: the error measured against the array's scale (not per element, where
  bfloat16's 8-bit mantissa makes near-zero entries meaningless)."""
  a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
  return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


_LAYER_FORMS = {
    "conv matmul (im2col)": lambda: autoencoder.Conv(8, (3, 3), (2, 2), impl="matmul"),
    "conv matmul (output side)": lambda: autoencoder.Conv(2, (3, 3), impl="matmul", side="output"),
    "conv xla": lambda: autoencoder.Conv(8, (3, 3), (2, 2), impl="xla"),
    "conv-transpose matmul": lambda: autoencoder.ConvTranspose(8, (3, 3), (2, 2), impl="matmul"),
    "conv-transpose sub-pixel": lambda: autoencoder.ConvTranspose(8, (3, 3), (2, 2), impl="xla"),
    "conv-transpose xla": lambda: autoencoder.ConvTranspose(8, (3, 3), (2, 2), impl="xla",
                                                            subpixel=False),
}


@pytest.mark.parametrize("form", sorted(_LAYER_FORMS))
def test_bfloat16_forms_track_the_float32_flax_layer(form):
  """Each form with bfloat16 activations against flax's float32 layer: outputs and input
  gradients in bfloat16, parameter gradients in float32, all within 2% of the float32 values'
  scale. (bfloat16 keeps 8 significant bits: rounding the operands and the result of a product
  accumulated in float32 errs by about 0.3% of its scale here; a bias gradient summed over the
  2,048 output positions in bfloat16, as autodiff does without `conv_kernels.add_bias`, was 6%
  off and fails.)"""
  layer = _LAYER_FORMS[form]()
  x = jax.random.normal(jax.random.key(1), (2, 16, 16, 16))
  if isinstance(layer, autoencoder.Conv):
    plain = nn.Conv(layer.features, layer.kernel_size, layer.strides, padding="SAME")
  else:
    plain = nn.ConvTranspose(layer.features, layer.kernel_size, layer.strides, padding="SAME")
  params = jax.tree.map(lambda p: p + 0.1, plain.init(jax.random.key(0), x))
  y = plain.apply(params, x)
  xb = x.astype(jnp.bfloat16)
  yb = layer.apply(params, xb)
  assert yb.dtype == jnp.bfloat16
  assert _rel_err(yb, y) < 0.02
  w = jax.random.normal(jax.random.key(2), y.shape)
  grad = lambda m, x: jax.grad(lambda p: jnp.sum(m.apply(p, x).astype(jnp.float32) * w))(params)
  reference, mixed = grad(plain, x), grad(layer, xb)
  for ref, got in zip(jax.tree.leaves(reference), jax.tree.leaves(mixed)):
    assert got.dtype == jnp.float32
    assert _rel_err(got, ref) < 0.02
  dx = jax.grad(lambda x: jnp.sum(layer.apply(params, x).astype(jnp.float32) * w))(xb)
  dx_ref = jax.grad(lambda x: jnp.sum(plain.apply(params, x) * w))(x)
  assert dx.dtype == jnp.bfloat16 and _rel_err(dx, dx_ref) < 0.02



@pytest.mark.parametrize("fold", [2, 4])
def test_folded_rows_are_a_strided_band_convolution(fold):
  """The encoder's fold (rows into channels, then the 1x1 latent conv) is the convolution with an
  [F, 1] kernel and stride F along frequency; the decoder's unfold (1x1 conv, rows back out) the
  transposed convolution with the same kernel shape: both against lax's own convolutions."""
  b, h, w, c, d = 2, 8, 5, 3, 4
  x = jax.random.normal(jax.random.key(0), (b, h, w, c))
  kernel = jax.random.normal(jax.random.key(1), (fold * c, d))
  folded = autoencoder.fold_rows(x, fold) @ kernel                      # [b, h / F, w, d]
  band = kernel.reshape(fold, 1, c, d)                                  # row r, channel c
  reference = jax.lax.conv_general_dilated(x, band, (fold, 1), "VALID",
                                           dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(folded, reference, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(autoencoder.unfold_rows(autoencoder.fold_rows(x, fold), fold), x)
  z = jax.random.normal(jax.random.key(2), (b, h // fold, w, d))
  unfolded = autoencoder.unfold_rows(z @ kernel.T, fold)                # [b, h, w, c]
  reference = jax.lax.conv_transpose(z, band, (fold, 1), "VALID", transpose_kernel=True,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(unfolded, reference, rtol=1e-5, atol=1e-5)


def test_a_latent_along_time_alone(default_config):
  """model.fold_rows=32: one latent vector per latent frame ([B, 1, 32, D]) that decodes back to
  the whole spectrogram; fold_rows=1 keeps the study's parameters exactly (no fold layers)."""
  x = jax.random.normal(jax.random.key(0), (2, 128, 128, 2))
  plain = vqvae.make_model(default_config).init(jax.random.key(1), x)
  default_config.model.fold_rows = 32
  model = vqvae.make_model(default_config)
  params = model.init(jax.random.key(1), x)
  z = model.apply(params, x, method=vqvae.VQVAE.encode)
  assert z.shape == (2, 1, 32, 128) and vqvae.latent_rows(default_config) == 1
  assert model.apply(params, z, method=vqvae.VQVAE.decode).shape == (2, 128, 128, 2)
  assert params["params"]["encoder"]["Conv_2"]["kernel"].shape == (1, 1, 32 * 64, 128)
  assert params["params"]["decoder_net"]["Unfold"]["kernel"].shape == (1, 1, 128, 32 * 64)
  assert "Unfold" not in plain["params"]["decoder_net"]
  assert plain["params"]["encoder"]["Conv_2"]["kernel"].shape == (1, 1, 64, 128)
  # The bit rate counts one code per level per latent frame of 4 hops (256 samples at 8 kHz).
  c = default_config
  expected = (8000 / 256) * c.rvq.levels * np.log2(c.rvq.codes)
  assert report.bits_per_second(c)["nominal_bits_per_second"] == pytest.approx(expected)
