"""Config checks that run before anything compiles, naming the field at fault."""

from __future__ import annotations

from rvq_jax import audio
from rvq_jax import data
from rvq_jax import errors
from rvq_jax.models import conv_kernels
from rvq_jax.models import vqvae
from rvq_jax.train import parallel

_COMPUTE_DTYPES = ("float32", "bfloat16")
_INITS = ("uniform", "glorot_normal", "kmeans")


def _raise_first(checks) -> None:
  for ok, message in checks:
    if not ok:
      raise errors.ConfigError(f"Invalid config: {message}")


def optimizer_checks(config) -> list:
  """Checks of the `optim` section (Adam), shared by the VQ-VAE and the prior."""
  o = config.optim
  return [
      (o.learning_rate > 0, f"optim.learning_rate={o.learning_rate} must be positive."),
      (0 <= o.b1 < 1, f"optim.b1={o.b1} must be in [0, 1)."),
      (0 <= o.b2 < 1, f"optim.b2={o.b2} must be in [0, 1)."),
      (o.warmup_steps >= 0, f"optim.warmup_steps={o.warmup_steps} must be >= 0."),
      (o.grad_clip_norm >= 0, f"optim.grad_clip_norm={o.grad_clip_norm} must be >= 0 (0: off)."),
      (o.schedule in ("constant", "cosine"),
       f"optim.schedule={o.schedule!r} must be 'constant' or 'cosine'."),
      (o.schedule != "cosine" or o.decay_steps > o.warmup_steps,
       f"optim.decay_steps={o.decay_steps} must exceed optim.warmup_steps={o.warmup_steps} with "
       "optim.schedule='cosine' (set it to the run's total steps)."),
      (0 <= o.final_lr_fraction <= 1,
       f"optim.final_lr_fraction={o.final_lr_fraction} must be in [0, 1]."),
  ]


def loop_checks(t, num_devices: int) -> list:
  """Checks of a `train` section (any model's loop)."""
  return [
      (t.batch_size >= 1, f"train.batch_size={t.batch_size} must be positive."),
      (t.batch_size % num_devices == 0,
       f"train.batch_size={t.batch_size} is not divisible by the {num_devices} devices; use a "
       "multiple of the device count."),
      (t.eval_batch_size >= 1, "train.eval_batch_size must be positive."),
      (t.num_epochs >= 1, f"train.num_epochs={t.num_epochs} must be at least 1."),
      (t.num_steps is None or t.num_steps >= 1, f"train.num_steps={t.num_steps} must be >= 1."),
      (t.log_every_steps >= 1 and t.checkpoint_every_steps >= 1,
       "train.log_every_steps and train.checkpoint_every_steps must be positive."),
      (t.keep_checkpoints >= 1, f"train.keep_checkpoints={t.keep_checkpoints} must be >= 1."),
  ]


def validate_classifier_config(config) -> None:
  """Raises ConfigError naming the field of `classifier` (and data/audio) that cannot work."""
  data.validate_data_config(config.data)
  audio.validate_audio_config(config.audio)
  c = config.classifier
  a = c.augment
  _raise_first([
      (c.learning_rate > 0, f"classifier.learning_rate={c.learning_rate} must be positive."),
      (c.weight_decay >= 0, f"classifier.weight_decay={c.weight_decay} must be >= 0."),
      (0 <= c.dropout < 1, f"classifier.dropout={c.dropout} must be in [0, 1)."),
      (c.log_eps > 0, f"classifier.log_eps={c.log_eps} must be > 0."),
      (c.num_epochs >= 1, f"classifier.num_epochs={c.num_epochs} must be at least 1."),
      (c.batch_size >= 1 and c.eval_batch_size >= 1,
       "classifier.batch_size and classifier.eval_batch_size must be positive."),
      (0 <= a.speed_range < 1, f"classifier.augment.speed_range={a.speed_range} must be in [0, 1)."),
      (a.max_shift_samples >= 0 and a.gain_db >= 0,
       "classifier.augment.max_shift_samples and classifier.augment.gain_db must be >= 0."),
      (0 <= a.noise_probability <= 1,
       f"classifier.augment.noise_probability={a.noise_probability} must be in [0, 1]."),
      (len(a.snr_db) == 2 and a.snr_db[0] <= a.snr_db[1],
       f"classifier.augment.snr_db={tuple(a.snr_db)} must be (low, high) with low <= high."),
      (config.eval.mu_law_bits >= 1 and config.eval.griffin_lim_iterations >= 1,
       "eval.mu_law_bits and eval.griffin_lim_iterations must be positive."),
      (len(c.features) >= 1 and min(c.features) >= 1,
       f"classifier.features={tuple(c.features)} needs at least one positive width."),
      (c.embedding_dim >= 1, f"classifier.embedding_dim={c.embedding_dim} must be positive."),
      (c.noise_examples >= 1, f"classifier.noise_examples={c.noise_examples} must be positive."),
  ])


def validate_config(config, num_devices: int) -> None:
  """Raises ConfigError naming the offending field; returns None for a usable config."""
  data.validate_data_config(config.data)
  audio.validate_audio_config(config.audio)
  r, m, t = config.rvq, config.model, config.train
  checks = optimizer_checks(config) + loop_checks(t, num_devices) + [
      (r.levels >= 1, f"rvq.levels={r.levels} must be at least 1."),
      (r.codes >= 2, f"rvq.codes={r.codes} must be at least 2."),
      (0.0 <= r.decay < 1.0, f"rvq.decay={r.decay} must be in [0, 1)."),
      (r.init in _INITS, f"rvq.init={r.init!r} is unknown; choose one of {_INITS}."),
      (not r.dropout or 1 <= r.dropout_min_levels <= r.levels,
       f"rvq.dropout_min_levels={r.dropout_min_levels} must be in 1..rvq.levels={r.levels}."),
      (r.dead_code_steps >= 0, "rvq.dead_code_steps must be >= 0 (0 turns restarts off)."),
      (m.decoder in vqvae.DECODERS,
       f"model.decoder={m.decoder!r} is unknown; choose one of {vqvae.DECODERS}."),
      (m.conv_impl in conv_kernels.CONV_IMPLS,
       f"model.conv_impl={m.conv_impl!r} is unknown; choose one of {conv_kernels.CONV_IMPLS}."),
      (m.compute_dtype in _COMPUTE_DTYPES,
       f"model.compute_dtype={m.compute_dtype!r} is unknown; choose one of {_COMPUTE_DTYPES}."),
      (r.block_rows >= 1, f"rvq.block_rows={r.block_rows} must be positive."),
      (r.statistic_groups >= 1, f"rvq.statistic_groups={r.statistic_groups} must be positive."),
      (m.latent_dim >= 1, f"model.latent_dim={m.latent_dim} must be positive."),
      (len(m.encoder_features) >= 1, "model.encoder_features needs at least one layer."),
      (config.parallel.mode in parallel.MODES,
       f"parallel.mode={config.parallel.mode!r} is unknown; choose one of {parallel.MODES}."),
      (r.eps > 0, f"rvq.eps={r.eps} must be > 0 (it keeps unused codes from dividing by zero)."),
      (r.init_count > 0, f"rvq.init_count={r.init_count} must be > 0."),
      (r.dead_code_steps == 0 or (r.restart_count > 0 and r.restart_candidates >= 1),
       "rvq.restart_count must be > 0 and rvq.restart_candidates >= 1 with dead-code restarts."),
      (r.uniform_scale > 0 or r.init != "uniform",
       f"rvq.uniform_scale={r.uniform_scale} must be > 0."),
      (r.statistic_groups % num_devices == 0,
       f"rvq.statistic_groups={r.statistic_groups} must be a multiple of the {num_devices} "
       "devices (so every device sums whole groups and all device counts agree)."),
      (config.loss.beta >= 0, f"loss.beta={config.loss.beta} must be >= 0."),
      (m.kernel_size >= 1, f"model.kernel_size={m.kernel_size} must be positive."),
      (min(m.encoder_features, default=1) >= 1, "model.encoder_features must be positive widths."),
  ]
  _raise_first(checks)
  bins, frames, _ = audio.spectrogram_shape(config.data.max_samples, config.audio)
  factor = 2 ** len(m.encoder_features)
  if bins % factor or frames % factor:
    raise errors.ConfigError(
        f"Invalid config: the spectrogram is {bins}x{frames} (data.max_samples, audio.frame_length, "
        f"audio.hop_length) but model.encoder_features has {len(m.encoder_features)} stride-2 "
        f"layers, which need both sides divisible by {factor}; the latent grid would not match.")
  positions = t.batch_size * bins * frames // factor**2
  if r.dead_code_steps > 0 and r.restart_candidates > positions:
    raise errors.ConfigError(
        f"Invalid config: rvq.restart_candidates={r.restart_candidates} exceeds the {positions} "
        "latent vectors of a batch (they are drawn without replacement); lower it.")
  if r.init == "kmeans" and positions < r.codes:
    raise errors.ConfigError(f"Invalid config: rvq.init='kmeans' needs at least rvq.codes={r.codes} latent "
                     "vectors in the first batch; raise train.batch_size.")
