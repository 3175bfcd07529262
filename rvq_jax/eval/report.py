"""`--mode=train`: train (or resume) an RVQ-VAE, then write its test-split report into the workdir.

Writes <workdir>/eval.json, figures/loss_curves.png, figures/reconstruction_<name>.png and
audio/{original,reconstruction}/<name>.wav (8 kHz PCM16, training-std scaling undone, trimmed to
the recording's length).
"""

from __future__ import annotations

import math
import pathlib

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from rvq_jax import audio
from rvq_jax import data as data_lib
from rvq_jax.eval import figures
from rvq_jax.eval import record
from rvq_jax.models import rvq
from rvq_jax.models import vqvae
from rvq_jax.train import rngs
from rvq_jax.train import steps
from rvq_jax.train import vqvae as vqvae_train
from rvq_jax.train import writer


def bits_per_second(config, counts: np.ndarray | None = None) -> dict[str, float]:
  """Bit rate of the codes: nominal L * log2(K) per latent position, and the entropy rate
  sum_l log2(perplexity_l) per position when code counts [L, K] are given."""
  frames = audio.spectrogram_shape(config.data.max_samples, config.audio)[1]
  positions_per_second = vqvae.latent_rows(config) * frames / vqvae.downsampling(config) / (
      config.data.max_samples / config.data.sample_rate)
  out = {"nominal_bits_per_second":
         positions_per_second * config.rvq.levels * math.log2(config.rvq.codes)}
  if counts is not None:
    perplexity = np.asarray(rvq.codebook_metrics(jnp.asarray(counts))["perplexity"], np.float64)
    out["entropy_bits_per_second"] = float(positions_per_second * np.log2(perplexity).sum())
  return out


def test_metrics(config, state: steps.TrainState, dataset, specs) -> dict:
  """Losses, spectrogram MSE, per-level codebook metrics and bit rates over the test split: the
  training-time eval.json record (`rvq_jax.eval.record`)."""
  eval_step = jax.jit(steps.make_eval_step(config))
  test = vqvae_train.evaluate(eval_step, state, specs["test"], config.train.eval_batch_size)
  counts = test.pop("counts")
  return record.from_test_metrics(state.step, len(dataset["test"]), test,
                                  bits_per_second(config, counts))


def write_report(config, workdir, state: steps.TrainState, dataset, specs) -> dict:
  """Test-split metrics, WAVs and figures for a trained state; returns the eval.json contents."""
  workdir = pathlib.Path(workdir)
  if jax.process_index() != 0:
    return {}
  result = test_metrics(config, state, dataset, specs)
  record.write(workdir / "eval.json", result)

  model = vqvae.make_model(config)
  rebuild = jax.jit(lambda p, e, x, key: audio.to_waveform(
      vqvae.reconstruct(model, p, e, x, config, key), config.audio))
  split = dataset["test"]
  count = min(config.eval.num_audio, len(split))
  key = jax.random.wrap_key_data(rngs.seed_stream(config.seed, rngs.EVAL))
  waves = np.asarray(data_lib.map_batches(
      lambda x, start: rebuild(state.params, state.codebook.embed, x, jax.random.fold_in(key, start)),
      specs["test"][:count], config.train.eval_batch_size)) if count else None   # num_audio=0
  for i in range(count):
    n = int(split.lengths[i])
    data_lib.write_wav(workdir / "audio" / "original" / f"{split.names[i]}.wav",
              dataset.unscale(split.waveforms[i, :n]), dataset.sample_rate)
    data_lib.write_wav(workdir / "audio" / "reconstruction" / f"{split.names[i]}.wav",
              dataset.unscale(waves[i, :n]), dataset.sample_rate)
  recon_spec = jax.jit(lambda p, e, x: vqvae.reconstruct(model, p, e, x, config))
  for i in range(min(config.eval.num_figures, len(split))):
    x = specs["test"][i:i + 1]
    fig = figures.reconstruction_figure(np.asarray(x[0]), np.asarray(
        recon_spec(state.params, state.codebook.embed, x)[0]), config.audio,
        dataset.sample_rate, title=split.names[i])
    figures.save(fig, workdir / "figures" / f"reconstruction_{split.names[i]}.png")
  figures.save(figures.loss_curves_figure({workdir.name: writer.read_metrics(workdir)}),
               workdir / "figures" / "loss_curves.png")
  loss = result["test"]["loss"]
  logging.info("test: loss %.5f (rec %.5f, commit %.5f), spectrogram MSE %.5f; %d WAV pairs in %s",
               loss["total"], loss["reconstruction"], loss["commitment"],
               result["test"]["spectrogram_mse"], count, workdir / "audio")
  return result
