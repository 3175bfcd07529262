"""The trained VQ-VAE as a speech codec: WAV -> codes -> WAV, for any mono WAV of any length.

  --mode=reconstruct --input=in.wav --output=out.wav     encode and decode in one go
  --mode=encode      --input=in.wav --output=codes.npz   the integer codes [bins/4, frames/4, L]
  --mode=decode      --input=codes.npz --output=out.wav

`--workdir` is a training workdir or shipped weights (`pretrained/<name>/`). The model is the one
saved there (its config.json); `--config` supplies only `codec.levels` (how many quantizer levels,
i.e. the bit rate; unset: all) and where the data is when the weights do not record the data scale.

Audio at another sample rate is resampled to the model's (`scipy.signal.resample_poly`, logged);
output is written at the model's rate, 16-bit PCM. The networks are convolutional in time, so a
recording of any length is zero-padded at its end to a multiple of hop x 2^(encoder layers) samples
and cut back afterwards: nothing is truncated.

A codes file records the weights' fingerprint; decoding it with other weights is an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pathlib

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import scipy.signal

from rvq_jax import audio
from rvq_jax import data as data_lib
from rvq_jax import errors
from rvq_jax import files
from rvq_jax.models import vqvae
from rvq_jax.train import vqvae as vqvae_train

CODES_FORMAT = 1


@dataclasses.dataclass
class Codec:
  """A trained VQ-VAE ready to code audio.

  Attributes:
    config: the model's own config (its workdir's config.json).
    params, embed: network parameters and codebooks [L, K, D].
    scale: the training data's standard deviation (PCM units): the model sees waveforms / scale.
    fingerprint: 16 hex digits of a hash of params and codebooks.
  """
  config: ml_collections.ConfigDict
  params: object
  embed: jax.Array
  scale: float
  fingerprint: str

  @property
  def sample_rate(self) -> int:
    return int(self.config.data.sample_rate)

  @property
  def multiple(self) -> int:
    """Samples a waveform's length must be a multiple of: hop x the encoder's time downsampling."""
    return self.config.audio.hop_length * vqvae.downsampling(self.config)


def weights_fingerprint(params, embed) -> str:
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves((params, embed)):
    digest.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
  return digest.hexdigest()[:16]


def load_codec(config, workdir) -> Codec:
  """The VQ-VAE saved in `workdir` (checkpoints or weights.msgpack). `config` supplies the data
  location, used only when the weights do not record the data scale."""
  saved, state, scale = vqvae_train.load_trained(workdir, config.data)
  return Codec(saved, state.params, state.codebook.embed, scale,
               weights_fingerprint(state.params, state.codebook.embed))


def _levels(config, codec: Codec) -> int:
  levels = config.get("codec", {}).get("levels") or codec.config.rvq.levels
  if not 1 <= levels <= codec.config.rvq.levels:
    raise errors.ConfigError(f"codec.levels={levels} must be in 1..{codec.config.rvq.levels} "
                             "(the model's rvq.levels).")
  return int(levels)


def read_audio(path, sample_rate: int) -> np.ndarray:
  """A mono WAV as float32 PCM [n] at `sample_rate` (resampled when it is at another rate)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise errors.MissingError(f"{path}: no such file (--input).")
  try:
    samples, rate = data_lib.read_wav(path)
  except errors.DataError as e:
    raise errors.DataError(f"{path}: {e}") from e
  if rate != sample_rate:
    g = math.gcd(rate, sample_rate)
    samples = scipy.signal.resample_poly(samples, sample_rate // g, rate // g).astype(np.float32)
    logging.warning("%s: %d Hz resampled to the model's %d Hz (scipy.signal.resample_poly); "
                    "the output is at %d Hz.", path, rate, sample_rate, sample_rate)
  return samples


def _padded_spectrogram(codec: Codec, samples: np.ndarray) -> jax.Array:
  """[1, bins, frames, 2] of `samples` [n] / scale, zero-padded to a multiple of `codec.multiple`."""
  m = codec.multiple
  padded = np.zeros(max(1, math.ceil(len(samples) / m)) * m, np.float32)
  padded[:len(samples)] = samples / codec.scale
  return audio.to_spectrogram(jnp.asarray(padded)[None], codec.config.audio)


def _to_pcm(codec: Codec, spectrogram: jax.Array, num_samples: int) -> np.ndarray:
  return np.asarray(audio.to_waveform(spectrogram, codec.config.audio))[0, :num_samples] * codec.scale


def encode(codec: Codec, samples: np.ndarray, levels: int) -> np.ndarray:
  """Codes int32 [bins / 2^E, frames / 2^E, levels] of PCM `samples` [n] (E encoder layers)."""
  model = vqvae.make_model(codec.config)
  codes = vqvae.encode_codes(model, codec.params, codec.embed, _padded_spectrogram(codec, samples),
                             num_levels=levels, block_rows=codec.config.rvq.block_rows)
  return np.asarray(codes[0, ..., :levels])


def decode(codec: Codec, codes: np.ndarray, num_samples: int) -> np.ndarray:
  """PCM float32 [num_samples] from codes [h, w, levels]."""
  model = vqvae.make_model(codec.config)
  spec = vqvae.decode_from_codes(model, codec.params, codec.embed, jnp.asarray(codes)[None],
                                 codec.config, num_levels=codes.shape[-1])
  return _to_pcm(codec, spec, num_samples)


def reconstruct(codec: Codec, samples: np.ndarray, levels: int) -> np.ndarray:
  """PCM float32 [n]: `samples` [n] through the encoder, `levels` quantizer levels and the decoder."""
  model = vqvae.make_model(codec.config)
  spec = vqvae.reconstruct(model, codec.params, codec.embed, _padded_spectrogram(codec, samples),
                           codec.config, num_levels=levels)
  return _to_pcm(codec, spec, len(samples))


def _output_path(output, input_path) -> pathlib.Path:
  if not output:
    raise errors.ConfigError("--output is required for this mode (where to write the result).")
  output = pathlib.Path(output)
  if output.exists() and input_path.exists() and output.resolve() == input_path.resolve():
    raise errors.ConfigError(f"--output={output} is the input file; choose another path so the "
                             "input is kept.")
  output.parent.mkdir(parents=True, exist_ok=True)
  return output


def _inputs(input_path) -> pathlib.Path:
  if not input_path:
    raise errors.ConfigError("--input is required for this mode (the file to read).")
  return pathlib.Path(input_path)


def reconstruct_mode(config, workdir: str, input_path: str, output: str) -> pathlib.Path:
  """`--mode=reconstruct`: WAV in, its reconstruction out (at the model's sample rate)."""
  input_path = _inputs(input_path)
  out = _output_path(output, input_path)
  codec = load_codec(config, workdir)
  samples = read_audio(input_path, codec.sample_rate)
  data_lib.write_wav(out, reconstruct(codec, samples, _levels(config, codec)), codec.sample_rate)
  logging.info("%s -> %s (%.2f s, %d levels)", input_path, out, len(samples) / codec.sample_rate,
               _levels(config, codec))
  return out


def encode_mode(config, workdir: str, input_path: str, output: str) -> pathlib.Path:
  """`--mode=encode`: WAV in, codes `.npz` out (codes, num_samples, sample_rate, fingerprint)."""
  input_path = _inputs(input_path)
  out = _output_path(output, input_path)
  codec = load_codec(config, workdir)
  samples = read_audio(input_path, codec.sample_rate)
  levels = _levels(config, codec)
  codes = encode(codec, samples, levels)
  dtype = np.uint16 if codec.config.rvq.codes <= 2**16 else np.int32
  with files.atomic_write(out) as f:
    np.savez_compressed(f, codes=codes.astype(dtype), num_samples=len(samples),
                        sample_rate=codec.sample_rate, fingerprint=codec.fingerprint,
                        format=CODES_FORMAT,
                        model=json.dumps({k: codec.config[k].to_dict()
                                          for k in ("audio", "model", "rvq")}))
  seconds = len(samples) / codec.sample_rate
  bits = codes.size * math.log2(codec.config.rvq.codes)
  logging.info("%s -> %s: %s codes, %.0f bit/s nominal", input_path, out, codes.shape,
               bits / seconds)
  return out


def read_codes(path) -> dict:
  """The arrays of a codes file written by `encode_mode`; DataError naming the file otherwise."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise errors.MissingError(f"{path}: no such file (--input).")
  try:
    with np.load(path, allow_pickle=False) as f:
      contents = {k: f[k] for k in f.files}
  except (OSError, ValueError) as e:
    raise errors.DataError(f"{path}: not a codes file written by --mode=encode ({e}).") from e
  missing = {"codes", "num_samples", "fingerprint"} - set(contents)
  if missing:
    raise errors.DataError(f"{path}: not a codes file written by --mode=encode (no "
                           f"{', '.join(sorted(missing))}).")
  return contents


def decode_mode(config, workdir: str, input_path: str, output: str) -> pathlib.Path:
  """`--mode=decode`: codes `.npz` in (from `--mode=encode` with the same weights), WAV out."""
  input_path = _inputs(input_path)
  out = _output_path(output, input_path)
  contents = read_codes(input_path)
  codec = load_codec(config, workdir)
  if str(contents["fingerprint"]) != codec.fingerprint:
    raise errors.DataError(
        f"{input_path}: encoded by other weights (fingerprint {contents['fingerprint']}; "
        f"{workdir} holds {codec.fingerprint}); decode with the workdir that encoded it.")
  codes = contents["codes"].astype(np.int32)
  if codes.ndim != 3 or not 1 <= codes.shape[-1] <= codec.config.rvq.levels:
    raise errors.DataError(f"{input_path}: codes of shape {codes.shape}; expected [h, w, levels] "
                           f"with 1..{codec.config.rvq.levels} levels.")
  data_lib.write_wav(out, decode(codec, codes, int(contents["num_samples"])), codec.sample_rate)
  logging.info("%s -> %s (%d levels)", input_path, out, codes.shape[-1])
  return out


MODES = {"reconstruct": reconstruct_mode, "encode": encode_mode, "decode": decode_mode}
