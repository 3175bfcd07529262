"""Waveforms <-> two-channel spectrogram images, the tensors the models see.

Representations (`audio_config.representation`):
  'mag_phase'    channel 0 = |X|, channel 1 = angle(X) in radians (-pi, pi]; the original study's.
  'logmag_phase' channel 0 = log(|X| + log_eps), channel 1 = angle(X); tames the magnitude's range.
  'real_imag'    channel 0 = Re X, channel 1 = Im X; no phase wrapping, smooth in X.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rvq_jax import errors
from rvq_jax.audio import stft as stft_lib

REPRESENTATIONS = ("mag_phase", "logmag_phase", "real_imag")


def validate_audio_config(audio_config) -> None:
  """Raises ValueError naming the field when the audio config cannot work."""
  if audio_config.representation not in REPRESENTATIONS:
    raise errors.ConfigError(f"audio.representation={audio_config.representation!r} is unknown; "
                     f"choose one of {REPRESENTATIONS}.")
  if audio_config.hop_length < 1 or audio_config.frame_length < 2:
    raise errors.ConfigError("audio.hop_length must be >= 1 and audio.frame_length >= 2.")
  if audio_config.hop_length > audio_config.frame_length // 2:
    raise errors.ConfigError(f"audio.hop_length={audio_config.hop_length} exceeds half of "
                     f"audio.frame_length={audio_config.frame_length}: the frames would not "
                     "overlap enough to invert.")
  if audio_config.representation == "logmag_phase" and not audio_config.log_eps > 0:
    raise errors.ConfigError("audio.log_eps must be > 0 for representation 'logmag_phase'.")


def spectrogram_shape(num_samples: int, audio_config) -> tuple[int, int, int]:
  """(frequency bins, frames, 2) of the spectrogram of a `num_samples` waveform."""
  return (audio_config.frame_length // 2 + 1, num_samples // audio_config.hop_length, 2)


def to_spectrogram(waveforms: jax.Array, audio_config) -> jax.Array:
  """Waveforms float [..., num_samples] -> float32 [..., bins, frames, 2].

  With the default config (frame_length 254, hop 64) a padded 8192-sample recording gives
  [128, 128, 2]: frequency (0 to 4 kHz) x time (8 ms hops) x the representation's two channels.
  """
  spectrum = stft_lib.stft(waveforms, audio_config.frame_length, audio_config.hop_length)
  return from_complex(spectrum, audio_config)


def from_complex(spectrum: jax.Array, audio_config) -> jax.Array:
  """Complex STFT [..., bins, frames] -> float32 images [..., bins, frames, 2] (the inverse of
  `to_complex`)."""
  representation = audio_config.representation
  if representation == "mag_phase":
    channels = (jnp.abs(spectrum), jnp.angle(spectrum))
  elif representation == "logmag_phase":
    channels = (jnp.log(jnp.abs(spectrum) + audio_config.log_eps), jnp.angle(spectrum))
  elif representation == "real_imag":
    channels = (spectrum.real, spectrum.imag)
  else:
    raise errors.ConfigError(f"audio.representation={representation!r} is unknown; "
                     f"choose one of {REPRESENTATIONS}.")
  return jnp.stack(channels, axis=-1).astype(jnp.float32)


def convert(spectrograms: jax.Array, source, target) -> jax.Array:
  """Spectrogram images in `source`'s representation -> the same STFT in `target`'s (audio
  configs with the same frame and hop lengths); unchanged when the representations agree."""
  if (source.frame_length, source.hop_length) != (target.frame_length, target.hop_length):
    raise errors.ConfigError(
        f"Spectrograms of frame/hop {source.frame_length}/{source.hop_length} cannot be read as "
        f"{target.frame_length}/{target.hop_length}; compute them from the waveforms instead.")
  same = source.representation == target.representation and (
      source.representation != "logmag_phase" or source.log_eps == target.log_eps)
  return spectrograms if same else from_complex(to_complex(spectrograms, source), target)


def to_complex(spectrograms: jax.Array, audio_config) -> jax.Array:
  """Spectrogram images float [..., bins, frames, 2] -> complex64 STFT [..., bins, frames]."""
  first, second = spectrograms[..., 0], spectrograms[..., 1]
  representation = audio_config.representation
  if representation == "mag_phase":
    return first * jnp.exp(1j * second)
  if representation == "logmag_phase":
    return (jnp.exp(first) - audio_config.log_eps) * jnp.exp(1j * second)
  if representation == "real_imag":
    return jax.lax.complex(first, second)
  raise errors.ConfigError(f"audio.representation={representation!r} is unknown; "
                   f"choose one of {REPRESENTATIONS}.")


def to_waveform(spectrograms: jax.Array, audio_config) -> jax.Array:
  """Spectrogram images float [..., bins, frames, 2] -> float32 waveforms [..., frames * hop]."""
  spectrum = to_complex(jnp.asarray(spectrograms, jnp.float32), audio_config)
  return stft_lib.istft(spectrum, audio_config.frame_length, audio_config.hop_length)


def magnitude(spectrograms: jax.Array, audio_config) -> jax.Array:
  """|X| [..., bins, frames] of spectrogram images in any representation."""
  return jnp.abs(to_complex(spectrograms, audio_config))


def prepare_spectrograms(waveforms, audio_config, chunk: int = 256) -> jax.Array:
  """float32 [N, num_samples] (host) -> [N, bins, frames, 2] on the default device, converted in
  chunks of `chunk` recordings (one compile, bounded memory)."""
  convert_chunk = jax.jit(lambda w: to_spectrogram(w, audio_config))
  parts = [convert_chunk(jnp.asarray(waveforms[i:i + chunk]))
           for i in range(0, len(waveforms), chunk)]
  return jnp.concatenate(parts) if parts else jnp.zeros((0,) + spectrogram_shape(
      waveforms.shape[-1], audio_config), jnp.float32)
