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
import orbax.checkpoint as ocp
import tqdm

from rvq_jax import audio
from rvq_jax import data as data_lib
from rvq_jax.models import classifier as classifier_lib
from rvq_jax.train import loop
from rvq_jax.train import parallel


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
  init_rng, state_rng = jax.random.split(rng)
  x = classifier_lib.classifier_input(example, config.audio, config.classifier.log_eps)
  params = model.init(init_rng, x)
  # The optimizer state's structure does not depend on the schedule's lengths.
  return ClassifierState(jnp.zeros((), jnp.int32), params, _optimizer(config).init(params),
                         state_rng)


def make_classifier_step(config, steps_per_epoch: int):
  """Pure `step(state, (spectrograms [B, H, W, 2], labels [B])) -> (state, metrics)`."""
  model = classifier_lib.make_classifier(config)
  tx = _optimizer(config, steps_per_epoch)
  c = config.classifier

  def step(state, batch):
    specs, labels = batch
    rng = jax.random.fold_in(state.rng, state.step)
    shift_rng, dropout_rng = jax.random.split(rng)
    shifts = jax.random.randint(shift_rng, (specs.shape[0],), -c.time_shift_frames,
                                c.time_shift_frames + 1)
    specs = jax.vmap(lambda s, k: jnp.roll(s, k, axis=1))(specs, shifts)
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

  def predict(self, spectrograms, batch_size: int | None = None):
    batch_size = batch_size or self.config.classifier.eval_batch_size
    probs, embeddings = loop.map_batches(lambda x, _: self._apply(self.params, x), spectrograms,
                                         batch_size)
    return np.asarray(probs), np.asarray(embeddings)


def _make_classifier(config, params) -> Classifier:
  model = classifier_lib.make_classifier(config)

  @jax.jit
  def apply(params, specs):
    x = classifier_lib.classifier_input(specs, config.audio, config.classifier.log_eps)
    logits, embedding = model.apply(params, x)
    return jax.nn.softmax(logits), embedding

  return Classifier(config, params, apply)


def _manager(workdir):
  return ocp.CheckpointManager((pathlib.Path(workdir) / "checkpoints").absolute(),
                               options=ocp.CheckpointManagerOptions(max_to_keep=1))


def load_classifier(workdir) -> Classifier:
  """The classifier trained in `workdir` (its config.json and latest checkpoint)."""
  workdir = pathlib.Path(workdir)
  if not (workdir / "config.json").exists():
    raise FileNotFoundError(
        f"No trained classifier in {workdir}. Train one with: python -m rvq_jax.main "
        f"--config=configs/classifier.py --workdir={workdir} --mode=train_classifier "
        "(or set --config.eval.classifier_workdir).")
  config = ml_collections.ConfigDict(json.loads((workdir / "config.json").read_text()))
  example = jnp.zeros((1,) + audio.spectrogram_shape(config.data.max_samples, config.audio))
  init = functools.partial(create_classifier_state, config)
  abstract = jax.eval_shape(init, jax.random.key_data(jax.random.key(0)), example)
  with _manager(workdir) as manager:
    if manager.latest_step() is None:
      raise FileNotFoundError(f"{workdir} has no classifier checkpoint; train it first.")
    state = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore(abstract))
  return _make_classifier(config, state.params)


def accuracy_report(classifier: Classifier, specs, split: data_lib.Split, speaker_names) -> dict:
  """Accuracy overall and per speaker of `specs` [N, ...] labelled by `split`."""
  probs, _ = classifier.predict(specs)
  correct = probs.argmax(-1) == split.digits
  per_speaker = {name: float(correct[split.speakers == i].mean())
                 for i, name in enumerate(speaker_names) if np.any(split.speakers == i)}
  return {"accuracy": float(correct.mean()), "per_speaker": per_speaker}


def train_classifier(config, workdir: str):
  """Trains (or loads, if already trained in `workdir`); returns the classifier and the data.

  Returns:
    (classifier, dataset, spectrograms by split).
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  dataset = data_lib.load_dataset(config.data)
  specs = {s: loop.prepare_spectrograms(dataset[s].waveforms, config.audio)
           for s in data_lib.SPLITS}
  c = config.classifier
  steps_per_epoch = _steps_per_epoch(config, len(dataset["train"]))
  total = steps_per_epoch * c.num_epochs
  with _manager(workdir) as manager:
    if manager.latest_step() == total:
      logging.info("Classifier already trained in %s", workdir)
    else:
      (workdir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")
      state = create_classifier_state(config, jax.random.key_data(jax.random.key(config.seed)),
                                      specs["train"][:1])
      examples = (specs["train"], jnp.asarray(dataset["train"].digits))
      key = jax.random.key_data(jax.random.fold_in(jax.random.key(config.seed), 1))
      get_batch = jax.jit(functools.partial(parallel.batch_for_step, batch_size=c.batch_size))
      step = jax.jit(make_classifier_step(config, steps_per_epoch), donate_argnums=0)
      monitor = _make_classifier(config, state.params)   # compiled once, params swapped per epoch
      bar = tqdm.tqdm(total=total, desc="classifier", unit="step")
      for i in range(total):
        state, metrics = step(state, get_batch(examples, state.step, key))
        bar.update()
        if (i + 1) % steps_per_epoch == 0:
          monitor = dataclasses.replace(monitor, params=state.params)
          val = accuracy_report(monitor, specs["validation"], dataset["validation"],
                                dataset.speaker_names)
          bar.set_postfix(loss=f"{float(metrics['loss']):.3f}", val_acc=f"{val['accuracy']:.3f}")
          logging.info("classifier epoch %d: loss %.4f, validation accuracy %.4f",
                       (i + 1) // steps_per_epoch, float(metrics["loss"]), val["accuracy"])
      bar.close()
      manager.save(total, args=ocp.args.StandardSave(state), force=True)
      manager.wait_until_finished()
  return load_classifier(workdir), dataset, specs
