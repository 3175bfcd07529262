"""TrainState, its creation, and the pure train and eval steps of an RVQ autoencoder.

`make_train_step(forward_fn, optimizer, quantizer)` is the step for any model around the residual
quantizer: `forward_fn(params, batch, rng, quantize) -> (loss, metrics, aux)` is the research
model (its layers, dropout, BatchNorm, losses on anything it computes), the step the rest
(gradients, the reductions over devices, the EMA codebook update, dead-code restarts, optax, the
finite check): `train_step(state, batch) -> (state, metrics)`, pure, jit-able, no host transfers.
`autoencoder_forward(model, loss_fn, beta)` is the forward pass of a plain encode / decode module
(examples/waveform_codec.py trains a 1-D codec on raw waveforms with it; examples/digits_vqvae.py
an image VQ-VAE with dropout and BatchNorm with its own). `make_vqvae_train_step(config)` is this
project's instance: the study's spectrogram VQ-VAE, its optimizer and loss, read from a config.

With `axis_name` (pmap / shard_map), gradients and metrics are averaged and the EMA statistics
(counts and sums per code) summed over that axis, so every device applies the same codebook
update. Under sharded `jit` leave `axis_name=None`: the compiler reduces.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import flax
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import optax

from rvq_jax.audio import representations
from rvq_jax.models import rvq
from rvq_jax.models import vqvae
from rvq_jax.train import rngs

_HALF_LOG_2PI = 0.5 * float(np.log(2 * np.pi))


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training, as one pytree (orbax saves and restores it whole).

  Attributes:
    step: int32 [], optimizer steps taken.
    params: Flax params of the encoder and decoder.
    opt_state: optax state of `make_optimizer(config)`.
    codebook: `rvq.CodebookState`, the EMA codebooks.
    rng: PRNG key data uint32 [2]; each step folds in `step`, so a resumed run draws the same noise.
  """
  step: jax.Array
  params: Any
  opt_state: Any
  codebook: rvq.CodebookState
  rng: jax.Array


def learning_rate_schedule(optim) -> optax.Schedule | float:
  """The learning rate per step: linear warm-up from 0 over `warmup_steps`, then constant
  ('constant') or a cosine decay to `final_lr_fraction` x the peak at step `decay_steps`
  ('cosine', held there after; `decay_steps` counts the warm-up too)."""
  if optim.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0 if optim.warmup_steps > 0 else optim.learning_rate,
        peak_value=optim.learning_rate, warmup_steps=optim.warmup_steps,
        decay_steps=optim.decay_steps, end_value=optim.learning_rate * optim.final_lr_fraction)
  if optim.warmup_steps > 0:
    return optax.linear_schedule(0.0, optim.learning_rate, optim.warmup_steps)
  return optim.learning_rate


def make_optimizer(config) -> optax.GradientTransformation:
  """Adam on `learning_rate_schedule(config.optim)`, with optional global-norm clipping."""
  o = config.optim
  adam = optax.adam(learning_rate_schedule(o), b1=o.b1, b2=o.b2)
  return optax.chain(optax.clip_by_global_norm(o.grad_clip_norm), adam) if o.grad_clip_norm > 0 \
      else adam


@dataclasses.dataclass(frozen=True)
class QuantizerSettings:
  """How the residual quantizer trains (the `rvq` config section, less its initialisation).

  Attributes:
    levels, codes: L levels of K codes.
    decay, eps: the EMA's gamma and the Laplace smoothing of its counts (`rvq.ema_update`).
    dropout, dropout_min_levels: quantizer dropout, training on U{dropout_min_levels..L} levels.
    dead_code_steps: restart codes unused this many steps onto residuals of the batch (0: off).
    restart_count, restart_candidates: the count a restarted code starts with; how many distinct
      latent vectors per step are offered to restarts.
    block_rows, statistic_groups: the nearest-code search's row blocks and the EMA sums' row
      groups (speed and precision; the same function).
    nearest_search: 'exact' or 'packed' (`rvq._nearest_in_block_packed`: one reduction, exact
      but for near-ties) for the training step's codes; evaluation and the codec stay exact.
  """
  levels: int
  codes: int
  decay: float = 0.99
  eps: float = 1e-5
  dropout: bool = False
  dropout_min_levels: int = 1
  dead_code_steps: int = 0
  restart_count: float = 1.0
  restart_candidates: int = 1024
  block_rows: int | None = 1024
  statistic_groups: int = 16
  nearest_search: str = "exact"

  @classmethod
  def from_config(cls, r) -> "QuantizerSettings":
    return cls(**{f.name: r[f.name] for f in dataclasses.fields(cls) if f.name in r})


def init_state(params, optimizer: optax.GradientTransformation, codebook: rvq.CodebookState,
               rng: jax.Array) -> TrainState:
  """A step-0 `TrainState` from network params, their optimizer, codebooks and the per-step rng
  (key data uint32 [2])."""
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=optimizer.init(params), codebook=codebook, rng=rng)


def create_train_state(config, rng: jax.Array, first_batch: jax.Array) -> TrainState:
  """Initial state of this project's VQ-VAE. first_batch: float [B, H, W, 2] spectrograms (shapes;
  k-means init uses values).

  rng: the run's root key (raw uint32 [2] key data, `rngs.root_key(config.seed)`); the parameters,
    codebooks and the state's per-step rng come from its PARAMS, CODEBOOK and STEP streams.
  """
  model = vqvae.make_model(config)
  init_rng, codebook_rng, state_rng = (rngs.stream(rng, tag)
                                       for tag in (rngs.PARAMS, rngs.CODEBOOK, rngs.STEP))
  params = model.init(init_rng, first_batch[:1])
  r = config.rvq
  if r.init == "kmeans":
    latents = model.apply(params, first_batch, method=vqvae.VQVAE.encode)
    codebook = rvq.kmeans_init(codebook_rng, latents.reshape(-1, latents.shape[-1]), r.levels,
                               r.codes, r.kmeans_iterations)
  else:
    codebook = rvq.init_codebooks(codebook_rng, r.levels, r.codes, config.model.latent_dim, r.init,
                                  r.uniform_scale, r.init_count)
  return init_state(params, make_optimizer(config), codebook, state_rng)


def log_magnitude_error(images: jax.Array, x: jax.Array, audio_config, eps: float) -> jax.Array:
  """Per-example mean over bins and frames of (log M_images - log M_x)^2, M = sqrt(|X|^2 + eps^2).

  images, x: spectrogram images [B, H, W, 2] in `audio_config.representation` (any of them); eps in
  the units the model sees (waveforms divided by the training std). The floor inside the square
  root keeps the log and its gradient finite at exact zeros (the padded silence), where |X| is
  not differentiable. Returns float32 [B].
  """
  def log_magnitude(s):
    spectrum = representations.to_complex(s, audio_config)
    return 0.5 * jnp.log(spectrum.real**2 + spectrum.imag**2 + eps**2)
  return jnp.mean((log_magnitude(images) - log_magnitude(x))**2, axis=(1, 2))


def _losses(mean: jax.Array, log_scale: jax.Array | None, x: jax.Array, weights: jax.Array,
            config):
  """Per-example-weighted reconstruction loss and spectrogram MSE of a reconstruction `mean` (and
  the Gaussian decoder's `log_scale`, or None) against x, all [B, H, W, C]. weights: [B].

  The reconstruction loss is the MSE of the images (the study's), or the Gaussian decoder's
  per-pixel NLL, plus `loss.log_magnitude_weight` x `log_magnitude_error` (0 by default): a loss on
  the magnitude in the log domain for representations whose channels are not log magnitudes.
  """
  per_pixel_se = (mean - x)**2
  mse = jnp.mean(per_pixel_se, axis=(1, 2, 3))
  if log_scale is not None:
    nll = 0.5 * per_pixel_se * jnp.exp(-2 * log_scale) + log_scale + _HALF_LOG_2PI
    reconstruction = jnp.mean(nll, axis=(1, 2, 3))
  else:
    reconstruction = mse
  if config.loss.log_magnitude_weight:
    reconstruction = reconstruction + config.loss.log_magnitude_weight * log_magnitude_error(
        mean, x, config.audio, config.loss.log_magnitude_eps)
  norm = jnp.maximum(weights.sum(), 1.0)
  return (reconstruction * weights).sum() / norm, (mse * weights).sum() / norm


def spectrogram_loss(config) -> Callable:
  """The study's `loss_fn(decoded [B, H, W, C], batch [B, H, W, 2]) -> (reconstruction, metrics)`:
  the spectrogram MSE, or the Gaussian decoder's per-pixel NLL (model3), and the optional
  log-magnitude term (`_losses`)."""
  def loss_fn(decoded, batch):
    mean, log_scale = vqvae.split_decoder_output(decoded, config)
    reconstruction, mse = _losses(mean, log_scale, batch, jnp.ones(batch.shape[:1]), config)
    return reconstruction, {"spectrogram_mse": mse}
  return loss_fn


# ------------------------------------------------------------------ shard arithmetic
def shard_of(axis_name: str | None):
  """(number of shards, this shard's index) of a step mapped over `axis_name` (pmap); (1, 0)
  when the step sees the whole batch (one device, or sharded `jit`)."""
  if axis_name is None:
    return 1, 0
  return lax.axis_size(axis_name), lax.axis_index(axis_name)


def restart_candidate_rows(rng: jax.Array, local_rows: int, count: int,
                           axis_name: str | None = None):
  """`count` distinct latent rows offered to dead-code restarts, drawn over the *global* batch
  (`local_rows` per shard) with the same draw on every shard, so a pmap step restarts the codes
  a single-device step would.

  Returns:
    (idx int32 [count]: the rows in this shard's latents (clipped where another shard holds them),
     held bool [count]: whether this shard holds each one). Each shard zeroes the candidates it
    does not hold and a psum over the axis assembles them.
  """
  num_shards, shard = shard_of(axis_name)
  # Distinct rows: a row drawn twice would offer the same vector to two dead codes, and the copy
  # never wins a tie, so it goes dead again.
  global_idx = jax.random.choice(rng, local_rows * num_shards, (count,), replace=False)
  local_idx = global_idx - shard * local_rows
  held = (local_idx >= 0) & (local_idx < local_rows)
  return jnp.clip(local_idx, 0, local_rows - 1), held


def local_statistic_groups(groups: int, axis_name: str | None = None) -> int:
  """The EMA sums' row groups each shard forms: its share of `groups`, so the partial sums are the
  ones one device would form (`rvq._code_counts_and_sums`)."""
  return max(1, groups // shard_of(axis_name)[0])


# ------------------------------------------------------------------ the steps
def apply_gradients(optimizer: optax.GradientTransformation, params, opt_state, grads, loss,
                    also_finite=()):
  """The optax update every task's step ends with, and its finite check.

  Returns:
    (new params, new opt_state, finite: bool [] -- the loss, the new params and the arrays of
    `also_finite` (e.g. the new codebooks) are all finite; the driver never checkpoints a state
    whose step said otherwise).
  """
  updates, opt_state = optimizer.update(grads, opt_state, params)
  params = optax.apply_updates(params, updates)
  finite = jnp.isfinite(loss) & jnp.all(jnp.stack(
      [jnp.isfinite(x).all() for x in jax.tree.leaves((params, also_finite))]))
  return params, opt_state, finite


def make_train_step(forward_fn: Callable, optimizer: optax.GradientTransformation,
                    quantizer: QuantizerSettings, axis_name: str | None = None):
  """Returns the pure `train_step(state, batch) -> (state, metrics)` of any model around the
  residual quantizer.

  Args:
    forward_fn: `(params, batch, rng, quantize) -> (loss [], metrics {name: array}, aux)`: the
      research model's forward pass and loss, differentiated with respect to `params`
      (`state.params`, a Flax variables dict). It calls `quantize(latents [..., D]) ->
      (straight-through quantized latents [..., D], rvq.QuantizeOutput)` once, on whatever
      latents it makes, and returns that output as `aux['quant']` (its commitment is the
      model's to weigh into the loss). `rng` is this step's key for the model's own draws
      (dropout). `aux['variables']`, when present, holds collections that the forward pass
      updated instead of learning (Flax `mutable`, e.g. BatchNorm's 'batch_stats'); they
      replace those entries of the params after the optimizer step.
    optimizer: the optax transformation of `state.opt_state`.
    quantizer: how the codebooks `state.codebook` (`rvq.CodebookState` [L, K, D]) train.
    axis_name: the pmap / shard_map axis to reduce over; None on one device or under sharded jit.

  What the step does, whatever the model: gradients of `forward_fn`'s loss; under `axis_name`
  the mean of gradients and metrics and the sum of the EMA statistics over devices; the EMA
  codebook update (only for the levels used: quantizer dropout), dead-code restarts, the optax
  update and the finite check (`apply_gradients`). metrics: those of `forward_fn` plus 'counts'
  [L, K] (global code counts of this step), 'levels_used' and 'finite'.
  """
  q = quantizer

  def train_step(state: TrainState, batch):
    levels_rng, candidates_rng, restart_rng, model_rng = (
        rngs.step_key(state.rng, state.step, purpose)
        for purpose in (rngs.LEVELS, rngs.CANDIDATES, rngs.RESTART, rngs.DROPOUT))
    num_levels = (jax.random.randint(levels_rng, (), q.dropout_min_levels, q.levels + 1)
                  if q.dropout else q.levels)
    statistic_groups = local_statistic_groups(q.statistic_groups, axis_name)

    def quantize(latents):
      flat = latents.reshape(-1, latents.shape[-1]).astype(jnp.float32)
      candidate_idx = held = None
      if q.dead_code_steps > 0:   # the rows are known at trace time, from the latents' shape
        candidate_idx, held = restart_candidate_rows(candidates_rng, flat.shape[0],
                                                     q.restart_candidates, axis_name)
      out = rvq.quantize(state.codebook.embed, flat, num_levels, candidate_idx, q.block_rows,
                         statistic_groups, q.nearest_search)
      if held is not None:   # rows another shard holds: zero here, the psum assembles them
        out = out._replace(candidates=jnp.where(held[None, :, None], out.candidates, 0.0))
      return out.quantized.reshape(latents.shape), out

    def loss_fn(params):
      loss, metrics, aux = forward_fn(params, batch, model_rng, quantize)
      return loss, (metrics, aux)

    grads, (metrics, aux) = jax.grad(loss_fn, has_aux=True)(state.params)
    quant = aux["quant"]
    counts, sums, candidates = quant.counts, quant.sums, quant.candidates
    if axis_name is not None:
      grads, metrics = lax.pmean((grads, metrics), axis_name)
      counts, sums, candidates = lax.psum((counts, sums, candidates), axis_name)
    # Levels dropped this step (quantizer dropout) saw no vectors: leave them as they are.
    active = jnp.arange(q.levels) < num_levels
    codebook = rvq.ema_update(state.codebook, counts, sums, q.decay, q.eps, active=active)
    if q.dead_code_steps > 0:
      codebook = rvq.restart_dead_codes(codebook, candidates, restart_rng, q.dead_code_steps,
                                        q.restart_count, active=active)
    params, opt_state, finite = apply_gradients(optimizer, state.params, state.opt_state, grads,
                                                metrics["loss"], codebook.embed)
    if aux.get("variables"):
      updated = aux["variables"]
      if axis_name is not None:   # running statistics: the mean over devices
        updated = lax.pmean(updated, axis_name)
      params = {**params, **updated}
    metrics = dict(metrics, counts=counts, levels_used=jnp.asarray(num_levels, jnp.float32),
                   finite=finite.astype(jnp.float32))
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              codebook=codebook)
    return new_state, metrics

  return train_step


def autoencoder_forward(model, loss_fn: Callable, beta: float = 0.25) -> Callable:
  """`forward_fn` for `make_train_step` of a Flax module with `encode(batch) -> latents [B, ...,
  D]` and `decode(z) -> output` (any layout: images, spectrograms, waveforms), no dropout and no
  mutable state.

  loss_fn: `(decoded float32, batch) -> (reconstruction [], {name: []})`; the loss is
  reconstruction + beta x the commitment summed over levels. metrics: 'loss', 'reconstruction',
  'commitment', those of `loss_fn`, per level [L] 'commitment_per_level' and 'residual_norm'.
  """
  def forward(params, batch, rng, quantize):
    del rng   # a deterministic model
    latents = model.apply(params, batch, method="encode").astype(jnp.float32)
    quantized, quant = quantize(latents)
    decoded = model.apply(params, quantized, method="decode").astype(jnp.float32)
    reconstruction, extra = loss_fn(decoded, batch)
    commitment = quant.commitment.sum()
    loss = reconstruction + beta * commitment
    metrics = {"loss": loss, "reconstruction": reconstruction, "commitment": commitment, **extra,
               "commitment_per_level": quant.commitment, "residual_norm": quant.residual_norm}
    return loss, metrics, {"quant": quant}
  return forward


def make_vqvae_train_step(config, axis_name: str | None = None):
  """This project's train step, from a config: the study's VQ-VAE (`vqvae.make_model`), Adam
  (`make_optimizer`), the `rvq` section and the spectrogram loss. batch: [B, H, W, 2]."""
  forward = autoencoder_forward(vqvae.make_model(config), spectrogram_loss(config),
                                config.loss.beta)
  return make_train_step(forward, make_optimizer(config), QuantizerSettings.from_config(config.rvq),
                         axis_name)


def make_eval_step(config):
  """Returns the pure `eval_step(state, batch, weights) -> metrics` (all levels, no update).

  weights: float [B], 1 for real examples and 0 for padding; metrics are weighted means over the
  batch plus 'weight' (the sum of weights) and 'counts' [L, K], so batches combine exactly
  (`combine_eval_metrics`).
  """
  model = vqvae.make_model(config)

  def eval_step(state: TrainState, batch: jax.Array, weights: jax.Array):
    out = vqvae.forward(model, state.params, state.codebook.embed, batch, config)
    reconstruction, mse = _losses(out.mean, out.log_scale, batch, weights, config)
    # Per-example commitment, so padded examples do not count.
    positions = out.latents.shape[1] * out.latents.shape[2]
    w_rows = jnp.repeat(weights, positions)
    z = out.latents.reshape(-1, out.latents.shape[-1])
    per_level = _weighted_commitment(state.codebook.embed, z, out.quant.codes, w_rows)
    commitment = per_level.sum()
    counts = jnp.einsum("n,lnk->lk", w_rows,
                        jax.nn.one_hot(out.quant.codes.T, config.rvq.codes, dtype=jnp.float32))
    return {"loss": reconstruction + config.loss.beta * commitment,
            "reconstruction": reconstruction, "commitment": commitment,
            "spectrogram_mse": mse, "commitment_per_level": per_level,
            "weight": weights.sum(), "counts": counts}

  return eval_step


def _weighted_commitment(embed, latents, codes, row_weights):
  """Per-level weighted mean squared residual-to-code distance [L] for given codes [N, L]."""
  def level(residual, inputs):
    codebook, idx = inputs
    q = codebook[idx]
    se = jnp.mean((residual - q)**2, axis=-1)
    return residual - q, (se * row_weights).sum() / jnp.maximum(row_weights.sum(), 1.0)
  _, per_level = lax.scan(level, latents, (embed, codes.T))
  return per_level


def combine_eval_metrics(batches: list[dict]) -> dict:
  """Weighted mean of per-batch eval metrics (counts summed)."""
  total = sum(float(b["weight"]) for b in batches)
  out = {}
  for key in batches[0]:
    if key in ("weight", "counts"):
      out[key] = functools.reduce(lambda a, b: a + b, [np.asarray(b[key]) for b in batches])
    else:
      out[key] = sum(np.asarray(b[key]) * float(b["weight"]) for b in batches) / max(total, 1.0)
  return out
