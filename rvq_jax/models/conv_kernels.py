"""Alternative forms of 'SAME' convolutions and transposed convolutions, each exact.

`models/autoencoder.py` builds the networks from `Conv` and `ConvTranspose` layers that compute
`nn.Conv` / `nn.ConvTranspose` with the same parameters; this module holds the forms they can use,
chosen by `model.conv_impl` (`resolve_conv_impl`):

- 'xla': `lax.conv_general_dilated` / `nn.ConvTranspose` themselves (or, for transposed
  convolutions, the sub-pixel form: one stride-1 convolution with s*s*out channels followed by
  depth-to-space). XLA's convolutions are the right choice on GPU and TPU.
- 'matmul': every convolution and its gradients as matrix multiplications (`conv_as_matmul`,
  `conv_transpose_as_matmul`). On XLA:CPU the convolution kernels' gradients run at a few GFLOP/s
  and its matmuls near the machine's peak (benchmarks/RESULTS.md, issue 7).
- 'auto': 'matmul' on the CPU, 'xla' elsewhere.

Mixed precision: with bfloat16 activations, every matmul here is `mixed_matmul`: bfloat16 operands,
float32 accumulation, a bfloat16 result, and backward products in the same form with the weight's
gradient accumulated and returned in float32. (Written out because the transpose JAX derives for
a `preferred_element_type=float32` product multiplies a float32 cotangent by a bfloat16 operand,
which XLA:CPU runs as a float32 product after converting the operand: no faster than float32.)
In float32 `mixed_matmul` is `jnp.dot`.

Every form is tested against flax's layers, forward and gradients, in both dtypes
(tests/test_autoencoder.py).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

CONV_IMPLS = ("auto", "xla", "matmul")


def resolve_conv_impl(impl: str, backend: str | None = None) -> str:
  """'auto' -> 'matmul' on the CPU backend, 'xla' on GPU/TPU; explicit values pass through."""
  if impl != "auto":
    return impl
  return "matmul" if (backend or jax.default_backend()) == "cpu" else "xla"


# ------------------------------------------------------------------ padding and rearrangement
def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
  """(before, after) padding of a 'SAME' convolution along one dimension (as lax computes it)."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


def conv_transpose_same_padding(kernel: int, stride: int) -> int:
  """Leading padding of `lax.conv_transpose(..., padding='SAME')` along one dimension."""
  pad_len = kernel + stride - 2
  return kernel - 1 if stride > kernel - 1 else int(np.ceil(pad_len / 2))


def space_to_depth(x: jax.Array, block=(2, 2)) -> jax.Array:
  """[..., H, W, C] -> [..., H/bh, W/bw, bh*bw*C]; channel index = (row in block, col, c)."""
  *batch, h, w, c = x.shape
  bh, bw = block
  x = x.reshape(*batch, h // bh, bh, w // bw, bw, c)
  x = jnp.swapaxes(x, -4, -3)                           # [..., H/bh, W/bw, bh, bw, C]
  return x.reshape(*batch, h // bh, w // bw, bh * bw * c)


def depth_to_space(x: jax.Array, block=(2, 2)) -> jax.Array:
  """The inverse of `space_to_depth`: [..., H, W, bh*bw*C] -> [..., H*bh, W*bw, C]."""
  *batch, h, w, c = x.shape
  bh, bw = block
  x = x.reshape(*batch, h, w, bh, bw, c // (bh * bw))
  x = jnp.swapaxes(x, -4, -3)                           # [..., H, bh, W, bw, C]
  return x.reshape(*batch, h * bh, w * bw, c // (bh * bw))


# ------------------------------------------------------------------ the product
def _dot(a, b, out_dtype):
  return jnp.dot(a, b, preferred_element_type=jnp.float32).astype(out_dtype)


@jax.custom_vjp
def _mixed_matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  return _dot(x, w.astype(x.dtype), x.dtype)


def _mixed_matmul_fwd(x, w):
  return _mixed_matmul(x, w), (x, w)


def _mixed_matmul_bwd(saved, g):
  x, w = saved
  return _dot(g, w.astype(x.dtype).T, x.dtype), _dot(x.T, g, w.dtype)


_mixed_matmul.defvjp(_mixed_matmul_fwd, _mixed_matmul_bwd)


def mixed_matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  """x [N, K] (the compute dtype) @ w [K, M] (a float32 parameter) -> [N, M] in x's dtype.

  bfloat16 x: operands in bfloat16, accumulation in float32, and the backward products likewise
  (dw accumulated and returned in float32). float32 x: exactly `jnp.dot(x, w)`.
  """
  if x.dtype == jnp.float32 and w.dtype == jnp.float32:
    return jnp.dot(x, w)
  return _mixed_matmul(x, w)


@jax.custom_vjp
def _add_bias_mixed(y: jax.Array, bias: jax.Array) -> jax.Array:
  return y + bias.astype(y.dtype)


def _add_bias_fwd(y, bias):
  return _add_bias_mixed(y, bias), bias


def _add_bias_bwd(bias, g):
  return g, jnp.sum(g.astype(jnp.float32), axis=tuple(range(g.ndim - 1))).astype(bias.dtype)


_add_bias_mixed.defvjp(_add_bias_fwd, _add_bias_bwd)


def add_bias(y: jax.Array, bias: jax.Array) -> jax.Array:
  """y [..., C] + bias [C] in y's dtype; with bfloat16 y the bias gradient (a sum over every
  position) accumulates in float32, where autodiff would sum bfloat16 values in bfloat16."""
  if y.dtype == bias.dtype:
    return y + bias
  return _add_bias_mixed(y, bias)


# ------------------------------------------------------------------ convolutions
def conv_as_matmul(x: jax.Array, kernel: jax.Array, strides=(1, 1), padding=((0, 0), (0, 0)),
                   side: str = "input") -> jax.Array:
  """`lax.conv_general_dilated(x, kernel, strides, padding)` (NHWC, HWIO) as a matmul.

  x: [B, H, W, Cin]; kernel: [kh, kw, Cin, Cout]; padding: ((top, bottom), (left, right)).
  Returns [B, Ho, Wo, Cout] in x's dtype. side: 'input' (im2col: [B*Ho*Wo, kh*kw*Cin] @
  [kh*kw*Cin, Cout]; any stride) or 'output' (stride 1 only: [B*H*W, Cin] @ [Cin, kh*kw*Cout],
  then the kh*kw shifted slices are summed; cheaper when Cout is small).
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
    return mixed_matmul(patches, kernel.reshape(kh * kw * cin, cout)).reshape(b, ho, wo, cout)
  if side != "output" or tuple(strides) != (1, 1):
    raise ValueError(f"conv_as_matmul: side={side!r} with strides={strides} is not supported; "
                     "use side='input' for strided convolutions.")
  # z[b, m, n, i, j] = x[b, m, n] @ kernel[i, j]; output (p, q) sums z[p + i - pt, q + j - pl, i, j]
  # (zero outside the grid: z is padded by kh - 1, kw - 1 on each side).
  z = mixed_matmul(x.reshape(b * h * w, cin),
                   kernel.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout))
  z = jnp.pad(z.reshape(b, h, w, kh, kw, cout), ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1),
                                                 (0, 0), (0, 0), (0, 0)))
  out = None
  for i in range(kh):
    for j in range(kw):
      top, left = kh - 1 + i - pt, kw - 1 + j - pl     # row p reads z row p + i - pt
      part = z[:, top:top + ho, left:left + wo, i, j, :]
      out = part if out is None else out + part
  return out


def xla_conv(x: jax.Array, kernel: jax.Array, strides, padding) -> jax.Array:
  """The plain form: `lax.conv_general_dilated` (NHWC, HWIO) in x's dtype."""
  return jax.lax.conv_general_dilated(x, kernel.astype(x.dtype), window_strides=strides,
                                      padding=padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))


# ------------------------------------------------------------------ transposed convolutions
def transposed_conv_patches(y: jax.Array, kernel_size, strides, in_size) -> jax.Array:
  """The adjoint of a transposed convolution's scatter: [B, sh*H, sw*W, C] -> [B, H, W, kh*kw*C].

  Entry (m, n, i, j, c) is y[sh*m + ph - i, sw*n + pw - j, c] (zero outside), ph, pw the 'SAME'
  paddings: the output pixels that input pixel (m, n) reaches through tap (i, j). One strided
  slice per tap and a concatenation (im2col).
  """
  (kh, kw), (sh, sw), (h, w) = kernel_size, strides, in_size
  ph, pw = conv_transpose_same_padding(kh, sh), conv_transpose_same_padding(kw, sw)
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
  ph, pw = conv_transpose_same_padding(kh, sh), conv_transpose_same_padding(kw, sw)
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

  x: [B, H, W, Cin]; kernel: [kh, kw, Cin, Cout] -> [B, sh * H, sw * W, Cout] in x's dtype.
  Every input pixel's kh * kw contributions come from one [B*H*W, Cin] @ [Cin, kh*kw*Cout]
  product: no zero taps (the sub-pixel form multiplies by (ceil(k/s) s / k)^2 = 16/9 more for
  k=3, s=2), then `scatter_transposed_conv_taps` places them.
  """
  b, h, w, cin = x.shape
  kh, kw, _, cout = kernel.shape
  z = mixed_matmul(x.reshape(b * h * w, cin),
                   kernel.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout))
  return scatter_transposed_conv_taps(z.reshape(b, h, w, kh * kw * cout), (kh, kw),
                                      tuple(strides))


def subpixel_taps(kernel: int, stride: int) -> tuple[np.ndarray, int, int]:
  """Which transposed-kernel tap feeds each (output phase, input offset) along one dimension.

  Output o = stride * m + p of the transposed convolution reads input m + d through tap j when
  p + j - pad = stride * d. Returns taps [stride, offsets] (index `kernel` = no tap, a zero) and the
  padding (before, after) of the stride-1 convolution over offsets d_min..d_max.
  """
  pad = conv_transpose_same_padding(kernel, stride)
  pairs = [(p, (p + j - pad) // stride, j) for p in range(stride) for j in range(kernel)
           if (p + j - pad) % stride == 0]
  d_min = min(d for _, d, _ in pairs)
  d_max = max(d for _, d, _ in pairs)
  taps = np.full((stride, d_max - d_min + 1), kernel, np.int32)
  for p, d, j in pairs:
    taps[p, d - d_min] = j
  return taps, -d_min, d_max


def conv_transpose_subpixel(x: jax.Array, kernel: jax.Array, strides) -> jax.Array:
  """`nn.ConvTranspose(strides=s, padding='SAME')` as one stride-1 XLA convolution with s*s*Cout
  output channels (the kernel's taps regrouped per output phase, zeros where a phase has none),
  then depth-to-space. x: [B, H, W, Cin]; kernel: [kh, kw, Cin, Cout] -> [B, sh*H, sw*W, Cout]."""
  kh, kw, cin, cout = kernel.shape
  sh, sw = strides
  taps_h, pad_h0, pad_h1 = subpixel_taps(kh, sh)
  taps_w, pad_w0, pad_w1 = subpixel_taps(kw, sw)
  padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # the zero tap
  # [ph, dh, pw, dw, in, out] -> [dh, dw, in, ph, pw, out]: an exact gather, no arithmetic.
  sub = padded[taps_h[:, :, None, None], taps_w[None, None, :, :]]
  sub = sub.transpose(1, 3, 4, 0, 2, 5).reshape(taps_h.shape[1], taps_w.shape[1], cin,
                                                sh * sw * cout)
  y = xla_conv(x, sub, (1, 1), ((pad_h0, pad_h1), (pad_w0, pad_w1)))
  return depth_to_space(y, (sh, sw))
