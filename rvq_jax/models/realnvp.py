"""RealNVP prior (Dinh et al., 2017) on Distrax, for [H, W, C] latent images.

The flow is written in the data -> latent direction ("normalising"): per scale, `checkerboard`
affine couplings, a squeeze (space-to-depth), `channel` couplings, then half of the channels are
factored out (left as they are, to the base) and the other half go through the next scale; the
last scale has `final` checkerboard couplings. Every scale ends by undoing its squeeze, so each
scale, and the whole flow, maps [H, W, C] to [H, W, C]; the base distribution lives on that shape.

Distrax supplies the couplings (`MaskedCoupling` + `ScalarAffine`), `Block`, `Chain`, `Inverse`,
`UnconstrainedAffine` (the optional 1x1 convolution), `Transformed` and the distributions; written
here is what Distrax lacks: `Squeeze`, `FactorOut`, and `ActNorm` (a `ScalarAffine` whose
per-channel parameters are initialised from the first batch). Parameters live in a Flax params
pytree; `FlowPrior` builds the Distrax objects inside `apply`, so none crosses a `jit` or `pmap`.

Bits per dimension of a target x with D = H * W * C dimensions:
    bits/dim = -log p(x) / (D * ln 2),
    log p(x) = log p_base(f(x)) + log |det df/dx|,
where f includes the fixed standardisation, so the number is a density of x itself.
"""

from __future__ import annotations

from typing import Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rvq_jax.models import conv_kernels

NUM_CLASSES = 10
# Classifier-free guidance (Ho & Salimans, 2022): with `null_class`, label NULL_LABEL means "no
# digit" (trained by dropping labels: prior.label_dropout), the flow's unconditional density.
NULL_LABEL = NUM_CLASSES
# Glow's coupling scale is sigmoid(h + 2); dividing by sigmoid(2) makes h = 0 the identity.
_GLOW_SCALE_OFFSET = 2.0
# ActNorm's data-dependent init leaves channels with a smaller std than this unscaled.
_ACTNORM_MIN_STD = 1e-6


class Squeeze(distrax.Bijector):
  """Space-to-depth [..., H, W, C] -> [..., H/2, W/2, 4C]; a permutation, so log-det 0."""

  def __init__(self):
    super().__init__(event_ndims_in=3, is_constant_jacobian=True)

  def forward_and_log_det(self, x):
    return conv_kernels.space_to_depth(x), jnp.zeros(x.shape[:-3], x.dtype)

  def inverse_and_log_det(self, y):
    return conv_kernels.depth_to_space(y), jnp.zeros(y.shape[:-3], y.dtype)


class FactorOut(distrax.Bijector):
  """Leaves the first half of the channels as they are (factored out to the base distribution)
  and applies `inner` (a shape-preserving bijector on [..., H, W, C/2]) to the second half."""

  def __init__(self, inner: distrax.Bijector):
    super().__init__(event_ndims_in=3)
    self._inner = inner

  def forward_and_log_det(self, x):
    kept, rest = jnp.split(x, 2, axis=-1)
    rest, log_det = self._inner.forward_and_log_det(rest)
    return jnp.concatenate([kept, rest], axis=-1), log_det

  def inverse_and_log_det(self, y):
    kept, rest = jnp.split(y, 2, axis=-1)
    rest, log_det = self._inner.inverse_and_log_det(rest)
    return jnp.concatenate([kept, rest], axis=-1), log_det


class ActNorm(distrax.Bijector):
  """Per-channel y = x * exp(log_scale) + shift over [..., H, W, C] (Glow's actnorm).

  `params_fn(x)` returns (shift [C], log_scale [C]); it sees the layer's input only so that a
  Flax module can initialise them from the first batch (`ActNormParams`).
  """

  def __init__(self, params_fn):
    super().__init__(event_ndims_in=3)
    self._params_fn = params_fn

  def _affine(self, x):
    shift, log_scale = self._params_fn(x)
    return distrax.Block(distrax.ScalarAffine(shift, log_scale=log_scale), 3)

  def forward_and_log_det(self, x):
    return self._affine(x).forward_and_log_det(x)

  def inverse_and_log_det(self, y):
    return self._affine(y).inverse_and_log_det(y)


def standardization(mean: jax.Array, std: jax.Array) -> distrax.Bijector:
  """The fixed per-channel map x -> (x - mean) / std over [..., H, W, C] (log-det counted)."""
  log_scale = -jnp.log(std)
  return distrax.Block(distrax.ScalarAffine(-mean / std, log_scale=log_scale), 3)


def checkerboard_mask(shape: Sequence[int], parity: int) -> np.ndarray:
  """bool [H, W, C]: True (passed through, conditioned on) where (row + col) % 2 == parity."""
  h, w, c = shape
  board = (np.add.outer(np.arange(h), np.arange(w)) % 2) == parity
  return np.broadcast_to(board[:, :, None], (h, w, c)).copy()


def channel_mask(shape: Sequence[int], parity: int) -> np.ndarray:
  """bool [H, W, C]: True on the first half of the channels (parity 0) or the second (1)."""
  h, w, c = shape
  first = np.arange(c) < c // 2
  return np.broadcast_to((first if parity == 0 else ~first)[None, None, :], (h, w, c)).copy()


class ResNetConditioner(nn.Module):
  """Conv ResNet [B, H, W, C_in] -> [B, H, W, out_channels]; the last conv starts at zero."""
  hidden: int
  num_blocks: int
  out_channels: int
  kernel_size: int

  @nn.compact
  def __call__(self, x):
    k = (self.kernel_size, self.kernel_size)
    h = nn.Conv(self.hidden, k, name="input")(x)
    for i in range(self.num_blocks):
      r = nn.Conv(self.hidden, k, name=f"block{i}_a")(nn.relu(h))
      h = h + nn.Conv(self.hidden, k, name=f"block{i}_b")(nn.relu(r))
    return nn.Conv(self.out_channels, k, kernel_init=nn.initializers.zeros, name="output")(
        nn.relu(h))


class ActNormParams(nn.Module):
  """(shift [C], log_scale [C]) of an actnorm layer, initialised so that the first batch `x`
  [B, H, W, C] comes out with zero mean and unit std per channel (constant channels: scale 1)."""

  @nn.compact
  def __call__(self, x):
    def init_log_scale(_):
      std = jnp.std(x, axis=tuple(range(x.ndim - 1)))
      return -jnp.log(jnp.where(std > _ACTNORM_MIN_STD, std, 1.0))

    log_scale = self.param("log_scale", init_log_scale)
    shift = self.param("shift", lambda _: -jnp.mean(x, axis=tuple(range(x.ndim - 1))) *
                       jnp.exp(log_scale))
    return shift, log_scale


class AffineCoupling(nn.Module):
  """A `distrax.MaskedCoupling` with an affine inner bijector and a ResNet conditioner.

  The conditioner sees the masked input plus the mask as an extra channel (Distrax passes only
  `where(mask, x, 0)`, which cannot tell a masked-out entry from a zero) and, with
  `label_conditioning`, the digit as one-hot channels (ten, or eleven with `null_class`: the
  last one "no digit"). The log-scale is bounded: 'tanh': learned per-channel multiplier x
  tanh(h) (Real NVP's code); 'sigmoid': log of sigmoid(h + 2) / sigmoid(2) (Glow's, shifted so
  that h = 0 is the identity).

  With `guidance` w != 0 (sampling only; the density is then no longer normalised), the shift
  and log-scale are classifier-free guided: (1 + w) f(x, digit) - w f(x, no digit).
  """
  mask: np.ndarray            # bool [H, W, C]
  hidden: int
  num_blocks: int
  kernel_size: int
  log_scale_form: str
  null_class: bool = False
  guidance: float = 0.0

  def setup(self):
    channels = self.mask.shape[-1]
    self.net = ResNetConditioner(self.hidden, self.num_blocks, 2 * channels, self.kernel_size)
    if self.log_scale_form == "tanh":
      self.tanh_scale = self.param("tanh_scale", nn.initializers.ones, (channels,))

  def _conditioner(self, masked_x, labels=None):
    if labels is None or self.guidance == 0:
      return self._shift_and_log_scale(masked_x, labels)
    conditional = self._shift_and_log_scale(masked_x, labels)
    unconditional = self._shift_and_log_scale(masked_x, jnp.full_like(labels, NULL_LABEL))
    return tuple((1 + self.guidance) * c - self.guidance * u
                 for c, u in zip(conditional, unconditional))

  def _shift_and_log_scale(self, masked_x, labels=None):
    mask_channel = jnp.broadcast_to(jnp.asarray(self.mask[..., :1], masked_x.dtype),
                                    masked_x.shape[:-1] + (1,))
    if not np.all(self.mask == self.mask[..., :1]):   # channel mask: the channel is all ones
      mask_channel = jnp.ones_like(mask_channel)
    inputs = [masked_x, mask_channel]
    if labels is not None:   # [B] digits -> [B, H, W, classes], the same at every position
      classes = NUM_CLASSES + int(self.null_class)
      one_hot = jax.nn.one_hot(labels, classes, dtype=masked_x.dtype)
      inputs.append(jnp.broadcast_to(one_hot[:, None, None, :],
                                     masked_x.shape[:-1] + (classes,)))
    shift, raw = jnp.split(self.net(jnp.concatenate(inputs, -1)), 2, axis=-1)
    if self.log_scale_form == "tanh":
      log_scale = self.tanh_scale * jnp.tanh(raw)
    else:
      log_scale = (jax.nn.log_sigmoid(raw + _GLOW_SCALE_OFFSET)
                   - jax.nn.log_sigmoid(_GLOW_SCALE_OFFSET))
    return shift, log_scale

  def __call__(self, labels=None) -> distrax.Bijector:
    """The coupling bijector; `labels` [B] (or None) are closed over by its conditioner."""
    return distrax.MaskedCoupling(
        mask=jnp.asarray(self.mask), conditioner=lambda x: self._conditioner(x, labels),
        bijector=lambda p: distrax.ScalarAffine(shift=p[0], log_scale=p[1]))


class FlowStep(nn.Module):
  """[actnorm] -> [1x1 invertible conv] -> affine coupling, in the data -> latent direction."""
  mask: np.ndarray
  hidden: int
  num_blocks: int
  kernel_size: int
  log_scale_form: str
  actnorm: bool
  invertible_1x1: bool
  null_class: bool = False
  guidance: float = 0.0

  def setup(self):
    self.coupling = AffineCoupling(self.mask, self.hidden, self.num_blocks, self.kernel_size,
                                   self.log_scale_form, self.null_class, self.guidance)
    if self.actnorm:
      self.norm = ActNormParams()
    if self.invertible_1x1:
      c = self.mask.shape[-1]
      self.mixing = self.param("mixing", nn.initializers.orthogonal(), (c, c))

  def __call__(self, labels=None) -> list[distrax.Bijector]:
    """Bijectors in the order they are applied to data (`labels` [B]: see AffineCoupling)."""
    layers = []
    if self.actnorm:
      layers.append(ActNorm(self.norm))
    if self.invertible_1x1:
      c = self.mask.shape[-1]
      layers.append(distrax.Block(distrax.UnconstrainedAffine(self.mixing, jnp.zeros(c)), 2))
    layers.append(self.coupling(labels))
    return layers


def _chain(layers_in_data_order: list[distrax.Bijector]) -> distrax.Bijector:
  # distrax.Chain applies its last element first.
  return distrax.Chain(list(reversed(layers_in_data_order)))


class FlowPrior(nn.Module):
  """RealNVP density over latent images [B, H, W, C], optionally conditioned on a digit label.

  Attributes:
    shape: (H, W, C) of one target; H and W divisible by 2 ** (num_scales - 1).
    num_scales, checkerboard, channel, final: flow layout (see the module docstring).
    base: 'gaussian' (N(0, I)), 'mixture' (a learned per-dimension mixture of Gaussians) or
      'class_conditional' (one learned mean and log-scale image per digit).
    label_conditioning: every coupling's conditioner also sees the digit (one-hot channels), so
      the whole flow, not only the base, depends on the label.
    null_class: labels may be NULL_LABEL ("no digit", for classifier-free guidance): one more
      one-hot channel and, for the class base, one more mean and scale image.
    guidance: classifier-free guidance weight w of `sample` (0: none): the couplings' shift and
      log-scale and the class base's mean become (1 + w) x conditional - w x unconditional.
  """
  shape: tuple[int, int, int]
  num_scales: int
  checkerboard: int
  channel: int
  final: int
  hidden: int
  num_blocks: int
  kernel_size: int
  log_scale_form: str
  actnorm: bool
  invertible_1x1: bool
  base: str
  mixture_components: int
  label_conditioning: bool = False
  null_class: bool = False
  guidance: float = 0.0

  def setup(self):
    steps, (h, w, c) = [], self.shape
    for scale in range(self.num_scales):
      last = scale == self.num_scales - 1
      kw = dict(hidden=self.hidden, num_blocks=self.num_blocks, kernel_size=self.kernel_size,
                log_scale_form=self.log_scale_form, actnorm=self.actnorm,
                invertible_1x1=self.invertible_1x1, null_class=self.null_class,
                guidance=self.guidance)
      board = [FlowStep(checkerboard_mask((h, w, c), i % 2), **kw)
               for i in range(self.final if last else self.checkerboard)]
      chan = [] if last else [FlowStep(channel_mask((h // 2, w // 2, 4 * c), i % 2), **kw)
                              for i in range(self.channel)]
      steps.append((board, chan))
      h, w, c = h // 2, w // 2, 2 * c
    self.scales = steps
    if self.base == "mixture":
      m = self.mixture_components
      self.mix_logits = self.param("mix_logits", nn.initializers.zeros, self.shape + (m,))
      self.mix_loc = self.param("mix_loc", lambda _, s: jnp.broadcast_to(
          jnp.linspace(-1.0, 1.0, m), s), self.shape + (m,))
      self.mix_log_scale = self.param("mix_log_scale", nn.initializers.zeros, self.shape + (m,))
    elif self.base == "class_conditional":
      classes = NUM_CLASSES + int(self.null_class)
      self.class_loc = self.param("class_loc", nn.initializers.zeros, (classes,) + self.shape)
      self.class_log_scale = self.param("class_log_scale", nn.initializers.zeros,
                                        (classes,) + self.shape)

  def data_to_latent(self, mean=None, std=None, labels=None) -> distrax.Bijector:
    """The normalising bijector [B, H, W, C] -> [B, H, W, C]; with `mean`, `std` [C], a fixed
    standardisation comes first. `labels` [B] are required with `label_conditioning`."""
    if self.label_conditioning and labels is None:
      raise ValueError("FlowPrior(label_conditioning=True) needs the labels of its inputs.")
    labels = labels if self.label_conditioning else None
    inner = None
    for board, chan in reversed(self.scales):
      layers = [b for s in board for b in s(labels)]
      if chan:
        layers.append(Squeeze())
        layers += [b for s in chan for b in s(labels)]
        layers.append(FactorOut(inner))
        layers.append(distrax.Inverse(Squeeze()))
      inner = _chain(layers)
    if mean is not None:
      inner = _chain([standardization(mean, std), inner])
    return inner

  def base_distribution(self, labels: jax.Array, temperature: float = 1.0) -> distrax.Distribution:
    """The base over [B, H, W, C] for B = len(labels) (labels are used by the class base only)."""
    batch = labels.shape[0]
    full = (batch,) + self.shape
    if self.base == "gaussian":
      dist = distrax.Normal(jnp.zeros(full), temperature * jnp.ones(full))
    elif self.base == "mixture":
      dist = distrax.MixtureSameFamily(
          distrax.Categorical(logits=jnp.broadcast_to(self.mix_logits, full + (
              self.mixture_components,))),
          distrax.Normal(jnp.broadcast_to(self.mix_loc, full + (self.mixture_components,)),
                         temperature * jnp.exp(self.mix_log_scale)))
    elif self.base == "class_conditional":
      loc = self.class_loc[labels]
      if self.guidance:
        loc = loc + self.guidance * (loc - self.class_loc[NULL_LABEL])
      dist = distrax.Normal(loc, temperature * jnp.exp(self.class_log_scale[labels]))
    else:
      raise ValueError(f"Unknown prior.base {self.base!r}")
    return distrax.Independent(dist, reinterpreted_batch_ndims=3)

  def distribution(self, labels, mean=None, std=None, temperature=1.0) -> distrax.Transformed:
    """p(x | labels) over [B, H, W, C] as a Distrax `Transformed` (sampling runs the flow's
    inverse)."""
    return distrax.Transformed(self.base_distribution(labels, temperature),
                               distrax.Inverse(self.data_to_latent(mean, std, labels)))

  def log_prob(self, x, labels, mean=None, std=None):
    """log p(x) in nats, [B], for x [B, H, W, C]."""
    return self.distribution(labels, mean, std).log_prob(x)

  def sample(self, rng, labels, mean=None, std=None, temperature=1.0):
    """[B, H, W, C] samples, one per label."""
    return self.distribution(labels, mean, std, temperature).sample(seed=rng)

  def forward_and_log_det(self, x, mean=None, std=None, labels=None):
    """(latent [B, H, W, C], log|det d latent / dx| [B]); for tests and inspection."""
    return self.data_to_latent(mean, std, labels).forward_and_log_det(x)

  def inverse(self, z, mean=None, std=None, labels=None):
    return self.data_to_latent(mean, std, labels).inverse(z)


def make_prior(prior_config, shape: tuple[int, int, int], guidance: float = 0.0) -> FlowPrior:
  """FlowPrior from `config.prior` for targets of `shape` (H, W, C); `guidance`: the
  classifier-free guidance weight its `sample` uses (the parameters do not depend on it)."""
  p = prior_config
  return FlowPrior(shape=tuple(int(s) for s in shape), num_scales=p.num_scales,
                   checkerboard=p.checkerboard_couplings, channel=p.channel_couplings,
                   final=p.final_couplings, hidden=p.hidden, num_blocks=p.res_blocks,
                   kernel_size=p.kernel_size, log_scale_form=p.log_scale, actnorm=p.actnorm,
                   invertible_1x1=p.invertible_1x1, base=p.base,
                   mixture_components=p.mixture_components,
                   label_conditioning=p.label_conditioning,
                   null_class=p.get("label_dropout", 0.0) > 0, guidance=guidance)


def is_conditional(prior_config) -> bool:
  """Whether a prior from `config.prior` models p(x | digit) (a class base or label-conditioned
  couplings), so that samples can be asked for a digit."""
  return prior_config.base == "class_conditional" or prior_config.label_conditioning


def bits_per_dim(log_prob: jax.Array, dims: int) -> jax.Array:
  """-log p / (D ln 2): log_prob in nats over D dimensions -> bits per dimension."""
  return -log_prob / (dims * np.log(2.0))


def discrete_bits_per_dim(log_prob: jax.Array, dims: int, cell_width) -> jax.Array:
  """Upper bound on -log2 P(x) / D for a discrete x on a grid of cell width `cell_width`, from the
  density's log p(x + u) at x plus one uniform draw u over x's cell (P(x) = the density's mass in
  the cell; Jensen: -log2 P(x) <= E_u[-log2 p(x + u)] - D log2(cell_width))."""
  return bits_per_dim(log_prob, dims) - jnp.log2(cell_width)
