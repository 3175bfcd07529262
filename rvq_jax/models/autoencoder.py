"""Convolutional encoder and decoder (Flax linen) between spectrograms and latent grids.

Encoder: Conv(32, 3x3, /2, ReLU) -> Conv(64, 3x3, /2, ReLU) -> Conv(latent_dim, 1x1, linear):
[B, 128, 128, 2] -> [B, 32, 32, 128] with the default config. Decoder: the transpose,
ConvT(64, 3x3, x2, ReLU) -> ConvT(32, 3x3, x2, ReLU) -> Conv(2 (or 4), 3x3, linear).

`SubpixelConvTranspose` computes `nn.ConvTranspose(strides=s, padding='SAME')` exactly, from the same
`kernel` [kh, kw, in, out] and `bias` parameters, as one stride-1 convolution with s*s*out output
channels followed by depth-to-space. On XLA:CPU the kernel gradient of a transposed convolution is
several times slower than that of the equivalent convolution (issue 4: 1.9 s against ~0.3 s).

`conv_as_matmul` computes a convolution as one matrix multiplication, so that its gradients are
matrix multiplications too (XLA:CPU's convolution kernel gradients run at a few GFLOP/s; its
matmuls near peak). 'input' side: im2col, [B*Ho*Wo, kh*kw*Cin] @ [kh*kw*Cin, Cout]. 'output' side
(stride 1): [B*H*W, Cin] @ [Cin, kh*kw*Cout], then the kh*kw shifted slices are summed; cheaper
when Cout is small (the decoder's last layer, 32 -> 2 channels). `model.conv_impl` chooses 'xla'
(lax convolutions) or 'matmul'; both compute the same function from the same parameters.
"""

from __future__ import annotations

import functools
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


CONV_IMPLS = ("xla", "matmul")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
  """(before, after) padding of a 'SAME' convolution along one dimension (as lax computes it)."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


def conv_as_matmul(x: jax.Array, kernel: jax.Array, strides=(1, 1), padding=((0, 0), (0, 0)),
                   side: str = "input") -> jax.Array:
  """`lax.conv_general_dilated(x, kernel, strides, padding)` (NHWC, HWIO) as a matmul.

  x: [B, H, W, Cin]; kernel: [kh, kw, Cin, Cout]; padding: ((top, bottom), (left, right)).
  Returns [B, Ho, Wo, Cout]. side: 'input' (im2col; any stride) or 'output' (stride 1 only).
  """
  b, h, w, cin = x.shape
  kh, kw, _, cout = kernel.shape
  sh, sw = strides
  (pt, pb), (pl, pr) = padding
  ho = (h + pt + pb - kh) // sh + 1
  wo = (w + pl + pr - kw) // sw + 1
  if side == "input":
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    cols = [jax.lax.slice(xp, (0, i, j, 0), (b, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1, cin),
                          (1, sh, sw, 1)) for i in range(kh) for j in range(kw)]
    patches = jnp.concatenate(cols, axis=-1).reshape(b * ho * wo, kh * kw * cin)
    return jnp.dot(patches, kernel.reshape(kh * kw * cin, cout)).reshape(b, ho, wo, cout)
  if side != "output" or strides != (1, 1):
    raise ValueError(f"conv_as_matmul: side={side!r} with strides={strides} is not supported; "
                     "use side='input' for strided convolutions.")
  # z[b, m, n, i, j] = x[b, m, n] @ kernel[i, j]; output (p, q) sums z[p + i - pt, q + j - pl, i, j]
  # (zero outside the grid: z is padded by kh - 1, kw - 1 on each side).
  z = jnp.dot(x.reshape(b * h * w, cin), kernel.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout))
  z = jnp.pad(z.reshape(b, h, w, kh, kw, cout), ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1),
                                                 (0, 0), (0, 0), (0, 0)))
  out = None
  for i in range(kh):
    for j in range(kw):
      top, left = kh - 1 + i - pt, kw - 1 + j - pl     # row p reads z row p + i - pt
      part = z[:, top:top + ho, left:left + wo, i, j, :]
      out = part if out is None else out + part
  return out


def _kernel_and_bias(module: nn.Module, in_features: int):
  """The `kernel` [kh, kw, in, features] and `bias` [features] parameters, named and initialised
  as flax's nn.Conv / nn.ConvTranspose do, so checkpoints are interchangeable."""
  kh, kw = module.kernel_size
  kernel = module.param("kernel", nn.linear.default_kernel_init,
                        (kh, kw, in_features, module.features))
  return kernel, module.param("bias", nn.initializers.zeros_init(), (module.features,))


class Conv(nn.Module):
  """`nn.Conv(features, kernel_size, strides, padding='SAME')` with the same parameters
  (`kernel` [kh, kw, Cin, Cout], `bias`), computed by `impl`: 'xla' or 'matmul' (`side`)."""
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] = (1, 1)
  impl: str = "xla"
  side: str = "input"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kh, kw = self.kernel_size
    kernel, bias = _kernel_and_bias(self, x.shape[-1])
    padding = (same_padding(x.shape[1], kh, self.strides[0]),
               same_padding(x.shape[2], kw, self.strides[1]))
    return _convolve(x, kernel, tuple(self.strides), padding, self.impl, self.side) + bias


def _convolve(x, kernel, strides, padding, impl: str, side: str = "input"):
  if impl == "matmul":
    return conv_as_matmul(x, kernel, strides, padding, side)
  return jax.lax.conv_general_dilated(x, kernel, window_strides=strides, padding=padding,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def transposed_conv_patches(y: jax.Array, kernel_size, strides, in_size) -> jax.Array:
  """The adjoint of a transposed convolution's scatter: [B, sh*H, sw*W, C] -> [B, H, W, kh*kw*C].

  Entry (m, n, i, j, c) is y[sh*m + ph - i, sw*n + pw - j, c] (zero outside), ph, pw the 'SAME'
  paddings: the output pixels that input pixel (m, n) reaches through tap (i, j). One strided
  slice per tap and a concatenation (im2col).
  """
  (kh, kw), (sh, sw), (h, w) = kernel_size, strides, in_size
  ph, pw = _conv_transpose_same_padding(kh, sh), _conv_transpose_same_padding(kw, sw)
  lo_h, lo_w = max(kh - 1 - ph, 0), max(kw - 1 - pw, 0)
  hi_h = max(sh * (h - 1) + ph - y.shape[1] + 1, 0)
  hi_w = max(sw * (w - 1) + pw - y.shape[2] + 1, 0)
  yp = jnp.pad(y, ((0, 0), (lo_h, hi_h), (lo_w, hi_w), (0, 0)))
  cols = []
  for i in range(kh):
    for j in range(kw):
      r, c = ph - i + lo_h, pw - j + lo_w
      cols.append(jax.lax.slice(yp, (0, r, c, 0), (y.shape[0], r + sh * (h - 1) + 1,
                                                   c + sw * (w - 1) + 1, y.shape[3]),
                                (1, sh, sw, 1)))
  return jnp.concatenate(cols, axis=-1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def scatter_transposed_conv_taps(z: jax.Array, kernel_size, strides) -> jax.Array:
  """[B, H, W, kh*kw*C] per-tap contributions -> the transposed convolution's output
  [B, sh*H, sw*W, C]: tap (i, j) of input pixel (m, n) adds to (sh*m + ph - i, sw*n + pw - j).

  Forward: per output phase, a sum of shifted tap slices, then depth-to-space. Backward: its
  adjoint `transposed_conv_patches` (strided slices and one concatenation), written out because
  XLA:CPU runs the transpose JAX derives (a scatter into a 6-D array) several times slower.
  """
  (kh, kw), (sh, sw) = kernel_size, strides
  b, h, w, _ = z.shape
  z = z.reshape(b, h, w, kh, kw, -1)
  ph, pw = _conv_transpose_same_padding(kh, sh), _conv_transpose_same_padding(kw, sw)
  shifts_h = [(ph - i) // sh for i in range(kh)]
  shifts_w = [(pw - j) // sw for j in range(kw)]
  top, left = max(max(shifts_h), 0), max(max(shifts_w), 0)
  z = jnp.pad(z, ((0, 0), (top, max(-min(shifts_h), 0)), (left, max(-min(shifts_w), 0)),
                  (0, 0), (0, 0), (0, 0)))
  phases = {}
  for i in range(kh):
    for j in range(kw):
      r, c = top - shifts_h[i], left - shifts_w[j]     # block row m reads z row m - shift
      part = z[:, r:r + h, c:c + w, i, j, :]
      key = ((ph - i) % sh, (pw - j) % sw)
      phases[key] = part if key not in phases else phases[key] + part
  if len(phases) < sh * sw:
    raise ValueError(f"kernel {kernel_size} smaller than strides {strides}: some output phases "
                     "get no tap.")
  y = jnp.concatenate([phases[(p, q)] for p in range(sh) for q in range(sw)], axis=-1)
  return depth_to_space(y, (sh, sw))


def _scatter_taps_fwd(z, kernel_size, strides):
  return scatter_transposed_conv_taps(z, kernel_size, strides), z.shape[1:3]


def _scatter_taps_bwd(kernel_size, strides, in_size, dy):
  return (transposed_conv_patches(dy, kernel_size, strides, in_size),)


scatter_transposed_conv_taps.defvjp(_scatter_taps_fwd, _scatter_taps_bwd)


def conv_transpose_as_matmul(x: jax.Array, kernel: jax.Array, strides) -> jax.Array:
  """`nn.ConvTranspose(strides=s, padding='SAME')` (kernel not flipped) as one matmul + col2im.

  x: [B, H, W, Cin]; kernel: [kh, kw, Cin, Cout] -> [B, sh * H, sw * W, Cout]. Every input pixel's
  kh * kw contributions come from one [B*H*W, Cin] @ [Cin, kh*kw*Cout] product: no zero taps
  (the sub-pixel form multiplies by (ceil(k/s) s / k)^2 = 16/9 more for k=3, s=2), then
  `scatter_transposed_conv_taps` places them.
  """
  b, h, w, cin = x.shape
  kh, kw, _, cout = kernel.shape
  z = jnp.dot(x.reshape(b * h * w, cin), kernel.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout))
  return scatter_transposed_conv_taps(z.reshape(b, h, w, kh * kw * cout), (kh, kw),
                                      tuple(strides))


class MatmulConvTranspose(nn.Module):
  """`nn.ConvTranspose(features, kernel_size, strides, padding='SAME')` with the same parameters,
  computed by `conv_transpose_as_matmul`."""
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int]

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel, bias = _kernel_and_bias(self, x.shape[-1])
    return conv_transpose_as_matmul(x, kernel.astype(x.dtype), tuple(self.strides)) + bias


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
    y = _convolve(x, sub.astype(x.dtype), (1, 1), ((pad_h0, pad_h1), (pad_w0, pad_w1)), "xla")
    return depth_to_space(y, (sh, sw)) + bias.astype(x.dtype)


class Encoder(nn.Module):
  """Spectrogram [B, H, W, C] -> latent grid [B, H / 2^n, W / 2^n, latent_dim], n = len(features)."""
  features: Sequence[int]
  latent_dim: int
  kernel_size: int = 3
  conv_impl: str = "xla"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = (self.kernel_size, self.kernel_size)
    for i, width in enumerate(self.features):
      x = nn.relu(Conv(width, k, (2, 2), self.conv_impl, name=f"Conv_{i}")(x))
    return Conv(self.latent_dim, (1, 1), impl=self.conv_impl,
                name=f"Conv_{len(self.features)}")(x)


class Decoder(nn.Module):
  """Latent grid [B, h, w, D] -> [B, h * 2^n, w * 2^n, out_channels], the encoder's transpose.

  With conv_impl='xla', `subpixel=False` uses `nn.ConvTranspose` itself, True the sub-pixel form;
  `conv_impl='matmul'` computes every (transposed) convolution as a matmul (the last layer, with
  few output channels, on the output side). All compute the same function from the same
  parameters.
  """
  features: Sequence[int]
  out_channels: int
  kernel_size: int = 3
  subpixel: bool = True
  conv_impl: str = "xla"

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    k = (self.kernel_size, self.kernel_size)
    for i, width in enumerate(self.features):
      name = f"ConvTranspose_{i}"
      if self.conv_impl == "matmul":
        layer = MatmulConvTranspose(width, k, (2, 2), name=name)
      elif self.subpixel:
        layer = SubpixelConvTranspose(width, k, (2, 2), name=name)
      else:
        layer = nn.ConvTranspose(width, k, strides=(2, 2), padding="SAME", name=name)
      z = nn.relu(layer(z))
    side = "output" if self.out_channels < z.shape[-1] else "input"
    return Conv(self.out_channels, k, impl=self.conv_impl, side=side, name="Conv_0")(z)
