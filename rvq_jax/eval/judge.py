"""The digit classifier as a judge: scoring spectrograms of any representation with a trained
classifier (`load_classifier`), and its accuracy report. Training it is `rvq_jax.train.classifier`.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rvq_jax import audio
from rvq_jax import data as data_lib
from rvq_jax.eval import metrics
from rvq_jax.models import classifier as classifier_lib
from rvq_jax.train import classifier as classifier_train


@dataclasses.dataclass
class Classifier:
  """A trained digit classifier. `predict(specs)` -> (probabilities [N, 10], embeddings [N, E]).

  `temperature` divides its logits before the softmax: 1 as trained; the one fitted on the
  validation split (`calibrate`, recorded in classifier_eval.json's 'calibration') makes its
  confidence match its accuracy, which the Inception Score and every probability rely on.
  """
  config: ml_collections.ConfigDict
  params: Any
  temperature: float = 1.0
  _logits: Callable | None = None

  def __post_init__(self):
    if self._logits is None:
      self._logits = classifier_lib.make_logits_fn(self.config)

  def logits(self, spectrograms, audio_config=None, batch_size: int | None = None):
    """(logits [N, 10], embeddings [N, E]) of spectrograms [N, bins, frames, 2] in the
    representation of `audio_config` (a VQ-VAE's `config.audio`; None: the classifier's own),
    converted to the classifier's before scoring."""
    batch_size = batch_size or self.config.classifier.eval_batch_size
    source = self.config.audio if audio_config is None else audio_config
    logits, embeddings = data_lib.map_batches(
        lambda x, _: self._logits(self.params, audio.convert(x, source, self.config.audio)),
        spectrograms, batch_size)
    return np.asarray(logits), np.asarray(embeddings)

  def predict(self, spectrograms, audio_config=None, batch_size: int | None = None):
    """(probabilities [N, 10] = softmax(logits / temperature), embeddings [N, E]); arguments as
    `logits`."""
    logits, embeddings = self.logits(spectrograms, audio_config, batch_size)
    return probabilities(logits, self.temperature), embeddings


def probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
  """softmax(logits [N, 10] / temperature): a classifier's probabilities at a temperature."""
  return np.asarray(jax.nn.softmax(jnp.asarray(logits) / temperature))


CALIBRATION_RECORD = "classifier_eval.json"


def recorded_temperature(workdir) -> float:
  """The calibration temperature recorded in `<workdir>/classifier_eval.json` (1.0 when the
  record predates calibration or is absent)."""
  path = pathlib.Path(workdir) / CALIBRATION_RECORD
  if not path.exists():
    return 1.0
  return float(json.loads(path.read_text()).get("calibration", {}).get("temperature", 1.0))


def load_classifier(workdir, calibrated: bool = True) -> Classifier:
  """The classifier trained in `workdir` (its config.json and latest checkpoint, or shipped
  weights), with its recorded calibration temperature unless `calibrated` is False."""
  config, state = classifier_train.restore_classifier(workdir)
  return Classifier(config, state.params, recorded_temperature(workdir) if calibrated else 1.0)


def calibrate(classifier: Classifier, validation_specs, validation_labels) -> Classifier:
  """The same classifier with the temperature fitted on the validation split
  (`metrics.fit_temperature`: minimum negative log-likelihood)."""
  logits, _ = classifier.logits(validation_specs)
  return dataclasses.replace(classifier, temperature=metrics.fit_temperature(logits,
                                                                             validation_labels))


def calibration_error(classifier: Classifier, specs, labels, audio_config=None) -> float:
  """Expected calibration error (15 bins) of the classifier's probabilities on labelled specs."""
  probs, _ = classifier.predict(specs, audio_config)
  return float(metrics.expected_calibration_error(jnp.asarray(probs), jnp.asarray(labels)))


def accuracy_report(classifier: Classifier, specs, split: data_lib.Split, speaker_names) -> dict:
  """Accuracy overall and per speaker of `specs` [N, ...] labelled by `split`."""
  return accuracy_of(classifier.predict(specs)[0], split, speaker_names)


def accuracy_of(probabilities: np.ndarray, split: data_lib.Split, speaker_names) -> dict:
  """`accuracy_report` of the classifier's probabilities [N, 10] of the clips of `split`."""
  correct = np.asarray(probabilities).argmax(-1) == split.digits
  per_speaker = {name: float(correct[split.speakers == i].mean())
                 for i, name in enumerate(speaker_names) if np.any(split.speakers == i)}
  return {"accuracy": float(correct.mean()), "per_speaker": per_speaker}


def sample_scores(probs: np.ndarray, embeddings: np.ndarray, reference_embeddings) -> dict:
  """Inception Score, class histogram (digits 0-9) and Fréchet distance of a set's classifier
  outputs (probabilities [N, 10], embeddings [N, E]) against reference embeddings [M, E] (the real
  test set; None: no Fréchet distance): the sample metrics of every set the project scores."""
  histogram = np.bincount(np.asarray(probs).argmax(-1), minlength=10) / len(probs)
  out = {"inception_score": float(metrics.inception_score(jnp.asarray(probs))),
         "class_histogram": histogram.tolist()}
  if reference_embeddings is not None:
    out["frechet_distance"] = float(metrics.frechet_distance(jnp.asarray(embeddings),
                                                             jnp.asarray(reference_embeddings)))
  return out
