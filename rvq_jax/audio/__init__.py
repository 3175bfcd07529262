"""Pure-JAX STFT / inverse STFT and the spectrogram <-> waveform codec."""

from rvq_jax.audio.codec import REPRESENTATIONS
from rvq_jax.audio.codec import convert
from rvq_jax.audio.codec import from_complex
from rvq_jax.audio.codec import magnitude
from rvq_jax.audio.codec import prepare_spectrograms
from rvq_jax.audio.codec import spectrogram_shape
from rvq_jax.audio.codec import to_complex
from rvq_jax.audio.codec import to_spectrogram
from rvq_jax.audio.codec import to_waveform
from rvq_jax.audio.codec import validate_audio_config
from rvq_jax.audio.stft import istft
from rvq_jax.audio.stft import stft
