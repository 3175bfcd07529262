"""Config checks that run before anything compiles, naming the field at fault."""

from __future__ import annotations

from rvq_jax import audio
from rvq_jax import data
from rvq_jax.models import autoencoder
from rvq_jax.models import vqvae
from rvq_jax.train import parallel

_INITS = ("uniform", "glorot_normal", "kmeans")


def validate_config(config, num_devices: int) -> None:
  """Raises ValueError naming the offending field; returns None for a usable config."""
  data.validate_data_config(config.data)
  audio.validate_audio_config(config.audio)
  r, m, t = config.rvq, config.model, config.train
  checks = [
      (r.levels >= 1, f"rvq.levels={r.levels} must be at least 1."),
      (r.codes >= 2, f"rvq.codes={r.codes} must be at least 2."),
      (0.0 <= r.decay < 1.0, f"rvq.decay={r.decay} must be in [0, 1)."),
      (r.init in _INITS, f"rvq.init={r.init!r} is unknown; choose one of {_INITS}."),
      (not r.dropout or 1 <= r.dropout_min_levels <= r.levels,
       f"rvq.dropout_min_levels={r.dropout_min_levels} must be in 1..rvq.levels={r.levels}."),
      (r.dead_code_steps >= 0, "rvq.dead_code_steps must be >= 0 (0 turns restarts off)."),
      (m.decoder in vqvae.DECODERS,
       f"model.decoder={m.decoder!r} is unknown; choose one of {vqvae.DECODERS}."),
      (m.conv_impl in autoencoder.CONV_IMPLS,
       f"model.conv_impl={m.conv_impl!r} is unknown; choose one of {autoencoder.CONV_IMPLS}."),
      (r.block_rows >= 1, f"rvq.block_rows={r.block_rows} must be positive."),
      (r.statistic_groups >= 1, f"rvq.statistic_groups={r.statistic_groups} must be positive."),
      (m.latent_dim >= 1, f"model.latent_dim={m.latent_dim} must be positive."),
      (len(m.encoder_features) >= 1, "model.encoder_features needs at least one layer."),
      (t.batch_size >= 1, f"train.batch_size={t.batch_size} must be positive."),
      (t.batch_size % num_devices == 0,
       f"train.batch_size={t.batch_size} is not divisible by the {num_devices} devices; use a "
       "multiple of the device count."),
      (t.eval_batch_size >= 1, "train.eval_batch_size must be positive."),
      (t.num_epochs >= 1, f"train.num_epochs={t.num_epochs} must be at least 1."),
      (t.log_every_steps >= 1 and t.checkpoint_every_steps >= 1,
       "train.log_every_steps and train.checkpoint_every_steps must be positive."),
      (config.parallel.mode in parallel.MODES,
       f"parallel.mode={config.parallel.mode!r} is unknown; choose one of {parallel.MODES}."),
  ]
  for ok, message in checks:
    if not ok:
      raise ValueError(f"Invalid config: {message}")
  bins, frames, _ = audio.spectrogram_shape(config.data.max_samples, config.audio)
  factor = 2 ** len(m.encoder_features)
  if bins % factor or frames % factor:
    raise ValueError(
        f"Invalid config: the spectrogram is {bins}x{frames} (data.max_samples, audio.frame_length, "
        f"audio.hop_length) but model.encoder_features has {len(m.encoder_features)} stride-2 "
        f"layers, which need both sides divisible by {factor}; the latent grid would not match.")
  if r.init == "kmeans" and t.batch_size * bins * frames // factor**2 < r.codes:
    raise ValueError(f"Invalid config: rvq.init='kmeans' needs at least rvq.codes={r.codes} latent "
                     "vectors in the first batch; raise train.batch_size.")
