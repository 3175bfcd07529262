"""The RealNVP prior: its training targets, state, pure steps and resumable loop (configs/realnvp.py).

Targets are latent images of a trained VQ-VAE (`config.vqvae_workdir`): by default the quantized
latents [N, 32, 32, 128] (sums of code vectors, `target.levels` of them), or the encoder's
continuous output; optionally projected on the leading `target.projection_dim` principal directions
of the training latents (a fixed linear map; `unproject` maps samples back for the decoder).

Dequantization: quantized latents take a finite set of values, on which a continuous density can
grow without bound, so each training batch gets fresh Gaussian noise of std
`target.dequantization * spacing`, where `spacing` is the median distance from a distinct target
vector to its nearest distinct neighbour divided by sqrt(C) (a per-dimension spacing). Validation
and test use one fixed draw of that noise, so their bits/dim are comparable across epochs; every
bits/dim is of the noisy (dequantized) target and is only comparable at the same noise.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import pathlib
import time
from typing import Any

from absl import logging
import flax
import jax
from jax import lax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm

from rvq_jax import data as data_lib
from rvq_jax import errors
from rvq_jax.data import download
from rvq_jax.models import realnvp
from rvq_jax.models import rvq
from rvq_jax.models import vqvae
from rvq_jax.train import checkpoints
from rvq_jax.train import loop
from rvq_jax.train import parallel as parallel_lib
from rvq_jax.train import rngs
from rvq_jax.train import steps
from rvq_jax.train import validation
from rvq_jax.train import writer as writer_lib

TARGET_KINDS = ("quantized", "continuous")
PREPROCESS = ("standardize", "none")
BASES = ("gaussian", "mixture", "class_conditional")
LOG_SCALES = ("tanh", "sigmoid")


# ------------------------------------------------------------------ the VQ-VAE whose latents we model
@dataclasses.dataclass(frozen=True)
class VQVAERun:
  """A trained VQ-VAE: its config (from the run's config.json), state, data and spectrograms."""
  config: ml_collections.ConfigDict
  state: steps.TrainState
  dataset: Any
  specs: dict


def load_vqvae(config) -> VQVAERun:
  """The VQ-VAE in `config.vqvae_workdir`, with its dataset (data location from the prior's config
  when set there)."""
  workdir = pathlib.Path(config.vqvae_workdir)
  if not (workdir / "config.json").exists():
    raise errors.MissingError(
        f"config.vqvae_workdir={str(workdir)!r} holds no trained VQ-VAE (no config.json). Train one "
        f"first: python -m rvq_jax.main --config=configs/model5.py --workdir={workdir}")
  vq_config = loop.saved_vqvae_config(workdir, config.data)
  state = loop.restore_state(vq_config, workdir)
  _warn_if_unfinished(workdir, int(state.step))
  dataset = data_lib.load_dataset(vq_config.data)
  specs = {s: loop.prepare_spectrograms(dataset[s].waveforms, vq_config.audio)
           for s in data_lib.SPLITS}
  return VQVAERun(vq_config, state, dataset, specs)


def _warn_if_unfinished(workdir: pathlib.Path, step: int) -> None:
  """Warns when the VQ-VAE run stopped before the end its last session planned."""
  sessions = writer_lib.read_run_info(workdir)
  planned = sessions[-1].get("total_steps") if sessions else None
  if planned is not None and step < planned:
    logging.warning("The VQ-VAE in %s is half-trained: its checkpoint is at step %d of %d. The "
                    "prior will model an unfinished model; finish it first (run its training "
                    "command again) for results that hold.", workdir, step, planned)


def _codes_cache_path(config, run: VQVAERun) -> pathlib.Path:
  ckpt = (pathlib.Path(config.vqvae_workdir) / "checkpoints").absolute()
  key = hashlib.sha256(json.dumps([str(ckpt), int(run.state.step), ckpt.stat().st_mtime_ns,
                                   {s: len(run.dataset[s]) for s in data_lib.SPLITS}]).encode())
  return download.cache_root(config.data) / "prior_codes" / f"{key.hexdigest()[:16]}.npz"


def latent_codes(config, run: VQVAERun) -> dict[str, np.ndarray]:
  """int16 codes [N, h, w, L] of every split, cached per VQ-VAE checkpoint."""
  path = _codes_cache_path(config, run)
  if path.exists():
    with np.load(path) as cached:
      return {s: cached[s] for s in data_lib.SPLITS}
  model = vqvae.make_model(run.config)
  encode = jax.jit(lambda x: vqvae.encode_codes(model, run.state.params,
                                                run.state.codebook.embed, x,
                                                block_rows=run.config.rvq.block_rows))
  codes = {s: np.asarray(loop.map_batches(lambda x, _: encode(x), run.specs[s],
                                          run.config.train.eval_batch_size)).astype(np.int16)
           for s in data_lib.SPLITS}
  data_lib.write_npz_atomically(path, codes)
  return codes


def vqvae_latents(config, run: VQVAERun) -> dict[str, np.ndarray]:
  """float32 latents [N, h, w, D] per split: quantized (first `target.levels` levels) or the
  encoder's continuous output."""
  if config.target.kind == "continuous":
    model = vqvae.make_model(run.config)
    encode = jax.jit(lambda x: model.apply(run.state.params, x, method=vqvae.VQVAE.encode))
    return {s: np.asarray(loop.map_batches(lambda x, _: encode(x), run.specs[s],
                                           run.config.train.eval_batch_size))
            for s in data_lib.SPLITS}
  levels = config.target.levels or run.config.rvq.levels
  embed = run.state.codebook.embed
  decode = jax.jit(lambda c: rvq.decode_codes(embed, c, levels))
  return {s: np.asarray(loop.map_batches(lambda c, _: decode(c.astype(jnp.int32)), codes,
                                         run.config.train.eval_batch_size))
          for s, codes in latent_codes(config, run).items()}


# ------------------------------------------------------------------ targets
def fit_projection(latents: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray, float]:
  """PCA of the vectors of `latents` [..., D]: (center [D], basis [D, dim] orthonormal columns,
  fraction of variance kept)."""
  flat = latents.reshape(-1, latents.shape[-1]).astype(np.float64)
  center = flat.mean(0)
  eigenvalues, vectors = np.linalg.eigh(np.cov((flat - center).T))
  order = np.argsort(eigenvalues)[::-1]
  kept = float(eigenvalues[order[:dim]].sum() / eigenvalues.sum())
  return center.astype(np.float32), vectors[:, order[:dim]].astype(np.float32), kept


def project(latents, center, basis):
  """[..., D] -> [..., dim] coordinates on the principal directions."""
  return (latents - center) @ basis


def unproject(targets, center, basis):
  """[..., dim] -> [..., D] (the closest point of the principal subspace)."""
  return targets @ basis.T + center


def latent_spacing(targets: np.ndarray, num_queries: int, num_references: int,
                   seed: int) -> float:
  """Median distance from a distinct target vector to its nearest distinct neighbour, divided by
  sqrt(C): the per-dimension spacing of the discrete set the targets live on."""
  rng = np.random.default_rng(seed)
  flat = targets.reshape(-1, targets.shape[-1])
  # Distinct vectors of a random subset (np.unique over millions of rows is slow).
  subset = rng.choice(len(flat), min(len(flat), 10 * (num_queries + num_references)), replace=False)
  flat = np.unique(flat[subset], axis=0)
  refs = flat[rng.choice(len(flat), min(num_references, len(flat)), replace=False)]
  queries = flat[rng.choice(len(flat), min(num_queries, len(flat)), replace=False)]
  refs = refs.astype(np.float64)
  ref_norms = (refs**2).sum(1)
  nearest = []
  for chunk in np.array_split(queries.astype(np.float64), max(1, len(queries) // 256)):
    d2 = (chunk**2).sum(1)[:, None] - 2 * chunk @ refs.T + ref_norms[None, :]
    d2[d2 <= 1e-9 * ref_norms.mean()] = np.inf   # the vector itself (or an identical copy)
    nearest.append(np.sqrt(d2.min(1)))
  return float(np.median(np.concatenate(nearest)) / math.sqrt(targets.shape[-1]))


@dataclasses.dataclass(frozen=True)
class Targets:
  """The prior's data: per split (targets float32 [N, H, W, C], digit labels int32 [N]), and the
  constants of the target space: `stats` (mean, std [C] for standardisation; noise_std [];
  center [D] and basis [D, C] when projected), `spacing`, `variance_kept`."""
  splits: dict[str, tuple[np.ndarray, np.ndarray]]
  stats: dict[str, np.ndarray]
  spacing: float
  variance_kept: float

  @property
  def shape(self) -> tuple[int, int, int]:
    return tuple(self.splits["train"][0].shape[1:])


def prepare_targets(config, run: VQVAERun) -> Targets:
  """Latents of `run` -> the prior's targets and their statistics (training split only)."""
  t = config.target
  latents = vqvae_latents(config, run)
  stats, kept = {}, 1.0
  if t.projection_dim:
    center, basis, kept = fit_projection(latents["train"], t.projection_dim)
    latents = {s: project(v, center, basis) for s, v in latents.items()}
    stats.update(center=center, basis=basis)
  train = latents["train"]
  channels = train.shape[-1]
  if t.preprocess == "standardize":
    std = train.reshape(-1, channels).std(0)
    stats.update(mean=train.reshape(-1, channels).mean(0),
                 std=np.where(std > 1e-6, std, 1.0).astype(np.float32))
  else:
    stats.update(mean=np.zeros(channels, np.float32), std=np.ones(channels, np.float32))
  spacing = latent_spacing(train, t.spacing_queries, t.spacing_references, config.seed)
  stats["noise_std"] = np.float32(t.dequantization * spacing)
  splits = {s: (v.astype(np.float32), run.dataset[s].digits.astype(np.int32))
            for s, v in latents.items()}
  logging.info("prior targets %s (%s, %.4f of the variance kept); spacing %.4f, dequantization "
               "noise std %.4f", train.shape[1:], t.kind, kept, spacing, stats["noise_std"])
  return Targets(splits, {k: np.asarray(v, np.float32) for k, v in stats.items()}, spacing, kept)


# ------------------------------------------------------------------ state and steps
@flax.struct.dataclass
class PriorState:
  """Everything a prior run carries, as one pytree (orbax saves and restores it whole).

  Attributes:
    step: int32 [] optimizer steps taken.
    params: Flax params of `realnvp.FlowPrior`.
    opt_state: optax state.
    stats: the target-space constants of `Targets.stats` (fixed during training).
    rng: PRNG key data uint32 [2]; step i draws its dequantization noise from fold_in(rng, i).
  """
  step: jax.Array
  params: Any
  opt_state: Any
  stats: dict
  rng: jax.Array


def make_model(config, shape) -> realnvp.FlowPrior:
  return realnvp.make_prior(config.prior, shape)


def create_prior_state(config, rng: jax.Array, stats: dict, first_batch) -> PriorState:
  """Initial state; actnorm layers are initialised from `first_batch` = (targets [B, H, W, C],
  labels [B]) with dequantization noise added."""
  targets, labels = first_batch
  model = make_model(config, targets.shape[1:])
  init_rng, noise_rng, state_rng = (rngs.stream(rng, tag)
                                    for tag in (rngs.PARAMS, rngs.INIT_NOISE, rngs.STEP))
  noisy = targets + stats["noise_std"] * jax.random.normal(noise_rng, targets.shape)
  params = model.init(init_rng, noisy, labels, stats["mean"], stats["std"],
                      method=realnvp.FlowPrior.log_prob)
  return PriorState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=steps.make_optimizer(config).init(params),
                    stats=jax.tree.map(jnp.asarray, stats), rng=state_rng)


def make_prior_train_step(config, shape, axis_name: str | None = None):
  """Returns the pure `prior_train_step(state, (targets, labels)) -> (state, metrics)`.

  targets: float32 [B, H, W, C] (B local under pmap), labels int32 [B]. Loss: mean bits/dim of
  the dequantized batch. The noise is drawn for the global batch and sliced, so pmap, sharded
  and single-device runs of the same global batch take the same step. metrics: 'bits_per_dim',
  'grad_norm', 'finite'.
  """
  model = make_model(config, shape)
  tx = steps.make_optimizer(config)
  dims = int(np.prod(shape))

  def loss_fn(params, x, labels, stats):
    log_prob = model.apply(params, x, labels, stats["mean"], stats["std"],
                           method=realnvp.FlowPrior.log_prob)
    return jnp.mean(realnvp.bits_per_dim(log_prob, dims))

  def prior_train_step(state: PriorState, batch):
    targets, labels = batch
    local = targets.shape[0]
    shards = 1 if axis_name is None else lax.axis_size(axis_name)
    shard = 0 if axis_name is None else lax.axis_index(axis_name)
    noise = jax.random.normal(rngs.step_key(state.rng, state.step, rngs.NOISE),
                              (local * shards,) + targets.shape[1:])
    noise = lax.dynamic_slice_in_dim(noise, shard * local, local)
    x = targets + state.stats["noise_std"] * noise
    loss, grads = jax.value_and_grad(loss_fn)(state.params, x, labels, state.stats)
    if axis_name is not None:
      loss, grads = lax.pmean((loss, grads), axis_name)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    finite = jnp.isfinite(loss) & jnp.all(jnp.stack(
        [jnp.isfinite(p).all() for p in jax.tree.leaves(params)]))
    metrics = {"bits_per_dim": loss, "grad_norm": optax.tree.norm(grads),
               "finite": finite.astype(jnp.float32)}
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  return prior_train_step


def make_prior_eval_step(config, shape):
  """`eval_step(state, targets, labels, weights) -> (weighted bits/dim sum, weight sum)`; targets
  already carry their fixed dequantization noise."""
  model = make_model(config, shape)
  dims = int(np.prod(shape))

  def eval_step(state: PriorState, targets, labels, weights):
    log_prob = model.apply(state.params, targets, labels, state.stats["mean"], state.stats["std"],
                           method=realnvp.FlowPrior.log_prob)
    return (realnvp.bits_per_dim(log_prob, dims) * weights).sum(), weights.sum()

  return eval_step


def fixed_noise_targets(config, targets: Targets, split: str) -> np.ndarray:
  """`split`'s targets plus one fixed draw of the dequantization noise (seeded by config.seed)."""
  x = targets.splits[split][0]
  key = jax.random.fold_in(jax.random.wrap_key_data(rngs.seed_stream(config.seed,
                                                                     rngs.HELD_OUT_NOISE)),
                           data_lib.SPLITS.index(split))
  return x + targets.stats["noise_std"] * np.asarray(jax.random.normal(key, x.shape))


def evaluate_bits_per_dim(eval_step, state, x: np.ndarray, labels: np.ndarray,
                          batch_size: int) -> float:
  """Mean bits/dim over all of x [N, H, W, C] (padding weighted out)."""
  total, weight = 0.0, 0.0
  for (chunk, start, real) in loop.padded_batches(x, batch_size):
    lab = np.zeros(batch_size, np.int32)
    lab[:real] = labels[start:start + real]
    s, w = eval_step(state, chunk, jnp.asarray(lab),
                     jnp.asarray(np.arange(batch_size) < real, jnp.float32))
    total, weight = total + float(s), weight + float(w)
  return total / weight


def validate_prior_config(config, num_devices: int) -> None:
  """Raises ValueError naming the field at fault, before anything compiles."""
  p, t, tr = config.prior, config.target, config.train
  checks = validation.optimizer_checks(config) + validation.loop_checks(tr, num_devices) + [
      (t.spacing_queries >= 1 and t.spacing_references >= 1,
       "target.spacing_queries and target.spacing_references must be positive."),
      (t.levels is None or t.levels >= 1, f"target.levels={t.levels} must be >= 1 (unset: all)."),
      (p.kernel_size >= 1, f"prior.kernel_size={p.kernel_size} must be positive."),
      (min(p.checkerboard_couplings, p.channel_couplings, p.final_couplings) >= 0,
       "prior.*_couplings must be >= 0."),
      (p.base != "mixture" or p.mixture_components >= 1,
       f"prior.mixture_components={p.mixture_components} must be positive."),
      (config.sample.batch_size >= 1, "sample.batch_size must be positive."),
      (config.sample.num_wavs >= 0 and config.sample.num_figures >= 0,
       "sample.num_wavs and sample.num_figures must be >= 0."),
      (all(temp > 0 for temp in tuple(config.sample.temperatures) + (config.sample.temperature,)),
       "sample.temperature and sample.temperatures must be > 0."),
      (t.kind in TARGET_KINDS, f"target.kind={t.kind!r} is unknown; choose one of {TARGET_KINDS}."),
      (t.preprocess in PREPROCESS,
       f"target.preprocess={t.preprocess!r} is unknown; choose one of {PREPROCESS}."),
      (t.dequantization >= 0, f"target.dequantization={t.dequantization} must be >= 0."),
      (not t.projection_dim or t.projection_dim >= 1,
       f"target.projection_dim={t.projection_dim} must be positive (0: no projection)."),
      (p.base in BASES, f"prior.base={p.base!r} is unknown; choose one of {BASES}."),
      (p.log_scale in LOG_SCALES,
       f"prior.log_scale={p.log_scale!r} is unknown; choose one of {LOG_SCALES}."),
      (p.num_scales >= 1, f"prior.num_scales={p.num_scales} must be at least 1."),
      (p.hidden >= 1 and p.res_blocks >= 0, "prior.hidden must be >= 1, prior.res_blocks >= 0."),
      (config.parallel.mode in parallel_lib.MODES,
       f"parallel.mode={config.parallel.mode!r} is unknown; choose one of {parallel_lib.MODES}."),
      (config.sample.num_samples >= 1, "sample.num_samples must be positive."),
      (config.sample.digit is None or 0 <= config.sample.digit <= 9,
       f"sample.digit={config.sample.digit} must be a digit 0..9 (or unset)."),
  ]
  for ok, message in checks:
    if not ok:
      raise errors.ConfigError(f"Invalid config: {message}")
  if config.sample.digit is not None and p.base != "class_conditional":
    raise errors.ConfigError("Invalid config: sample.digit needs prior.base='class_conditional'.")


def validate_target_shape(config, shape) -> None:
  """Raises ValueError when the flow's squeezes do not fit the target's [H, W, C]."""
  factor = 2 ** (config.prior.num_scales - 1)
  h, w, _ = shape
  if h % factor or w % factor:
    raise errors.ConfigError(f"Invalid config: prior.num_scales={config.prior.num_scales} squeezes the "
                     f"{h}x{w} target {config.prior.num_scales - 1} times; both sides must be "
                     f"divisible by {factor} (fewer scales, or another target).")


# ------------------------------------------------------------------ the loop
def train_prior(config, workdir: str, run: VQVAERun | None = None):
  """Trains (or resumes) the prior in `workdir`. Returns (state, targets, run)."""
  validate_prior_config(config, parallel_lib.num_devices_for(config.parallel.mode))
  parallel = parallel_lib.Parallel(config)
  workdir = pathlib.Path(workdir)
  is_writer = jax.process_index() == 0
  with checkpoints.RunLock(workdir, enabled=is_writer):
    changes = loop.open_workdir(config, workdir, is_writer)
    return _train_prior(config, workdir, parallel, is_writer, changes, run)


def _train_prior(config, workdir: pathlib.Path, parallel, is_writer: bool, changes: dict,
                 run: VQVAERun | None):
  run = run or load_vqvae(config)
  targets = prepare_targets(config, run)
  validate_target_shape(config, targets.shape)
  train_x, train_labels = targets.splits["train"]
  examples = (np.asarray(train_x), np.asarray(train_labels))
  batch_size = config.train.batch_size
  steps_per_epoch = len(train_x) // batch_size
  total_steps = steps_per_epoch * config.train.num_epochs
  if config.train.num_steps is not None:
    total_steps = min(total_steps, config.train.num_steps)

  root_key = np.asarray(rngs.root_key(config.seed))
  data_key = rngs.seed_stream(config.seed, rngs.DATA)
  first_batch = jax.tree.map(np.asarray, parallel_lib.batch_for_step(examples, 0, data_key,
                                                                     batch_size))
  def init_fn(rng, batch):
    return create_prior_state(config, rng, targets.stats, batch)

  ckpt_dir = (workdir / "checkpoints").absolute()
  manager = checkpoints.open_manager(ckpt_dir, config.train.checkpoint_every_steps,
                                     config.train.keep_checkpoints)
  restored = checkpoints.restore_newest(manager,
                                        parallel.abstract_state(init_fn, root_key, first_batch))
  if restored is not None:
    restored_step, state = restored.step, restored.state
    logging.info("Resumed the prior from %s at step %d", ckpt_dir, restored_step)
  else:
    restored_step = 0
    state = parallel.create_state(init_fn, root_key, first_batch)
  writer = writer_lib.MetricWriter(workdir, enabled=is_writer, truncate_after_step=restored_step)
  if is_writer:
    writer_lib.append_run_info(workdir, start_step=restored_step, total_steps=total_steps,
                               parallel_mode=parallel.mode, num_devices=parallel.num_devices,
                               target_shape=list(targets.shape), spacing=targets.spacing,
                               noise_std=float(targets.stats["noise_std"]),
                               variance_kept=targets.variance_kept, config_changes=changes,
                               damaged_checkpoints=restored.damaged if restored else [])
  shape = targets.shape
  train_step = parallel.train_step(functools.partial(make_prior_train_step, config, shape))
  get_batch = parallel.batch_fn(examples, data_key, batch_size)
  eval_step = jax.jit(make_prior_eval_step(config, shape))
  held_out = {s: fixed_noise_targets(config, targets, s) for s in ("validation", "test")}

  step = restored_step
  bar = tqdm.tqdm(total=total_steps, initial=step, unit="step", desc="prior",
                  disable=not (is_writer and config.train.progress_bar), dynamic_ncols=True)
  epoch_steps, epoch_start = 0, time.perf_counter()
  with parallel_lib.StopRequests(config.train.log_every_steps) as stop:
    while step < total_steps and not stop.should_stop(step):
      with jax.transfer_guard("disallow"):   # explicit transfers only
        state, metrics = train_step(state, get_batch(step))
      step += 1
      epoch_steps += 1
      bar.update()
      end_of_epoch = step % steps_per_epoch == 0 or step == total_steps
      if step % config.train.log_every_steps == 0 or end_of_epoch or manager.should_save(step):
        shown = parallel.local(metrics)
        bpd = float(shown["bits_per_dim"])
        loop.check_finite(bpd, shown["finite"], step, manager, ckpt_dir,
                          "lower optim.learning_rate (or raise target.dequantization or lower "
                          "optim.grad_clip_norm in a new workdir)")
        bar.set_postfix(bpd=f"{bpd:.4f}", refresh=False)
      if end_of_epoch:
        epoch = math.ceil(step / steps_per_epoch)
        seconds = time.perf_counter() - epoch_start
        shown = parallel.local(metrics)
        writer.write(step, "train", epoch, {
            "bits_per_dim": float(shown["bits_per_dim"]), "grad_norm": float(shown["grad_norm"]),
            "epoch_seconds": seconds, "examples_per_second": epoch_steps * batch_size / seconds})
        for split, x in held_out.items():
          bpd = evaluate_bits_per_dim(eval_step, parallel.local(state), x, targets.splits[split][1],
                                      config.train.eval_batch_size)
          writer.write(step, split, epoch, {"bits_per_dim": bpd})
        logging.info("prior epoch %d step %d: train bits/dim %.4f, test %.4f", epoch, step,
                     float(shown["bits_per_dim"]), bpd)
        epoch_steps, epoch_start = 0, time.perf_counter()
      checkpoints.save(manager, step, state)
    bar.close()
    preempted = step < total_steps
  if manager.latest_step() != step:
    # The same rule as the VQ-VAE's loop: a non-finite state is never saved.
    if step > restored_step and float(parallel.local(metrics)["finite"]) != 1.0:
      manager.wait_until_finished()
      raise errors.DivergedError(f"Non-finite prior state at step {step}; not saved. The last "
                                 f"good checkpoint (step {manager.latest_step()}) is in "
                                 f"{ckpt_dir}.")
    checkpoints.save(manager, step, state, force=True)
  manager.wait_until_finished()
  manager.close()
  writer.close()
  if preempted:
    raise loop.Preempted(f"SIGTERM: saved step {step} in {ckpt_dir}; run the same command to "
                         "resume.")
  return parallel.local(state), targets, run


def restore_prior(config, workdir, targets: Targets) -> PriorState:
  """The latest checkpointed `PriorState` in `workdir` (on the default device)."""
  x, labels = targets.splits["train"]
  first = (jnp.asarray(x[:config.train.batch_size]), jnp.asarray(labels[:config.train.batch_size]))
  abstract = jax.eval_shape(lambda r, b: create_prior_state(config, r, targets.stats, b),
                            jax.random.key_data(jax.random.key(0)), first)
  return checkpoints.restore_for_reading(
      workdir, abstract, "train the prior first (python -m rvq_jax.main "
      "--config=configs/realnvp.py --workdir=...)")
