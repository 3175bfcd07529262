"""Training the autoregressive anchor prior (configs/code_transformer.py): a causal transformer over
a trained VQ-VAE's RVQ codes (rvq_jax.models.code_transformer), the baseline the RealNVP flow is
measured against.

Its data are the codes the flow's targets are made from (`prior_targets.latent_codes`: the same
VQ-VAE, the same cache), laid out as token sequences (`code_transformer.to_sequence`). The loss is
the exact negative log-likelihood of the codes, in bits per code; the validation split's is
evaluated at every epoch end. Sampling and scoring: rvq_jax.eval.code_prior_report.
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

from rvq_jax import data as data_lib
from rvq_jax.models import code_transformer
from rvq_jax.train import checkpoints
from rvq_jax.train import parallel as parallel_lib
from rvq_jax.train import prior_targets
from rvq_jax.train import rngs
from rvq_jax.train import steps
from rvq_jax.train import trainer


@flax.struct.dataclass
class CodePriorState:
  """step int32 []; params of `CodeTransformer`; optax state; rng key data uint32 [2] (step i's
  dropout draws come from fold_in(rng, i))."""
  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array


def sequence_shape(config, vq_config) -> tuple[int, int]:
  """(T tokens, S codes per token) of the sequences: the VQ-VAE's latent grid [h, w] and the
  modelled levels (`target.levels`, unset: all), `transformer.rows_per_token` rows per token."""
  h, w, _ = prior_targets.target_shape(config, vq_config)
  levels = config.target.levels or vq_config.rvq.levels
  g = config.transformer.rows_per_token
  return h * w // g, g * levels


def make_model(config, vq_config, decode: bool = False) -> code_transformer.CodeTransformer:
  tokens, slots = sequence_shape(config, vq_config)
  return code_transformer.make_model(config.transformer, tokens, slots, vq_config.rvq.codes,
                                     decode=decode)


def sequences(config, codes: np.ndarray) -> np.ndarray:
  """RVQ codes [N, h, w, L'] -> int32 token sequences [N, T, S] of the modelled levels."""
  levels = config.target.levels or codes.shape[-1]
  return np.asarray(code_transformer.to_sequence(codes[..., :levels].astype(np.int32),
                                                 config.transformer.rows_per_token))


def create_state(config, vq_config, rng: jax.Array) -> CodePriorState:
  model = make_model(config, vq_config)
  tokens, slots = sequence_shape(config, vq_config)
  params = model.init(rngs.stream(rng, rngs.PARAMS), jnp.zeros((1, tokens, slots), jnp.int32),
                      jnp.zeros(1, jnp.int32))
  return CodePriorState(step=jnp.zeros((), jnp.int32), params=params,
                        opt_state=steps.make_optimizer(config).init(params),
                        rng=rngs.stream(rng, rngs.STEP))


def make_train_step(config, vq_config, axis_name: str | None = None):
  """Pure `step(state, (tokens int32 [B, T, S], labels int32 [B])) -> (state, metrics)`; the loss
  is the mean bits per code (with dropout); metrics: 'bits_per_code', 'grad_norm', 'finite'."""
  model = make_model(config, vq_config)
  tx = steps.make_optimizer(config)

  def step(state: CodePriorState, batch):
    tokens, labels = batch
    dropout_rng = rngs.step_key(state.rng, state.step, rngs.DROPOUT)
    if axis_name is not None:
      dropout_rng = jax.random.fold_in(dropout_rng, steps.shard_of(axis_name)[1])

    def loss_fn(params):
      logits = model.apply(params, tokens, labels, train=True, rngs={"dropout": dropout_rng})
      return code_transformer.bits_per_code(logits, tokens).mean()

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    if axis_name is not None:
      loss, grads = lax.pmean((loss, grads), axis_name)
    params, opt_state, finite = steps.apply_gradients(tx, state.params, state.opt_state, grads,
                                                      loss)
    return (state.replace(step=state.step + 1, params=params, opt_state=opt_state),
            {"bits_per_code": loss, "grad_norm": optax.tree.norm(grads),
             "finite": finite.astype(jnp.float32)})

  return step


def make_bits_fn(config, vq_config):
  """Jitted `(params, tokens [B, T, S], labels [B]) -> bits per code [B]` (no dropout)."""
  model = make_model(config, vq_config)
  return jax.jit(lambda params, tokens, labels: code_transformer.bits_per_code(
      model.apply(params, tokens, labels), tokens))


def mean_bits_per_code(bits_fn, params, tokens: np.ndarray, labels: np.ndarray,
                       batch_size: int) -> float:
  """Mean bits per code of a whole split (padding weighted out)."""
  total = 0.0
  for chunk, start, real in data_lib.padded_batches(tokens, batch_size):
    lab = np.zeros(batch_size, np.int32)
    lab[:real] = labels[start:start + real]
    total += float(np.asarray(bits_fn(params, chunk, jnp.asarray(lab)))[:real].sum())
  return total / len(tokens)


def split_sequences(config, run: prior_targets.VQVAERun) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Per split: (token sequences [N, T, S], digit labels [N])."""
  codes = prior_targets.latent_codes(config, run)
  return {s: (sequences(config, codes[s]), run.dataset[s].digits.astype(np.int32))
          for s in data_lib.SPLITS}


def make_task(config, run: prior_targets.VQVAERun, splits) -> trainer.Task:
  bits_fn = make_bits_fn(config, run.config)
  val_tokens, val_labels = splits["validation"]

  def evaluate(state):
    return {"validation": {"bits_per_code": mean_bits_per_code(
        bits_fn, state.params, val_tokens, val_labels, config.train.eval_batch_size)}}

  tokens, slots = sequence_shape(config, run.config)
  return trainer.Task(
      name="code_prior",
      init_fn=lambda rng, batch: create_state(config, run.config, rng),
      make_step=functools.partial(make_train_step, config, run.config),
      examples=splits["train"], evaluate=evaluate, loss_key="bits_per_code",
      divergence_advice="lower optim.learning_rate (or optim.grad_clip_norm) in a new workdir",
      run_info=dict(tokens=tokens, slots=slots, codes=int(run.config.rvq.codes),
                    vqvae_sha256=prior_targets.vqvae_fingerprint(run)))


def train_code_prior(config, workdir: str, run: prior_targets.VQVAERun | None = None):
  """Trains (or resumes) the anchor in `workdir`. Returns (state, splits, run)."""
  parallel = parallel_lib.Parallel(config)
  with trainer.open_run(config, workdir) as changes:
    run = run or prior_targets.load_vqvae(config)
    splits = split_sequences(config, run)
    state = trainer.fit(make_task(config, run, splits), trainer.Schedule.from_config(config.train),
                        workdir, parallel, config.seed, changes)
  return state, splits, run


def restore_code_prior(config, workdir, vq_config) -> CodePriorState:
  """The latest `CodePriorState` in `workdir` (a run's checkpoints or shipped weights)."""
  abstract = jax.eval_shape(lambda r: create_state(config, vq_config, r),
                            jax.random.key_data(jax.random.key(0)))
  return checkpoints.restore_for_reading(
      workdir, abstract, "train the anchor first (python -m rvq_jax.main "
      "--config=configs/code_transformer.py --workdir=...)")
