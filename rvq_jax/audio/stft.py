"""Short-time Fourier transform and its inverse in pure `jax.numpy`.

Frames are centred: frame `t` covers samples `[t * hop - frame_length // 2, t * hop + frame_length // 2]`
of the signal zero-padded by `frame_length // 2` on both sides, the convention of `scipy.signal.stft`
with `boundary='zeros'`. A signal of `num_samples = num_frames * hop` samples gives `num_frames`
frames; its `frame_length // 2 + 1` one-sided bins keep the Nyquist bin, so the transform is
exactly invertible by windowed overlap-add divided by the overlap-added squared window
(the least-squares inverse of Griffin & Lim, 1984).

Every function is jit- and vmap-able; leading dimensions are batch dimensions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rvq_jax import errors


def hann_window(frame_length: int, dtype=jnp.float32) -> jax.Array:
  """Periodic Hann window [frame_length], as `scipy.signal.get_window('hann', n)`."""
  n = jnp.arange(frame_length, dtype=dtype)
  return 0.5 - 0.5 * jnp.cos(2.0 * jnp.pi * n / frame_length)


def _frame_indices(num_frames: int, frame_length: int, hop_length: int) -> jax.Array:
  """Indices [num_frames, frame_length] into the signal padded by frame_length // 2 each side."""
  return hop_length * jnp.arange(num_frames)[:, None] + jnp.arange(frame_length)[None, :]


def _check_length(num_samples: int, hop_length: int) -> int:
  if num_samples % hop_length:
    raise errors.ConfigError(
        f"Waveform length {num_samples} is not a multiple of audio.hop_length={hop_length}; "
        "pad the waveforms (data.max_samples) to a multiple of the hop.")
  return num_samples // hop_length


def stft(waveforms: jax.Array, frame_length: int, hop_length: int) -> jax.Array:
  """Complex STFT of real waveforms.

  Args:
    waveforms: float [..., num_samples], num_samples a multiple of hop_length.
    frame_length: window and FFT length in samples (bins = frame_length // 2 + 1).
    hop_length: samples between frame centres.

  Returns:
    complex64 [..., frame_length // 2 + 1, num_samples // hop_length] (frequency x time),
    scaled by 1 / sqrt(sum(window ** 2)) so that unit-variance white noise has unit mean power
    in every bin.
  """
  waveforms = jnp.asarray(waveforms, jnp.float32)
  num_frames = _check_length(waveforms.shape[-1], hop_length)
  window = hann_window(frame_length)
  pad = [(0, 0)] * (waveforms.ndim - 1) + [(frame_length // 2, frame_length // 2)]
  padded = jnp.pad(waveforms, pad)
  frames = padded[..., _frame_indices(num_frames, frame_length, hop_length)] * window
  spectrum = jnp.fft.rfft(frames, n=frame_length, axis=-1) / jnp.sqrt(jnp.sum(window**2))
  return jnp.swapaxes(spectrum, -1, -2)


def istft(spectrum: jax.Array, frame_length: int, hop_length: int) -> jax.Array:
  """Inverse of `stft`: windowed overlap-add with squared-window-sum normalisation.

  Args:
    spectrum: complex [..., frame_length // 2 + 1, num_frames] as returned by `stft`.
    frame_length: as given to `stft`.
    hop_length: as given to `stft`.

  Returns:
    float32 [..., num_frames * hop_length] waveforms.
  """
  num_bins, num_frames = spectrum.shape[-2:]
  if num_bins != frame_length // 2 + 1:
    raise errors.ConfigError(f"Spectrum has {num_bins} bins but audio.frame_length={frame_length} "
                     f"gives {frame_length // 2 + 1}.")
  window = hann_window(frame_length)
  frames = jnp.fft.irfft(jnp.swapaxes(spectrum, -1, -2), n=frame_length, axis=-1)
  frames = frames * jnp.sqrt(jnp.sum(window**2)) * window
  padded_length = num_frames * hop_length + 2 * (frame_length // 2)
  idx = _frame_indices(num_frames, frame_length, hop_length)
  signal = jnp.zeros(frames.shape[:-2] + (padded_length,), frames.dtype).at[..., idx].add(frames)
  window_sum = jnp.zeros((padded_length,), window.dtype).at[idx].add(
      jnp.broadcast_to(window**2, idx.shape))
  start = frame_length // 2
  signal = signal[..., start:start + num_frames * hop_length]
  return (signal / window_sum[start:start + num_frames * hop_length]).astype(jnp.float32)
