"""The trained VQ-VAE as a speech codec: WAV -> codes -> WAV, for any mono WAV of any length.

  --mode=reconstruct --input=in.wav --output=out.wav     encode and decode in one go
  --mode=encode      --input=in.wav --output=in.rvqc     the bitstream (rvq_jax.bitstream)
  --mode=decode      --input=in.rvqc --output=out.wav    (or a codes .npz of the first format)
  --mode=entropy_model                                   the code counts the bitstream codes with

`--workdir` is a training workdir or shipped weights (`pretrained/<name>/`). The model is the one
saved there (its config.json); `--config` supplies only the `codec` section (`codec.levels`: how
many quantizer levels, i.e. the bit rate, unset: all; `codec.depth_tolerance`: each position's own
depth, `truncate_depth`) and where the data is when the weights do not record the data scale.

Audio at another sample rate is resampled to the model's (`scipy.signal.resample_poly`, logged);
output is written at the model's rate, 16-bit PCM. The networks are convolutional in time, so a
recording of any length is coded: its latent frames (hop x 2^(encoder layers) samples each) are
computed for the recording zero-padded at its end to a multiple of `codec.bucket_frames` frames,
and only the recording's own frames are kept (codes) or written (audio). Decoding pads the codes
the same way with the model's code of silence. So a folder of clips of any lengths compiles one
function per bucket (at most window_frames / bucket_frames of them, and three more window shapes
for recordings longer than a window), not one per length; nothing is truncated.

A bitstream records the weights' fingerprint and its entropy model's digest; decoding it with other
weights or another model is an error.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import pathlib
import zipfile

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import scipy.signal
import tqdm

from rvq_jax import audio
from rvq_jax import bitstream
from rvq_jax import context_model
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
  # silence_codes by (levels, frames): computed once per model, not once per decoded file.
  silence: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

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


def codec_settings(config):
  """The command's `codec` section over the defaults (configs/default.py)."""
  section = _default_codec_config()
  given = config.get("codec")
  section.update(given.to_dict() if isinstance(given, ml_collections.ConfigDict) else given or {})
  return section


def _levels(config, codec: Codec) -> int:
  levels = config.get("codec", {}).get("levels")
  levels = codec.config.rvq.levels if levels is None else levels   # unset: all; 0 is an error
  if not 1 <= levels <= codec.config.rvq.levels:
    raise errors.ConfigError(f"codec.levels={levels} must be in 1..{codec.config.rvq.levels} "
                             "(the model's rvq.levels).")
  return int(levels)


def read_audio(path, sample_rate: int, codec_config=None) -> np.ndarray:
  """A mono WAV as float32 PCM [n] at `sample_rate` (resampled when it is at another rate).

  `codec_config` (a config's `codec` section; default: configs/default.py's) bounds what is
  accepted: the file's rate in [min_sample_rate, max_sample_rate], checked before resampling,
  and its peak at most max_input_peak (a float WAV far beyond full scale is not audio at PCM
  scale); a peak above full scale (1.0) is only warned about. DataError naming the file otherwise.
  """
  c = codec_config or _default_codec_config()
  path = pathlib.Path(path)
  if not path.is_file():
    raise errors.MissingError(f"{path}: no such file (--input).")
  try:
    samples, rate = data_lib.read_wav(path)
  except errors.DataError as e:
    raise errors.DataError(f"{path}: {e}") from e
  if not c.min_sample_rate <= rate <= c.max_sample_rate:
    raise errors.DataError(f"{path}: its header declares {rate} Hz; the codec accepts "
                           f"{c.min_sample_rate}-{c.max_sample_rate} Hz (codec.min_sample_rate, "
                           "codec.max_sample_rate). Resample it first if it really is audio.")
  peak = float(np.abs(samples).max())
  if peak > c.max_input_peak:
    raise errors.DataError(f"{path}: peaks at {peak:.3g} x full scale (a float WAV far beyond "
                           f"+-1; more than codec.max_input_peak={c.max_input_peak:g}); scale it "
                           "to +-1 first.")
  if peak > 1.0:
    logging.warning("%s: peaks at %.3g x full scale (a float WAV beyond +-1); coded as it is, "
                    "the output will clip.", path, peak)
  if rate != sample_rate:
    g = math.gcd(rate, sample_rate)
    samples = scipy.signal.resample_poly(samples, sample_rate // g, rate // g).astype(np.float32)
    logging.warning("%s: %d Hz resampled to the model's %d Hz (scipy.signal.resample_poly); "
                    "the output is at %d Hz.", path, rate, sample_rate, sample_rate)
  return samples


def _default_codec_config():
  from rvq_jax.configs import default  # pylint: disable=g-import-not-at-top
  return default.get_config().codec


# ------------------------------------------------------------------ the codec's padding
def _num_frames(codec: Codec, num_samples: int) -> int:
  """Latent frames that cover `num_samples` samples (the codes a recording keeps)."""
  return max(1, math.ceil(num_samples / codec.multiple))


def _padded_frames(num_frames: int, codec_config) -> int:
  """`num_frames` rounded up to a multiple of `codec.bucket_frames`: the frames computed."""
  bucket = codec_config.bucket_frames
  return -(-num_frames // bucket) * bucket


def _spectrogram(codec: Codec, samples: np.ndarray, lo: int, hi: int) -> jax.Array:
  """[1, bins, (hi - lo) * 2^E, 2]: the spectrogram of the samples of latent frames lo..hi of
  `samples` / scale, zeros beyond the recording's end."""
  m = codec.multiple
  segment = np.zeros((hi - lo) * m, np.float32)
  part = samples[lo * m:hi * m]
  segment[:len(part)] = part / codec.scale
  return audio.to_spectrogram(jnp.asarray(segment)[None], codec.config.audio)


def silence_codes(codec: Codec, levels: int, codec_config=None) -> np.ndarray:
  """int32 [h, levels]: the codes of a latent frame of silence (far from any sound): what
  decoding pads codes with up to a bucket. (Computed on one bucket of silence, a shape the
  encoder compiles anyway.)"""
  c = _codec_settings(codec, codec_config)
  frames = max(c.bucket_frames, 2 * c.context_frames + 1)
  if (levels, frames) not in codec.silence:
    encode_segment = _functions(codec)[0]
    codes = encode_segment(codec.params, codec.embed,
                           _spectrogram(codec, np.zeros(0), 0, frames), levels)
    codec.silence[levels, frames] = np.asarray(codes)[0, :, frames // 2]
  return codec.silence[levels, frames]


def _padded_codes(codec: Codec, codes: np.ndarray, codec_config) -> np.ndarray:
  """codes [h, w, l] followed by `silence_codes` up to `_padded_frames(w)` frames."""
  h, w, levels = codes.shape
  pad = _padded_frames(w, codec_config) - w
  silence = silence_codes(codec, levels, codec_config)[:, None]
  return np.concatenate([np.asarray(codes, np.int32),
                         np.broadcast_to(silence, (h, pad, levels))], axis=1)


# ------------------------------------------------------------------ whole signals (the plain form)
def encode_whole(codec: Codec, samples: np.ndarray, levels: int, codec_config=None) -> np.ndarray:
  """Codes int32 [h, ceil(n / multiple), levels] of PCM `samples` [n], the whole signal at once
  (memory grows with its length: `encode` is the windowed form)."""
  c = _codec_settings(codec, codec_config)
  frames = _num_frames(codec, len(samples))
  model = vqvae.make_model(codec.config)
  codes = vqvae.encode_codes(model, codec.params, codec.embed,
                             _spectrogram(codec, samples, 0, _padded_frames(frames, c)),
                             num_levels=levels, block_rows=codec.config.rvq.block_rows)
  return np.asarray(codes[0, :, :frames, :levels])


def decode_whole(codec: Codec, codes: np.ndarray, num_samples: int,
                 codec_config=None) -> np.ndarray:
  """PCM float32 [num_samples] from codes [h, w, levels], at once (`decode`: windowed)."""
  model = vqvae.make_model(codec.config)
  spec = vqvae.decode_from_codes(model, codec.params, codec.embed,
                                 jnp.asarray(_padded_codes(codec, codes, codec_config))[None],
                                 codec.config, num_levels=codes.shape[-1])
  return np.asarray(audio.to_waveform(spec, codec.config.audio))[0, :num_samples] * codec.scale


def reconstruct_whole(codec: Codec, samples: np.ndarray, levels: int,
                      codec_config=None) -> np.ndarray:
  """PCM float32 [n]: `samples` [n] coded and decoded at once (`reconstruct`: windowed)."""
  return decode_whole(codec, encode_whole(codec, samples, levels, codec_config), len(samples),
                      codec_config)


# ------------------------------------------------------------------ windows (bounded memory)
def windows(num_frames: int, window_frames: int, context_frames: int
            ) -> list[tuple[int, int, int, int]]:
  """Latent-frame windows (lo, start, stop, hi) covering 0..num_frames: frames start..stop are
  kept, lo..start and stop..hi are context computed and dropped."""
  return [(max(0, start - context_frames), start, min(start + window_frames, num_frames),
           min(num_frames, start + window_frames + context_frames))
          for start in range(0, num_frames, window_frames)]


@functools.lru_cache(maxsize=8)
def _compiled(config_json: str):
  """Jitted per-window functions of a model (by its config), compiled once per window shape."""
  config = ml_collections.ConfigDict(json.loads(config_json))
  model = vqvae.make_model(config)

  @functools.partial(jax.jit, static_argnames="levels")
  def encode_segment(params, embed, spec, levels):
    return vqvae.encode_codes(model, params, embed, spec, num_levels=levels,
                              block_rows=config.rvq.block_rows)[..., :levels]

  @jax.jit
  def decode_segment(params, embed, codes):
    spec = vqvae.decode_from_codes(model, params, embed, codes, config,
                                   num_levels=codes.shape[-1])
    return audio.to_waveform(spec, config.audio)

  return encode_segment, decode_segment


def _functions(codec: Codec):
  return _compiled(json.dumps({k: codec.config[k].to_dict()
                               for k in ("data", "audio", "model", "rvq")}, sort_keys=True))


def _codec_settings(codec: Codec, codec_config):
  """The window and bucket settings (`codec_config`, default: the model's config's), checked."""
  c = codec_config or codec.config.get("codec") or _default_codec_config()
  c = ml_collections.ConfigDict({**_default_codec_config().to_dict(),
                                 **(c.to_dict() if hasattr(c, "to_dict") else dict(c))})
  if c.window_frames < 1 or c.context_frames < 0 or c.bucket_frames < 1 or \
      c.window_frames % c.bucket_frames:
    raise errors.ConfigError(f"codec.window_frames={c.window_frames} must be a positive multiple "
                             f"of codec.bucket_frames={c.bucket_frames} (>= 1), and "
                             f"codec.context_frames={c.context_frames} >= 0.")
  if not (math.isfinite(c.depth_tolerance) and c.depth_tolerance >= 0) or c.min_levels < 1:
    raise errors.ConfigError(f"codec.depth_tolerance={c.depth_tolerance} must be a number >= 0 "
                             f"(0: off) and codec.min_levels={c.min_levels} >= 1.")
  return c


def depths(embed: np.ndarray, codes: np.ndarray, tolerance: float, min_levels: int = 1,
           chunk_frames: int = 4096) -> np.ndarray:
  """int [rows, frames]: the levels each position of codes [rows, frames, L] keeps, the fewest n
  in [min_levels, L] whose code vectors' sum is within `tolerance` (squared Euclidean distance)
  of all L levels' sum (embed [L, K, D], the codebooks). Frames are taken `chunk_frames` at a
  time, so memory stays that of a chunk's latents however long the recording."""
  levels = codes.shape[-1]
  min_levels = min(min_levels, levels)
  out = np.empty(codes.shape[:2], np.int64)
  for start in range(0, codes.shape[1], chunk_frames):
    chunk = codes[:, start:start + chunk_frames]
    tail = np.zeros(chunk.shape[:2] + (embed.shape[-1],), np.float32)
    ok = np.ones(chunk.shape, bool)            # ok[..., n - 1]: n levels are close enough
    for level in range(levels - 1, 0, -1):     # tail: the sum of the levels a cut at `level` drops
      tail += embed[level][chunk[..., level]]
      ok[..., level - 1] = (tail ** 2).sum(-1) <= tolerance
    ok[..., :min_levels - 1] = False
    out[:, start:start + chunk_frames] = ok.argmax(-1) + 1
  return out


def truncate_depth(embed: np.ndarray, codes: np.ndarray, tolerance: float,
                   min_levels: int = 1) -> np.ndarray:
  """codes [rows, frames, L] with each position's codes past its `depths` set to
  `bitstream.NO_CODE` (which decodes as nothing: `rvq.decode_codes`)."""
  return cut_to_depth(codes, depths(embed, codes, tolerance, min_levels))


def cut_to_depth(codes: np.ndarray, depth: np.ndarray) -> np.ndarray:
  """codes [rows, frames, L] with the codes past each position's depth [rows, frames] set to
  `bitstream.NO_CODE`."""
  keep = np.arange(codes.shape[-1]) < depth[..., None]
  return np.where(keep, codes, bitstream.NO_CODE).astype(codes.dtype)


def encode(codec: Codec, samples: np.ndarray, levels: int, codec_config=None) -> np.ndarray:
  """Codes int32 [h, ceil(n / multiple), levels] of PCM `samples` [n], window by window
  (`codec_config.window_frames` with `context_frames` on each side; default: the model's
  config's): equal to `encode_whole`, in memory bounded by the window. With
  `codec_config.depth_tolerance` > 0, each position's codes past its depth are NO_CODE
  (`truncate_depth`)."""
  c = _codec_settings(codec, codec_config)
  encode_segment = _functions(codec)[0]
  frames = _num_frames(codec, len(samples))
  pieces = [np.asarray(encode_segment(codec.params, codec.embed,
                                      _spectrogram(codec, samples, lo, hi), levels))[
                                          0, :, start - lo:stop - lo]
            for lo, start, stop, hi in windows(_padded_frames(frames, c), c.window_frames,
                                               c.context_frames)]
  codes = np.concatenate(pieces, axis=1)[:, :frames]
  if c.depth_tolerance > 0:
    codes = truncate_depth(np.asarray(codec.embed), codes, c.depth_tolerance, c.min_levels)
  return codes


def decode(codec: Codec, codes: np.ndarray, num_samples: int, codec_config=None) -> np.ndarray:
  """PCM float32 [num_samples] from codes [h, w, levels], window by window (as `encode`)."""
  c = _codec_settings(codec, codec_config)
  decode_segment, m = _functions(codec)[1], codec.multiple
  codes = _padded_codes(codec, codes, c)
  pieces = [np.asarray(decode_segment(codec.params, codec.embed,
                                      jnp.asarray(codes[None, :, lo:hi])))[0, (start - lo) * m:
                                                                          (stop - lo) * m]
            for lo, start, stop, hi in windows(codes.shape[1], c.window_frames, c.context_frames)]
  return np.concatenate(pieces)[:num_samples] * codec.scale


def reconstruct(codec: Codec, samples: np.ndarray, levels: int, codec_config=None) -> np.ndarray:
  """PCM float32 [n]: `samples` [n] encoded and decoded with `levels` quantizer levels, window
  by window (as `encode`); equal to `reconstruct_whole`."""
  return decode(codec, encode(codec, samples, levels, codec_config), len(samples), codec_config)


INPUT_SUFFIXES = {"reconstruct": (".wav",), "encode": (".wav",), "decode": (".rvqc", ".npz")}
OUTPUT_SUFFIX = {"reconstruct": ".wav", "encode": ".rvqc", "decode": ".wav"}


def file_pairs(mode: str, input_path, output) -> list[tuple[pathlib.Path, pathlib.Path]]:
  """(input, output) paths of a codec mode: one file to one file, or a folder to a folder with
  every input file inside it (`INPUT_SUFFIXES`, in sorted order, subfolders too) mirrored under
  the same relative name with the mode's suffix. ConfigError when --input or --output is
  missing, an output would replace an input, a file's --output is a folder, or the folder holds
  no input."""
  if not input_path:
    raise errors.ConfigError("--input is required for this mode (a file, or a folder of them).")
  if not output:
    raise errors.ConfigError("--output is required for this mode (where to write the result).")
  source, target = pathlib.Path(input_path), pathlib.Path(output)
  if source.is_dir():
    inputs = sorted(p for p in source.rglob("*") if p.is_file()
                    and p.suffix.lower() in INPUT_SUFFIXES[mode])
    if not inputs:
      raise errors.ConfigError(f"--input={source} holds no {' or '.join(INPUT_SUFFIXES[mode])} "
                               "files.")
    if target.exists() and not target.is_dir():
      raise errors.ConfigError(f"--output={target} is a file; a folder --input needs a folder.")
    pairs = [(p, (target / p.relative_to(source)).with_suffix(OUTPUT_SUFFIX[mode]))
             for p in inputs]
  else:
    if target.is_dir():
      raise errors.ConfigError(f"--output={target} is a folder; give the file to write (e.g. "
                               f"{target / source.with_suffix(OUTPUT_SUFFIX[mode]).name}), or "
                               "a folder --input to fill a folder.")
    pairs = [(source, target)]
  for src, out in pairs:
    if out.exists() and src.exists() and out.resolve() == src.resolve():
      raise errors.ConfigError(f"--output would replace the input {src}; choose another path so "
                               "the input is kept.")
  return pairs


def reconstruct_file(codec: Codec, source, out, levels: int, settings) -> None:
  """One WAV through the codec, written at the model's sample rate."""
  samples = read_audio(source, codec.sample_rate, settings)
  data_lib.write_wav(out, reconstruct(codec, samples, levels, settings), codec.sample_rate)
  logging.debug("%s -> %s (%.2f s, %d levels)", source, out, len(samples) / codec.sample_rate,
                levels)


def encode_file(codec: Codec, source, out, levels: int, settings, model) -> tuple[int, int]:
  """One WAV to a bitstream (`rvq_jax.bitstream`); returns (file bytes, samples)."""
  samples = read_audio(source, codec.sample_rate, settings)
  codes = encode(codec, samples, levels, settings)
  tables_only = not settings.networks and model.has_format3
  data = bitstream.pack(codes, len(samples), codec.sample_rate, codec.fingerprint, model,
                        version=bitstream.DEPTH_FORMAT if tables_only else None)
  files.write_bytes(out, data)
  return len(data), len(samples)


def _run_files(mode: str, config, workdir: str, input_path: str, output: str, work) -> list:
  """Runs `work(codec, settings, source, out)` over `file_pairs`, with one codec (its windows
  compiled once per shape for every file) and a progress bar for a folder."""
  pairs = file_pairs(mode, input_path, output)
  codec = load_codec(config, workdir)
  settings = codec_settings(config)
  results = []
  bar = tqdm.tqdm(pairs, desc=mode, unit="file", disable=len(pairs) == 1)
  for source, out in bar:
    results.append(work(codec, settings, source, out))
  return [out for _, out in pairs], results, codec


def reconstruct_mode(config, workdir: str, input_path: str, output: str) -> pathlib.Path:
  """`--mode=reconstruct`: WAV (or a folder of them) in, reconstruction(s) out at the model's
  sample rate. Returns the output path."""
  outs, _, _ = _run_files("reconstruct", config, workdir, input_path, output,
                       lambda codec, settings, src, out: reconstruct_file(
                           codec, src, out, _levels(config, codec), settings))
  logging.info("reconstructed %d file(s) into %s", len(outs), output)
  return pathlib.Path(output) if len(outs) > 1 else outs[0]


def encode_mode(config, workdir: str, input_path: str, output: str) -> pathlib.Path:
  """`--mode=encode`: WAV (or a folder of them) in, bitstream(s) out (`rvq_jax.bitstream`: a
  versioned header and the codes range-coded under the entropy model beside the weights). Logs
  the real bit rate (file sizes over duration) beside the nominal one (levels x log2 K bits per
  code)."""
  model = {}

  def work(codec, settings, src, out):
    if not model:
      model["entropy"] = entropy_model(codec, workdir)
    return encode_file(codec, src, out, _levels(config, codec), settings, model["entropy"])
  outs, sizes, codec = _run_files("encode", config, workdir, input_path, output, work)
  codec_config = codec.config   # the model's own config, already read with the weights
  rate = codec_config.data.sample_rate
  seconds = sum(n for _, n in sizes) / rate
  levels = _levels(config, codec)
  logging.info("encoded %d file(s) into %s: %.0f bit/s (file sizes over duration; nominal %.0f "
               "bit/s)", len(outs), output, 8 * sum(b for b, _ in sizes) / seconds,
               levels * math.log2(codec_config.rvq.codes) * rate / _samples_per_code(codec_config))
  return pathlib.Path(output) if len(outs) > 1 else outs[0]


def _samples_per_code(config) -> float:
  """Samples per code of one level: a latent column covers hop x 2^E samples and holds
  `vqvae.latent_rows` codes."""
  return config.audio.hop_length * vqvae.downsampling(config) / vqvae.latent_rows(config)


# Members of a codes file and their largest accepted uncompressed size in bytes: the codes of
# 3 hours of audio at 8 levels (uint16), a few numbers and a model description.
CODES_MEMBERS = {"codes": 2**30, "num_samples": 2**10, "sample_rate": 2**10,
                 "fingerprint": 2**12, "format": 2**10, "model": 2**20}


def read_codes(path) -> dict:
  """The arrays of a codes file written by `encode_mode`, read member by member: only the known
  members, each after its declared uncompressed size is checked (`CODES_MEMBERS`), never
  pickled objects. DataError naming the file for anything else (truncated, empty, not a zip,
  members missing or oversized, a format newer than this code's)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise errors.MissingError(f"{path}: no such file (--input).")
  what = "not a codes file written by --mode=encode"
  try:
    with zipfile.ZipFile(path) as archive:
      sizes = {info.filename[:-4]: info.file_size for info in archive.infolist()
               if info.filename.endswith(".npy")}
      missing = {"codes", "num_samples", "fingerprint"} - set(sizes)
      if missing:
        raise errors.DataError(f"{path}: {what} (no {', '.join(sorted(missing))}).")
      contents = {}
      for name, limit in CODES_MEMBERS.items():
        if name not in sizes:
          continue
        if sizes[name] > limit:
          raise errors.DataError(f"{path}: its member {name!r} declares {sizes[name]:,} bytes "
                                 f"(at most {limit:,} accepted); {what}.")
        with archive.open(name + ".npy") as member:
          contents[name] = np.lib.format.read_array(member, allow_pickle=False)
  except errors.DataError:
    raise
  except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
    raise errors.DataError(f"{path}: {what} ({type(e).__name__}: {e}); encode the audio "
                           "again.") from e
  version = int(contents.get("format", 1))
  if version > CODES_FORMAT:
    raise errors.DataError(f"{path}: codes format {version}, newer than this code reads "
                           f"({CODES_FORMAT}); update rvq_jax.")
  return contents


def check_grid(path, codec: Codec, rows: int, frames: int, levels: int, num_samples,
               max_seconds: float) -> None:
  """A codes file's or bitstream's declared grid against the model: its latent rows, 1..L levels,
  a positive length (at most `max_seconds`) that needs exactly `frames` latent frames. DataError
  naming `path` otherwise."""
  c = codec.config
  height = vqvae.latent_rows(c)
  if rows != height or not 1 <= levels <= c.rvq.levels:
    raise errors.DataError(f"{path}: codes of shape {(rows, frames, levels)}; this model codes "
                           f"[{height}, frames, 1..{c.rvq.levels}].")
  num_samples = np.asarray(num_samples)
  if num_samples.ndim or not np.issubdtype(num_samples.dtype, np.integer) or num_samples < 1 or \
      _num_frames(codec, int(num_samples)) != frames:
    raise errors.DataError(f"{path}: its length ({num_samples.tolist()} samples) does not match "
                           f"its {frames} latent frames of {codec.multiple} samples.")
  if int(num_samples) > max_seconds * codec.sample_rate:
    raise errors.DataError(f"{path}: declares {int(num_samples) / codec.sample_rate:.0f} s of "
                           f"audio, more than codec.max_decode_seconds={max_seconds:g}.")


def check_codes(path, contents: dict, codec: Codec, max_seconds: float) -> np.ndarray:
  """The codes of `contents` (`read_codes`) as int32 [h, w, levels], checked against the model:
  an integer dtype, the grid (`check_grid`), and every code in 0..K-1. DataError naming the file
  otherwise (a JAX gather would clamp or wrap an out-of-range code and decode garbage)."""
  codes, c = contents["codes"], codec.config
  if not np.issubdtype(codes.dtype, np.integer):
    raise errors.DataError(f"{path}: codes of dtype {codes.dtype}; expected integers.")
  if codes.ndim != 3:
    raise errors.DataError(f"{path}: codes of shape {codes.shape}; expected [rows, frames, "
                           "levels].")
  check_grid(path, codec, *codes.shape, contents["num_samples"], max_seconds)
  if codes.size and (codes.min() < 0 or codes.max() >= c.rvq.codes):
    raise errors.DataError(f"{path}: codes range over {codes.min()}..{codes.max()}; this model "
                           f"has codes 0..{c.rvq.codes - 1}.")
  return codes.astype(np.int32)


def entropy_model(codec: Codec, workdir) -> bitstream.EntropyModel:
  """The entropy model beside the weights in `workdir` (bitstream.ENTROPY_MODEL_FILE and, for
  format 4, context_model.FILE), read once per version of its files (a folder of files is
  decoded with one)."""
  folder = pathlib.Path(workdir)
  stamps = tuple((p.stat().st_mtime_ns, p.stat().st_size) if p.exists() else None
                 for p in (folder / bitstream.ENTROPY_MODEL_FILE, folder / context_model.FILE))
  return _read_entropy_model(str(folder), codec.config.rvq.levels, codec.config.rvq.codes, stamps)


@functools.lru_cache(maxsize=4)
def _read_entropy_model(folder: str, levels: int, num_codes: int, _stamps) -> bitstream.EntropyModel:
  return bitstream.load_entropy_model(
      folder, levels, num_codes, f"python -m rvq_jax.main --workdir={folder} --mode=entropy_model")


def read_coded(path, codec: Codec, workdir, codec_config) -> tuple[np.ndarray, int]:
  """(codes int32 [rows, frames, levels], length in samples) of a file written by
  `--mode=encode` with the weights in `workdir`: a bitstream, or a codes `.npz` of the first
  format. Every field is checked before any decoding (DataError naming the file)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise errors.MissingError(f"{path}: no such file (--input).")
  with path.open("rb") as f:
    start = f.read(4)
  if start[:2] == b"PK":   # a zip: the codes .npz of the first format
    contents = read_codes(path)
    _check_fingerprint(path, str(contents["fingerprint"]), codec, workdir)
    return (check_codes(path, contents, codec, codec_config.max_decode_seconds),
            int(contents["num_samples"]))
  data = path.read_bytes()
  header = bitstream.read_header(data, path)
  _check_fingerprint(path, header.fingerprint, codec, workdir)
  check_grid(path, codec, header.rows, header.frames, header.levels,
             np.uint64(header.num_samples), codec_config.max_decode_seconds)
  if header.sample_rate != codec.sample_rate:
    raise errors.DataError(f"{path}: coded at {header.sample_rate} Hz; this model codes "
                           f"{codec.sample_rate} Hz.")
  return bitstream.unpack(data, header, entropy_model(codec, workdir), path), header.num_samples


def _check_fingerprint(path, fingerprint: str, codec: Codec, workdir) -> None:
  if fingerprint != codec.fingerprint:
    raise errors.DataError(
        f"{path}: encoded by other weights (fingerprint {fingerprint}; {workdir} holds "
        f"{codec.fingerprint}); decode with the workdir that encoded it.")


def decode_mode(config, workdir: str, input_path: str, output: str) -> pathlib.Path:
  """`--mode=decode`: bitstream(s) (or codes `.npz`) from `--mode=encode` with the same weights
  (a file or a folder) in, WAV(s) out."""
  def work(codec, settings, src, out):
    codes, num_samples = read_coded(src, codec, workdir, settings)
    data_lib.write_wav(out, decode(codec, codes, num_samples, settings), codec.sample_rate)
  outs, _, _ = _run_files("decode", config, workdir, input_path, output, work)
  logging.info("decoded %d file(s) into %s", len(outs), output)
  return pathlib.Path(output) if len(outs) > 1 else outs[0]


def entropy_model_mode(config, workdir: str, output: str | None) -> pathlib.Path:
  """`--mode=entropy_model`: the context-grouped code counts of the training split
  (`bitstream.EntropyModel`), written as entropy_model.json to `output` (default: the workdir),
  where `--mode=encode` / `decode` read it."""
  codec = load_codec(config, workdir)
  model = fit_training_entropy_model(codec, codec_settings(config))
  path = bitstream.save_entropy_model(output or workdir, model)
  logging.info("%s: entropy model of %d training recordings, %d context groups a level; bits per "
               "code by level (in-sample) %s", path, model.examples, model.groups,
               np.round(model.bits_per_code(), 2).tolist())
  return path


def fit_training_entropy_model(codec: Codec, settings=None,
                               batch_size: int = 64) -> bitstream.EntropyModel:
  """`bitstream.fit_entropy_model` of the training split's codes: each recording's latent frames
  up to its own length (the zero padding after it, which the codec never codes, left out), its
  fixed-length spectrograms coded in batches (one compilation); `settings` (a `codec` section,
  default configs/default.py's) gives the context groups and, with `context_epochs` > 0, format
  4's networks (`fit_context_networks`)."""
  c, settings = codec.config, settings or _default_codec_config()
  splits = data_lib.load_dataset(c.data)
  kept = split_codes(codec, splits["train"], batch_size)
  embed = np.asarray(codec.embed)
  depth_tables = [[depths(embed, x, tolerance) for x in kept]
                  for tolerance in settings.depth_fit_tolerances]
  model = bitstream.fit_entropy_model(
      kept, c.rvq.codes, settings.entropy_context_groups, settings.entropy_fit_iterations,
      depths=depth_tables)
  if settings.context_epochs:
    held_out = split_codes(codec, splits["validation"], batch_size)
    context = fit_context_networks(kept, depth_tables, held_out, c.rvq.codes, settings)
    model = dataclasses.replace(model, context=context)
  return model


def split_codes(codec: Codec, split, batch_size: int = 64) -> list[np.ndarray]:
  """Codes int [rows, frames_i, L] of each recording of a split, its own frames only."""
  c = codec.config
  model = vqvae.make_model(c)
  encode_batch = jax.jit(lambda x: vqvae.encode_codes(model, codec.params, codec.embed, x,
                                                      block_rows=c.rvq.block_rows))
  specs = audio.prepare_spectrograms(split.waveforms, c.audio)
  codes = np.asarray(data_lib.map_batches(lambda x, _: encode_batch(x), specs, batch_size))
  return [codes[i, :, :_num_frames(codec, int(n))] for i, n in enumerate(split.lengths)]


def fit_context_networks(train: list[np.ndarray], depth_tables: list[list[np.ndarray]],
                         held_out: list[np.ndarray], num_codes: int, settings) -> list[dict]:
  """Format 4's networks (`rvq_jax.context_model`), one a level, trained on the training
  recordings' codes [rows, frames_i, L], each whole and once more cut to its depth in one of
  `depth_tables` (drawn per recording), so the networks know both the full grids of a fixed level
  count and the "stopped" neighbours of variable depth. (Trained on cut codes alone, level 1
  costs 5.34 held-out bits per code at full depth instead of 5.13.) Logs each level's held-out
  bits per code (`held_out` recordings, all levels kept)."""
  rng = np.random.default_rng(settings.context_seed)
  choice = rng.integers(0, max(len(depth_tables), 1), len(train))
  cut = train + [cut_to_depth(x, depth_tables[k][i])
                 for i, (x, k) in enumerate(zip(train, choice)) if depth_tables]
  rows, levels = train[0].shape[0], train[0].shape[-1]

  def examples(recordings, level):   # every recording's positions, one array per input
    return [np.concatenate(parts) for parts in zip(
        *(context_model.level_examples(x, level, num_codes) for x in recordings))]
  networks = []
  for level in range(levels):
    networks.append(context_model.train_level(examples(cut, level), level, num_codes, rows,
                                              settings, log=logging.info))
    test = examples(held_out, level)
    logging.info("context model level %d: %.3f held-out bits per code (%d validation codes)",
                 level, context_model.bits(context_model.as_float64([networks[-1]])[0], test)
                 / max(len(test[-1]), 1), len(test[-1]))
  return networks


MODES = {"reconstruct": reconstruct_mode, "encode": encode_mode, "decode": decode_mode}
