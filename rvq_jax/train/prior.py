"""Training the RealNVP prior (configs/realnvp.py): its `trainer.Task` and `train_prior`, and
`restore_prior` for the modes that sample and score.

The targets (a trained VQ-VAE's latents and their constants) are `prior_targets`; the state and
pure steps `prior_steps`; the loop, checkpoints and logs the shared `trainer`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from rvq_jax.train import checkpoints
from rvq_jax.train import parallel as parallel_lib
from rvq_jax.train import prior_steps
from rvq_jax.train import prior_targets
from rvq_jax.train import trainer
from rvq_jax.train import validation


def make_task(config, targets: prior_targets.Targets, vqvae_sha256: str | None = None
              ) -> trainer.Task:
  """The prior as a `trainer.Task`: training targets with their digit labels; the bound on the
  bits/dim of the validation and test latents (one fixed draw of cell noise) at every epoch end.
  `vqvae_sha256`: the VQ-VAE's fingerprint, kept in run_info.json (`prior_targets.check_vqvae`)."""
  shape = targets.shape
  eval_step = jax.jit(prior_steps.make_prior_eval_step(config, shape))
  held_out = {s: (prior_targets.fixed_noise_targets(config, targets, s), targets.splits[s][1])
              for s in ("validation", "test")}

  def evaluate(state):
    return {split: {"bits_per_dim": prior_steps.evaluate_bits_per_dim(
        eval_step, state, x, labels, config.train.eval_batch_size)}
            for split, (x, labels) in held_out.items()}

  train_x, train_labels = targets.splits["train"]
  return trainer.Task(
      name="prior",
      init_fn=lambda rng, batch: prior_steps.create_prior_state(config, rng, targets.stats, batch),
      make_step=functools.partial(prior_steps.make_prior_train_step, config, shape),
      examples=(np.asarray(train_x), np.asarray(train_labels)),
      evaluate=evaluate,
      loss_key=prior_steps.train_loss_key(config),
      divergence_advice="lower optim.learning_rate (or raise target.dequantization or lower "
      "optim.grad_clip_norm in a new workdir)",
      run_info=dict(target_shape=list(shape), spacing=targets.spacing,
                    vqvae_sha256=vqvae_sha256,
                    noise_std=float(targets.stats["noise_std"]),
                    cell_width=float(targets.stats["cell_width"]),
                    distinct_cells=targets.distinct_cells,
                    variance_kept=targets.variance_kept))


def train_prior(config, workdir: str, run: prior_targets.VQVAERun | None = None):
  """Trains (or resumes) the prior in `workdir`. Returns (state, targets, run)."""
  parallel = parallel_lib.Parallel(config)
  with trainer.open_run(config, workdir) as changes:
    run = run or prior_targets.load_vqvae(config)
    targets = prior_targets.prepare_targets(config, run)
    validation.validate_target_shape(config, targets.shape)
    task = make_task(config, targets, prior_targets.vqvae_fingerprint(run))
    state = trainer.fit(task, trainer.Schedule.from_config(config.train),
                        workdir, parallel, config.seed, changes)
  return state, targets, run


def restore_prior(config, workdir, vq_config) -> prior_steps.PriorState:
  """The latest checkpointed `PriorState` in `workdir` (or its shipped weights), on the default
  device; shapes come from the configs, so no targets need preparing."""
  shape = prior_targets.target_shape(config, vq_config)
  first = (jnp.zeros((config.train.batch_size,) + shape), jnp.zeros(config.train.batch_size,
                                                                    jnp.int32))
  stats = prior_targets.stats_template(config, vq_config)
  abstract = jax.eval_shape(lambda r, b: prior_steps.create_prior_state(config, r, stats, b),
                            jax.random.key_data(jax.random.key(0)), first)
  return checkpoints.restore_for_reading(
      workdir, abstract, "train the prior first (python -m rvq_jax.main "
      "--config=configs/realnvp.py --workdir=...)")
