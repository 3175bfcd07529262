"""Figures as PNG files. Every function takes arrays and returns or writes a figure; no JAX state."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rvq_jax import audio  # noqa: E402


def save(fig, path: str | pathlib.Path) -> pathlib.Path:
  """Writes `fig` as PNG (creating folders) and closes it."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=120, bbox_inches="tight")
  plt.close(fig)
  return path


def magnitude_phase_figure(spectrogram: np.ndarray, audio_config, sample_rate: int,
                           title: str = ""):
  """Magnitude (dB) and phase (radians) side by side, as Figure 1 of the original report.

  Args:
    spectrogram: float [bins, frames, 2] in `audio_config.representation`.
    audio_config: the config that made it (hop and representation).
    sample_rate: Hz, for the time and frequency axes.
    title: figure title.
  """
  spectrum = np.asarray(audio.to_complex(np.asarray(spectrogram), audio_config))
  magnitude_db = 20 * np.log10(np.abs(spectrum) + 1e-6)
  phase = np.angle(spectrum)
  bins, frames = spectrum.shape
  extent = (0, frames * audio_config.hop_length / sample_rate, 0, sample_rate / 2 / 1000)
  fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
  for ax, values, label, cmap, limits in (
      (axes[0], magnitude_db, "magnitude (dB)", "magma",
       (magnitude_db.max() - 80, magnitude_db.max())),
      (axes[1], phase, "phase (rad)", "twilight", (-np.pi, np.pi))):
    image = ax.imshow(values, origin="lower", aspect="auto", extent=extent, cmap=cmap,
                      vmin=limits[0], vmax=limits[1], interpolation="nearest")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (kHz)")
    ax.set_title(label)
    fig.colorbar(image, ax=ax)
  if title:
    fig.suptitle(title)
  return fig
