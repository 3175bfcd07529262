"""The codec's bitstream: RVQ codes entropy-coded into a small versioned binary file.

Layout (little-endian), `HEADER` then the payload:

  magic b"RVQC" | format version u8 | weights fingerprint (16 ASCII hex digits) |
  entropy model digest (8 bytes) | sample rate u32 (Hz) | length u64 (samples) | levels u8 |
  latent rows u16 | latent frames u32 | payload length u32 (32-bit words) | payload CRC-32 u32

The payload is one range-coded stream (`constriction.stream.queue.RangeEncoder`, a well-kept
entropy coder, not a hand-written one) of the codes level by level, each level's [rows, frames]
codes frame by frame, each level under its own categorical distribution: the code frequencies of
that level on the training split (`EntropyModel`, shipped beside the weights as
entropy_model.json; every code keeps a nonzero probability, so any code can be coded). The file's
size over the recording's duration is the codec's real bit rate.

Decoding checks everything before it decodes: the magic, the version (a newer one is an error),
the length of the file, the CRC of the payload, the weights' fingerprint and the entropy model's
digest (a file coded with other weights or another model is an error), and the header's grid
against the model's. Each failure is a `DataError` naming the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import struct
import zlib

import constriction
import numpy as np

from rvq_jax import errors
from rvq_jax import files

MAGIC = b"RVQC"
FORMAT_VERSION = 1
HEADER = struct.Struct("<4sB16s8sIQBHIII")
ENTROPY_MODEL_FILE = "entropy_model.json"


@dataclasses.dataclass(frozen=True)
class EntropyModel:
  """Per-level code counts int64 [L, K] on the training split; the coding distribution of level
  l is (counts[l] + 1) / (sum + K) (add-one smoothing: an unseen code stays codable)."""
  counts: np.ndarray
  examples: int = 0

  @property
  def levels(self) -> int:
    return self.counts.shape[0]

  @property
  def codes(self) -> int:
    return self.counts.shape[1]

  def probabilities(self) -> np.ndarray:
    """float64 [L, K], rows summing to 1."""
    smoothed = self.counts.astype(np.float64) + 1.0
    return smoothed / smoothed.sum(1, keepdims=True)

  @property
  def digest(self) -> bytes:
    """8 bytes identifying the counts (a bitstream records the model it was coded with)."""
    return hashlib.sha256(np.ascontiguousarray(self.counts, np.int64).tobytes()).digest()[:8]

  def ideal_bits(self, codes: np.ndarray) -> float:
    """-sum log2 p(code) of codes [..., levels'] (levels' <= L): the payload's ideal size."""
    log_p = np.log2(self.probabilities())
    return float(-sum(log_p[l][codes[..., l].ravel()].sum() for l in range(codes.shape[-1])))


def fit_entropy_model(codes: np.ndarray, num_codes: int) -> EntropyModel:
  """The counts of codes [N, rows, frames, L] per level."""
  counts = np.stack([np.bincount(codes[..., l].ravel(), minlength=num_codes)
                     for l in range(codes.shape[-1])]).astype(np.int64)
  return EntropyModel(counts, examples=int(codes.shape[0]))


def save_entropy_model(folder, model: EntropyModel) -> pathlib.Path:
  path = pathlib.Path(folder) / ENTROPY_MODEL_FILE
  files.write_text(path, json.dumps({"levels": model.levels, "codes": model.codes,
                                     "examples": model.examples, "split": "train",
                                     "counts": model.counts.tolist()}) + "\n")
  return path


def load_entropy_model(folder, levels: int, num_codes: int, how: str) -> EntropyModel:
  """The entropy model beside a model's weights; MissingError (saying `how` to make it) when
  there is none, DataError when it does not fit `levels` x `num_codes`."""
  path = pathlib.Path(folder) / ENTROPY_MODEL_FILE
  if not path.exists():
    raise errors.MissingError(f"{path}: no entropy model for the bitstream; make it with {how}.")
  try:
    saved = json.loads(path.read_text())
    counts = np.asarray(saved["counts"], np.int64)
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise errors.DataError(f"{path} is unreadable ({e}); make it again with {how}.") from e
  if counts.shape != (levels, num_codes) or (counts < 0).any():
    raise errors.DataError(f"{path}: counts of shape {counts.shape} do not fit the model's "
                           f"{levels} levels of {num_codes} codes; make it again with {how}.")
  return EntropyModel(counts, int(saved.get("examples", 0)))


@dataclasses.dataclass(frozen=True)
class Header:
  fingerprint: str
  model_digest: bytes
  sample_rate: int
  num_samples: int
  levels: int
  rows: int
  frames: int


def _level_models(model: EntropyModel, levels: int):
  return [constriction.stream.model.Categorical(p.astype(np.float64), perfect=False)
          for p in model.probabilities()[:levels]]


def pack(codes: np.ndarray, num_samples: int, sample_rate: int, fingerprint: str,
         model: EntropyModel) -> bytes:
  """codes int [rows, frames, levels] (levels <= the model's) -> the bitstream's bytes."""
  rows, frames, levels = codes.shape
  encoder = constriction.stream.queue.RangeEncoder()
  for level, level_model in enumerate(_level_models(model, levels)):
    encoder.encode(np.ascontiguousarray(codes[..., level].T).ravel().astype(np.int32),
                   level_model)
  payload = encoder.get_compressed().astype("<u4").tobytes()
  header = HEADER.pack(MAGIC, FORMAT_VERSION, fingerprint.encode("ascii"), model.digest,
                       sample_rate, num_samples, levels, rows, frames, len(payload) // 4,
                       zlib.crc32(payload))
  return header + payload


def read_header(data: bytes, path) -> Header:
  """The header of a bitstream's bytes, checked for its magic, version and length and the CRC of
  its payload (DataError naming `path` otherwise)."""
  what = "not a bitstream written by --mode=encode"
  if len(data) < HEADER.size or data[:4] != MAGIC:
    raise errors.DataError(f"{path}: {what} ({len(data)} bytes"
                           f"{'' if len(data) < HEADER.size else ', another magic number'}).")
  (_, version, fingerprint, digest, rate, num_samples, levels, rows, frames, words,
   crc) = HEADER.unpack_from(data)
  if version > FORMAT_VERSION:
    raise errors.DataError(f"{path}: bitstream format {version}, newer than this code reads "
                           f"({FORMAT_VERSION}); update rvq_jax.")
  if len(data) != HEADER.size + 4 * words:
    raise errors.DataError(f"{path}: {len(data)} bytes, but its header announces "
                           f"{HEADER.size + 4 * words} (a truncated or padded file).")
  if zlib.crc32(data[HEADER.size:]) != crc:
    raise errors.DataError(f"{path}: its payload fails its CRC-32 (a damaged file).")
  try:
    fingerprint = fingerprint.decode("ascii")
  except UnicodeDecodeError as e:
    raise errors.DataError(f"{path}: {what} (its fingerprint is not text).") from e
  return Header(fingerprint, digest, rate, num_samples, levels, rows, frames)


def unpack(data: bytes, header: Header, model: EntropyModel, path) -> np.ndarray:
  """The codes int32 [rows, frames, levels] of a bitstream whose `header` (`read_header`) the
  caller has checked against its model; DataError when `model` is not the one it was coded with."""
  if header.model_digest != model.digest:
    raise errors.DataError(f"{path}: coded with another entropy model than the one beside these "
                           "weights (entropy_model.json); decode with the folder that encoded it.")
  if not 1 <= header.levels <= model.levels:
    raise errors.DataError(f"{path}: {header.levels} levels; the model has 1..{model.levels}.")
  payload = np.frombuffer(data, "<u4", offset=HEADER.size).astype(np.uint32)
  decoder = constriction.stream.queue.RangeDecoder(payload)
  count = header.rows * header.frames
  levels = [decoder.decode(level_model, count).reshape(header.frames, header.rows).T
            for level_model in _level_models(model, header.levels)]
  return np.stack(levels, -1).astype(np.int32)
