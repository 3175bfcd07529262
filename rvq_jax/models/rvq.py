"""Residual vector quantization with exponential-moving-average codebooks, as pure functions.

Level l quantizes the residual left by levels 0..l-1 to its nearest code; the quantized latent is
the sum of the chosen codes (Zeghidour et al., SoundStream, 2021). Codebooks are trained not by
gradients but by an EMA of the vectors assigned to each code (van den Oord et al., 2017, App. A.1;
Razavi et al., 2019), with Laplace-smoothed counts. All levels run in one `lax.scan`, so compile
time does not grow with the number of levels.

The quantizer returns the EMA's *inputs* (per-code counts and sums); `ema_update` applies them.
This keeps `quantize` a pure function of (codebooks, latents), lets statistics be summed across
devices or micro-batches before one update, and lets the update be checked against NumPy.

Everything here runs in float32, whatever the compute dtype of the networks around it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
from jax import lax
import jax.numpy as jnp


class CodebookState(NamedTuple):
  """EMA codebooks. L levels of K codes of dimension D.

  Attributes:
    embed: float32 [L, K, D], the codes (= embed_sum / smoothed cluster_size).
    cluster_size: float32 [L, K], EMA of how many vectors each code received per step.
    embed_sum: float32 [L, K, D], EMA of the sum of the vectors each code received per step.
    unused_steps: int32 [L, K], consecutive steps each code received no vector.
  """
  embed: jax.Array
  cluster_size: jax.Array
  embed_sum: jax.Array
  unused_steps: jax.Array


class QuantizeOutput(NamedTuple):
  """What `quantize` returns for N latent vectors.

  Attributes:
    quantized: float32 [N, D], sum of the chosen codes, with a straight-through gradient to the input.
    codes: int32 [N, L], the chosen code per level (levels past `num_levels` hold 0).
    commitment: float32 [L], mean squared distance between each level's residual and its code
      (0 for inactive levels); its gradient reaches the encoder at every level.
    counts: float32 [L, K], vectors assigned to each code (EMA statistics).
    sums: float32 [L, K, D], sum of the residuals assigned to each code (EMA statistics).
    residual_norm: float32 [L], mean L2 norm of each level's input residual.
    candidates: float32 [L, M, D], residuals at `candidate_idx` for dead-code restarts.
  """
  quantized: jax.Array
  codes: jax.Array
  commitment: jax.Array
  counts: jax.Array
  sums: jax.Array
  residual_norm: jax.Array
  candidates: jax.Array


def init_codebooks(rng: jax.Array, levels: int, codes: int, dim: int, method: str,
                   uniform_scale: float = 0.05, init_count: float = 1.0) -> CodebookState:
  """Initial codebooks, with EMA sums consistent with them (embed_sum = embed * cluster_size).

  Args:
    rng: PRNG key.
    levels, codes, dim: L, K, D.
    method: 'uniform' (U(-uniform_scale, uniform_scale), as Keras' default initialiser; model1) or
      'glorot_normal' (truncated normal with variance 2 / (K + D) per level; model2 on).
    uniform_scale: half-width of the uniform initialiser.
    init_count: the EMA count each code starts with; >0 so the first update averages old and new.
  """
  keys = jax.random.split(rng, levels)
  if method == "uniform":
    init = jax.nn.initializers.uniform(2 * uniform_scale)
    embed = jax.vmap(lambda k: init(k, (codes, dim), jnp.float32) - uniform_scale)(keys)
  elif method == "glorot_normal":
    init = jax.nn.initializers.glorot_normal()
    embed = jax.vmap(lambda k: init(k, (codes, dim), jnp.float32))(keys)
  else:
    raise ValueError(f"rvq.init={method!r} is unknown; use 'uniform', 'glorot_normal' or 'kmeans'.")
  size = jnp.full((levels, codes), init_count, jnp.float32)
  return CodebookState(embed, size, embed * size[..., None],
                       jnp.zeros((levels, codes), jnp.int32))


def _nearest_in_block(x: jax.Array, codebook: jax.Array) -> jax.Array:
  """Index [N] of the nearest code [K, D] to each row of x [N, D] (the first on ties, as argmin).

  Distances as a matmul; the index as min, then the first position holding it: two plain
  reductions, which XLA:CPU vectorises, where argmin's (value, index) reduction is not.
  """
  scores = jnp.sum(codebook**2, axis=-1) - 2.0 * jnp.dot(x, codebook.T,
                                                         precision=lax.Precision.HIGHEST)
  best = jnp.min(scores, axis=-1, keepdims=True)
  positions = lax.broadcasted_iota(jnp.int32, scores.shape, 1)
  return jnp.min(jnp.where(scores == best, positions, scores.shape[-1] - 1), axis=-1)


def _nearest_in_block_packed(x: jax.Array, codebook: jax.Array) -> jax.Array:
  """`_nearest_in_block` in one reduction over one packed key per (row, code) (issue 33).

  The squared distance ||x||^2 + ||c||^2 - 2 x.c (clamped at 0) is a non-negative float32, whose
  bits order like the number when read as an int32; its low b = ceil(log2 K) mantissa bits are
  replaced by the code's index, so a single integer min gives the nearest code (its index in the
  low bits) where min then argmin read the distances twice. Exact except between codes whose
  distances agree to about 2^(b - 23) relative (2^-14 for K = 512): there the lower index wins.
  """
  num_codes = codebook.shape[0]
  index_bits = max(1, (num_codes - 1).bit_length())
  distances = jnp.maximum(
      jnp.sum(x**2, axis=-1, keepdims=True) + jnp.sum(codebook**2, axis=-1)
      - 2.0 * jnp.dot(x, codebook.T, precision=lax.Precision.HIGHEST), 0.0)
  mask = (1 << index_bits) - 1
  positions = lax.broadcasted_iota(jnp.int32, distances.shape, 1)
  keys = (lax.bitcast_convert_type(distances, jnp.int32) & ~mask) | positions
  return jnp.min(keys, axis=-1) & mask


NEAREST = {"exact": _nearest_in_block, "packed": _nearest_in_block_packed}


def _nearest(x: jax.Array, codebook: jax.Array, block_rows: int | None = None,
             search: str = "exact") -> jax.Array:
  """`_nearest_in_block` over blocks of `block_rows` rows (a `lax.scan`; rows zero-padded to a
  multiple), so each block's [block_rows, K] distances stay in cache instead of a [N, K] array
  going through memory three times. None: one block.

  Block t holds rows t, t + T, t + 2T, ... (T blocks): when the rows are split across devices
  (sharded `jit`), every block is split the same way, so each device searches its own rows; a
  block of consecutive rows would make the compiler gather all rows onto every device.
  """
  n, dim = x.shape
  in_block = NEAREST[search]
  if block_rows is None or n <= block_rows:
    return in_block(x, codebook)
  x = jnp.pad(x, ((0, -n % block_rows), (0, 0)))
  num_blocks = x.shape[0] // block_rows
  blocks = x.reshape(block_rows, num_blocks, dim).transpose(1, 0, 2)
  _, idx = lax.scan(lambda _, block: (None, in_block(block, codebook)), None, blocks)
  return idx.T.reshape(-1)[:n]


def quantize(embed: jax.Array, latents: jax.Array, num_levels: jax.Array | int | None = None,
             candidate_idx: jax.Array | None = None, block_rows: int | None = None,
             statistic_groups: int | None = None, search: str = "exact") -> QuantizeOutput:
  """Residual-quantizes latent vectors with codebooks `embed` [L, K, D].

  Args:
    embed: float [L, K, D] codebooks (treated as constants: they learn by EMA, not gradients).
    latents: float [N, D] encoder outputs.
    num_levels: use only the first `num_levels` levels (quantizer dropout, bitrate choice); a
      traced integer is fine. None: all L.
    candidate_idx: int [M] rows of `latents` whose per-level residuals are returned as restart
      candidates; None: none (candidates is [L, 0, D]).
    block_rows: nearest-code search in blocks of this many rows (`rvq.block_rows`; speed only).
    statistic_groups: EMA statistics summed in this many groups of rows, then added
      (`rvq.statistic_groups`): float32 precision, equal across device counts. None: one group.
    search: the nearest-code search, 'exact' (min, then the first index holding it) or 'packed'
      (one reduction over packed keys, `_nearest_in_block_packed`; `rvq.nearest_search`).

  Returns:
    A `QuantizeOutput`. The residual passed from level to level subtracts the *detached* code,
    so every level's commitment term sends gradient to the encoder.
  """
  embed = lax.stop_gradient(embed.astype(jnp.float32))
  latents = latents.astype(jnp.float32)   # (its gradient flows back in the caller's dtype)
  levels, num_codes, _ = embed.shape
  active = jnp.arange(levels) < (levels if num_levels is None else num_levels)
  if candidate_idx is None:
    candidate_idx = jnp.zeros((0,), jnp.int32)

  def level(carry, inputs):
    residual, total = carry
    codebook, is_active = inputs
    idx = _nearest(residual, codebook, block_rows, search)
    q = jnp.where(is_active, codebook[idx], 0.0)
    weight = is_active.astype(jnp.float32)
    commitment = weight * jnp.mean((residual - q)**2)
    stats = _code_counts_and_sums(residual, idx, num_codes, statistic_groups)
    stats = (weight * stats[0], weight * stats[1])
    norm = jnp.mean(jnp.linalg.norm(residual, axis=-1))
    outputs = (jnp.where(is_active, idx, 0), commitment, stats, norm, residual[candidate_idx])
    return (residual - q, total + q), outputs

  # The scan runs on constants; the commitment's gradient is attached after it (see below).
  detached = lax.stop_gradient(latents)
  (_, total), (codes, commitment, (counts, sums), norms, candidates) = lax.scan(
      level, (detached, jnp.zeros_like(detached)), (embed, active))
  commitment = _commitment_with_gradient(latents, commitment, embed, codes, active)
  quantized = latents + lax.stop_gradient(total - latents)   # straight-through estimator
  return QuantizeOutput(quantized, codes.T, commitment, counts, sums, norms, candidates)


def _code_counts_and_sums(x: jax.Array, idx: jax.Array, num_codes: int,
                          groups: int | None) -> tuple[jax.Array, jax.Array]:
  """Per code, how many rows of x [N, D] chose it ([K]) and their sum ([K, D]).

  Scatter-adds, not one-hot matmuls (O(N D) instead of O(N K D) work). A serial scatter-add over
  N rows loses ~sqrt(N) float32 roundings per sum, so the rows are summed in `groups` groups of
  consecutive rows (one scatter into [groups * K] segments) and the groups then added. With a
  group count that is a multiple of the device count, the devices of a sharded batch hold whole
  groups, and one device and many compute the same partial sums.
  """
  n = x.shape[0]
  values = jnp.concatenate([jnp.ones((n, 1), x.dtype), x], axis=-1)
  groups = 1 if groups is None else min(groups, n)
  segment = idx + num_codes * (jnp.arange(n) * groups // n)
  totals = jax.ops.segment_sum(values, segment, groups * num_codes)
  totals = totals.reshape(groups, num_codes, -1).sum(0)
  return totals[:, 0], totals[:, 1:]


@jax.custom_vjp
def _commitment_with_gradient(latents, commitment, embed, codes, active):
  """`commitment` [L] (computed by the scan) with its gradient to `latents` [N, D].

  Level l's term is w_l mean((r_l - q_l)^2) with r_l = latents - q_0 - ... - q_{l-1} and the codes
  q constants, so its gradient is 2 w_l (r_l - q_l) / (N D). The backward pass rebuilds the
  residuals from the codes (one gather per level) instead of the forward scan keeping every
  level's [N, D] residual for it: same gradient, less memory traffic.
  """
  del latents, embed, codes, active
  return commitment


def _commitment_fwd(latents, commitment, embed, codes, active):
  return commitment, (latents, embed, codes, active)


def _commitment_bwd(saved, cotangent):
  latents, embed, codes, active = saved
  scale = 2.0 / latents.size

  def level(carry, inputs):
    residual, grad = carry
    codebook, idx, is_active, ct = inputs
    error = residual - jnp.where(is_active, codebook[idx], 0.0)
    return (error, grad + (scale * ct * is_active) * error), None

  (_, grad), _ = lax.scan(level, (latents.astype(jnp.float32), jnp.zeros_like(latents, jnp.float32)),
                          (embed, codes, active, cotangent))
  return grad.astype(latents.dtype), None, None, None, None


_commitment_with_gradient.defvjp(_commitment_fwd, _commitment_bwd)


NO_CODE = -1   # in codes [..., L]: this position stops above this level (variable depth)


def decode_codes(embed: jax.Array, codes: jax.Array, num_levels: int | None = None) -> jax.Array:
  """Quantized latents [..., D] from codes [..., L'] (L' <= L): the sum of the chosen codes.

  Uses the first `num_levels` levels (default: all L' given), giving exactly what `quantize`
  returns for that many levels. A code `NO_CODE` adds nothing: a position whose codes end in
  NO_CODE from level n on is decoded from its first n levels (the codec's variable depth,
  `rvq_jax.codec.truncate_depth`).
  """
  num_levels = codes.shape[-1] if num_levels is None else num_levels
  embed = embed[:num_levels].astype(jnp.float32)
  codes = codes[..., :num_levels]

  def add_level(total, inputs):
    codebook, idx = inputs
    return total + jnp.where((idx >= 0)[:, None], codebook[jnp.maximum(idx, 0)], 0.0), None

  flat = codes.reshape(-1, num_levels)
  total, _ = lax.scan(add_level, jnp.zeros((flat.shape[0], embed.shape[-1]), jnp.float32),
                      (embed, flat.T))
  return total.reshape(codes.shape[:-1] + (embed.shape[-1],))


def ema_update(state: CodebookState, counts: jax.Array, sums: jax.Array, decay: float,
               eps: float = 1e-5, active: jax.Array | None = None) -> CodebookState:
  """One EMA step of the codebooks from global statistics (already summed over devices).

  size     = decay * cluster_size + (1 - decay) * counts
  embed_sum = decay * embed_sum + (1 - decay) * sums
  embed    = embed_sum / smoothed(size), smoothed(n_k) = (n_k + eps) / (n + K eps) * n, n = sum_k n_k

  Args:
    state: current `CodebookState`.
    counts: float [L, K] vectors assigned per code this step.
    sums: float [L, K, D] sum of the vectors assigned per code.
    decay: gamma, the EMA decay.
    eps: Laplace smoothing, keeps unused codes from dividing by zero.
    active: bool [L], the levels that quantized this step (quantizer dropout); the others are
      returned unchanged: no decay towards zero counts, no advance of `unused_steps` (as
      lucidrains' ResidualVQ skips dropped quantizers). None: all levels.
  """
  size = decay * state.cluster_size + (1.0 - decay) * counts
  embed_sum = decay * state.embed_sum + (1.0 - decay) * sums
  n = size.sum(-1, keepdims=True)
  smoothed = (size + eps) / (n + size.shape[-1] * eps) * n
  unused = jnp.where(counts > 0, 0, state.unused_steps + 1).astype(jnp.int32)
  updated = CodebookState(embed_sum / smoothed[..., None], size, embed_sum, unused)
  return updated if active is None else _keep_inactive(state, updated, active)


def _keep_inactive(old: CodebookState, new: CodebookState, active: jax.Array) -> CodebookState:
  """`new` on the levels where `active` [L] is true, `old` on the others."""
  def pick(o, n):
    return jnp.where(active.reshape((-1,) + (1,) * (o.ndim - 1)), n, o)
  return CodebookState(*(pick(o, n) for o, n in zip(old, new)))


def restart_dead_codes(state: CodebookState, candidates: jax.Array, rng: jax.Array,
                       threshold_steps: int, restart_count: float = 1.0,
                       active: jax.Array | None = None) -> CodebookState:
  """Replaces codes unused for `threshold_steps` steps by random residuals, resetting their EMA.

  The restarted code's statistics become (cluster_size, embed_sum) = (c, vector * c), so the next
  EMA step keeps it near the new vector instead of rebuilding it from stale sums (encodec#61).

  Args:
    state: `CodebookState` after `ema_update`.
    candidates: float [L, M, D] residuals seen this step at each level (identical on every device).
    rng: PRNG key (identical on every device).
    threshold_steps: restart codes with `unused_steps >= threshold_steps`.
    restart_count: c, the EMA count a restarted code starts with.
    active: bool [L], levels that quantized this step; dropped levels are not restarted (their
      candidates are residuals they never saw). None: all levels.

  The dead codes of a level take *distinct* candidates (a random permutation, in the order of the
  codes), as long as there are no more dead codes than candidates: a duplicated vector never wins
  a tie against its twin, so it would go dead again.
  """
  levels, num_codes, _ = state.embed.shape
  num_candidates = candidates.shape[1]
  dead = state.unused_steps >= threshold_steps
  if active is not None:
    dead = dead & active[:, None]
  order = jax.vmap(lambda k: jax.random.permutation(k, num_candidates))(
      jax.random.split(rng, levels))                                         # [L, M]
  rank = jnp.cumsum(dead, axis=-1) - 1                                       # among dead codes
  pick = jnp.take_along_axis(order, jnp.maximum(rank, 0) % num_candidates, axis=1)
  fresh = jnp.take_along_axis(candidates, pick[..., None], axis=1)          # [L, K, D]
  embed = jnp.where(dead[..., None], fresh, state.embed)
  size = jnp.where(dead, restart_count, state.cluster_size)
  embed_sum = jnp.where(dead[..., None], fresh * restart_count, state.embed_sum)
  return CodebookState(embed, size, embed_sum, jnp.where(dead, 0, state.unused_steps))


def kmeans_init(rng: jax.Array, latents: jax.Array, levels: int, codes: int,
                iterations: int) -> CodebookState:
  """Codebooks from Lloyd's k-means on one batch, level by level on the residuals.

  Centroids start at random distinct rows; a cluster that empties keeps its centroid. The EMA
  statistics are written consistently (vector-quantize-pytorch#66): cluster_size = count (at least 1,
  so an empty cluster keeps its centroid) and embed_sum = centroid * cluster_size.

  Args:
    rng: PRNG key.
    latents: float [N, D] encoder outputs, N >= codes.
    levels, codes: L, K.
    iterations: Lloyd iterations per level.
  """
  latents = latents.astype(jnp.float32)
  keys = jax.random.split(rng, levels)

  def level(residual, key):
    start = jax.random.choice(key, residual.shape[0], (codes,), replace=False)

    def lloyd(_, centroids):
      onehot = jax.nn.one_hot(_nearest(residual, centroids), codes, dtype=jnp.float32)
      count = onehot.sum(0)
      mean = jnp.dot(onehot.T, residual, precision=lax.Precision.HIGHEST) / jnp.maximum(count, 1)[:, None]
      return jnp.where(count[:, None] > 0, mean, centroids)

    centroids = lax.fori_loop(0, iterations, lloyd, residual[start])
    idx = _nearest(residual, centroids)
    count = jnp.maximum(jax.nn.one_hot(idx, codes, dtype=jnp.float32).sum(0), 1.0)
    return residual - centroids[idx], (centroids, count)

  _, (embed, size) = lax.scan(level, latents, keys)
  return CodebookState(embed, size, embed * size[..., None], jnp.zeros((levels, codes), jnp.int32))


def codebook_metrics(counts: jax.Array) -> dict[str, jax.Array]:
  """Per-level usage from code counts [L, K] (over a batch, an epoch or a split).

  Returns float32 [L] arrays: 'perplexity' = exp(entropy of the usage distribution) (K when all codes
  are used equally, 1 when one code takes everything), 'usage' = fraction of codes used at least
  once, 'dead_codes' = number of codes never used.
  """
  total = jnp.maximum(counts.sum(-1, keepdims=True), 1e-12)
  p = counts / total
  entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0), axis=-1)
  used = (counts > 0).astype(jnp.float32)
  return {"perplexity": jnp.exp(entropy), "usage": used.mean(-1),
          "dead_codes": counts.shape[-1] - used.sum(-1)}
