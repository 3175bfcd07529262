"""Training the digit classifier (configs/classifier.py): its state, pure step and `trainer.Task`.

`train_classifier(config, workdir)` trains on the training split only, with validation accuracy at
every epoch end and a checkpoint at every epoch end (so a killed run resumes from its last epoch),
in any `parallel.mode`. Scoring with a trained classifier is `rvq_jax.eval.judge`.
"""

from __future__ import annotations

import functools
from typing import Any

import flax
import jax
from jax import lax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from rvq_jax import audio
from rvq_jax import data as data_lib
from rvq_jax import errors
from rvq_jax import run_config
from rvq_jax.data import augment as augment_lib
from rvq_jax.models import classifier as classifier_lib
from rvq_jax.train import checkpoints
from rvq_jax.train import parallel as parallel_lib
from rvq_jax.train import rngs
from rvq_jax.train import steps
from rvq_jax.train import trainer


@flax.struct.dataclass
class ClassifierState:
  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array


def _optimizer(config, steps_per_epoch: int = 1):
  """AdamW with linear warm-up (one epoch) and cosine decay to 0 over the run (a one-epoch run
  decays over one step after its warm-up)."""
  c = config.classifier
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, c.learning_rate, steps_per_epoch,
      max(steps_per_epoch * config.train.num_epochs, steps_per_epoch + 1))
  return optax.adamw(schedule, weight_decay=c.weight_decay)


def _steps_per_epoch(config, num_train: int) -> int:
  return max(num_train // config.train.batch_size, 1)


def create_classifier_state(config, rng: jax.Array, example: jax.Array) -> ClassifierState:
  """example: [1, bins, frames, 2] spectrogram (for shapes)."""
  model = classifier_lib.make_classifier(config)
  init_rng, state_rng = rngs.stream(rng, rngs.PARAMS), rngs.stream(rng, rngs.STEP)
  x = classifier_lib.model_input(example, config)
  params = model.init(init_rng, x)
  # The optimizer state's structure does not depend on the schedule's lengths.
  return ClassifierState(jnp.zeros((), jnp.int32), params, _optimizer(config).init(params),
                         state_rng)


def make_classifier_step(config, steps_per_epoch: int, axis_name: str | None = None):
  """Pure `step(state, (waveforms [B, N], lengths [B], labels [B])) -> (state, metrics)`.

  The batch is augmented as waveforms (`classifier.augment`, rvq_jax.data.augment) and turned into
  spectrograms inside the step, so every epoch sees new speeds, shifts, gains and noise. Under
  pmap (`axis_name`) each device augments its rows with its own draws and gradients are averaged.
  metrics: 'loss', 'accuracy', 'finite'.
  """
  model = classifier_lib.make_classifier(config)
  tx = _optimizer(config, steps_per_epoch)
  c = config.classifier

  def step(state, batch):
    waveforms, lengths, labels = batch
    _, shard = steps.shard_of(axis_name)
    if c.augment.enabled:
      augment_rng = rngs.step_key(state.rng, state.step, rngs.NOISE)
      if axis_name is not None:
        augment_rng = jax.random.fold_in(augment_rng, shard)
      waveforms = augment_lib.augment(augment_rng, waveforms, lengths, c.augment)
    dropout_rng = rngs.step_key(state.rng, state.step, rngs.DROPOUT)
    if axis_name is not None:
      dropout_rng = jax.random.fold_in(dropout_rng, shard)
    specs = audio.to_spectrogram(waveforms, config.audio)
    x = classifier_lib.model_input(specs, config)
    targets = optax.smooth_labels(jax.nn.one_hot(labels, 10), c.label_smoothing)

    def loss_fn(params):
      logits, _ = model.apply(params, x, train=True, rngs={"dropout": dropout_rng})
      loss = optax.softmax_cross_entropy(logits, targets).mean()
      return loss, (logits.argmax(-1) == labels).mean()

    (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    if axis_name is not None:
      loss, accuracy, grads = lax.pmean((loss, accuracy, grads), axis_name)
    params, opt_state, finite = steps.apply_gradients(tx, state.params, state.opt_state, grads,
                                                      loss)
    return (state.replace(step=state.step + 1, params=params, opt_state=opt_state),
            {"loss": loss, "accuracy": accuracy, "finite": finite.astype(jnp.float32)})

  return step


def make_task(config, dataset, specs) -> trainer.Task:
  """The classifier as a `trainer.Task`: augmented training waveforms; validation accuracy."""
  train = dataset["train"]
  steps_per_epoch = _steps_per_epoch(config, len(train))
  example = specs["train"][:1]
  predict = classifier_lib.make_predict_fn(config)   # compiled once, params swapped per epoch

  def evaluate(state):
    probs, _ = data_lib.map_batches(lambda x, _: predict(state.params, x), specs["validation"],
                                    config.classifier.eval_batch_size)
    correct = np.asarray(probs).argmax(-1) == dataset["validation"].digits
    return {"validation": {"accuracy": float(correct.mean())}}

  return trainer.Task(
      name="classifier",
      init_fn=lambda rng, batch: create_classifier_state(config, rng, example),
      make_step=functools.partial(make_classifier_step, config, steps_per_epoch),
      examples=(np.asarray(train.waveforms), np.asarray(train.lengths), np.asarray(train.digits)),
      evaluate=evaluate, shown={"accuracy": "acc"},
      divergence_advice="lower classifier.learning_rate")


def train_classifier(config, workdir: str):
  """Trains (or resumes; a finished run is left as it is) the classifier in `workdir`.

  Returns:
    (state, dataset, spectrograms by split).
  """
  parallel = parallel_lib.Parallel(config)
  with trainer.open_run(config, workdir) as changes:
    dataset = data_lib.load_training_dataset(config.data)
    specs = {s: audio.prepare_spectrograms(dataset[s].waveforms, config.audio)
             for s in data_lib.SPLITS}
    t = config.train
    loop_schedule = trainer.Schedule(   # a checkpoint at every epoch end
        batch_size=t.batch_size, num_epochs=t.num_epochs, num_steps=t.num_steps,
        log_every_steps=t.log_every_steps,
        checkpoint_every_steps=_steps_per_epoch(config, len(dataset["train"])),
        keep_checkpoints=1, progress_bar=t.progress_bar)
    state = trainer.fit(make_task(config, dataset, specs), loop_schedule, workdir, parallel,
                        config.seed, changes)
  return state, dataset, specs


def _abstract_state(config):
  example = jnp.zeros((1,) + audio.spectrogram_shape(config.data.max_samples, config.audio))
  init = functools.partial(create_classifier_state, config)
  return jax.eval_shape(init, rngs.root_key(0), example)


def check_trained(workdir) -> None:
  """Raises MissingError, saying how to train one, when `workdir` holds no trained classifier;
  cheap, so modes that score with it call it before they spend time on anything else."""
  workdir = run_config.project_path(workdir)
  if not (workdir / "config.json").exists() or not checkpoints.has_trained_state(workdir):
    raise errors.MissingError(
        f"No trained classifier in {workdir}. Train one with: python -m rvq_jax.main "
        f"--config=configs/classifier.py --workdir={workdir} --mode=train_classifier "
        "(or set --config.eval.classifier_workdir).")


def restore_classifier(workdir) -> tuple[ml_collections.ConfigDict, ClassifierState]:
  """(config, latest `ClassifierState`) of the classifier trained in `workdir` (its config.json and
  latest checkpoint, or shipped weights); a relative `workdir` missing here is looked for in the
  project's checkout (`run_config.project_path`)."""
  workdir = run_config.project_path(workdir)
  check_trained(workdir)
  config = run_config.saved_config(workdir)
  state = checkpoints.restore_for_reading(
      workdir, _abstract_state(config), "train the classifier first (--mode=train_classifier)")
  return config, state


def restore_classifier_state(workdir) -> ClassifierState:
  """The latest `ClassifierState` trained in `workdir` (for export)."""
  return restore_classifier(workdir)[1]
