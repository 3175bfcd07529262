"""Pure-JAX STFT / inverse STFT and the spectrogram representations (waveform <-> image)."""

from rvq_jax.audio.representations import REPRESENTATIONS
from rvq_jax.audio.representations import convert
from rvq_jax.audio.representations import from_complex
from rvq_jax.audio.representations import magnitude
from rvq_jax.audio.representations import prepare_spectrograms
from rvq_jax.audio.representations import spectrogram_shape
from rvq_jax.audio.representations import to_complex
from rvq_jax.audio.representations import to_spectrogram
from rvq_jax.audio.representations import to_waveform
from rvq_jax.audio.representations import validate_audio_config
from rvq_jax.audio.stft import istft
from rvq_jax.audio.stft import stft

__all__ = [
    "REPRESENTATIONS",
    "convert",
    "from_complex",
    "istft",
    "magnitude",
    "prepare_spectrograms",
    "spectrogram_shape",
    "stft",
    "to_complex",
    "to_spectrogram",
    "to_waveform",
    "validate_audio_config",
]
