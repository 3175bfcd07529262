"""Residual quantizer: shapes, gradients, the EMA update against NumPy, inits, restarts, decoding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rvq_jax.models import rvq


def _random(levels=3, codes=16, dim=8, n=200, seed=0):
  k1, k2 = jax.random.split(jax.random.key(seed))
  embed = jax.random.normal(k1, (levels, codes, dim))
  latents = 2.0 * jax.random.normal(k2, (n, dim))
  return embed, latents


def test_shapes_and_code_range():
  embed, z = _random()
  out = rvq.quantize(embed, z)
  assert out.quantized.shape == z.shape and out.quantized.dtype == jnp.float32
  assert out.codes.shape == (200, 3) and out.codes.dtype == jnp.int32
  assert int(out.codes.min()) >= 0 and int(out.codes.max()) < 16
  assert out.commitment.shape == (3,) and out.counts.shape == (3, 16)
  assert out.sums.shape == (3, 16, 8) and out.residual_norm.shape == (3,)
  np.testing.assert_allclose(out.counts.sum(-1), 200)


@pytest.mark.parametrize("block_rows", [None, 64, 200, 1024])   # 200 rows: 4 blocks with padding
def test_nearest_codes_match_brute_force(block_rows):
  embed, z = _random()
  out = rvq.quantize(embed, z, block_rows=block_rows)
  residual = np.asarray(z, np.float64)
  for level in range(3):
    d = ((residual[:, None, :] - np.asarray(embed[level], np.float64)[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(out.codes[:, level], d.argmin(-1))
    residual = residual - np.asarray(embed[level])[d.argmin(-1)]
  np.testing.assert_allclose(out.quantized, np.asarray(z) - residual, atol=1e-5)


def test_ties_go_to_the_first_code_as_argmin():
  embed = jnp.asarray([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]])   # codes 0 = 2, 1 = 3
  z = jnp.asarray([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [2.0, 2.0]])           # last two: 4-way ties
  for block_rows in (None, 2):
    codes = rvq.quantize(embed, z, block_rows=block_rows).codes[:, 0]
    np.testing.assert_array_equal(codes, [0, 1, 0, 0])


def test_ema_statistics_are_per_code_sums_of_the_assigned_residuals():
  embed, z = _random(levels=2)
  out = rvq.quantize(embed, z)
  residual = np.asarray(z)
  for level in range(2):
    codes = np.asarray(out.codes[:, level])
    np.testing.assert_array_equal(out.counts[level], np.bincount(codes, minlength=16))
    expected = np.zeros((16, 8))
    np.add.at(expected, codes, residual)
    np.testing.assert_allclose(out.sums[level], expected, rtol=1e-5, atol=1e-5)
    residual = residual - np.asarray(embed[level])[codes]


@pytest.mark.parametrize("num_levels", [3, 2])
def test_commitment_gradient_equals_autodiff_of_a_plain_loop(num_levels):
  """The custom backward pass (residuals rebuilt from the codes) against JAX's own derivative of a
  straightforward per-level loop, for a weighting of the levels that is not uniform."""
  embed, z = _random()
  level_weights = jnp.asarray([1.0, -2.0, 0.5])

  def plain(latents):
    residual, terms = latents, []
    for level in range(3):
      d = jnp.sum((residual[:, None] - embed[level][None]) ** 2, -1)
      q = embed[level][jnp.argmin(d, -1)] * (level < num_levels)
      terms.append((level < num_levels) * jnp.mean((residual - q) ** 2))
      residual = residual - q
    return jnp.stack(terms)

  fast = lambda latents: rvq.quantize(embed, latents, num_levels).commitment
  np.testing.assert_allclose(fast(z), plain(z), rtol=1e-5)
  grad = lambda f: jax.grad(lambda latents: jnp.sum(level_weights * f(latents)))(z)
  np.testing.assert_allclose(grad(fast), grad(plain), rtol=1e-4, atol=1e-7)


def test_residual_norm_falls_level_by_level(fsdd_dataset, default_config):
  """On real spectrogram patches, with k-means codebooks, each level leaves a smaller residual."""
  from rvq_jax import audio  # pylint: disable=g-import-not-at-top
  spec = audio.to_spectrogram(fsdd_dataset["train"].waveforms[:16], default_config.audio)
  patches = spec[..., 0].reshape(16, 32, 4, 32, 4).transpose(0, 1, 3, 2, 4).reshape(-1, 16)
  state = rvq.kmeans_init(jax.random.key(0), patches, levels=4, codes=32, iterations=10)
  norms = np.asarray(rvq.quantize(state.embed, patches).residual_norm)
  final = np.linalg.norm(patches - rvq.quantize(state.embed, patches).quantized, axis=-1).mean()
  assert np.all(np.diff(norms) < 0) and final < norms[-1], (norms, final)


def test_straight_through_gradient_is_identity():
  embed, z = _random()
  w = jax.random.normal(jax.random.key(3), z.shape)
  grad = jax.grad(lambda x: jnp.sum(rvq.quantize(embed, x).quantized * w))(z)
  np.testing.assert_allclose(grad, w, atol=1e-6)


def test_every_levels_commitment_reaches_the_encoder():
  """Regression test for encodec#25: a level's commitment must depend on the encoder output."""
  embed, z = _random(levels=4)
  for level in range(4):
    grad = jax.grad(lambda x, l=level: rvq.quantize(embed, x).commitment[l])(z)
    assert float(jnp.abs(grad).sum()) > 0, level
    # The gradient of level l's term is 2 (r_l - q_l) / (N D): check against the definition.
    out = rvq.quantize(embed, z)
    residual = np.asarray(z)
    for prev in range(level):
      residual = residual - np.asarray(embed[prev])[np.asarray(out.codes[:, prev])]
    q = np.asarray(embed[level])[np.asarray(out.codes[:, level])]
    np.testing.assert_allclose(grad, 2 * (residual - q) / residual.size, atol=1e-6)
  # The codebooks get no gradient: they learn by EMA.
  g_embed = jax.grad(lambda e: rvq.quantize(e, z).commitment.sum())(embed)
  assert float(jnp.abs(g_embed).max()) == 0.0


def test_ema_update_matches_numpy_loop():
  state = rvq.init_codebooks(jax.random.key(0), 2, 5, 3, "glorot_normal")
  state = state._replace(cluster_size=jnp.arange(10.0).reshape(2, 5) / 3)
  rng = np.random.default_rng(0)
  counts = rng.integers(0, 4, (2, 5)).astype(np.float32)
  sums = rng.standard_normal((2, 5, 3)).astype(np.float32)
  new = rvq.ema_update(state, jnp.asarray(counts), jnp.asarray(sums), decay=0.9, eps=1e-3)
  size0, sum0 = np.asarray(state.cluster_size, np.float64), np.asarray(state.embed_sum, np.float64)
  for l in range(2):
    size = [0.9 * size0[l, k] + 0.1 * counts[l, k] for k in range(5)]
    n = sum(size)
    for k in range(5):
      embed_sum = [0.9 * sum0[l, k, d] + 0.1 * sums[l, k, d] for d in range(3)]
      smoothed = (size[k] + 1e-3) / (n + 5 * 1e-3) * n
      np.testing.assert_allclose(new.cluster_size[l, k], size[k], rtol=1e-6)
      np.testing.assert_allclose(new.embed_sum[l, k], embed_sum, rtol=1e-5, atol=1e-7)
      np.testing.assert_allclose(new.embed[l, k], np.array(embed_sum) / smoothed, rtol=1e-5)
      assert new.unused_steps[l, k] == (0 if counts[l, k] > 0 else 1)


def test_ema_statistics_from_micro_batches_equal_one_batch():
  embed, z = _random(n=240)
  whole = rvq.quantize(embed, z)
  parts = [rvq.quantize(embed, z[i:i + 60]) for i in range(0, 240, 60)]
  np.testing.assert_allclose(sum(p.counts for p in parts), whole.counts)
  np.testing.assert_allclose(sum(p.sums for p in parts), whole.sums, atol=1e-4)


def test_uniform_and_glorot_init():
  uniform = rvq.init_codebooks(jax.random.key(0), 3, 512, 128, "uniform", uniform_scale=0.05)
  assert float(uniform.embed.min()) >= -0.05 and float(uniform.embed.max()) <= 0.05
  assert abs(float(uniform.embed.std()) - 0.1 / np.sqrt(12)) < 1e-3
  glorot = rvq.init_codebooks(jax.random.key(0), 3, 512, 128, "glorot_normal")
  assert abs(float(glorot.embed.std()) - np.sqrt(2 / (512 + 128))) < 2e-3
  assert not np.allclose(glorot.embed[0], glorot.embed[1])  # levels differ
  for state in (uniform, glorot):
    np.testing.assert_allclose(state.embed_sum, state.embed * state.cluster_size[..., None])
  with pytest.raises(ValueError, match="rvq.init"):
    rvq.init_codebooks(jax.random.key(0), 1, 4, 2, "zeros")


def test_kmeans_init_writes_consistent_sums():
  """Regression test for vector-quantize-pytorch#66: embed_sum / cluster_size == centroids."""
  _, z = _random(n=400)
  state = rvq.kmeans_init(jax.random.key(1), z, levels=3, codes=16, iterations=8)
  np.testing.assert_allclose(state.embed_sum / state.cluster_size[..., None], state.embed,
                             rtol=1e-5, atol=1e-6)
  # Level 0 centroids are the means of their clusters (a Lloyd fixed point after the last step
  # up to one reassignment): check the counts are the assignment counts.
  out = rvq.quantize(state.embed, z)
  np.testing.assert_allclose(np.maximum(out.counts[0], 1), state.cluster_size[0])
  # One EMA step with the same statistics keeps the centroids where they are.
  new = rvq.ema_update(state, out.counts, out.sums, decay=0.99)
  assert float(jnp.abs(new.embed[0] - state.embed[0]).max()) < 0.05


def test_dead_code_restart_survives_the_next_ema_step():
  """Regression test for encodec#61: a restarted code is not rebuilt from stale sums."""
  state = rvq.init_codebooks(jax.random.key(0), 2, 8, 4, "glorot_normal")
  state = state._replace(unused_steps=state.unused_steps.at[0, 3].set(50).at[1, 6].set(50))
  candidates = 5.0 + jax.random.normal(jax.random.key(1), (2, 10, 4))
  restarted = rvq.restart_dead_codes(state, candidates, jax.random.key(2), threshold_steps=50)
  for l, k in ((0, 3), (1, 6)):
    assert any(np.allclose(restarted.embed[l, k], c) for c in np.asarray(candidates[l]))
    assert restarted.unused_steps[l, k] == 0
  live = np.ones((2, 8), bool)
  live[0, 3] = live[1, 6] = False
  np.testing.assert_array_equal(np.asarray(restarted.embed)[live], np.asarray(state.embed)[live])
  # Next EMA step: the restarted codes get no vectors, yet stay at their new position.
  after = rvq.ema_update(restarted, jnp.zeros((2, 8)), jnp.zeros((2, 8, 4)), decay=0.99)
  for l, k in ((0, 3), (1, 6)):
    np.testing.assert_allclose(after.embed[l, k], restarted.embed[l, k], rtol=0.02)
    assert float(jnp.linalg.norm(after.embed[l, k])) > 5.0


@pytest.mark.parametrize("num_levels", [1, 2, 3, 4])
def test_decode_codes_equals_quantized_latents(num_levels):
  embed, z = _random(levels=4)
  out = rvq.quantize(embed, z, num_levels=num_levels)
  np.testing.assert_allclose(rvq.decode_codes(embed, out.codes, num_levels), out.quantized,
                             atol=1e-5)
  # Codes for a leading subset of levels decode to that many levels' sum.
  np.testing.assert_allclose(rvq.decode_codes(embed, out.codes[:, :num_levels]), out.quantized,
                             atol=1e-5)


def test_variable_depth_codes_decode_to_each_positions_own_level_count():
  embed, z = _random(levels=4)
  codes = np.asarray(rvq.quantize(embed, z).codes)
  depth = np.random.default_rng(0).integers(1, 5, size=len(codes))     # 1..4 levels a position
  cut = np.where(np.arange(4)[None] < depth[:, None], codes, rvq.NO_CODE)
  got = np.asarray(rvq.decode_codes(embed, jnp.asarray(cut)))
  for i, n in enumerate(depth):   # reference: a plain sum of that position's first n code vectors
    np.testing.assert_allclose(got[i], sum(np.asarray(embed)[l, codes[i, l]] for l in range(n)),
                               atol=1e-5)


def test_quantizer_dropout_ignores_inactive_levels():
  embed, z = _random(levels=4)
  out = rvq.quantize(embed, z, num_levels=jnp.asarray(2))
  assert not np.asarray(out.codes[:, 2:]).any()
  assert not np.asarray(out.counts[2:]).any() and not np.asarray(out.commitment[2:]).any()
  two = rvq.quantize(embed[:2], z)
  np.testing.assert_allclose(out.quantized, two.quantized, atol=1e-6)


def test_graph_size_does_not_grow_with_levels():
  """One scan over levels: the traced program is the same size for 2 and 32 levels."""
  sizes = []
  for levels in (2, 32):
    embed, z = _random(levels=levels)
    sizes.append(len(jax.make_jaxpr(rvq.quantize)(embed, z).eqns))
  assert sizes[0] == sizes[1]


def test_quantization_stays_float32_under_bfloat16():
  embed, z = _random()
  out = rvq.quantize(embed.astype(jnp.bfloat16), z.astype(jnp.bfloat16))
  assert out.quantized.dtype == jnp.float32 and out.sums.dtype == jnp.float32


def test_codebook_metrics_known_cases():
  uniform = rvq.codebook_metrics(jnp.ones((1, 64)) * 3)
  np.testing.assert_allclose(uniform["perplexity"], [64.0], rtol=1e-5)
  one = rvq.codebook_metrics(jnp.zeros((1, 64)).at[0, 5].set(10))
  np.testing.assert_allclose(one["perplexity"], [1.0])
  np.testing.assert_allclose(one["usage"], [1 / 64])
  np.testing.assert_allclose(one["dead_codes"], [63])


def test_dropped_levels_are_left_alone_by_ema_and_restarts(fsdd_dataset, default_config):
  """A level used on step t and dropped on t+1..t+k is unchanged after t+k: no decay of its
  counts, no advance of its unused counters, so no restarts of its well-used codes."""
  from rvq_jax import audio  # pylint: disable=g-import-not-at-top
  specs = audio.to_spectrogram(jnp.asarray(fsdd_dataset["train"].waveforms[:8]),
                               default_config.audio)
  latents = specs[:, ::4, ::4, :].reshape(-1, 2).repeat(4, axis=1)   # real data, [N, 8]
  state = rvq.kmeans_init(jax.random.key(0), latents, levels=3, codes=16, iterations=5)
  threshold = 3

  def step(state, num_levels, key):
    out = rvq.quantize(state.embed, latents, num_levels=num_levels)
    active = jnp.arange(3) < num_levels
    state = rvq.ema_update(state, out.counts, out.sums, 0.99, active=active)
    return rvq.restart_dead_codes(state, out.candidates if out.candidates.shape[1] else
                                  jnp.broadcast_to(latents[:64], (3, 64, 8)), key, threshold,
                                  active=active)

  state = step(state, 3, jax.random.key(1))                  # step t: every level used
  used_on_t = state
  for i in range(threshold + 2):                              # t+1 .. t+k: levels 1, 2 dropped
    state = step(state, 1, jax.random.key(2 + i))
  for field in rvq.CodebookState._fields:
    np.testing.assert_array_equal(np.asarray(getattr(state, field))[1:],
                                  np.asarray(getattr(used_on_t, field))[1:], err_msg=field)
  # The active level moved on (its EMA ran), so the test is not vacuous.
  assert not np.array_equal(np.asarray(state.cluster_size[0]), np.asarray(used_on_t.cluster_size[0]))


def test_restarted_codes_take_distinct_candidates():
  state = rvq.init_codebooks(jax.random.key(0), 2, 256, 4, "glorot_normal")
  dead = np.zeros((2, 256), bool)
  dead[:, 20:220] = True                                      # 200 dead codes per level
  state = state._replace(unused_steps=jnp.where(jnp.asarray(dead), 10, 0))
  candidates = jax.random.normal(jax.random.key(1), (2, 256, 4))   # 256 distinct vectors
  restarted = rvq.restart_dead_codes(state, candidates, jax.random.key(2), threshold_steps=10)
  for level in range(2):
    fresh = np.asarray(restarted.embed[level])[dead[level]]
    assert len(np.unique(fresh, axis=0)) == 200
    # Each is one of this level's candidates.
    cands = np.asarray(candidates[level])
    assert all(np.any(np.all(cands == f, axis=1)) for f in fresh)
  # More dead codes than candidates: every candidate is used before any repeats.
  few = candidates[:, :50]
  restarted = rvq.restart_dead_codes(state, few, jax.random.key(3), threshold_steps=10)
  assert len(np.unique(np.asarray(restarted.embed[0])[dead[0]], axis=0)) == 50


@pytest.mark.parametrize("block_rows", [None, 64])
def test_packed_search_equals_the_exact_one_on_the_shipped_model(block_rows, fsdd_recordings):
  """The one-reduction search (distance bits packed with the code index) against the exact one,
  on pretrained/model7's encoder outputs for 24 real recordings and its 8 codebooks of 512: the
  same codes at every level but for near-ties (distances within 2^-13 relative), which are rare."""
  from ml_collections import config_dict  # pylint: disable=g-import-not-at-top

  from rvq_jax import codec as codec_lib  # pylint: disable=g-import-not-at-top
  from rvq_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  from rvq_jax.models import vqvae  # pylint: disable=g-import-not-at-top
  from tests.conftest import REPO  # pylint: disable=g-import-not-at-top
  model7 = codec_lib.load_codec(config_dict.ConfigDict({"data": {"data_dir": None}}),
                                REPO / "pretrained" / "model7")
  paths = sorted(fsdd_recordings.glob("*_3.wav"))[:24]
  speech = np.concatenate([data_lib.read_wav(p)[0] for p in paths])
  spec = codec_lib._spectrogram(model7, speech, 0, codec_lib._num_frames(model7, len(speech)))
  latents = vqvae.make_model(model7.config).apply(model7.params, spec, method=vqvae.VQVAE.encode)
  flat = latents.reshape(-1, latents.shape[-1]).astype(jnp.float32)
  exact = rvq.quantize(model7.embed, flat, block_rows=block_rows)
  packed = rvq.quantize(model7.embed, flat, block_rows=block_rows, search="packed")
  same = np.asarray(exact.codes) == np.asarray(packed.codes)
  assert same.mean() > 0.999, same.mean()
  # Where they differ, the two codes' distances to that level's residual are a near-tie.
  residual = np.asarray(flat, np.float64)
  for level in range(model7.embed.shape[0]):
    codebook = np.asarray(model7.embed[level], np.float64)
    rows = np.flatnonzero(~same[:, level])
    for i in rows:
      d = ((residual[i] - codebook[[exact.codes[i, level], packed.codes[i, level]]]) ** 2).sum(-1)
      assert abs(d[1] - d[0]) <= 2**-12 * d.max() + 1e-9
    if rows.size:   # after a differing code the residuals part ways; compare levels up to it
      break
    residual = residual - codebook[np.asarray(exact.codes[:, level])]


def test_packed_search_breaks_near_ties_towards_the_lower_index():
  """With 512 codes the key keeps 23 - 9 mantissa bits: x = (0.3, 0.3 + 1e-6) is nearer code 1
  than code 0 by 3.4e-6 relative, below that resolution (2^-14; both distances in one bucket), so
  the packed search takes the lower index there, and agrees everywhere else (the other 510 codes
  are far away)."""
  codes = np.full((1, 512, 2), 100.0, np.float32)
  codes[0, :2] = [[1.0, 0.0], [0.0, 1.0]]
  embed = jnp.asarray(codes)
  z = jnp.asarray([[0.3, 0.3 + 1e-6], [5.0, 0.0], [0.0, 5.0], [0.4, 0.6]])
  np.testing.assert_array_equal(rvq.quantize(embed, z).codes[:, 0], [1, 0, 1, 1])
  np.testing.assert_array_equal(rvq.quantize(embed, z, search="packed").codes[:, 0], [0, 0, 1, 1])
