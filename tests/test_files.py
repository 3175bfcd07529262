"""Atomic writes (rvq_jax.files) and the WAV writer's refusal of non-finite audio."""

import errno
import os
import stat

import numpy as np
import pytest
import soundfile as sf

from rvq_jax import data as data_lib
from rvq_jax import errors
from rvq_jax import files


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path):
  target = tmp_path / "out.json"
  target.write_text("old")
  with pytest.raises(errors.WriteError, match="out.json could not be written .No space left"):
    with files.atomic_write(target) as f:
      f.write(b"half of the new")
      raise OSError(errno.ENOSPC, "No space left on device")   # as a full disk would
  assert target.read_text() == "old"
  assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
  # A file where the output's folder should be, or a folder where the file goes: one line too.
  for path in (target / "inside.json", tmp_path):
    with pytest.raises(errors.WriteError, match="could not be written") as info:
      files.write_text(path, "new")
    assert "\n" not in str(info.value)
  assert target.read_text() == "old"
  assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_two_writers_of_one_file_never_mix(tmp_path):
  target = tmp_path / "codes.npz"
  with files.atomic_write(target) as first, files.atomic_write(target) as second:
    assert first.name != second.name            # unique temporary names
    first.write(b"A" * 1000)
    second.write(b"B" * 10)
  assert target.read_bytes() in (b"A" * 1000, b"B" * 10)
  assert [p.name for p in tmp_path.iterdir()] == ["codes.npz"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_audio_is_refused_naming_the_file(tmp_path, bad):
  wav = tmp_path / "audio" / "sample.wav"
  data_lib.write_wav(wav, np.full(800, 0.5), 8000)
  samples = np.full(800, 0.1)
  samples[123] = bad
  with pytest.raises(errors.DataError, match=r"sample\.wav: 1 of 800 samples are NaN or inf"):
    data_lib.write_wav(wav, samples, 8000)
  kept, _ = sf.read(wav)
  np.testing.assert_allclose(kept, 0.5, atol=1e-4)    # the earlier file, untouched
  assert [p.name for p in wav.parent.iterdir()] == ["sample.wav"]


def test_wav_round_trips_and_clips_beyond_full_scale(tmp_path):
  wav = tmp_path / "a.wav"
  samples = np.linspace(-1.5, 1.5, 801)
  data_lib.write_wav(wav, samples, 8000)
  read, rate = sf.read(wav)
  assert rate == 8000
  np.testing.assert_allclose(read, np.clip(samples, -1, 1), atol=1 / 32767)


def test_written_files_and_folders_get_the_usual_permissions(tmp_path):
  files.write_text(tmp_path / "a.json", "{}")
  with files.new_folder(tmp_path / "out") as staging:
    (staging / "b").write_text("x")
  mask = os.umask(0)
  os.umask(mask)
  assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o666 & ~mask
  assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o777 & ~mask
