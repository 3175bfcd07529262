"""Convolutional encoder and decoder (Flax linen) between spectrograms and latent grids.

Encoder: Conv(32, 3x3, /2, ReLU) -> Conv(64, 3x3, /2, ReLU) -> Conv(latent_dim, 1x1, linear):
[B, 128, 128, 2] -> [B, 32, 32, 128] with the default config. Decoder: the transpose,
ConvT(64, 3x3, x2, ReLU) -> ConvT(32, 3x3, x2, ReLU) -> Conv(2 (or 4), 3x3, linear).

With `fold_rows` F > 1 (a codec's latent laid out along time): the encoder's last hidden grid
[B, h, w, C] has each F adjacent rows (frequency) folded into channels, [B, h / F, w, F * C],
before the 1x1 latent conv, so one latent vector codes the whole band of F rows of a latent
frame (F = h: a latent along time alone, one vector per frame). The decoder mirrors it: a 1x1 conv
to F * C channels, unfolded back to [B, h, w, C], ReLU, then its transposed convolutions.
F = 1 is the study's grid, with the same parameters as before the option existed.

`Conv` and `ConvTranspose` are `nn.Conv` / `nn.ConvTranspose` with padding 'SAME': the same
parameters (`kernel` [kh, kw, in, out], `bias` [out], same names and initialisers, so checkpoints
are interchangeable), computed by one of the exact forms in `conv_kernels` (`impl`: 'xla' or
'matmul'; `model.conv_impl='auto'` picks per backend). `dtype` is the activations' compute dtype
(mixed precision: parameters stay float32).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rvq_jax.models import conv_kernels


def _kernel_and_bias(module: nn.Module, in_features: int):
  """The `kernel` [kh, kw, in, features] and `bias` [features] parameters, float32, named and
  initialised as flax's nn.Conv / nn.ConvTranspose do."""
  kh, kw = module.kernel_size
  kernel = module.param("kernel", nn.linear.default_kernel_init,
                        (kh, kw, in_features, module.features))
  return kernel, module.param("bias", nn.initializers.zeros_init(), (module.features,))


class Conv(nn.Module):
  """`nn.Conv(features, kernel_size, strides, padding='SAME')`, computed by `impl` ('xla' or
  'matmul', whose `side` is 'input' (im2col) or 'output' (for few output channels))."""
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] = (1, 1)
  impl: str = "xla"
  side: str = "input"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kh, kw = self.kernel_size
    kernel, bias = _kernel_and_bias(self, x.shape[-1])
    padding = (conv_kernels.same_padding(x.shape[1], kh, self.strides[0]),
               conv_kernels.same_padding(x.shape[2], kw, self.strides[1]))
    if self.impl == "matmul":
      y = conv_kernels.conv_as_matmul(x, kernel, tuple(self.strides), padding, self.side)
    else:
      y = conv_kernels.xla_conv(x, kernel, tuple(self.strides), padding)
    return conv_kernels.add_bias(y, bias)


class ConvTranspose(nn.Module):
  """`nn.ConvTranspose(features, kernel_size, strides, padding='SAME')`, computed by `impl`:
  'xla' (`nn.ConvTranspose`'s own `lax.conv_transpose`, or with `subpixel` the sub-pixel form)
  or 'matmul' (one matmul, then the taps placed)."""
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int]
  impl: str = "xla"
  subpixel: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel, bias = _kernel_and_bias(self, x.shape[-1])
    if self.impl == "matmul":
      y = conv_kernels.conv_transpose_as_matmul(x, kernel, tuple(self.strides))
    elif self.subpixel:
      y = conv_kernels.conv_transpose_subpixel(x, kernel, tuple(self.strides))
    else:
      y = jax.lax.conv_transpose(x, kernel.astype(x.dtype), tuple(self.strides), "SAME",
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return conv_kernels.add_bias(y, bias)


def fold_rows(x: jax.Array, rows: int) -> jax.Array:
  """[B, h, w, C] -> [B, h / rows, w, rows * C]: each `rows` adjacent rows into channels (row-major:
  channel r * C + c is row r's channel c)."""
  b, h, w, c = x.shape
  return x.reshape(b, h // rows, rows, w, c).transpose(0, 1, 3, 2, 4).reshape(
      b, h // rows, w, rows * c)


def unfold_rows(x: jax.Array, rows: int) -> jax.Array:
  """The inverse of `fold_rows`: [B, h, w, rows * C] -> [B, h * rows, w, C]."""
  b, h, w, rc = x.shape
  return x.reshape(b, h, w, rows, rc // rows).transpose(0, 1, 3, 2, 4).reshape(
      b, h * rows, w, rc // rows)


class Encoder(nn.Module):
  """Spectrogram [B, H, W, C] -> latent grid [B, H / 2^n / fold, W / 2^n, latent_dim],
  n = len(features), in `dtype`."""
  features: Sequence[int]
  latent_dim: int
  kernel_size: int = 3
  conv_impl: str = "xla"
  dtype: jnp.dtype = jnp.float32
  fold: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = (self.kernel_size, self.kernel_size)
    x = x.astype(self.dtype)
    for i, width in enumerate(self.features):
      x = nn.relu(Conv(width, k, (2, 2), self.conv_impl, name=f"Conv_{i}")(x))
    if self.fold > 1:
      x = fold_rows(x, self.fold)
    return Conv(self.latent_dim, (1, 1), impl=self.conv_impl,
                name=f"Conv_{len(self.features)}")(x)


class Decoder(nn.Module):
  """Latent grid [B, h, w, D] -> [B, h * fold * 2^n, w * 2^n, out_channels] in `dtype`: the
  encoder's transpose. The last layer, with few output channels, computes on the output side."""
  features: Sequence[int]
  out_channels: int
  kernel_size: int = 3
  subpixel: bool = True
  conv_impl: str = "xla"
  dtype: jnp.dtype = jnp.float32
  fold: int = 1

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    k = (self.kernel_size, self.kernel_size)
    z = z.astype(self.dtype)
    if self.fold > 1:   # mirror the encoder's fold: the band's rows back from one vector
      z = Conv(self.fold * self.features[0], (1, 1), impl=self.conv_impl, name="Unfold")(z)
      z = nn.relu(unfold_rows(z, self.fold))
    for i, width in enumerate(self.features):
      z = nn.relu(ConvTranspose(width, k, (2, 2), self.conv_impl, self.subpixel,
                                name=f"ConvTranspose_{i}")(z))
    side = "output" if self.out_channels < z.shape[-1] else "input"
    return Conv(self.out_channels, k, impl=self.conv_impl, side=side, name="Conv_0")(z)
