"""The RVQ-VAE: Flax encoder and decoder around the pure residual quantizer.

Network parameters live in a Flax params pytree; codebooks live in a separate `rvq.CodebookState`
(they learn by EMA, not by gradients), so `forward` takes both explicitly.
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from rvq_jax import audio
from rvq_jax.models import autoencoder
from rvq_jax.models import conv_kernels
from rvq_jax.models import rvq

DECODERS = ("deterministic", "gaussian")


class VQVAE(nn.Module):
  """Encoder and decoder networks. `encode`: [B, H, W, 2] -> [B, h, w, D]; `decode`: back.

  With `decoder='gaussian'` the decoder outputs [B, H, W, 4]: per-pixel mean (2) and raw log-scale (2).
  """
  encoder_features: tuple[int, ...]
  latent_dim: int
  kernel_size: int
  decoder: str
  subpixel_decoder: bool
  out_channels: int = 2
  conv_impl: str = "xla"
  compute_dtype: str = "float32"
  fold_rows: int = 1

  def setup(self):
    dtype = jnp.dtype(self.compute_dtype)
    self.encoder = autoencoder.Encoder(self.encoder_features, self.latent_dim, self.kernel_size,
                                       self.conv_impl, dtype, self.fold_rows)
    channels = self.out_channels * (2 if self.decoder == "gaussian" else 1)
    self.decoder_net = autoencoder.Decoder(tuple(reversed(self.encoder_features)), channels,
                                           self.kernel_size, self.subpixel_decoder, self.conv_impl,
                                           dtype, self.fold_rows)

  def encode(self, x):
    return self.encoder(x)

  def decode(self, z):
    return self.decoder_net(z)

  def __call__(self, x):
    return self.decode(self.encode(x))


def make_model(config) -> VQVAE:
  m = config.model
  return VQVAE(encoder_features=tuple(m.encoder_features), latent_dim=m.latent_dim,
               kernel_size=m.kernel_size, decoder=m.decoder,
               subpixel_decoder=m.subpixel_decoder,
               conv_impl=conv_kernels.resolve_conv_impl(m.conv_impl),
               compute_dtype=m.compute_dtype, fold_rows=m.get("fold_rows", 1))


def downsampling(config) -> int:
  """Spectrogram frames per latent column: every encoder layer halves both sides (a latent row
  covers this many bins times `model.fold_rows`)."""
  return 2 ** len(config.model.encoder_features)


def latent_rows(config) -> int:
  """Rows h of the latent grid [h, w, D] of a spectrogram of `audio`'s bins: every latent vector
  of a column codes bins / h of them (all of them when the latent runs along time alone)."""
  bins = audio.spectrogram_shape(config.data.max_samples, config.audio)[0]
  return bins // downsampling(config) // config.model.get("fold_rows", 1)


class ForwardOutput(NamedTuple):
  """`forward`'s results for a batch of B spectrograms.

  Attributes:
    mean: float32 [B, H, W, 2], the reconstruction (the Gaussian's mean for model3).
    log_scale: float32 [B, H, W, 2] per-pixel log std of the Gaussian decoder, or None.
    latents: float32 [B, h, w, D] encoder outputs.
    quant: `rvq.QuantizeOutput` over the B*h*w latent vectors.
  """
  mean: jax.Array
  log_scale: jax.Array | None
  latents: jax.Array
  quant: rvq.QuantizeOutput


def split_decoder_output(out: jax.Array, config):
  """Decoder output -> (mean [.., 2], log_scale [.., 2] or None); log-scale floored smoothly."""
  if config.model.decoder == "gaussian":
    mean, raw = jnp.split(out, 2, axis=-1)
    floor = config.model.min_log_scale
    return mean, floor + jax.nn.softplus(raw - floor)
  return out, None


def autoencode(model, params, embed: jax.Array, x, num_levels=None, candidate_idx=None,
               block_rows: int | None = None, statistic_groups: int = 1):
  """Encode, residual-quantize with codebooks `embed` [L, K, D], decode: for any Flax module with
  `encode(x) -> latents [B, ..., D]` and `decode(z)` methods.

  Returns:
    (decoded float32, latents float32 [B, ..., D], `rvq.QuantizeOutput` over the latent vectors).
  """
  latents = model.apply(params, x, method="encode").astype(jnp.float32)
  flat = latents.reshape(-1, latents.shape[-1])
  quant = rvq.quantize(embed, flat, num_levels, candidate_idx, block_rows, statistic_groups)
  decoded = model.apply(params, quant.quantized.reshape(latents.shape), method="decode")
  return decoded.astype(jnp.float32), latents, quant


def forward(model: VQVAE, params, embed: jax.Array, x: jax.Array, config,
            num_levels=None, candidate_idx=None, statistic_groups=None) -> ForwardOutput:
  """`autoencode` with this project's config and decoder output. x: [B, H, W, 2].

  statistic_groups: overrides `config.rvq.statistic_groups` (a pmap step passes its share).
  """
  decoded, latents, quant = autoencode(model, params, embed, x, num_levels, candidate_idx,
                                       config.rvq.block_rows,
                                       statistic_groups or config.rvq.statistic_groups)
  mean, log_scale = split_decoder_output(decoded, config)
  return ForwardOutput(mean, log_scale, latents, quant)


def reconstruct(model: VQVAE, params, embed: jax.Array, x: jax.Array, config, rng=None,
                num_levels=None) -> jax.Array:
  """Reconstructed spectrograms [B, H, W, 2]: the mean, or a sample when
  `config.model.sample_reconstruction` (Gaussian decoder, needs `rng`)."""
  out = forward(model, params, embed, x, config, num_levels)
  if out.log_scale is not None and config.model.sample_reconstruction:
    return out.mean + jnp.exp(out.log_scale) * jax.random.normal(rng, out.mean.shape)
  return out.mean


def encode_codes(model: VQVAE, params, embed: jax.Array, x: jax.Array,
                 num_levels=None, block_rows: int | None = None) -> jax.Array:
  """Integer codes [B, h, w, L] of spectrograms x [B, H, W, 2]."""
  latents = model.apply(params, x, method=VQVAE.encode).astype(jnp.float32)
  quant = rvq.quantize(embed, latents.reshape(-1, latents.shape[-1]), num_levels,
                       block_rows=block_rows)
  return quant.codes.reshape(latents.shape[:-1] + (embed.shape[0],))


def decode_from_codes(model: VQVAE, params, embed: jax.Array, codes: jax.Array, config,
                      num_levels=None) -> jax.Array:
  """Spectrograms [B, H, W, 2] (mean) from codes [B, h, w, L']."""
  z = rvq.decode_codes(embed, codes, num_levels)
  out = model.apply(params, z, method=VQVAE.decode)
  return split_decoder_output(out.astype(jnp.float32), config)[0]
