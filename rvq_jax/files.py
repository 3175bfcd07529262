"""Writing files and folders so that nothing half-written is ever seen or left behind.

`atomic_write(path)` yields a binary file object on a uniquely named temporary file in `path`'s
own folder (`tempfile.mkstemp`, so two writers of one output never share it); on success the
file is renamed over `path` in one step (readers see the old file or the new one, never a mix),
on any failure (an exception, a full disk) it is removed. `new_folder` does the same for a folder
of results, and refuses to replace a non-empty one unasked.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import tempfile

from rvq_jax import errors


@contextlib.contextmanager
def atomic_write(path):
  """Context manager: a binary file object whose contents replace `path` when the block ends
  without an exception (folders are made); nothing changes at `path` otherwise."""
  path = pathlib.Path(path)
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  except OSError as e:
    raise _write_error(path, e) from e
  try:
    os.chmod(tmp, 0o666 & ~_umask())   # mkstemp's 0600 would hide results from other users
    with os.fdopen(fd, "wb") as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException as e:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)
    if isinstance(e, OSError) and not isinstance(e, errors.UserError):
      raise _write_error(path, e) from e
    raise


def _write_error(path: pathlib.Path, e: OSError) -> errors.WriteError:
  """One line naming the output and the system's reason (a full or read-only disk, a folder in
  the way), e.g. 'runs/x/eval.json could not be written (No space left on device) ...'."""
  return errors.WriteError(f"{path} could not be written ({e.strerror or e}); free space or "
                           "choose a writable place (nothing there was changed).")


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def write_bytes(path, data: bytes) -> None:
  """`path.write_bytes(data)`, atomically (`atomic_write`)."""
  with atomic_write(path) as f:
    f.write(data)


def write_text(path, text: str) -> None:
  """`path.write_text(text)` (UTF-8), atomically (`atomic_write`)."""
  write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def new_folder(path, overwrite: bool = False, flag: str = "--output"):
  """Context manager for a command that fills the folder `path` with results: yields a fresh
  staging folder beside it, which becomes `path` in one rename when the block succeeds (and is
  removed when it fails), so a user's earlier results are never overwritten file by file.

  An existing non-empty `path` is refused (errors.ConfigError naming it and `flag`) unless
  `overwrite`; then the old folder is replaced whole.
  """
  path = pathlib.Path(path)
  if path.is_file():
    raise errors.ConfigError(f"{flag}={path} is a file; name a folder.")
  if path.is_dir() and any(path.iterdir()) and not overwrite:
    held = sorted(p.name for p in path.iterdir())
    raise errors.ConfigError(
        f"{flag}={path} is not empty (it holds {', '.join(held[:4])}"
        f"{' ...' if len(held) > 4 else ''}); name a new folder, or pass --overwrite to replace "
        "it whole.")
  path.parent.mkdir(parents=True, exist_ok=True)
  staging = pathlib.Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new"))
  try:
    os.chmod(staging, 0o777 & ~_umask())
    yield staging
    if path.exists():
      old = pathlib.Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.",
                                          suffix=".old"))
      os.replace(path, old / path.name)
      os.replace(staging, path)
      shutil.rmtree(old)
    else:
      os.replace(staging, path)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
