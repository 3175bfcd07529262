"""`--mode=spectrogram_figure`: Figure 1 of the original report for one recording."""

from __future__ import annotations

import pathlib

from absl import logging
import jax.numpy as jnp

from rvq_jax import audio
from rvq_jax import data
from rvq_jax import errors
from rvq_jax.eval import figures


def write_spectrogram_figure(config, workdir: str) -> pathlib.Path:
  """Draws magnitude and phase of `config.figures.example_recording` to `<workdir>/figures/`."""
  audio.validate_audio_config(config.audio)
  dataset = data.load_dataset(config.data)
  name = config.figures.example_recording
  for split_name in data.SPLITS:
    split = dataset[split_name]
    if name in split.names:
      waveform = split.waveforms[split.names.index(name)]
      break
  else:
    raise errors.ConfigError(f"figures.example_recording={name!r} is not among the loaded recordings "
                     "(it may have been dropped as too long); name one like '9_jackson_0'.")
  spectrogram = audio.to_spectrogram(jnp.asarray(waveform), config.audio)
  fig = figures.magnitude_phase_figure(
      spectrogram, config.audio, dataset.sample_rate,
      title=f"{name}: {spectrogram.shape[0]} bins x {spectrogram.shape[1]} frames")
  path = figures.save(fig, pathlib.Path(workdir) / "figures" / f"spectrogram_{name}.png")
  logging.info("Wrote %s", path)
  return path
