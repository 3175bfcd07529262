"""The digit classifier trains through the shared driver: every parallel mode, and resume."""

import functools
import os
import signal
import warnings

import jax
import numpy as np
import pytest

from rvq_jax import audio
from rvq_jax import data
from rvq_jax.train import classifier as classifier_train
from rvq_jax.train import parallel as parallel_lib
from rvq_jax.train import trainer
from tests.conftest import tiny_classifier_config


def _two_speaker_config(fsdd_recordings, cache):
  config = tiny_classifier_config(fsdd_recordings, cache)
  config.data.speakers = ("george", "jackson")   # the other speakers' files are skipped
  config.train.num_epochs = 1
  config.train.progress_bar = False
  return config


def _dataset(config):
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", data.BadRecordingWarning)
    return data.load_dataset(config.data)


@pytest.mark.parametrize("mode", ["pmap", "sharded"])
def test_classifier_step_in_every_mode_equals_one_device(fsdd_recordings, tmp_path, mode):
  """8 simulated devices, the same global batches, 3 steps (no augmentation or dropout, whose
  draws are per device under pmap): the parameters agree with one device."""
  config = _two_speaker_config(fsdd_recordings, tmp_path / "cache")
  config.classifier.augment.enabled = False
  config.classifier.dropout = 0.0
  train = _dataset(config)["train"]
  examples = (train.waveforms[:96], train.lengths[:96], train.digits[:96])
  batches = [tuple(np.asarray(a[32 * i:32 * i + 32]) for a in examples) for i in range(3)]
  example = audio.to_spectrogram(train.waveforms[:1], config.audio)
  init = functools.partial(classifier_train.create_classifier_state, config,
                           jax.random.key_data(jax.random.key(0)), example)
  params = {}
  for m in ("jit", mode):
    config.parallel.mode = m
    parallel = parallel_lib.Parallel(config)
    step = parallel.train_step(functools.partial(classifier_train.make_classifier_step, config, 3))
    state = parallel.create_state(init)
    for b in batches:
      state, metrics = step(state, parallel.shard_batch(b))
    assert float(metrics["finite"]) == 1.0
    params[m] = parallel.local(state).params
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5),
               params["jit"], params[mode])


def test_classifier_stopped_by_sigterm_resumes_and_ends_like_a_straight_run(
    fsdd_recordings, tmp_path, monkeypatch):
  config = _two_speaker_config(fsdd_recordings, tmp_path / "cache")
  straight, _, _ = classifier_train.train_classifier(config, str(tmp_path / "straight"))

  make_batch_fn = parallel_lib.Parallel.batch_fn

  def batch_fn(self, *args, **kwargs):   # SIGTERM arrives while step 10 runs
    get_batch = make_batch_fn(self, *args, **kwargs)

    def get_batch_or_terminate(step):
      if step == 10:
        os.kill(os.getpid(), signal.SIGTERM)
      return get_batch(step)
    return get_batch_or_terminate

  monkeypatch.setattr(parallel_lib.Parallel, "batch_fn", batch_fn)
  with pytest.raises(trainer.Preempted, match="saved step 11"):
    classifier_train.train_classifier(config, str(tmp_path / "resumed"))
  monkeypatch.setattr(parallel_lib.Parallel, "batch_fn", make_batch_fn)
  resumed, _, _ = classifier_train.train_classifier(config, str(tmp_path / "resumed"))
  assert int(resumed.step) == int(straight.step) > 11
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6),
               straight.params, resumed.params)
  # A finished run is left as it is.
  again, _, _ = classifier_train.train_classifier(config, str(tmp_path / "resumed"))
  assert int(again.step) == int(straight.step)


def test_mel_filterbank_is_a_partition_of_unity_between_its_first_and_last_centres():
  """Triangular mel filters: each peaks (1) at its centre, neighbours cross where they meet, and
  between the first and the last centre the filters sum to 1 at every STFT bin; the log-mel front
  end standardises each recording."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from rvq_jax.configs import default  # pylint: disable=g-import-not-at-top
  from rvq_jax.models import classifier  # pylint: disable=g-import-not-at-top
  bank = classifier.mel_filterbank(512, 8000, 20)
  freqs = np.linspace(0, 4000, 512)
  peaks = [freqs[np.argmax(bank[:, m])] for m in range(20)]
  top_mel = 2595 * np.log10(1 + 4000 / 700)
  centres = 700 * (10 ** (np.linspace(0, top_mel, 22)[1:-1] / 2595) - 1)   # HTK mel, by hand
  assert np.all(np.abs(np.asarray(peaks) - centres) <= 4000 / 511) and bank.max() <= 1.0
  inside = (freqs >= centres[0]) & (freqs <= centres[-1])
  np.testing.assert_allclose(bank[inside].sum(-1), 1.0, atol=1e-5)
  audio_config = default.get_config().audio
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 128, 128, 2)), jnp.float32)
  out = classifier.log_mel_input(x, audio_config, 8000, 40, 1e-3)
  assert out.shape == (2, 128, 40)
  np.testing.assert_allclose(np.asarray(out).mean(axis=(1, 2)), 0.0, atol=1e-4)
  np.testing.assert_allclose(np.asarray(out).std(axis=(1, 2)), 1.0, atol=1e-3)
