"""The codec's bitstream (rvq_jax.bitstream): lossless on the codes, as small as the entropy model
says, and every damaged or foreign file a one-line error naming it."""

import struct

from ml_collections import config_dict
import numpy as np
import pytest

from rvq_jax import bitstream
from rvq_jax import codec
from rvq_jax import data as data_lib
from rvq_jax import errors
from tests.conftest import REPO


@pytest.fixture(scope="module")
def real_codes(fsdd_recordings):
  """model1's codes [32, frames, 5] of 2.7 s of real speech, its codec, and a context model with
  8 groups a level fitted on the codes of 54 other recordings (so some codes and contexts of the
  message are unseen by it)."""
  model1 = codec.load_codec(config_dict.ConfigDict({"data": {"data_dir": None}}),
                            REPO / "pretrained" / "model1")
  paths = sorted(fsdd_recordings.glob("*_1.wav"))
  speech = np.concatenate([data_lib.read_wav(p)[0] for p in paths[:6]])
  others = [np.concatenate([data_lib.read_wav(p)[0] for p in paths[i:i + 6]])
            for i in range(6, 60, 6)]
  fit = [codec.encode(model1, x, 5) for x in others]
  embed = np.asarray(model1.embed)
  depths = [[codec.depths(embed, x, tolerance) for x in fit]
            for tolerance in (DEPTH_TOLERANCE, 10 * DEPTH_TOLERANCE)]   # two depth tables
  return (codec.encode(model1, speech, 5),
          bitstream.fit_entropy_model(fit, 512, groups=8, depths=depths), len(speech), model1)


DEPTH_TOLERANCE = 3.0   # model1's codes then stop at every depth from 1 to 5


def _plain_ideal_bits(model, codes):
  """-sum log2 p(code | context) by a loop over every code, from the counts alone."""
  rows, frames, levels = codes.shape
  total = 0.0
  for l in range(levels):
    for r in range(rows):
      for f in range(frames):
        if l == 0:
          context = model.codes if f == 0 else codes[r, f - 1, 0]
        else:
          context = codes[r, f, l - 1]
        counts = model.counts[l, model.group_of[l, context]]
        total -= np.log2((counts[codes[r, f, l]] + 1) / (counts.sum() + model.codes))
  return total


@pytest.mark.parametrize("version", [1, 2])
def test_lossless_and_as_small_as_the_model_says(real_codes, version):
  codes, model, n, _ = real_codes
  data = bitstream.pack(codes, n, 8000, "0123456789abcdef", model, version=version)
  header = bitstream.read_header(data, "x.rvqc")
  assert (header.rows, header.frames, header.levels, header.num_samples) == (*codes.shape, n)
  assert header.version == version
  np.testing.assert_array_equal(bitstream.unpack(data, header, model, "x.rvqc"), codes)
  payload_bits = 8 * (len(data) - bitstream.HEADER.size)
  coded_with = model if version == 2 else model.unigram()
  ideal = coded_with.ideal_bits(codes)
  assert ideal == pytest.approx(_plain_ideal_bits(coded_with, codes), rel=1e-9)
  assert ideal <= payload_bits <= 1.01 * ideal + 64          # range coding is near-ideal
  nominal = codes.size * 9                                    # log2(512) bits per code
  assert payload_bits < nominal


def _plain_depths(embed, codes, tolerance):
  """Each position's depth by a loop: the fewest levels whose sum is within `tolerance` of all."""
  rows, frames, levels = codes.shape
  out = np.zeros((rows, frames), np.int64)
  for r in range(rows):
    for f in range(frames):
      vectors = [embed[l, codes[r, f, l]].astype(np.float64) for l in range(levels)]
      full = np.sum(vectors, 0)
      out[r, f] = next(n for n in range(1, levels + 1)
                       if np.sum((full - np.sum(vectors[:n], 0)) ** 2) <= tolerance)
  return out


def test_variable_depth_is_lossless_and_as_small_as_the_model_says(real_codes):
  """Format 3: each position cut at its own depth (checked against a plain loop), coded to the
  code and the depth, its size the model's ideal (flags and codes, by a loop) within 1%."""
  codes, model, n, model1 = real_codes
  embed = np.asarray(model1.embed)
  depth = codec.depths(embed, codes, DEPTH_TOLERANCE, chunk_frames=7)   # chunks change nothing
  # Equal to the loop's in float64 but where a distance is within rounding of the tolerance.
  assert (_plain_depths(embed, codes, DEPTH_TOLERANCE + 1e-3) <= depth).all()
  assert (depth <= _plain_depths(embed, codes, DEPTH_TOLERANCE - 1e-3)).all()
  assert len(np.unique(depth)) >= 4
  cut = codec.truncate_depth(embed, codes, DEPTH_TOLERANCE)
  np.testing.assert_array_equal(cut >= 0, np.arange(5) < depth[..., None])
  data = bitstream.pack(cut, n, 8000, "0123456789abcdef", model)
  header = bitstream.read_header(data, "x.rvqc")
  assert header.version == 3
  np.testing.assert_array_equal(bitstream.unpack(data, header, model, "x.rvqc"), cut)
  ideal = np.log2(5) + np.log2(2)          # the smallest depth (1..5) and the table (of 2)
  min_depth = depth.min()
  go_on = model.depth_probabilities()[0]    # the table fitted at this tolerance is the cheaper
  log_p = np.log2(model.probabilities())
  level0 = np.log2(model.level0_probabilities())
  for r in range(cut.shape[0]):
    for f in range(cut.shape[1]):
      left = model.codes if f == 0 else cut[r, f - 1, 0]
      below = model.codes if r == 0 else cut[r - 1, f, 0]
      ideal -= level0[model.group_of[0, left], model.below_group_of[below], cut[r, f, 0]]
      for l in range(1, 5):
        group = model.group_of[l, cut[r, f, l - 1]]
        if l >= min_depth:                   # above the smallest depth every position goes on
          ideal -= np.log2(go_on[l, group, int(cut[r, f, l] >= 0)])
        if cut[r, f, l] < 0:
          break
        ideal -= log_p[l, group, cut[r, f, l]]
  payload_bits = 8 * (len(data) - bitstream.HEADER.size)
  assert ideal <= payload_bits <= 1.01 * ideal + 64
  full = bitstream.pack(codes, n, 8000, "0123456789abcdef", model)
  assert bitstream.read_header(full, "z").version == 3          # one depth everywhere: no flags
  np.testing.assert_array_equal(bitstream.unpack(full, bitstream.read_header(full, "z"), model,
                                                 "z"), codes)
  assert len(data) < 0.8 * len(full)
  # Level 0 under its two contexts costs fewer bits than under the frame before alone (format 2).
  two_contexts = len(full) - bitstream.HEADER.size
  one_context = len(bitstream.pack(codes, n, 8000, "0123456789abcdef", model, version=2))
  assert two_contexts < one_context - bitstream.HEADER.size
  # A floor of 3 levels: no flags are coded above it, and it still decodes to the same codes.
  floor = codec.truncate_depth(embed, codes, DEPTH_TOLERANCE, min_levels=3)
  assert (floor >= 0).sum(-1).min() == 3
  floored = bitstream.pack(floor, n, 8000, "0123456789abcdef", model)
  np.testing.assert_array_equal(
      bitstream.unpack(floored, bitstream.read_header(floored, "y"), model, "y"), floor)
  with pytest.raises(ValueError, match="NO_CODE only past"):
    holes = cut.copy()
    holes[0, 0, 0] = bitstream.NO_CODE
    bitstream.pack(holes, n, 8000, "0123456789abcdef", model)


def test_the_shipped_context_model_saves_bits_on_test_speech(fsdd_recordings):
  """pretrained/model7's entropy model (16 groups a level, fitted on the training split) codes
  test-split speech (index 0-4) in fewer bits than format 1's per-level frequencies, which are its
  counts summed over groups (so format 1 files still decode)."""
  folder = REPO / "pretrained" / "model7"
  model7 = codec.load_codec(config_dict.ConfigDict({"data": {"data_dir": None}}), folder)
  model = codec.entropy_model(model7, folder)
  assert model.groups == 16
  paths = sorted(fsdd_recordings.glob("*_[0-4].wav"))[::25]
  speech = np.concatenate([data_lib.read_wav(p)[0] for p in paths])
  codes = codec.encode(model7, speech, 8)
  sizes = {v: len(bitstream.pack(codes, len(speech), 8000, model7.fingerprint, model, version=v))
           for v in (1, 2)}
  assert sizes[2] < 0.9 * sizes[1]
  np.testing.assert_array_equal(model.unigram().counts[:, 0], model.counts.sum(1))


def test_contexts_are_grouped_by_what_follows_them():
  """Contexts drawn from two distributions (codes 0-3 after even contexts, 4-7 after odd ones)
  are grouped exactly into the two, whatever order they come in."""
  rng = np.random.default_rng(1)
  codes = np.zeros((4, 2000, 2), np.int64)
  codes[..., 0] = rng.integers(0, 8, (4, 2000))
  codes[..., 1] = rng.integers(0, 4, (4, 2000)) + 4 * (codes[..., 0] % 2)
  model = bitstream.fit_entropy_model([codes], 8, groups=2)
  group_of = model.group_of[1, :8]
  assert len(set(group_of[0::2])) == 1 and len(set(group_of[1::2])) == 1
  assert group_of[0] != group_of[1]
  # Level 0 (8 equally likely codes, its left neighbour says nothing) costs 3 bits a code; level 1
  # in its group 2 bits (4 equally likely), where its frequencies alone would cost 3.
  level0 = model.ideal_bits(codes[..., :1])
  assert level0 / codes[..., 0].size == pytest.approx(3.0, abs=0.02)
  level1 = model.ideal_bits(codes) - level0
  assert level1 / codes[..., 1].size == pytest.approx(2.0, abs=0.02)
  alone = model.unigram().ideal_bits(codes) - model.unigram().ideal_bits(codes[..., :1])
  assert alone / codes[..., 1].size == pytest.approx(3.0, abs=0.02)


@pytest.mark.parametrize("groups", [1, 3])
def test_codes_the_model_never_saw_and_fewer_levels(groups):
  rng = np.random.default_rng(0)
  counts = np.zeros((4, groups, 512), np.int64)
  counts[..., :3] = 1000                                      # the model saw codes 0-2 only
  model = bitstream.EntropyModel(counts, rng.integers(0, groups, (4, 513)))
  codes = rng.integers(0, 512, (32, 7, 2))
  data = bitstream.pack(codes, 1700, 8000, "f" * 16, model)
  np.testing.assert_array_equal(
      bitstream.unpack(data, bitstream.read_header(data, "y"), model, "y"), codes)


def _header_fields(data):
  return list(bitstream.HEADER.unpack_from(data))


def _with_header(data, **changes):
  names = ["magic", "version", "fingerprint", "digest", "rate", "length", "levels", "rows",
           "frames", "words", "crc"]
  fields = dict(zip(names, _header_fields(data)))
  fields.update(changes)
  return bitstream.HEADER.pack(*[fields[n] for n in names]) + data[bitstream.HEADER.size:]


def test_damaged_and_foreign_files_are_refused(real_codes):
  codes, model, n, _ = real_codes
  data = bitstream.pack(codes, n, 8000, "0123456789abcdef", model, version=2)
  flipped = bytearray(data)
  flipped[-5] ^= 0x10
  cases = [(data[:len(data) - 7], "a truncated or padded file"),
           (data + b"\0\0\0\0", "a truncated or padded file"),
           (b"", "not a bitstream"), (b"PK\3\4" + data[4:], "not a bitstream"),
           (bytes(flipped), "fails its CRC-32"),
           (_with_header(data, version=5), "bitstream format 5, newer"),
           (_with_header(data, version=0), "not a bitstream")]
  for bad, message in cases:
    with pytest.raises(errors.DataError, match=message) as info:
      bitstream.read_header(bad, "bad.rvqc")
    assert "bad.rvqc" in str(info.value) and "\n" not in str(info.value)
  regrouped = model.group_of.copy()
  regrouped[1, :2] = regrouped[1, 1::-1] if regrouped[1, 0] != regrouped[1, 1] else (0, 1)
  for other in (bitstream.EntropyModel(model.counts + 1, model.group_of),
                bitstream.EntropyModel(model.counts, regrouped)):
    with pytest.raises(errors.DataError, match="another entropy model"):
      bitstream.unpack(data, bitstream.read_header(data, "bad.rvqc"), other, "bad.rvqc")
  # A variable-depth file needs the very depth counts it was coded with.
  cut = codec.truncate_depth(np.asarray(real_codes[3].embed), codes, DEPTH_TOLERANCE)
  deep = bitstream.pack(cut, n, 8000, "0123456789abcdef", model)
  header = bitstream.read_header(deep, "deep.rvqc")
  tables = dict(depth_counts=model.depth_counts, below_group_of=model.below_group_of,
                level0_counts=model.level0_counts)
  for other, message in ((bitstream.EntropyModel(model.counts, model.group_of), "no format 3"),
                         (bitstream.EntropyModel(model.counts, model.group_of,
                                                 **{**tables, "depth_counts": tables[
                                                     "depth_counts"] + 1}),
                          "another entropy model"),
                         (bitstream.EntropyModel(model.counts, model.group_of,
                                                 **{**tables, "level0_counts": tables[
                                                     "level0_counts"] + 1}),
                          "another entropy model")):
    with pytest.raises(errors.DataError, match=message):
      bitstream.unpack(deep, header, other, "deep.rvqc")


def test_the_front_door_checks_the_header_against_the_model(real_codes, tmp_path):
  """Through codec.read_coded (a copy of pretrained/model1 with the test's entropy model beside
  it): other weights, another grid, a length that does not fit the frames, an absurd duration
  and another sample rate are refused before decoding."""
  codes, model, n, model1 = real_codes
  folder = tmp_path / "model1"
  folder.mkdir()
  for name in ("config.json", "weights.msgpack"):
    (folder / name).write_bytes((REPO / "pretrained" / "model1" / name).read_bytes())
  bitstream.save_entropy_model(folder, model)
  good = bitstream.pack(codes, n, 8000, model1.fingerprint, model)
  settings = codec._default_codec_config()
  path = tmp_path / "good.rvqc"
  path.write_bytes(good)
  got, length = codec.read_coded(path, model1, folder, settings)
  np.testing.assert_array_equal(got, codes)
  assert length == n
  huge = bitstream.pack(np.zeros((32, 1, 5), np.int64), 200, 8000, model1.fingerprint, model)
  cases = [(bitstream.pack(codes, n, 8000, "f" * 16, model), "encoded by other weights"),
           (bitstream.pack(codes[:16], n, 8000, model1.fingerprint, model), "codes of shape"),
           (bitstream.pack(codes, n * 3, 8000, model1.fingerprint, model), "does not match"),
           (_with_header(good, rate=16000), "coded at 16000 Hz"),
           (_with_header(huge, frames=2**31, length=2**31 * 256), "more than codec.max_decode")]
  for data, message in cases:
    path.write_bytes(data)
    with pytest.raises(errors.DataError, match=message) as info:
      codec.read_coded(path, model1, folder, settings)
    assert "good.rvqc" in str(info.value)


def test_header_layout_is_fixed():
  assert bitstream.HEADER.size == struct.calcsize("<4sB16s8sIQBHIII") == 56


def test_variable_depth_through_the_codec_modes(fsdd_recordings, tmp_path):
  """--config.codec.depth_tolerance through encode / decode / reconstruct with pretrained/model7
  and its shipped entropy model: a format 4 file, smaller than all 8 levels and than 2, decoding
  to the reconstruction, closer to the 8-level audio than 2 fixed levels are."""
  from rvq_jax import run_config  # pylint: disable=g-import-not-at-top
  folder = str(REPO / "pretrained" / "model7")
  speech = np.concatenate([data_lib.read_wav(p)[0]
                           for p in sorted(fsdd_recordings.glob("*_[0-4].wav"))[::60]])
  wav = tmp_path / "speech.wav"
  data_lib.write_wav(wav, speech, 8000)

  def settings(**codec_fields):
    config = run_config.default_config("vqvae")
    config.codec.update(codec_fields)
    return config
  variable, full, two = settings(depth_tolerance=0.3), settings(), settings(levels=2)
  tables = settings(depth_tolerance=0.3, networks=False)
  coded = {name: codec.encode_mode(c, folder, str(wav), str(tmp_path / f"{name}.rvqc"))
           for name, c in (("variable", variable), ("full", full), ("two", two),
                           ("tables", tables))}
  assert bitstream.read_header(coded["variable"].read_bytes(), "v").version == 4
  assert bitstream.read_header(coded["tables"].read_bytes(), "t").version == 3
  assert coded["variable"].stat().st_size < 0.97 * coded["tables"].stat().st_size
  assert coded["variable"].stat().st_size < 0.9 * coded["two"].stat().st_size
  decoded = {name: data_lib.read_wav(codec.decode_mode(full, folder, str(path),
                                                       str(tmp_path / f"{name}.wav")))[0]
             for name, path in coded.items()}
  recon = codec.reconstruct_mode(variable, folder, str(wav), str(tmp_path / "recon.wav"))
  np.testing.assert_allclose(data_lib.read_wav(recon)[0], decoded["variable"], atol=2 / 32768)

  def error(name):
    return np.sum((decoded[name] - decoded["full"]) ** 2)
  assert error("variable") < error("two")
  np.testing.assert_array_equal(decoded["tables"], decoded["variable"])   # the same codes
  with pytest.raises(errors.ConfigError, match="codec.depth_tolerance"):
    codec.encode_mode(settings(depth_tolerance=-1.0), folder, str(wav), str(tmp_path / "x.rvqc"))
