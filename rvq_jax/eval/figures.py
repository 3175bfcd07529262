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


def reconstruction_figure(original: np.ndarray, reconstruction: np.ndarray, audio_config,
                          sample_rate: int, title: str = ""):
  """Original (top) and reconstruction (bottom): magnitude (dB) and phase. Inputs [bins, frames, 2]."""
  fig, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
  spectra = [np.asarray(audio.to_complex(np.asarray(s), audio_config))
             for s in (original, reconstruction)]
  top = 20 * np.log10(np.abs(spectra[0]).max() + 1e-6)
  bins, frames = spectra[0].shape
  extent = (0, frames * audio_config.hop_length / sample_rate, 0, sample_rate / 2 / 1000)
  for row, (label, spectrum) in enumerate(zip(("original", "reconstruction"), spectra)):
    for col, (values, kind, cmap, limits) in enumerate((
        (20 * np.log10(np.abs(spectrum) + 1e-6), "magnitude (dB)", "magma", (top - 80, top)),
        (np.angle(spectrum), "phase (rad)", "twilight", (-np.pi, np.pi)))):
      ax = axes[row, col]
      image = ax.imshow(values, origin="lower", aspect="auto", extent=extent, cmap=cmap,
                        vmin=limits[0], vmax=limits[1], interpolation="nearest")
      ax.set_title(f"{label}: {kind}")
      ax.set_xlabel("time (s)")
      ax.set_ylabel("frequency (kHz)")
      fig.colorbar(image, ax=ax)
  if title:
    fig.suptitle(title)
  return fig


LOSS_PARTS = (("loss", "total"), ("reconstruction", "reconstruction"),
              ("commitment", "commitment"))


def loss_curves_figure(runs: dict[str, list[dict]]):
  """Train (solid) and validation (dashed) loss per epoch: total, reconstruction, commitment.

  Args:
    runs: run name -> the records of its metrics.jsonl.
  """
  fig, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for (name, records), color in zip(runs.items(), colors):
    for split, style in (("train", "-"), ("validation", "--")):
      rows = [r for r in records if r["split"] == split]
      for ax, (key, label) in zip(axes, LOSS_PARTS):
        ax.plot([r["epoch"] for r in rows], [r[key] for r in rows], style, color=color,
                label=f"{name} {split}")
        ax.set_title(label)
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
  axes[0].legend(fontsize=8)
  return fig


def codebook_usage_figure(result: dict):
  """Per-level perplexity and fraction of codes used, from an eval.json record (schema 2)."""
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), constrained_layout=True)
  levels = np.arange(len(result["codebook"]["perplexity"]))
  axes[0].bar(levels, result["codebook"]["perplexity"])
  axes[0].set_title("codebook perplexity per level")
  axes[1].bar(levels, result["codebook"]["usage"])
  axes[1].set_ylim(0, 1)
  axes[1].set_title("fraction of codes used (test split)")
  for ax in axes:
    ax.set_xlabel("level")
  return fig


def rate_distortion_figure(rows: list[dict]):
  """SI-SDR and digit accuracy against the bit rate of the first n levels."""
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), constrained_layout=True)
  rate = [r["nominal_bits_per_second"] / 1000 for r in rows]
  axes[0].plot(rate, [r["si_sdr_db"] for r in rows], "o-")
  axes[0].set_ylabel("SI-SDR (dB)")
  axes[1].plot(rate, [r["classifier_accuracy"] for r in rows], "o-")
  axes[1].set_ylabel("digit accuracy of reconstructions")
  for ax in axes:
    ax.set_xlabel("kbit/s (levels used)")
  for row, x in zip(rows, rate):
    axes[0].annotate(str(row["levels"]), (x, row["si_sdr_db"]))
  return fig


def latent_sample_figure(latent: np.ndarray, spectrogram: np.ndarray, audio_config,
                         sample_rate: int, title: str = ""):
  """Figure 3 of the original report: a sampled latent [h, w, C] (its first channel) beside the
  decoded spectrogram's magnitude (dB) [bins, frames, 2]."""
  fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
  image = axes[0].imshow(np.asarray(latent)[..., 0], origin="lower", aspect="auto", cmap="viridis",
                         interpolation="nearest")
  axes[0].set_title("sampled latent (channel 0)")
  axes[0].set_xlabel("latent frame")
  axes[0].set_ylabel("latent frequency row")
  fig.colorbar(image, ax=axes[0])
  spectrum = np.abs(np.asarray(audio.to_complex(np.asarray(spectrogram), audio_config)))
  db = 20 * np.log10(spectrum + 1e-6)
  bins, frames = spectrum.shape
  extent = (0, frames * audio_config.hop_length / sample_rate, 0, sample_rate / 2 / 1000)
  image = axes[1].imshow(db, origin="lower", aspect="auto", extent=extent, cmap="magma",
                         vmin=db.max() - 80, vmax=db.max(), interpolation="nearest")
  axes[1].set_title("decoded magnitude (dB)")
  axes[1].set_xlabel("time (s)")
  axes[1].set_ylabel("frequency (kHz)")
  fig.colorbar(image, ax=axes[1])
  if title:
    fig.suptitle(title)
  return fig


def class_grid_figure(spectrograms: np.ndarray, digits: np.ndarray, audio_config,
                      sample_rate: int, title: str = ""):
  """Class-conditional samples as a grid of magnitude spectrograms (dB, one colour scale): one
  row per digit 0-9, one column per sample.

  Args:
    spectrograms: [10, k, bins, frames, 2] in `audio_config.representation`, row d asked for d.
    digits: [10, k] the digit the classifier hears in each (shown above it).
  """
  spectra = 20 * np.log10(np.abs(np.asarray(audio.to_complex(
      np.asarray(spectrograms), audio_config))) + 1e-6)                   # [10, k, bins, frames]
  rows, cols, bins, frames = spectra.shape
  top = spectra.max()
  extent = (0, frames * audio_config.hop_length / sample_rate, 0, sample_rate / 2 / 1000)
  fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 1.5 * rows), constrained_layout=True,
                           squeeze=False, sharex=True, sharey=True)
  for d in range(rows):
    for j in range(cols):
      ax = axes[d, j]
      ax.imshow(spectra[d, j], origin="lower", aspect="auto", extent=extent, cmap="magma",
                vmin=top - 80, vmax=top, interpolation="nearest")
      ax.set_title(f"heard: {digits[d, j]}", fontsize=7)
      ax.tick_params(labelsize=6)
    axes[d, 0].set_ylabel(f"digit {d}\nkHz", fontsize=8)
  for ax in axes[-1]:
    ax.set_xlabel("time (s)", fontsize=7)
  if title:
    fig.suptitle(title)
  return fig


def waveforms_figure(rows: dict[str, np.ndarray], frame_length: int, hop_length: int,
                     sample_rate: int, title: str = ""):
  """Log-magnitude spectrograms (dB, one colour scale) of waveforms {label: [n]}, one row each,
  from scipy's STFT (independent of the models' own), e.g. an original and its reconstructions."""
  import scipy.signal  # pylint: disable=g-import-not-at-top
  spectra = {}
  for label, wave in rows.items():
    freqs, times, z = scipy.signal.stft(wave, sample_rate, nperseg=frame_length,
                                        noverlap=frame_length - hop_length)
    spectra[label] = 20 * np.log10(np.abs(z) + 1e-6)
  top = max(s.max() for s in spectra.values())
  fig, axes = plt.subplots(len(rows), 1, figsize=(7, 2.2 * len(rows)), constrained_layout=True,
                           squeeze=False)
  for ax, (label, values) in zip(axes[:, 0], spectra.items()):
    image = ax.imshow(values, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                      extent=(times[0], times[-1], 0, freqs[-1] / 1000), interpolation="nearest")
    ax.set_title(label)
    ax.set_ylabel("kHz")
    fig.colorbar(image, ax=ax, label="dB")
  axes[-1, 0].set_xlabel("time (s)")
  if title:
    fig.suptitle(title)
  return fig
