"""FSDD pipeline on the real data and on small folders of real and broken files."""

import collections
import os
import pathlib
import shutil

import numpy as np
import pytest
import soundfile as sf

from rvq_jax import data
from rvq_jax import errors


def _expected(recordings, max_samples):
  """Independent listing from soundfile.info: {name: (digit, speaker, index, frames)}."""
  out = {}
  for path in sorted(pathlib.Path(recordings).glob("*.wav")):
    digit, speaker, index = path.stem.split("_")
    out[path.stem] = (int(digit), speaker, int(index), sf.info(path).frames)
  return {k: v for k, v in out.items() if v[3] <= max_samples}, \
         sorted(k for k, v in out.items() if v[3] > max_samples)


def test_split_counts_per_speaker_and_digit(fsdd_dataset, fsdd_recordings, default_config):
  kept, _ = _expected(fsdd_recordings, default_config.data.max_samples)
  def split_of(index):
    return "test" if index <= 4 else "validation" if index <= 9 else "train"
  expected = collections.Counter((split_of(i), s, d) for d, s, i, _ in kept.values())
  got = collections.Counter()
  for name in data.SPLITS:
    split = fsdd_dataset[name]
    for digit, speaker in zip(split.digits, split.speakers):
      got[(name, fsdd_dataset.speaker_names[speaker], int(digit))] += 1
  assert got == expected
  # Official split sizes before filtering: 5 / 5 / 40 of each speaker x digit (6 x 10).
  assert len(fsdd_dataset.speaker_names) == 6
  assert 290 <= len(fsdd_dataset["test"]) <= 300
  assert all(i <= 4 for i in fsdd_dataset["test"].indices)
  assert all(5 <= i <= 9 for i in fsdd_dataset["validation"].indices)
  assert all(10 <= i <= 49 for i in fsdd_dataset["train"].indices)


def test_outlier_filter_drops_exactly_the_long_files(fsdd_dataset, fsdd_recordings,
                                                     default_config):
  _, too_long = _expected(fsdd_recordings, default_config.data.max_samples)
  assert sorted(fsdd_dataset.dropped) == too_long
  total = sum(len(fsdd_dataset[s]) for s in data.SPLITS) + len(fsdd_dataset.dropped)
  assert total == 3000
  assert len(fsdd_dataset.dropped) / total <= 0.01  # the default keeps at least 99%


def test_padding_and_scaling_preserve_the_recordings(fsdd_dataset, fsdd_recordings):
  for split_name in data.SPLITS:
    split = fsdd_dataset[split_name]
    assert split.waveforms.shape == (len(split), 8192)
    assert split.waveforms.dtype == np.float32
    for i in range(0, len(split), 37):
      raw, _ = sf.read(fsdd_recordings / f"{split.names[i]}.wav", dtype="float32")
      assert split.lengths[i] == len(raw)
      np.testing.assert_allclose(fsdd_dataset.unscale(split.waveforms[i, :len(raw)]), raw,
                                 atol=1e-6)
      assert not split.waveforms[i, len(raw):].any()


def test_training_std_is_one_after_scaling(fsdd_dataset):
  train = fsdd_dataset["train"]
  samples = np.concatenate([w[:n] for w, n in zip(train.waveforms, train.lengths)])
  assert abs(samples.astype(np.float64).std() - 1.0) < 1e-4
  assert 0.01 < fsdd_dataset.scale < 1.0


def _config(default_config, recordings, cache):
  config = default_config.data
  config.data_dir = str(recordings)
  config.cache_dir = str(cache)
  return config


def _small_folder(source, target, names):
  target.mkdir(parents=True, exist_ok=True)
  for name in names:
    shutil.copy(source / f"{name}.wav", target / f"{name}.wav")
  return target


SMALL = [f"{d}_{s}_{i}" for d in (0, 9) for s in ("george", "jackson") for i in (0, 5, 20, 30)]


def test_bad_files_are_named_and_skipped(fsdd_recordings, default_config, tmp_path):
  folder = _small_folder(fsdd_recordings, tmp_path / "rec", SMALL)
  good, _ = sf.read(folder / "0_george_20.wav", dtype="int16")
  (folder / "1_george_40.wav").write_bytes((folder / "0_george_20.wav").read_bytes()[:30])
  sf.write(folder / "2_george_40.wav", np.zeros(0, np.int16), 8000, subtype="PCM_16")
  sf.write(folder / "3_george_40.wav", np.stack([good, good], -1), 8000, subtype="PCM_16")
  sf.write(folder / "4_george_40.wav", good, 16000, subtype="PCM_16")
  shutil.copy(folder / "0_george_20.wav", folder / "not_a_digit.wav")
  with pytest.warns(data.BadRecordingWarning) as record:
    dataset = data.load_dataset(_config(default_config, folder, tmp_path / "cache"))
  messages = "\n".join(str(w.message) for w in record)
  for name, reason in (("1_george_40.wav", "unreadable"), ("2_george_40.wav", "empty"),
                       ("3_george_40.wav", "2 channels"), ("4_george_40.wav", "16000 Hz"),
                       ("not_a_digit.wav", "name")):
    assert any(name in line and reason in line for line in messages.splitlines()), (name, messages)
  assert sum(len(dataset[s]) for s in data.SPLITS) == len(SMALL)
  assert len(dataset.skipped) == 5
  # A second load from the cache reports the same skipped files again.
  with pytest.warns(data.BadRecordingWarning, match="2_george_40.wav"):
    again = data.load_dataset(_config(default_config, folder, tmp_path / "cache"))
  assert again.from_cache


def test_cache_hits_and_invalidation(fsdd_recordings, default_config, tmp_path):
  folder = _small_folder(fsdd_recordings, tmp_path / "rec", SMALL)
  config = _config(default_config, folder, tmp_path / "cache")
  first = data.load_dataset(config)
  second = data.load_dataset(config)
  assert not first.from_cache and second.from_cache
  np.testing.assert_array_equal(first["train"].waveforms, second["train"].waveforms)
  assert first["test"].names == second["test"].names and first.scale == second.scale

  config.max_samples = 4096  # a changed setting rebuilds
  shorter = data.load_dataset(config)
  assert not shorter.from_cache and shorter["train"].waveforms.shape[1] == 4096
  config.max_samples = 8192
  assert data.load_dataset(config).from_cache

  _small_folder(fsdd_recordings, folder, ["1_theo_25"])  # a changed file set rebuilds
  grown = data.load_dataset(config)
  assert not grown.from_cache and "1_theo_25" in grown["train"].names

  sf.write(folder / "1_theo_25.wav", np.zeros(100, np.int16), 8000, subtype="PCM_16")
  os.utime(folder / "1_theo_25.wav", ns=(1, 1))  # a changed file rebuilds, even with old mtime
  rewritten = data.load_dataset(config)
  assert not rewritten.from_cache
  assert rewritten["train"].lengths[rewritten["train"].names.index("1_theo_25")] == 100


def test_corrupt_cache_is_rebuilt(fsdd_recordings, default_config, tmp_path):
  folder = _small_folder(fsdd_recordings, tmp_path / "rec", SMALL)
  config = _config(default_config, folder, tmp_path / "cache")
  data.load_dataset(config)
  (cache_file,) = (tmp_path / "cache" / "prepared").glob("*.npz")
  cache_file.write_bytes(b"garbage")
  rebuilt = data.load_dataset(config)
  assert not rebuilt.from_cache and len(rebuilt["train"]) > 0


def test_missing_or_empty_folder_says_what_to_do(default_config, tmp_path):
  config = _config(default_config, tmp_path / "nowhere", tmp_path / "cache")
  with pytest.raises(FileNotFoundError, match=r"nowhere.*does not exist.*data_dir"):
    data.load_dataset(config)
  (tmp_path / "empty").mkdir()
  config.data_dir = str(tmp_path / "empty")
  with pytest.raises(FileNotFoundError, match=r"holds no \.wav files"):
    data.load_dataset(config)


def test_fsdd_dir_environment_variable(fsdd_recordings, default_config, tmp_path, monkeypatch):
  folder = _small_folder(fsdd_recordings, tmp_path / "rec", SMALL)
  monkeypatch.setenv("FSDD_DIR", str(folder))
  config = default_config.data
  config.cache_dir = str(tmp_path / "cache")
  assert data.find_recordings(config) == folder
  monkeypatch.setenv("FSDD_DIR", str(tmp_path / "absent"))
  with pytest.raises(FileNotFoundError, match="FSDD_DIR"):
    data.find_recordings(config)


def test_validation_overlapping_test_is_rejected(default_config):
  default_config.data.val_first_index = 3
  with pytest.raises(ValueError, match="val_first_index"):
    data.validate_data_config(default_config.data)


def test_parse_name():
  assert data.parse_name("7_jackson_32.wav") == (7, "jackson", 32)
  assert data.parse_name("7_jackson.wav") is None
  assert data.parse_name("12_jackson_3.wav") is None


@pytest.mark.parametrize("indices, split", [((20, 30), "validation"), ((5, 20, 30), "test")])
def test_training_refuses_a_folder_without_held_out_clips(fsdd_recordings, default_config,
                                                          tmp_path, indices, split):
  """Training validates every epoch and tests at the end: a folder without those clips is refused
  before anything trains (it trained, then failed on the empty split); reading it is still fine."""
  names = [f"{d}_george_{i}" for d in (0, 1, 2) for i in indices]
  folder = _small_folder(fsdd_recordings, tmp_path / "rec", names)
  config = _config(default_config, folder, tmp_path / "cache")
  assert len(data.load_dataset(config)[split].waveforms) == 0
  with pytest.raises(errors.DataError, match=f"No {split} recordings in .*rec"):
    data.load_training_dataset(config)
