"""Config checks, in one place: one function per config section, run for every mode before
anything compiles (`validate_config`), each failure a `ConfigError` naming the field at fault.

A config holds the sections its task needs (`TASK_SECTIONS`): the VQ-VAE's (data, audio, model,
rvq, loss, optim, train, parallel), the classifier's (data, audio, classifier, train, parallel),
the prior's (target, prior, sample, optim, train, parallel); `validate_config` checks each, then
the checks that span sections (the latent grid against the spectrogram, restart candidates
against the batch).
"""

from __future__ import annotations

from rvq_jax import audio
from rvq_jax import data
from rvq_jax import errors
from rvq_jax.models import conv_kernels
from rvq_jax.models import realnvp
from rvq_jax.models import vqvae
from rvq_jax.train import parallel

COMPUTE_DTYPES = ("float32", "bfloat16")
MAX_TEMPERATURE = 2.0   # sample.temperature(s): in (0, MAX_TEMPERATURE]
MAX_GUIDANCE = 10.0     # sample.guidance(s): in [0, MAX_GUIDANCE]
INITS = ("uniform", "glorot_normal", "kmeans")
TARGET_KINDS = ("quantized", "continuous")
PREPROCESS = ("standardize", "none")
DEQUANTIZATION_NOISE = ("uniform", "gaussian")
BASES = ("gaussian", "mixture", "class_conditional")
LOG_SCALES = ("tanh", "sigmoid")
CLASSIFIER_FRONT_ENDS = ("log_magnitude", "log_mel")
CLASSIFIER_ARCHITECTURES = ("conv2d", "temporal")


def _raise_first(checks) -> None:
  for ok, message in checks:
    if not ok:
      raise errors.ConfigError(f"Invalid config: {message}")


# ------------------------------------------------------------------ one function per section
def optimizer_checks(config) -> list:
  """The `optim` section (Adam), shared by the VQ-VAE and the prior."""
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


def loop_checks(config, num_devices: int) -> list:
  """The `train` section (the driver's schedule, any model; the fields it has)."""
  t = config.train
  checks = [
      (t.batch_size >= 1, f"train.batch_size={t.batch_size} must be positive."),
      (t.batch_size % num_devices == 0,
       f"train.batch_size={t.batch_size} is not divisible by the {num_devices} devices; use a "
       "multiple of the device count."),
      (t.num_epochs >= 1, f"train.num_epochs={t.num_epochs} must be at least 1."),
      (t.num_steps is None or t.num_steps >= 1, f"train.num_steps={t.num_steps} must be >= 1."),
      (t.log_every_steps >= 1, "train.log_every_steps must be positive."),
  ]
  for field in ("eval_batch_size", "checkpoint_every_steps", "keep_checkpoints"):
    if field in t:
      checks.append((t[field] >= 1, f"train.{field}={t[field]} must be positive."))
  return checks


def parallel_checks(config) -> list:
  mode = config.parallel.mode
  return [(mode in parallel.MODES,
           f"parallel.mode={mode!r} is unknown; choose one of {parallel.MODES}.")]


def model_checks(config) -> list:
  """The `model` section (the VQ-VAE's encoder and decoder)."""
  m = config.model
  return [
      (m.decoder in vqvae.DECODERS,
       f"model.decoder={m.decoder!r} is unknown; choose one of {vqvae.DECODERS}."),
      (m.conv_impl in conv_kernels.CONV_IMPLS,
       f"model.conv_impl={m.conv_impl!r} is unknown; choose one of {conv_kernels.CONV_IMPLS}."),
      (m.compute_dtype in COMPUTE_DTYPES,
       f"model.compute_dtype={m.compute_dtype!r} is unknown; choose one of {COMPUTE_DTYPES}."),
      (m.latent_dim >= 1, f"model.latent_dim={m.latent_dim} must be positive."),
      (len(m.encoder_features) >= 1, "model.encoder_features needs at least one layer."),
      (m.kernel_size >= 1, f"model.kernel_size={m.kernel_size} must be positive."),
      (min(m.encoder_features, default=1) >= 1, "model.encoder_features must be positive widths."),
  ]


def rvq_checks(config, num_devices: int) -> list:
  """The `rvq` section (the residual quantizer)."""
  r = config.rvq
  return [
      (r.levels >= 1, f"rvq.levels={r.levels} must be at least 1."),
      (r.codes >= 2, f"rvq.codes={r.codes} must be at least 2."),
      (0.0 <= r.decay < 1.0, f"rvq.decay={r.decay} must be in [0, 1)."),
      (r.init in INITS, f"rvq.init={r.init!r} is unknown; choose one of {INITS}."),
      (not r.dropout or 1 <= r.dropout_min_levels <= r.levels,
       f"rvq.dropout_min_levels={r.dropout_min_levels} must be in 1..rvq.levels={r.levels}."),
      (r.dead_code_steps >= 0, "rvq.dead_code_steps must be >= 0 (0 turns restarts off)."),
      (r.block_rows >= 1, f"rvq.block_rows={r.block_rows} must be positive."),
      (r.get("nearest_search", "exact") in ("exact", "packed"),
       f"rvq.nearest_search={r.get('nearest_search')!r} is unknown; choose 'exact' or 'packed'."),
      (r.statistic_groups >= 1, f"rvq.statistic_groups={r.statistic_groups} must be positive."),
      (r.eps > 0, f"rvq.eps={r.eps} must be > 0 (it keeps unused codes from dividing by zero)."),
      (r.init_count > 0, f"rvq.init_count={r.init_count} must be > 0."),
      (r.dead_code_steps == 0 or (r.restart_count > 0 and r.restart_candidates >= 1),
       "rvq.restart_count must be > 0 and rvq.restart_candidates >= 1 with dead-code restarts."),
      (r.uniform_scale > 0 or r.init != "uniform",
       f"rvq.uniform_scale={r.uniform_scale} must be > 0."),
      (r.statistic_groups % num_devices == 0,
       f"rvq.statistic_groups={r.statistic_groups} must be a multiple of the {num_devices} "
       "devices (so every device sums whole groups and all device counts agree)."),
  ]


def loss_checks(config) -> list:
  loss = config.loss
  return [(loss.beta >= 0, f"loss.beta={loss.beta} must be >= 0."),
          (loss.log_magnitude_weight >= 0,
           f"loss.log_magnitude_weight={loss.log_magnitude_weight} must be >= 0 (0 turns it off)."),
          (loss.log_magnitude_eps > 0,
           f"loss.log_magnitude_eps={loss.log_magnitude_eps} must be > 0 (the floor inside the log)."
           )]


def classifier_checks(config) -> list:
  """The `classifier` section (and the degradations its report scores)."""
  c = config.classifier
  a = c.augment
  return [
      (c.learning_rate > 0, f"classifier.learning_rate={c.learning_rate} must be positive."),
      (c.weight_decay >= 0, f"classifier.weight_decay={c.weight_decay} must be >= 0."),
      (0 <= c.dropout < 1, f"classifier.dropout={c.dropout} must be in [0, 1)."),
      (c.log_eps > 0, f"classifier.log_eps={c.log_eps} must be > 0."),
      (c.eval_batch_size >= 1, "classifier.eval_batch_size must be positive."),
      (c.front_end in CLASSIFIER_FRONT_ENDS, f"classifier.front_end={c.front_end!r} is unknown; "
       f"choose one of {CLASSIFIER_FRONT_ENDS}."),
      (c.architecture in CLASSIFIER_ARCHITECTURES, f"classifier.architecture={c.architecture!r} is "
       f"unknown; choose one of {CLASSIFIER_ARCHITECTURES}."),
      (c.mel_bands >= 1, f"classifier.mel_bands={c.mel_bands} must be positive."),
      (0 <= c.label_smoothing < 1,
       f"classifier.label_smoothing={c.label_smoothing} must be in [0, 1)."),
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
  ]


def target_checks(config) -> list:
  """The prior's `target` section (what it models)."""
  t = config.target
  return [
      (t.spacing_queries >= 1 and t.spacing_references >= 1,
       "target.spacing_queries and target.spacing_references must be positive."),
      (t.levels is None or t.levels >= 1, f"target.levels={t.levels} must be >= 1 (unset: all)."),
      (t.kind in TARGET_KINDS, f"target.kind={t.kind!r} is unknown; choose one of {TARGET_KINDS}."),
      (t.preprocess in PREPROCESS,
       f"target.preprocess={t.preprocess!r} is unknown; choose one of {PREPROCESS}."),
      (t.noise_augmentation >= 0, f"target.noise_augmentation={t.noise_augmentation} must be "
       ">= 0 (0: off)."),
      (t.dequantization > 0, f"target.dequantization={t.dequantization} must be > 0: the "
       "likelihood bound needs grid cells of positive width (0.25 is the default)."),
      (t.dequantization_noise in DEQUANTIZATION_NOISE,
       f"target.dequantization_noise={t.dequantization_noise!r} is unknown; choose one of "
       f"{DEQUANTIZATION_NOISE}."),
      (not t.projection_dim or t.projection_dim >= 1,
       f"target.projection_dim={t.projection_dim} must be positive (0: no projection)."),
  ]


def prior_checks(config) -> list:
  """The `prior` section (the RealNVP flow)."""
  p = config.prior
  return [
      (p.kernel_size >= 1, f"prior.kernel_size={p.kernel_size} must be positive."),
      (min(p.checkerboard_couplings, p.channel_couplings, p.final_couplings) >= 0,
       "prior.*_couplings must be >= 0."),
      (p.base != "mixture" or p.mixture_components >= 1,
       f"prior.mixture_components={p.mixture_components} must be positive."),
      (p.base in BASES, f"prior.base={p.base!r} is unknown; choose one of {BASES}."),
      (p.log_scale in LOG_SCALES,
       f"prior.log_scale={p.log_scale!r} is unknown; choose one of {LOG_SCALES}."),
      (p.num_scales >= 1, f"prior.num_scales={p.num_scales} must be at least 1."),
      (p.hidden >= 1 and p.res_blocks >= 0, "prior.hidden must be >= 1, prior.res_blocks >= 0."),
      (0 <= p.label_dropout < 1, f"prior.label_dropout={p.label_dropout} must be in [0, 1)."),
      (p.label_dropout == 0 or realnvp.is_conditional(p),
       "prior.label_dropout > 0 (classifier-free guidance) needs a conditional prior: "
       "prior.label_conditioning=True or prior.base='class_conditional'."),
  ]


def transformer_checks(config) -> list:
  """The autoregressive anchor's `transformer` and `target` sections (code_transformer)."""
  c, levels = config.transformer, config.target.levels
  return [
      (levels is None or levels >= 1, f"target.levels={levels} must be >= 1 (unset: all)."),
      (c.rows_per_token >= 1, f"transformer.rows_per_token={c.rows_per_token} must be >= 1."),
      (c.width >= 1 and c.depth >= 1 and c.mlp_ratio >= 1,
       "transformer.width, transformer.depth and transformer.mlp_ratio must be positive."),
      (c.heads >= 1 and c.width % c.heads == 0,
       f"transformer.heads={c.heads} must divide transformer.width={c.width}."),
      (0 <= c.dropout < 1, f"transformer.dropout={c.dropout} must be in [0, 1)."),
  ]


def sample_checks(config) -> list:
  """The prior's `sample` section."""
  s = config.sample
  return [
      (s.batch_size >= 1, "sample.batch_size must be positive."),
      (s.num_wavs >= 0 and s.num_figures >= 0 and s.grid_columns >= 0,
       "sample.num_wavs, sample.num_figures and sample.grid_columns must be >= 0."),
      (all(0 < temp <= MAX_TEMPERATURE for temp in tuple(s.temperatures) + (s.temperature,)),
       f"sample.temperature={s.temperature} and sample.temperatures={tuple(s.temperatures)} must "
       f"be in (0, {MAX_TEMPERATURE:g}] (1: the model's own distribution; above 2 a flow's base "
       "and a softmax are near noise; NaN and infinity are refused)."),
      (s.num_samples >= 1, "sample.num_samples must be positive."),
      (all(0 <= w <= MAX_GUIDANCE for w in tuple(s.get("guidances", ())) + (s.get("guidance",
                                                                                  0.0),)),
       f"sample.guidance and sample.guidances must be in [0, {MAX_GUIDANCE:g}]."),
      (not any(tuple(s.get("guidances", ())) + (s.get("guidance", 0.0),)) or "prior" not in config
       or config.prior.label_dropout > 0,
       "sample.guidance > 0 needs a flow trained with prior.label_dropout > 0 (it learns the "
       "unconditional density that guidance subtracts)."),
      (s.digit is None or 0 <= s.digit <= 9,
       f"sample.digit={s.digit} must be a digit 0..9 (or unset)."),
      (s.digit is None or "prior" not in config or realnvp.is_conditional(config.prior),
       "sample.digit needs a conditional prior: prior.base='class_conditional' or "
       "prior.label_conditioning=True."),
  ]


# ------------------------------------------------------------------ checks across sections
def latent_grid_checks(config) -> None:
  """The VQ-VAE's encoder must divide the spectrogram, and a batch must hold enough latent
  vectors for restarts and k-means."""
  m, r, t = config.model, config.rvq, config.train
  bins, frames, _ = audio.spectrogram_shape(config.data.max_samples, config.audio)
  factor = vqvae.downsampling(config)
  if bins % factor or frames % factor:
    raise errors.ConfigError(
        f"Invalid config: the spectrogram is {bins}x{frames} (data.max_samples, audio.frame_length, "
        f"audio.hop_length) but model.encoder_features has {len(m.encoder_features)} stride-2 "
        f"layers, which need both sides divisible by {factor}; the latent grid would not match.")
  fold = m.get("fold_rows", 1)
  if fold < 1 or (bins // factor) % fold:
    raise errors.ConfigError(
        f"Invalid config: model.fold_rows={fold} must be a positive divisor of the latent grid's "
        f"{bins // factor} rows (spectrogram bins / {factor}).")
  positions = t.batch_size * vqvae.latent_rows(config) * frames // factor
  if r.dead_code_steps > 0 and r.restart_candidates > positions:
    raise errors.ConfigError(
        f"Invalid config: rvq.restart_candidates={r.restart_candidates} exceeds the {positions} "
        "latent vectors of a batch (they are drawn without replacement); lower it.")
  if r.init == "kmeans" and positions < r.codes:
    raise errors.ConfigError(f"Invalid config: rvq.init='kmeans' needs at least rvq.codes={r.codes} "
                             "latent vectors in the first batch; raise train.batch_size.")


def validate_target_shape(config, shape) -> None:
  """The prior's squeezes must fit its target [H, W, C] (known once the VQ-VAE is loaded)."""
  factor = 2 ** (config.prior.num_scales - 1)
  h, w, _ = shape
  if h % factor or w % factor:
    raise errors.ConfigError(
        f"Invalid config: prior.num_scales={config.prior.num_scales} squeezes the {h}x{w} target "
        f"{config.prior.num_scales - 1} times; both sides must be divisible by {factor} (fewer "
        "scales, or another target).")


# The sections of each task's config, checked in this order (rvq_jax.run_config.TASKS).
TASK_SECTIONS = {
    "vqvae": (("optim", optimizer_checks), ("model", model_checks), ("loss", loss_checks),
              ("train", loop_checks), ("rvq", rvq_checks), ("parallel", parallel_checks)),
    "prior": (("target", target_checks), ("prior", prior_checks), ("sample", sample_checks),
              ("optim", optimizer_checks), ("train", loop_checks), ("parallel", parallel_checks)),
    "classifier": (("classifier", classifier_checks), ("train", loop_checks),
                   ("parallel", parallel_checks)),
    "code_prior": (("transformer", transformer_checks), ("sample", sample_checks),
                   ("optim", optimizer_checks), ("train", loop_checks),
                   ("parallel", parallel_checks)),
}
_NEED_DEVICES = (loop_checks, rvq_checks)


def validate_config(config, num_devices: int = 1) -> None:
  """Checks every section of `config`'s task, then the checks across sections; raises
  ConfigError naming the first field at fault. `num_devices`: the devices the run's batch is
  split over."""
  task = config.get("task")
  if task not in TASK_SECTIONS:
    raise errors.ConfigError(f"Invalid config: task={task!r} is unknown; choose one of "
                             f"{tuple(TASK_SECTIONS)}.")
  if task not in ("prior", "code_prior"):   # a prior's `data` only says where the data is
    data.validate_data_config(config.data)
    audio.validate_audio_config(config.audio)
  checks = []
  for name, section_checks in TASK_SECTIONS[task]:
    if name not in config:
      raise errors.ConfigError(f"Invalid config: a {task} config needs a `{name}` section.")
    checks += (section_checks(config, num_devices) if section_checks in _NEED_DEVICES
               else section_checks(config))
  _raise_first(checks)
  if task == "vqvae":
    latent_grid_checks(config)
