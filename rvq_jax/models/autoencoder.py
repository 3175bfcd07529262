"""Convolutional encoder and decoder (Flax linen) between spectrograms and latent grids.

Encoder: Conv(32, 3x3, /2, ReLU) -> Conv(64, 3x3, /2, ReLU) -> Conv(latent_dim, 1x1, linear):
[B, 128, 128, 2] -> [B, 32, 32, 128] with the default config. Decoder: the transpose,
ConvT(64, 3x3, x2, ReLU) -> ConvT(32, 3x3, x2, ReLU) -> Conv(2 (or 4), 3x3, linear).

`SubpixelConvTranspose` computes `nn.ConvTranspose(strides=s, padding='SAME')` exactly, from the same
`kernel` [kh, kw, in, out] and `bias` parameters, as one stride-1 convolution with s*s*out output
channels followed by depth-to-space. On XLA:CPU the kernel gradient of a transposed convolution is
several times slower than that of the equivalent convolution (issue 4: 1.9 s against ~0.3 s).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def _conv_transpose_same_padding(kernel: int, stride: int) -> int:
  """Leading padding of `lax.conv_transpose(..., padding='SAME')` along one dimension."""
  pad_len = kernel + stride - 2
  return kernel - 1 if stride > kernel - 1 else int(np.ceil(pad_len / 2))


def _subpixel_taps(kernel: int, stride: int) -> tuple[np.ndarray, int, int]:
  """Which transposed-kernel tap feeds each (output phase, input offset) along one dimension.

  Output o = stride * m + p of the transposed convolution reads input m + d through tap j when
  p + j - pad = stride * d. Returns taps [stride, offsets] (index `kernel` = no tap, a zero) and the
  padding (before, after) of the stride-1 convolution over offsets d_min..d_max.
  """
  pad = _conv_transpose_same_padding(kernel, stride)
  pairs = [(p, (p + j - pad) // stride, j) for p in range(stride) for j in range(kernel)
           if (p + j - pad) % stride == 0]
  d_min = min(d for _, d, _ in pairs)
  d_max = max(d for _, d, _ in pairs)
  taps = np.full((stride, d_max - d_min + 1), kernel, np.int32)
  for p, d, j in pairs:
    taps[p, d - d_min] = j
  return taps, -d_min, d_max


def depth_to_space(x: jax.Array, block: tuple[int, int]) -> jax.Array:
  """[B, H, W, bh * bw * C] (channels ordered bh, bw, C) -> [B, H * bh, W * bw, C]."""
  b, h, w, c = x.shape
  bh, bw = block
  x = x.reshape(b, h, w, bh, bw, c // (bh * bw))
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h * bh, w * bw, c // (bh * bw))


class SubpixelConvTranspose(nn.Module):
  """`nn.ConvTranspose(features, kernel_size, strides, padding='SAME')`, computed as conv + depth-to-space.

  Same parameter names, shapes and initialisers as the plain layer, so checkpoints are interchangeable.
  """
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int]
  kernel_init: nn.initializers.Initializer = nn.linear.default_kernel_init
  bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kh, kw = self.kernel_size
    sh, sw = self.strides
    kernel = self.param("kernel", self.kernel_init, (kh, kw, x.shape[-1], self.features))
    bias = self.param("bias", self.bias_init, (self.features,))
    taps_h, pad_h0, pad_h1 = _subpixel_taps(kh, sh)
    taps_w, pad_w0, pad_w1 = _subpixel_taps(kw, sw)
    padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # the zero tap
    # [ph, dh, pw, dw, in, out] -> [dh, dw, in, ph, pw, out]: an exact gather, no arithmetic.
    sub = padded[taps_h[:, :, None, None], taps_w[None, None, :, :]]
    sub = sub.transpose(1, 3, 4, 0, 2, 5).reshape(
        taps_h.shape[1], taps_w.shape[1], x.shape[-1], sh * sw * self.features)
    y = jax.lax.conv_general_dilated(
        x, sub.astype(x.dtype), window_strides=(1, 1),
        padding=((pad_h0, pad_h1), (pad_w0, pad_w1)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return depth_to_space(y, (sh, sw)) + bias.astype(x.dtype)


class Encoder(nn.Module):
  """Spectrogram [B, H, W, C] -> latent grid [B, H / 2^n, W / 2^n, latent_dim], n = len(features)."""
  features: Sequence[int]
  latent_dim: int
  kernel_size: int = 3

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = (self.kernel_size, self.kernel_size)
    for width in self.features:
      x = nn.relu(nn.Conv(width, k, strides=(2, 2), padding="SAME")(x))
    return nn.Conv(self.latent_dim, (1, 1))(x)


class Decoder(nn.Module):
  """Latent grid [B, h, w, D] -> [B, h * 2^n, w * 2^n, out_channels], the encoder's transpose.

  `subpixel=False` uses `nn.ConvTranspose` itself; both compute the same function from the same
  parameters.
  """
  features: Sequence[int]
  out_channels: int
  kernel_size: int = 3
  subpixel: bool = True

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    k = (self.kernel_size, self.kernel_size)
    layer = SubpixelConvTranspose if self.subpixel else nn.ConvTranspose
    for i, width in enumerate(self.features):
      kwargs = {} if self.subpixel else {"padding": "SAME"}
      z = nn.relu(layer(width, k, strides=(2, 2), name=f"ConvTranspose_{i}", **kwargs)(z))
    return nn.Conv(self.out_channels, k, padding="SAME")(z)
