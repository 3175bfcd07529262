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
  """model1's codes [32, frames, 5] of 2.7 s of real speech, its codec, and an entropy model
  fitted on the codes of 24 other recordings (so some codes of the message are unseen by it)."""
  model1 = codec.load_codec(config_dict.ConfigDict({"data": {"data_dir": None}}),
                            REPO / "pretrained" / "model1")
  paths = sorted(fsdd_recordings.glob("*_1.wav"))
  speech = np.concatenate([data_lib.read_wav(p)[0] for p in paths[:6]])
  others = np.concatenate([data_lib.read_wav(p)[0] for p in paths[6:30]])
  fit = codec.encode(model1, others, 5)
  return (codec.encode(model1, speech, 5), bitstream.fit_entropy_model(fit[None], 512),
          len(speech), model1)


def test_lossless_and_as_small_as_the_model_says(real_codes):
  codes, model, n, _ = real_codes
  data = bitstream.pack(codes, n, 8000, "0123456789abcdef", model)
  header = bitstream.read_header(data, "x.rvqc")
  assert (header.rows, header.frames, header.levels, header.num_samples) == (*codes.shape, n)
  np.testing.assert_array_equal(bitstream.unpack(data, header, model, "x.rvqc"), codes)
  payload_bits = 8 * (len(data) - bitstream.HEADER.size)
  ideal = model.ideal_bits(codes)
  assert ideal <= payload_bits <= 1.01 * ideal + 64          # range coding is near-ideal
  nominal = codes.size * 9                                    # log2(512) bits per code
  assert payload_bits < nominal


def test_codes_the_model_never_saw_and_fewer_levels():
  rng = np.random.default_rng(0)
  counts = np.zeros((4, 512), np.int64)
  counts[:, :3] = 1000                                        # the model saw codes 0-2 only
  model = bitstream.EntropyModel(counts)
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
  data = bitstream.pack(codes, n, 8000, "0123456789abcdef", model)
  flipped = bytearray(data)
  flipped[-5] ^= 0x10
  cases = [(data[:len(data) - 7], "a truncated or padded file"),
           (data + b"\0\0\0\0", "a truncated or padded file"),
           (b"", "not a bitstream"), (b"PK\3\4" + data[4:], "not a bitstream"),
           (bytes(flipped), "fails its CRC-32"),
           (_with_header(data, version=2), "bitstream format 2, newer")]
  for bad, message in cases:
    with pytest.raises(errors.DataError, match=message) as info:
      bitstream.read_header(bad, "bad.rvqc")
    assert "bad.rvqc" in str(info.value) and "\n" not in str(info.value)
  other = bitstream.EntropyModel(model.counts + 1)
  with pytest.raises(errors.DataError, match="another entropy model"):
    bitstream.unpack(data, bitstream.read_header(data, "bad.rvqc"), other, "bad.rvqc")


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
