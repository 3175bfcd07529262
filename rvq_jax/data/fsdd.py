"""FSDD recordings -> split, filtered, padded and scaled waveform arrays, cached on disk.

Pipeline (`load_dataset`):
  1. read every `{digit}_{speaker}_{index}.wav` with soundfile; a file that is unreadable, empty,
     not mono, not at `data.sample_rate` or oddly named is named in a warning and skipped (not
     converted: resampling or down-mixing would silently change the data the study is about);
  2. split by index: 0-4 test (official), `data.val_first_index..data.val_last_index` validation,
     the remaining 5-49 train;
  3. drop recordings longer than `data.max_samples` (all splits; logged by name);
  4. zero-pad every recording at its end to `data.max_samples`;
  5. divide by the standard deviation of the training recordings' samples (unpadded), kept as
     `Dataset.scale` so `unscale` restores the original amplitudes.
The result is cached as `.npz` under a key hashing every setting above and the (name, size, mtime)
of every WAV, so a changed setting or file set rebuilds it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import re
import time
import warnings

from absl import logging
import numpy as np
import soundfile as sf

from rvq_jax import errors
from rvq_jax import files
from rvq_jax.data import download

SPLITS = ("train", "validation", "test")
_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")
# Bump when the prepared arrays' meaning changes, so old caches are not reused.
_CACHE_VERSION = 2


# FSDD v1.0.10's speakers, in a fixed order: a speaker's index never depends on which other files
# are in the folder. `data.speakers` extends it; a file of another speaker is skipped with a warning.
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


class BadRecordingWarning(UserWarning):
  """A WAV file was skipped or dropped; the message names it and says why."""


class TransientReadError(errors.DataError):
  """A file could not be read for a reason that may pass (permissions, I/O): never cached."""


@dataclasses.dataclass(frozen=True)
class Split:
  """One split's recordings, in sorted file-name order.

  Attributes:
    waveforms: float32 [N, max_samples], scaled by the training std, zero-padded at the end.
    lengths: int32 [N], samples before padding.
    digits: int32 [N], the spoken digit 0-9.
    speakers: int32 [N], index into `Dataset.speaker_names`.
    indices: int32 [N], the repetition index from the file name (0-49).
    names: [N] file names without the `.wav` suffix, e.g. '7_jackson_32'.
  """
  waveforms: np.ndarray
  lengths: np.ndarray
  digits: np.ndarray
  speakers: np.ndarray
  indices: np.ndarray
  names: tuple[str, ...]

  def __len__(self) -> int:
    return len(self.names)


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Prepared FSDD. `scale` is the training std (original units) the waveforms were divided by."""
  splits: dict[str, Split]
  scale: float
  sample_rate: int
  speaker_names: tuple[str, ...]
  dropped: tuple[str, ...]      # too long for data.max_samples
  dropped_lengths: tuple[str, ...]  # the same, as 'name (seconds s)'
  skipped: tuple[str, ...]      # unreadable or invalid files, 'name: reason'
  from_cache: bool = False

  def __getitem__(self, split: str) -> Split:
    return self.splits[split]

  def unscale(self, waveforms: np.ndarray) -> np.ndarray:
    """Scaled waveforms -> original amplitude (float, [-1, 1] for PCM input)."""
    return np.asarray(waveforms) * self.scale


def parse_name(filename: str) -> tuple[int, str, int] | None:
  """'7_jackson_32.wav' -> (7, 'jackson', 32); None when the name does not follow FSDD's scheme."""
  match = _NAME.match(filename)
  if match is None:
    return None
  return int(match.group(1)), match.group(2), int(match.group(3))


WAV_MAGIC = (b"RIFF", b"RIFX", b"RF64")   # the first 4 bytes of a WAV; bytes 8-12 are b"WAVE"


def _container_name(path: pathlib.Path) -> str:
  """What libsndfile says the file is (e.g. 'FLAC'), or that it cannot tell."""
  try:
    return f"its content is {sf.info(str(path)).format}"
  except Exception:  # noqa: BLE001 - only a name for the message
    return "no known audio format"


def read_wav(path: pathlib.Path) -> tuple[np.ndarray, int]:
  """Reads one mono WAV (any sample rate) as (float32 samples [n] in [-1, 1] for PCM, rate in Hz).

  Raises:
    DataError: the file is a dangling link, empty, not a WAV file (whatever its name: FLAC,
      AIFF, Ogg or MP3 content is refused), unreadable, not mono or holds non-finite samples;
      the message says which.
    TransientReadError: permission denied or an I/O error (a reason that may pass).
  """
  path = pathlib.Path(path)
  if path.is_symlink() and not path.exists():
    raise errors.DataError(f"dangling symbolic link (its target {os.readlink(path)} is missing)")
  try:
    with path.open("rb") as f:
      header = f.read(12)
  except PermissionError as e:
    raise TransientReadError("permission denied (make the file readable)") from e
  except OSError as e:
    raise TransientReadError(f"could not be read ({e.strerror or e})") from e
  if not header:
    raise errors.DataError("empty (0 bytes)")
  if header[:4] not in WAV_MAGIC or header[8:12] != b"WAVE":
    # libsndfile would read FLAC, AIFF, Ogg or MP3 too, whatever the name says; the project
    # reads WAV (RIFF, RIFX, RF64) only, as documented.
    raise errors.DataError(f"not a WAV file ({_container_name(path)}); convert it to WAV, e.g. "
                           "`sox in.flac out.wav`")
  try:
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
  except (sf.LibsndfileError, RuntimeError) as e:
    raise errors.DataError(f"unreadable ({e})") from e
  except OSError as e:
    raise TransientReadError(f"could not be read ({e.strerror or e})") from e
  if samples.shape[0] == 0:
    raise errors.DataError("empty (no samples)")
  if samples.shape[1] != 1:
    raise errors.DataError(f"{samples.shape[1]} channels; give a mono file")
  bad = int(np.count_nonzero(~np.isfinite(samples)))
  if bad:
    raise errors.DataError(f"{bad} non-finite samples (NaN or Inf)")
  return samples[:, 0], int(rate)


def read_recording(path: pathlib.Path, sample_rate: int) -> np.ndarray:
  """Reads one FSDD recording: `read_wav`, and the rate must be `sample_rate` (DataError if not)."""
  samples, rate = read_wav(path)
  if rate != sample_rate:
    raise errors.DataError(f"sample rate {rate} Hz; expected {sample_rate} Hz (data.sample_rate)")
  return samples


def _fingerprint(wav_paths: list[pathlib.Path], data_config) -> str:
  settings = {k: data_config[k] for k in ("max_samples", "sample_rate", "val_first_index",
                                          "val_last_index", "test_last_index")}
  settings["speakers"] = list(speaker_table(data_config))
  files = []
  for p in wav_paths:
    try:
      st = p.stat()
      files.append((p.name, st.st_size, st.st_mtime_ns))
    except OSError:   # a dangling link: reported as a bad file by _prepare
      files.append((p.name, -1, -1))
  blob = json.dumps({"version": _CACHE_VERSION, "settings": settings, "files": files},
                    sort_keys=True)
  return hashlib.sha256(blob.encode()).hexdigest()[:20]


def speaker_table(data_config) -> tuple[str, ...]:
  """The speakers in index order: `data.speakers` (default FSDD's six)."""
  return tuple(data_config.get("speakers") or FSDD_SPEAKERS)


def _split_of(index: int, data_config) -> str:
  if index <= data_config.test_last_index:
    return "test"
  if data_config.val_first_index <= index <= data_config.val_last_index:
    return "validation"
  return "train"


def validate_data_config(data_config) -> None:
  """Raises ValueError naming the field when the data config cannot work."""
  if data_config.max_samples < 1:
    raise errors.ConfigError(f"data.max_samples={data_config.max_samples} must be positive.")
  if data_config.val_first_index <= data_config.test_last_index <= data_config.val_last_index:
    raise errors.ConfigError(
        f"data.val_first_index..data.val_last_index ({data_config.val_first_index}.."
        f"{data_config.val_last_index}) overlaps the official test indices 0.."
        f"{data_config.test_last_index}; validation must be carved from the training indices.")


def _prepare(recordings: pathlib.Path, wav_paths: list[pathlib.Path], data_config) -> dict:
  """Reads, splits, filters, pads and scales; returns the arrays to cache."""
  max_samples = data_config.max_samples
  speakers = speaker_table(data_config)
  rows, skipped, dropped, transient = [], [], [], []
  for path in wav_paths:
    parsed = parse_name(path.name)
    if parsed is None:
      skipped.append(f"{path.name}: name is not {{digit}}_{{speaker}}_{{index}}.wav")
      continue
    if parsed[1] not in speakers:
      skipped.append(f"{path.name}: speaker {parsed[1]!r} is not in data.speakers "
                     f"{list(speakers)} (add it there to use it)")
      continue
    try:
      samples = read_recording(path, data_config.sample_rate)
    except TransientReadError as e:
      skipped.append(f"{path.name}: {e}")
      transient.append(path.name)
      continue
    except errors.DataError as e:
      skipped.append(f"{path.name}: {e}")
      continue
    if len(samples) > max_samples:
      dropped.append(f"{path.stem} ({len(samples) / data_config.sample_rate:.2f} s)")
      continue
    rows.append((parsed, path.stem, samples))
  if not rows:
    raise errors.DataError(f"No usable FSDD recordings in {recordings}: "
                           f"{_summary(skipped, dropped, max_samples)}")

  speaker_names = list(speakers)
  train_samples = [s for (_, _, idx), _, s in rows if _split_of(idx, data_config) == "train"]
  if not train_samples:
    raise errors.DataError(
        f"No training recordings in {recordings} (repetition indices {data_config.test_last_index + 1}"
        f"-49 outside data.val_first_index..data.val_last_index="
        f"{data_config.val_first_index}..{data_config.val_last_index}): "
        f"{_summary(skipped, dropped, max_samples)}")
  scale = float(np.concatenate(train_samples).std())
  if not scale > 0:
    raise errors.DataError("The training recordings are all silent (std 0); cannot scale them.")

  arrays = {}
  for split in SPLITS:
    members = [r for r in rows if _split_of(r[0][2], data_config) == split]
    waveforms = np.zeros((len(members), max_samples), np.float32)
    for i, (_, _, samples) in enumerate(members):
      waveforms[i, :len(samples)] = samples / scale
    arrays[f"{split}/waveforms"] = waveforms
    arrays[f"{split}/lengths"] = np.array([len(s) for _, _, s in members], np.int32)
    arrays[f"{split}/digits"] = np.array([p[0] for p, _, _ in members], np.int32)
    arrays[f"{split}/speakers"] = np.array(
        [speaker_names.index(p[1]) for p, _, _ in members], np.int32)
    arrays[f"{split}/indices"] = np.array([p[2] for p, _, _ in members], np.int32)
    arrays[f"{split}/names"] = np.array([stem for _, stem, _ in members], dtype=np.str_)
  arrays["scale"] = np.float64(scale)
  arrays["sample_rate"] = np.int64(data_config.sample_rate)
  arrays["speaker_names"] = np.array(speaker_names, dtype=np.str_)
  arrays["dropped"] = np.array(dropped, dtype=np.str_)
  arrays["skipped"] = np.array(skipped, dtype=np.str_)
  arrays["transient"] = np.array(transient, dtype=np.str_)
  return arrays


def _summary(skipped: list[str], dropped: list[str], max_samples: int, shown: int = 5) -> str:
  """'3 skipped (a.wav: why; ...), 2 longer than data.max_samples=N (b (3.1 s), ...)'."""
  parts = []
  if skipped:
    more = f"; and {len(skipped) - shown} more" if len(skipped) > shown else ""
    parts.append(f"{len(skipped)} skipped ({'; '.join(skipped[:shown])}{more})")
  if dropped:
    more = f", and {len(dropped) - shown} more" if len(dropped) > shown else ""
    parts.append(f"{len(dropped)} longer than data.max_samples={max_samples} "
                 f"({', '.join(dropped[:shown])}{more})")
  return ", ".join(parts) or "no recordings"


def _to_dataset(arrays, from_cache: bool) -> Dataset:
  splits = {}
  for split in SPLITS:
    splits[split] = Split(
        waveforms=arrays[f"{split}/waveforms"], lengths=arrays[f"{split}/lengths"],
        digits=arrays[f"{split}/digits"], speakers=arrays[f"{split}/speakers"],
        indices=arrays[f"{split}/indices"],
        names=tuple(str(n) for n in arrays[f"{split}/names"]))
  return Dataset(splits=splits, scale=float(arrays["scale"]),
                 sample_rate=int(arrays["sample_rate"]),
                 speaker_names=tuple(str(s) for s in arrays["speaker_names"]),
                 dropped=tuple(str(s).split(" (")[0] for s in arrays["dropped"]),
                 dropped_lengths=tuple(str(s) for s in arrays["dropped"]),
                 skipped=tuple(str(s) for s in arrays["skipped"]), from_cache=from_cache)


def write_wav(path, samples: np.ndarray, sample_rate: int) -> None:
  """float samples [n] -> a 16-bit PCM WAV at `path` (folders made), atomically
  (`files.atomic_write`); samples beyond full scale are clipped, with a warning naming the file.

  Raises:
    errors.DataError: some sample is NaN or infinite (16-bit PCM would store it as full scale),
      naming the file; nothing is written.
  """
  path = pathlib.Path(path)
  samples = np.asarray(samples, np.float32)
  bad = int(np.count_nonzero(~np.isfinite(samples)))
  if bad:
    raise errors.DataError(f"{path}: {bad} of {samples.size} samples are NaN or infinite; not "
                           "written (the model produced non-finite audio: check its weights and "
                           "input).")
  clipped = int(np.count_nonzero(np.abs(samples) > 1.0))
  if clipped:
    logging.warning("%s: %d of %d samples exceeded full scale and were clipped.", path, clipped,
                    len(samples))
  with files.atomic_write(path) as f:
    sf.write(f, np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")


def write_npz_atomically(path: pathlib.Path, arrays: dict) -> None:
  """np.savez, atomically (`files.atomic_write`): readers (and other processes writing the same
  cache) never see a partial file."""
  with files.atomic_write(path) as f:
    np.savez(f, **arrays)


def load_training_dataset(data_config) -> Dataset:
  """`load_dataset` for a training run, which validates every epoch and tests at the end:
  DataError, before anything trains, when the validation or test split is empty (such a folder
  trained, then failed on the empty split)."""
  dataset = load_dataset(data_config)
  held_out = {"validation": (f"{data_config.val_first_index}-{data_config.val_last_index}",
                             "data.val_first_index..data.val_last_index"),
              "test": (f"0-{data_config.test_last_index}", "data.test_last_index")}
  for split, (indices, fields) in held_out.items():
    if len(dataset[split].waveforms) == 0:
      raise errors.DataError(
          f"No {split} recordings in {data_config.data_dir} (repetition indices {indices}, "
          f"{fields}): training validates and tests on them; add such files or point "
          "data.data_dir at the whole FSDD.")
  return dataset


def load_dataset(data_config) -> Dataset:
  """Finds (or downloads) FSDD and returns the prepared splits, from the cache when it is fresh."""
  validate_data_config(data_config)
  start = time.perf_counter()
  recordings = download.find_recordings(data_config)
  wav_paths = sorted(recordings.glob("*.wav"))
  key = _fingerprint(wav_paths, data_config)
  cache_file = download.cache_root(data_config) / "prepared" / f"fsdd-{key}.npz"
  if data_config.use_cache and cache_file.exists():
    try:
      with np.load(cache_file) as cached:
        dataset = _to_dataset({k: cached[k] for k in cached.files}, from_cache=True)
    except Exception as e:  # pylint: disable=broad-except  (zipfile, pickle, numpy: any damage)
      logging.warning("Ignoring unreadable cache %s (%s: %s); rebuilding it.", cache_file,
                      type(e).__name__, e)
    else:
      _report(dataset, recordings, time.perf_counter() - start)
      return dataset
  arrays = _prepare(recordings, wav_paths, data_config)
  if data_config.use_cache and len(arrays["transient"]):
    logging.warning("Not caching the prepared arrays: %d file(s) could not be read for a reason "
                    "that may pass (%s); the next run reads them again.", len(arrays["transient"]),
                    ", ".join(arrays["transient"][:5]))
  elif data_config.use_cache:
    write_npz_atomically(cache_file, arrays)
  dataset = _to_dataset(arrays, from_cache=False)
  _report(dataset, recordings, time.perf_counter() - start)
  return dataset


def _report(dataset: Dataset, recordings: pathlib.Path, seconds: float) -> None:
  """Warns about every skipped file (fresh or cached) and logs what was loaded."""
  for reason in dataset.skipped:
    name, why = reason.split(": ", 1)
    warnings.warn(f"Skipped {recordings / name}: {why}", BadRecordingWarning, stacklevel=3)
  if dataset.dropped:
    warnings.warn(f"Dropped {len(dataset.dropped)} recording(s) of {recordings} longer than "
                  f"data.max_samples={dataset['train'].waveforms.shape[1]} samples: "
                  f"{', '.join(dataset.dropped_lengths)}", BadRecordingWarning, stacklevel=3)
  logging.info(
      "FSDD from %s (%s, %.2f s): %s; scale (train std) %.5f; %d dropped as too long%s; "
      "%d skipped", recordings, "cached" if dataset.from_cache else "prepared", seconds,
      ", ".join(f"{s} {len(dataset[s])}" for s in SPLITS), dataset.scale, len(dataset.dropped),
      f" ({', '.join(dataset.dropped)})" if dataset.dropped else "", len(dataset.skipped))
