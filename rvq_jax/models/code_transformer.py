"""An autoregressive transformer over a VQ-VAE's RVQ codes: the anchor prior of the RealNVP flow.

The keras-io VQ-VAE example, which the original study followed, samples new audio with a PixelCNN
over its code indices; this is the same family (an exact-likelihood autoregressive model of the
discrete codes), as a small causal transformer so that sampling reuses its attention cache.

Layout (`to_sequence`): a clip's codes [h, w, L] (h latent frequency rows, w latent frames, L RVQ
levels) become a sequence of T = w * h / g tokens in time-major order (frame by frame, low to high
frequency within a frame), each token the S = g * L codes of g neighbouring rows (its slots: row
by row, level by level within a row); g trades the trunk's length (attention grows as T^2) for the
depth head's work. The trunk, a causal pre-LayerNorm transformer, reads the digit's class token and
the tokens before t (each embedded as the sum of its slots' embeddings, plus a learned position
embedding) and gives a context h_t. A depth head then predicts token t's codes slot by slot,

    p(c_t | c_<t, digit) = prod_s p(c_{t,s} | h_t, c_{t,<s}),
    logits_s = MLP(h_t + sum_{j<s} E_j[c_{t,j}] + slot_s),

teacher-forced in training (all slots in one pass: the exclusive cumulative sum of the slot
embeddings) and drawn slot by slot with `lax.scan` when sampling (`sample`).
"""

from __future__ import annotations

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp

NUM_CLASSES = 10


def to_sequence(codes, rows_per_token: int):
  """Codes [..., h, w, L] (frequency rows, frames) -> tokens [..., w * h / g, g * L] in
  time-major order, g = `rows_per_token` (numpy or jax arrays)."""
  *batch, h, w, slots = codes.shape
  frames_first = codes.swapaxes(-3, -2)   # [..., w, h, L]
  return frames_first.reshape(*batch, w * h // rows_per_token, rows_per_token * slots)


def from_sequence(tokens, h: int, w: int):
  """Inverse of `to_sequence`: tokens [..., T, S] -> codes [..., h, w, S * T / (h * w)]."""
  *batch, _, _ = tokens.shape
  return tokens.reshape(*batch, w, h, -1).swapaxes(-3, -2)


class Block(nn.Module):
  """Pre-LayerNorm transformer block: causal self-attention, then a GELU MLP."""
  width: int
  heads: int
  mlp_ratio: int
  dropout: float
  decode: bool = False

  @nn.compact
  def __call__(self, x, mask, train: bool):
    # Dropout on the residual branches only: on the attention weights it would keep a mask
    # as large as the weights themselves ([B, heads, P, P]) per layer for the backward pass.
    y = nn.MultiHeadDotProductAttention(num_heads=self.heads, decode=self.decode)(
        nn.LayerNorm()(x), mask=mask)
    x = x + nn.Dropout(self.dropout, deterministic=not train)(y)
    y = nn.Dense(self.width)(nn.gelu(nn.Dense(self.mlp_ratio * self.width)(nn.LayerNorm()(x))))
    return x + nn.Dropout(self.dropout, deterministic=not train)(y)


class CodeTransformer(nn.Module):
  """p(tokens [T, S] | digit), autoregressive over tokens and, within a token, over slots.

  Attributes:
    positions: T tokens per sequence; slots, codes: S codes per token, each one of K.
    width, depth, heads, mlp_ratio, dropout: the trunk (and the depth head's width).
    decode: build the trunk's attention with a key/value cache (flax's 'cache' collection), one
      token per call (`trunk` on [B, 1, D]); the parameters are the same as without it.
  """
  positions: int
  slots: int
  codes: int
  width: int = 128
  depth: int = 4
  heads: int = 4
  mlp_ratio: int = 4
  dropout: float = 0.1
  decode: bool = False

  def setup(self):
    # Level l's code c is row l * K + c of each table.
    self.code_embed = nn.Embed(self.slots * self.codes, self.width)
    self.depth_embed = nn.Embed(self.slots * self.codes, self.width)
    self.class_embed = nn.Embed(NUM_CLASSES, self.width)
    self.position_embed = self.param("position_embed", nn.initializers.normal(0.02),
                                     (self.positions, self.width))
    self.slot_embed = self.param("slot_embed", nn.initializers.normal(0.02),
                                  (self.slots, self.width))
    self.blocks = [Block(self.width, self.heads, self.mlp_ratio, self.dropout, self.decode)
                   for _ in range(self.depth)]
    self.trunk_norm = nn.LayerNorm()
    self.head_norm = nn.LayerNorm()
    self.head_hidden = nn.Dense(self.width)
    self.head_out = nn.Dense(self.codes)

  def _rows(self, codes):
    return codes + jnp.arange(self.slots) * self.codes

  def inputs(self, codes, labels):
    """The trunk's input [B, T, D]: the class token, then tokens 0..T-2 [B, T, S]."""
    stacks = self.code_embed(self._rows(codes)).sum(-2)
    first = self.class_embed(labels)[:, None]
    return jnp.concatenate([first, stacks[:, :-1]], 1) + self.position_embed

  def step_input(self, previous, labels, position):
    """The trunk's input [B, 1, D] at `position` (a traced int): the class token at 0, else the
    previous token's codes `previous` [B, S]."""
    stack = self.code_embed(self._rows(previous)).sum(-2)
    x = jnp.where(position == 0, self.class_embed(labels), stack)
    return (x + self.position_embed[position])[:, None]

  def trunk(self, x, train: bool = False):
    """[B, T, D] -> contexts [B, T, D] (causal; with `decode`, T = 1 and the cache advances)."""
    mask = None if self.decode else nn.make_causal_mask(x[..., 0])
    for block in self.blocks:
      x = block(x, mask, train)
    return self.trunk_norm(x)

  def head(self, context, previous_slots):
    """Logits [..., K] from contexts [..., D] plus the embedded codes already drawn at the
    position and the slot's embedding (`previous_slots` [..., D])."""
    return self.head_out(nn.gelu(self.head_hidden(self.head_norm(context + previous_slots))))

  def slot_logits(self, context, codes):
    """Teacher-forced logits [B, T, S, K] of every slot given contexts [B, T, D] and the true
    codes [B, T, S] (slot s sees the embeddings of slots < s)."""
    e = self.depth_embed(self._rows(codes))
    previous = jnp.cumsum(e, -2) - e
    return self.head(context[..., None, :], previous + self.slot_embed)

  def __call__(self, codes, labels, train: bool = False):
    """codes int32 [B, T, S], labels int32 [B] -> logits [B, T, S, K]."""
    return self.slot_logits(self.trunk(self.inputs(codes, labels), train), codes)

  def slot_logits_step(self, context, previous, slot):
    """Logits [B, K] of `slot` (traced) at one token: contexts [B, D], `previous` [B, D] the
    summed embeddings of the codes drawn at lower slots."""
    return self.head(context, previous + self.slot_embed[slot])

  def embed_slot(self, code, slot):
    """The depth head's embedding [B, D] of `slot`'s codes [B]."""
    return self.depth_embed(code + slot * self.codes)


def make_model(c, positions: int, slots: int, codes: int, decode: bool = False):
  """The model of a `transformer` config section."""
  return CodeTransformer(positions=positions, slots=slots, codes=codes, width=c.width,
                         depth=c.depth, heads=c.heads, mlp_ratio=c.mlp_ratio, dropout=c.dropout,
                         decode=decode)


def bits_per_code(logits, codes):
  """Cross-entropy of `codes` [..., S] under `logits` [..., S, K], in bits, per example [...]
  averaged over its codes: [B, T, S] codes -> [B]."""
  nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), codes[..., None], -1)[..., 0]
  return nll.reshape(nll.shape[0], -1).mean(-1) / jnp.log(2.0)


def draw_slots(model: CodeTransformer, params, context, rng, temperature) -> jax.Array:
  """Codes int32 [B, S] of one token, slot by slot, from contexts [B, D] at `temperature`."""
  def slot(previous, inputs):
    l, key = inputs
    logits = model.apply(params, context, previous, l, method=CodeTransformer.slot_logits_step)
    code = jax.random.categorical(key, logits / temperature).astype(jnp.int32)
    return previous + model.apply(params, code, l, method=CodeTransformer.embed_slot), code
  _, codes = lax.scan(slot, jnp.zeros_like(context),
                      (jnp.arange(model.slots), jax.random.split(rng, model.slots)))
  return codes.T


def init_cache(model: CodeTransformer, params, batch: int):
  """The empty attention cache of a decode=True `model` for `batch` sequences (flax creates it on
  a first trunk pass, here over zeros)."""
  zeros = jnp.zeros((batch, model.positions, model.width))
  _, variables = model.apply(params, zeros, method=CodeTransformer.trunk, mutable=["cache"])
  return variables["cache"]


def step_contexts(model: CodeTransformer, params, cache, previous, labels, position):
  """One cached trunk step: (contexts [B, D] at `position`, the advanced cache), given the codes
  `previous` [B, S] of position - 1 (ignored at 0, where the class token stands)."""
  x = model.apply(params, previous, labels, position, method=CodeTransformer.step_input)
  context, variables = model.apply({**params, "cache": cache}, x, method=CodeTransformer.trunk,
                                   mutable=["cache"])
  return context[:, 0], variables["cache"]


def sample(model: CodeTransformer, params, rng, labels, temperature) -> jax.Array:
  """Tokens int32 [B, T, S] drawn for digits `labels` [B] at softmax `temperature` (> 0).

  `model` must be built with decode=True (the same parameters as training's): each token is
  one cached trunk step (`step_contexts`) and one scan over slots (`draw_slots`).
  """
  def position(carry, p):
    cache, previous = carry
    context, cache = step_contexts(model, params, cache, previous, labels, p)
    codes = draw_slots(model, params, context, jax.random.fold_in(rng, p), temperature)
    return (cache, codes), codes

  start = (init_cache(model, params, labels.shape[0]),
           jnp.zeros((labels.shape[0], model.slots), jnp.int32))
  _, codes = lax.scan(position, start, jnp.arange(model.positions))
  return jnp.swapaxes(codes, 0, 1)
