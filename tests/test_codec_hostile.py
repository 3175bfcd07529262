"""The codec under hostile input (issue 31): windows that equal the whole-signal path, rates and
peaks refused before they cost memory, and codes files validated member by member."""

import struct
import zipfile

from ml_collections import config_dict
import numpy as np
import pytest
import soundfile as sf

from rvq_jax import codec
from rvq_jax import data as data_lib
from rvq_jax import errors
from tests.conftest import REPO

MODEL = REPO / "pretrained" / "model1"


@pytest.fixture(scope="module")
def model1():
  return codec.load_codec(config_dict.ConfigDict({"data": {"data_dir": None}}), MODEL)


@pytest.fixture(scope="module")
def speech(fsdd_recordings):
  """2.8 s of real speech: six FSDD recordings one after the other."""
  paths = sorted(fsdd_recordings.glob("*_0.wav"))[:6]
  return np.concatenate([data_lib.read_wav(p)[0] for p in paths])


def _settings(**kw):
  section = codec._default_codec_config()
  section.update(kw)
  return section


def test_windows_cover_every_frame_once():
  for frames, window, context in ((1, 64, 4), (165, 8, 4), (64, 64, 0), (65, 64, 3)):
    kept = []
    for lo, start, stop, hi in codec.windows(frames, window, context):
      assert 0 <= lo <= start < stop <= hi <= frames
      assert start - lo <= context and hi - stop <= context
      kept += list(range(start, stop))
    assert kept == list(range(frames))


def test_windowed_coding_equals_the_whole_signal(model1, speech):
  """Ten windows of 8 latent frames with 4 of context: the codes are the whole-signal codes,
  the audio equal to float rounding; without context the windows' edges differ (the context is
  what makes them equal)."""
  windowed = _settings(window_frames=8, context_frames=4, bucket_frames=8)
  whole = codec.encode_whole(model1, speech, 3, windowed)
  np.testing.assert_array_equal(codec.encode(model1, speech, 3, windowed), whole)
  assert (codec.encode(model1, speech, 3, _settings(window_frames=8, context_frames=0,
                                                    bucket_frames=8)) != whole).mean() > 0.05
  np.testing.assert_allclose(codec.reconstruct(model1, speech, 3, windowed),
                             codec.reconstruct_whole(model1, speech, 3, windowed), atol=1e-6)
  np.testing.assert_allclose(codec.decode(model1, whole, len(speech), windowed),
                             codec.decode_whole(model1, whole, len(speech), windowed), atol=1e-6)


def test_clips_of_many_lengths_share_a_few_compiled_shapes(model1, speech):
  """Forty clips of 40 different lengths (0.03-2.8 s) compile the encoder once per bucket (4 of
  16 frames up to the 64-frame window) and once per window shape of the clips longer than a
  window (the first window, 68 frames; the last, 4 + 16 or 4 + 32), not once per length; each
  clip's codes equal its whole-signal codes (padded to the same bucket), its audio the
  whole-signal reconstruction's."""
  settings = _settings(window_frames=64, context_frames=4, bucket_frames=16)
  codec._compiled.cache_clear()
  lengths = np.linspace(250, len(speech), 40).astype(int)
  for n in lengths:
    codes = codec.encode(model1, speech[:n], 2, settings)
    assert codes.shape[1] == -(-n // model1.multiple)
    if n in lengths[[0, 17, -1]]:
      np.testing.assert_array_equal(codes, codec.encode_whole(model1, speech[:n], 2, settings))
      np.testing.assert_allclose(codec.decode(model1, codes, n, settings),
                                 codec.reconstruct_whole(model1, speech[:n], 2, settings),
                                 atol=1e-6)
  encode_segment, decode_segment = codec._functions(model1)
  frames = -(-lengths // model1.multiple)
  assert set(-(-frames[frames > 64] // 16) * 16) == {80, 96}   # so last windows of 4 + 16, 4 + 32
  assert encode_segment._cache_size() == 4 + 1 + 2
  # Decoded: the 0.03 s clip (bucket 16), the 1.1 s one (36 frames, bucket 48), the 2.8 s one
  # (88 frames: windows of 68 and 4 + 32 frames).
  assert decode_segment._cache_size() == 4


def _wav_header(rate: int, num_samples: int) -> bytes:
  data = 2 * num_samples
  return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " +
          struct.pack("<IHHIIHH", 16, 1, 1, rate, 2 * rate, 2, 16) + b"data" +
          struct.pack("<I", data))


@pytest.mark.parametrize("rate", [1, 1000, 400_000])
def test_sample_rates_outside_the_range_are_refused_before_resampling(tmp_path, rate):
  wav = tmp_path / "odd.wav"
  wav.write_bytes(_wav_header(rate, 10_000) + b"\0\1" * 10_000)    # 20 KB
  with pytest.raises(errors.DataError, match=f"odd.wav: its header declares {rate} Hz"):
    codec.read_audio(wav, 8000)


def test_absurd_float_peaks_are_refused_and_loud_ones_warned(tmp_path, caplog):
  absurd, loud = tmp_path / "absurd.wav", tmp_path / "loud.wav"
  x = 0.1 * np.sin(np.arange(4000) / 5)
  sf.write(absurd, x * 4e30, 8000, subtype="DOUBLE")
  sf.write(loud, x * 20, 8000, subtype="FLOAT")
  with pytest.raises(errors.DataError, match="absurd.wav: peaks at 4e\\+29 x full scale"):
    codec.read_audio(absurd, 8000)
  samples = codec.read_audio(loud, 8000)
  assert np.abs(samples).max() == pytest.approx(2.0, rel=1e-3)
  assert "loud.wav: peaks at 2 x full scale" in caplog.text


@pytest.fixture()
def codes_file(model1, speech, tmp_path):
  """A codes .npz of the first format (as --mode=encode wrote before the bitstream; decode still
  reads it) of 2.5 s of speech at 2 levels, and its contents."""
  samples = speech[:20_000]
  path = tmp_path / "codes.npz"
  np.savez_compressed(path, codes=codec.encode(model1, samples, 2).astype(np.uint16),
                      num_samples=len(samples), sample_rate=8000,
                      fingerprint=np.array(model1.fingerprint), format=1)
  return path, codec.read_codes(path)


def _write(path, contents, extra=None):
  np.savez(path, **contents)
  if extra:
    with zipfile.ZipFile(path, "a") as archive:
      for name, data in extra.items():
        archive.writestr(name, data)
  return path


@pytest.mark.parametrize("change,message", [
    (lambda c: c.update(codes=c["codes"].astype(np.int64) + 600), "codes range over"),
    (lambda c: c.update(codes=np.full_like(c["codes"].astype(np.int64), -1)), "codes range over"),
    (lambda c: c.update(codes=c["codes"].astype(np.float32)), "dtype float32"),
    (lambda c: c.update(codes=c["codes"][:16]), "codes of shape"),
    (lambda c: c.update(codes=np.concatenate([c["codes"]] * 5, -1)), "codes of shape"),
    (lambda c: c.update(num_samples=np.int64(0)), "its length"),
    (lambda c: c.update(num_samples=np.int64(40_000 * 256)), "its length"),
    (lambda c: c.update(format=np.int64(99)), "codes format 99, newer"),
])
def test_bad_codes_are_refused_naming_the_file(model1, codes_file, tmp_path, change, message):
  _, contents = codes_file
  contents = dict(contents)
  change(contents)
  bad = _write(tmp_path / "bad.npz", contents)
  with pytest.raises(errors.DataError, match=message) as info:
    codec.decode_mode(config_dict.ConfigDict({"data": {"data_dir": None}}), str(MODEL), str(bad),
                      str(tmp_path / "out.wav"))
  assert "bad.npz" in str(info.value) and "\n" not in str(info.value)
  assert not (tmp_path / "out.wav").exists()


def test_truncated_empty_and_bombed_files_are_one_line_errors(codes_file, tmp_path, monkeypatch):
  path, contents = codes_file
  data = path.read_bytes()
  (tmp_path / "truncated.npz").write_bytes(data[:len(data) // 2])
  (tmp_path / "empty.npz").write_bytes(b"")
  # An extra member (however large it would inflate) is never read.
  bomb = _write(tmp_path / "bomb.npz", contents)
  with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as archive:
    archive.writestr("extra.npy", b"\0" * (2**20))
  assert codec.read_codes(bomb)["codes"].shape == contents["codes"].shape
  # A known member larger than its limit is refused from its declared size, before inflating.
  monkeypatch.setitem(codec.CODES_MEMBERS, "codes", contents["codes"].nbytes - 1)
  for name, message in (("truncated.npz", "not a codes file"), ("empty.npz", "not a codes file"),
                        ("bomb.npz", "its member 'codes' declares")):
    with pytest.raises(errors.DataError, match=message) as info:
      codec.read_codes(tmp_path / name)
    assert name in str(info.value) and "\n" not in str(info.value)
