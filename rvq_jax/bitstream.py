"""The codec's bitstream: RVQ codes entropy-coded into a small versioned binary file.

Layout (little-endian), `HEADER` then the payload:

  magic b"RVQC" | format version u8 | weights fingerprint (16 ASCII hex digits) |
  entropy model digest (8 bytes) | sample rate u32 (Hz) | length u64 (samples) | levels u8 |
  latent rows u16 | latent frames u32 | payload length u32 (32-bit words) | payload CRC-32 u32

The payload is one range-coded stream (`constriction.stream.queue.RangeEncoder`, a well-kept
entropy coder, not a hand-written one) of the codes level by level, each level's [rows, frames]
codes frame by frame. Format 2 codes each code under a distribution chosen by its context
(`EntropyModel`, fitted on the training split and shipped beside the weights as
entropy_model.json):

  level 0        the same row's code one latent frame earlier ("no frame before" at frame 0)
  level l >= 1   the code of level l-1 at the same position

Each context value belongs to one of G groups (`codec.entropy_context_groups`, fitted so that the
training codes' cross-entropy is smallest) and each group has its own code counts, so the model is
G x K counts a level, not K x K. The codes' held-out cost falls by about 18% against format 1, which
coded every code of a level under the level's frequencies alone (one group); format 1 files still
decode, with those frequencies (the sums of the groups' counts, so the digest is unchanged). Every
code keeps a nonzero probability (add-one smoothing), so any code can be coded. The file's size over
the recording's duration is the codec's real bit rate.

Format 3 codes each latent position only to its own depth (`codec.truncate_depth`: the fewest
levels within `codec.depth_tolerance` of all of them; the codes past it are `NO_CODE`): the payload
starts with the smallest depth of the file (uniform over 1..levels) and which of the entropy
model's depth tables it uses (the cheapest for this file; one table per tolerance in
`codec.depth_fit_tolerances`), then level 0 under two contexts, the group of the code a frame
earlier and the group of the code a row (frequency band) below in the same frame (8.6% fewer bits
than the first alone), in anti-diagonal order so that the decoder takes a diagonal per call, then
for each level l >= 1, for every
position that reached level l-1 and is not under the smallest depth, whether it goes on (under its
table's counts for the group of its code at l-1), and the codes of those that do, as in format 2.
Silence and steady sounds stop after a level or two, so the same quality costs far fewer bits.
Format 4 keeps format 3's depths and go-on flags and codes every code, at every level, under a
small network of its level instead of counts (`rvq_jax.context_model`, trained on the training
split and shipped beside the tables as entropy_context.npz): it reads 13 causal neighbours' codes of
its level, the codes of the levels above at its position and its row, and the positions of a level
are coded by wavefronts (`context_model.wavefronts`), which the decoder takes one per call. The
payload ends with a CRC-32 of the codes, so a decoder whose network arithmetic differed from the
encoder's says so. Every file is written in the newest format the model has the tables for: 4 with
networks, else 3 (codes of one depth everywhere included: then no flags are coded); formats 1, 2
and 3 still decode.

Decoding checks everything before it decodes: the magic, the version (a newer one is an error),
the length of the file, the CRC of the payload, the weights' fingerprint and the entropy model's
digest (a file coded with other weights or another model is an error), and the header's grid
against the model's. Each failure is a `DataError` naming the file.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import pathlib
import struct
import zlib

import constriction
import numpy as np
import threadpoolctl

from rvq_jax import context_model
from rvq_jax import errors
from rvq_jax import files

MAGIC = b"RVQC"
FORMAT_VERSION = 4
UNIGRAM_FORMAT = 1        # format 1: each level's code frequencies, no context
CONTEXT_FORMAT = 2        # format 2: every position coded to the same depth, context-coded
DEPTH_FORMAT = 3          # format 3: each position to its own depth (NO_CODE past it)
NETWORK_FORMAT = 4        # format 4: format 3's depths, every code under the learned context model
NO_CODE = -1              # = rvq_jax.models.rvq.NO_CODE
HEADER = struct.Struct("<4sB16s8sIQBHIII")
ENTROPY_MODEL_FILE = "entropy_model.json"
CHUNK_SYMBOLS = 1 << 16   # symbols per coder call: bounds the [n, K] probability table in memory


def below_values(codes: np.ndarray, num_codes: int) -> np.ndarray:
  """int [rows, frames]: format 3's second context of level 0, the code of the row below (the next
  lower latent row, i.e. frequency band) in the same frame (`num_codes` for row 0)."""
  return np.concatenate([np.full((1, codes.shape[1]), num_codes), codes[:-1, :, 0]], 0)


def context_values(codes: np.ndarray, level: int, num_codes: int) -> np.ndarray:
  """int [rows, frames]: the context of every code of `level` in codes [rows, frames, L']: level
  0, the same row's code a frame earlier (`num_codes` at frame 0: no frame before); below, the
  code of the level above at the same position."""
  if level == 0:
    return np.concatenate([np.full((codes.shape[0], 1), num_codes), codes[:, :-1, 0]], 1)
  return codes[..., level - 1]


@dataclasses.dataclass(frozen=True)
class EntropyModel:
  """Context-grouped code counts of the training split.

  counts: int64 [L, G, K], the codes of level l seen in a context of group g;
  group_of: int64 [L, K + 1], the group of each context value (level 0: the left neighbour's code,
    K for "no frame before"; level l >= 1: the level above's code, entry K unused).
  The coding distribution of a code in group g of level l is (counts[l, g] + 1) / (sum + K).
  A model with G = 1 is format 1's: each level's frequencies alone.
  """
  counts: np.ndarray
  group_of: np.ndarray | None = None
  examples: int = 0
  depth_counts: np.ndarray | None = None   # int64 [T, L, G, 2]: format 3's stop / go-on counts
  below_group_of: np.ndarray | None = None  # int64 [K + 1]: format 3's group of the row below
  level0_counts: np.ndarray | None = None   # int64 [G, Gb, K]: format 3's level 0 counts
  context: list | None = None               # format 4's networks, one a level (context_model)

  def __post_init__(self):
    counts = np.asarray(self.counts, np.int64)
    if counts.ndim == 2:                      # [L, K]: one group (format 1's model)
      counts = counts[:, None, :]
    object.__setattr__(self, "counts", counts)
    if self.group_of is None:
      object.__setattr__(self, "group_of", np.zeros((counts.shape[0], counts.shape[2] + 1),
                                                    np.int64))
    else:
      object.__setattr__(self, "group_of", np.asarray(self.group_of, np.int64))
    for name in ("depth_counts", "below_group_of", "level0_counts"):
      if getattr(self, name) is not None:
        object.__setattr__(self, name, np.asarray(getattr(self, name), np.int64))

  @property
  def has_format3(self) -> bool:
    """Whether the model has format 3's tables (depth counts, level 0's two-context counts)."""
    return self.depth_counts is not None and self.level0_counts is not None

  @property
  def has_format4(self) -> bool:
    """Whether the model has format 4's networks (and format 3's depth tables it also uses)."""
    return self.has_format3 and self.context is not None

  @functools.cached_property
  def context64(self) -> list[dict]:
    """Format 4's networks in float64, as they code."""
    return context_model.as_float64(self.context)

  def level0_probabilities(self) -> np.ndarray:
    """float64 [G, Gb, K]: format 3's level-0 distribution given the group of the code a frame
    earlier and the group of the code a row below, add-one smoothed."""
    smoothed = self.level0_counts.astype(np.float64) + 1.0
    return smoothed / smoothed.sum(-1, keepdims=True)

  @property
  def levels(self) -> int:
    return self.counts.shape[0]

  @property
  def groups(self) -> int:
    return self.counts.shape[1]

  @property
  def codes(self) -> int:
    return self.counts.shape[2]

  def probabilities(self) -> np.ndarray:
    """float64 [L, G, K], each group's row summing to 1."""
    smoothed = self.counts.astype(np.float64) + 1.0
    return smoothed / smoothed.sum(-1, keepdims=True)

  def depth_probabilities(self) -> np.ndarray:
    """float64 [T, L, G, 2]: in table t, P(a position stops at / goes on past level l-1 | the
    group of its code there) for l >= 1 (row 0 unused), add-one smoothed. One table per depth
    tolerance the model was fitted at; a file says which it was coded with."""
    smoothed = self.depth_counts.astype(np.float64) + 1.0
    return smoothed / smoothed.sum(-1, keepdims=True)

  def unigram(self) -> "EntropyModel":
    """Format 1's model: each level's code counts whatever the context (the groups' sums)."""
    return EntropyModel(self.counts.sum(1), examples=self.examples)

  @property
  def digest(self) -> bytes:
    """8 bytes identifying the model (a bitstream records the model it was coded with). A
    one-group model's digest is format 1's: the sha256 of its int64 [L, K] counts."""
    if self.groups == 1:
      data = np.ascontiguousarray(self.counts[:, 0], np.int64).tobytes()
    else:
      data = (np.ascontiguousarray(self.counts, np.int64).tobytes()
              + np.ascontiguousarray(self.group_of, np.int64).tobytes())
    return hashlib.sha256(data).digest()[:8]

  @property
  def format3_digest(self) -> bytes:
    """The digest a format 3 file records: `digest`'s data and format 3's tables."""
    return hashlib.sha256(self.digest + b"".join(
        np.ascontiguousarray(getattr(self, name), np.int64).tobytes()
        for name in ("depth_counts", "below_group_of", "level0_counts"))).digest()[:8]

  @property
  def format4_digest(self) -> bytes:
    """The digest a format 4 file records: format 3's and the networks'."""
    return hashlib.sha256(self.format3_digest
                          + context_model.digest(self.context)).digest()[:8]

  def file_digest(self, version: int) -> bytes:
    """The digest a file of format `version` records."""
    return {DEPTH_FORMAT: lambda: self.format3_digest,
            NETWORK_FORMAT: lambda: self.format4_digest}.get(version, lambda: self.digest)()

  def context_groups(self, codes: np.ndarray, level: int) -> np.ndarray:
    """int64 [rows, frames]: the group of every code of `level` in codes [rows, frames, L']."""
    return self.group_of[level][context_values(codes, level, self.codes)]

  def ideal_bits(self, codes: np.ndarray) -> float:
    """-sum log2 p(code | context) of codes [rows, frames, L'] (L' <= L): the payload's ideal
    size."""
    log_p = np.log2(self.probabilities())
    return float(-sum(log_p[l][self.context_groups(codes, l), codes[..., l]].sum()
                      for l in range(codes.shape[-1])))

  def bits_per_code(self) -> list[float]:
    """Each level's conditional entropy on its training codes (bits per code; ideal, in-sample)."""
    p, n = self.probabilities(), self.counts.astype(np.float64)
    return [float(-(n[l] * np.log2(p[l])).sum() / max(n[l].sum(), 1)) for l in range(self.levels)]


def _group_contexts(counts: np.ndarray, groups: int, iterations: int) -> np.ndarray:
  """The group [C] of each context whose code counts are the rows of counts [C, K]: the grouping
  whose groups' distributions give the counts the smallest cross-entropy, by alternating the two
  halves of the problem (each group's distribution from its members' counts; each context to the
  group that codes its counts in the fewest bits). Deterministic: it starts from the contexts
  ranked by their most frequent code, split into `groups` runs of equal count mass."""
  num_contexts = counts.shape[0]
  if groups >= num_contexts:
    return np.arange(num_contexts)
  order = np.lexsort((np.arange(num_contexts), counts.argmax(1)))
  mass = np.cumsum(counts[order].sum(1))
  assign = np.empty(num_contexts, np.int64)
  assign[order] = np.minimum((groups * mass / max(mass[-1], 1)).astype(np.int64), groups - 1)
  for _ in range(iterations):
    smoothed = np.ones((groups, counts.shape[1]))
    np.add.at(smoothed, assign, counts)
    log_q = np.log2(smoothed / smoothed.sum(1, keepdims=True))
    new = (-counts @ log_q.T).argmin(1)
    if (new == assign).all():
      break
    assign = new
  return assign


def fit_entropy_model(codes: list[np.ndarray], num_codes: int, groups: int = 1,
                      iterations: int = 30, depths: list[list[np.ndarray]] | None = None
                      ) -> EntropyModel:
  """The context model of recordings' codes, each int [rows, frames_i, L] (its own frames only:
  a recording's left neighbours never cross into another's). `groups` = 1 is format 1's model.
  With `depths` (one table each: a list of int [rows, frames_i], the levels each position of each
  recording keeps at one tolerance, `codec.depths`) also format 3's depth counts: at each level
  l >= 1, of the positions that reached level l-1, how many stopped there and how many went on,
  by the group of their code at l-1; and level 0's counts by two contexts, the group of the code a
  frame earlier and the group (`groups` of them, fitted as above) of the code a row below."""
  levels = codes[0].shape[-1]
  group_of = np.zeros((levels, num_codes + 1), np.int64)
  counts = np.zeros((levels, groups, num_codes), np.int64)
  for level in range(levels):
    # Counts of (context value, code), then the context values grouped.
    pairs = np.zeros((num_codes + 1, num_codes), np.int64)
    for x in codes:
      np.add.at(pairs, (context_values(x, level, num_codes).ravel(), x[..., level].ravel()), 1)
    if groups > 1:
      group_of[level] = _group_contexts(pairs.astype(np.float64), groups, iterations)
    np.add.at(counts[level], group_of[level], pairs)
  depth_counts = below_group_of = level0_counts = None
  if depths is not None:
    pairs = np.zeros((num_codes + 1, num_codes), np.int64)
    for x in codes:
      np.add.at(pairs, (below_values(x, num_codes).ravel(), x[..., 0].ravel()), 1)
    below_group_of = (_group_contexts(pairs.astype(np.float64), groups, iterations) if groups > 1
                      else np.zeros(num_codes + 1, np.int64))
    level0_counts = np.zeros((groups, groups, num_codes), np.int64)
    for x in codes:
      np.add.at(level0_counts, (group_of[0][context_values(x, 0, num_codes)].ravel(),
                                below_group_of[below_values(x, num_codes)].ravel(),
                                x[..., 0].ravel()), 1)
    depth_counts = np.zeros((len(depths), levels, groups, 2), np.int64)
    for table, table_depths in enumerate(depths):
      for x, depth in zip(codes, table_depths):
        for level in range(1, levels):
          reached = depth >= level
          np.add.at(depth_counts[table, level], (group_of[level][x[..., level - 1][reached]],
                                                 (depth[reached] > level).astype(np.int64)), 1)
  return EntropyModel(counts, group_of, examples=len(codes), depth_counts=depth_counts,
                      below_group_of=below_group_of, level0_counts=level0_counts)


def save_entropy_model(folder, model: EntropyModel) -> pathlib.Path:
  path = pathlib.Path(folder) / ENTROPY_MODEL_FILE
  files.write_text(path, json.dumps({
      "levels": model.levels, "codes": model.codes, "groups": model.groups,
      "context": "level 0: the left neighbour's code (index `codes`: no frame before); "
                 "level l >= 1: the code of level l-1 at the same position",
      "examples": model.examples, "split": "train",
      "group_of": model.group_of.tolist(), "counts": model.counts.tolist(),
      **({} if model.depth_counts is None else {
          "depth": "format 3, one table per fitted depth tolerance: at level l >= 1, [stopped at "
                   "l-1, went on] of the positions that reached level l-1, by the group of their "
                   "code there",
          "depth_counts": model.depth_counts.tolist(),
          "below": "format 3's level 0: [group of the code a frame earlier, group of the code a "
                   "row below (index `codes`: row 0)]",
          "below_group_of": model.below_group_of.tolist(),
          "level0_counts": model.level0_counts.tolist()})}) + "\n")
  if model.context is not None:
    context_model.save(folder, model.context)
  return path


def load_entropy_model(folder, levels: int, num_codes: int, how: str) -> EntropyModel:
  """The entropy model beside a model's weights (format 1's per-level counts [L, K] are read as a
  one-group model); MissingError (saying `how` to make it) when there is none, DataError when it
  does not fit `levels` x `num_codes`."""
  path = pathlib.Path(folder) / ENTROPY_MODEL_FILE
  if not path.exists():
    raise errors.MissingError(f"{path}: no entropy model for the bitstream; make it with {how}.")
  try:
    saved = json.loads(path.read_text())
    counts = np.asarray(saved["counts"], np.int64)
    group_of = saved.get("group_of")
    group_of = None if group_of is None else np.asarray(group_of, np.int64)
    depth_counts, below_group_of, level0_counts = (
        None if saved.get(name) is None else np.asarray(saved[name], np.int64)
        for name in ("depth_counts", "below_group_of", "level0_counts"))
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise errors.DataError(f"{path} is unreadable ({e}); make it again with {how}.") from e
  counts = counts[:, None, :] if counts.ndim == 2 else counts
  fits = (counts.ndim == 3 and counts.shape[0] == levels and counts.shape[2] == num_codes
          and (counts >= 0).all())
  if fits and (group_of is not None or counts.shape[1] > 1):
    fits = group_of is not None and (group_of.shape == (levels, num_codes + 1) and (group_of >= 0).all()
            and (group_of < counts.shape[1]).all())
  if fits and depth_counts is not None and not (
      depth_counts.ndim == 4 and depth_counts.shape[1:] == (levels, counts.shape[1], 2)
      and len(depth_counts) >= 1 and (depth_counts >= 0).all()
      and below_group_of is not None and level0_counts is not None
      and below_group_of.shape == (num_codes + 1,)
      and level0_counts.shape == (counts.shape[1], counts.shape[1], num_codes)
      and (below_group_of >= 0).all() and (below_group_of < counts.shape[1]).all()
      and (level0_counts >= 0).all()):
    raise errors.DataError(f"{path}: its format 3 tables do not fit the model's {levels} levels of "
                           f"{num_codes} codes in {counts.shape[1]} groups; make it again with "
                           f"{how}.")
  if not fits:
    raise errors.DataError(f"{path}: counts of shape {counts.shape} do not fit the model's "
                           f"{levels} levels of {num_codes} codes; make it again with {how}.")
  context = context_model.load(folder, levels, num_codes, how)
  if context is not None and depth_counts is None:
    raise errors.DataError(f"{path}: {context_model.FILE} beside it needs the format 3 tables "
                           f"too; make it again with {how}.")
  return EntropyModel(counts, group_of, int(saved.get("examples", 0)), depth_counts,
                      below_group_of, level0_counts, context)


@dataclasses.dataclass(frozen=True)
class Header:
  fingerprint: str
  model_digest: bytes
  sample_rate: int
  num_samples: int
  levels: int
  rows: int
  frames: int
  version: int = FORMAT_VERSION


def _group_runs(groups: np.ndarray, num_groups: int):
  """The positions of `groups` [n] sorted by group (stable), and each group's run in them."""
  order = np.argsort(groups, kind="stable")
  bounds = np.searchsorted(groups[order], np.arange(num_groups + 1))
  return order, bounds


def _encode_grouped(encoder, symbols: np.ndarray, groups: np.ndarray, probabilities: np.ndarray):
  """Range-code symbols [n], each under row groups[i] of probabilities [G, S], group by group
  (the symbols' order within a group kept), so each group's distribution is built once: the
  same bits, 25x faster than a distribution per symbol."""
  order, bounds = _group_runs(groups, len(probabilities))
  for group in range(len(probabilities)):
    run = symbols[order[bounds[group]:bounds[group + 1]]].astype(np.int32)
    if run.size:
      encoder.encode(run, constriction.stream.model.Categorical(probabilities[group],
                                                                perfect=False))


def _decode_grouped(decoder, groups: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
  """The symbols int64 [n] that `_encode_grouped` coded with these groups [n]."""
  order, bounds = _group_runs(groups, len(probabilities))
  out = np.empty(groups.size, np.int64)
  for group in range(len(probabilities)):
    size = int(bounds[group + 1] - bounds[group])
    if size:
      out[order[bounds[group]:bounds[group + 1]]] = decoder.decode(
          constriction.stream.model.Categorical(probabilities[group], perfect=False), size)
  return out


def _frame_major(x: np.ndarray) -> np.ndarray:
  """[rows, frames] -> [frames * rows]: the coding order, frame by frame."""
  return np.ascontiguousarray(x.T).ravel()


def _encode_level(encoder, model: EntropyModel, codes: np.ndarray, level: int):
  """Range-code level `level` of codes [rows, frames, L'], each code under its context group's
  distribution. Level 0 in frame order (its contexts are its own codes a frame earlier, which the
  decoder must have first); a lower level, whose contexts the decoder already has, group by group
  (`_encode_grouped`)."""
  probabilities = model.probabilities()[level]
  symbols = _frame_major(codes[..., level]).astype(np.int32)
  groups = _frame_major(model.context_groups(codes, level))
  if level == 0 and model.groups > 1:
    family = constriction.stream.model.Categorical(perfect=False)
    for start in range(0, len(symbols), CHUNK_SYMBOLS):
      chunk = slice(start, start + CHUNK_SYMBOLS)
      encoder.encode(symbols[chunk], family, probabilities[groups[chunk]])
    return
  _encode_grouped(encoder, symbols, groups, probabilities)


def _decode_level(decoder, model: EntropyModel, decoded: np.ndarray, level: int, rows: int,
                  frames: int) -> np.ndarray:
  """Level `level`'s codes int [rows, frames] in `_encode_level`'s order, the levels above it
  `decoded` [rows, frames, >= level]."""
  probabilities = model.probabilities()[level]
  if level == 0 and model.groups > 1:
    family = constriction.stream.model.Categorical(perfect=False)
    out = np.empty((rows, frames), np.int64)
    left = np.full(rows, model.codes)
    for frame in range(frames):
      out[:, frame] = left = decoder.decode(family, probabilities[model.group_of[0][left]])
    return out
  groups = (np.zeros(rows * frames, np.int64) if model.groups == 1 else
            _frame_major(model.group_of[level][decoded[..., level - 1]]))
  return _decode_grouped(decoder, groups, probabilities).reshape(frames, rows).T


def _diagonals(rows: int, frames: int):
  """Format 3's level-0 order: positions (flat indices into [rows, frames]) by anti-diagonal
  r + f, rows ascending within one, and each diagonal's run. A position's contexts, (r, f-1) and
  (r-1, f), lie on the diagonal before, so the decoder takes a whole diagonal per call."""
  r, f = np.indices((rows, frames))
  d = (r + f).ravel()
  order = np.lexsort((r.ravel(), d))
  return order, np.searchsorted(d[order], np.arange(rows + frames))


def _encode_level0_2d(encoder, model: EntropyModel, codes: np.ndarray):
  """Format 3's level 0 of codes [rows, frames, L'], each code under the distribution of its two
  contexts' groups (the code a frame earlier, the code a row below), in `_diagonals` order."""
  rows, frames = codes.shape[:2]
  order, _ = _diagonals(rows, frames)
  left = model.group_of[0][context_values(codes, 0, model.codes)].ravel()[order]
  below = model.below_group_of[below_values(codes, model.codes)].ravel()[order]
  symbols = codes[..., 0].ravel()[order].astype(np.int32)
  probabilities = model.level0_probabilities()
  family = constriction.stream.model.Categorical(perfect=False)
  for start in range(0, len(symbols), CHUNK_SYMBOLS):
    chunk = slice(start, start + CHUNK_SYMBOLS)
    encoder.encode(symbols[chunk], family, probabilities[left[chunk], below[chunk]])


def _decode_level0_2d(decoder, model: EntropyModel, rows: int, frames: int) -> np.ndarray:
  """`_encode_level0_2d`'s level 0, int [rows, frames], one diagonal per decoder call."""
  order, bounds = _diagonals(rows, frames)
  probabilities = model.level0_probabilities()
  family = constriction.stream.model.Categorical(perfect=False)
  out = np.empty((rows, frames), np.int64)
  for d in range(rows + frames - 1):
    r, f = np.divmod(order[bounds[d]:bounds[d + 1]], frames)
    left = np.where(f > 0, out[r, np.maximum(f - 1, 0)], model.codes)
    below = np.where(r > 0, out[np.maximum(r - 1, 0), f], model.codes)
    out[r, f] = decoder.decode(family, probabilities[model.group_of[0][left],
                                                     model.below_group_of[below]])
  return out


def _encode_deeper_level(encoder, model: EntropyModel, codes: np.ndarray, level: int,
                         min_depth: int, table: int):
  """Format 3, level l >= 1 of variable-depth codes [rows, frames, L'] (NO_CODE past a
  position's depth, every depth >= `min_depth`): the go-on flags (`_encode_flags`; not coded
  below `min_depth`, where all go on), then the codes of the positions that go on, each under
  the group of its code at l-1 (as `_encode_level`), frame by frame."""
  if level >= min_depth:
    _encode_flags(encoder, model, codes, level, table)
  parent, symbols = _frame_major(codes[..., level - 1]), _frame_major(codes[..., level])
  goes_on = symbols >= 0
  _encode_grouped(encoder, symbols[goes_on], model.group_of[level][parent[goes_on]],
                  model.probabilities()[level])


def _decode_deeper_level(decoder, model: EntropyModel, decoded: np.ndarray, level: int,
                         min_depth: int, table: int) -> np.ndarray:
  """`_encode_deeper_level`'s level int [rows, frames] (NO_CODE where a position stopped)."""
  present = _goes_on(decoder, model, decoded, level, min_depth, table)
  parent = _frame_major(decoded[..., level - 1])
  goes_on = np.flatnonzero(_frame_major(present))
  out = np.full(parent.size, NO_CODE, np.int64)
  out[goes_on] = _decode_grouped(decoder, model.group_of[level][parent[goes_on]],
                                 model.probabilities()[level])
  return out.reshape(present.shape[1], present.shape[0]).T


def _goes_on(decoder, model: EntropyModel, decoded: np.ndarray, level: int, min_depth: int,
             table: int) -> np.ndarray:
  """bool [rows, frames]: the positions with a code at level l >= 1 (formats 3 and 4): those
  that reached l-1, less those whose flag (`_encode_flags`, coded from `min_depth` on) says stop."""
  present = decoded[..., level - 1] >= 0
  if level >= min_depth:
    present &= _decode_flags(decoder, model, decoded[..., level - 1], level, table)
  return present


def _encode_flags(encoder, model: EntropyModel, codes: np.ndarray, level: int, table: int):
  """Format 3/4's go-on flags of level l >= 1: for every position that reached level l-1 (frame
  by frame), whether it goes on, under depth table `table`'s counts of its code's group there."""
  parent = _frame_major(codes[..., level - 1])
  reached = parent >= 0
  _encode_grouped(encoder, (_frame_major(codes[..., level])[reached] >= 0).astype(np.int64),
                  model.group_of[level][parent[reached]], model.depth_probabilities()[table, level])


def _decode_flags(decoder, model: EntropyModel, parent: np.ndarray, level: int,
                  table: int) -> np.ndarray:
  """bool [rows, frames]: which positions `_encode_flags` said go on to level l (the codes of
  level l-1, parent [rows, frames], decoded)."""
  flat = _frame_major(parent)
  reached = np.flatnonzero(flat >= 0)
  goes_on = np.zeros(flat.size, bool)
  goes_on[reached] = _decode_grouped(decoder, model.group_of[level][flat[reached]],
                                     model.depth_probabilities()[table, level]).astype(bool)
  return goes_on.reshape(parent.shape[1], parent.shape[0]).T


def _network_runs(model: EntropyModel, present: np.ndarray):
  """Format 4's order of one level: for each wavefront (`context_model.wavefronts`), the
  positions (r, f) that carry a code there (present bool [rows, frames])."""
  rows, frames = present.shape
  order, bounds = context_model.wavefronts(rows, frames)
  for d in range(len(bounds) - 1):
    r, f = np.divmod(order[bounds[d]:bounds[d + 1]], frames)
    keep = present[r, f]
    if keep.any():
      yield r[keep], f[keep]


def _one_blas_thread():
  """The networks' matrices are a wavefront's few rows: BLAS threads only contend for them
  (10x slower beside other work)."""
  return threadpoolctl.threadpool_limits(1, "blas")


def _encode_level_network(encoder, model: EntropyModel, codes: np.ndarray, level: int):
  """Format 4: the codes of `level` (positions with NO_CODE skipped) under the level's network,
  a wavefront per call, as the decoder will compute them."""
  grid = codes[..., level]
  padded = context_model.padded_tokens(grid, model.codes)
  family = constriction.stream.model.Categorical(perfect=False)
  with _one_blas_thread():
    for r, f in _network_runs(model, grid >= 0):
      p = context_model.coding_probabilities(model.context64[level],
                                             context_model.tokens_at(padded, r, f),
                                             codes[r, f, :level], r)
      encoder.encode(grid[r, f].astype(np.int32), family, p)


def _decode_level_network(decoder, model: EntropyModel, decoded: np.ndarray, level: int,
                          present: np.ndarray) -> np.ndarray:
  """`_encode_level_network`'s codes int [rows, frames] (NO_CODE where not `present`), the levels
  above `decoded` [rows, frames, >= level]."""
  out = np.where(present, 0, NO_CODE)
  padded = context_model.padded_tokens(out, model.codes)   # rewritten as the codes come
  family = constriction.stream.model.Categorical(perfect=False)
  with _one_blas_thread():
    for r, f in _network_runs(model, present):
      p = context_model.coding_probabilities(model.context64[level],
                                             context_model.tokens_at(padded, r, f),
                                             decoded[r, f, :level], r)
      out[r, f] = decoder.decode(family, p)
      context_model.write_tokens(padded, r, f, out[r, f])
  return out


def _codes_check(codes: np.ndarray) -> int:
  """Format 4's 32-bit check of the codes (CRC-32 of their int32 bytes): a decoder whose network
  arithmetic differed from the encoder's finds out."""
  return zlib.crc32(np.ascontiguousarray(codes, "<i4").tobytes())


def _flag_bits(model: EntropyModel, codes: np.ndarray, table: int, min_depth: int) -> float:
  """The ideal bits of format 3's go-on flags of variable-depth codes under depth table `table`
  (the encoder codes with the cheapest)."""
  log_p, bits = np.log2(model.depth_probabilities()[table]), 0.0
  for level in range(max(min_depth, 1), codes.shape[-1]):
    reached = codes[..., level - 1] >= 0
    bits -= log_p[level][model.group_of[level][codes[..., level - 1][reached]],
                         (codes[..., level][reached] >= 0).astype(np.int64)].sum()
  return float(bits)


def _encode_choice(encoder, value: int, size: int) -> None:
  """One of `size` equally likely values (nothing to code when there is one)."""
  if size > 1:
    encoder.encode(np.int32(value), constriction.stream.model.Categorical(
        np.full(size, 1.0 / size), perfect=False))


def _decode_choice(decoder, size: int) -> int:
  if size == 1:
    return 0
  return int(decoder.decode(constriction.stream.model.Categorical(np.full(size, 1.0 / size),
                                                                  perfect=False)))


def check_depths(codes: np.ndarray) -> bool:
  """Whether codes [rows, frames, L] are valid variable-depth codes: every position has a code
  at level 0 and, once it has NO_CODE, NO_CODE at every deeper level."""
  present = codes >= 0
  return bool(present[..., 0].all() and (present[..., 1:] <= present[..., :-1]).all())


def pack(codes: np.ndarray, num_samples: int, sample_rate: int, fingerprint: str,
         model: EntropyModel, version: int | None = None) -> bytes:
  """codes int [rows, frames, levels] (levels <= the model's) -> the bitstream's bytes. Format
  (`version`, default chosen from the codes): 3 for variable-depth codes (NO_CODE past a
  position's depth: `codec.truncate_depth`; needs the model's depth counts), else 2,
  context-coded; 1, each level's frequencies alone, is kept to test that old files decode."""
  rows, frames, levels = codes.shape
  variable = bool((codes < 0).any())
  version = version or (NETWORK_FORMAT if model.has_format4 else
                        DEPTH_FORMAT if variable or model.has_format3 else CONTEXT_FORMAT)
  if variable and (version < DEPTH_FORMAT or not check_depths(codes)):
    raise ValueError("variable-depth codes need format 3 or 4 and NO_CODE only past a "
                     "position's depth (a code at level 0 everywhere).")
  if version >= DEPTH_FORMAT and not model.has_format3:
    raise errors.MissingError("format 3 needs an entropy model with its tables (depth counts, "
                              "level 0's two contexts); make it again with --mode=entropy_model.")
  if version == NETWORK_FORMAT and not model.has_format4:
    raise errors.MissingError("format 4 needs an entropy model with its networks "
                              f"({context_model.FILE}); make it again with --mode=entropy_model.")
  model = model.unigram() if version == UNIGRAM_FORMAT else model
  encoder = constriction.stream.queue.RangeEncoder()
  if version >= DEPTH_FORMAT:   # the smallest depth (no flags above it) and the depth table
    min_depth = int((codes >= 0).sum(-1).min())
    table = int(np.argmin([_flag_bits(model, codes, t, min_depth)
                           for t in range(len(model.depth_counts))]))
    _encode_choice(encoder, min_depth - 1, levels)
    _encode_choice(encoder, table, len(model.depth_counts))
  for level in range(levels):
    if version == NETWORK_FORMAT:
      if level >= min_depth:
        _encode_flags(encoder, model, codes, level, table)
      _encode_level_network(encoder, model, codes, level)
    elif version == DEPTH_FORMAT:
      if level:
        _encode_deeper_level(encoder, model, codes, level, min_depth, table)
      else:
        _encode_level0_2d(encoder, model, codes)
    else:
      _encode_level(encoder, model, codes, level)
  if version == NETWORK_FORMAT:
    check = _codes_check(codes)
    _encode_choice(encoder, check >> 16, 1 << 16)
    _encode_choice(encoder, check & 0xFFFF, 1 << 16)
  payload = encoder.get_compressed().astype("<u4").tobytes()
  header = HEADER.pack(MAGIC, version, fingerprint.encode("ascii"), model.file_digest(version),
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
  if version < UNIGRAM_FORMAT:
    raise errors.DataError(f"{path}: {what} (format {version}).")
  if len(data) != HEADER.size + 4 * words:
    raise errors.DataError(f"{path}: {len(data)} bytes, but its header announces "
                           f"{HEADER.size + 4 * words} (a truncated or padded file).")
  if zlib.crc32(data[HEADER.size:]) != crc:
    raise errors.DataError(f"{path}: its payload fails its CRC-32 (a damaged file).")
  try:
    fingerprint = fingerprint.decode("ascii")
  except UnicodeDecodeError as e:
    raise errors.DataError(f"{path}: {what} (its fingerprint is not text).") from e
  return Header(fingerprint, digest, rate, num_samples, levels, rows, frames, version)


def _decode_payload(payload: np.ndarray, header: Header, model: EntropyModel):
  """(codes int64 [rows, frames, levels], format 4's check of them, else None) of a payload."""
  network, depth = header.version == NETWORK_FORMAT, header.version >= DEPTH_FORMAT
  decoder = constriction.stream.queue.RangeDecoder(payload)
  codes = np.zeros((header.rows, header.frames, header.levels), np.int64)
  if depth:
    min_depth = _decode_choice(decoder, header.levels) + 1
    table = _decode_choice(decoder, len(model.depth_counts))
  for level in range(header.levels):
    if network:
      present = (np.ones((header.rows, header.frames), bool) if level == 0 else
                 _goes_on(decoder, model, codes, level, min_depth, table))
      codes[..., level] = _decode_level_network(decoder, model, codes, level, present)
    elif depth and level:
      codes[..., level] = _decode_deeper_level(decoder, model, codes, level, min_depth, table)
    elif depth:
      codes[..., 0] = _decode_level0_2d(decoder, model, header.rows, header.frames)
    else:
      codes[..., level] = _decode_level(decoder, model, codes, level, header.rows, header.frames)
  if not network:
    return codes, None
  return codes, (_decode_choice(decoder, 1 << 16) << 16) | _decode_choice(decoder, 1 << 16)


def unpack(data: bytes, header: Header, model: EntropyModel, path) -> np.ndarray:
  """The codes int32 [rows, frames, levels] of a bitstream whose `header` (`read_header`) the
  caller has checked against its model; DataError when `model` is not the one it was coded with
  (a format 1 file was coded with the model's per-level frequencies, `model.unigram()`)."""
  model = model.unigram() if header.version == UNIGRAM_FORMAT else model
  depth = header.version >= DEPTH_FORMAT
  network = header.version == NETWORK_FORMAT
  if depth and not model.has_format3 or network and not model.has_format4:
    raise errors.DataError(f"{path}: format {header.version}, but the entropy model beside these "
                           f"weights has no format {header.version} "
                           f"{'networks' if network else 'tables'}; decode with the folder that "
                           "encoded it.")
  if header.model_digest != model.file_digest(header.version):
    raise errors.DataError(f"{path}: coded with another entropy model than the one beside these "
                           "weights (entropy_model.json); decode with the folder that encoded it.")
  if not 1 <= header.levels <= model.levels:
    raise errors.DataError(f"{path}: {header.levels} levels; the model has 1..{model.levels}.")
  payload = np.frombuffer(data, "<u4", offset=HEADER.size).astype(np.uint32)
  try:
    codes, check = _decode_payload(payload, header, model)
  except AssertionError as e:   # constriction: the payload cannot come from this model
    codes, check = None, str(e)
  if network and (codes is None or check != _codes_check(codes)):
    raise errors.DataError(f"{path}: its decoded codes fail their check (the context networks "
                           "computed differently here than where the file was coded, or it was "
                           "damaged); decode it where it was coded.")
  if codes is None:
    raise errors.DataError(f"{path}: its payload does not decode under this entropy model "
                           f"({check}); decode with the folder that encoded it.")
  return codes.astype(np.int32)
