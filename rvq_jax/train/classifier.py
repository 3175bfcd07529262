"""Training and loading the digit classifier (configs/classifier.py).

`train_classifier(config, workdir)` trains on the training split only (validation monitored) and
checkpoints with orbax; `rvq_jax.eval.quality` scores it and writes classifier_eval.json. `load_classifier(workdir)` returns a
`Classifier` that scores spectrograms, reading the architecture from the workdir's config.json.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
from typing import Any, Callable

from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm

from rvq_jax import audio
from rvq_jax import data as data_lib
from rvq_jax import errors
from rvq_jax.data import augment as augment_lib
from rvq_jax.models import classifier as classifier_lib
from rvq_jax.train import checkpoints
from rvq_jax.train import loop
from rvq_jax.train import parallel
from rvq_jax.train import rngs
from rvq_jax.train import validation


@flax.struct.dataclass
class ClassifierState:
  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array


def _optimizer(config, steps_per_epoch: int = 1):
  """AdamW with linear warm-up (one epoch) and cosine decay to 0 over the run."""
  c = config.classifier
  schedule = optax.warmup_cosine_decay_schedule(0.0, c.learning_rate, steps_per_epoch,
                                                steps_per_epoch * c.num_epochs)
  return optax.adamw(schedule, weight_decay=c.weight_decay)


def _steps_per_epoch(config, num_train: int) -> int:
  return max(num_train // config.classifier.batch_size, 1)


def create_classifier_state(config, rng: jax.Array, example: jax.Array) -> ClassifierState:
  """example: [1, bins, frames, 2] spectrogram (for shapes)."""
  model = classifier_lib.make_classifier(config)
  init_rng, state_rng = rngs.stream(rng, rngs.PARAMS), rngs.stream(rng, rngs.STEP)
  x = classifier_lib.classifier_input(example, config.audio, config.classifier.log_eps)
  params = model.init(init_rng, x)
  # The optimizer state's structure does not depend on the schedule's lengths.
  return ClassifierState(jnp.zeros((), jnp.int32), params, _optimizer(config).init(params),
                         state_rng)


def make_classifier_step(config, steps_per_epoch: int):
  """Pure `step(state, (waveforms [B, N], lengths [B], labels [B])) -> (state, metrics)`.

  The batch is augmented as waveforms (`classifier.augment`, rvq_jax.data.augment) and turned into
  spectrograms inside the step, so every epoch sees new speeds, shifts, gains and noise.
  """
  model = classifier_lib.make_classifier(config)
  tx = _optimizer(config, steps_per_epoch)
  c = config.classifier

  def step(state, batch):
    waveforms, lengths, labels = batch
    if c.augment.enabled:
      augment_rng = rngs.step_key(state.rng, state.step, rngs.NOISE)
      waveforms = augment_lib.augment(augment_rng, waveforms, lengths, c.augment)
    dropout_rng = rngs.step_key(state.rng, state.step, rngs.DROPOUT)
    specs = audio.to_spectrogram(waveforms, config.audio)
    x = classifier_lib.classifier_input(specs, config.audio, c.log_eps)

    def loss_fn(params):
      logits, _ = model.apply(params, x, train=True, rngs={"dropout": dropout_rng})
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
      return loss, (logits.argmax(-1) == labels).mean()

    (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                         opt_state=opt_state), {"loss": loss, "accuracy": accuracy}

  return step


@dataclasses.dataclass
class Classifier:
  """A trained digit classifier. `predict(specs)` -> (probabilities [N, 10], embeddings [N, E])."""
  config: ml_collections.ConfigDict
  params: Any
  _apply: Callable

  def predict(self, spectrograms, audio_config=None, batch_size: int | None = None):
    """spectrograms [N, bins, frames, 2] in the representation of `audio_config` (a VQ-VAE's
    `config.audio`; None: the classifier's own), converted to the classifier's before scoring."""
    batch_size = batch_size or self.config.classifier.eval_batch_size
    source = self.config.audio if audio_config is None else audio_config
    probs, embeddings = loop.map_batches(
        lambda x, _: self._apply(self.params, audio.convert(x, source, self.config.audio)),
        spectrograms, batch_size)
    return np.asarray(probs), np.asarray(embeddings)


def _make_classifier(config, params) -> Classifier:
  model = classifier_lib.make_classifier(config)

  @jax.jit
  def apply(params, specs):
    x = classifier_lib.classifier_input(specs, config.audio, config.classifier.log_eps)
    logits, embedding = model.apply(params, x)
    return jax.nn.softmax(logits), embedding

  return Classifier(config, params, apply)


def _abstract_state(config):
  example = jnp.zeros((1,) + audio.spectrogram_shape(config.data.max_samples, config.audio))
  init = functools.partial(create_classifier_state, config)
  return jax.eval_shape(init, rngs.root_key(0), example)


def check_trained(workdir) -> None:
  """Raises MissingError, saying how to train one, when `workdir` holds no trained classifier;
  cheap, so modes that score with it call it before they spend time on anything else."""
  workdir = pathlib.Path(workdir)
  if not (workdir / "config.json").exists() or not checkpoints.has_trained_state(workdir):
    raise errors.MissingError(
        f"No trained classifier in {workdir}. Train one with: python -m rvq_jax.main "
        f"--config=configs/classifier.py --workdir={workdir} --mode=train_classifier "
        "(or set --config.eval.classifier_workdir).")


def load_classifier(workdir) -> Classifier:
  """The classifier trained in `workdir` (its config.json and latest checkpoint)."""
  workdir = pathlib.Path(workdir)
  check_trained(workdir)
  config, state = _restore(workdir)
  return _make_classifier(config, state.params)


def _restore(workdir: pathlib.Path):
  config = ml_collections.ConfigDict(json.loads((workdir / "config.json").read_text()))
  state = checkpoints.restore_for_reading(
      workdir, _abstract_state(config), "train the classifier first (--mode=train_classifier)")
  return config, state


def restore_classifier_state(workdir) -> ClassifierState:
  """The latest `ClassifierState` trained in `workdir` (for export)."""
  workdir = pathlib.Path(workdir)
  check_trained(workdir)
  return _restore(workdir)[1]


def accuracy_report(classifier: Classifier, specs, split: data_lib.Split, speaker_names) -> dict:
  """Accuracy overall and per speaker of `specs` [N, ...] labelled by `split`."""
  probs, _ = classifier.predict(specs)
  correct = probs.argmax(-1) == split.digits
  per_speaker = {name: float(correct[split.speakers == i].mean())
                 for i, name in enumerate(speaker_names) if np.any(split.speakers == i)}
  return {"accuracy": float(correct.mean()), "per_speaker": per_speaker}


def train_classifier(config, workdir: str):
  """Trains (or resumes, or loads when finished) the classifier in `workdir`; a checkpoint at the
  end of every epoch, so a killed run resumes from its last epoch.

  Returns:
    (classifier, dataset, spectrograms by split).
  """
  validation.validate_classifier_config(config)
  workdir = pathlib.Path(workdir)
  with checkpoints.RunLock(workdir):
    loop.open_workdir(config, workdir, is_writer=True)
    dataset = data_lib.load_dataset(config.data)
    specs = {s: loop.prepare_spectrograms(dataset[s].waveforms, config.audio)
             for s in data_lib.SPLITS}
    _train_classifier(config, workdir, dataset, specs)
  return load_classifier(workdir), dataset, specs


def _train_classifier(config, workdir: pathlib.Path, dataset, specs) -> None:
  c = config.classifier
  steps_per_epoch = _steps_per_epoch(config, len(dataset["train"]))
  total = steps_per_epoch * c.num_epochs
  manager = checkpoints.open_manager(workdir / "checkpoints", every=steps_per_epoch, keep=1)
  with manager:
    restored = checkpoints.restore_newest(manager, _abstract_state(config))
    if restored is not None and restored.step >= total:
      logging.info("Classifier already trained in %s", workdir)
      return
    if restored is not None:
      state = restored.state
      logging.info("Resumed the classifier from %s at step %d", manager.directory, restored.step)
    else:
      state = create_classifier_state(config, rngs.root_key(config.seed), specs["train"][:1])
    train = dataset["train"]
    examples = (jnp.asarray(train.waveforms), jnp.asarray(train.lengths), jnp.asarray(train.digits))
    key = rngs.seed_stream(config.seed, rngs.DATA)
    get_batch = jax.jit(functools.partial(parallel.batch_for_step, batch_size=c.batch_size))
    step = jax.jit(make_classifier_step(config, steps_per_epoch), donate_argnums=0)
    monitor = _make_classifier(config, state.params)   # compiled once, params swapped per epoch
    start = int(state.step)
    bar = tqdm.tqdm(total=total, initial=start, desc="classifier", unit="step",
                    disable=not config.train.progress_bar)
    for i in range(start, total):
      state, metrics = step(state, get_batch(examples, state.step, key))
      bar.update()
      if (i + 1) % steps_per_epoch == 0:
        if not np.isfinite(float(metrics["loss"])):
          raise errors.DivergedError(
              f"Non-finite classifier loss at step {i + 1}; the last good checkpoint (step "
              f"{manager.latest_step()}) is in {manager.directory}; lower "
              "classifier.learning_rate and resume.")
        monitor = dataclasses.replace(monitor, params=state.params)
        val = accuracy_report(monitor, specs["validation"], dataset["validation"],
                              dataset.speaker_names)
        bar.set_postfix(loss=f"{float(metrics['loss']):.3f}", val_acc=f"{val['accuracy']:.3f}")
        logging.info("classifier epoch %d: loss %.4f, validation accuracy %.4f",
                     (i + 1) // steps_per_epoch, float(metrics["loss"]), val["accuracy"])
        checkpoints.save(manager, i + 1, state)
    bar.close()
    if manager.latest_step() != total:
      checkpoints.save(manager, total, state, force=True)
    manager.wait_until_finished()
