"""A learned context model of RVQ codes: the distributions bitstream format 4 codes with.

Format 3 codes each code under counts chosen by one or two neighbouring codes, each grouped into 16
classes. Here each level l has a small MLP that reads, for a position (row r, latent frame f) that
carries a level-l code,

  the level-l codes at the causal neighbours (r + dr, f + df) for (dr, df) in `OFFSETS`
    (token K where the neighbour lies outside the grid, K + 1 where it stopped before level l),
  the codes of levels 0..l-1 at (r, f) (a position that reached level l has them all),
  the row r (the latent frequency band),

each embedded, concatenated, through ReLU layers to K logits. On model7's validation codes this
costs 4.56 bits per level-0 code (format 3: 5.12) and 5.03 per level-1 code (5.63).

Coding order: the positions of a level by wavefront d = SLOPE * f + r, rows ascending within one.
Every offset has SLOPE * df + dr < 0, so a position's contexts lie on earlier wavefronts and the
decoder takes a wavefront per call; the encoder computes the same wavefronts in the same calls.

Determinism: an entropy coder decodes only if the decoder's distributions are bit for bit the
encoder's. The network runs in float64 numpy on both sides, with the same batches; its logits are
then rounded to steps of `LOGIT_STEP` nats (floored `LOGIT_FLOOR` below the largest) and each
step's weight read from an integer table, so the distribution is an exact function of integers.
A float difference between two machines' BLAS (~1e-15) moves a logit across a rounding boundary
with probability ~1e-13; a file also carries a check of its codes, so such a mismatch is an error
naming the file, never wrong audio.

Parameters are trained with optax on the training split's codes, each recording truncated to its
variable depth at a tolerance drawn from `codec.depth_fit_tolerances` or 0 (so the "stopped"
token is seen as it is coded), and stored in float16 beside the entropy model.
"""

from __future__ import annotations

import hashlib
import io
import pathlib

import numpy as np

from rvq_jax import errors
from rvq_jax import files

# (d row, d frame) of the same level's codes a position is conditioned on: the three frames before
# in its own row, the three rows below in its frame, and the rows around it one and two frames back.
OFFSETS = ((0, -1), (0, -2), (0, -3), (-1, 0), (-2, 0), (-3, 0), (-1, -1), (1, -1), (2, -1),
           (3, -1), (-2, -1), (1, -2), (-1, -2))
SLOPE = 4                   # wavefront d = SLOPE * frame + row (SLOPE * df + dr < 0 for OFFSETS)
LOGIT_STEP = 1.0 / 16.0     # nats: logits are rounded to this grid before the softmax
LOGIT_FLOOR = 30.0          # nats below the largest logit where the grid stops
_EXP_TABLE = np.rint(np.exp(-np.arange(int(LOGIT_FLOOR / LOGIT_STEP) + 1) * LOGIT_STEP)
                     * 2.0 ** 40)   # exact integers in float64
NO_CODE = -1                # = rvq_jax.models.rvq.NO_CODE
FILE = "entropy_context.npz"
_PAD = 3                    # the largest |offset|


def wavefronts(rows: int, frames: int):
  """(order, bounds): the flat indices into [rows, frames] by wavefront SLOPE * f + r, rows
  ascending within one, and each wavefront's run [bounds[d], bounds[d + 1]) in `order`."""
  r, f = np.indices((rows, frames))
  d = (SLOPE * f + r).ravel()
  order = np.lexsort((r.ravel(), d))
  return order, np.searchsorted(d[order], np.arange(SLOPE * (frames - 1) + rows + 1))


def padded_tokens(grid: np.ndarray, num_codes: int) -> np.ndarray:
  """int64 [rows + 6, frames + 6]: one level's codes grid [rows, frames] as context tokens (the
  code; `num_codes + 1` for NO_CODE, a position that stopped before this level), framed by
  `num_codes` (outside the grid). `tokens_at` reads it."""
  return np.pad(np.where(grid < 0, num_codes + 1, grid), _PAD, constant_values=num_codes)


def tokens_at(padded: np.ndarray, r: np.ndarray, f: np.ndarray) -> np.ndarray:
  """int64 [n, len(OFFSETS)]: the neighbours' tokens of positions (r, f) [n] in `padded_tokens`
  (one gather: the offsets as flat steps in the padded grid)."""
  width = padded.shape[1]
  steps = np.array([dr * width + df for dr, df in OFFSETS])
  return padded.ravel()[((r + _PAD) * width + f + _PAD)[:, None] + steps]


def write_tokens(padded: np.ndarray, r: np.ndarray, f: np.ndarray, codes: np.ndarray) -> None:
  """Puts codes [n] (decoded, each >= 0) at positions (r, f) [n] of `padded_tokens`."""
  padded[r + _PAD, f + _PAD] = codes


def init_params(rng: np.random.Generator, level: int, num_codes: int, rows: int, embed: int,
                hidden: tuple[int, ...]) -> dict:
  """Level `level`'s network, float32 arrays: embed [K + 2, E] (its own codes and the two
  special tokens), ancestor_embed [level, K, E], row_embed [rows, E], then w<i> / b<i> of each
  layer (ReLU between), the last to K logits."""
  params = {"embed": rng.normal(0, 1, (num_codes + 2, embed)),
            "ancestor_embed": rng.normal(0, 1, (level, num_codes, embed)),
            "row_embed": rng.normal(0, 1, (rows, embed))}
  widths = [(len(OFFSETS) + level + 1) * embed, *hidden, num_codes]
  for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
    params[f"w{i}"] = rng.normal(0, np.sqrt(2.0 / a), (a, b))
    params[f"b{i}"] = np.zeros(b)
  return {k: v.astype(np.float32) for k, v in params.items()}


def logits(xp, params: dict, neighbours, ancestors, rows):
  """The network's logits [n, K] of positions with tokens neighbours int [n, len(OFFSETS)],
  ancestors int [n, level] and rows int [n], in array module `xp` (numpy for coding, jax.numpy
  for training): the same function on both sides."""
  n = neighbours.shape[0]
  parts = [params["embed"][neighbours].reshape(n, -1),
           params["row_embed"][rows]]
  level = params["ancestor_embed"].shape[0]
  if level:
    parts.insert(1, params["ancestor_embed"][xp.arange(level), ancestors].reshape(n, -1))
  h = xp.concatenate(parts, -1)
  layers = sum(k.startswith("w") for k in params)
  for i in range(layers):
    h = h @ params[f"w{i}"] + params[f"b{i}"]
    if i < layers - 1:
      h = xp.maximum(h, 0)
  return h


def coding_probabilities(params64: dict, neighbours, ancestors, rows) -> np.ndarray:
  """float64 [n, K]: the distributions format 4 codes with, from float64 numpy parameters
  (`as_float64`): logits rounded to LOGIT_STEP below their largest, weights from an integer table."""
  z = logits(np, params64, neighbours, ancestors, rows)
  steps = np.minimum(np.rint((z.max(1, keepdims=True) - z) / LOGIT_STEP), len(_EXP_TABLE) - 1)
  weights = _EXP_TABLE[steps.astype(np.int64)]
  return weights / weights.sum(1, keepdims=True)


def as_float64(levels_params: list[dict]) -> list[dict]:
  return [{k: np.asarray(v, np.float64) for k, v in p.items()} for p in levels_params]


def level_examples(codes: np.ndarray, level: int, num_codes: int):
  """(neighbours, ancestors, rows, targets) of every position of codes [rows, frames, L]
  (variable depth: NO_CODE past a position's depth) that carries a level-`level` code."""
  r, f = np.nonzero(codes[..., level] >= 0)
  return (tokens_at(padded_tokens(codes[..., level], num_codes), r, f), codes[r, f, :level], r,
          codes[r, f, level])


def bits(params64: dict, examples) -> float:
  """Ideal bits of `level_examples` under the coding distributions (in chunks)."""
  neighbours, ancestors, rows, targets = examples
  total = 0.0
  for s in range(0, len(targets), 8192):
    p = coding_probabilities(params64, neighbours[s:s + 8192], ancestors[s:s + 8192],
                             rows[s:s + 8192])
    total -= np.log2(p[np.arange(len(p)), targets[s:s + 8192]]).sum()
  return float(total)


def train_level(train_examples, level: int, num_codes: int, rows: int, settings,
                log=None) -> dict:
  """Level `level`'s network fitted to `level_examples` of the training split: Adam with cosine
  decay (`settings`: a `codec` section's context_* fields), cross-entropy of the float32
  logits. Returns float16-rounded float32 parameters (as stored)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(settings.context_seed + level)
  params = jax.tree.map(jnp.asarray, init_params(
      rng, level, num_codes, rows, settings.context_embed, tuple(settings.context_hidden)))
  neighbours, ancestors, row_ids, targets = train_examples
  batch = settings.context_batch_size
  steps_per_epoch = max(len(targets) // batch, 1)
  total = steps_per_epoch * settings.context_epochs
  optimizer = optax.adamw(optax.cosine_decay_schedule(settings.context_learning_rate, total),
                          weight_decay=settings.context_weight_decay)
  state = optimizer.init(params)

  def loss(p, x, a, r, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits(jnp, p, x, a, r), y).mean()

  @jax.jit
  def step(p, s, x, a, r, y):
    value, grads = jax.value_and_grad(loss)(p, x, a, r, y)
    updates, s = optimizer.update(grads, s, p)
    return optax.apply_updates(p, updates), s, value

  for epoch in range(settings.context_epochs):
    perm = rng.permutation(len(targets))
    for i in range(steps_per_epoch):
      idx = perm[i * batch:(i + 1) * batch]
      params, state, value = step(params, state, neighbours[idx], ancestors[idx], row_ids[idx],
                                  targets[idx])
    if log:
      log(f"context model level {level}: epoch {epoch + 1}/{settings.context_epochs}, "
          f"train loss {float(value) / np.log(2):.3f} bits per code")
  return {k: np.asarray(v, np.float16).astype(np.float32) for k, v in params.items()}


def digest(levels_params: list[dict]) -> bytes:
  """8 bytes identifying the networks (their float16 bytes, in a fixed order)."""
  h = hashlib.sha256()
  for p in levels_params:
    for k in sorted(p):
      h.update(k.encode() + np.ascontiguousarray(p[k], np.float16).tobytes())
  return h.digest()[:8]


def save(folder, levels_params: list[dict]) -> pathlib.Path:
  path = pathlib.Path(folder) / FILE
  buffer = io.BytesIO()
  np.savez(buffer, **{f"level{l}/{k}": np.asarray(v, np.float16)
                      for l, p in enumerate(levels_params) for k, v in p.items()})
  files.write_bytes(path, buffer.getvalue())
  return path


def _fits(p: dict, level: int, num_codes: int) -> bool:
  """Whether one level's arrays are a network `logits` can run: the embeddings' shapes, each
  layer's input the previous one's output, K logits, every value finite."""
  if not {"embed", "ancestor_embed", "row_embed", "w0", "b0"} <= set(p):
    return False
  width = p["embed"].shape[-1]
  layers = sum(k.startswith("w") for k in p)
  if (p["embed"].shape != (num_codes + 2, width) or p["row_embed"].ndim != 2
      or p["ancestor_embed"].shape != (level, num_codes, width)
      or p["row_embed"].shape[1] != width):
    return False
  fan_in = (len(OFFSETS) + level + 1) * width
  for i in range(layers):
    w, b = p.get(f"w{i}"), p.get(f"b{i}")
    if w is None or b is None or w.shape[0] != fan_in or b.shape != (w.shape[1],):
      return False
    fan_in = w.shape[1]
  return fan_in == num_codes and all(np.isfinite(v).all() for v in p.values())


def load(folder, levels: int, num_codes: int, how: str) -> list[dict] | None:
  """The networks beside a model's weights (None when there are none); DataError naming the file
  when they are unreadable or do not fit `levels` x `num_codes`."""
  path = pathlib.Path(folder) / FILE
  if not path.exists():
    return None
  try:
    with np.load(path) as saved:
      arrays = {k: saved[k].astype(np.float32) for k in saved.files}
  except (OSError, ValueError, KeyError) as e:
    raise errors.DataError(f"{path} is unreadable ({e}); make it again with {how}.") from e
  out = []
  for level in range(levels):
    p = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(f"level{level}/")}
    ok = _fits(p, level, num_codes)
    if not ok:
      raise errors.DataError(f"{path}: level {level}'s network does not fit the model's {levels} "
                             f"levels of {num_codes} codes; make it again with {how}.")
    out.append(p)
  return out
