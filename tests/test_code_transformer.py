"""The autoregressive anchor's model (rvq_jax.models.code_transformer): its layout, its
normalisation and causality, the cached sampler against the full forward pass, and learning."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rvq_jax.models import code_transformer as ct


def _model(positions=5, slots=3, codes=4, **kw):
  kw = dict(width=16, depth=2, heads=2, dropout=0.0) | kw
  return ct.CodeTransformer(positions=positions, slots=slots, codes=codes, **kw)


def _params(model, seed=0):
  codes = jnp.zeros((1, model.positions, model.slots), jnp.int32)
  return model.init(jax.random.key(seed), codes, jnp.zeros(1, jnp.int32))


def test_layout_is_time_major_with_rows_grouped_and_inverts():
  h, w, levels, g = 4, 3, 2, 2
  codes = np.arange(h * w * levels).reshape(h, w, levels)
  tokens = np.asarray(ct.to_sequence(codes, g))
  assert tokens.shape == (w * h // g, g * levels)
  # Token t = frame t // (h / g), rows g * (t % (h / g)) ...; slots row by row, level by level.
  for t in range(tokens.shape[0]):
    frame, group = divmod(t, h // g)
    expected = [codes[group * g + r, frame, lev] for r in range(g) for lev in range(levels)]
    assert tokens[t].tolist() == expected
  np.testing.assert_array_equal(ct.from_sequence(tokens, h, w), codes)


def test_probabilities_of_all_sequences_sum_to_one():
  # T=2 tokens of S=2 codes from K=3: all 81 sequences, exactly.
  model = _model(positions=2, slots=2, codes=3)
  params = _params(model)
  every = np.array(list(itertools.product(range(3), repeat=4)), np.int32).reshape(-1, 2, 2)
  for label in (0, 7):
    bits = ct.bits_per_code(model.apply(params, every, jnp.full(len(every), label)), every)
    log_p = -np.asarray(bits, np.float64) * 4 * np.log(2.0)   # 4 codes per sequence
    np.testing.assert_allclose(np.exp(log_p).sum(), 1.0, rtol=1e-5)


def test_a_code_never_informs_its_own_or_earlier_predictions():
  model = _model()
  params = _params(model)
  codes = jax.random.randint(jax.random.key(1), (1, 5, 3), 0, 4)
  base = model.apply(params, codes, jnp.array([3]))
  for t, s in [(0, 0), (2, 1), (4, 2)]:
    changed = codes.at[0, t, s].set((codes[0, t, s] + 1) % 4)
    out = model.apply(params, changed, jnp.array([3]))
    flat_before = np.asarray(base).reshape(5 * 3, -1)[: t * 3 + s + 1]
    flat_after = np.asarray(out).reshape(5 * 3, -1)[: t * 3 + s + 1]
    np.testing.assert_allclose(flat_after, flat_before, atol=1e-6)
    # ... and does inform the next one.
    nxt = t * 3 + s + 1
    if nxt < 15:
      assert not np.allclose(np.asarray(out).reshape(15, -1)[nxt],
                             np.asarray(base).reshape(15, -1)[nxt])


def test_cached_steps_give_the_full_forward_passs_logits():
  model = _model(positions=4, slots=2, codes=5)
  decoder = model.clone(decode=True)
  params = _params(model)
  codes = jax.random.randint(jax.random.key(2), (2, 4, 2), 0, 5)
  labels = jnp.array([1, 8])
  full = np.asarray(model.apply(params, codes, labels))
  cache = ct.init_cache(decoder, params, 2)
  previous = jnp.zeros((2, 2), jnp.int32)
  for t in range(4):
    context, cache = ct.step_contexts(decoder, params, cache, previous, labels, t)
    embedded = jnp.zeros_like(context)
    for s in range(2):
      logits = decoder.apply(params, context, embedded, s,
                             method=ct.CodeTransformer.slot_logits_step)
      np.testing.assert_allclose(logits, full[:, t, s], atol=2e-5)
      embedded = embedded + decoder.apply(params, codes[:, t, s], s,
                                          method=ct.CodeTransformer.embed_slot)
    previous = codes[:, t]


def test_learns_a_digit_dependent_pattern_and_samples_it():
  """Each digit's sequence is a fixed random pattern: after training, samples at a low
  temperature reproduce their digit's pattern exactly (through the cached sampler)."""
  model = _model(positions=4, slots=2, codes=6, width=32)
  patterns = jax.random.randint(jax.random.key(3), (10, 4, 2), 0, 6)
  labels = jnp.arange(10)
  params = _params(model)
  tx = optax.adam(1e-2)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt):
    loss, grads = jax.value_and_grad(
        lambda p: ct.bits_per_code(model.apply(p, patterns, labels), patterns).mean())(params)
    updates, opt = tx.update(grads, opt)
    return optax.apply_updates(params, updates), opt, loss

  for _ in range(100):
    params, opt, loss = step(params, opt)
  assert loss < 0.01   # bits per code
  sampled = ct.sample(model.clone(decode=True), params, jax.random.key(4), labels, 0.3)
  np.testing.assert_array_equal(sampled, patterns)
