"""Finding the FSDD recordings on disk, or downloading the pinned release once.

Search order: `data.data_dir` from the config, then the `FSDD_DIR` environment variable, then
`<cache>/fsdd-<release>/recordings` (downloaded there when absent). `<cache>` is `data.cache_dir`,
else `$RVQ_JAX_CACHE`, else `$XDG_CACHE_HOME/rvq_jax`, else `~/.cache/rvq_jax`.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request

from absl import logging
import tqdm

from rvq_jax import errors

_POINT_AT_LOCAL_COPY = (
    "To use a local copy of the Free Spoken Digit Dataset instead, point at its `recordings` "
    "folder with --config.data.data_dir=/path/to/recordings or the FSDD_DIR environment variable.")


def cache_root(data_config) -> pathlib.Path:
  """The folder holding downloads and prepared-array caches."""
  if data_config.get("cache_dir"):
    return pathlib.Path(data_config.cache_dir).expanduser()
  if os.environ.get("RVQ_JAX_CACHE"):
    return pathlib.Path(os.environ["RVQ_JAX_CACHE"]).expanduser()
  xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return pathlib.Path(xdg) / "rvq_jax"


def _check_recordings_dir(path: pathlib.Path, source: str) -> pathlib.Path:
  if path.exists() and not path.is_dir():
    raise errors.MissingError(
        f"FSDD folder {str(path)!r} (from {source}) is a file, not a folder. Set {source} to the "
        "dataset's `recordings` folder (holding files like 7_jackson_32.wav).")
  if not path.is_dir():
    raise errors.MissingError(
        f"FSDD folder {str(path)!r} (from {source}) does not exist. Set {source} to the dataset's "
        "`recordings` folder, or unset it to download the dataset.")
  if not any(path.glob("*.wav")):
    raise errors.MissingError(
        f"FSDD folder {str(path)!r} (from {source}) holds no .wav files. Point {source} at the "
        "dataset's `recordings` folder (files named like 7_jackson_32.wav).")
  return path


def find_recordings(data_config) -> pathlib.Path:
  """Returns the folder of FSDD WAV files, downloading the release if no copy is configured.

  Raises:
    FileNotFoundError: a configured folder is missing or holds no WAV files.
    RuntimeError: the download failed (the message says how to use a local copy).
  """
  if data_config.get("data_dir"):
    return _check_recordings_dir(pathlib.Path(data_config.data_dir).expanduser(),
                                 "--config.data.data_dir")
  if os.environ.get("FSDD_DIR"):
    return _check_recordings_dir(pathlib.Path(os.environ["FSDD_DIR"]).expanduser(), "FSDD_DIR")
  target = cache_root(data_config) / f"fsdd-{data_config.release}"
  recordings = target / "recordings"
  if len(list(recordings.glob("*.wav"))) >= data_config.expected_files:
    return recordings
  download_release(data_config.download_url, target, data_config.expected_files)
  return recordings


def _fetch(url: str, destination: pathlib.Path, timeout_s: float) -> None:
  try:
    with urllib.request.urlopen(url, timeout=timeout_s) as response, open(destination, "wb") as out:
      total = int(response.headers.get("Content-Length") or 0) or None
      with tqdm.tqdm(total=total, unit="B", unit_scale=True, desc="Downloading FSDD") as bar:
        while chunk := response.read(1 << 20):
          out.write(chunk)
          bar.update(len(chunk))
  except (urllib.error.URLError, OSError, ValueError) as e:
    raise errors.DownloadError(f"Could not download FSDD from {url}: {e}. {_POINT_AT_LOCAL_COPY}") from e


def download_release(url: str, target: pathlib.Path, expected_files: int,
                     timeout_s: float = 60.0) -> pathlib.Path:
  """Downloads a FSDD tag archive and installs its recordings in `target/recordings`.

  The archive is fetched and unpacked in a temporary folder beside `target`, checked to hold
  `expected_files` WAVs, and only then moved into place, so an interrupted or partial download
  never leaves a half-filled dataset behind.

  Returns:
    The `recordings` folder.
  """
  target.parent.mkdir(parents=True, exist_ok=True)
  logging.info("FSDD not found locally; downloading %s to %s", url, target)
  with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fsdd-download-") as tmp:
    tmp = pathlib.Path(tmp)
    archive = tmp / "fsdd.tar.gz"
    _fetch(url, archive, timeout_s)
    staging = tmp / "recordings"
    staging.mkdir()
    try:
      with tarfile.open(archive) as tar:
        for member in tar.getmembers():
          parts = pathlib.PurePosixPath(member.name).parts
          # Tag archives hold <repo>-<tag>/recordings/*.wav; take only those, flattened.
          if (member.isfile() and len(parts) >= 2 and parts[-2] == "recordings"
              and parts[-1].endswith(".wav")):
            member.name = parts[-1]
            tar.extract(member, staging, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
      raise errors.DownloadError(f"The archive from {url} is damaged ({e}). {_POINT_AT_LOCAL_COPY}") from e
    found = len(list(staging.glob("*.wav")))
    if found != expected_files:
      raise errors.DownloadError(
          f"The archive from {url} holds {found} recordings, expected {expected_files} "
          f"(data.expected_files). {_POINT_AT_LOCAL_COPY}")
    target.mkdir(exist_ok=True)
    if (target / "recordings").exists():
      shutil.rmtree(target / "recordings")
    os.replace(staging, target / "recordings")
  logging.info("FSDD: %d recordings installed in %s", expected_files, target / "recordings")
  return target / "recordings"
