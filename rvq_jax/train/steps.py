"""TrainState, its creation, and the pure train and eval steps of the RVQ-VAE.

`make_train_step(config, axis_name=None)` returns `train_step(state, batch) -> (state, metrics)`:
pure, jit-able, no host transfers. With `axis_name` (pmap / shard_map), gradients and metrics are
averaged and the EMA statistics (counts and sums per code) summed over that axis, so every device
applies the same codebook update. Under sharded `jit` leave `axis_name=None`: the compiler reduces.
"""

from __future__ import annotations

import functools
from typing import Any

import flax
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import optax

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


def create_train_state(config, rng: jax.Array, first_batch: jax.Array) -> TrainState:
  """Initial state. first_batch: float [B, H, W, 2] spectrograms (shapes; k-means init uses values).

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
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=make_optimizer(config).init(params), codebook=codebook,
                    rng=state_rng)


def _losses(config, out: vqvae.ForwardOutput, x: jax.Array, weights: jax.Array):
  """Per-example-weighted reconstruction loss and spectrogram MSE. weights: [B]."""
  per_pixel_se = (out.mean - x)**2
  mse = jnp.mean(per_pixel_se, axis=(1, 2, 3))
  if out.log_scale is not None:
    nll = 0.5 * per_pixel_se * jnp.exp(-2 * out.log_scale) + out.log_scale + _HALF_LOG_2PI
    reconstruction = jnp.mean(nll, axis=(1, 2, 3))
  else:
    reconstruction = mse
  norm = jnp.maximum(weights.sum(), 1.0)
  return (reconstruction * weights).sum() / norm, (mse * weights).sum() / norm


def make_train_step(config, axis_name: str | None = None):
  """Returns the pure `train_step(state, batch) -> (state, metrics)`. batch: [B, H, W, 2].

  metrics: 'loss', 'reconstruction' (MSE, or Gaussian NLL per pixel), 'commitment' (sum over
  levels), 'spectrogram_mse', per-level [L] 'commitment_per_level' and 'residual_norm', and
  'counts' [L, K] (global code counts of this step), 'levels_used' (quantizer dropout), and
  'finite' (1.0 when the loss and the updated params and codebooks are all finite).
  """
  model = vqvae.make_model(config)
  tx = make_optimizer(config)
  r = config.rvq

  def loss_fn(params, codebook, batch, num_levels, candidate_idx, statistic_groups):
    out = vqvae.forward(model, params, codebook.embed, batch, config, num_levels, candidate_idx,
                        statistic_groups)
    reconstruction, mse = _losses(config, out, batch, jnp.ones(batch.shape[:1]))
    commitment = out.quant.commitment.sum()
    loss = reconstruction + config.loss.beta * commitment
    metrics = {"loss": loss, "reconstruction": reconstruction, "commitment": commitment,
               "spectrogram_mse": mse, "commitment_per_level": out.quant.commitment,
               "residual_norm": out.quant.residual_norm}
    return loss, (metrics, out.quant)

  def train_step(state: TrainState, batch: jax.Array):
    levels_rng, candidates_rng, restart_rng = (
        rngs.step_key(state.rng, state.step, purpose)
        for purpose in (rngs.LEVELS, rngs.CANDIDATES, rngs.RESTART))
    num_levels = (jax.random.randint(levels_rng, (), r.dropout_min_levels, r.levels + 1)
                  if r.dropout else r.levels)
    # Restart candidates: latent positions drawn over the *global* batch, identical on every
    # device; under pmap each device supplies the ones it holds and a psum assembles them, so
    # the result equals the single-device step.
    local_positions = batch.shape[0] * int(np.prod(batch.shape[1:3])) // 4 ** len(
        config.model.encoder_features)
    num_shards = 1 if axis_name is None else lax.axis_size(axis_name)
    shard = 0 if axis_name is None else lax.axis_index(axis_name)
    candidate_idx, held = None, None
    if r.dead_code_steps > 0:
      # Distinct positions: a position drawn twice would offer the same vector to two dead
      # codes, and the copy never wins a tie, so it goes dead again.
      global_idx = jax.random.choice(candidates_rng, local_positions * num_shards,
                                     (r.restart_candidates,), replace=False)
      local_idx = global_idx - shard * local_positions
      held = (local_idx >= 0) & (local_idx < local_positions)
      candidate_idx = jnp.clip(local_idx, 0, local_positions - 1)
    # Under pmap each device sums its rows in its share of the groups, so the partial sums are
    # the ones one device would form (rvq._code_counts_and_sums).
    statistic_groups = max(1, r.statistic_groups // num_shards)
    grads, (metrics, quant) = jax.grad(loss_fn, has_aux=True, argnums=0)(
        state.params, state.codebook, batch, num_levels, candidate_idx, statistic_groups)
    counts, sums, candidates = quant.counts, quant.sums, quant.candidates
    if held is not None:
      candidates = jnp.where(held[None, :, None], candidates, 0.0)
    if axis_name is not None:
      grads, metrics = lax.pmean((grads, metrics), axis_name)
      counts, sums, candidates = lax.psum((counts, sums, candidates), axis_name)
    # Levels dropped this step (quantizer dropout) saw no vectors: leave them as they are.
    active = jnp.arange(r.levels) < num_levels
    codebook = rvq.ema_update(state.codebook, counts, sums, r.decay, r.eps, active=active)
    if r.dead_code_steps > 0:
      codebook = rvq.restart_dead_codes(codebook, candidates, restart_rng, r.dead_code_steps,
                                        r.restart_count, active=active)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    finite = jnp.isfinite(metrics["loss"]) & jnp.all(jnp.stack(
        [jnp.isfinite(x).all() for x in jax.tree.leaves((params, codebook.embed))]))
    metrics = dict(metrics, counts=counts, levels_used=jnp.asarray(num_levels, jnp.float32),
                   finite=finite.astype(jnp.float32))
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              codebook=codebook)
    return new_state, metrics

  return train_step


def make_eval_step(config, axis_name: str | None = None):
  """Returns the pure `eval_step(state, batch, weights) -> metrics` (all levels, no update).

  weights: float [B], 1 for real examples and 0 for padding; metrics are weighted means over the
  batch plus 'weight' (the sum of weights) and 'counts' [L, K], so batches combine exactly.
  """
  model = vqvae.make_model(config)

  def eval_step(state: TrainState, batch: jax.Array, weights: jax.Array):
    out = vqvae.forward(model, state.params, state.codebook.embed, batch, config)
    reconstruction, mse = _losses(config, out, batch, weights)
    # Per-example commitment, so padded examples do not count.
    positions = out.latents.shape[1] * out.latents.shape[2]
    w_rows = jnp.repeat(weights, positions)
    z = out.latents.reshape(-1, out.latents.shape[-1])
    per_level = _weighted_commitment(state.codebook.embed, z, out.quant.codes, w_rows)
    commitment = per_level.sum()
    counts = jnp.einsum("n,lnk->lk", w_rows,
                        jax.nn.one_hot(out.quant.codes.T, config.rvq.codes, dtype=jnp.float32))
    metrics = {"loss": reconstruction + config.loss.beta * commitment,
               "reconstruction": reconstruction, "commitment": commitment,
               "spectrogram_mse": mse, "commitment_per_level": per_level,
               "weight": weights.sum(), "counts": counts}
    if axis_name is not None:
      total = lax.psum(metrics["weight"], axis_name)
      metrics = {k: (lax.psum(v, axis_name) if k in ("weight", "counts")
                     else lax.psum(v * metrics["weight"], axis_name) / jnp.maximum(total, 1.0))
                 for k, v in metrics.items()}
    return metrics

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
