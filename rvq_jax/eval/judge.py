"""The digit classifier as a judge: scoring spectrograms of any representation with a trained
classifier (`load_classifier`), and its accuracy report. Training it is `rvq_jax.train.classifier`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

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
  """A trained digit classifier. `predict(specs)` -> (probabilities [N, 10], embeddings [N, E])."""
  config: ml_collections.ConfigDict
  params: Any
  _apply: Callable

  def predict(self, spectrograms, audio_config=None, batch_size: int | None = None):
    """spectrograms [N, bins, frames, 2] in the representation of `audio_config` (a VQ-VAE's
    `config.audio`; None: the classifier's own), converted to the classifier's before scoring."""
    batch_size = batch_size or self.config.classifier.eval_batch_size
    source = self.config.audio if audio_config is None else audio_config
    probs, embeddings = data_lib.map_batches(
        lambda x, _: self._apply(self.params, audio.convert(x, source, self.config.audio)),
        spectrograms, batch_size)
    return np.asarray(probs), np.asarray(embeddings)


def load_classifier(workdir) -> Classifier:
  """The classifier trained in `workdir` (its config.json and latest checkpoint, or shipped
  weights)."""
  config, state = classifier_train.restore_classifier(workdir)
  return Classifier(config, state.params, classifier_lib.make_predict_fn(config))


def accuracy_report(classifier: Classifier, specs, split: data_lib.Split, speaker_names) -> dict:
  """Accuracy overall and per speaker of `specs` [N, ...] labelled by `split`."""
  probs, _ = classifier.predict(specs)
  correct = probs.argmax(-1) == split.digits
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
