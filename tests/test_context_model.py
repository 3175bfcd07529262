"""Bitstream format 4 (rvq_jax.context_model): a causal coding order, distributions that are the
networks' softmax, lossless and as small as the networks say on real codes, smaller than format 3
once trained, and every mismatch a one-line error naming the file."""

import dataclasses

from ml_collections import config_dict
import numpy as np
import pytest

from rvq_jax import bitstream
from rvq_jax import codec
from rvq_jax import context_model
from rvq_jax import data as data_lib
from rvq_jax import errors
from tests.conftest import REPO

TOLERANCE = 3.0   # model1's codes then stop at every depth from 1 to 5


@pytest.fixture(scope="module")
def trained(fsdd_recordings):
  """model1's codes [32, frames, 5] of 2.7 s of real speech (speaker-digit files unseen below), and
  an entropy model fitted, with its networks (one small ReLU layer a level, 3 epochs), on the codes
  of 54 other recordings, each cut to a variable depth or kept whole."""
  model1 = codec.load_codec(config_dict.ConfigDict({"data": {"data_dir": None}}),
                            REPO / "pretrained" / "model1")
  paths = sorted(fsdd_recordings.glob("*_1.wav"))
  speech = np.concatenate([data_lib.read_wav(p)[0] for p in paths[:6]])
  fit = [codec.encode(model1, data_lib.read_wav(p)[0], 5) for p in paths[6:60]]
  embed = np.asarray(model1.embed)
  depths = [[codec.depths(embed, x, t) for x in fit] for t in (TOLERANCE, 10 * TOLERANCE)]
  settings = codec._default_codec_config()
  settings.update(dict(context_epochs=3, context_embed=8, context_hidden=(64,),
                       context_batch_size=256))
  tables = bitstream.fit_entropy_model(fit, 512, groups=8, depths=depths)
  held_out = [codec.encode(model1, speech, 5)]
  networks = codec.fit_context_networks(fit, depths, held_out, 512, settings)
  model = dataclasses.replace(tables, context=networks)
  return held_out[0], model, len(speech), model1


def test_a_wavefront_reads_only_codes_decoded_before_it():
  rows, frames = 7, 5
  order, bounds = context_model.wavefronts(rows, frames)
  front = np.empty(rows * frames, np.int64)
  for d in range(len(bounds) - 1):
    front[order[bounds[d]:bounds[d + 1]]] = d
  assert sorted(order.tolist()) == list(range(rows * frames))
  for r in range(rows):
    for f in range(frames):
      for dr, df in context_model.OFFSETS:
        if 0 <= r + dr < rows and 0 <= f + df < frames:
          assert front[(r + dr) * frames + f + df] < front[r * frames + f]


def test_tokens_are_the_neighbours_codes():
  grid = np.array([[5, 6, -1], [7, 8, 9]])
  r, f = np.array([1, 0]), np.array([2, 1])
  tokens = context_model.tokens_at(context_model.padded_tokens(grid, 512), r, f)
  by_offset = dict(zip(context_model.OFFSETS, tokens[0]))
  assert by_offset[(0, -1)] == 8 and by_offset[(-1, 0)] == 513    # NO_CODE above it: "stopped"
  assert by_offset[(-1, -1)] == 6 and by_offset[(1, -1)] == 512    # outside the grid
  assert dict(zip(context_model.OFFSETS, tokens[1]))[(1, -1)] == 7


def test_coding_distributions_are_the_networks_softmax():
  """numpy's float64 coding distribution is jax's float32 softmax of the same network to within
  the logit grid, and an exact function of the rounded logits."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  params = context_model.init_params(rng, 2, 512, 32, 8, (16,))
  tokens = rng.integers(0, 514, (50, len(context_model.OFFSETS)))
  ancestors, rows = rng.integers(0, 512, (50, 2)), rng.integers(0, 32, 50)
  p = context_model.coding_probabilities(context_model.as_float64([params])[0], tokens,
                                         ancestors, rows)
  reference = jax.nn.log_softmax(context_model.logits(
      jnp, jax.tree.map(jnp.asarray, params), tokens, ancestors, rows))
  np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-12)
  shift = np.log(p) - np.asarray(reference)   # a per-row constant, up to half a grid step
  kept = np.asarray(reference) > reference.max(1, keepdims=True) - context_model.LOGIT_FLOOR + 1
  spread = np.where(kept, shift, np.nan)
  assert np.nanmax(np.nanmax(spread, 1) - np.nanmin(spread, 1)) <= context_model.LOGIT_STEP + 1e-3


def _ideal_bits(model, codes, min_depth, table):
  """The payload's ideal bits by a loop over every position: the header choices, format 3's
  go-on flags, each code under its network's distribution computed for that position alone."""
  rows, frames, levels = codes.shape
  nets = context_model.as_float64(model.context)
  go_on = np.log2(model.depth_probabilities()[table])
  bits = np.log2(levels) + np.log2(len(model.depth_counts)) + 32   # + the codes' check
  for level in range(levels):
    padded = context_model.padded_tokens(codes[..., level], model.codes)
    for r in range(rows):
      for f in range(frames):
        if level and codes[r, f, level - 1] < 0:
          continue
        if level >= min_depth:
          group = model.group_of[level, codes[r, f, level - 1]]
          bits -= go_on[level, group, int(codes[r, f, level] >= 0)]
        if codes[r, f, level] >= 0:
          p = context_model.coding_probabilities(
              nets[level], context_model.tokens_at(padded, np.array([r]), np.array([f])),
              codes[r, f, :level][None], np.array([r]))
          bits -= np.log2(p[0, codes[r, f, level]])
  return bits


def test_lossless_and_as_small_as_the_networks_say(trained):
  codes, model, n, model1 = trained
  cut = codec.truncate_depth(np.asarray(model1.embed), codes, TOLERANCE)
  for message in (codes, cut):
    data = bitstream.pack(message, n, 8000, "0123456789abcdef", model)
    header = bitstream.read_header(data, "x.rvqc")
    assert header.version == 4
    np.testing.assert_array_equal(bitstream.unpack(data, header, model, "x.rvqc"), message)
    min_depth = int((message >= 0).sum(-1).min())
    table = int(np.argmin([bitstream._flag_bits(model, message, t, min_depth)
                           for t in range(len(model.depth_counts))]))
    ideal = _ideal_bits(model, message, min_depth, table)
    payload_bits = 8 * (len(data) - bitstream.HEADER.size)
    assert ideal <= payload_bits <= 1.01 * ideal + 64


def test_the_shipped_networks_save_bits_on_test_speech(fsdd_recordings):
  """pretrained/model7's networks (fitted on the training split) code test-split speech (index
  0-4) in fewer bits than its format 3 tables, at full and at variable depth (measured 0.894 and
  0.934 of format 3's payload)."""
  folder = REPO / "pretrained" / "model7"
  model7 = codec.load_codec(config_dict.ConfigDict({"data": {"data_dir": None}}), folder)
  model = codec.entropy_model(model7, folder)
  assert model.has_format4
  paths = sorted(fsdd_recordings.glob("*_[0-4].wav"))[::25]
  speech = np.concatenate([data_lib.read_wav(p)[0] for p in paths])
  codes = codec.encode(model7, speech, 8)
  # At full depth every level's codes cost ~10% less; at variable depth most bits are level 0's
  # (~8% less) and the go-on flags (format 3's counts in both).
  for message, ratio in ((codes, 0.92), (codec.truncate_depth(np.asarray(model7.embed), codes,
                                                              0.3), 0.95)):
    sizes = {v: len(bitstream.pack(message, len(speech), 8000, model7.fingerprint, model,
                                   version=v)) for v in (3, 4)}
    assert sizes[4] < ratio * sizes[3]


def test_saved_networks_load_as_they_code_and_damage_is_refused(trained, tmp_path):
  codes, model, n, _ = trained
  bitstream.save_entropy_model(tmp_path, model)
  how = "--mode=entropy_model"
  loaded = bitstream.load_entropy_model(tmp_path, 5, 512, how)
  assert loaded.format4_digest == model.format4_digest
  data = bitstream.pack(codes, n, 8000, "0123456789abcdef", model)
  np.testing.assert_array_equal(
      bitstream.unpack(data, bitstream.read_header(data, "x"), loaded, "x"), codes)
  # Other networks: the digest says so before decoding.
  other = dataclasses.replace(model, context=[{**p, "b0": p["b0"] + 1} for p in model.context])
  with pytest.raises(errors.DataError, match="another entropy model"):
    bitstream.unpack(data, bitstream.read_header(data, "x.rvqc"), other, "x.rvqc")
  # A decoder whose arithmetic differs (the same digest): its codes fail the file's check.
  drifted = dataclasses.replace(model)
  drifted.__dict__["context64"] = [{**p, "w0": p["w0"] * 1.5} for p in model.context64]
  with pytest.raises(errors.DataError, match="fail their check") as info:
    bitstream.unpack(data, bitstream.read_header(data, "x.rvqc"), drifted, "x.rvqc")
  assert "x.rvqc" in str(info.value) and "\n" not in str(info.value)
  # Format 3 tables alone cannot decode a format 4 file.
  with pytest.raises(errors.DataError, match="no format 4 networks"):
    bitstream.unpack(data, bitstream.read_header(data, "x.rvqc"),
                     dataclasses.replace(model, context=None), "x.rvqc")
  # A damaged or foreign networks file is a one-line error naming it.
  path = tmp_path / context_model.FILE
  for damage in (None, b"not a zip"):
    if damage is None:
      arrays = dict(np.load(path))
      arrays["level2/w0"] = arrays["level2/w0"][:-1]
      np.savez(path, **arrays)
    else:
      path.write_bytes(damage)
    with pytest.raises(errors.DataError, match=context_model.FILE) as info:
      bitstream.load_entropy_model(tmp_path, 5, 512, how)
    assert "\n" not in str(info.value)
