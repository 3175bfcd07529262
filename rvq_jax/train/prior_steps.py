"""The RealNVP prior's state and pure steps: `PriorState`, its creation (actnorm initialised from a
dequantized batch), `make_prior_train_step` (mean bits/dim of freshly dequantized targets) and
`make_prior_eval_step` / `evaluate_bits_per_dim`: the bound on the discrete latents' bits/dim from
held-out targets with one fixed draw of uniform cell noise (see `prior_targets`)."""

from __future__ import annotations

from typing import Any

import flax
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import optax

from rvq_jax import data as data_lib
from rvq_jax.models import realnvp
from rvq_jax.train import prior_targets
from rvq_jax.train import rngs
from rvq_jax.train import steps


@flax.struct.dataclass
class PriorState:
  """Everything a prior run carries, as one pytree (orbax saves and restores it whole).

  Attributes:
    step: int32 [] optimizer steps taken.
    params: Flax params of `realnvp.FlowPrior`.
    opt_state: optax state.
    stats: the target-space constants of `Targets.stats` (fixed during training; noise_std and
      cell_width set the dequantization).
    rng: PRNG key data uint32 [2]; step i draws its dequantization noise from fold_in(rng, i).
  """
  step: jax.Array
  params: Any
  opt_state: Any
  stats: dict
  rng: jax.Array


def make_model(config, shape, guidance: float = 0.0) -> realnvp.FlowPrior:
  return realnvp.make_prior(config.prior, shape, guidance)


def create_prior_state(config, rng: jax.Array, stats: dict, first_batch) -> PriorState:
  """Initial state; actnorm layers are initialised from `first_batch` = (targets [B, H, W, C],
  labels [B]) with dequantization noise added."""
  targets, labels = first_batch
  model = make_model(config, targets.shape[1:])
  init_rng, noise_rng, state_rng = (rngs.stream(rng, tag)
                                    for tag in (rngs.PARAMS, rngs.INIT_NOISE, rngs.STEP))
  noisy = targets + prior_targets.training_noise(config, noise_rng, targets.shape, stats)
  params = model.init(init_rng, noisy, labels, stats["mean"], stats["std"],
                      method=realnvp.FlowPrior.log_prob)
  return PriorState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=steps.make_optimizer(config).init(params),
                    stats=jax.tree.map(jnp.asarray, stats), rng=state_rng)


def train_loss_key(config) -> str:
  """The training loss's name: with uniform noise alone it is the bound on the discrete latents'
  bits/dim; with Gaussian noise (or noise augmentation) only the differential cross-entropy of
  the noisy targets."""
  if config.target.dequantization_noise == "uniform" and config.target.noise_augmentation == 0:
    return "bits_per_dim"
  return "noisy_cross_entropy"


def make_prior_train_step(config, shape, axis_name: str | None = None):
  """Returns the pure `prior_train_step(state, (targets, labels)) -> (state, metrics)`.

  targets: float32 [B, H, W, C] grid-snapped (B local under pmap), labels int32 [B] (each
  replaced by realnvp.NULL_LABEL with probability prior.label_dropout). Loss: mean bits/dim of
  the dequantized batch (`train_loss_key`). The noise is drawn for the global batch
  and sliced, so pmap, sharded and single-device runs of the same global batch take the same
  step. metrics: the loss, 'grad_norm', 'finite'.
  """
  model = make_model(config, shape)
  tx = steps.make_optimizer(config)
  dims = int(np.prod(shape))
  bound = train_loss_key(config) == "bits_per_dim"
  loss_key = train_loss_key(config)

  def loss_fn(params, x, labels, stats):
    log_prob = model.apply(params, x, labels, stats["mean"], stats["std"],
                           method=realnvp.FlowPrior.log_prob)
    if bound:
      return jnp.mean(realnvp.discrete_bits_per_dim(log_prob, dims, stats["cell_width"]))
    return jnp.mean(realnvp.bits_per_dim(log_prob, dims))

  def prior_train_step(state: PriorState, batch):
    targets, labels = batch
    local = targets.shape[0]
    shards, shard = steps.shard_of(axis_name)
    noise = prior_targets.training_noise(config, rngs.step_key(state.rng, state.step, rngs.NOISE),
                                         (local * shards,) + targets.shape[1:], state.stats)
    x = targets + lax.dynamic_slice_in_dim(noise, shard * local, local)
    if config.prior.label_dropout > 0:   # classifier-free guidance: some labels become "none"
      dropped = jax.random.bernoulli(rngs.step_key(state.rng, state.step, rngs.DROPOUT),
                                     config.prior.label_dropout, (local * shards,))
      labels = jnp.where(lax.dynamic_slice_in_dim(dropped, shard * local, local),
                         realnvp.NULL_LABEL, labels)
    loss, grads = jax.value_and_grad(loss_fn)(state.params, x, labels, state.stats)
    if axis_name is not None:
      loss, grads = lax.pmean((loss, grads), axis_name)
    params, opt_state, finite = steps.apply_gradients(tx, state.params, state.opt_state, grads,
                                                      loss)
    metrics = {loss_key: loss, "grad_norm": optax.tree.norm(grads),
               "finite": finite.astype(jnp.float32)}
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  return prior_train_step


def make_prior_eval_step(config, shape):
  """`eval_step(state, targets, labels, weights) -> (weighted bits/dim sum, weight sum)`: the
  bound on the discrete latents' bits/dim; targets already carry their fixed uniform cell noise
  (`prior_targets.fixed_noise_targets`)."""
  model = make_model(config, shape)
  dims = int(np.prod(shape))

  def eval_step(state: PriorState, targets, labels, weights):
    log_prob = model.apply(state.params, targets, labels, state.stats["mean"], state.stats["std"],
                           method=realnvp.FlowPrior.log_prob)
    bound = realnvp.discrete_bits_per_dim(log_prob, dims, state.stats["cell_width"])
    return (bound * weights).sum(), weights.sum()

  return eval_step


def evaluate_bits_per_dim(eval_step, state, x: np.ndarray, labels: np.ndarray,
                          batch_size: int) -> float:
  """Mean of `eval_step`'s bits/dim over all of x [N, H, W, C] (padding weighted out)."""
  total, weight = 0.0, 0.0
  for (chunk, start, real) in data_lib.padded_batches(x, batch_size):
    lab = np.zeros(batch_size, np.int32)
    lab[:real] = labels[start:start + real]
    s, w = eval_step(state, chunk, jnp.asarray(lab),
                     jnp.asarray(np.arange(batch_size) < real, jnp.float32))
    total, weight = total + float(s), weight + float(w)
  return total / weight
