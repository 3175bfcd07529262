"""The download path against a real HTTP server on loopback serving an archive built here."""

import contextlib
import functools
import http.server
import io
import pathlib
import socket
import tarfile
import threading

import pytest

from rvq_jax import data

NAMES = [f"{d}_{s}_{i}" for d in (3, 8) for s in ("nicolas", "yweweler") for i in (1, 12, 33)]


def _build_archive(recordings, path, names, prefix="free-spoken-digit-dataset-1.0.10"):
  with tarfile.open(path, "w:gz") as tar:
    readme = io.BytesIO(b"FSDD test archive")
    info = tarfile.TarInfo(f"{prefix}/README.md")
    info.size = len(readme.getvalue())
    tar.addfile(info, readme)
    for name in names:
      tar.add(recordings / f"{name}.wav", arcname=f"{prefix}/recordings/{name}.wav")
  return path


@contextlib.contextmanager
def _serve(folder):
  handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
  handler.log_message = lambda *a, **k: None
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield f"http://127.0.0.1:{server.server_address[1]}"
  finally:
    server.shutdown()
    server.server_close()


@pytest.fixture
def download_config(default_config, tmp_path, monkeypatch):
  monkeypatch.delenv("FSDD_DIR", raising=False)
  config = default_config.data
  config.cache_dir = str(tmp_path / "cache")
  config.expected_files = len(NAMES)
  return config


def test_download_installs_the_recordings(fsdd_recordings, download_config, tmp_path):
  served = tmp_path / "served"
  served.mkdir()
  _build_archive(fsdd_recordings, served / "v1.0.10.tar.gz", NAMES)
  with _serve(served) as url:
    download_config.download_url = f"{url}/v1.0.10.tar.gz"
    dataset = data.load_dataset(download_config)
  folder = pathlib.Path(download_config.cache_dir) / "fsdd-v1.0.10" / "recordings"
  assert sorted(p.stem for p in folder.glob("*.wav")) == sorted(NAMES)
  assert (folder / "3_nicolas_1.wav").read_bytes() == (fsdd_recordings / "3_nicolas_1.wav").read_bytes()
  assert sum(len(dataset[s]) for s in data.SPLITS) == len(NAMES)
  # Present now: found again without a server.
  assert data.find_recordings(download_config) == folder


def test_incomplete_archive_is_rejected_and_leaves_nothing(fsdd_recordings, download_config,
                                                           tmp_path):
  served = tmp_path / "served"
  served.mkdir()
  _build_archive(fsdd_recordings, served / "short.tar.gz", NAMES[:-2])
  with _serve(served) as url:
    download_config.download_url = f"{url}/short.tar.gz"
    with pytest.raises(RuntimeError, match=r"holds 10 recordings, expected 12"):
      data.find_recordings(download_config)
  target = pathlib.Path(download_config.cache_dir) / "fsdd-v1.0.10"
  assert not (target / "recordings").exists()
  assert not list(pathlib.Path(download_config.cache_dir).glob(".fsdd-download-*"))


def test_no_network_says_how_to_use_a_local_copy(download_config):
  with socket.socket() as s:  # a loopback port with nothing listening
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  download_config.download_url = f"http://127.0.0.1:{port}/v1.0.10.tar.gz"
  with pytest.raises(RuntimeError, match=r"Could not download.*(data_dir|FSDD_DIR)"):
    data.find_recordings(download_config)


def test_missing_file_on_server_is_reported(download_config, tmp_path):
  (tmp_path / "served").mkdir()
  with _serve(tmp_path / "served") as url:
    download_config.download_url = f"{url}/missing.tar.gz"
    with pytest.raises(RuntimeError, match="404"):
      data.find_recordings(download_config)
